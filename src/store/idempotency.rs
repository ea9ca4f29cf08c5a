//! Request ids of creating RPCs (AIP-155): a retry with the same id finds the
//! resource the first call created.

use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};

use super::{Repo, StoreError, entities::idempotency_keys};
use crate::domain::OrgId;

impl<C: ConnectionTrait> Repo<'_, C> {
    pub async fn idempotent_resource(
        &self,
        org_id: OrgId,
        operation: &str,
        request_id: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(idempotency_keys::Entity::find_by_id((
            org_id.to_string(),
            operation.to_owned(),
            request_id.to_owned(),
        ))
        .one(self.conn())
        .await?
        .map(|row| row.resource_id))
    }

    pub async fn insert_idempotency(
        &self,
        org_id: OrgId,
        operation: &str,
        request_id: &str,
        resource_id: &str,
    ) -> Result<(), StoreError> {
        idempotency_keys::Entity::insert(idempotency_keys::ActiveModel {
            org_id: Set(org_id.to_string()),
            operation: Set(operation.to_owned()),
            request_id: Set(request_id.to_owned()),
            resource_id: Set(resource_id.to_owned()),
            created_at: Set(chrono::Utc::now()),
        })
        .exec_without_returning(self.conn())
        .await?;
        Ok(())
    }
}
