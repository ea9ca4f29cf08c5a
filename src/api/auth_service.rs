use tonic::{Request, Response, Status};

use super::{
    caller,
    convert::{
        Violations, decode_cursor, encode_cursor, fingerprint, page_size, parse_request_id,
        timestamp,
    },
    origin,
    pb::{self, auth_service_server::AuthService},
};
use crate::{
    auth::{Actor, Authenticator},
    domain::{ApiKeyId, ApiKeyName, DisplayName, parse_scopes},
    error::{Error, Reason},
    users::Users,
};

/// Longest login (email or login id) worth looking up.
const MAX_LOGIN_LEN: usize = 320;

pub struct AuthApi {
    authenticator: Authenticator,
    users: Users,
}

impl AuthApi {
    pub fn new(authenticator: Authenticator, users: Users) -> Self {
        Self {
            authenticator,
            users,
        }
    }
}

#[tonic::async_trait]
impl AuthService for AuthApi {
    #[tracing::instrument(skip_all, fields(org = %req.get_ref().org))]
    async fn login(
        &self,
        req: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::LoginResponse>, Status> {
        let origin = origin(&req);
        let pb::LoginRequest {
            org,
            login,
            password,
        } = req.into_inner();
        // No account has a longer login (an email is at most 254): refuse
        // before any lookup, hashing or audit row, answering as for any
        // unknown login.
        if login.chars().count() > MAX_LOGIN_LEN {
            return Err(Error::Unauthenticated(Reason::InvalidCredentials).into());
        }
        // Refused before any hashing; no account can have such a password,
        // so saying so reveals nothing about any account.
        crate::domain::Password::check_max_len(&password)
            .map_err(|e| Error::invalid(e.at("password")))?;
        let signed_in = self
            .authenticator
            .login(&org, &login, &password, &origin)
            .await?;
        Ok(Response::new(pb::LoginResponse {
            session_token: signed_in.session_token,
            expires_at: Some(timestamp(signed_in.expires_at)),
            password_change_required: signed_in.user.password_change_required,
            user: Some((&signed_in.user).into()),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn logout(
        &self,
        req: Request<pb::LogoutRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        let (principal, origin) = caller(&req)?;
        self.authenticator.logout(&principal, &origin).await?;
        Ok(Response::new(pb::LogoutResponse {}))
    }

    #[tracing::instrument(skip_all)]
    async fn who_am_i(
        &self,
        req: Request<pb::WhoAmIRequest>,
    ) -> Result<Response<pb::WhoAmIResponse>, Status> {
        let (principal, _) = caller(&req)?;
        let (org, user) = self.authenticator.who_am_i(&principal).await?;
        let api_key = self.authenticator.caller_key(&principal).await?;
        let session_expires_at = match principal.actor {
            Actor::User { expires_at, .. } => Some(timestamp(expires_at)),
            Actor::ApiKey { .. } | Actor::Operator => None,
        };
        Ok(Response::new(pb::WhoAmIResponse {
            org_id: org.org_id.to_string(),
            org_slug: org.slug.as_str().to_owned(),
            user: user.as_ref().map(Into::into),
            api_key: api_key.as_ref().map(Into::into),
            permissions: principal
                .permissions
                .iter()
                .map(|p| p.as_str().to_owned())
                .collect(),
            team_ids: principal.team_ids.iter().map(ToString::to_string).collect(),
            session_expires_at,
            password_change_required: principal.password_change_required,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn change_password(
        &self,
        req: Request<pb::ChangePasswordRequest>,
    ) -> Result<Response<pb::ChangePasswordResponse>, Status> {
        let (principal, origin) = caller(&req)?;
        let pb::ChangePasswordRequest {
            current_password,
            new_password,
        } = req.into_inner();
        // The new password meets the org's policy in the use case (the policy
        // is the org's); here only what needs no org: nothing too long gets hashed.
        crate::domain::Password::check_max_len(&current_password)
            .map_err(|e| Error::invalid(e.at("current_password")))?;
        let signed_in = self
            .users
            .change_password(&principal, &origin, &current_password, &new_password)
            .await?;
        Ok(Response::new(pb::ChangePasswordResponse {
            session_token: signed_in.session_token,
            expires_at: Some(timestamp(signed_in.expires_at)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn accept_invite(
        &self,
        req: Request<pb::AcceptInviteRequest>,
    ) -> Result<Response<pb::AcceptInviteResponse>, Status> {
        let origin = origin(&req);
        let pb::AcceptInviteRequest {
            invite_token,
            password,
            display_name,
        } = req.into_inner();
        let display_name = (!display_name.trim().is_empty())
            .then(|| DisplayName::parse(&display_name))
            .transpose()
            .map_err(|e| Error::invalid(e.at("display_name")))?;
        let signed_in = self
            .users
            .accept_invite(&origin, &invite_token, &password, display_name)
            .await?;
        Ok(Response::new(pb::AcceptInviteResponse {
            session_token: signed_in.session_token,
            expires_at: Some(timestamp(signed_in.expires_at)),
            user: Some((&signed_in.user).into()),
        }))
    }

    #[tracing::instrument(skip_all, fields(request_id = %req.get_ref().request_id))]
    async fn create_api_key(
        &self,
        req: Request<pb::CreateApiKeyRequest>,
    ) -> Result<Response<pb::CreateApiKeyResponse>, Status> {
        let (principal, origin) = caller(&req)?;
        let pb::CreateApiKeyRequest {
            api_key,
            request_id,
        } = req.into_inner();
        let pb::ApiKey { name, scopes, .. } = api_key.unwrap_or_default();
        let mut v = Violations::default();
        let name = v.check("api_key.name", ApiKeyName::parse(&name));
        let scopes = v.check("api_key.scopes", parse_scopes(&scopes));
        let (name, scopes) = v.finish(|| Some((name?, scopes?)))?;
        let request_id =
            parse_request_id(&request_id).map_err(|e| Error::invalid(e.at("request_id")))?;
        let created = self
            .authenticator
            .create_api_key(&principal, &origin, name, scopes, request_id)
            .await?;
        Ok(Response::new(pb::CreateApiKeyResponse {
            api_key: Some((&created.key).into()),
            secret: created.secret,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_api_keys(
        &self,
        req: Request<pb::ListApiKeysRequest>,
    ) -> Result<Response<pb::ListApiKeysResponse>, Status> {
        let (principal, _) = caller(&req)?;
        let pb::ListApiKeysRequest {
            page_size: raw_size,
            page_token,
            show_revoked,
        } = req.into_inner();
        let size = page_size(raw_size).map_err(|e| Error::invalid(e.at("page_size")))?;
        let print = fingerprint(&show_revoked);
        let after = decode_cursor(&page_token, &print)
            .and_then(|cursor| cursor.map(|(_, id)| ApiKeyId::parse(&id)).transpose())
            .map_err(|e| Error::invalid(e.at("page_token")))?;
        let page = self
            .authenticator
            .list_api_keys(&principal, show_revoked, after, size)
            .await?;
        Ok(Response::new(pb::ListApiKeysResponse {
            api_keys: page.keys.iter().map(Into::into).collect(),
            next_page_token: page
                .next
                .map(|id| encode_cursor("", &id.to_string(), print))
                .unwrap_or_default(),
        }))
    }

    #[tracing::instrument(skip_all, fields(api_key_id = %req.get_ref().api_key_id))]
    async fn revoke_api_key(
        &self,
        req: Request<pb::RevokeApiKeyRequest>,
    ) -> Result<Response<pb::RevokeApiKeyResponse>, Status> {
        let (principal, origin) = caller(&req)?;
        let id = ApiKeyId::parse(&req.get_ref().api_key_id)
            .map_err(|e| Error::invalid(e.at("api_key_id")))?;
        let key = self
            .authenticator
            .revoke_api_key(&principal, &origin, id)
            .await?;
        Ok(Response::new(pb::RevokeApiKeyResponse {
            api_key: Some((&key).into()),
        }))
    }
}
