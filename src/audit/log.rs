//! Reading the audit log: newest first, filtered, paged by a key that later
//! appends cannot shift. There is deliberately no way to edit or delete.

use crate::{
    auth::{Principal, authorize},
    domain::{AuditCriteria, AuditEntry, AuditPageKey, Permission},
    error::Result,
    store::Store,
};

/// One page of entries and where the next one starts.
#[derive(Debug, Clone)]
pub struct AuditPage {
    pub events: Vec<AuditEntry>,
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
        Ok(AuditPage { events: rows, next })
    }
}
