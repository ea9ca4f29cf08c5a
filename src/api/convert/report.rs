//! Activity reports on the wire.

use super::{duration, timestamp};
use crate::{api::pb, domain::ActivityRow};

impl From<&ActivityRow> for pb::ActivityRow {
    fn from(row: &ActivityRow) -> Self {
        pb::ActivityRow {
            user_id: row.user_id.to_string(),
            bucket_start: Some(timestamp(row.bucket_start)),
            offline_duration: Some(duration(row.offline)),
            unavailable_duration: Some(duration(row.unavailable)),
            available_duration: Some(duration(row.available)),
            peak_active_chats: row.peak_active_chats,
        }
    }
}
