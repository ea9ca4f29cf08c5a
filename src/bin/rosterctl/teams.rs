//! `teams …`: list, create, update and delete the org's teams.

use clap::Subcommand;
use roster::api::pb;
use serde::Serialize;

use crate::{
    error::CliError,
    output::{Output, dash_if_empty, emit, key_value_table, plain_table, render, rfc3339},
    paging::{PageArgs, note_next_page},
    prompt::{Confirmation, confirm},
    session::SignedIn,
};

#[derive(Subcommand)]
pub enum TeamsCommand {
    /// List the org's teams, by name.
    List(PageArgs),
    /// Create a team.
    Create {
        /// Name, unique in the org.
        #[arg(long)]
        name: String,
        /// Free-text description.
        #[arg(long)]
        description: Option<String>,
        /// Idempotency key: a retry with the same id does not create twice.
        #[arg(long, value_name = "ID")]
        request_id: Option<String>,
    },
    /// Change a team's name or description.
    Update {
        /// Id of the team.
        team_id: String,
        /// Fail with ABORTED if the team changed since this etag was read
        /// [default: update regardless].
        #[arg(long)]
        etag: Option<String>,
        /// New name.
        #[arg(long)]
        name: Option<String>,
        /// New description ("" for none).
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete a team; one with members is refused unless --detach.
    Delete {
        /// Id of the team.
        team_id: String,
        /// Fail with ABORTED if the team changed since this etag was read.
        #[arg(long)]
        etag: Option<String>,
        /// Delete even if the team has members: they stay, and just leave it.
        #[arg(long)]
        detach: bool,
        #[command(flatten)]
        confirmation: Confirmation,
    },
}

/// Runs one `teams` subcommand.
pub async fn run(signed_in: &SignedIn, command: TeamsCommand, out: Output) -> Result<(), CliError> {
    match command {
        TeamsCommand::List(pages) => list_teams(signed_in, pages, out).await,
        TeamsCommand::Create {
            name,
            description,
            request_id,
        } => {
            let team = signed_in
                .org()
                .create_team(pb::CreateTeamRequest {
                    team: Some(pb::Team {
                        name,
                        description: description.unwrap_or_default(),
                        ..Default::default()
                    }),
                    request_id: request_id.unwrap_or_default(),
                })
                .await?
                .into_inner()
                .team;
            print_team(team, out)
        }
        TeamsCommand::Update {
            team_id,
            etag,
            name,
            description,
        } => {
            let mut team = pb::Team {
                team_id,
                etag: etag.unwrap_or_default(),
                ..Default::default()
            };
            let mut paths = Vec::new();
            if let Some(name) = name {
                paths.push("name".to_owned());
                team.name = name;
            }
            if let Some(description) = description {
                paths.push("description".to_owned());
                team.description = description;
            }
            if paths.is_empty() {
                return Err(CliError::msg(
                    "nothing to change: give --name, --description or both",
                ));
            }
            let team = signed_in
                .org()
                .update_team(pb::UpdateTeamRequest {
                    team: Some(team),
                    update_mask: Some(prost_types::FieldMask { paths }),
                })
                .await?
                .into_inner()
                .team;
            print_team(team, out)
        }
        TeamsCommand::Delete {
            team_id,
            etag,
            detach,
            confirmation,
        } => {
            let request = pb::DeleteTeamRequest {
                team_id,
                etag: etag.unwrap_or_default(),
                detach_members: detach,
            };
            delete_team(signed_in, request, confirmation, out).await
        }
    }
}

async fn list_teams(signed_in: &SignedIn, pages: PageArgs, out: Output) -> Result<(), CliError> {
    let (teams, next_page_token) = fetch_teams(signed_in, &pages).await?;
    let teams: Vec<TeamView> = teams.into_iter().map(TeamView::from).collect();
    out.list(&teams, "no teams", |teams| {
        let mut table = plain_table();
        table.set_header(["ID", "NAME", "DESCRIPTION"]);
        for team in teams {
            table.add_row([
                team.team_id.clone(),
                team.name.clone(),
                dash_if_empty(team.description.clone()),
            ]);
        }
        table
    })?;
    note_next_page(&next_page_token);
    Ok(())
}

/// The ids of the teams `names` name, in order: each an id or a team's name
/// (case-insensitive, as the import CSV names teams). One listing of the
/// org's teams, only when a name is given.
pub async fn team_ids_of(
    signed_in: &SignedIn,
    names: Vec<String>,
) -> Result<Vec<String>, CliError> {
    if names.is_empty() {
        return Ok(names);
    }
    let (teams, _) = fetch_teams(signed_in, &PageArgs::every()).await?;
    names
        .into_iter()
        .map(|name| {
            let wanted = name.trim().to_lowercase();
            teams
                .iter()
                .find(|t| t.team_id == name)
                .or_else(|| teams.iter().find(|t| t.name.to_lowercase() == wanted))
                .map(|t| t.team_id.clone())
                .ok_or_else(|| CliError::msg(format!("no team has the id or name {name:?}")))
        })
        .collect()
}

async fn fetch_teams(
    signed_in: &SignedIn,
    pages: &PageArgs,
) -> Result<(Vec<pb::Team>, String), CliError> {
    let mut client = signed_in.org();
    pages
        .list(pb::ListTeamsRequest::default(), async |r| {
            client.list_teams(r).await
        })
        .await
}

async fn delete_team(
    signed_in: &SignedIn,
    request: pb::DeleteTeamRequest,
    confirmation: Confirmation,
    out: Output,
) -> Result<(), CliError> {
    let team_id = request.team_id.clone();
    let mut name = None;
    if confirmation.needed(&format!("delete team {team_id}"))? {
        // There is no GetTeam: find the team's name in the list. A team
        // that is not there is left for the server to call NOT_FOUND.
        let (teams, _) = fetch_teams(signed_in, &PageArgs::every()).await?;
        if let Some(team) = teams.into_iter().find(|t| t.team_id == team_id) {
            let members = if request.detach_members {
                " Its members stay, they just leave it."
            } else {
                ""
            };
            confirm(&format!("Delete team {}?{members}", team.name))?;
            name = Some(team.name);
        }
    }
    signed_in.org().delete_team(request).await?;
    if out.json {
        return out.json(&serde_json::json!({ "deleted": true, "team_id": team_id }));
    }
    emit(format!("Deleted team {}.", name.unwrap_or(team_id)))
}

fn print_team(team: Option<pb::Team>, out: Output) -> Result<(), CliError> {
    let team = team
        .map(TeamView::from)
        .ok_or_else(|| CliError::msg("the server's response carries no team"))?;
    if out.json {
        return out.json(&team);
    }
    emit(render(&key_value_table(vec![
        ("ID", team.team_id),
        ("NAME", team.name),
        ("DESCRIPTION", dash_if_empty(team.description)),
        ("CREATED", team.created_at.unwrap_or_else(|| "-".into())),
    ])))
}

#[derive(Serialize)]
struct TeamView {
    team_id: String,
    name: String,
    description: String,
    etag: String,
    created_at: Option<String>,
}

impl From<pb::Team> for TeamView {
    fn from(team: pb::Team) -> Self {
        let pb::Team {
            team_id,
            name,
            description,
            etag,
            created_at,
        } = team;
        Self {
            team_id,
            name,
            description,
            etag,
            created_at: rfc3339(created_at.as_ref()),
        }
    }
}
