//! `org settings get|update`: the org's settings.

use clap::{Args, Subcommand, ValueEnum};
use roster::api::pb;
use serde::Serialize;

use crate::{
    error::CliError,
    output::{Output, emit, enum_name, key_value_table, note, render},
    session::SignedIn,
};

#[derive(Subcommand)]
pub enum OrgCommand {
    /// Show or change the org's settings.
    #[command(subcommand)]
    Settings(SettingsCommand),
}

#[derive(Subcommand)]
pub enum SettingsCommand {
    /// Show the org's settings.
    Get,
    /// Change the settings named by the flags given, and only those.
    Update(Box<UpdateSettingsArgs>),
}

/// Durations are written like 90s, 15m, 12h, 7d or 1h30m.
#[derive(Args)]
pub struct UpdateSettingsArgs {
    /// Fail with ABORTED if the settings changed since this etag was read
    /// [default: update regardless].
    #[arg(long)]
    etag: Option<String>,
    /// The org's name.
    #[arg(long)]
    display_name: Option<String>,
    /// Most INVITED and ACTIVE users at once (0 for no limit).
    #[arg(long, value_name = "N")]
    seat_limit: Option<u32>,
    /// Most chats at once for agents without their own max chats.
    #[arg(long, value_name = "N")]
    default_max_chats: Option<u32>,
    /// Minimum password length (8 to 64).
    #[arg(long, value_name = "N")]
    password_min_length: Option<u32>,
    /// Consecutive failed sign-ins that lock an account.
    #[arg(long, value_name = "N")]
    lockout_threshold: Option<u32>,
    /// How long a lock lasts (0 for until an admin unlocks).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    lockout_duration: Option<prost_types::Duration>,
    /// Which identifier users type to sign in, unless set per user.
    #[arg(long, value_enum)]
    login_with: Option<OrgLoginWith>,
    /// How long an invitation link stays valid.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    invite_lifetime: Option<prost_types::Duration>,
    /// How long a session lasts after sign-in.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    session_lifetime: Option<prost_types::Duration>,
    /// How long presence survives without a heartbeat.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    presence_lease: Option<prost_types::Duration>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum OrgLoginWith {
    /// Only the email address.
    Email,
    /// Only the login id.
    LoginId,
    /// Either.
    Both,
}

impl From<OrgLoginWith> for pb::LoginWith {
    fn from(login_with: OrgLoginWith) -> Self {
        match login_with {
            OrgLoginWith::Email => Self::Email,
            OrgLoginWith::LoginId => Self::LoginId,
            OrgLoginWith::Both => Self::Both,
        }
    }
}

/// Runs one `org` subcommand.
pub async fn run(signed_in: &SignedIn, command: OrgCommand, out: Output) -> Result<(), CliError> {
    let OrgCommand::Settings(command) = command;
    let settings = match command {
        SettingsCommand::Get => {
            signed_in
                .org()
                .get_org_settings(pb::GetOrgSettingsRequest {})
                .await?
                .into_inner()
                .settings
        }
        SettingsCommand::Update(args) => {
            let (settings, paths) = settings_update(*args);
            if paths.is_empty() {
                return Err(CliError::msg(
                    "nothing to change: give at least one setting flag, e.g. --seat-limit \
                     (see rosterctl org settings update --help)",
                ));
            }
            let response = signed_in
                .org()
                .update_org_settings(pb::UpdateOrgSettingsRequest {
                    settings: Some(settings),
                    update_mask: Some(prost_types::FieldMask {
                        paths: paths.into_iter().map(str::to_owned).collect(),
                    }),
                })
                .await?
                .into_inner();
            if response.over_seat_limit {
                let used = response.settings.as_ref().map_or(0, |s| s.seats_used);
                note(format!(
                    "note: {used} seats are in use, more than the new limit: existing users keep \
                     theirs, but no new seat is granted until enough are freed"
                ));
            }
            response.settings
        }
    };
    let settings = settings
        .map(SettingsView::from)
        .ok_or_else(|| CliError::msg("the server's response carries no settings"))?;
    if out.json {
        return out.json(&settings);
    }
    let seat_limit = match settings.seat_limit {
        0 => "none".to_owned(),
        n => n.to_string(),
    };
    let lockout_duration = match settings.lockout_duration.as_deref() {
        Some("0s") => "until an admin unlocks".to_owned(),
        _ => human(settings.lockout_duration.as_deref()),
    };
    emit(render(&key_value_table(vec![
        ("ORG", format!("{} ({})", settings.slug, settings.org_id)),
        ("NAME", settings.display_name.clone()),
        ("SEATS USED", settings.seats_used.to_string()),
        ("SEAT LIMIT", seat_limit),
        ("DEFAULT MAX CHATS", settings.default_max_chats.to_string()),
        (
            "PASSWORD MIN LENGTH",
            settings.password_min_length.to_string(),
        ),
        ("LOCKOUT THRESHOLD", settings.lockout_threshold.to_string()),
        ("LOCKOUT DURATION", lockout_duration),
        (
            "LOGIN WITH",
            settings
                .login_with
                .strip_prefix("LOGIN_WITH_")
                .unwrap_or(&settings.login_with)
                .to_owned(),
        ),
        (
            "INVITE LIFETIME",
            human(settings.invite_lifetime.as_deref()),
        ),
        (
            "SESSION LIFETIME",
            human(settings.session_lifetime.as_deref()),
        ),
        ("PRESENCE LEASE", human(settings.presence_lease.as_deref())),
    ])))
}

/// The settings to send and the mask naming exactly the flags given.
fn settings_update(args: UpdateSettingsArgs) -> (pb::OrgSettings, Vec<&'static str>) {
    let mut paths = Vec::new();
    let mut settings = pb::OrgSettings {
        etag: args.etag.unwrap_or_default(),
        ..Default::default()
    };
    let mut mask = |path: &'static str| paths.push(path);
    if let Some(name) = args.display_name {
        mask("display_name");
        settings.display_name = name;
    }
    if let Some(n) = args.seat_limit {
        mask("seat_limit");
        settings.seat_limit = n;
    }
    if let Some(n) = args.default_max_chats {
        mask("default_max_chats");
        settings.default_max_chats = n;
    }
    if let Some(n) = args.password_min_length {
        mask("password_min_length");
        settings.password_min_length = n;
    }
    if let Some(n) = args.lockout_threshold {
        mask("lockout_threshold");
        settings.lockout_threshold = n;
    }
    if let Some(duration) = args.lockout_duration {
        mask("lockout_duration");
        settings.lockout_duration = Some(duration);
    }
    if let Some(login_with) = args.login_with {
        mask("login_with");
        settings.login_with = pb::LoginWith::from(login_with) as i32;
    }
    if let Some(duration) = args.invite_lifetime {
        mask("invite_lifetime");
        settings.invite_lifetime = Some(duration);
    }
    if let Some(duration) = args.session_lifetime {
        mask("session_lifetime");
        settings.session_lifetime = Some(duration);
    }
    if let Some(duration) = args.presence_lease {
        mask("presence_lease");
        settings.presence_lease = Some(duration);
    }
    (settings, paths)
}

/// The JSON form of the settings: durations as in proto3 JSON ("3600s").
#[derive(Serialize)]
struct SettingsView {
    org_id: String,
    slug: String,
    display_name: String,
    seat_limit: u32,
    seats_used: u32,
    default_max_chats: u32,
    password_min_length: u32,
    lockout_threshold: u32,
    lockout_duration: Option<String>,
    login_with: String,
    invite_lifetime: Option<String>,
    session_lifetime: Option<String>,
    presence_lease: Option<String>,
    etag: String,
}

impl From<pb::OrgSettings> for SettingsView {
    fn from(settings: pb::OrgSettings) -> Self {
        // Exhaustive on purpose: a new setting must be decided on here.
        let pb::OrgSettings {
            org_id,
            slug,
            display_name,
            seat_limit,
            seats_used,
            default_max_chats,
            password_min_length,
            lockout_threshold,
            lockout_duration,
            login_with,
            invite_lifetime,
            session_lifetime,
            presence_lease,
            etag,
        } = settings;
        Self {
            org_id,
            slug,
            display_name,
            seat_limit,
            seats_used,
            default_max_chats,
            password_min_length,
            lockout_threshold,
            lockout_duration: lockout_duration.as_ref().map(proto_json),
            login_with: enum_name(login_with, pb::LoginWith::as_str_name),
            invite_lifetime: invite_lifetime.as_ref().map(proto_json),
            session_lifetime: session_lifetime.as_ref().map(proto_json),
            presence_lease: presence_lease.as_ref().map(proto_json),
            etag,
        }
    }
}

/// Units of the durations people type, longest first.
const UNITS: [(char, i64); 4] = [('d', 86_400), ('h', 3_600), ('m', 60), ('s', 1)];

/// Parses `90s`, `15m`, `12h`, `7d`, `1h30m` or a bare `0`.
fn parse_duration(text: &str) -> Result<prost_types::Duration, String> {
    let invalid = || format!("{text:?} is not a duration: use e.g. 90s, 15m, 12h, 7d or 1h30m");
    if text == "0" {
        return Ok(prost_types::Duration::default());
    }
    let mut seconds: i64 = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let (_, unit) = UNITS
            .iter()
            .find(|(name, _)| *name == c)
            .ok_or_else(invalid)?;
        let n: i64 = number.parse().map_err(|_| invalid())?;
        seconds = n
            .checked_mul(*unit)
            .and_then(|s| seconds.checked_add(s))
            .ok_or_else(invalid)?;
        number.clear();
    }
    if !number.is_empty() || text.is_empty() {
        return Err(invalid());
    }
    Ok(prost_types::Duration { seconds, nanos: 0 })
}

/// A duration as proto3 JSON writes it: seconds with an `s`, fractions
/// only when there are any. (Settings are never negative.)
fn proto_json(duration: &prost_types::Duration) -> String {
    if duration.nanos == 0 {
        format!("{}s", duration.seconds)
    } else {
        let fraction = format!("{:09}", duration.nanos.unsigned_abs());
        format!("{}.{}s", duration.seconds, fraction.trim_end_matches('0'))
    }
}

/// A proto3 JSON duration for people: `7d`, `12h`, `1h30m`, `0s`.
fn human(duration: Option<&str>) -> String {
    let Some(text) = duration else {
        return "-".into();
    };
    let Some(Ok(mut seconds)) = text.strip_suffix('s').map(str::parse::<i64>) else {
        // Fractions of a second: show them as they are.
        return text.to_owned();
    };
    if seconds == 0 {
        return "0s".into();
    }
    let mut parts = String::new();
    for (name, unit) in UNITS {
        if seconds >= unit {
            parts.push_str(&format!("{}{name}", seconds / unit));
            seconds %= unit;
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print_back() {
        for (text, seconds) in [
            ("0", 0),
            ("90s", 90),
            ("15m", 900),
            ("12h", 43_200),
            ("7d", 604_800),
            ("1h30m", 5_400),
        ] {
            let duration = parse_duration(text).expect(text);
            assert_eq!(duration.seconds, seconds, "{text}");
        }
        for bad in ["", "7", "h", "1x", "1.5h", "-1h", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} parsed");
        }
        assert_eq!(human(Some("5400s")), "1h30m");
        assert_eq!(human(Some("604800s")), "7d");
        assert_eq!(human(Some("0s")), "0s");
        assert_eq!(human(Some("1.5s")), "1.5s");
        assert_eq!(
            proto_json(&prost_types::Duration {
                seconds: 1,
                nanos: 500_000_000
            }),
            "1.5s"
        );
    }
}
