//! Paged lists: `--page-size`, `--page-token` and `--all`.

use std::future::Future;

use clap::Args;
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

    /// Fetches one page, or with `--all` every page from the given token
    /// on. `fetch` gets a page token and returns that page's items and the
    /// next token. Returns the items and the token of the page after them
    /// (empty when there is none).
    pub async fn collect<T, F, Fut>(&self, mut fetch: F) -> Result<(Vec<T>, String), CliError>
    where
        F: FnMut(String) -> Fut,
        Fut: Future<Output = Result<(Vec<T>, String), Status>>,
    {
        let mut token = self.page_token.clone().unwrap_or_default();
        let mut items = Vec::new();
        loop {
            let (page, next) = fetch(token.clone()).await?;
            items.extend(page);
            if !self.all || next.is_empty() {
                return Ok((items, next));
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

/// Tells on stderr how to get the next page, if there is one.
pub fn note_next_page(next_page_token: &str) {
    if !next_page_token.is_empty() {
        note(format!(
            "next page token: {next_page_token} (pass it with --page-token, or use --all)"
        ));
    }
}
