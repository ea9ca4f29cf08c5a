use chrono::Utc;
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait, sea_query::OnConflict};

use super::{Repo, StoreError, entities::avatars};
use crate::domain::UserId;

impl<C: ConnectionTrait> Repo<'_, C> {
    pub async fn set_avatar(
        &self,
        user_id: UserId,
        content_type: &str,
        image: Vec<u8>,
    ) -> Result<(), StoreError> {
        avatars::Entity::insert(avatars::ActiveModel {
            user_id: Set(user_id.to_string()),
            content_type: Set(content_type.to_owned()),
            image: Set(image),
            updated_at: Set(Utc::now()),
        })
        .on_conflict(
            OnConflict::column(avatars::Column::UserId)
                .update_columns([
                    avatars::Column::ContentType,
                    avatars::Column::Image,
                    avatars::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(self.conn())
        .await?;
        Ok(())
    }

    /// The image and its media type.
    pub async fn avatar(&self, user_id: UserId) -> Result<Option<(Vec<u8>, String)>, StoreError> {
        Ok(avatars::Entity::find_by_id(user_id.to_string())
            .one(self.conn())
            .await?
            .map(|row| (row.image, row.content_type)))
    }
}
