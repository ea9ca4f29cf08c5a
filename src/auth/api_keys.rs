//! API keys: credentials for backend services. The secret is shown once and
//! stored as a SHA-256; a key's permissions are its scopes, across the org.
//! A revoked key fails on its next call.

use chrono::Utc;
use serde_json::json;

use super::{
    Actor, Authenticator, Principal, authorize, authorize_grant, new_api_key_secret, token_hash,
};
use crate::{
    audit::{self, Action, AuditActor, Origin},
    domain::{ApiKey, ApiKeyId, ApiKeyName, OrgId, OrgState, Permission, PermissionSet},
    error::{Error, Reason, Result},
    store::StoreError,
};

/// A new key and its secret, which exists nowhere else.
#[derive(Debug, Clone)]
pub struct CreatedKey {
    pub key: ApiKey,
    /// Empty when the call replayed an earlier one's request id.
    pub secret: String,
}

/// One page of keys and the id the next page starts after.
#[derive(Debug, Clone)]
pub struct KeyPage {
    pub keys: Vec<ApiKey>,
    pub next: Option<ApiKeyId>,
}

const CREATE_API_KEY: &str = "CreateApiKey";

impl Authenticator {
    pub async fn create_api_key(
        &self,
        principal: &Principal,
        origin: &Origin,
        name: ApiKeyName,
        scopes: PermissionSet,
        request_id: Option<String>,
    ) -> Result<CreatedKey> {
        authorize(principal, Permission::ManageApiKeys)?;
        authorize_grant(principal, scopes)?;
        if let Some(key) = self
            .replayed_key(principal.org_id, request_id.as_deref())
            .await?
        {
            return Ok(CreatedKey {
                key,
                secret: String::new(),
            });
        }
        let secret = new_api_key_secret();
        let key = ApiKey {
            id: ApiKeyId::generate(),
            name,
            scopes,
            secret_prefix: secret.chars().take(11).collect(),
            created_by: principal.user_id(),
            created_at: Utc::now(),
            last_used_at: None,
            revoked_at: None,
        };
        let tx = self.store.write().await?;
        let repo = tx.repo();
        if let Some(request_id) = &request_id {
            match repo
                .insert_idempotency(
                    principal.org_id,
                    CREATE_API_KEY,
                    request_id,
                    &key.id.to_string(),
                )
                .await
            {
                Err(StoreError::Conflict(_)) => {
                    drop(tx);
                    let key = self
                        .replayed_key(principal.org_id, Some(request_id))
                        .await?
                        .ok_or_else(key_not_found)?;
                    return Ok(CreatedKey {
                        key,
                        secret: String::new(),
                    });
                }
                other => other?,
            }
        }
        repo.insert_api_key(principal.org_id, &key, token_hash(&secret))
            .await
            .map_err(|err| match err {
                StoreError::Conflict(_) => Error::AlreadyExists {
                    reason: Reason::ApiKeyNameTaken,
                    message: "an API key of this name exists in the org".into(),
                },
                other => other.into(),
            })?;
        repo.append_audit(audit::entry(
            principal.org_id,
            AuditActor::from(principal),
            Action::ApiKeyCreate,
            None,
            origin,
            json!({
                "api_key_id": key.id.to_string(),
                "name": key.name.as_str(),
                "scopes": key.scopes.iter().map(Permission::as_str).collect::<Vec<_>>(),
            }),
        ))
        .await?;
        tx.commit().await?;
        Ok(CreatedKey { key, secret })
    }

    async fn replayed_key(
        &self,
        org_id: OrgId,
        request_id: Option<&str>,
    ) -> Result<Option<ApiKey>> {
        let Some(request_id) = request_id else {
            return Ok(None);
        };
        let read = self.store.read();
        let Some(id) = read
            .idempotent_resource(org_id, CREATE_API_KEY, request_id)
            .await?
        else {
            return Ok(None);
        };
        let id = ApiKeyId::parse(&id).map_err(Error::internal)?;
        Ok(read.api_key(org_id, id).await?)
    }

    pub async fn list_api_keys(
        &self,
        principal: &Principal,
        show_revoked: bool,
        after: Option<ApiKeyId>,
        page_size: u64,
    ) -> Result<KeyPage> {
        authorize(principal, Permission::ManageApiKeys)?;
        let mut keys = self
            .store
            .read()
            .list_api_keys(principal.org_id, show_revoked, after, page_size + 1)
            .await?;
        let next = if keys.len() as u64 > page_size {
            keys.truncate(page_size as usize);
            keys.last().map(|k| k.id)
        } else {
            None
        };
        Ok(KeyPage { keys, next })
    }

    /// Revokes a key at once; revoking a revoked key changes nothing.
    pub async fn revoke_api_key(
        &self,
        principal: &Principal,
        origin: &Origin,
        id: ApiKeyId,
    ) -> Result<ApiKey> {
        authorize(principal, Permission::ManageApiKeys)?;
        let tx = self.store.write().await?;
        let repo = tx.repo();
        let key = repo
            .api_key(principal.org_id, id)
            .await?
            .ok_or_else(key_not_found)?;
        if key.revoked_at.is_some() {
            return Ok(key);
        }
        repo.revoke_api_key(id, Utc::now()).await?;
        repo.append_audit(audit::entry(
            principal.org_id,
            AuditActor::from(principal),
            Action::ApiKeyRevoke,
            None,
            origin,
            json!({ "api_key_id": id.to_string(), "name": key.name.as_str() }),
        ))
        .await?;
        let revoked = repo
            .api_key(principal.org_id, id)
            .await?
            .ok_or_else(key_not_found)?;
        tx.commit().await?;
        Ok(revoked)
    }

    /// The key a principal calls with, if it is one.
    pub async fn caller_key(&self, principal: &Principal) -> Result<Option<ApiKey>> {
        match principal.actor {
            Actor::ApiKey { key_id } => {
                Ok(self.store.read().api_key(principal.org_id, key_id).await?)
            }
            Actor::User { .. } | Actor::Operator => Ok(None),
        }
    }

    /// The principal of a live key.
    pub(super) async fn authenticate_key(&self, secret: &str) -> Result<Principal> {
        let (org_id, key) = self
            .store
            .read()
            .live_api_key(&token_hash(secret))
            .await?
            .ok_or(Error::Unauthenticated(Reason::InvalidCredentials))?;
        if self.store.read().org(org_id).await?.state != OrgState::Active {
            return Err(Error::org_suspended());
        }
        let now = Utc::now();
        let stale = key
            .last_used_at
            .is_none_or(|at| now - at > chrono::Duration::minutes(1));
        // Best effort: a failed stamp must not fail the caller's request.
        if stale && let Err(err) = self.touch(key.id, now).await {
            tracing::warn!(error = %err, api_key_id = %key.id, "cannot record API key use");
        }
        Ok(Principal {
            org_id,
            actor: Actor::ApiKey { key_id: key.id },
            permissions: key.scopes,
            team_ids: Vec::new(),
            password_change_required: false,
        })
    }

    async fn touch(&self, id: ApiKeyId, now: chrono::DateTime<Utc>) -> Result<()> {
        let tx = self.store.write().await?;
        tx.repo().touch_api_key(id, now).await?;
        tx.commit().await?;
        Ok(())
    }
}

fn key_not_found() -> Error {
    Error::NotFound {
        reason: Reason::ApiKeyNotFound,
        message: "no such API key in the org".into(),
    }
}
