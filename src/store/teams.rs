//! Teams and their memberships.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, ExprTrait, PaginatorTrait,
    QueryFilter, QuerySelect, sea_query::Expr,
};

use super::{
    Change, Repo, StoreError, corrupt,
    entities::{team_members, teams, users},
};
use crate::domain::{OrgId, ProfileText, Team, TeamId, TeamName};

impl<C: ConnectionTrait> Repo<'_, C> {
    /// Which of `ids` are teams of the org.
    pub async fn existing_teams(
        &self,
        org_id: OrgId,
        ids: &[TeamId],
    ) -> Result<Vec<TeamId>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        teams::Entity::find()
            .select_only()
            .column(teams::Column::Id)
            .filter(teams::Column::OrgId.eq(org_id.to_string()))
            .filter(teams::Column::Id.is_in(ids.iter().map(ToString::to_string)))
            .into_tuple::<String>()
            .all(self.conn())
            .await?
            .iter()
            .map(|id| TeamId::parse(id).map_err(corrupt))
            .collect()
    }

    /// Every team of the org, in no particular order.
    pub async fn teams(&self, org_id: OrgId) -> Result<Vec<Team>, StoreError> {
        teams::Entity::find()
            .filter(teams::Column::OrgId.eq(org_id.to_string()))
            .all(self.conn())
            .await?
            .into_iter()
            .map(team)
            .collect()
    }

    /// The team, if it is one of the org's.
    pub async fn team(&self, org_id: OrgId, id: TeamId) -> Result<Option<Team>, StoreError> {
        teams::Entity::find_by_id(id.to_string())
            .filter(teams::Column::OrgId.eq(org_id.to_string()))
            .one(self.conn())
            .await?
            .map(team)
            .transpose()
    }

    pub async fn insert_team(&self, org_id: OrgId, team: &Team) -> Result<(), StoreError> {
        teams::Entity::insert(teams::ActiveModel {
            id: Set(team.id.to_string()),
            org_id: Set(org_id.to_string()),
            name: Set(team.name.as_str().to_owned()),
            description: Set(team.description.as_str().to_owned()),
            version: Set(team.version),
            created_at: Set(team.created_at),
        })
        .exec_without_returning(self.conn())
        .await?;
        Ok(())
    }

    /// Writes name and description and bumps the version, if the stored
    /// version is still `team.version`; false when a concurrent change won.
    pub async fn update_team(&self, org_id: OrgId, team: &Team) -> Result<bool, StoreError> {
        let result = teams::Entity::update_many()
            .col_expr(teams::Column::Name, Expr::value(team.name.as_str()))
            .col_expr(
                teams::Column::Description,
                Expr::value(team.description.as_str()),
            )
            .col_expr(teams::Column::Version, Expr::value(team.version + 1))
            .filter(teams::Column::Id.eq(team.id.to_string()))
            .filter(teams::Column::OrgId.eq(org_id.to_string()))
            .filter(teams::Column::Version.eq(team.version))
            .exec(self.conn())
            .await?;
        Ok(result.rows_affected == 1)
    }

    pub async fn team_member_count(&self, id: TeamId) -> Result<u64, StoreError> {
        Ok(team_members::Entity::find()
            .filter(team_members::Column::TeamId.eq(id.to_string()))
            .count(self.conn())
            .await?)
    }

    /// Deletes the team and its memberships. Members' versions are bumped,
    /// since their team list changes: an update made with an older etag of
    /// theirs must fail rather than put them back.
    pub async fn delete_team(&self, org_id: OrgId, id: TeamId) -> Result<(), StoreError> {
        users::Entity::update_many()
            .col_expr(
                users::Column::Version,
                Expr::col(users::Column::Version).add(1),
            )
            .filter(users::Column::OrgId.eq(org_id.to_string()))
            .filter(
                users::Column::Id.in_subquery(
                    sea_orm::sea_query::Query::select()
                        .column(team_members::Column::UserId)
                        .from(team_members::Entity)
                        .and_where(team_members::Column::TeamId.eq(id.to_string()))
                        .to_owned(),
                ),
            )
            .exec(self.conn())
            .await?;
        team_members::Entity::delete_many()
            .filter(team_members::Column::TeamId.eq(id.to_string()))
            .exec(self.conn())
            .await?;
        teams::Entity::delete_many()
            .filter(teams::Column::Id.eq(id.to_string()))
            .filter(teams::Column::OrgId.eq(org_id.to_string()))
            .exec(self.conn())
            .await?;
        self.changed(Change::Org(org_id));
        Ok(())
    }
}

fn team(row: teams::Model) -> Result<Team, StoreError> {
    Ok(Team {
        id: TeamId::parse(&row.id).map_err(corrupt)?,
        name: TeamName::parse(&row.name).map_err(corrupt)?,
        description: ProfileText::parse(&row.description, usize::MAX).map_err(corrupt)?,
        version: row.version,
        created_at: row.created_at,
    })
}
