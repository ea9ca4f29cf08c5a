//! Files over streams: an upload spooled to a temporary file before it is
//! imported (so a file over the limit imports nothing, and memory stays
//! bounded), and an export's chunks fed to its response stream.

use tokio::{
    io::{AsyncSeekExt, AsyncWriteExt},
    sync::mpsc,
};
use tonic::{Status, Streaming};

use super::pb;
use crate::{
    error::{Error, Reason},
    users::UserExport,
};

/// Chunks of an export waiting for a slow client: with chunks of about
/// 64 KiB, at most this many times that is held per export.
pub(super) const EXPORT_QUEUE: usize = 4;

/// Feeds an export's chunks to its stream until the file ends, an error ends
/// it (sent as the stream's status), or the client leaves.
pub(super) async fn send_export(
    mut export: UserExport,
    sender: mpsc::Sender<Result<pb::ExportUsersResponse, Status>>,
) {
    loop {
        let next = tokio::select! {
            next = export.next_chunk() => next,
            () = sender.closed() => return,
        };
        let (message, last) = match next {
            Ok(Some(chunk)) => (Ok(pb::ExportUsersResponse { chunk }), false),
            Ok(None) => return,
            Err(err) => (Err(Status::from(err)), true),
        };
        if sender.send(message).await.is_err() || last {
            return;
        }
    }
}

/// Writes the upload to a temporary file, so a file over the limit
/// imports nothing and memory stays bounded whatever the size.
pub(super) async fn spool(
    first_chunk: Vec<u8>,
    upload: &mut Streaming<pb::ImportUsersRequest>,
    max_bytes: u64,
    declared: Option<u64>,
) -> Result<std::fs::File, Error> {
    let spool = tempfile::tempfile().map_err(Error::internal)?;
    let mut spool = tokio::fs::File::from_std(spool);
    let mut size = 0u64;
    let mut chunk = Some(first_chunk);
    while let Some(bytes) = chunk {
        size += bytes.len() as u64;
        if size > max_bytes {
            let limit = max_bytes;
            return Err(Error::ResourceExhausted {
                reason: Reason::FileTooLarge,
                message: format!(
                    "the file is over the limit of {limit} bytes: nothing was imported"
                ),
                metadata: vec![("limit_bytes", limit.to_string())],
            });
        }
        spool.write_all(&bytes).await.map_err(Error::internal)?;
        chunk = upload
            .message()
            .await
            .map_err(|status| super::wire::upload_error(&status))?
            .map(|m| m.chunk);
    }
    if let Some(declared) = declared
        && declared != size
    {
        return Err(Error::Unavailable {
            reason: Reason::UploadInterrupted,
            message: format!(
                "the upload broke off after {size} of {declared} bytes: nothing was imported"
            ),
        });
    }
    spool.flush().await.map_err(Error::internal)?;
    spool.rewind().await.map_err(Error::internal)?;
    Ok(spool.into_std().await)
}
