use tonic::{Request, Response, Status};

use super::{
    caller,
    convert::timestamp,
    origin,
    pb::{self, auth_service_server::AuthService},
};
use crate::{
    auth::{Actor, Authenticator},
    domain::DisplayName,
    error::Error,
    users::Users,
};

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
        let session_expires_at = match principal.actor {
            Actor::User { expires_at, .. } => Some(timestamp(expires_at)),
            Actor::ApiKey { .. } => None,
        };
        Ok(Response::new(pb::WhoAmIResponse {
            org_id: org.org_id.to_string(),
            org_slug: org.slug.as_str().to_owned(),
            user: user.as_ref().map(Into::into),
            api_key: None,
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
}
