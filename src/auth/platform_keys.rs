//! Platform API keys: credentials of the platform's own services (its
//! sign-up backend, its operators' tools) for `PlatformService`. They belong
//! to no org, are made offline (`rosterd platform-keys create`, or at start
//! from `ROSTER_BOOTSTRAP_PLATFORM_KEY`), and are stored, like org keys, as
//! a SHA-256 of a secret shown once. Every change goes to the platform
//! audit log.

use chrono::Utc;
use serde_json::json;

use super::{
    Authenticator, PLATFORM_KEY_PREFIX, PlatformCaller, new_platform_key_secret, token_hash,
};
use crate::{
    audit::{Origin, PlatformAction, PlatformActor, platform_entry},
    domain::{ApiKeyName, PlatformKey, PlatformKeyId},
    error::{Error, Reason, Result},
    store::StoreError,
};

/// A new platform key and its secret, which exists nowhere else.
#[derive(Debug, Clone)]
pub struct CreatedPlatformKey {
    pub key: PlatformKey,
    pub secret: String,
}

impl Authenticator {
    /// Creates a platform key; `None` when one of that name exists already
    /// (live or revoked: a name is never reused, so the log stays clear).
    pub async fn create_platform_key(
        &self,
        name: ApiKeyName,
        origin: &Origin,
    ) -> Result<Option<CreatedPlatformKey>> {
        let secret = new_platform_key_secret();
        let key = PlatformKey {
            id: PlatformKeyId::generate(),
            name,
            secret_prefix: secret.chars().take(12).collect(),
            created_at: Utc::now(),
            last_used_at: None,
            revoked_at: None,
        };
        let tx = self.store.write().await?;
        let repo = tx.repo();
        match repo.insert_platform_key(&key, token_hash(&secret)).await {
            Err(StoreError::Conflict(_)) => return Ok(None),
            other => other?,
        }
        repo.append_platform_audit(platform_entry(
            PlatformActor::Operator,
            PlatformAction::PlatformKeyCreate,
            None,
            origin,
            json!({ "platform_key_id": key.id.to_string(), "name": key.name.as_str() }),
        ))
        .await?;
        tx.commit().await?;
        Ok(Some(CreatedPlatformKey { key, secret }))
    }

    pub async fn platform_keys(&self) -> Result<Vec<PlatformKey>> {
        Ok(self.store.read().platform_keys().await?)
    }

    /// Revokes the live key of this name; its next call fails.
    pub async fn revoke_platform_key(
        &self,
        name: &ApiKeyName,
        origin: &Origin,
    ) -> Result<PlatformKey> {
        let not_found = || Error::NotFound {
            reason: Reason::ApiKeyNotFound,
            message: format!("no live platform key is named {:?}", name.as_str()),
        };
        let tx = self.store.write().await?;
        let repo = tx.repo();
        let key = repo
            .platform_key_by_name(name)
            .await?
            .ok_or_else(not_found)?;
        if !repo.revoke_platform_key(key.id, Utc::now()).await? {
            return Err(not_found());
        }
        repo.append_platform_audit(platform_entry(
            PlatformActor::Operator,
            PlatformAction::PlatformKeyRevoke,
            None,
            origin,
            json!({ "platform_key_id": key.id.to_string(), "name": key.name.as_str() }),
        ))
        .await?;
        let revoked = repo
            .platform_key_by_name(name)
            .await?
            .ok_or_else(not_found)?;
        tx.commit().await?;
        Ok(revoked)
    }

    /// The platform caller behind a live platform key.
    pub async fn authenticate_platform(&self, secret: &str) -> Result<PlatformCaller> {
        let invalid = || Error::Unauthenticated(Reason::InvalidCredentials);
        if !secret.starts_with(PLATFORM_KEY_PREFIX) {
            return Err(invalid());
        }
        let key = self
            .store
            .read()
            .live_platform_key(&token_hash(secret))
            .await?
            .ok_or_else(invalid)?;
        let now = Utc::now();
        let stale = key
            .last_used_at
            .is_none_or(|at| now - at > chrono::Duration::minutes(1));
        // Best effort: a failed stamp must not fail the caller's request.
        if stale {
            let touched = async {
                let tx = self.store.write().await?;
                tx.repo().touch_platform_key(key.id, now).await?;
                tx.commit().await
            };
            if let Err(err) = touched.await {
                tracing::warn!(error = %err, platform_key_id = %key.id, "cannot record platform key use");
            }
        }
        Ok(PlatformCaller { key_id: key.id })
    }
}
