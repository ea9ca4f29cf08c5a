//! Unary scenarios on one Roster seeded with N users (imported): GetUser
//! against a bare tonic server answering the same response from memory,
//! ListUsers with a query, InviteUser, and Login against the hashing
//! ceiling, alone and with GetUser beside it.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use prost::Message;
use roster::{
    api::pb,
    auth::{HashCost, PasswordHasher},
};
use tonic::transport::Channel;

use crate::{
    BenchError, Options, Scenario,
    child::{Server, ServerKind},
    client::{self, Users},
    database::Database,
    import,
    load::{self, Shape},
    report::{Measure, Outcome, Target},
};

/// The env variable that hands the bare server its GetUser response.
pub const BARE_REPLY_ENV: &str = "ROSTER_BENCH_GET_USER_REPLY";

pub async fn run(options: &Options) -> Result<Vec<Outcome>, BenchError> {
    let rows = options.seed_users();
    let database = Database::fresh(options.store, &options.postgres_url).await?;
    let server = Server::start(ServerKind::Roster, &client::roster_env(&database.url)).await?;
    let channel = client::connect(&server).await?;
    let token = client::login(&channel, client::ADMIN_EMAIL, client::ADMIN_PASSWORD).await?;
    let mut admin = client::users(&channel, &token)?;
    import::seed(&mut admin, rows).await?;
    let ids = Arc::new(sample_ids(&mut admin).await?);
    let seeded = format!("{} users", crate::report::thousands(rows as f64));
    let mut outcomes = Vec::new();

    if options.runs(Scenario::GetUser) {
        let shape = Shape {
            connections: 4,
            in_flight: 64,
            duration: options.duration(),
        };
        let roster = get_user_load(&server, shape, &token, &ids).await?;
        let reply = admin
            .get_user(pb::GetUserRequest {
                user_id: ids[0].clone(),
            })
            .await?
            .into_inner();
        let bare = Server::start(
            ServerKind::Bare,
            &[(BARE_REPLY_ENV, BASE64.encode(reply.encode_to_vec()))],
        )
        .await?;
        let ceiling = get_user_load(&bare, shape, "bare", &ids).await?;
        drop(bare);
        outcomes.push(Outcome {
            scenario: format!("GetUser, session token, {seeded}, 4 conns × 64"),
            store: options.store,
            unit: "req/s",
            roster,
            ceiling: Some(("bare tonic", ceiling)),
            peer: None,
            targets: vec![Target::Ratio(0.5)],
        });
    }

    if options.runs(Scenario::ListUsers) {
        let shape = Shape {
            connections: 4,
            in_flight: 50,
            duration: options.duration(),
        };
        // Not measured: the org's first query listings, which read the
        // database while the server builds its in-memory index.
        list_users_load(&server, shape, &token, rows).await?;
        let roster = list_users_load(&server, shape, &token, rows).await?;
        outcomes.push(Outcome {
            scenario: format!("ListUsers, page of 50, query, {seeded}, 50 in flight"),
            store: options.store,
            unit: "req/s",
            roster,
            ceiling: None,
            peer: None,
            targets: vec![Target::P99(std::time::Duration::from_millis(10))],
        });
    }

    if options.runs(Scenario::InviteUser) {
        let shape = Shape {
            connections: 4,
            in_flight: 32,
            duration: options.duration(),
        };
        let invites = Arc::new(AtomicU64::new(0));
        let roster = load::drive(&server, shape, {
            let token = token.clone();
            move |channel, _| {
                let token = token.clone();
                let n = invites.fetch_add(1, Ordering::Relaxed);
                async move {
                    client::users(&channel, &token)?
                        .invite_user(pb::InviteUserRequest {
                            user: Some(pb::User {
                                email: format!("invited{n}@bench.example.com"),
                                display_name: format!("Invited {n}"),
                                roles: vec!["agent".into()],
                                ..Default::default()
                            }),
                            ..Default::default()
                        })
                        .await?;
                    Ok(())
                }
            }
        })
        .await?;
        outcomes.push(Outcome {
            scenario: format!("InviteUser, log mail sink, {seeded}, 32 in flight"),
            store: options.store,
            unit: "req/s",
            roster,
            ceiling: None,
            peer: None,
            targets: vec![Target::Rate(2_000.0)],
        });
    }

    if options.runs(Scenario::Login) {
        outcomes.extend(login(options, &server, &token, &ids).await?);
    }
    drop(server);
    database.drop().await?;
    Ok(outcomes)
}

/// GetUser of the sampled users, round robin, with `token`.
async fn get_user_load(
    server: &Server,
    shape: Shape,
    token: &str,
    ids: &Arc<Vec<String>>,
) -> Result<Measure, BenchError> {
    let token = token.to_owned();
    let ids = ids.clone();
    let next = Arc::new(AtomicU64::new(0));
    load::drive(server, shape, move |channel, _| {
        let user_id = ids[next.fetch_add(1, Ordering::Relaxed) as usize % ids.len()].clone();
        let token = token.clone();
        async move {
            client::users(&channel, &token)?
                .get_user(pb::GetUserRequest { user_id })
                .await?;
            Ok(())
        }
    })
    .await
}

/// Login of the admin as fast as it goes, next to the hashing ceiling;
/// then GetUser alone and with the login flood beside it.
async fn login(
    options: &Options,
    server: &Server,
    token: &str,
    ids: &Arc<Vec<String>>,
) -> Result<Vec<Outcome>, BenchError> {
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    let shape = Shape {
        connections: 2,
        in_flight: cores * 4,
        duration: options.duration(),
    };
    let flood = move |channel: Channel, _| async move {
        client::login(&channel, client::ADMIN_EMAIL, client::ADMIN_PASSWORD).await?;
        Ok(())
    };
    let roster = load::drive(server, shape, flood).await?;
    let ceiling = hashing_ceiling(options, cores).await?;
    let quiet = Shape {
        connections: 2,
        in_flight: 8,
        duration: options.duration(),
    };
    let alone = get_user_load(server, quiet, token, ids).await?;
    let flooding = tokio::spawn({
        let server_addr = server.addr;
        async move { flood_until(server_addr, shape).await }
    });
    let beside = get_user_load(server, quiet, token, ids).await?;
    flooding.await??;
    let p99 = |m: &Measure| m.latency.map_or(std::time::Duration::ZERO, |l| l.p99);
    let allowed = p99(&alone) * 3;
    Ok(vec![
        Outcome {
            scenario: format!("Login, argon2id (OWASP), {} in flight", shape.in_flight),
            store: options.store,
            unit: "req/s",
            roster,
            ceiling: Some(("argon2id verify, all cores", ceiling)),
            peer: None,
            targets: vec![Target::Ratio(0.9)],
        },
        Outcome {
            scenario: "GetUser, 8 in flight, no login flood".into(),
            store: options.store,
            unit: "req/s",
            roster: alone,
            ceiling: None,
            peer: None,
            targets: vec![],
        },
        Outcome {
            scenario: "GetUser, 8 in flight, during a login flood".into(),
            store: options.store,
            unit: "req/s",
            roster: beside,
            ceiling: None,
            peer: None,
            targets: vec![Target::P99(allowed)],
        },
    ])
}

/// A login flood from its own connections, for `shape.duration`.
async fn flood_until(addr: std::net::SocketAddr, shape: Shape) -> Result<(), BenchError> {
    let deadline = Instant::now() + shape.duration;
    let mut tasks = Vec::new();
    for _ in 0..shape.in_flight {
        let channel = Channel::from_shared(format!("http://{addr}"))?.connect_lazy();
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                client::login(&channel, client::ADMIN_EMAIL, client::ADMIN_PASSWORD).await?;
            }
            Ok::<_, BenchError>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// argon2id verifications per second with Roster's parameters, one per
/// core at a time, in this process.
async fn hashing_ceiling(options: &Options, cores: usize) -> Result<Measure, BenchError> {
    let hasher = PasswordHasher::new(HashCost::Owasp)?;
    let password = roster::domain::Password::parse(client::ADMIN_PASSWORD, 8)?;
    let phc: Arc<str> = hasher.hash(&password).await?.into();
    let deadline = Instant::now() + options.duration();
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..cores * 2 {
        let hasher = hasher.clone();
        let phc = phc.clone();
        workers.push(tokio::spawn(async move {
            let mut done = 0u64;
            while Instant::now() < deadline {
                if !hasher.verify(client::ADMIN_PASSWORD, Some(&phc)).await? {
                    return Err(BenchError::msg("the password did not verify"));
                }
                done += 1;
            }
            Ok(done)
        }));
    }
    let mut done = 0;
    for worker in workers {
        done += worker.await??;
    }
    Ok(Measure {
        rate: done as f64 / started.elapsed().as_secs_f64(),
        ..Measure::default()
    })
}

/// ListUsers, a page of 50, querying one of the `rows` seeded users' login
/// ids: from one match (`agent12345`) to 1,111 (`agent12` finds `agent120`
/// to `agent129`, `agent1200`…).
async fn list_users_load(
    server: &Server,
    shape: Shape,
    token: &str,
    rows: usize,
) -> Result<Measure, BenchError> {
    let queries = Arc::new(AtomicU64::new(0));
    let token = token.to_owned();
    load::drive(server, shape, move |channel, _| {
        let token = token.clone();
        let n = queries.fetch_add(7919, Ordering::Relaxed) % rows as u64;
        async move {
            client::users(&channel, &token)?
                .list_users(pb::ListUsersRequest {
                    page_size: 50,
                    query: format!("agent{n}"),
                    ..Default::default()
                })
                .await?;
            Ok(())
        }
    })
    .await
}

/// Up to 1,000 user ids, for requests to spread over.
async fn sample_ids(admin: &mut Users) -> Result<Vec<String>, BenchError> {
    let mut ids = Vec::new();
    let mut page_token = String::new();
    while ids.len() < 1000 {
        let page = admin
            .list_users(pb::ListUsersRequest {
                page_size: 500,
                page_token,
                ..Default::default()
            })
            .await?
            .into_inner();
        ids.extend(page.users.into_iter().map(|u| u.user_id));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    Ok(ids)
}

/// The bare server: GetUser answers the response it was handed; every other
/// RPC is UNIMPLEMENTED.
pub async fn serve_bare() -> Result<(), BenchError> {
    let reply = std::env::var(BARE_REPLY_ENV)
        .ok()
        .and_then(|text| BASE64.decode(text).ok())
        .map(|bytes| pb::GetUserResponse::decode(bytes.as_slice()))
        .transpose()?
        .unwrap_or_default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    crate::child::announce(listener.local_addr()?);
    tonic::transport::Server::builder()
        .add_service(pb::user_service_server::UserServiceServer::new(Bare {
            reply,
        }))
        .serve_with_incoming(crate::child::incoming(listener))
        .await?;
    Ok(())
}

struct Bare {
    reply: pb::GetUserResponse,
}

#[tonic::async_trait]
impl pb::user_service_server::UserService for Bare {
    async fn get_user(
        &self,
        _: tonic::Request<pb::GetUserRequest>,
    ) -> Result<tonic::Response<pb::GetUserResponse>, tonic::Status> {
        Ok(tonic::Response::new(self.reply.clone()))
    }
}
