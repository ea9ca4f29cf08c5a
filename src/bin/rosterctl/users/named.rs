//! Users named as people name them: by id, email or login id.

use roster::api::pb;
use tonic::Code;

use crate::{error::CliError, session::SignedIn};

/// Pages of matches read before giving up on an exact one.
const MAX_PAGES: usize = 20;

/// The id of the user `name` names: an id is taken as it is; otherwise the
/// one user of the org whose email or login id it is (case-insensitive).
pub async fn user_id_of(signed_in: &SignedIn, name: String) -> Result<String, CliError> {
    if uuid::Uuid::parse_str(&name).is_ok() {
        return Ok(name);
    }
    let wanted = name.trim().to_lowercase();
    let mut page_token = String::new();
    for _ in 0..MAX_PAGES {
        let page = signed_in
            .users()
            .list_users(pb::ListUsersRequest {
                query: name.clone(),
                page_size: 100,
                page_token,
                ..Default::default()
            })
            .await
            .map_err(|status| match status.code() {
                Code::PermissionDenied => CliError::msg(format!(
                    "naming a user by email or login id ({name:?}) needs the users.read \
                     permission; give the user's id instead"
                )),
                _ => CliError::Status(status),
            })?
            .into_inner();
        if let Some(user) = page
            .users
            .iter()
            .find(|u| u.email.to_lowercase() == wanted || u.login_id.to_lowercase() == wanted)
        {
            return Ok(user.user_id.clone());
        }
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    Err(CliError::msg(format!(
        "no user has the id, email or login id {name:?}"
    )))
}

/// The ids of the users `names` name, in order (see [`user_id_of`]).
pub async fn user_ids_of(
    signed_in: &SignedIn,
    names: Vec<String>,
) -> Result<Vec<String>, CliError> {
    let mut ids = Vec::with_capacity(names.len());
    for name in names {
        ids.push(user_id_of(signed_in, name).await?);
    }
    Ok(ids)
}
