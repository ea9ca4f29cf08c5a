//! API keys on the wire.

use super::timestamp;
use crate::{api::pb, domain::ApiKey};

impl From<&ApiKey> for pb::ApiKey {
    fn from(key: &ApiKey) -> Self {
        pb::ApiKey {
            api_key_id: key.id.to_string(),
            name: key.name.as_str().to_owned(),
            scopes: key.scopes.iter().map(|p| p.as_str().to_owned()).collect(),
            created_at: Some(timestamp(key.created_at)),
            created_by: key.created_by.map(|id| id.to_string()).unwrap_or_default(),
            last_used_at: key.last_used_at.map(timestamp),
            revoked_at: key.revoked_at.map(timestamp),
            secret_prefix: key.secret_prefix.clone(),
        }
    }
}
