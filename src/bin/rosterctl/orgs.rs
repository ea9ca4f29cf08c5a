//! `orgs …`: tenants, for the platform's operators, with a platform API
//! key (`$ROSTER_PLATFORM_KEY`) instead of a session. An org is named by
//! its id or its slug.

use clap::{Subcommand, ValueEnum};
use roster::api::pb;
use serde::Serialize;

use crate::{
    error::CliError,
    output::{
        Output, dash_if_empty, emit, enum_name, key_value_table, note, plain_table, render,
        rfc3339, shorten,
    },
    paging::{PageArgs, note_next_page},
    prompt::{Confirmation, confirm, password_from_stdin},
    session::PlatformConnection,
};

#[derive(Subcommand)]
pub enum OrgsCommand {
    /// Create an org and its first admin (invited by email, or created with
    /// a password read from stdin).
    Create {
        /// What people type to sign in: lower-case letters, digits and '-'.
        #[arg(long)]
        slug: String,
        /// The org's name.
        #[arg(long)]
        name: String,
        /// Most INVITED and ACTIVE users; 0 or unset means no limit.
        #[arg(long, value_name = "N", default_value_t = 0)]
        seat_limit: u32,
        /// Email of the first admin.
        #[arg(long)]
        admin_email: String,
        /// Name of the first admin.
        #[arg(long)]
        admin_name: String,
        /// Create the admin ACTIVE with the password on stdin's first line,
        /// instead of inviting them.
        #[arg(long)]
        admin_password_stdin: bool,
        /// Idempotency key: a retry with the same id does not create twice.
        #[arg(long, value_name = "ID")]
        request_id: Option<String>,
    },
    /// Show an org.
    Get {
        /// Org id or slug.
        org: String,
    },
    /// List orgs in slug order.
    List {
        /// Only slugs starting with this.
        #[arg(long, value_name = "PREFIX")]
        slug_prefix: Option<String>,
        /// Only orgs in this state.
        #[arg(long, value_enum)]
        state: Option<StateArg>,
        #[command(flatten)]
        pages: PageArgs,
    },
    /// Change an org's name or seat limit.
    Update {
        /// Org id or slug.
        org: String,
        #[arg(long)]
        name: Option<String>,
        /// 0 removes the limit.
        #[arg(long, value_name = "N")]
        seat_limit: Option<u32>,
        /// Fail if the org changed since it was read with this etag.
        #[arg(long)]
        etag: Option<String>,
    },
    /// Suspend an org: its sessions end, its users go OFFLINE, its keys and
    /// streams stop working; its data stays.
    Suspend {
        /// Org id or slug.
        org: String,
        /// Why (at most 150 characters), kept on the org and audited.
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        confirmation: Confirmation,
    },
    /// Reactivate a suspended org.
    Reactivate {
        /// Org id or slug.
        org: String,
    },
    /// Delete a suspended org and everything it holds, for good.
    Delete {
        /// Org id or slug.
        org: String,
        #[command(flatten)]
        confirmation: Confirmation,
    },
    /// The platform audit log, newest first.
    Audit {
        /// Only events about this org (id or slug; a deleted org by id).
        #[arg(long)]
        org: Option<String>,
        /// Only this action, e.g. org.suspend.
        #[arg(long)]
        action: Option<String>,
        #[command(flatten)]
        pages: PageArgs,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum StateArg {
    Active,
    Suspended,
}

pub async fn run(
    conn: &PlatformConnection,
    command: OrgsCommand,
    out: Output,
) -> Result<(), CliError> {
    match command {
        OrgsCommand::Create {
            slug,
            name,
            seat_limit,
            admin_email,
            admin_name,
            admin_password_stdin,
            request_id,
        } => {
            let admin_password = if admin_password_stdin {
                password_from_stdin()?
            } else {
                String::new()
            };
            let created = conn
                .platform()
                .create_org(pb::CreateOrgRequest {
                    slug,
                    display_name: name,
                    seat_limit,
                    admin: Some(pb::NewOrgAdmin {
                        email: admin_email,
                        display_name: admin_name,
                    }),
                    admin_password,
                    request_id: request_id.unwrap_or_default(),
                })
                .await?
                .into_inner();
            let org = view(created.org)?;
            let admin = created.admin.unwrap_or_default();
            let invite_expires_at = rfc3339(created.invite_expires_at.as_ref());
            if out.json {
                #[derive(Serialize)]
                struct Created {
                    org: OrgView,
                    admin_user_id: String,
                    admin_email: String,
                    invite_expires_at: Option<String>,
                }
                return out.json(&Created {
                    org,
                    admin_user_id: admin.user_id,
                    admin_email: admin.email,
                    invite_expires_at,
                });
            }
            match &invite_expires_at {
                Some(at) => note(format!(
                    "{} is invited by email; the link expires {at}",
                    admin.email
                )),
                None => note(format!(
                    "{} can sign in now: rosterctl login --org {} --login {}",
                    admin.email, org.slug, admin.email
                )),
            }
            emit(render(&key_value_table(org_rows(&org))))
        }
        OrgsCommand::Get { org } => {
            let org_id = resolve(conn, &org).await?;
            let org = conn
                .platform()
                .get_org(pb::GetOrgRequest { org_id })
                .await?
                .into_inner()
                .org;
            show(view(org)?, out)
        }
        OrgsCommand::List {
            slug_prefix,
            state,
            pages,
        } => list(conn, slug_prefix.unwrap_or_default(), state, pages, out).await,
        OrgsCommand::Update {
            org,
            name,
            seat_limit,
            etag,
        } => {
            let mut paths = Vec::new();
            if name.is_some() {
                paths.push("display_name".to_owned());
            }
            if seat_limit.is_some() {
                paths.push("seat_limit".to_owned());
            }
            if paths.is_empty() {
                return Err(CliError::msg(
                    "nothing to change: pass --name or --seat-limit",
                ));
            }
            let org_id = resolve(conn, &org).await?;
            let org = conn
                .platform()
                .update_org(pb::UpdateOrgRequest {
                    org: Some(pb::Org {
                        org_id,
                        display_name: name.unwrap_or_default(),
                        seat_limit: seat_limit.unwrap_or_default(),
                        etag: etag.unwrap_or_default(),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask { paths }),
                })
                .await?
                .into_inner()
                .org;
            show(view(org)?, out)
        }
        OrgsCommand::Suspend {
            org,
            reason,
            confirmation,
        } => {
            if confirmation.needed(&format!("suspend org {org}"))? {
                confirm(&format!(
                    "Suspend org {org}? Its users are signed out and its keys stop working."
                ))?;
            }
            let org_id = resolve(conn, &org).await?;
            let org = conn
                .platform()
                .suspend_org(pb::SuspendOrgRequest { org_id, reason })
                .await?
                .into_inner()
                .org;
            show(view(org)?, out)
        }
        OrgsCommand::Reactivate { org } => {
            let org_id = resolve(conn, &org).await?;
            let org = conn
                .platform()
                .reactivate_org(pb::ReactivateOrgRequest { org_id })
                .await?
                .into_inner()
                .org;
            show(view(org)?, out)
        }
        OrgsCommand::Delete { org, confirmation } => {
            if confirmation.needed(&format!("delete org {org}"))? {
                confirm(&format!(
                    "Delete org {org} and all of its users, teams, keys and history, for good?"
                ))?;
            }
            let org_id = resolve(conn, &org).await?;
            let removed = conn
                .platform()
                .delete_org(pb::DeleteOrgRequest {
                    org_id: org_id.clone(),
                })
                .await?
                .into_inner()
                .users_removed;
            if out.json {
                #[derive(Serialize)]
                struct Deleted {
                    org_id: String,
                    users_removed: u64,
                }
                return out.json(&Deleted {
                    org_id,
                    users_removed: removed,
                });
            }
            emit(format!(
                "Deleted org {org} ({org_id}) and its {removed} users."
            ))
        }
        OrgsCommand::Audit { org, action, pages } => {
            let org_id = match org {
                Some(org) => resolve(conn, &org).await?,
                None => String::new(),
            };
            audit(conn, org_id, action.unwrap_or_default(), pages, out).await
        }
    }
}

/// The id of an org named by id or by slug.
async fn resolve(conn: &PlatformConnection, org: &str) -> Result<String, CliError> {
    if uuid::Uuid::parse_str(org).is_ok() {
        return Ok(org.to_owned());
    }
    let slug = org.trim().to_lowercase();
    let orgs = conn
        .platform()
        .list_orgs(pb::ListOrgsRequest {
            page_size: 1,
            slug_prefix: slug.clone(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .orgs;
    orgs.into_iter()
        .find(|o| o.slug == slug)
        .map(|o| o.org_id)
        .ok_or_else(|| CliError::msg(format!("no org has the slug {slug:?}")))
}

async fn list(
    conn: &PlatformConnection,
    slug_prefix: String,
    state: Option<StateArg>,
    pages: PageArgs,
    out: Output,
) -> Result<(), CliError> {
    let state = match state {
        None => pb::OrgState::Unspecified,
        Some(StateArg::Active) => pb::OrgState::Active,
        Some(StateArg::Suspended) => pb::OrgState::Suspended,
    };
    let mut client = conn.platform();
    let request = pb::ListOrgsRequest {
        slug_prefix,
        state: state.into(),
        ..Default::default()
    };
    let (orgs, next) = pages
        .list(request, async |r| client.list_orgs(r).await)
        .await?;
    let orgs: Vec<OrgView> = orgs.into_iter().map(OrgView::from).collect();
    out.list(&orgs, "no orgs", |orgs| {
        let mut table = plain_table();
        table.set_header(["ID", "SLUG", "NAME", "STATE", "SEATS", "CREATED"]);
        for org in orgs {
            table.add_row([
                org.org_id.clone(),
                org.slug.clone(),
                shorten(&org.display_name, 32),
                org.state.clone(),
                seats(org),
                org.created_at.clone().unwrap_or_else(|| "-".into()),
            ]);
        }
        table
    })?;
    note_next_page(&next);
    Ok(())
}

async fn audit(
    conn: &PlatformConnection,
    org_id: String,
    action: String,
    pages: PageArgs,
    out: Output,
) -> Result<(), CliError> {
    let mut client = conn.platform();
    let request = pb::ListPlatformAuditEventsRequest {
        org_id,
        action,
        ..Default::default()
    };
    let (events, next) = pages
        .list(request, async |r| {
            client.list_platform_audit_events(r).await
        })
        .await?;
    let events: Vec<EventView> = events.into_iter().map(EventView::from).collect();
    out.list(&events, "no platform audit events", |events| {
        let mut table = plain_table();
        table.set_header(["TIME", "ACTION", "ORG", "ACTOR", "DETAILS"]);
        for event in events {
            table.add_row([
                event.time.clone().unwrap_or_else(|| "-".into()),
                event.action.clone(),
                dash_if_empty(event.org_slug.clone()),
                format!("{} {}", event.actor_kind, event.actor_id)
                    .trim()
                    .to_owned(),
                shorten(&event.details_json, 60),
            ]);
        }
        table
    })?;
    note_next_page(&next);
    Ok(())
}

fn view(org: Option<pb::Org>) -> Result<OrgView, CliError> {
    org.map(OrgView::from)
        .ok_or_else(|| CliError::msg("the server's response carries no org"))
}

fn show(org: OrgView, out: Output) -> Result<(), CliError> {
    if out.json {
        return out.json(&org);
    }
    emit(render(&key_value_table(org_rows(&org))))
}

fn seats(org: &OrgView) -> String {
    match org.seat_limit {
        0 => format!("{} (no limit)", org.seats_used),
        limit => format!("{}/{limit}", org.seats_used),
    }
}

fn org_rows(org: &OrgView) -> Vec<(&'static str, String)> {
    let mut rows = vec![
        ("ID", org.org_id.clone()),
        ("SLUG", org.slug.clone()),
        ("NAME", org.display_name.clone()),
        ("STATE", org.state.clone()),
        ("SEATS", seats(org)),
        (
            "CREATED",
            org.created_at.clone().unwrap_or_else(|| "-".into()),
        ),
    ];
    if let Some(at) = &org.suspended_at {
        rows.push(("SUSPENDED", at.clone()));
        rows.push(("REASON", dash_if_empty(org.suspend_reason.clone())));
    }
    rows.push(("ETAG", org.etag.clone()));
    rows
}

#[derive(Serialize)]
struct OrgView {
    org_id: String,
    slug: String,
    display_name: String,
    state: String,
    seat_limit: u32,
    seats_used: u32,
    created_at: Option<String>,
    suspended_at: Option<String>,
    suspend_reason: String,
    etag: String,
}

impl From<pb::Org> for OrgView {
    fn from(org: pb::Org) -> Self {
        let pb::Org {
            org_id,
            slug,
            display_name,
            state,
            seat_limit,
            seats_used,
            created_at,
            suspended_at,
            suspend_reason,
            etag,
        } = org;
        Self {
            org_id,
            slug,
            display_name,
            state: enum_name(state, pb::OrgState::as_str_name),
            seat_limit,
            seats_used,
            created_at: rfc3339(created_at.as_ref()),
            suspended_at: rfc3339(suspended_at.as_ref()),
            suspend_reason,
            etag,
        }
    }
}

#[derive(Serialize)]
struct EventView {
    event_id: String,
    time: Option<String>,
    actor_kind: String,
    actor_id: String,
    action: String,
    org_id: String,
    org_slug: String,
    request_id: String,
    details_json: String,
    peer_address: String,
}

impl From<pb::PlatformAuditEvent> for EventView {
    fn from(event: pb::PlatformAuditEvent) -> Self {
        Self {
            event_id: event.event_id,
            time: rfc3339(event.time.as_ref()),
            actor_kind: enum_name(event.actor_kind, pb::PlatformActorKind::as_str_name),
            actor_id: event.actor_id,
            action: event.action,
            org_id: event.org_id,
            org_slug: event.org_slug,
            request_id: event.request_id,
            details_json: event.details_json,
            peer_address: event.peer_address,
        }
    }
}
