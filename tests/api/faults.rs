//! Faults told truthfully: while the database cannot be reached, calls that
//! need it answer `UNAVAILABLE` (`DATABASE_UNAVAILABLE`) within seconds and
//! health says NOT_SERVING; when it returns, everything works again and
//! every acknowledged write is there. On shutdown, health turns NOT_SERVING
//! for the configured delay before connections close.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use roster::{
    api::pb::{
        self, org_service_client::OrgServiceClient, presence_service_client::PresenceServiceClient,
    },
    config::Config,
};
use tokio::{
    net::{TcpListener, TcpStream},
    time::Instant,
};
use tonic::{Code, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::helpers::{
    Stoppable, TestDatabase, USER_PASSWORD, reason, spawn_app_through, spawn_app_with,
};

/// A TCP proxy the test controls, between rosterd and PostgreSQL: `cut`
/// closes every connection through it and closes new ones at once (as a
/// database that went away); `restore` lets them through again.
struct Proxy {
    addr: SocketAddr,
    /// Bumped by each cut: connections of an older generation close.
    generation: Arc<tokio::sync::watch::Sender<u64>>,
    open: Arc<std::sync::atomic::AtomicBool>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy binds");
        let addr = listener.local_addr().expect("proxy address");
        let generation = Arc::new(tokio::sync::watch::Sender::new(0u64));
        let open = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (gen_tx, open_flag) = (generation.clone(), open.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !open_flag.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let mut cut = gen_tx.subscribe();
                let born = *cut.borrow_and_update();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.wait_for(|g| *g != born) => {}
                    }
                });
            }
        });
        Self {
            addr,
            generation,
            open,
        }
    }

    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

async fn health(channel: &Channel, service: &str) -> Option<ServingStatus> {
    let answer = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .ok()?;
    ServingStatus::try_from(answer.into_inner().status).ok()
}

/// Polls health until it says `want` (overall and for UserService);
/// returns how long that took.
async fn health_becomes(channel: &Channel, want: ServingStatus, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        if health(channel, "").await == Some(want)
            && health(channel, "roster.v1.UserService").await == Some(want)
        {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "health not {want:?} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn team(name: String) -> pb::CreateTeamRequest {
    pb::CreateTeamRequest {
        team: Some(pb::Team {
            name,
            ..Default::default()
        }),
        request_id: String::new(),
    }
}

/// What the writers saw: the teams whose creation was acknowledged, and
/// every refusal with when it came and how long it took.
#[derive(Default)]
struct Outcomes {
    acknowledged: Vec<String>,
    refusals: Vec<(Instant, Duration, Code, String)>,
}

#[tokio::test]
async fn a_database_outage_is_unavailable_then_recovers_with_every_acknowledged_write() {
    let Ok(admin_url) = std::env::var("ROSTER_TEST_DATABASE_URL") else {
        return; // PostgreSQL only: an SQLite file cannot go away (see the next test).
    };
    let database = TestDatabase::create().await;
    assert!(admin_url.starts_with("postgres"));
    let upstream: SocketAddr = "127.0.0.1:5432".parse().expect("address");
    let proxy = Proxy::start(upstream).await;
    let proxied = database
        .url
        .replace("127.0.0.1:5432", &proxy.addr.to_string());
    assert_ne!(
        proxied, database.url,
        "the test database is on 127.0.0.1:5432"
    );
    let app = spawn_app_through(database, proxied).await;
    let channel = app.channel.clone();
    health_becomes(&channel, ServingStatus::Serving, Duration::from_secs(5)).await;

    // A watch open across the outage, and the agent whose changes it sees.
    let agent = app.create_user("ann@example.com", "Ann", &["agent"]).await;
    let agent_token = app
        .login("ann@example.com", USER_PASSWORD)
        .await
        .session_token;
    let mut presence_as_agent = PresenceServiceClient::with_interceptor(
        channel.clone(),
        roster::api::Bearer::new(&agent_token).expect("token"),
    );
    let mut watch = PresenceServiceClient::with_interceptor(channel.clone(), app.bearer())
        .watch_presence(pb::WatchPresenceRequest::default())
        .await
        .expect("watch opens")
        .into_inner();
    let mut last_sequence = 0;
    while let Some(event) = watch.message().await.expect("snapshot") {
        last_sequence = event.sequence;
        if event.kind() == pb::PresenceEventKind::SnapshotEnd {
            break;
        }
    }

    // Writers creating teams, one after another, until told to stop.
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let counter = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for _ in 0..3 {
        let mut org = OrgServiceClient::with_interceptor(channel.clone(), app.bearer());
        let (outcomes, stop, counter) = (outcomes.clone(), stop.clone(), counter.clone());
        writers.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let name = format!("team {}", counter.fetch_add(1, Ordering::SeqCst));
                let started = Instant::now();
                match org.create_team(team(name.clone())).await {
                    Ok(_) => outcomes.lock().expect("outcomes").acknowledged.push(name),
                    Err(status) => {
                        outcomes.lock().expect("outcomes").refusals.push((
                            started,
                            started.elapsed(),
                            status.code(),
                            reason(&status),
                        ));
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let cut_at = Instant::now();
    proxy.cut();
    let to_not_serving =
        health_becomes(&channel, ServingStatus::NotServing, Duration::from_secs(5)).await;
    // Reads that need the database answer UNAVAILABLE too, promptly.
    let started = Instant::now();
    let status = app
        .admin_users()
        .list_users(pb::ListUsersRequest::default())
        .await
        .expect_err("no database to list from");
    let list_took = started.elapsed();
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (Code::Unavailable, "DATABASE_UNAVAILABLE"),
        "{status:?}"
    );
    assert!(
        list_took < Duration::from_secs(4),
        "ListUsers took {list_took:?}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;

    let restored_at = Instant::now();
    proxy.restore();
    let to_serving =
        health_becomes(&channel, ServingStatus::Serving, Duration::from_secs(10)).await;
    // Writes succeed again.
    let recovered = loop {
        let acknowledged = outcomes.lock().expect("outcomes").acknowledged.len();
        tokio::time::sleep(Duration::from_millis(200)).await;
        if outcomes.lock().expect("outcomes").acknowledged.len() > acknowledged {
            break restored_at.elapsed();
        }
        assert!(
            restored_at.elapsed() < Duration::from_secs(10),
            "writes did not recover"
        );
    };
    stop.store(true, Ordering::SeqCst);
    for writer in writers {
        writer.await.expect("writer");
    }

    // The watch is still open, or ended resumably; either way the change
    // made after the outage reaches it.
    presence_as_agent
        .set_availability(pb::SetAvailabilityRequest {
            status: pb::PresenceStatus::Available as i32,
            ..Default::default()
        })
        .await
        .expect("available after the outage");
    let seen = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match watch.message().await {
                Ok(Some(event)) => {
                    last_sequence = event.sequence.max(last_sequence);
                    if event.presence.as_ref().is_some_and(|p| {
                        p.user_id == agent.user_id
                            && p.status == pb::PresenceStatus::Available as i32
                    }) {
                        return true;
                    }
                }
                Ok(None) => panic!("the watch ended without a status"),
                Err(status) => {
                    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                    assert_ne!(reason(&status), "INTERNAL");
                    watch = PresenceServiceClient::with_interceptor(channel.clone(), app.bearer())
                        .watch_presence(pb::WatchPresenceRequest {
                            resume_after: Some(last_sequence),
                            ..Default::default()
                        })
                        .await
                        .expect("resumes")
                        .into_inner();
                }
            }
        }
    })
    .await
    .expect("the change after the outage is watched");
    assert!(seen);

    let outcomes = std::mem::take(&mut *outcomes.lock().expect("outcomes"));
    assert!(!outcomes.refusals.is_empty(), "the outage refused nothing");
    for (_, took, code, why) in &outcomes.refusals {
        assert_eq!(
            (*code, why.as_str()),
            (Code::Unavailable, "DATABASE_UNAVAILABLE")
        );
        assert!(*took < Duration::from_secs(4), "a refusal took {took:?}");
    }
    let first_refusal = outcomes
        .refusals
        .iter()
        .map(|(at, took, _, _)| (*at + *took).saturating_duration_since(cut_at))
        .min()
        .expect("a refusal");
    let slowest = outcomes
        .refusals
        .iter()
        .map(|r| r.1)
        .max()
        .expect("a refusal");
    eprintln!(
        "outage figures: first UNAVAILABLE {first_refusal:?} after the cut; slowest refusal \
         {slowest:?}; {} refusals, all UNAVAILABLE DATABASE_UNAVAILABLE; health NOT_SERVING \
         {to_not_serving:?} after the cut, SERVING {to_serving:?} after the restore; writes \
         recovered {recovered:?} after the restore; {} writes acknowledged",
        outcomes.refusals.len(),
        outcomes.acknowledged.len()
    );

    // Every acknowledged write is there.
    let teams: Vec<String> = OrgServiceClient::with_interceptor(channel.clone(), app.bearer())
        .list_teams(pb::ListTeamsRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .expect("teams")
        .into_inner()
        .teams
        .into_iter()
        .map(|t| t.name)
        .collect();
    for name in &outcomes.acknowledged {
        assert!(teams.contains(name), "acknowledged {name:?} is missing");
    }
}

#[tokio::test]
async fn an_sqlite_file_locked_by_another_process_is_unavailable_then_writable() {
    let app = spawn_app_with(|c| c.database_acquire_timeout_ms = 500).await;
    if !app.database_url.starts_with("sqlite") {
        return; // SQLite only: PostgreSQL's outage is the test above.
    }
    let mut opts = sea_orm::ConnectOptions::new(app.database_url.clone());
    opts.max_connections(1).sqlx_logging(false);
    let other = sea_orm::Database::connect(opts)
        .await
        .expect("second connection");
    use sea_orm::ConnectionTrait;
    other
        .execute_unprepared("BEGIN EXCLUSIVE")
        .await
        .expect("the file is locked");
    let mut org = OrgServiceClient::with_interceptor(app.channel.clone(), app.bearer());
    let started = Instant::now();
    let status = org
        .create_team(team("Blocked".into()))
        .await
        .expect_err("no write while another process holds the file");
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (Code::Unavailable, "DATABASE_UNAVAILABLE"),
        "{status:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    other.execute_unprepared("COMMIT").await.expect("unlocked");
    org.create_team(team("Written".into()))
        .await
        .expect("writes again once the lock is gone");
}

/// A write held up past the server's limit per request (by a lock another
/// client holds) answers `DEADLINE_EXCEEDED` with its reason.
#[tokio::test]
async fn a_request_past_the_servers_limit_is_deadline_exceeded() {
    let app = spawn_app_with(|c| {
        c.request_timeout_secs = 1;
        c.database_acquire_timeout_ms = 10_000;
    })
    .await;
    let mut opts = sea_orm::ConnectOptions::new(app.database_url.clone());
    opts.max_connections(1).sqlx_logging(false);
    let other = sea_orm::Database::connect(opts)
        .await
        .expect("second connection");
    use sea_orm::ConnectionTrait;
    let lock = if app.database_url.starts_with("sqlite") {
        "BEGIN EXCLUSIVE"
    } else {
        "BEGIN; LOCK TABLE teams IN ACCESS EXCLUSIVE MODE"
    };
    other.execute_unprepared(lock).await.expect("locked");
    let mut org = OrgServiceClient::with_interceptor(app.channel.clone(), app.bearer());
    let started = Instant::now();
    let status = org
        .create_team(team("Held up".into()))
        .await
        .expect_err("held up past the limit");
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (Code::DeadlineExceeded, "DEADLINE_EXCEEDED"),
        "{status:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    other.execute_unprepared("COMMIT").await.expect("unlocked");
}

#[tokio::test]
async fn on_shutdown_health_is_not_serving_for_the_delay_before_connections_close() {
    let database = TestDatabase::create().await;
    let mut config = Config::for_tests(database.url.clone());
    config.shutdown_delay_secs = 2;
    config.shutdown_grace_secs = 2;
    let mut server = Stoppable::start(config).await;
    let channel = server.channel.clone();
    health_becomes(&channel, ServingStatus::Serving, Duration::from_secs(5)).await;
    let stopped_at = Instant::now();
    server.stop();
    health_becomes(&channel, ServingStatus::NotServing, Duration::from_secs(1)).await;
    // Still answering through most of the delay: pollers see NOT_SERVING.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(health(&channel, "").await, Some(ServingStatus::NotServing));
    tokio::time::timeout(Duration::from_secs(10), server.server)
        .await
        .expect("stops after the delay and the grace")
        .expect("task")
        .expect("clean stop");
    assert!(
        stopped_at.elapsed() >= Duration::from_secs(2),
        "{:?}",
        stopped_at.elapsed()
    );
}
