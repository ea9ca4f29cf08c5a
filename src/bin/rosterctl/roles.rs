//! `roles …`: list the org's roles; create, update and delete custom ones.

use clap::Subcommand;
use roster::api::pb;
use serde::Serialize;

use crate::{
    error::CliError,
    output::{Output, dash_if_empty, emit, key_value_table, plain_table, render, shorten, yes_no},
    paging::{PageArgs, note_next_page},
    prompt::{Confirmation, confirm},
    session::SignedIn,
};

#[derive(Subcommand)]
pub enum RolesCommand {
    /// List the org's roles, built-in and custom, by name.
    List(PageArgs),
    /// Create a custom role.
    Create {
        /// Name and id: lowercase letters, digits, "_" and "-", starting
        /// with a letter, e.g. compliance. Cannot be changed.
        #[arg(long)]
        name: String,
        /// Free-text description.
        #[arg(long)]
        description: Option<String>,
        /// Permission to grant, e.g. users.read; repeat for several.
        #[arg(long = "permission", value_name = "PERMISSION")]
        permissions: Vec<String>,
        /// Idempotency key: a retry with the same id does not create twice.
        #[arg(long, value_name = "ID")]
        request_id: Option<String>,
    },
    /// Change a custom role's description or permissions.
    Update {
        /// Name of the custom role.
        name: String,
        /// Fail with ABORTED if the role changed since this etag was read
        /// [default: update regardless].
        #[arg(long)]
        etag: Option<String>,
        /// New description ("" for none).
        #[arg(long)]
        description: Option<String>,
        /// Permission to grant; repeat for several. Replaces all the role's
        /// permissions.
        #[arg(
            long = "permission",
            value_name = "PERMISSION",
            conflicts_with = "clear_permissions"
        )]
        permissions: Vec<String>,
        /// Take every permission away from the role.
        #[arg(long)]
        clear_permissions: bool,
    },
    /// Delete a custom role; one that users hold is refused unless --detach.
    Delete {
        /// Name of the custom role.
        name: String,
        /// Fail with ABORTED if the role changed since this etag was read.
        #[arg(long)]
        etag: Option<String>,
        /// Delete even if users hold the role: it is taken from them.
        #[arg(long)]
        detach: bool,
        #[command(flatten)]
        confirmation: Confirmation,
    },
}

/// Runs one `roles` subcommand.
pub async fn run(signed_in: &SignedIn, command: RolesCommand, out: Output) -> Result<(), CliError> {
    match command {
        RolesCommand::List(pages) => list_roles(signed_in, pages, out).await,
        RolesCommand::Create {
            name,
            description,
            permissions,
            request_id,
        } => {
            let role = signed_in
                .org()
                .create_role(pb::CreateRoleRequest {
                    role: Some(pb::Role {
                        name,
                        description: description.unwrap_or_default(),
                        permissions,
                        ..Default::default()
                    }),
                    request_id: request_id.unwrap_or_default(),
                })
                .await?
                .into_inner()
                .role;
            print_role(role, out)
        }
        RolesCommand::Update {
            name,
            etag,
            description,
            permissions,
            clear_permissions,
        } => {
            let mut role = pb::Role {
                name,
                etag: etag.unwrap_or_default(),
                ..Default::default()
            };
            let mut paths = Vec::new();
            if let Some(description) = description {
                paths.push("description".to_owned());
                role.description = description;
            }
            if !permissions.is_empty() || clear_permissions {
                paths.push("permissions".to_owned());
                role.permissions = permissions;
            }
            if paths.is_empty() {
                return Err(CliError::msg(
                    "nothing to change: give --description, --permission or --clear-permissions",
                ));
            }
            let role = signed_in
                .org()
                .update_role(pb::UpdateRoleRequest {
                    role: Some(role),
                    update_mask: Some(prost_types::FieldMask { paths }),
                })
                .await?
                .into_inner()
                .role;
            print_role(role, out)
        }
        RolesCommand::Delete {
            name,
            etag,
            detach,
            confirmation,
        } => {
            if confirmation.needed(&format!("delete role {name}"))? {
                let holders = if detach {
                    " Users who hold it lose it."
                } else {
                    ""
                };
                confirm(&format!("Delete role {name}?{holders}"))?;
            }
            signed_in
                .org()
                .delete_role(pb::DeleteRoleRequest {
                    name: name.clone(),
                    etag: etag.unwrap_or_default(),
                    detach_holders: detach,
                })
                .await?;
            if out.json {
                return out.json(&serde_json::json!({ "deleted": true, "name": name }));
            }
            emit(format!("Deleted role {name}."))
        }
    }
}

/// Longest permission list shown in a table cell; `--json` has them all.
const PERMISSIONS_WIDTH: usize = 60;

async fn list_roles(signed_in: &SignedIn, pages: PageArgs, out: Output) -> Result<(), CliError> {
    let mut client = signed_in.org();
    let (roles, next_page_token) = pages
        .list(pb::ListRolesRequest::default(), async |r| {
            client.list_roles(r).await
        })
        .await?;
    let roles: Vec<RoleView> = roles.into_iter().map(RoleView::from).collect();
    out.list(&roles, "no roles", |roles| {
        let mut table = plain_table();
        table.set_header(["NAME", "BUILT-IN", "PERMISSIONS", "DESCRIPTION"]);
        for role in roles {
            table.add_row([
                role.name.clone(),
                yes_no(role.built_in).to_owned(),
                shorten(&role.permissions.join(","), PERMISSIONS_WIDTH),
                dash_if_empty(role.description.clone()),
            ]);
        }
        table
    })?;
    note_next_page(&next_page_token);
    Ok(())
}

fn print_role(role: Option<pb::Role>, out: Output) -> Result<(), CliError> {
    let role = role
        .map(RoleView::from)
        .ok_or_else(|| CliError::msg("the server's response carries no role"))?;
    if out.json {
        return out.json(&role);
    }
    emit(render(&key_value_table(vec![
        ("NAME", role.name),
        ("BUILT-IN", yes_no(role.built_in).to_owned()),
        ("DESCRIPTION", dash_if_empty(role.description)),
        ("PERMISSIONS", dash_if_empty(role.permissions.join("\n"))),
    ])))
}

#[derive(Serialize)]
struct RoleView {
    name: String,
    description: String,
    permissions: Vec<String>,
    built_in: bool,
    etag: String,
}

impl From<pb::Role> for RoleView {
    fn from(role: pb::Role) -> Self {
        let pb::Role {
            name,
            description,
            permissions,
            built_in,
            etag,
        } = role;
        Self {
            name,
            description,
            permissions,
            built_in,
            etag,
        }
    }
}
