//! Teams: names unique in the org regardless of case, listed by name.

use chrono::Utc;
use serde_json::{Map, Value, json};

use super::{Org, check_etag};
use crate::{
    audit::{self, Action, AuditActor, Origin},
    auth::{Principal, authorize},
    domain::{OrgId, Permission, ProfileText, Team, TeamId, TeamName},
    error::{Error, Reason, Result},
    store::StoreError,
};

const CREATE_TEAM: &str = "CreateTeam";

#[derive(Debug, Clone)]
pub struct NewTeam {
    pub name: TeamName,
    pub description: ProfileText,
}

/// A change to the fields named in an update mask.
#[derive(Debug, Clone)]
pub struct TeamChange {
    pub id: TeamId,
    pub etag: Option<String>,
    pub name: Option<TeamName>,
    pub description: Option<ProfileText>,
}

/// Where a page of teams starts: after this name key and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamPageKey {
    pub name_key: String,
    pub team_id: String,
}

#[derive(Debug, Clone)]
pub struct TeamPage {
    pub teams: Vec<Team>,
    pub next: Option<TeamPageKey>,
}

impl Org {
    pub async fn create_team(
        &self,
        principal: &Principal,
        origin: &Origin,
        new: NewTeam,
        request_id: Option<String>,
    ) -> Result<Team> {
        authorize(principal, Permission::ManageTeams)?;
        let org_id = principal.org_id;
        if let Some(team) = self.replayed_team(org_id, request_id.as_deref()).await? {
            return Ok(team);
        }
        let team = Team {
            id: TeamId::generate(),
            name: new.name,
            description: new.description,
            version: 1,
            created_at: Utc::now(),
        };
        let tx = self.store.write().await?;
        let repo = tx.repo();
        // Serialises team changes in the org, so the case-insensitive name
        // check below cannot race another replica's.
        repo.lock_org(org_id).await?;
        if let Some(request_id) = &request_id {
            match repo
                .insert_idempotency(org_id, CREATE_TEAM, request_id, &team.id.to_string())
                .await
            {
                Err(StoreError::Conflict(_)) => {
                    // A concurrent retry won; answer with its team.
                    drop(tx);
                    return self
                        .replayed_team(org_id, Some(request_id))
                        .await?
                        .ok_or_else(Error::team_not_found);
                }
                other => other?,
            }
        }
        check_name_free(&repo.teams(org_id).await?, &team.name, None)?;
        repo.insert_team(org_id, &team)
            .await
            .map_err(name_conflict)?;
        repo.append_audit(audit::resource_entry(
            org_id,
            AuditActor::from(principal),
            Action::TeamCreate,
            resource(team.id),
            origin,
            json!({ "before": null, "after": fields(&team) }),
        ))
        .await?;
        // Read back, so the answer carries the stored timestamp precision.
        let created = repo
            .team(org_id, team.id)
            .await?
            .ok_or_else(Error::team_not_found)?;
        tx.commit().await?;
        Ok(created)
    }

    async fn replayed_team(&self, org_id: OrgId, request_id: Option<&str>) -> Result<Option<Team>> {
        let Some(id) = self.replayed(org_id, CREATE_TEAM, request_id).await? else {
            return Ok(None);
        };
        let id = TeamId::parse(&id).map_err(Error::internal)?;
        // Deleted since: the retry has nothing to return.
        self.store
            .read()
            .team(org_id, id)
            .await?
            .map(Some)
            .ok_or_else(Error::team_not_found)
    }

    /// A page of the org's teams ordered by name (case-insensitive), then id.
    /// Orgs have few teams, so they are sorted here rather than in SQL, which
    /// keeps the order identical on both databases.
    pub async fn list_teams(
        &self,
        principal: &Principal,
        after: Option<TeamPageKey>,
        page_size: u64,
    ) -> Result<TeamPage> {
        let mut keyed: Vec<(TeamPageKey, Team)> = self
            .store
            .read()
            .teams(principal.org_id)
            .await?
            .into_iter()
            .map(|team| {
                let key = TeamPageKey {
                    name_key: team.name.unique_key(),
                    team_id: team.id.to_string(),
                };
                (key, team)
            })
            .collect();
        keyed.sort_by(|(a, _), (b, _)| (&a.name_key, &a.team_id).cmp(&(&b.name_key, &b.team_id)));
        let start = match &after {
            Some(after) => keyed.partition_point(|(key, _)| {
                (&key.name_key, &key.team_id) <= (&after.name_key, &after.team_id)
            }),
            None => 0,
        };
        let mut page: Vec<(TeamPageKey, Team)> = keyed
            .into_iter()
            .skip(start)
            .take(page_size as usize + 1)
            .collect();
        let next = if page.len() as u64 > page_size {
            page.truncate(page_size as usize);
            page.last().map(|(key, _)| key.clone())
        } else {
            None
        };
        Ok(TeamPage {
            teams: page.into_iter().map(|(_, team)| team).collect(),
            next,
        })
    }

    pub async fn update_team(
        &self,
        principal: &Principal,
        origin: &Origin,
        change: TeamChange,
    ) -> Result<Team> {
        authorize(principal, Permission::ManageTeams)?;
        let org_id = principal.org_id;
        let tx = self.store.write().await?;
        let repo = tx.repo();
        repo.lock_org(org_id).await?;
        let current = repo
            .team(org_id, change.id)
            .await?
            .ok_or_else(Error::team_not_found)?;
        check_etag(change.etag.as_deref(), current.version)?;
        let mut next = current.clone();
        if let Some(name) = change.name {
            if name.unique_key() != current.name.unique_key() {
                check_name_free(&repo.teams(org_id).await?, &name, Some(current.id))?;
            }
            next.name = name;
        }
        if let Some(description) = change.description {
            next.description = description;
        }
        let (before, after) = diff(&fields(&current), &fields(&next));
        if before.is_empty() {
            return Ok(current);
        }
        if !repo
            .update_team(org_id, &next)
            .await
            .map_err(name_conflict)?
        {
            return Err(Error::concurrent_change());
        }
        repo.append_audit(audit::resource_entry(
            org_id,
            AuditActor::from(principal),
            Action::TeamUpdate,
            resource(current.id),
            origin,
            json!({ "before": before, "after": after }),
        ))
        .await?;
        let updated = repo
            .team(org_id, current.id)
            .await?
            .ok_or_else(Error::team_not_found)?;
        tx.commit().await?;
        Ok(updated)
    }

    /// Deletes a team. While it has members this is refused with their count,
    /// unless `detach_members` says to take them out of it.
    pub async fn delete_team(
        &self,
        principal: &Principal,
        origin: &Origin,
        id: TeamId,
        etag: Option<String>,
        detach_members: bool,
    ) -> Result<()> {
        authorize(principal, Permission::ManageTeams)?;
        let org_id = principal.org_id;
        let tx = self.store.write().await?;
        let repo = tx.repo();
        repo.lock_org(org_id).await?;
        let team = repo
            .team(org_id, id)
            .await?
            .ok_or_else(Error::team_not_found)?;
        check_etag(etag.as_deref(), team.version)?;
        let members = repo.team_member_count(id).await?;
        if members > 0 && !detach_members {
            return Err(Error::FailedPrecondition {
                reason: Reason::TeamInUse,
                message: format!(
                    "the team has {members} member(s); remove them first or set detach_members"
                ),
                metadata: vec![("members", members.to_string())],
            });
        }
        repo.delete_team(org_id, id).await?;
        repo.append_audit(audit::resource_entry(
            org_id,
            AuditActor::from(principal),
            Action::TeamDelete,
            resource(id),
            origin,
            json!({ "before": fields(&team), "after": null, "detached_members": members }),
        ))
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Refuses a name another of the org's `teams` has, whatever its case.
fn check_name_free(teams: &[Team], name: &TeamName, except: Option<TeamId>) -> Result<()> {
    let key = name.unique_key();
    let taken = teams
        .iter()
        .any(|t| Some(t.id) != except && t.name.unique_key() == key);
    if taken {
        return Err(name_taken());
    }
    Ok(())
}

fn name_taken() -> Error {
    Error::AlreadyExists {
        reason: Reason::TeamNameTaken,
        message: "another team of the org has this name".into(),
    }
}

/// The unique index is a backstop for the check above.
fn name_conflict(err: StoreError) -> Error {
    match err {
        StoreError::Conflict(_) => name_taken(),
        other => other.into(),
    }
}

fn resource(id: TeamId) -> String {
    format!("teams/{id}")
}

fn fields(team: &Team) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("name".into(), json!(team.name.as_str()));
    map.insert("description".into(), json!(team.description.as_str()));
    map
}

/// The entries whose values differ: (old values, new values).
pub(super) fn diff(
    old: &Map<String, Value>,
    new: &Map<String, Value>,
) -> (Map<String, Value>, Map<String, Value>) {
    let mut before = Map::new();
    let mut after = Map::new();
    for (field, value) in new {
        let previous = old.get(field).cloned().unwrap_or(Value::Null);
        if &previous != value {
            before.insert(field.clone(), previous);
            after.insert(field.clone(), value.clone());
        }
    }
    (before, after)
}
