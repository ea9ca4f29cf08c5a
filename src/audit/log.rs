//! Reading the audit log: newest first, filtered, paged by a key that later
//! appends cannot shift. There is deliberately no way to edit or delete.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::TARGET_RESOURCE;
use crate::{
    auth::{Principal, authorize},
    domain::{AuditCriteria, AuditPageKey, Permission},
    error::Result,
    store::{AuditEntry, Store},
};

/// One entry as a reader sees it.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub id: String,
    pub occurred_at: DateTime<Utc>,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub action: String,
    pub target_user_id: Option<String>,
    /// E.g. `teams/<id>`, for changes to something other than a user.
    pub target_resource: Option<String>,
    pub request_id: Option<String>,
    pub peer: Option<String>,
    /// A JSON object.
    pub details: String,
}

/// One page of entries and where the next one starts.
#[derive(Debug, Clone)]
pub struct AuditPage {
    pub events: Vec<AuditEvent>,
    pub next: Option<AuditPageKey>,
}

#[derive(Clone)]
pub struct AuditLog {
    store: Store,
}

impl AuditLog {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    pub async fn list(
        &self,
        principal: &Principal,
        criteria: AuditCriteria,
        after: Option<AuditPageKey>,
        page_size: u64,
    ) -> Result<AuditPage> {
        authorize(principal, Permission::ReadAudit)?;
        let mut rows = self
            .store
            .read()
            .list_audit(principal.org_id, &criteria, after.as_ref(), page_size + 1)
            .await?;
        let next = if rows.len() as u64 > page_size {
            rows.truncate(page_size as usize);
            rows.last().map(|row| AuditPageKey {
                occurred_at: row.occurred_at,
                id: row.id.clone(),
            })
        } else {
            None
        };
        Ok(AuditPage {
            events: rows.into_iter().map(event).collect(),
            next,
        })
    }
}

/// Lifts the target resource out of the stored details.
fn event(row: AuditEntry) -> AuditEvent {
    let (target_resource, details) = match serde_json::from_str::<Value>(&row.details) {
        Ok(Value::Object(mut map)) => {
            let resource = match map.remove(TARGET_RESOURCE) {
                Some(Value::String(r)) => Some(r),
                _ => None,
            };
            (resource, Value::Object(map).to_string())
        }
        // Details are always written as an object; show anything else as is.
        _ => (None, row.details),
    };
    AuditEvent {
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
}
