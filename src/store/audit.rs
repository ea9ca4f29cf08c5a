use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};

use super::{Repo, StoreError, entities::audit_events};
use crate::domain::{OrgId, UserId};

/// One audit log entry as written.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub org_id: OrgId,
    pub occurred_at: DateTime<Utc>,
    /// `user`, `api_key` or `system`.
    pub actor_kind: &'static str,
    pub actor_id: Option<String>,
    pub action: &'static str,
    pub target_user_id: Option<UserId>,
    pub request_id: Option<String>,
    pub peer: Option<String>,
    /// A JSON object.
    pub details: String,
}

impl<C: ConnectionTrait> Repo<'_, C> {
    pub async fn append_audit(&self, record: AuditRecord) -> Result<(), StoreError> {
        audit_events::Entity::insert(audit_events::ActiveModel {
            id: Set(uuid::Uuid::now_v7().to_string()),
            org_id: Set(record.org_id.to_string()),
            occurred_at: Set(record.occurred_at),
            actor_kind: Set(record.actor_kind.to_owned()),
            actor_id: Set(record.actor_id),
            action: Set(record.action.to_owned()),
            target_user_id: Set(record.target_user_id.map(|id| id.to_string())),
            request_id: Set(record.request_id),
            peer: Set(record.peer),
            details: Set(record.details),
        })
        .exec_without_returning(self.conn())
        .await?;
        Ok(())
    }
}
