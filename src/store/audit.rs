use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, LikeExpr},
};
use serde_json::Value;

use super::{Repo, StoreError, entities::audit_events, escape_like};
use crate::domain::{ActionFilter, AuditCriteria, AuditEntry, AuditPageKey, OrgId, UserId};

/// The details key under which an entry's target resource is kept: the
/// table has no column of its own for it.
const TARGET_RESOURCE: &str = "target_resource";

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
    /// E.g. `teams/<id>`, for changes to something other than a user.
    pub target_resource: Option<String>,
    pub request_id: Option<String>,
    pub peer: Option<String>,
    /// A JSON object.
    pub details: String,
}

impl<C: ConnectionTrait> Repo<'_, C> {
    pub async fn append_audit(&self, record: AuditRecord) -> Result<(), StoreError> {
        self.append_audits(vec![record]).await
    }

    /// Appends entries, a statement per thousand (SQLite binds at most
    /// 32,766 values; an entry has ten).
    pub async fn append_audits(&self, records: Vec<AuditRecord>) -> Result<(), StoreError> {
        for chunk in records.chunks(1000) {
            self.append_audit_chunk(chunk.to_vec()).await?;
        }
        Ok(())
    }

    async fn append_audit_chunk(&self, records: Vec<AuditRecord>) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        audit_events::Entity::insert_many(records.into_iter().map(|record| {
            audit_events::ActiveModel {
                id: Set(uuid::Uuid::now_v7().to_string()),
                org_id: Set(record.org_id.to_string()),
                occurred_at: Set(record.occurred_at),
                actor_kind: Set(record.actor_kind.to_owned()),
                actor_id: Set(record.actor_id),
                action: Set(record.action.to_owned()),
                target_user_id: Set(record.target_user_id.map(|id| id.to_string())),
                request_id: Set(record.request_id),
                peer: Set(record.peer),
                details: Set(with_resource(record.details, record.target_resource)),
            }
        }))
        .exec_without_returning(self.conn())
        .await?;
        Ok(())
    }
}

impl<C: ConnectionTrait> Repo<'_, C> {
    /// Up to `limit` of the org's entries matching `criteria`, newest first
    /// (time, then id, both descending), starting after `after`.
    pub async fn list_audit(
        &self,
        org_id: OrgId,
        criteria: &AuditCriteria,
        after: Option<&AuditPageKey>,
        limit: u64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        use audit_events::Column as Col;
        let mut select = audit_events::Entity::find().filter(Col::OrgId.eq(org_id.to_string()));
        if let Some(actor_id) = &criteria.actor_id {
            select = select.filter(Col::ActorId.eq(actor_id.as_str()));
        }
        if let Some(kind) = criteria.actor_kind {
            select = select.filter(Col::ActorKind.eq(kind));
        }
        if let Some(target) = criteria.target_user_id {
            select = select.filter(Col::TargetUserId.eq(target.to_string()));
        }
        match &criteria.action {
            Some(ActionFilter::Exactly(action)) => {
                select = select.filter(Col::Action.eq(action.as_str()));
            }
            Some(ActionFilter::Prefix(prefix)) => {
                let pattern = format!("{}%", escape_like(prefix));
                select = select.filter(
                    Expr::col((audit_events::Entity, Col::Action))
                        .like(LikeExpr::new(pattern).escape('\\')),
                );
            }
            None => {}
        }
        if let Some(start) = criteria.start {
            select = select.filter(Col::OccurredAt.gte(start));
        }
        if let Some(end) = criteria.end {
            select = select.filter(Col::OccurredAt.lt(end));
        }
        if let Some(after) = after {
            select = select.filter(super::newest_first_after(
                Col::OccurredAt,
                Col::Id,
                after.occurred_at,
                &after.id,
            ));
        }
        Ok(select
            .order_by_desc(Col::OccurredAt)
            .order_by_desc(Col::Id)
            .limit(limit)
            .all(self.conn())
            .await?
            .into_iter()
            .map(|row| {
                let (target_resource, details) = without_resource(row.details);
                AuditEntry {
                    id: row.id,
                    occurred_at: row.occurred_at,
                    actor_kind: row.actor_kind,
                    actor_id: row.actor_id,
                    action: row.action,
                    target_user_id: row.target_user_id,
                    target_resource,
                    request_id: row.request_id,
                    peer: row.peer,
                    details,
                }
            })
            .collect())
    }
}

/// `details` (a JSON object) with the resource added under [`TARGET_RESOURCE`].
fn with_resource(details: String, resource: Option<String>) -> String {
    let Some(resource) = resource else {
        return details;
    };
    match serde_json::from_str::<Value>(&details) {
        Ok(Value::Object(mut map)) => {
            map.insert(TARGET_RESOURCE.to_owned(), Value::String(resource));
            Value::Object(map).to_string()
        }
        _ => details,
    }
}

/// The resource kept in `details`, and the details without it.
fn without_resource(details: String) -> (Option<String>, String) {
    match serde_json::from_str::<Value>(&details) {
        Ok(Value::Object(mut map)) => {
            let resource = match map.remove(TARGET_RESOURCE) {
                Some(Value::String(r)) => Some(r),
                _ => None,
            };
            (resource, Value::Object(map).to_string())
        }
        // Details are always written as an object; show anything else as is.
        _ => (None, details),
    }
}
