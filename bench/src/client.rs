//! gRPC clients of the servers under measurement.

use roster::api::{
    Bearer,
    pb::{
        self, auth_service_client::AuthServiceClient, org_service_client::OrgServiceClient,
        presence_service_client::PresenceServiceClient, user_service_client::UserServiceClient,
    },
};
use tonic::{service::interceptor::InterceptedService, transport::Channel};

use crate::{BenchError, child::Server};

pub const ORG: &str = "bench";
pub const ADMIN_EMAIL: &str = "admin@bench.example.com";
pub const ADMIN_PASSWORD: &str = "bench admin password";

pub type Users = UserServiceClient<InterceptedService<Channel, Bearer>>;

/// The environment of a Roster child on `database_url`, bootstrapped with
/// the benchmark's org and admin.
pub fn roster_env(database_url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", database_url.to_owned()),
        ("ROSTER_BOOTSTRAP_ORG", ORG.to_owned()),
        ("ROSTER_BOOTSTRAP_ADMIN_EMAIL", ADMIN_EMAIL.to_owned()),
        ("ROSTER_BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD.to_owned()),
    ]
}

/// A new HTTP/2 connection to `server`.
pub async fn connect(server: &Server) -> Result<Channel, BenchError> {
    Ok(Channel::from_shared(server.url())?.connect().await?)
}

/// Signs in and returns the session token.
pub async fn login(channel: &Channel, login: &str, password: &str) -> Result<String, BenchError> {
    let response = AuthServiceClient::new(channel.clone())
        .login(pb::LoginRequest {
            org: ORG.into(),
            login: login.into(),
            password: password.into(),
        })
        .await?
        .into_inner();
    Ok(response.session_token)
}

pub fn users(channel: &Channel, token: &str) -> Result<Users, BenchError> {
    Ok(UserServiceClient::with_interceptor(
        channel.clone(),
        Bearer::new(token)?,
    ))
}

pub type Presence = PresenceServiceClient<InterceptedService<Channel, Bearer>>;

pub fn presence(channel: &Channel, token: &str) -> Result<Presence, BenchError> {
    Ok(PresenceServiceClient::with_interceptor(
        channel.clone(),
        Bearer::new(token)?,
    ))
}

pub fn org(
    channel: &Channel,
    token: &str,
) -> Result<OrgServiceClient<InterceptedService<Channel, Bearer>>, BenchError> {
    Ok(OrgServiceClient::with_interceptor(
        channel.clone(),
        Bearer::new(token)?,
    ))
}
