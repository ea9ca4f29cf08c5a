//! `login`, `logout` and `whoami`.

use clap::Args;
use roster::api::pb::{self, auth_service_client::AuthServiceClient};
use serde::Serialize;
use tonic::Code;

use crate::{
    DEFAULT_SERVER,
    error::CliError,
    output::{Output, dash_if_empty, emit, key_value_table, note, render, rfc3339},
    prompt::{password_from_stdin, prompt_password},
    session::{
        Session, SignedIn, bearer, connect, read_session, remove_session, save_session,
        session_path,
    },
    users::UserView,
};

#[derive(Args)]
pub struct LoginArgs {
    /// The org's slug.
    #[arg(long)]
    org: String,
    /// Email address or login id.
    #[arg(long, value_name = "EMAIL_OR_LOGIN_ID")]
    login: String,
    /// Read the password from the first line of stdin instead of prompting.
    #[arg(long)]
    password_stdin: bool,
}

pub async fn login(server: Option<String>, args: LoginArgs, out: Output) -> Result<(), CliError> {
    // Signing in again goes to the same server as the last session unless told otherwise.
    let previous = session_path().and_then(|path| read_session(&path)).ok();
    let server = server
        .or(previous.map(|session| session.server))
        .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
    let password = if args.password_stdin {
        password_from_stdin()?
    } else {
        prompt_password("Password: ")?
    };
    let mut auth = AuthServiceClient::new(connect(&server).await?);
    let response = auth
        .login(pb::LoginRequest {
            org: args.org.clone(),
            login: args.login,
            password,
        })
        .await?
        .into_inner();
    let expires_at = rfc3339(response.expires_at.as_ref()).unwrap_or_default();
    save_session(&Session {
        server,
        org: args.org.clone(),
        token: response.session_token,
        expires_at: expires_at.clone(),
    })?;
    let user = response.user.map(UserView::from);
    if out.json {
        return out.json(&LoginView {
            org: args.org,
            user,
            expires_at,
            password_change_required: response.password_change_required,
        });
    }
    let who = user.map_or_else(
        || "unknown user".to_owned(),
        |u| format!("{} <{}>", u.display_name, u.email),
    );
    emit(format!(
        "Signed in to {} as {who}.\nSession expires at {expires_at}.",
        args.org
    ))?;
    if response.password_change_required {
        note(
            "note: your password must be changed before you can use anything but whoami and logout",
        );
    }
    Ok(())
}

pub async fn logout(server: Option<String>, out: Output) -> Result<(), CliError> {
    let path = session_path()?;
    let session = read_session(&path)?;
    let server = server.unwrap_or_else(|| session.server.clone());
    let bearer = bearer(&session.token)?;
    let mut auth = AuthServiceClient::with_interceptor(connect(&server).await?, bearer);
    match auth.logout(pb::LogoutRequest {}).await {
        Ok(_) => {}
        // The server no longer knows the session (expired, or ended by an
        // admin): signing out locally is all that is left to do.
        Err(status) if status.code() == Code::Unauthenticated => {}
        // Otherwise keep the file so the user can retry and really end the session.
        Err(status) => return Err(status.into()),
    }
    remove_session(&path)?;
    if out.json {
        out.json(&serde_json::json!({ "signed_out": true }))
    } else {
        emit("Signed out.")
    }
}

pub async fn whoami(server: Option<String>, out: Output) -> Result<(), CliError> {
    let signed_in = SignedIn::open(server).await?;
    let response = signed_in
        .auth()
        .who_am_i(pb::WhoAmIRequest {})
        .await?
        .into_inner();
    let view = WhoAmIView::from(response);
    if out.json {
        return out.json(&view);
    }
    let mut rows = vec![("ORG", format!("{} ({})", view.org_slug, view.org_id))];
    if let Some(user) = &view.user {
        rows.extend([
            ("USER ID", user.user_id.clone()),
            ("EMAIL", user.email.clone()),
            ("NAME", user.display_name.clone()),
            ("ROLES", user.roles.join(", ")),
        ]);
    }
    if let Some(key) = &view.api_key {
        rows.push(("API KEY", format!("{} ({})", key.name, key.api_key_id)));
    }
    rows.extend([
        ("TEAMS", dash_if_empty(view.team_ids.join(", "))),
        ("PERMISSIONS", view.permissions.join("\n")),
        (
            "SESSION EXPIRES",
            view.session_expires_at
                .clone()
                .unwrap_or_else(|| "-".into()),
        ),
    ]);
    if view.password_change_required {
        rows.push(("PASSWORD CHANGE", "required".into()));
    }
    emit(render(&key_value_table(rows)))
}

#[derive(Serialize)]
pub struct ApiKeyView {
    api_key_id: String,
    name: String,
    scopes: Vec<String>,
}

#[derive(Serialize)]
pub struct WhoAmIView {
    org_id: String,
    org_slug: String,
    user: Option<UserView>,
    api_key: Option<ApiKeyView>,
    permissions: Vec<String>,
    team_ids: Vec<String>,
    session_expires_at: Option<String>,
    password_change_required: bool,
}

impl From<pb::WhoAmIResponse> for WhoAmIView {
    fn from(response: pb::WhoAmIResponse) -> Self {
        let pb::WhoAmIResponse {
            org_id,
            org_slug,
            user,
            api_key,
            permissions,
            team_ids,
            session_expires_at,
            password_change_required,
        } = response;
        Self {
            org_id,
            org_slug,
            user: user.map(UserView::from),
            api_key: api_key.map(|key| ApiKeyView {
                api_key_id: key.api_key_id,
                name: key.name,
                scopes: key.scopes,
            }),
            permissions,
            team_ids,
            session_expires_at: rfc3339(session_expires_at.as_ref()),
            password_change_required,
        }
    }
}

/// What `login --json` prints; never the token, which stays in the session file.
#[derive(Serialize)]
pub struct LoginView {
    org: String,
    user: Option<UserView>,
    expires_at: String,
    password_change_required: bool,
}
