//! ExportUsers: the users a listing would return, as a CSV file produced a
//! chunk at a time.
//!
//! The file format is the contract of `docs/csv.md`, shared with the import:
//! UTF-8, a header row, `\n` line ends, the columns of [`COLUMNS`] in that
//! order, the import columns first so that an export can be re-imported.
//! Cells a spreadsheet would run as a formula are defused (see [`defuse`]).
//!
//! Memory stays bounded whatever the org's size: the export walks the
//! listing a page of [`PAGE_SIZE`] users at a time and hands out chunks of
//! about [`CHUNK_BYTES`]. Rows come in the listing's order (display name
//! case-insensitively, then id). Each page reads the data as it is then,
//! not one snapshot: a user created or renamed while the export runs may be
//! missing, or (renamed past the cursor) appear twice.

use std::{borrow::Cow, collections::HashMap};

use chrono::{DateTime, SecondsFormat, Utc};

use super::Users;
use crate::{
    auth::Principal,
    domain::{TeamId, User, UserCriteria, UserPageKey},
    error::{Error, Result},
};

/// The columns an import requires, in file order.
pub const IMPORT_REQUIRED: [&str; 4] = ["first_name", "last_name", "login_id", "email"];
/// The columns an import also reads when present, after the required ones.
pub const IMPORT_OPTIONAL: [&str; 2] = ["roles", "teams"];

/// The columns, in file order: the import's first (a test keeps them so),
/// so that an export can be imported again.
pub const COLUMNS: [&str; 14] = [
    "first_name",
    "last_name",
    "login_id",
    "email",
    "roles",
    "teams",
    "user_id",
    "display_name",
    "state",
    "locked",
    "public_name",
    "max_chats",
    "created_at",
    "last_login_at",
];

/// Separates the names inside the `roles` and `teams` cells.
pub const LIST_SEPARATOR: &str = ";";

/// Users read from the store at a time.
pub const PAGE_SIZE: u64 = 500;

/// A chunk is handed out once it holds at least this many bytes (so it
/// exceeds it by less than one row).
pub const CHUNK_BYTES: usize = 64 * 1024;

/// What a cell may not start with, lest a spreadsheet run it as a formula
/// (OWASP's CSV injection advice).
const FORMULA_TRIGGERS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// An export in progress: call [`UserExport::next_chunk`] until it returns
/// `None`.
pub struct UserExport {
    users: Users,
    principal: Principal,
    criteria: UserCriteria,
    team_names: HashMap<TeamId, String>,
    /// Users read but not yet encoded, in order.
    pending: std::vec::IntoIter<User>,
    /// Where the next page starts; `None` once the last page is read.
    next: Option<UserPageKey>,
    /// The header, until the first chunk carries it.
    header_due: bool,
    finished: bool,
}

impl Users {
    /// Starts an export of the users `principal` may read that match
    /// `criteria` (the scope is ListUsers'). The first page is read here, so
    /// a refusal or a broken store fails the call rather than the stream.
    pub async fn export_users(
        &self,
        principal: &Principal,
        criteria: UserCriteria,
    ) -> Result<UserExport> {
        let first = self
            .list_users(principal, criteria.clone(), None, PAGE_SIZE)
            .await?;
        let mut export = UserExport {
            users: self.clone(),
            principal: principal.clone(),
            criteria,
            team_names: HashMap::new(),
            pending: Vec::new().into_iter(),
            next: None,
            header_due: true,
            finished: false,
        };
        export.load_team_names().await?;
        export.take_page(first.users, first.next).await?;
        Ok(export)
    }
}

impl UserExport {
    /// The next piece of the file, or `None` after the last one. The first
    /// chunk always comes, with the header, even when no user matches.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>> {
        if self.finished {
            return Ok(None);
        }
        let mut chunk = ChunkWriter::new();
        if std::mem::take(&mut self.header_due) {
            chunk.row(COLUMNS.map(Cow::Borrowed))?;
        }
        while chunk.len() < CHUNK_BYTES {
            let user = match self.pending.next() {
                Some(user) => user,
                None => match self.next.take() {
                    Some(after) => {
                        self.read_page(after).await?;
                        continue;
                    }
                    None => {
                        self.finished = true;
                        break;
                    }
                },
            };
            chunk.row(row(&user, &self.team_names))?;
        }
        let bytes = chunk.finish()?;
        Ok((!bytes.is_empty()).then_some(bytes))
    }

    async fn read_page(&mut self, after: UserPageKey) -> Result<()> {
        let page = self
            .users
            .list_users(
                &self.principal,
                self.criteria.clone(),
                Some(after),
                PAGE_SIZE,
            )
            .await?;
        self.take_page(page.users, page.next).await
    }

    /// Queues a page; reloads the team names first if a team was created
    /// since they were read.
    async fn take_page(&mut self, users: Vec<User>, next: Option<UserPageKey>) -> Result<()> {
        let unknown_team = users
            .iter()
            .flat_map(|u| &u.team_ids)
            .any(|id| !self.team_names.contains_key(id));
        if unknown_team {
            self.load_team_names().await?;
        }
        self.pending = users.into_iter();
        self.next = next;
        Ok(())
    }

    async fn load_team_names(&mut self) -> Result<()> {
        self.team_names = self
            .users
            .store
            .read()
            .teams(self.principal.org_id)
            .await?
            .into_iter()
            .map(|team| (team.id, team.name.as_str().to_owned()))
            .collect();
        Ok(())
    }
}

/// One user's cells, in [`COLUMNS`] order.
fn row<'a>(
    user: &'a User,
    team_names: &'a HashMap<TeamId, String>,
) -> [Cow<'a, str>; COLUMNS.len()] {
    let (first_name, last_name) = split_name(user.display_name.as_str());
    let roles = user
        .roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(LIST_SEPARATOR);
    // By name, as people read them; a team deleted since the page was read
    // shows its id.
    let mut teams: Vec<Cow<'_, str>> = user
        .team_ids
        .iter()
        .map(|id| match team_names.get(id) {
            Some(name) => Cow::Borrowed(name.as_str()),
            None => Cow::Owned(id.to_string()),
        })
        .collect();
    teams.sort_by_cached_key(|name| name.to_lowercase());
    [
        Cow::Borrowed(first_name),
        Cow::Borrowed(last_name),
        Cow::Borrowed(user.login_id.as_ref().map_or("", |l| l.as_str())),
        Cow::Borrowed(user.email.as_str()),
        Cow::Owned(roles),
        Cow::Owned(teams.join(LIST_SEPARATOR)),
        Cow::Owned(user.id.to_string()),
        Cow::Borrowed(user.display_name.as_str()),
        Cow::Borrowed(user.state.as_str()),
        Cow::Borrowed(if user.locked { "true" } else { "false" }),
        Cow::Borrowed(user.public_name.as_str()),
        user.max_chats
            .map_or(Cow::Borrowed(""), |n| Cow::Owned(n.to_string())),
        Cow::Owned(timestamp(user.created_at)),
        user.last_login_at
            .map_or(Cow::Borrowed(""), |t| Cow::Owned(timestamp(t))),
    ]
}

/// `first_name` and `last_name`: the display name split at its first space;
/// without one, all of it is the first name.
fn split_name(display_name: &str) -> (&str, &str) {
    display_name.split_once(' ').unwrap_or((display_name, ""))
}

/// RFC 3339 in UTC, to the second: `2025-01-31T09:30:00Z`.
fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A cell made safe to open in a spreadsheet: one that would start a formula
/// (`=`, `+`, `-`, `@`, tab or carriage return) gets a `'` in front, which
/// spreadsheets read as "this is text".
///
/// Cells that already start with quotes followed by such a character get
/// one more, so the rule can be undone exactly: an importer that finds a
/// cell starting with one or more `'` then a trigger drops the first `'`.
pub fn defuse(cell: &str) -> Cow<'_, str> {
    if cell.trim_start_matches('\'').starts_with(FORMULA_TRIGGERS) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// The inverse of [`defuse`], for the import side: drops the `'` that
/// [`defuse`] added, and only that.
pub fn undefuse(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.trim_start_matches('\'').starts_with(FORMULA_TRIGGERS) => rest,
        _ => cell,
    }
}

/// Encodes rows into one chunk of the file.
struct ChunkWriter {
    csv: csv::Writer<Vec<u8>>,
}

impl ChunkWriter {
    fn new() -> Self {
        Self {
            csv: csv::WriterBuilder::new()
                .has_headers(false)
                .terminator(csv::Terminator::Any(b'\n'))
                .from_writer(Vec::with_capacity(CHUNK_BYTES + 4 * 1024)),
        }
    }

    /// Appends one record, every cell defused.
    fn row<'a>(&mut self, cells: impl IntoIterator<Item = Cow<'a, str>>) -> Result<()> {
        for cell in cells {
            self.csv
                .write_field(defuse(&cell).as_bytes())
                .map_err(Error::internal)?;
        }
        self.csv
            .write_record(None::<&[u8]>)
            .map_err(Error::internal)?;
        // Out of the writer's own buffer, so `len` counts every row.
        self.csv.flush().map_err(Error::internal)
    }

    fn len(&self) -> usize {
        self.csv.get_ref().len()
    }

    fn finish(self) -> Result<Vec<u8>> {
        self.csv
            .into_inner()
            .map_err(|e| Error::internal(e.into_error()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(cells: &[&str]) -> String {
        let mut chunk = ChunkWriter::new();
        chunk.row(cells.iter().map(|c| Cow::Borrowed(*c))).unwrap();
        String::from_utf8(chunk.finish().unwrap()).unwrap()
    }

    #[test]
    fn formula_cells_get_a_quote_in_front() {
        for cell in ["=1+2", "+1", "-2", "@x", "\tx", "\rx", "=HYPERLINK(\"a\")"] {
            assert_eq!(defuse(cell), format!("'{cell}"), "{cell:?}");
        }
        for cell in ["", "Ann", "a=b", "1-2", "'", "'quoted", "x@example.com"] {
            assert_eq!(defuse(cell), cell, "{cell:?}");
        }
    }

    #[test]
    fn defusing_can_be_undone_exactly() {
        for cell in [
            "", "Ann", "=1", "'=1", "''=1", "'", "''", "'Ann", "-", "'-", "@", "a'=b",
        ] {
            assert_eq!(undefuse(&defuse(cell)), cell, "{cell:?}");
        }
    }

    #[test]
    fn cells_with_commas_quotes_and_newlines_are_quoted() {
        assert_eq!(
            encode(&["a,b", "say \"hi\"", "two\nlines", "plain"]),
            "\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",plain\n"
        );
    }

    #[test]
    fn a_quoted_formula_is_still_defused() {
        assert_eq!(encode(&["=1,2", "x"]), "\"'=1,2\",x\n");
    }

    #[test]
    fn an_export_starts_with_the_columns_an_import_reads() {
        let import: Vec<&str> = IMPORT_REQUIRED
            .iter()
            .chain(&IMPORT_OPTIONAL)
            .copied()
            .collect();
        assert_eq!(COLUMNS[..import.len()], import[..]);
    }

    #[test]
    fn names_split_at_the_first_space() {
        assert_eq!(split_name("Ann"), ("Ann", ""));
        assert_eq!(split_name("Ann Lee"), ("Ann", "Lee"));
        assert_eq!(
            split_name("Ana María de la Cruz"),
            ("Ana", "María de la Cruz")
        );
    }

    #[test]
    fn timestamps_are_rfc3339_utc_to_the_second() {
        let at = DateTime::parse_from_rfc3339("2025-01-31T10:30:00.123456+01:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(timestamp(at), "2025-01-31T09:30:00Z");
    }
}
