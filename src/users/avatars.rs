use serde_json::json;

use super::Users;
use crate::{
    audit::{Action, Origin},
    auth::{Principal, authorize},
    domain::{Avatar, Permission, UserId},
    error::{Error, Reason, Result},
};

impl Users {
    /// Sets a user's avatar: admins for anyone, users for themselves.
    pub async fn set_avatar(
        &self,
        principal: &Principal,
        origin: &Origin,
        user_id: UserId,
        avatar: Avatar,
    ) -> Result<()> {
        let own = principal.user_id() == Some(user_id)
            && principal.permissions.contains(Permission::EditOwnProfile);
        if !own {
            authorize(principal, Permission::ManageUsers)?;
        }
        let (_, before) = self.target(principal, user_id).await?;
        let mut after = before.clone();
        after.has_avatar = true;
        let content_type = avatar.content_type();
        let image = avatar.into_bytes();
        let size = image.len();
        let tx = self.store.write().await?;
        tx.repo().set_avatar(user_id, content_type, image).await?;
        self.save(&tx, &after, None, None).await?;
        self.audit(
            &tx,
            principal,
            origin,
            Action::AvatarSet,
            user_id,
            json!({ "content_type": content_type, "bytes": size }),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A user's avatar image and its media type.
    pub async fn get_avatar(
        &self,
        principal: &Principal,
        user_id: UserId,
    ) -> Result<(Vec<u8>, String)> {
        self.readable(principal, user_id).await?;
        self.store
            .read()
            .avatar(user_id)
            .await?
            .ok_or_else(|| Error::NotFound {
                reason: Reason::AvatarNotFound,
                message: "the user has no avatar".into(),
            })
    }
}
