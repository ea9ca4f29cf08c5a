use serde_json::json;

use super::{Users, reload};
use crate::{
    audit::{Action, Origin},
    auth::{Principal, authorize},
    domain::{Avatar, Permission, User, UserId},
    error::{Error, Reason, Result},
};

impl Users {
    /// Sets a user's avatar: admins for anyone, users for themselves.
    /// Returns the user as changed, like every other change: whoever may
    /// change a user sees the result, even without a read permission.
    pub async fn set_avatar(
        &self,
        principal: &Principal,
        origin: &Origin,
        user_id: UserId,
        avatar: Avatar,
    ) -> Result<User> {
        let own = principal.user_id() == Some(user_id)
            && principal.permissions.contains(Permission::EditOwnProfile);
        if !own {
            authorize(principal, Permission::ManageUsers)?;
        }
        let (org, before) = self.target(principal, user_id).await?;
        let mut after = before.clone();
        after.has_avatar = true;
        let content_type = avatar.content_type();
        let image = avatar.into_bytes();
        let size = image.len();
        let tx = self.store.write().await?;
        tx.repo().set_avatar(user_id, content_type, image).await?;
        self.save(&tx, &after, None, None).await?;
        let updated = reload(&tx, &org, user_id).await?;
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
        Ok(updated)
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
