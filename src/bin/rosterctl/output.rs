//! The output contract: results to stdout (tables or JSON), remarks to stderr.

use std::{
    fmt::Display,
    io::{self, Write},
};

use chrono::{DateTime, SecondsFormat, Utc};
use comfy_table::{Table, presets};
use serde::Serialize;

use crate::error::CliError;

#[derive(Clone, Copy)]
pub struct Output {
    pub json: bool,
}

impl Output {
    pub fn json(self, value: &impl Serialize) -> Result<(), CliError> {
        let text = serde_json::to_string_pretty(value)
            .map_err(|e| CliError::msg(format!("cannot encode the output: {e}")))?;
        emit(text)
    }

    /// A list as JSON, as a table, or as a note (`none`) that it is empty;
    /// `table` is only built to be shown.
    pub fn list<T: Serialize>(
        self,
        items: &[T],
        none: &str,
        table: impl FnOnce(&[T]) -> Table,
    ) -> Result<(), CliError> {
        if self.json {
            self.json(&items)
        } else if items.is_empty() {
            note(none);
            Ok(())
        } else {
            emit(render(&table(items)))
        }
    }
}

/// Writes a result to stdout. A closed pipe (`rosterctl … | head`) is not an
/// error: the reader has all it wanted.
pub fn emit(text: impl Display) -> Result<(), CliError> {
    write_out(text).map(|_| ())
}

/// Like [`emit`], for commands that keep writing until stopped: `Ok(false)`
/// when the reader has gone (a closed pipe), so they know to stop.
pub fn write_out(text: impl Display) -> Result<bool, CliError> {
    let mut stdout = io::stdout().lock();
    match writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(CliError::msg(format!("cannot write to stdout: {e}"))),
    }
}

/// Writes bytes to stdout as they are (no line end added) and flushes them;
/// `Ok(false)` when the reader has gone (a closed pipe).
pub fn write_raw(bytes: &[u8]) -> Result<bool, CliError> {
    let mut stdout = io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(CliError::msg(format!("cannot write to stdout: {e}"))),
    }
}

/// Writes a remark to stderr; if even that fails there is nobody to tell.
pub fn note(text: impl Display) {
    let _ = writeln!(io::stderr(), "{text}");
}

pub fn key_value_table(rows: Vec<(&str, String)>) -> Table {
    let mut table = plain_table();
    for (label, value) in rows {
        table.add_row([label.to_owned(), value]);
    }
    table
}

/// Borderless, like `kubectl get`: easy to read and to grep.
pub fn plain_table() -> Table {
    let mut table = Table::new();
    table.load_preset(presets::NOTHING);
    table
}

/// The table without the padding comfy-table puts at both ends of a line,
/// so output lines start with their first column and carry no trailing blanks.
pub fn render(table: &Table) -> String {
    table
        .lines()
        .map(|line| {
            let line = line.strip_prefix(' ').unwrap_or(&line).trim_end();
            line.to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn yes_no(flag: bool) -> &'static str {
    if flag { "yes" } else { "no" }
}

/// `text` cut to `width` characters, with an ellipsis when cut.
pub fn shorten(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return if text.is_empty() {
            "-".into()
        } else {
            text.into()
        };
    }
    let mut short: String = text.chars().take(width - 1).collect();
    short.push('…');
    short
}

pub fn dash_if_empty(text: String) -> String {
    if text.is_empty() { "-".into() } else { text }
}

/// The proto name of an enum value, or the bare number for a value this
/// build does not know (a newer server), so nothing is hidden.
pub fn enum_name<E: TryFrom<i32>>(value: i32, name: fn(&E) -> &'static str) -> String {
    E::try_from(value).map_or_else(|_| value.to_string(), |e| name(&e).to_owned())
}

pub fn rfc3339(timestamp: Option<&prost_types::Timestamp>) -> Option<String> {
    datetime(timestamp).map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// The time a timestamp names, if it is set and in chrono's range.
pub fn datetime(timestamp: Option<&prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    let timestamp = timestamp?;
    let nanos = u32::try_from(timestamp.nanos).ok()?;
    DateTime::<Utc>::from_timestamp(timestamp.seconds, nanos)
}

/// Parses a time given on the command line (a clap value parser).
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{text:?} is not an RFC 3339 time ({e}), e.g. 2026-01-31T09:00:00Z"))
}

pub fn timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        // Always below 2·10⁹, so it fits.
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
    }
}
