//! Questions asked on the terminal: passwords, and confirmation of
//! destructive actions.

use std::io::{self, BufRead, IsTerminal, Write};

use clap::Args;

use crate::error::CliError;

/// `--yes` of the commands that destroy something.
#[derive(Args)]
pub struct Confirmation {
    /// Do not ask for confirmation (needed when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
}

impl Confirmation {
    /// Whether the action must be confirmed on the terminal. Without
    /// `--yes` and without a terminal nobody can answer, so this refuses at
    /// once (before any network call) instead of waiting on stdin.
    pub fn needed(&self, action: &str) -> Result<bool, CliError> {
        if self.yes {
            return Ok(false);
        }
        if !io::stdin().is_terminal() {
            return Err(CliError::msg(format!(
                "refusing to {action} without confirmation: stdin is not a terminal; \
                 pass --yes to go ahead"
            )));
        }
        Ok(true)
    }
}

/// Asks `question [y/N]` on the terminal; only "y" or "yes" goes ahead.
/// Anything else, including end of input, cancels with an error, so that a
/// script never mistakes a cancelled action for a done one.
pub fn confirm(question: &str) -> Result<(), CliError> {
    let mut stderr = io::stderr().lock();
    write!(stderr, "{question} [y/N] ")
        .and_then(|()| stderr.flush())
        .map_err(|e| CliError::msg(format!("cannot ask for confirmation: {e}")))?;
    drop(stderr);
    let mut answer = String::new();
    io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| CliError::msg(format!("cannot read the answer: {e}")))?;
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(CliError::msg("cancelled: nothing was changed")),
    }
}

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
    prompt_twice("Password: ", "Repeat password: ")
}

/// Asks for a password twice, with these prompts; the answers must match.
pub fn prompt_twice(first: &str, again: &str) -> Result<String, CliError> {
    let password = prompt_password(first)?;
    if prompt_password(again)? != password {
        return Err(CliError::msg("the passwords do not match"));
    }
    Ok(password)
}

/// The next line of stdin without its line ending, or `None` at the end of
/// input. Lines after the first carry further passwords (e.g. a new one).
pub fn next_line_from_stdin() -> Result<Option<String>, CliError> {
    let mut line = String::new();
    let read = io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::msg(format!("cannot read stdin: {e}")))?;
    if read == 0 {
        return Ok(None);
    }
    Ok(Some(line.trim_end_matches(['\r', '\n']).to_owned()))
}

/// A new password given twice on the next two lines of stdin, or `None`
/// when stdin has ended before them.
pub fn new_password_from_stdin() -> Result<Option<String>, CliError> {
    let Some(password) = next_line_from_stdin()?.filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    match next_line_from_stdin()? {
        Some(again) if again == password => Ok(Some(password)),
        Some(_) => Err(CliError::msg("the new passwords on stdin do not match")),
        None => Err(CliError::msg(
            "the new password must be given twice on stdin (two lines)",
        )),
    }
}
