//! Lockout after failed sign-ins: counting failures, locking at the org's
//! threshold and ending a lock that has run its duration. Lock and unlock are
//! audit events of their own (actor: the system), written in the transaction
//! of the attempt that caused them, so the log says when an account became
//! unusable and when it became usable again.

use serde_json::json;

use crate::{
    audit::{self, Action, AuditActor, Origin},
    domain::{OrgSettings, UserId},
    error::Result,
    store::WriteTx,
};

/// Whether a lock is in force on the user now, read under the lock of their
/// credential row (taken in the order failures take it), so failures that
/// committed after the caller's first read are seen: a correct password
/// guessed in a burst cannot slip past, or lift, a lock the burst just set.
pub async fn locked_now(tx: &WriteTx, org: &OrgSettings, user_id: UserId) -> Result<bool> {
    let repo = tx.repo();
    repo.lock_credential(user_id).await?;
    Ok(repo.user(org, user_id).await?.is_none_or(|u| u.locked))
}

/// Counts a failed attempt at the user's password within `tx`; at the org's
/// threshold locks the account and audits `user.lock`. Returns whether this
/// failure locked it.
pub async fn count_failure(
    tx: &WriteTx,
    org: &OrgSettings,
    user_id: UserId,
    origin: &Origin,
) -> Result<bool> {
    let repo = tx.repo();
    let locked = repo
        .record_login_failure(user_id, org.lockout_threshold, chrono::Utc::now())
        .await?;
    if locked {
        // Counted when decided; the attempt's transaction commits next.
        crate::metrics::get().lockout();
        repo.append_audit(audit::entry(
            org.org_id,
            AuditActor::System,
            Action::UserLock,
            Some(user_id),
            origin,
            json!({
                "failed_logins": org.lockout_threshold,
                "lockout_duration_secs": org.lockout_duration.as_secs(),
            }),
        ))
        .await?;
    }
    Ok(locked)
}

/// Ends the user's lock if it has expired (only when the org's lockout
/// duration is not 0), so failures count afresh, and audits `user.unlock`
/// by expiry. Call it only for a user whose lock is not in force.
pub async fn end_expired_lock(
    tx: &WriteTx,
    org: &OrgSettings,
    user_id: UserId,
    origin: &Origin,
) -> Result<()> {
    let repo = tx.repo();
    if repo.clear_expired_lock(org, user_id).await? {
        repo.append_audit(audit::entry(
            org.org_id,
            AuditActor::System,
            Action::UserUnlock,
            Some(user_id),
            origin,
            json!({ "by": "expiry" }),
        ))
        .await?;
    }
    Ok(())
}
