//! Paged lists: `--page-size`, `--page-token` and `--all`.

use clap::Args;
use roster::api::pb;
use tonic::Status;

use crate::{error::CliError, output::note};

#[derive(Args)]
pub struct PageArgs {
    /// Most entries per page [default: the server's].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    page_size: Option<u16>,
    /// Continue from a previous page's next page token.
    #[arg(long, value_name = "T")]
    page_token: Option<String>,
    /// Follow page tokens and list every entry.
    #[arg(long)]
    all: bool,
}

impl PageArgs {
    /// Every page, at the server's page size.
    pub fn every() -> Self {
        Self {
            page_size: None,
            page_token: None,
            all: true,
        }
    }

    /// The page size to send: 0 asks for the server's default.
    pub fn size(&self) -> i32 {
        self.page_size.map_or(0, i32::from)
    }

    /// Fetches one page of `request`, or with `--all` every page from the
    /// given token on; `call` sends one page's request. Returns the entries
    /// and the token of the page after them (empty when there is none).
    pub async fn list<R: Paged>(
        &self,
        request: R,
        call: impl AsyncFnMut(R) -> Result<tonic::Response<R::Response>, Status>,
    ) -> Result<(Vec<R::Item>, String), CliError> {
        let mut items = Vec::new();
        let next = self.visit(request, call, |page| items.extend(page)).await?;
        Ok((items, next))
    }

    /// As [`PageArgs::list`], handing each page to `visit` as it arrives
    /// instead of keeping them all.
    pub async fn visit<R: Paged>(
        &self,
        request: R,
        mut call: impl AsyncFnMut(R) -> Result<tonic::Response<R::Response>, Status>,
        mut visit: impl FnMut(Vec<R::Item>),
    ) -> Result<String, CliError> {
        let mut token = self.page_token.clone().unwrap_or_default();
        loop {
            let mut ask = request.clone();
            ask.ask(self.size(), token.clone());
            let (page, next) = R::page(call(ask).await?.into_inner());
            visit(page);
            if !self.all || next.is_empty() {
                return Ok(next);
            }
            // A server bug handing back the same token would loop forever.
            if next == token {
                return Err(CliError::msg(
                    "the server returned the same page token twice",
                ));
            }
            token = next;
        }
    }
}

/// A List request of the API, as [`PageArgs::list`] pages through it.
pub trait Paged: Clone {
    type Response;
    type Item;
    /// Asks for the page `token` names, of at most `size` entries (0: the
    /// server's default).
    fn ask(&mut self, size: i32, token: String);
    /// A page's entries and the next page's token.
    fn page(response: Self::Response) -> (Vec<Self::Item>, String);
}

macro_rules! paged {
    ($($request:ident => $response:ident.$items:ident: $item:ident),+ $(,)?) => {$(
        impl Paged for pb::$request {
            type Response = pb::$response;
            type Item = pb::$item;
            fn ask(&mut self, size: i32, token: String) {
                self.page_size = size;
                self.page_token = token;
            }
            fn page(response: pb::$response) -> (Vec<pb::$item>, String) {
                (response.$items, response.next_page_token)
            }
        }
    )+};
}

paged! {
    ListUsersRequest => ListUsersResponse.users: User,
    ListDeletedUsersRequest => ListDeletedUsersResponse.deleted_users: DeletedUser,
    ListImportJobsRequest => ListImportJobsResponse.import_jobs: ImportJob,
    ListTeamsRequest => ListTeamsResponse.teams: Team,
    ListRolesRequest => ListRolesResponse.roles: Role,
    ListApiKeysRequest => ListApiKeysResponse.api_keys: ApiKey,
    ListPresenceRequest => ListPresenceResponse.presences: Presence,
    ListAuditEventsRequest => ListAuditEventsResponse.audit_events: AuditEvent,
    GetActivityRequest => GetActivityResponse.rows: ActivityRow,
    ListOrgsRequest => ListOrgsResponse.orgs: Org,
    ListPlatformAuditEventsRequest => ListPlatformAuditEventsResponse.events: PlatformAuditEvent,
}

/// Tells on stderr how to get the next page, if there is one.
pub fn note_next_page(next_page_token: &str) {
    if !next_page_token.is_empty() {
        note(format!(
            "next page token: {next_page_token} (pass it with --page-token, or use --all)"
        ));
    }
}
