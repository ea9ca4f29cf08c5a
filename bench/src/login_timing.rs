//! Login's refusals side by side: an unknown login, a wrong password, a
//! locked account and a suspended one must take the same time, or timing
//! tells which accounts exist. Sign-ins run one at a time (no queueing in
//! the figures), the four kinds interleaved in turn so drift on a noisy
//! machine falls on all alike; each kind is compared with the wrong
//! password by its median and a Mann–Whitney U test (|z| < 2: no
//! difference the samples can tell).

use std::time::{Duration, Instant};

use roster::api::pb::{self, auth_service_client::AuthServiceClient};
use tonic::{Code, transport::Channel};

use crate::{
    BenchError, Options,
    child::{Server, ServerKind},
    client,
    database::Database,
};

/// Users per refused kind: failures spread over them stay below the
/// lockout threshold (100 at most), so a kind stays what it is.
const USERS_PER_KIND: usize = 4;
const PASSWORD: &str = "a long enough password";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Unknown,
    WrongPassword,
    Locked,
    Suspended,
}

const KINDS: [Kind; 4] = [
    Kind::Unknown,
    Kind::WrongPassword,
    Kind::Locked,
    Kind::Suspended,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Unknown => "unknown login",
            Kind::WrongPassword => "wrong password",
            Kind::Locked => "locked account",
            Kind::Suspended => "suspended account",
        }
    }
}

pub async fn run(options: &Options) -> Result<(), BenchError> {
    let samples = if options.short { 20 } else { 200 };
    let database = Database::fresh(options.store, &options.postgres_url).await?;
    let server = Server::start(ServerKind::Roster, &client::roster_env(&database.url)).await?;
    let channel = client::connect(&server).await?;
    let token = client::login(&channel, client::ADMIN_EMAIL, client::ADMIN_PASSWORD).await?;
    set_lockout_threshold(&channel, &token, 3).await?;
    let mut admin = client::users(&channel, &token)?;
    let mut logins: Vec<(Kind, String)> = Vec::new();
    for kind in [Kind::WrongPassword, Kind::Locked, Kind::Suspended] {
        for n in 0..USERS_PER_KIND {
            let email = format!("{kind:?}{n}@bench.example.com").to_lowercase();
            let user = admin
                .create_user(pb::CreateUserRequest {
                    user: Some(pb::User {
                        email: email.clone(),
                        display_name: format!("{kind:?} {n}"),
                        roles: vec!["agent".into()],
                        ..Default::default()
                    }),
                    password: PASSWORD.into(),
                    ..Default::default()
                })
                .await?
                .into_inner()
                .user
                .ok_or_else(|| BenchError::msg("CreateUser answered no user"))?;
            match kind {
                Kind::Locked => {
                    for _ in 0..3 {
                        refused_login(&channel, &email, "wrong").await?;
                    }
                }
                Kind::Suspended => {
                    admin
                        .suspend_user(pb::SuspendUserRequest {
                            user_id: user.user_id,
                            ..Default::default()
                        })
                        .await?;
                }
                _ => {}
            }
            logins.push((kind, email));
        }
    }
    set_lockout_threshold(&channel, &token, 100).await?;

    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); KINDS.len()];
    for round in 0..samples {
        for turn in 0..KINDS.len() {
            let k = (round + turn) % KINDS.len();
            let email = match KINDS[k] {
                Kind::Unknown => format!("nobody{round}@bench.example.com"),
                kind => logins
                    .iter()
                    .filter(|(of, _)| *of == kind)
                    .nth(round % USERS_PER_KIND)
                    .map(|(_, email)| email.clone())
                    .ok_or_else(|| BenchError::msg("no user of that kind"))?,
            };
            // The locked and suspended accounts get their real password.
            let password = match KINDS[k] {
                Kind::Locked | Kind::Suspended => PASSWORD,
                _ => "not the password",
            };
            let started = Instant::now();
            refused_login(&channel, &email, password).await?;
            times[k].push(started.elapsed());
        }
    }
    drop(server);
    database.drop().await?;

    println!();
    println!(
        "Login refusals, {samples} each, one at a time, interleaved ({:?}):",
        options.store
    );
    println!(
        "  {:<18} {:>10} {:>10} {:>10}   vs wrong password",
        "kind", "median ms", "p90 ms", "mean ms"
    );
    let reference = &times[1];
    for (kind, sample) in KINDS.iter().zip(&times) {
        let median = quantile(sample, 0.5);
        let comparison = if matches!(kind, Kind::WrongPassword) {
            String::from("-")
        } else {
            format!(
                "median {:+.3} ms, Mann–Whitney z {:+.2}",
                median - quantile(reference, 0.5),
                mann_whitney_z(sample, reference)
            )
        };
        println!(
            "  {:<18} {:>10.3} {:>10.3} {:>10.3}   {comparison}",
            kind.name(),
            median,
            quantile(sample, 0.9),
            sample.iter().map(Duration::as_secs_f64).sum::<f64>() * 1e3 / sample.len() as f64,
        );
    }
    Ok(())
}

async fn set_lockout_threshold(
    channel: &Channel,
    token: &str,
    threshold: u32,
) -> Result<(), BenchError> {
    client::org(channel, token)?
        .update_org_settings(pb::UpdateOrgSettingsRequest {
            settings: Some(pb::OrgSettings {
                lockout_threshold: threshold,
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["lockout_threshold".into()],
            }),
        })
        .await?;
    Ok(())
}

/// A sign-in that must be refused with the one answer.
async fn refused_login(channel: &Channel, login: &str, password: &str) -> Result<(), BenchError> {
    let answer = AuthServiceClient::new(channel.clone())
        .login(pb::LoginRequest {
            org: client::ORG.into(),
            login: login.into(),
            password: password.into(),
        })
        .await;
    match answer {
        Err(status) if status.code() == Code::Unauthenticated => Ok(()),
        Err(status) => Err(status.into()),
        Ok(_) => Err(BenchError::msg(format!("{login} signed in"))),
    }
}

/// The `q` quantile of `sample`, in milliseconds.
fn quantile(sample: &[Duration], q: f64) -> f64 {
    let mut sorted: Vec<f64> = sample.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    sorted.sort_by(f64::total_cmp);
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[index]
}

/// The normal approximation of the Mann–Whitney U statistic of `a` against
/// `b` (ties get their average rank): positive when `a` tends to be slower.
fn mann_whitney_z(a: &[Duration], b: &[Duration]) -> f64 {
    let mut all: Vec<(Duration, bool)> = a
        .iter()
        .map(|d| (*d, true))
        .chain(b.iter().map(|d| (*d, false)))
        .collect();
    all.sort_by_key(|(d, _)| *d);
    let mut rank_sum_a = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum_a += rank * all[i..=j].iter().filter(|(_, in_a)| *in_a).count() as f64;
        i = j + 1;
    }
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let u = rank_sum_a - n1 * (n1 + 1.0) / 2.0;
    let mean = n1 * n2 / 2.0;
    let sd = (n1 * n2 * (n1 + n2 + 1.0) / 12.0).sqrt();
    (u - mean) / sd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mann_whitney_tells_shifted_samples_apart_and_not_equal_ones() {
        let ms = |v: &[u64]| {
            v.iter()
                .map(|m| Duration::from_millis(*m))
                .collect::<Vec<_>>()
        };
        let a = ms(&[10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
        assert!(mann_whitney_z(&a, &a).abs() < 1e-9);
        let later = ms(&[20, 21, 22, 23, 24, 25, 26, 27, 28, 29]);
        assert!(mann_whitney_z(&later, &a) > 3.0);
        assert!(mann_whitney_z(&a, &later) < -3.0);
        assert_eq!(quantile(&a, 0.5), 15.0);
    }
}
