//! `users …`: create, show, list, import, export and administer users.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use comfy_table::Table;
use roster::api::pb;
use serde::Serialize;

use crate::{
    error::CliError,
    output::{
        Output, dash_if_empty, emit, enum_name, key_value_table, plain_table, render, rfc3339,
        yes_no,
    },
    paging::{PageArgs, note_next_page},
    presence::StatusFilter,
    prompt::{Confirmation, password_from_stdin, prompt_new_password},
    session::SignedIn,
};

mod admin;
mod export;
mod import;
mod named;

use admin::{InviteUserArgs, ResetPasswordArgs, SuspendUserArgs, UpdateUserArgs};
use import::ImportUsersArgs;
pub use named::{user_id_of, user_ids_of};

use crate::teams::team_ids_of;

#[derive(Subcommand)]
pub enum UsersCommand {
    /// Create an active user with a password.
    Create(CreateUserArgs),
    /// Show one user.
    Get {
        /// The user: id, email or login id.
        user_id: String,
    },
    /// List users, filtered and paged.
    List(ListUsersArgs),
    /// Invite a person by email: they get a one-time sign-up link.
    Invite(InviteUserArgs),
    /// Send an invited user a new link; the old one stops working.
    ResendInvite {
        /// An invited user: id, email or login id.
        user_id: String,
    },
    /// Withdraw an invitation: the pending user is removed.
    RevokeInvite {
        /// An invited user: id, email or login id.
        user_id: String,
        #[command(flatten)]
        confirmation: Confirmation,
    },
    /// Change the fields named by the flags given, and only those.
    Update(Box<UpdateUserArgs>),
    /// Suspend a user: they cannot sign in and their sessions end.
    Suspend(SuspendUserArgs),
    /// Make a suspended user active again (takes a seat).
    Reactivate {
        /// A suspended user: id, email or login id.
        user_id: String,
    },
    /// Clear the lock left by too many failed sign-ins.
    Unlock {
        /// The user: id, email or login id.
        user_id: String,
    },
    /// Set a user's password; they must change it at next sign-in unless
    /// --no-change-required. Their sessions end.
    ResetPassword(ResetPasswordArgs),
    /// Make a user change their password before anything else, from their
    /// next request on.
    ForcePasswordChange {
        /// The user: id, email or login id.
        user_id: String,
    },
    /// Delete a user for good (a tombstone keeps id, name and email).
    Delete {
        /// The user: id, email or login id.
        user_id: String,
        #[command(flatten)]
        confirmation: Confirmation,
    },
    /// List deleted users' tombstones (id, name, email, when and by whom),
    /// most recently deleted first.
    Deleted(ListDeletedArgs),
    /// Set a user's avatar from a JPG, GIF or PNG file (at most 1,500 KB).
    SetAvatar {
        /// The user: id, email or login id.
        user_id: String,
        /// The image file.
        file: PathBuf,
    },
    /// Save a user's avatar to a file.
    GetAvatar {
        /// The user: id, email or login id.
        user_id: String,
        /// Where to write the image ("-" for stdout).
        #[arg(long, short = 'o', value_name = "FILE")]
        output: PathBuf,
    },
    /// Import users from a CSV file (see docs/csv.md): valid rows become
    /// invited users, the others go to the job's report. Shows the upload's
    /// progress, then the job.
    Import(ImportUsersArgs),
    /// Write the users that match the filters to stdout as CSV (the import's
    /// columns first; see docs/csv.md), e.g. `users export > users.csv`.
    /// Always CSV: --json does not apply.
    Export(UserFilterArgs),
}

/// Runs one `users` subcommand.
pub async fn run(signed_in: &SignedIn, command: UsersCommand, out: Output) -> Result<(), CliError> {
    use UsersCommand as C;
    let named = |name: String| user_id_of(signed_in, name);
    let teams = |names: Vec<String>| team_ids_of(signed_in, names);
    match command {
        C::Create(mut args) => {
            args.user.team_ids = teams(args.user.team_ids).await?;
            create_user(signed_in, args, out).await
        }
        C::Get { user_id } => get_user(signed_in, named(user_id).await?, out).await,
        C::List(mut args) => {
            args.filters.resolve_team(signed_in).await?;
            list_users(signed_in, args, out).await
        }
        C::Invite(mut args) => {
            args.user.team_ids = teams(args.user.team_ids).await?;
            admin::invite_user(signed_in, args, out).await
        }
        C::ResendInvite { user_id } => {
            admin::resend_invite(signed_in, named(user_id).await?, out).await
        }
        C::RevokeInvite {
            user_id,
            confirmation,
        } => admin::revoke_invite(signed_in, named(user_id).await?, confirmation, out).await,
        C::Update(mut args) => {
            args.user_id = named(args.user_id).await?;
            args.team_ids = teams(args.team_ids).await?;
            admin::update_user(signed_in, *args, out).await
        }
        C::Suspend(mut args) => {
            args.user_id = named(args.user_id).await?;
            admin::suspend_user(signed_in, args, out).await
        }
        C::Reactivate { user_id } => {
            admin::reactivate_user(signed_in, named(user_id).await?, out).await
        }
        C::Unlock { user_id } => admin::unlock_user(signed_in, named(user_id).await?, out).await,
        C::ResetPassword(mut args) => {
            args.user_id = named(args.user_id).await?;
            admin::reset_password(signed_in, args, out).await
        }
        C::ForcePasswordChange { user_id } => {
            admin::force_password_change(signed_in, named(user_id).await?, out).await
        }
        C::Delete {
            user_id,
            confirmation,
        } => admin::delete_user(signed_in, named(user_id).await?, confirmation, out).await,
        C::Deleted(args) => list_deleted(signed_in, args, out).await,
        C::SetAvatar { user_id, file } => {
            admin::set_avatar(signed_in, named(user_id).await?, file, out).await
        }
        C::GetAvatar { user_id, output } => {
            admin::get_avatar(signed_in, named(user_id).await?, output, out).await
        }
        C::Import(mut args) => {
            args.default_team_ids = teams(args.default_team_ids).await?;
            import::import_users(signed_in, args, out).await
        }
        C::Export(mut filters) => {
            filters.resolve_team(signed_in).await?;
            export::export_users(signed_in, filters).await
        }
    }
}

/// The fields of a new user, invited or created.
#[derive(Args)]
pub struct NewUserArgs {
    /// Email address (cannot be changed later); an invitation goes to it.
    #[arg(long)]
    email: String,
    /// Display name.
    #[arg(long)]
    name: String,
    /// Optional sign-in name, unique in the org.
    #[arg(long)]
    login_id: Option<String>,
    /// Role to grant; repeat for several.
    #[arg(long = "role", value_name = "ROLE", default_value = "agent")]
    roles: Vec<String>,
    /// Team to join, by id or name; repeat for several.
    #[arg(long = "team", value_name = "TEAM")]
    pub(super) team_ids: Vec<String>,
    /// Most chats at once [default: the org's default].
    #[arg(long, value_name = "N")]
    max_chats: Option<u32>,
}

impl From<NewUserArgs> for pb::User {
    fn from(args: NewUserArgs) -> Self {
        pb::User {
            email: args.email,
            display_name: args.name,
            login_id: args.login_id.unwrap_or_default(),
            roles: args.roles,
            team_ids: args.team_ids,
            max_chats: args.max_chats,
            ..Default::default()
        }
    }
}

#[derive(Args)]
pub struct CreateUserArgs {
    #[command(flatten)]
    user: NewUserArgs,
    /// Read the password from the first line of stdin instead of prompting.
    #[arg(long)]
    password_stdin: bool,
    /// Make the user change the password at first sign-in.
    #[arg(long)]
    require_password_change: bool,
    /// Idempotency key: a retry with the same id does not create twice.
    #[arg(long, value_name = "ID")]
    request_id: Option<String>,
}

#[derive(Args)]
pub struct ListDeletedArgs {
    /// Only this user (repeatable).
    #[arg(long = "id", value_name = "USER_ID")]
    user_ids: Vec<String>,
    #[command(flatten)]
    pages: PageArgs,
}

#[derive(Args)]
pub struct ListUsersArgs {
    #[command(flatten)]
    filters: UserFilterArgs,
    #[command(flatten)]
    pages: PageArgs,
}

/// The filters of `users list` and `users export`.
#[derive(Args)]
pub struct UserFilterArgs {
    /// Free text matched against name, email, login id and user id.
    #[arg(long, value_name = "Q")]
    pub query: Option<String>,
    /// Only users holding this role.
    #[arg(long)]
    pub role: Option<String>,
    /// Only members of this team (id or name).
    #[arg(long = "team", value_name = "TEAM")]
    pub team_id: Option<String>,
    /// Only users in this state.
    #[arg(long, value_enum)]
    pub state: Option<StateFilter>,
    /// Only locked (true) or unlocked (false) users.
    #[arg(long, value_name = "true|false")]
    pub locked: Option<bool>,
    /// Only users with this presence status.
    #[arg(long, value_enum, value_name = "STATUS")]
    pub presence: Option<StatusFilter>,
}

impl UserFilterArgs {
    /// Names the team filter by id, whatever the command line named it by.
    async fn resolve_team(&mut self, signed_in: &SignedIn) -> Result<(), CliError> {
        if let Some(team) = self.team_id.take() {
            self.team_id = team_ids_of(signed_in, vec![team]).await?.pop();
        }
        Ok(())
    }
}

impl UserFilterArgs {
    pub fn state(&self) -> i32 {
        self.state.map_or(pb::UserState::Unspecified, Into::into) as i32
    }

    pub fn presence_status(&self) -> i32 {
        self.presence
            .map_or(pb::PresenceStatus::Unspecified, Into::into) as i32
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum StateFilter {
    Invited,
    Active,
    Suspended,
}

impl From<StateFilter> for pb::UserState {
    fn from(state: StateFilter) -> Self {
        match state {
            StateFilter::Invited => Self::Invited,
            StateFilter::Active => Self::Active,
            StateFilter::Suspended => Self::Suspended,
        }
    }
}

pub async fn create_user(
    signed_in: &SignedIn,
    args: CreateUserArgs,
    out: Output,
) -> Result<(), CliError> {
    let password = if args.password_stdin {
        password_from_stdin()?
    } else {
        prompt_new_password()?
    };
    let request = pb::CreateUserRequest {
        user: Some(args.user.into()),
        password,
        request_id: args.request_id.unwrap_or_default(),
        send_welcome_email: false,
        require_password_change: args.require_password_change,
    };
    let user = signed_in
        .users()
        .create_user(request)
        .await?
        .into_inner()
        .user;
    print_user(user, out)
}

pub async fn get_user(signed_in: &SignedIn, user_id: String, out: Output) -> Result<(), CliError> {
    let user = signed_in
        .users()
        .get_user(pb::GetUserRequest { user_id })
        .await?
        .into_inner()
        .user;
    print_user(user, out)
}

pub async fn list_users(
    signed_in: &SignedIn,
    args: ListUsersArgs,
    out: Output,
) -> Result<(), CliError> {
    let filters = args.filters;
    let request = pb::ListUsersRequest {
        page_size: args.pages.size(),
        page_token: String::new(),
        state: filters.state(),
        presence_status: filters.presence_status(),
        query: filters.query.unwrap_or_default(),
        role: filters.role.unwrap_or_default(),
        team_id: filters.team_id.unwrap_or_default(),
        locked: filters.locked,
    };
    let mut client = signed_in.users();
    let (users, next_page_token) = args
        .pages
        .list(request, async |r| client.list_users(r).await)
        .await?;
    let users: Vec<UserView> = users.into_iter().map(UserView::from).collect();
    out.list(&users, "no users match", users_table)?;
    note_next_page(&next_page_token);
    Ok(())
}

/// A tombstone as `users deleted` shows it.
#[derive(Serialize)]
struct DeletedUserView {
    user_id: String,
    email: String,
    display_name: String,
    deleted_at: Option<String>,
    /// Empty when an API key or the system deleted them.
    deleted_by: String,
}

async fn list_deleted(
    signed_in: &SignedIn,
    args: ListDeletedArgs,
    out: Output,
) -> Result<(), CliError> {
    let mut client = signed_in.users();
    let request = pb::ListDeletedUsersRequest {
        user_ids: args.user_ids,
        ..Default::default()
    };
    let (tombstones, next_page_token) = args
        .pages
        .list(request, async |r| client.list_deleted_users(r).await)
        .await?;
    let views: Vec<DeletedUserView> = tombstones
        .into_iter()
        .map(|t| DeletedUserView {
            deleted_at: rfc3339(t.deleted_at.as_ref()),
            user_id: t.user_id,
            email: t.email,
            display_name: t.display_name,
            deleted_by: t.deleted_by,
        })
        .collect();
    out.list(&views, "no deleted users", |views| {
        let mut table = plain_table();
        table.set_header(["ID", "NAME", "EMAIL", "DELETED AT", "DELETED BY"]);
        for v in views {
            table.add_row([
                v.user_id.clone(),
                v.display_name.clone(),
                v.email.clone(),
                v.deleted_at.clone().unwrap_or_else(|| "-".into()),
                dash_if_empty(v.deleted_by.clone()),
            ]);
        }
        table
    })?;
    note_next_page(&next_page_token);
    Ok(())
}

pub fn print_user(user: Option<pb::User>, out: Output) -> Result<(), CliError> {
    let user = user_view(user)?;
    if out.json {
        return out.json(&user);
    }
    emit(render(&key_value_table(user_rows(&user))))
}

/// The user a response must carry.
pub fn user_view(user: Option<pb::User>) -> Result<UserView, CliError> {
    user.map(UserView::from)
        .ok_or_else(|| CliError::msg("the server's response carries no user"))
}

pub fn users_table(users: &[UserView]) -> Table {
    let mut table = plain_table();
    table.set_header([
        "ID", "NAME", "EMAIL", "LOGIN ID", "ROLES", "STATE", "LOCKED",
    ]);
    for user in users {
        table.add_row([
            user.user_id.clone(),
            user.display_name.clone(),
            user.email.clone(),
            dash_if_empty(user.login_id.clone()),
            user.roles.join(","),
            short_state(&user.state).to_owned(),
            yes_no(user.locked).to_owned(),
        ]);
    }
    table
}

/// One user as label and value rows, for a key-value table.
pub fn user_rows(user: &UserView) -> Vec<(&'static str, String)> {
    let max_chats = match user.max_chats {
        Some(n) => n.to_string(),
        None => format!("{} (org default)", user.effective_max_chats),
    };
    let optional = [
        ("PUBLIC NAME", &user.public_name),
        ("LANGUAGE", &user.language),
        ("JOB TITLE", &user.job_title),
        ("LOCATION", &user.location),
        ("LANDLINE", &user.landline_phone),
        ("MOBILE", &user.mobile_phone),
        ("SUSPEND REASON", &user.suspend_reason),
    ];
    let mut rows = vec![
        ("ID", user.user_id.clone()),
        ("NAME", user.display_name.clone()),
        ("EMAIL", user.email.clone()),
        ("LOGIN ID", dash_if_empty(user.login_id.clone())),
        ("STATE", short_state(&user.state).to_owned()),
        ("LOCKED", yes_no(user.locked).to_owned()),
        ("ROLES", user.roles.join(", ")),
        ("TEAMS", dash_if_empty(user.team_ids.join(", "))),
        ("MAX CHATS", max_chats),
    ];
    rows.extend(
        optional
            .into_iter()
            .filter(|(_, value)| !value.is_empty())
            .map(|(label, value)| (label, value.clone())),
    );
    rows.extend([
        (
            "CREATED",
            user.created_at.clone().unwrap_or_else(|| "-".into()),
        ),
        (
            "LAST LOGIN",
            user.last_login_at.clone().unwrap_or_else(|| "-".into()),
        ),
    ]);
    if user.has_avatar {
        rows.push(("AVATAR", "yes".into()));
    }
    if user.password_change_required {
        rows.push(("PASSWORD CHANGE", "required".into()));
    }
    rows
}

/// `USER_STATE_ACTIVE` → `ACTIVE`: the prefix is noise in a table column.
pub fn short_state(state: &str) -> &str {
    state.strip_prefix("USER_STATE_").unwrap_or(state)
}

#[derive(Serialize)]
pub struct UserView {
    pub user_id: String,
    pub email: String,
    pub login_id: String,
    pub display_name: String,
    pub public_name: String,
    pub state: String,
    pub locked: bool,
    pub roles: Vec<String>,
    pub team_ids: Vec<String>,
    pub max_chats: Option<u32>,
    pub effective_max_chats: u32,
    pub etag: String,
    pub login_with: String,
    pub language: String,
    pub landline_phone: String,
    pub mobile_phone: String,
    pub job_title: String,
    pub location: String,
    pub can_view_colleagues_chats: bool,
    pub created_at: Option<String>,
    pub last_login_at: Option<String>,
    pub last_logout_at: Option<String>,
    pub password_change_required: bool,
    pub has_avatar: bool,
    pub suspend_reason: String,
}

impl From<pb::User> for UserView {
    fn from(user: pb::User) -> Self {
        // Exhaustive on purpose: a new field in the proto must be decided on here.
        let pb::User {
            user_id,
            email,
            login_id,
            display_name,
            public_name,
            state,
            locked,
            roles,
            team_ids,
            max_chats,
            effective_max_chats,
            etag,
            login_with,
            language,
            landline_phone,
            mobile_phone,
            job_title,
            location,
            can_view_colleagues_chats,
            created_at,
            last_login_at,
            last_logout_at,
            password_change_required,
            has_avatar,
            suspend_reason,
        } = user;
        Self {
            user_id,
            email,
            login_id,
            display_name,
            public_name,
            state: enum_name(state, pb::UserState::as_str_name),
            locked,
            roles,
            team_ids,
            max_chats,
            effective_max_chats,
            etag,
            login_with: enum_name(login_with, pb::LoginWith::as_str_name),
            language,
            landline_phone,
            mobile_phone,
            job_title,
            location,
            can_view_colleagues_chats,
            created_at: rfc3339(created_at.as_ref()),
            last_login_at: rfc3339(last_login_at.as_ref()),
            last_logout_at: rfc3339(last_logout_at.as_ref()),
            password_change_required,
            has_avatar,
            suspend_reason,
        }
    }
}
