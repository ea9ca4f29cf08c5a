//! `users …` for administrators: invitations, updates, suspension,
//! reactivation, unlocking, passwords, deletion and avatars.

use std::{
    fs,
    io::{self, Write},
    path::PathBuf,
};

use clap::{Args, ValueEnum};
use roster::{api::pb, domain::Avatar};
use serde::Serialize;

use crate::{
    error::CliError,
    output::{Output, emit, key_value_table, render, rfc3339},
    prompt::{Confirmation, confirm, password_from_stdin, prompt_new_password},
    session::SignedIn,
    users::{NewUserArgs, UserView, print_user, user_rows, user_view},
};

#[derive(Args)]
pub struct InviteUserArgs {
    #[command(flatten)]
    pub(super) user: NewUserArgs,
    /// Idempotency key: a retry with the same id does not invite twice.
    #[arg(long, value_name = "ID")]
    request_id: Option<String>,
}

/// `users update`: only the fields whose flags are given change, and the
/// update mask names exactly those.
#[derive(Args)]
pub struct UpdateUserArgs {
    /// The user: id, email or login id.
    pub(super) user_id: String,
    /// Fail with ABORTED if the user changed since this etag was read
    /// [default: update regardless].
    #[arg(long)]
    etag: Option<String>,
    /// Display name.
    #[arg(long)]
    name: Option<String>,
    /// Name shown to customers ("" to use the display name).
    #[arg(long)]
    public_name: Option<String>,
    /// Sign-in name, unique in the org ("" for none).
    #[arg(long)]
    login_id: Option<String>,
    /// How the user signs in.
    #[arg(long, value_enum)]
    login_with: Option<LoginWithArg>,
    /// Preferred language as a BCP 47 tag, e.g. pt-BR ("" for the org's).
    #[arg(long)]
    language: Option<String>,
    /// Role to hold; repeat for several. Replaces all the user's roles.
    #[arg(long = "role", value_name = "ROLE")]
    roles: Vec<String>,
    /// Team to belong to; repeat for several. Replaces all the user's teams.
    #[arg(long = "team", value_name = "TEAM", conflicts_with = "clear_teams")]
    pub(super) team_ids: Vec<String>,
    /// Take the user out of every team.
    #[arg(long)]
    clear_teams: bool,
    /// Most chats at once.
    #[arg(long, value_name = "N", conflicts_with = "clear_max_chats")]
    max_chats: Option<u32>,
    /// Go back to the org's default most chats at once.
    #[arg(long)]
    clear_max_chats: bool,
    /// Landline phone number ("" for none).
    #[arg(long, value_name = "PHONE")]
    landline_phone: Option<String>,
    /// Mobile phone number ("" for none).
    #[arg(long, value_name = "PHONE")]
    mobile_phone: Option<String>,
    /// Job title ("" for none).
    #[arg(long)]
    job_title: Option<String>,
    /// Location, e.g. an office or city ("" for none).
    #[arg(long)]
    location: Option<String>,
    /// Whether the user may view colleagues' chats (where their roles allow it).
    #[arg(long, value_name = "true|false")]
    can_view_colleagues_chats: Option<bool>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LoginWithArg {
    /// Only the email address.
    Email,
    /// Only the login id.
    LoginId,
    /// Either.
    Both,
    /// Whatever the org's setting says.
    OrgDefault,
}

impl From<LoginWithArg> for pb::LoginWith {
    fn from(login_with: LoginWithArg) -> Self {
        match login_with {
            LoginWithArg::Email => Self::Email,
            LoginWithArg::LoginId => Self::LoginId,
            LoginWithArg::Both => Self::Both,
            LoginWithArg::OrgDefault => Self::Unspecified,
        }
    }
}

#[derive(Args)]
pub struct SuspendUserArgs {
    /// The user: id, email or login id.
    pub(super) user_id: String,
    /// Why, at most 150 characters; shown on the user and kept in the audit log.
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
    /// Suspend even if the agent has open chats (routers requeue them).
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    confirmation: Confirmation,
}

#[derive(Args)]
pub struct ResetPasswordArgs {
    /// The user: id, email or login id.
    pub(super) user_id: String,
    /// Read the new password from the first line of stdin instead of prompting.
    #[arg(long)]
    password_stdin: bool,
    /// Let the user keep this password instead of changing it at next sign-in.
    #[arg(long)]
    no_change_required: bool,
}

/// What `users invite` and `users resend-invite` print.
#[derive(Serialize)]
struct InviteView {
    user: UserView,
    invite_expires_at: Option<String>,
}

pub async fn invite_user(
    signed_in: &SignedIn,
    args: InviteUserArgs,
    out: Output,
) -> Result<(), CliError> {
    let request = pb::InviteUserRequest {
        user: Some(args.user.into()),
        request_id: args.request_id.unwrap_or_default(),
    };
    let response = signed_in.users().invite_user(request).await?.into_inner();
    print_invite(response.user, response.invite_expires_at, out)
}

pub async fn resend_invite(
    signed_in: &SignedIn,
    user_id: String,
    out: Output,
) -> Result<(), CliError> {
    let response = signed_in
        .users()
        .resend_invite(pb::ResendInviteRequest { user_id })
        .await?
        .into_inner();
    print_invite(response.user, response.invite_expires_at, out)
}

fn print_invite(
    user: Option<pb::User>,
    expires_at: Option<prost_types::Timestamp>,
    out: Output,
) -> Result<(), CliError> {
    let view = InviteView {
        user: user_view(user)?,
        invite_expires_at: rfc3339(expires_at.as_ref()),
    };
    if out.json {
        return out.json(&view);
    }
    let mut rows = user_rows(&view.user);
    rows.push((
        "INVITE EXPIRES",
        view.invite_expires_at.unwrap_or_else(|| "-".into()),
    ));
    emit(render(&key_value_table(rows)))
}

pub async fn revoke_invite(
    signed_in: &SignedIn,
    user_id: String,
    confirmation: Confirmation,
    out: Output,
) -> Result<(), CliError> {
    let who = confirm_user_action(
        signed_in,
        &user_id,
        &confirmation,
        "revoke the invitation of",
        "Revoke the invitation of",
    )
    .await?;
    signed_in
        .users()
        .revoke_invite(pb::RevokeInviteRequest {
            user_id: user_id.clone(),
        })
        .await?;
    if out.json {
        return out.json(&serde_json::json!({ "revoked": true, "user_id": user_id }));
    }
    emit(format!(
        "Revoked the invitation of {who}; the pending user is gone."
    ))
}

pub async fn update_user(
    signed_in: &SignedIn,
    args: UpdateUserArgs,
    out: Output,
) -> Result<(), CliError> {
    let (user, paths) = user_update(args);
    if paths.is_empty() {
        return Err(CliError::msg(
            "nothing to change: give at least one field flag, e.g. --name or --role \
             (see rosterctl users update --help)",
        ));
    }
    let request = pb::UpdateUserRequest {
        user: Some(user),
        update_mask: Some(prost_types::FieldMask {
            paths: paths.into_iter().map(str::to_owned).collect(),
        }),
    };
    let user = signed_in
        .users()
        .update_user(request)
        .await?
        .into_inner()
        .user;
    print_user(user, out)
}

/// The user to send and the mask naming exactly the fields whose flags
/// were given.
fn user_update(args: UpdateUserArgs) -> (pb::User, Vec<&'static str>) {
    let mut paths = Vec::new();
    let mut user = pb::User {
        user_id: args.user_id,
        etag: args.etag.unwrap_or_default(),
        ..Default::default()
    };
    let mut mask = |path: &'static str| paths.push(path);
    if let Some(name) = args.name {
        mask("display_name");
        user.display_name = name;
    }
    if let Some(public_name) = args.public_name {
        mask("public_name");
        user.public_name = public_name;
    }
    if let Some(login_id) = args.login_id {
        mask("login_id");
        user.login_id = login_id;
    }
    if let Some(login_with) = args.login_with {
        mask("login_with");
        user.login_with = pb::LoginWith::from(login_with) as i32;
    }
    if let Some(language) = args.language {
        mask("language");
        user.language = language;
    }
    if !args.roles.is_empty() {
        mask("roles");
        user.roles = args.roles;
    }
    if !args.team_ids.is_empty() || args.clear_teams {
        mask("team_ids");
        user.team_ids = args.team_ids;
    }
    if args.max_chats.is_some() || args.clear_max_chats {
        mask("max_chats");
        user.max_chats = args.max_chats;
    }
    if let Some(phone) = args.landline_phone {
        mask("landline_phone");
        user.landline_phone = phone;
    }
    if let Some(phone) = args.mobile_phone {
        mask("mobile_phone");
        user.mobile_phone = phone;
    }
    if let Some(job_title) = args.job_title {
        mask("job_title");
        user.job_title = job_title;
    }
    if let Some(location) = args.location {
        mask("location");
        user.location = location;
    }
    if let Some(can_view) = args.can_view_colleagues_chats {
        mask("can_view_colleagues_chats");
        user.can_view_colleagues_chats = can_view;
    }
    (user, paths)
}

pub async fn suspend_user(
    signed_in: &SignedIn,
    args: SuspendUserArgs,
    out: Output,
) -> Result<(), CliError> {
    confirm_user_action(
        signed_in,
        &args.user_id,
        &args.confirmation,
        "suspend",
        "Suspend user",
    )
    .await?;
    let user = signed_in
        .users()
        .suspend_user(pb::SuspendUserRequest {
            user_id: args.user_id,
            reason: args.reason.unwrap_or_default(),
            force: args.force,
        })
        .await?
        .into_inner()
        .user;
    print_user(user, out)
}

pub async fn reactivate_user(
    signed_in: &SignedIn,
    user_id: String,
    out: Output,
) -> Result<(), CliError> {
    let user = signed_in
        .users()
        .reactivate_user(pb::ReactivateUserRequest { user_id })
        .await?
        .into_inner()
        .user;
    print_user(user, out)
}

pub async fn unlock_user(
    signed_in: &SignedIn,
    user_id: String,
    out: Output,
) -> Result<(), CliError> {
    let user = signed_in
        .users()
        .unlock_user(pb::UnlockUserRequest { user_id })
        .await?
        .into_inner()
        .user;
    print_user(user, out)
}

pub async fn reset_password(
    signed_in: &SignedIn,
    args: ResetPasswordArgs,
    out: Output,
) -> Result<(), CliError> {
    let new_password = if args.password_stdin {
        password_from_stdin()?
    } else {
        prompt_new_password()?
    };
    let user = signed_in
        .users()
        .reset_password(pb::ResetPasswordRequest {
            user_id: args.user_id,
            new_password,
            skip_password_change: args.no_change_required,
        })
        .await?
        .into_inner()
        .user;
    print_user(user, out)
}

pub async fn force_password_change(
    signed_in: &SignedIn,
    user_id: String,
    out: Output,
) -> Result<(), CliError> {
    let user = signed_in
        .users()
        .force_password_change(pb::ForcePasswordChangeRequest { user_id })
        .await?
        .into_inner()
        .user;
    print_user(user, out)
}

pub async fn delete_user(
    signed_in: &SignedIn,
    user_id: String,
    confirmation: Confirmation,
    out: Output,
) -> Result<(), CliError> {
    let who =
        confirm_user_action(signed_in, &user_id, &confirmation, "delete", "Delete user").await?;
    signed_in
        .users()
        .delete_user(pb::DeleteUserRequest {
            user_id: user_id.clone(),
        })
        .await?;
    if out.json {
        return out.json(&serde_json::json!({ "deleted": true, "user_id": user_id }));
    }
    emit(format!("Deleted user {who}."))
}

/// Unless `--yes`, fetches the user and asks "`question` Name <email>?".
/// Returns how to name the user afterwards: name and email when fetched,
/// else the id.
async fn confirm_user_action(
    signed_in: &SignedIn,
    user_id: &str,
    confirmation: &Confirmation,
    action: &str,
    question: &str,
) -> Result<String, CliError> {
    if !confirmation.needed(&format!("{action} user {user_id}"))? {
        return Ok(user_id.to_owned());
    }
    let user = signed_in
        .users()
        .get_user(pb::GetUserRequest {
            user_id: user_id.to_owned(),
        })
        .await?
        .into_inner()
        .user
        .ok_or_else(|| CliError::msg("the server's response carries no user"))?;
    let who = format!("{} <{}>", user.display_name, user.email);
    confirm(&format!("{question} {who}?"))?;
    Ok(who)
}

pub async fn set_avatar(
    signed_in: &SignedIn,
    user_id: String,
    file: PathBuf,
    out: Output,
) -> Result<(), CliError> {
    let fail = |e: io::Error| CliError::msg(format!("cannot read {}: {e}", file.display()));
    // Refuse a huge file before reading it all and sending it for nothing.
    let size = fs::metadata(&file).map_err(fail)?.len();
    if size > Avatar::MAX_BYTES as u64 {
        return Err(CliError::msg(format!(
            "{} is {} KB; an avatar is at most {} KB",
            file.display(),
            size.div_ceil(1024),
            Avatar::MAX_BYTES / 1024
        )));
    }
    let image = fs::read(&file).map_err(fail)?;
    let user = signed_in
        .users()
        .set_avatar(pb::SetAvatarRequest { user_id, image })
        .await?
        .into_inner()
        .user;
    print_user(user, out)
}

/// What `users get-avatar` prints once the image is saved.
#[derive(Serialize)]
struct AvatarView {
    user_id: String,
    content_type: String,
    size_bytes: usize,
    file: String,
}

/// Saves the avatar to `output`, or writes the bare image to stdout when
/// `output` is `-`.
pub async fn get_avatar(
    signed_in: &SignedIn,
    user_id: String,
    output: PathBuf,
    out: Output,
) -> Result<(), CliError> {
    let avatar = signed_in
        .users()
        .get_avatar(pb::GetAvatarRequest {
            user_id: user_id.clone(),
        })
        .await?
        .into_inner();
    if output.as_os_str() == "-" {
        let mut stdout = io::stdout().lock();
        return match stdout
            .write_all(&avatar.image)
            .and_then(|()| stdout.flush())
        {
            Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
                Err(CliError::msg(format!("cannot write to stdout: {e}")))
            }
            _ => Ok(()),
        };
    }
    fs::write(&output, &avatar.image)
        .map_err(|e| CliError::msg(format!("cannot write {}: {e}", output.display())))?;
    let view = AvatarView {
        user_id,
        content_type: avatar.content_type,
        size_bytes: avatar.image.len(),
        file: output.display().to_string(),
    };
    if out.json {
        return out.json(&view);
    }
    emit(format!(
        "Saved the avatar ({}, {} bytes) to {}.",
        view.content_type, view.size_bytes, view.file
    ))
}
