//! Questions asked on the terminal: passwords.

use std::io::{self, BufRead};

use crate::error::CliError;

/// The first line of stdin, without its line ending; other whitespace is
/// part of the password.
pub fn password_from_stdin() -> Result<String, CliError> {
    let mut line = String::new();
    io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::msg(format!("cannot read the password from stdin: {e}")))?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        return Err(CliError::msg("no password on stdin"));
    }
    Ok(password.to_owned())
}

pub fn prompt_password(prompt: &str) -> Result<String, CliError> {
    rpassword::prompt_password(prompt).map_err(|e| {
        CliError::msg(format!(
            "cannot prompt for a password ({e}): use --password-stdin"
        ))
    })
}

/// Asks twice, because a typo in a password nobody can see would lock the
/// new user out.
pub fn prompt_new_password() -> Result<String, CliError> {
    let first = prompt_password("Password: ")?;
    let second = prompt_password("Repeat password: ")?;
    if first != second {
        return Err(CliError::msg("the passwords do not match"));
    }
    Ok(first)
}
