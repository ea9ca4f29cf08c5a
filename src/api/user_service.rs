use tonic::{Request, Response, Status};

use super::{
    caller,
    convert::{
        Violations, decode_page_token, encode_page_token, fingerprint, page_size, parse_new_user,
        parse_user_state_filter,
    },
    pb::{self, user_service_server::UserService},
};
use crate::{
    domain::{RoleName, TeamId, UserId},
    error::{Error, ParseError, Reason},
    store::UserCriteria,
    users::{CreateUser, Users},
};

pub struct UserApi {
    users: Users,
}

impl UserApi {
    pub fn new(users: Users) -> Self {
        Self { users }
    }
}

#[tonic::async_trait]
impl UserService for UserApi {
    #[tracing::instrument(skip_all, fields(request_id = %req.get_ref().request_id))]
    async fn create_user(
        &self,
        req: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::CreateUserResponse>, Status> {
        let (principal, origin) = caller(&req)?;
        let pb::CreateUserRequest {
            user,
            password,
            request_id,
            send_welcome_email,
            require_password_change,
        } = req.into_inner();
        if send_welcome_email {
            return Err(Error::Unimplemented("send_welcome_email").into());
        }
        let user = parse_new_user(user, "user")?;
        let request_id = Some(request_id.trim().to_owned()).filter(|r| !r.is_empty());
        let created = self
            .users
            .create_user(
                &principal,
                &origin,
                CreateUser {
                    user,
                    password,
                    require_password_change,
                    request_id,
                },
            )
            .await?;
        Ok(Response::new(pb::CreateUserResponse {
            user: Some((&created).into()),
        }))
    }

    #[tracing::instrument(skip_all, fields(user_id = %req.get_ref().user_id))]
    async fn get_user(
        &self,
        req: Request<pb::GetUserRequest>,
    ) -> Result<Response<pb::GetUserResponse>, Status> {
        let (principal, _) = caller(&req)?;
        let user_id =
            UserId::parse(&req.get_ref().user_id).map_err(|e| Error::invalid(e.at("user_id")))?;
        let user = self.users.get_user(&principal, user_id).await?;
        Ok(Response::new(pb::GetUserResponse {
            user: Some((&user).into()),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_users(
        &self,
        req: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        let (principal, _) = caller(&req)?;
        let pb::ListUsersRequest {
            page_size: raw_page_size,
            page_token,
            query,
            role,
            team_id,
            state,
            locked,
            presence_status,
        } = req.into_inner();
        if presence_status != pb::PresenceStatus::Unspecified as i32 {
            return Err(Error::Unimplemented("filtering users by presence_status").into());
        }
        let mut v = Violations::default();
        let size = v.check("page_size", page_size(raw_page_size));
        let query = Some(query.trim().to_owned()).filter(|q| !q.is_empty());
        let query = v.check(
            "query",
            match query {
                Some(q) if q.chars().count() > 200 => Err(ParseError::new(
                    Reason::InvalidArgument,
                    "must be at most 200 characters",
                )),
                other => Ok(other),
            },
        );
        let role = v.check(
            "role",
            (!role.trim().is_empty())
                .then(|| RoleName::parse(&role))
                .transpose(),
        );
        let team = v.check(
            "team_id",
            (!team_id.trim().is_empty())
                .then(|| TeamId::parse(&team_id))
                .transpose(),
        );
        let state = v.check("state", parse_user_state_filter(state));
        let criteria = v.finish(|| {
            Some(UserCriteria {
                query: query?,
                role: role?,
                team: team?,
                state: state?,
                locked,
            })
        })?;
        let filter_print = fingerprint(&criteria);
        let after = decode_page_token(&page_token, &filter_print)
            .map_err(|e| Error::invalid(e.at("page_token")))?;
        let page = self
            .users
            .list_users(&principal, criteria, after, size.unwrap_or_default())
            .await?;
        Ok(Response::new(pb::ListUsersResponse {
            users: page.users.iter().map(Into::into).collect(),
            next_page_token: page
                .next
                .map(|key| encode_page_token(&key, filter_print))
                .unwrap_or_default(),
        }))
    }
}
