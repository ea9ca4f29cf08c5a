//! `login`, `logout`, `whoami` and `passwd`.

use clap::Args;
use roster::api::pb::{self, auth_service_client::AuthServiceClient};
use serde::Serialize;
use tonic::{Code, transport::Channel};

use crate::{
    DEFAULT_SERVER,
    error::CliError,
    output::{Output, dash_if_empty, emit, key_value_table, note, render, rfc3339},
    prompt::{
        new_password_from_stdin, next_line_from_stdin, password_from_stdin, prompt_password,
        prompt_twice,
    },
    session::{
        Session, SignedIn, bearer, connect, current_session, read_session, remove_session,
        save_session, session_path,
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
    /// When the password must be changed, the new one is read from the
    /// second line and, repeated, the third.
    #[arg(long)]
    password_stdin: bool,
}

#[derive(Args)]
pub struct PasswdArgs {
    /// Read the current password from the first line of stdin and the new
    /// one from the second line, instead of prompting.
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
    let channel = connect(&server).await?;
    let mut auth = AuthServiceClient::new(channel.clone());
    let response = auth
        .login(pb::LoginRequest {
            org: args.org.clone(),
            login: args.login,
            password: password.clone(),
        })
        .await?
        .into_inner();
    let mut session = Session {
        server,
        org: args.org.clone(),
        token: response.session_token,
        expires_at: rfc3339(response.expires_at.as_ref()).unwrap_or_default(),
    };
    // Saved at once, so that if the change below fails the user can still
    // run `rosterctl passwd` (or logout) with this restricted session.
    save_session(&session)?;
    let mut password_changed = false;
    if response.password_change_required {
        let new_password = if args.password_stdin {
            new_password_from_stdin()?
        } else {
            note("Your password must be changed before you continue.");
            Some(prompt_twice("New password: ", "Repeat new password: ")?)
        };
        // Without new password lines on stdin, keep the restricted session
        // and say what is needed, as for any other pending change.
        if let Some(new_password) = new_password {
            change_password(channel, &mut session, password, new_password).await?;
            password_changed = true;
        }
    }
    let expires_at = session.expires_at;
    let password_change_required = response.password_change_required && !password_changed;
    let user = response.user.map(|mut user| {
        user.password_change_required = password_change_required;
        UserView::from(user)
    });
    if out.json {
        return out.json(&LoginView {
            org: args.org,
            user,
            expires_at,
            password_change_required,
            password_changed,
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
    if password_changed {
        note("Password changed.");
    } else if password_change_required {
        note(
            "note: your password must be changed before you can use anything but whoami and \
             logout: run rosterctl passwd",
        );
    }
    Ok(())
}

/// Changes the password of `session`'s user. The server ends every session
/// of the user, this one included, and returns a new one, which replaces the
/// saved session.
async fn change_password(
    channel: Channel,
    session: &mut Session,
    current_password: String,
    new_password: String,
) -> Result<(), CliError> {
    let mut auth = AuthServiceClient::with_interceptor(channel, bearer(&session.token)?);
    let changed = auth
        .change_password(pb::ChangePasswordRequest {
            current_password,
            new_password,
        })
        .await?
        .into_inner();
    session.token = changed.session_token;
    session.expires_at = rfc3339(changed.expires_at.as_ref()).unwrap_or_default();
    save_session(session)
}

/// Changes the signed-in user's password.
pub async fn passwd(server: Option<String>, args: PasswdArgs, out: Output) -> Result<(), CliError> {
    let mut session = current_session()?;
    let (current_password, new_password) = if args.password_stdin {
        let current = password_from_stdin()?;
        let new = next_line_from_stdin()?
            .filter(|p| !p.is_empty())
            .ok_or_else(|| CliError::msg("no new password on the second line of stdin"))?;
        (current, new)
    } else {
        (
            prompt_password("Current password: ")?,
            prompt_twice("New password: ", "Repeat new password: ")?,
        )
    };
    if let Some(server) = server {
        session.server = server;
    }
    let channel = connect(&session.server).await?;
    change_password(channel, &mut session, current_password, new_password).await?;
    if out.json {
        return out.json(&serde_json::json!({
            "password_changed": true,
            "expires_at": session.expires_at,
        }));
    }
    emit(format!(
        "Password changed. Every other session has ended.\nSession expires at {}.",
        session.expires_at
    ))
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
    /// Whether login went on to change the password because it was required.
    password_changed: bool,
}
