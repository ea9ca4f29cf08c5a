//! `keys …`: the org's API keys, the credentials of backend services.
//! `create` prints the secret once; Roster keeps only its hash.

use clap::Subcommand;
use roster::api::pb;
use serde::Serialize;

use crate::{
    error::CliError,
    output::{
        Output, dash_if_empty, emit, key_value_table, note, plain_table, render, rfc3339, shorten,
    },
    paging::{PageArgs, note_next_page},
    prompt::{Confirmation, confirm},
    session::SignedIn,
};

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a key and print its secret, once.
    Create {
        /// Name, unique in the org, e.g. chat-router.
        #[arg(long)]
        name: String,
        /// Permission the key grants, e.g. presence.read; repeat for several.
        #[arg(long = "scope", value_name = "SCOPE", required = true)]
        scopes: Vec<String>,
        /// Idempotency key: a retry with the same id does not create twice
        /// (and cannot show the secret again).
        #[arg(long, value_name = "ID")]
        request_id: Option<String>,
    },
    /// List the org's keys, oldest first; revoked ones only on request.
    List {
        /// Include revoked keys.
        #[arg(long)]
        show_revoked: bool,
        #[command(flatten)]
        pages: PageArgs,
    },
    /// Revoke a key: every service that calls with it fails at once.
    Revoke {
        /// Id of the key.
        api_key_id: String,
        #[command(flatten)]
        confirmation: Confirmation,
    },
}

/// Runs one `keys` subcommand.
pub async fn run(signed_in: &SignedIn, command: KeysCommand, out: Output) -> Result<(), CliError> {
    match command {
        KeysCommand::Create {
            name,
            scopes,
            request_id,
        } => create_key(signed_in, name, scopes, request_id, out).await,
        KeysCommand::List {
            show_revoked,
            pages,
        } => list_keys(signed_in, show_revoked, pages, out).await,
        KeysCommand::Revoke {
            api_key_id,
            confirmation,
        } => revoke_key(signed_in, api_key_id, confirmation, out).await,
    }
}

async fn create_key(
    signed_in: &SignedIn,
    name: String,
    scopes: Vec<String>,
    request_id: Option<String>,
    out: Output,
) -> Result<(), CliError> {
    let created = signed_in
        .auth()
        .create_api_key(pb::CreateApiKeyRequest {
            api_key: Some(pb::ApiKey {
                name,
                scopes,
                ..Default::default()
            }),
            request_id: request_id.unwrap_or_default(),
        })
        .await?
        .into_inner();
    let key = created
        .api_key
        .map(KeyView::from)
        .ok_or_else(|| CliError::msg("the server's response carries no key"))?;
    let secret = created.secret;
    if secret.is_empty() {
        note(
            "this request id created the key before: its secret was shown then and cannot be \
             shown again (revoke the key and create another if it is lost)",
        );
    } else {
        note(
            "Store the secret now: it will not be shown again. Services send it as \"authorization: Bearer <secret>\".",
        );
    }
    if out.json {
        #[derive(Serialize)]
        struct Created {
            api_key: KeyView,
            /// Empty when a request id was replayed.
            secret: String,
        }
        return out.json(&Created {
            api_key: key,
            secret,
        });
    }
    let mut rows = key_rows(&key);
    if !secret.is_empty() {
        rows.push(("SECRET", secret));
    }
    emit(render(&key_value_table(rows)))
}

async fn fetch_keys(
    signed_in: &SignedIn,
    show_revoked: bool,
    pages: &PageArgs,
) -> Result<(Vec<pb::ApiKey>, String), CliError> {
    let mut client = signed_in.auth();
    let request = pb::ListApiKeysRequest {
        show_revoked,
        ..Default::default()
    };
    pages
        .list(request, async |r| client.list_api_keys(r).await)
        .await
}

/// Longest scope list shown in a table cell; `--json` has them all.
const SCOPES_WIDTH: usize = 48;

async fn list_keys(
    signed_in: &SignedIn,
    show_revoked: bool,
    pages: PageArgs,
    out: Output,
) -> Result<(), CliError> {
    let (keys, next_page_token) = fetch_keys(signed_in, show_revoked, &pages).await?;
    let keys: Vec<KeyView> = keys.into_iter().map(KeyView::from).collect();
    out.list(
        &keys,
        if show_revoked {
            "no API keys"
        } else {
            "no live API keys (--show-revoked lists revoked ones too)"
        },
        |keys| {
            let mut table = plain_table();
            let mut header = vec!["ID", "NAME", "PREFIX", "SCOPES", "CREATED", "LAST USED"];
            if show_revoked {
                header.push("REVOKED");
            }
            table.set_header(header);
            for key in keys {
                let mut row = vec![
                    key.api_key_id.clone(),
                    key.name.clone(),
                    key.secret_prefix.clone(),
                    shorten(&key.scopes.join(","), SCOPES_WIDTH),
                    key.created_at.clone().unwrap_or_else(|| "-".into()),
                    key.last_used_at.clone().unwrap_or_else(|| "never".into()),
                ];
                if show_revoked {
                    row.push(key.revoked_at.clone().unwrap_or_else(|| "-".into()));
                }
                table.add_row(row);
            }
            table
        },
    )?;
    note_next_page(&next_page_token);
    Ok(())
}

async fn revoke_key(
    signed_in: &SignedIn,
    api_key_id: String,
    confirmation: Confirmation,
    out: Output,
) -> Result<(), CliError> {
    if confirmation.needed(&format!("revoke API key {api_key_id}"))? {
        // There is no GetApiKey: find the key in the list. A key that is not
        // there is left for the server to call NOT_FOUND.
        let (keys, _) = fetch_keys(signed_in, true, &PageArgs::every()).await?;
        if let Some(key) = keys.into_iter().find(|k| k.api_key_id == api_key_id) {
            confirm(&format!(
                "Revoke API key {} ({}…)? Every service using it fails at once.",
                key.name, key.secret_prefix
            ))?;
        }
    }
    let key = signed_in
        .auth()
        .revoke_api_key(pb::RevokeApiKeyRequest {
            api_key_id: api_key_id.clone(),
        })
        .await?
        .into_inner()
        .api_key
        .map(KeyView::from)
        .ok_or_else(|| CliError::msg("the server's response carries no key"))?;
    if out.json {
        return out.json(&key);
    }
    emit(format!(
        "Revoked API key {} ({}).",
        key.name, key.api_key_id
    ))
}

fn key_rows(key: &KeyView) -> Vec<(&'static str, String)> {
    vec![
        ("ID", key.api_key_id.clone()),
        ("NAME", key.name.clone()),
        ("SCOPES", dash_if_empty(key.scopes.join("\n"))),
        ("PREFIX", key.secret_prefix.clone()),
        (
            "CREATED",
            key.created_at.clone().unwrap_or_else(|| "-".into()),
        ),
        ("CREATED BY", dash_if_empty(key.created_by.clone())),
    ]
}

#[derive(Serialize)]
struct KeyView {
    api_key_id: String,
    name: String,
    scopes: Vec<String>,
    secret_prefix: String,
    created_at: Option<String>,
    created_by: String,
    last_used_at: Option<String>,
    revoked_at: Option<String>,
}

impl From<pb::ApiKey> for KeyView {
    fn from(key: pb::ApiKey) -> Self {
        let pb::ApiKey {
            api_key_id,
            name,
            scopes,
            created_at,
            created_by,
            last_used_at,
            revoked_at,
            secret_prefix,
        } = key;
        Self {
            api_key_id,
            name,
            scopes,
            secret_prefix,
            created_at: rfc3339(created_at.as_ref()),
            created_by,
            last_used_at: rfc3339(last_used_at.as_ref()),
            revoked_at: rfc3339(revoked_at.as_ref()),
        }
    }
}
