//! What a request's bytes must be before a handler sees them, and the
//! answers tonic gives on its own about them, in Roster's terms:
//!
//! - [`RosterCodec`] (every generated service and client uses it) decodes
//!   with prost; a message that cannot be decoded (not protobuf, a string
//!   that is not UTF-8) is `INVALID_ARGUMENT` `MALFORMED_REQUEST`, where
//!   tonic's own codec says `INTERNAL`.
//! - A decoded message whose text holds U+0000 is refused right there
//!   (`INVALID_ARGUMENT` `INVALID_TEXT`, naming the field): PostgreSQL text
//!   cannot hold NUL, so one rule at the boundary keeps both stores alike
//!   and no handler sees one. `LoginRequest` is the exception (see
//!   `build.rs`): Login answers every failure with one answer.
//! - tonic refuses a message over the size limit with `OUT_OF_RANGE` before
//!   any codec runs; [`rename_oversize`] makes that answer
//!   `RESOURCE_EXHAUSTED` `MESSAGE_TOO_LARGE`.

use std::marker::PhantomData;

use prost::Message;
use tonic::{
    Code, Status,
    codec::{Codec, DecodeBuf, Decoder},
};
use tonic_prost::ProstEncoder;

use crate::error::{Error, ParseError, Reason};

/// The text fields of a message, checked for NUL. Implemented for every
/// message of `roster.v1` by `build.rs`.
pub trait NulFree {
    /// The path of the first string field holding U+0000 (`user.email`,
    /// `team_ids[2]`), if any.
    fn nul_field(&self) -> Option<String>;
}

pub(crate) fn nul_in_str(name: &str, value: &str) -> Option<String> {
    value.contains('\0').then(|| name.to_owned())
}

pub(crate) fn nul_in_strs(name: &str, values: &[String]) -> Option<String> {
    values
        .iter()
        .position(|v| v.contains('\0'))
        .map(|i| format!("{name}[{i}]"))
}

pub(crate) fn nul_in_message(name: &str, value: Option<&impl NulFree>) -> Option<String> {
    let inner = value?.nul_field()?;
    Some(format!("{name}.{inner}"))
}

pub(crate) fn nul_in_messages(name: &str, values: &[impl NulFree]) -> Option<String> {
    values
        .iter()
        .enumerate()
        .find_map(|(i, v)| Some(format!("{name}[{i}].{}", v.nul_field()?)))
}

impl NulFree for () {
    fn nul_field(&self) -> Option<String> {
        None
    }
}

impl NulFree for prost_types::Timestamp {
    fn nul_field(&self) -> Option<String> {
        None
    }
}

impl NulFree for prost_types::Duration {
    fn nul_field(&self) -> Option<String> {
        None
    }
}

impl NulFree for prost_types::FieldMask {
    fn nul_field(&self) -> Option<String> {
        nul_in_strs("paths", &self.paths)
    }
}

/// prost encoding; decoding as [`RosterDecoder`] does.
#[derive(Debug)]
pub struct RosterCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for RosterCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> Codec for RosterCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + NulFree + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = RosterDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::default()
    }

    fn decoder(&mut self) -> Self::Decoder {
        RosterDecoder::default()
    }
}

/// Decodes with prost, then refuses NUL in text (see the module docs).
#[derive(Debug)]
pub struct RosterDecoder<U>(PhantomData<U>);

impl<U> Default for RosterDecoder<U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<U: Message + Default + NulFree> Decoder for RosterDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        let message = U::decode(buf).map_err(|err| Error::Malformed(err.to_string()))?;
        if let Some(field) = message.nul_field() {
            return Err(Error::invalid(
                ParseError::new(Reason::InvalidText, "must not contain NUL (U+0000)").at(field),
            )
            .into());
        }
        Ok(Some(message))
    }
}

/// The start of the message tonic gives a request message over its size
/// limit (tonic's `codec::decode`).
const TONIC_OVERSIZE: &str = "Error, decoded message length too large";

/// Whether `status` is tonic's refusal of an oversized request message.
fn is_oversize(status: &Status) -> bool {
    status.code() == Code::OutOfRange
        && status.details().is_empty()
        && status.message().starts_with(TONIC_OVERSIZE)
}

fn message_too_large(status: &Status) -> Error {
    Error::ResourceExhausted {
        reason: Reason::MessageTooLarge,
        message: format!("the request message is too large: {}", status.message()),
        metadata: Vec::new(),
    }
}

/// A response carrying tonic's oversize refusal, answered as
/// `RESOURCE_EXHAUSTED` `MESSAGE_TOO_LARGE` instead; others as they are.
pub fn rename_oversize(
    response: http::Response<tonic::body::Body>,
) -> http::Response<tonic::body::Body> {
    match Status::from_header_map(response.headers()) {
        Some(status) if is_oversize(&status) => {
            Status::from(message_too_large(&status)).into_http()
        }
        _ => response,
    }
}

/// What a failed read of a client stream's next message means for the
/// upload it carries: the client's bad message, or a transfer that broke.
pub fn upload_error(status: &Status) -> Error {
    if is_oversize(status) {
        message_too_large(status)
    } else if status.code() == Code::InvalidArgument {
        Error::Malformed(status.message().to_owned())
    } else {
        Error::Unavailable {
            reason: Reason::UploadInterrupted,
            message: format!("the upload broke off: {}", status.message()),
        }
    }
}
