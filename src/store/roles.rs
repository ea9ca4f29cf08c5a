//! Custom roles and who holds them. Built-in roles are code, not rows.

use std::{collections::HashMap, sync::Arc};

use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, ExprTrait, PaginatorTrait, QueryFilter,
    sea_query::{Expr, Query, SelectStatement},
};

use super::{
    Change, Repo, StoreError, corrupt,
    entities::{roles, user_roles, users},
};
use crate::domain::{CustomRole, OrgId, Permission, PermissionSet, ProfileText, RoleName};

impl<C: ConnectionTrait> Repo<'_, C> {
    /// The permissions of the org's custom roles among `names`; names that are
    /// not custom roles of the org are absent.
    pub async fn custom_roles(
        &self,
        org_id: OrgId,
        names: &[RoleName],
    ) -> Result<HashMap<RoleName, PermissionSet>, StoreError> {
        if names.is_empty() {
            return Ok(HashMap::new());
        }
        let load = async {
            roles::Entity::find()
                .filter(roles::Column::OrgId.eq(org_id.to_string()))
                .all(self.conn())
                .await?
                .into_iter()
                .map(|row| {
                    let name = RoleName::parse(&row.name).map_err(corrupt)?;
                    let perms = row
                        .permissions
                        .split_whitespace()
                        .map(Permission::parse)
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(corrupt)?;
                    Ok((name, PermissionSet::of(&perms)))
                })
                .collect::<Result<HashMap<_, _>, StoreError>>()
                .map(Arc::new)
        };
        let all = self
            .cached(
                |cache| cache.roles(org_id),
                load,
                |entries, roles| entries.keep_roles(org_id, roles),
            )
            .await?;
        Ok(names
            .iter()
            .filter_map(|name| all.get(name).map(|perms| (name.clone(), *perms)))
            .collect())
    }

    /// Every custom role of the org, in no particular order.
    pub async fn all_custom_roles(&self, org_id: OrgId) -> Result<Vec<CustomRole>, StoreError> {
        roles::Entity::find()
            .filter(roles::Column::OrgId.eq(org_id.to_string()))
            .all(self.conn())
            .await?
            .into_iter()
            .map(custom_role)
            .collect()
    }

    pub async fn custom_role(
        &self,
        org_id: OrgId,
        name: &RoleName,
    ) -> Result<Option<CustomRole>, StoreError> {
        roles::Entity::find_by_id((org_id.to_string(), name.as_str().to_owned()))
            .one(self.conn())
            .await?
            .map(custom_role)
            .transpose()
    }

    /// A taken name is a [`StoreError::Conflict`].
    pub async fn insert_role(&self, org_id: OrgId, role: &CustomRole) -> Result<(), StoreError> {
        roles::Entity::insert(roles::ActiveModel {
            org_id: Set(org_id.to_string()),
            name: Set(role.name.as_str().to_owned()),
            description: Set(role.description.as_str().to_owned()),
            permissions: Set(permission_list(role.permissions)),
            version: Set(role.version),
            created_at: Set(chrono::Utc::now()),
        })
        .exec_without_returning(self.conn())
        .await?;
        self.changed(Change::Org(org_id));
        Ok(())
    }

    /// Writes description and permissions and bumps the version, if the
    /// stored version is still `role.version`; false when a concurrent change won.
    pub async fn update_role(&self, org_id: OrgId, role: &CustomRole) -> Result<bool, StoreError> {
        let result = roles::Entity::update_many()
            .col_expr(
                roles::Column::Description,
                Expr::value(role.description.as_str()),
            )
            .col_expr(
                roles::Column::Permissions,
                Expr::value(permission_list(role.permissions)),
            )
            .col_expr(roles::Column::Version, Expr::value(role.version + 1))
            .filter(roles::Column::OrgId.eq(org_id.to_string()))
            .filter(roles::Column::Name.eq(role.name.as_str()))
            .filter(roles::Column::Version.eq(role.version))
            .exec(self.conn())
            .await?;
        self.changed(Change::Org(org_id));
        Ok(result.rows_affected == 1)
    }

    /// How many of the org's users hold the role.
    pub async fn role_holder_count(
        &self,
        org_id: OrgId,
        name: &RoleName,
    ) -> Result<u64, StoreError> {
        Ok(user_roles::Entity::find()
            .filter(user_roles::Column::RoleName.eq(name.as_str()))
            .filter(user_roles::Column::UserId.in_subquery(org_users(org_id)))
            .count(self.conn())
            .await?)
    }

    /// Deletes the custom role and takes it from its holders, bumping their
    /// versions since their role list changes.
    pub async fn delete_role(&self, org_id: OrgId, name: &RoleName) -> Result<(), StoreError> {
        users::Entity::update_many()
            .col_expr(
                users::Column::Version,
                Expr::col(users::Column::Version).add(1),
            )
            .filter(users::Column::OrgId.eq(org_id.to_string()))
            .filter(
                users::Column::Id.in_subquery(
                    Query::select()
                        .column(user_roles::Column::UserId)
                        .from(user_roles::Entity)
                        .and_where(user_roles::Column::RoleName.eq(name.as_str()))
                        .to_owned(),
                ),
            )
            .exec(self.conn())
            .await?;
        // user_roles has no org column: the role's holders are the org's users.
        user_roles::Entity::delete_many()
            .filter(user_roles::Column::RoleName.eq(name.as_str()))
            .filter(user_roles::Column::UserId.in_subquery(org_users(org_id)))
            .exec(self.conn())
            .await?;
        roles::Entity::delete_many()
            .filter(roles::Column::OrgId.eq(org_id.to_string()))
            .filter(roles::Column::Name.eq(name.as_str()))
            .exec(self.conn())
            .await?;
        self.changed(Change::Org(org_id));
        Ok(())
    }
}

fn org_users(org_id: OrgId) -> SelectStatement {
    Query::select()
        .column(users::Column::Id)
        .from(users::Entity)
        .and_where(users::Column::OrgId.eq(org_id.to_string()))
        .to_owned()
}

/// Stored as space-separated names, in catalogue order.
fn permission_list(set: PermissionSet) -> String {
    set.iter()
        .map(Permission::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

fn custom_role(row: roles::Model) -> Result<CustomRole, StoreError> {
    let permissions = row
        .permissions
        .split_whitespace()
        .map(Permission::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(corrupt)?;
    Ok(CustomRole {
        name: RoleName::parse(&row.name).map_err(corrupt)?,
        description: ProfileText::parse(&row.description, usize::MAX).map_err(corrupt)?,
        permissions: PermissionSet::of(&permissions),
        version: row.version,
    })
}
