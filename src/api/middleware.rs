//! Authentication and the first authorization check as a tower layer: every
//! RPC but the public ones must carry `authorization: Bearer <token>` (a
//! session token or an API key); the resolved [`Principal`] goes into the
//! request's extensions for handlers to read, once it passes the RPC's
//! callers rule in [`access::RULES`]. A session that must change its
//! password may only call `ChangePassword`, `Logout` and `WhoAmI`. Every
//! request, public or not, gets its [`RequestId`] here.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use http::{Request, Response};
use tonic::{Status, body::Body};
use tower::{Layer, Service};

use super::access::{self, Callers};
use crate::{
    auth::{Authenticator, PLATFORM_KEY_PREFIX, PlatformCaller, Principal},
    error::{Error, Reason},
};

/// The id an RPC is known by in its logs, its trace and the audit entries
/// it writes: the caller's `x-request-id` (its first 128 characters), or a
/// new UUID when it sends none.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl RequestId {
    fn of(headers: &http::HeaderMap) -> Self {
        let sent = headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|id| !id.is_empty());
        RequestId(match sent {
            Some(id) => id.chars().take(128).collect(),
            None => uuid::Uuid::now_v7().to_string(),
        })
    }
}

/// RPCs anyone may call: the public ones of the table, health and reflection.
fn is_public(path: &str) -> bool {
    access::rule_for(path).is_some_and(|r| r.callers == Callers::Public)
        || path.starts_with("/grpc.health.v1.Health/")
        || path.starts_with("/grpc.reflection.")
}

/// RPCs a session with a pending password change may still call.
fn allowed_before_password_change(path: &str) -> bool {
    matches!(
        path,
        "/roster.v1.AuthService/ChangePassword"
            | "/roster.v1.AuthService/Logout"
            | "/roster.v1.AuthService/WhoAmI"
    )
}

#[derive(Clone)]
pub struct AuthLayer {
    authenticator: Authenticator,
}

impl AuthLayer {
    pub fn new(authenticator: Authenticator) -> Self {
        Self { authenticator }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthMiddleware<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AuthMiddleware {
            inner,
            authenticator: self.authenticator.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AuthMiddleware<S> {
    inner: S,
    authenticator: Authenticator,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> Service<Request<B>> for AuthMiddleware<S>
where
    S: Service<Request<B>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        // The clone that was polled ready is the one to call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let authenticator = self.authenticator.clone();
        let request_id = RequestId::of(req.headers());
        tracing::Span::current().record("roster.request_id", request_id.0.as_str());
        req.extensions_mut().insert(request_id);
        let path = req.uri().path().to_owned();
        let authorization = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Box::pin(async move {
            if !is_public(&path) {
                match authenticate(&authenticator, &path, authorization.as_deref()).await {
                    Ok(Caller::Org(principal)) => {
                        // Ids only: the RPC's span never carries the token.
                        let span = tracing::Span::current();
                        span.record("roster.org_id", tracing::field::display(principal.org_id));
                        if let Some(user_id) = principal.user_id() {
                            span.record("roster.user_id", tracing::field::display(user_id));
                        }
                        req.extensions_mut().insert(principal);
                    }
                    Ok(Caller::Platform(caller)) => {
                        req.extensions_mut().insert(caller);
                    }
                    Err(err) => return Ok(Status::from(err).into_http()),
                }
            }
            inner.call(req).await
        })
    }
}

/// The token of an `authorization: Bearer <token>` header value, read
/// strictly (RFC 6750): the scheme in any case, one space, a token68 and
/// nothing else. Anything looser is no credential at all, so no two header
/// values name the same token.
pub(super) fn bearer_token(authorization: Option<&str>) -> Option<&str> {
    let (scheme, token) = authorization?.split_once(' ')?;
    let token68 = token.trim_end_matches('=');
    let valid = scheme.eq_ignore_ascii_case("bearer")
        && !token68.is_empty()
        && token68
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
    valid.then_some(token)
}

/// Who an RPC's credential names: someone of an org, or the platform.
enum Caller {
    Org(Principal),
    Platform(PlatformCaller),
}

/// Platform keys call PlatformService and nothing else; nobody else calls
/// it. A credential is checked before its kind is refused, so a refusal
/// says nothing about credentials that do not work anyway.
async fn authenticate(
    authenticator: &Authenticator,
    path: &str,
    authorization: Option<&str>,
) -> Result<Caller, Error> {
    let token =
        bearer_token(authorization).ok_or(Error::Unauthenticated(Reason::MissingCredentials))?;
    let platform_rpc = access::rule_for(path).is_some_and(|r| r.callers == Callers::Platform);
    let platform_key = token.starts_with(PLATFORM_KEY_PREFIX);
    match (platform_rpc, platform_key) {
        (true, true) => {
            return Ok(Caller::Platform(
                authenticator.authenticate_platform(token).await?,
            ));
        }
        (true, false) => {
            authenticator.authenticate(token).await?;
            return Err(wrong_caller(
                "PlatformService takes a platform API key; no org's session or key can call it",
            ));
        }
        (false, true) => {
            authenticator.authenticate_platform(token).await?;
            return Err(wrong_caller(
                "a platform API key can call only PlatformService",
            ));
        }
        (false, false) => {}
    }
    let principal = authenticator.authenticate(token).await?;
    if principal.password_change_required && !allowed_before_password_change(path) {
        return Err(Error::failed_precondition(
            Reason::PasswordChangeRequired,
            "change your password first (AuthService.ChangePassword)",
        ));
    }
    if let Some(rule) = access::rule_for(path) {
        let is_person = principal.user_id().is_some();
        if !rule.callers.admit(principal.permissions, is_person) {
            return Err(Error::permission_denied(match rule.callers {
                Callers::AnyOf(perms) => format!(
                    "this requires the {} permission",
                    perms
                        .iter()
                        .map(|p| p.as_str())
                        .collect::<Vec<_>>()
                        .join(" or ")
                ),
                _ => "this requires signing in as a person, not with an API key".into(),
            }));
        }
    }
    Ok(Caller::Org(principal))
}

fn wrong_caller(message: &str) -> Error {
    Error::PermissionDenied {
        reason: Reason::WrongCallerKind,
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn only_one_space_and_a_token68_make_a_bearer_token() {
        assert_eq!(bearer_token(Some("Bearer abc_123")), Some("abc_123"));
        assert_eq!(
            bearer_token(Some("bearer rk_a.b~c+d/e==")),
            Some("rk_a.b~c+d/e==")
        );
        for bad in [
            "Bearer",
            "Bearer ",
            "Bearer  token",
            "Bearer token ",
            "Bearer\ttoken",
            "Bearer \ttoken",
            "Bearer tok\ten",
            "Bearer tok en",
            "Bearer ==",
            "Bearer a=b",
            "Basic dXNlcjpwYXNz",
            "token",
        ] {
            assert_eq!(bearer_token(Some(bad)), None, "{bad:?}");
        }
        assert_eq!(bearer_token(None), None);
    }
}
