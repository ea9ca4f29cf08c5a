//! `users export`: the users that match the filters, as CSV on stdout.
//!
//! Each chunk is written as it arrives, so memory stays flat however many
//! users the org has, and `users export | head` stops the export early.

use roster::api::pb;

use crate::{error::CliError, output::write_raw, session::SignedIn, users::UserFilterArgs};

pub async fn export_users(signed_in: &SignedIn, filters: UserFilterArgs) -> Result<(), CliError> {
    let request = pb::ExportUsersRequest {
        state: filters.state(),
        presence_status: filters.presence_status(),
        query: filters.query.unwrap_or_default(),
        role: filters.role.unwrap_or_default(),
        team_id: filters.team_id.unwrap_or_default(),
        locked: filters.locked,
    };
    let mut stream = signed_in.users().export_users(request).await?.into_inner();
    while let Some(message) = stream.message().await? {
        if !write_raw(&message.chunk)? {
            // The reader has all it wanted; dropping the stream ends the export.
            break;
        }
    }
    Ok(())
}
