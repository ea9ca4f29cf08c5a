//! Org use cases: settings, teams and custom roles. Each change runs in one
//! transaction with its audit entry, whose details hold the changed fields'
//! `before` and `after` values, so an error leaves nothing half-written.
//!
//! Anyone signed in to the org may read its settings, teams and roles;
//! changing them needs `settings.manage`, `teams.manage` or `roles.manage`.

mod roles;
mod teams;

use std::time::Duration;

use chrono::Utc;

use serde_json::{Map, Value, json};

pub use roles::{NewRole, RoleChange, RolePage, RoleView};
pub use teams::{NewTeam, TeamChange, TeamPage, TeamPageKey};

use crate::{
    audit::{self, Action, AuditActor, Origin},
    auth::{Principal, authorize},
    domain::{ChangeReason, OrgId, OrgSettings, Permission, SettingsChange},
    error::{Error, Reason, Result},
    store::Store,
};

/// An org's settings and how many seats are in use.
#[derive(Debug, Clone)]
pub struct SettingsView {
    pub settings: OrgSettings,
    pub seats_used: u64,
}

impl SettingsView {
    /// A limit lowered below current use is allowed: it only blocks new seats.
    pub fn over_seat_limit(&self) -> bool {
        self.settings
            .seat_limit
            .is_some_and(|limit| self.seats_used > u64::from(limit))
    }
}

#[derive(Clone)]
pub struct Org {
    store: Store,
}

impl Org {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    pub async fn settings(&self, principal: &Principal) -> Result<SettingsView> {
        let read = self.store.read();
        Ok(SettingsView {
            settings: read.org(principal.org_id).await?,
            seats_used: read.count_seats(principal.org_id).await?,
        })
    }

    /// Applies `change` if `etag` (when given) is still the settings' version.
    pub async fn update_settings(
        &self,
        principal: &Principal,
        origin: &Origin,
        change: SettingsChange,
        etag: Option<String>,
    ) -> Result<SettingsView> {
        authorize(principal, Permission::ManageSettings)?;
        let tx = self.store.write().await?;
        let repo = tx.repo();
        let current = repo.org(principal.org_id).await?;
        check_etag(etag.as_deref(), current.version)?;
        let (updated, before, after) = apply(&current, change);
        let seats_used = repo.count_seats(principal.org_id).await?;
        if before.is_empty() {
            // Nothing differs: no write, no version bump, nothing to audit.
            return Ok(SettingsView {
                settings: current,
                seats_used,
            });
        }
        if !repo.update_org_settings(&updated).await? {
            return Err(Error::concurrent_change());
        }
        let view = SettingsView {
            settings: repo.org(principal.org_id).await?,
            seats_used,
        };
        if view.settings.default_max_chats != current.default_max_chats {
            repo.refresh_presence(
                &view.settings,
                None,
                ChangeReason::MaxChatsChanged,
                Utc::now(),
            )
            .await?;
        }
        let mut details = json!({ "before": before, "after": after });
        if view.over_seat_limit() {
            tracing::warn!(
                seats_used,
                seat_limit = ?view.settings.seat_limit,
                "seat limit set below current use; new seats are refused until enough are freed"
            );
            details["seat_limit_below_use"] = json!({ "seats_used": seats_used });
        }
        repo.append_audit(audit::resource_entry(
            principal.org_id,
            AuditActor::from(principal),
            Action::OrgSettingsUpdate,
            "org/settings".into(),
            origin,
            details,
        ))
        .await?;
        tx.commit().await?;
        Ok(view)
    }

    /// The resource an earlier creating call with this request id made.
    async fn replayed(
        &self,
        org_id: OrgId,
        operation: &str,
        request_id: Option<&str>,
    ) -> Result<Option<String>> {
        let Some(request_id) = request_id else {
            return Ok(None);
        };
        Ok(self
            .store
            .read()
            .idempotent_resource(org_id, operation, request_id)
            .await?)
    }
}

/// The settings with `change` applied, and the changed fields' old and new
/// values, named as on the wire.
pub(crate) fn apply(
    current: &OrgSettings,
    change: SettingsChange,
) -> (OrgSettings, Map<String, Value>, Map<String, Value>) {
    let SettingsChange {
        name,
        seat_limit,
        default_max_chats,
        password_min_length,
        lockout_threshold,
        lockout_duration,
        login_with,
        invite_lifetime,
        session_lifetime,
        presence_lease,
    } = change;
    let mut next = current.clone();
    let mut before = Map::new();
    let mut after = Map::new();
    let mut record = |field: &str, old: Value, new: Value| {
        if old != new {
            before.insert(field.to_owned(), old);
            after.insert(field.to_owned(), new);
        }
    };
    let secs = |d: Duration| json!(format!("{}s", d.as_secs()));
    if let Some(name) = name {
        record("display_name", json!(current.name), json!(name.as_str()));
        next.name = name.as_str().to_owned();
    }
    if let Some(limit) = seat_limit {
        let wire = |l: Option<u32>| json!(l.unwrap_or(0));
        record("seat_limit", wire(current.seat_limit), wire(limit));
        next.seat_limit = limit;
    }
    if let Some(n) = default_max_chats {
        record(
            "default_max_chats",
            json!(current.default_max_chats),
            json!(n),
        );
        next.default_max_chats = n;
    }
    if let Some(n) = password_min_length {
        record(
            "password_min_length",
            json!(current.password_min_length),
            json!(n),
        );
        next.password_min_length = n;
    }
    if let Some(n) = lockout_threshold {
        record(
            "lockout_threshold",
            json!(current.lockout_threshold),
            json!(n),
        );
        next.lockout_threshold = n;
    }
    if let Some(d) = lockout_duration {
        record("lockout_duration", secs(current.lockout_duration), secs(d));
        next.lockout_duration = d;
    }
    if let Some(l) = login_with {
        record(
            "login_with",
            json!(current.login_with.as_str()),
            json!(l.as_str()),
        );
        next.login_with = l;
    }
    if let Some(d) = invite_lifetime {
        record("invite_lifetime", secs(current.invite_lifetime), secs(d));
        next.invite_lifetime = d;
    }
    if let Some(d) = session_lifetime {
        record("session_lifetime", secs(current.session_lifetime), secs(d));
        next.session_lifetime = d;
    }
    if let Some(d) = presence_lease {
        record("presence_lease", secs(current.presence_lease), secs(d));
        next.presence_lease = d;
    }
    (next, before, after)
}

/// An empty etag means "regardless of concurrent changes". Etags are opaque
/// to clients, so anything but the current version is stale.
pub(crate) fn check_etag(etag: Option<&str>, version: i64) -> Result<()> {
    match etag {
        Some(etag) if etag != version.to_string() => Err(stale()),
        _ => Ok(()),
    }
}

fn stale() -> Error {
    Error::Aborted {
        reason: Reason::StaleEtag,
        message: "changed since it was read (stale etag); read it again and retry".into(),
    }
}
