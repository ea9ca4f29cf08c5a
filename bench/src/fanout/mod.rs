//! WatchPresence fan-out and memory, each shape measured on three systems
//! in turn with the same watchers, the same changes and the same client:
//!
//! - Roster, seeded with N users (imported) and A agents (created, signed
//!   in), the changes made by the admin through `ReportChatLoad`;
//! - the ceiling, a bare tonic server that broadcasts pre-encoded events on
//!   Roster's WatchPresence route ([`bare`]), fed by the same calls;
//! - the peer, Redis pub/sub: one subscriber connection per watcher, all
//!   SUBSCRIBEd to one channel, and one connection PUBLISHing each change as
//!   Roster would encode it.
//!
//! Each shape runs paced at its change rate, then as fast as every watcher
//! keeps up (a window of undelivered changes). The memory scenario is each
//! server's RSS once the dashboards' number of watchers are connected and
//! have their snapshots, on a Roster of its own where no agent signed in.

mod bare;
mod drive;
mod tracker;
mod watchers;

use std::{sync::Arc, time::Duration};

use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use futures_util::{StreamExt, TryStreamExt};
use prost::Message;
use roster::api::pb;

pub use bare::serve as serve_bare;

use self::{
    drive::{Feed, GrpcFeed, Pace, RedisFeed},
    tracker::Tracker,
};
use crate::{
    BenchError, Options, Scenario,
    child::{Server, ServerKind, UsageWindow},
    client,
    database::{Database, StoreKind},
    import,
    report::{self, Measure, Outcome, Target, thousands},
};

/// Changes not yet received by every watcher, at most, when a shape runs
/// as fast as it goes: well inside the 1,024 events a Roster watcher may
/// fall behind before it is resynchronised.
const WINDOW: u64 = 256;
/// Connections the changes are sent over.
const FEED_CONNECTIONS: usize = 4;
/// How long connecting every watcher and delivering the snapshots may take.
const READY_TIMEOUT: Duration = Duration::from_secs(600);
const AGENT_PASSWORD: &str = "bench agent password";
/// The org's presence lease: longer than the run, so no lease expiry (an
/// event of its own) lands among the benchmark's changes.
const LEASE: Duration = Duration::from_secs(3600);
/// The memory target: Roster's peak RSS while the watchers connect.
const MEMORY_TARGET: u64 = 300_000_000;

/// A shape of the fan-out: how many watchers over how many connections, at
/// what change rate, held to which targets.
struct Shape {
    scenario: Scenario,
    label: &'static str,
    watchers: usize,
    connections: usize,
    rate: f64,
    targets: Vec<Target>,
    /// Run the loads (false: only connect, for the memory scenario).
    loads: bool,
}

/// The fan-out shapes `options` asks for.
fn shapes(options: &Options) -> Vec<Shape> {
    let short = options.short;
    let pick = |full: usize, tiny: usize| if short { tiny } else { full };
    vec![
        routers_shape(options, Scenario::FanoutRouters, "routers"),
        Shape {
            scenario: Scenario::Fanout1k,
            label: "1k",
            watchers: pick(1_000, 20),
            connections: pick(100, 4),
            rate: if short { 100.0 } else { 1_000.0 },
            targets: vec![
                Target::P99(Duration::from_millis(50)),
                Target::P99AheadOfPeer,
            ],
            loads: true,
        },
        Shape {
            scenario: Scenario::FanoutDashboards,
            label: "dashboards",
            watchers: pick(10_000, 40),
            connections: pick(100, 4),
            rate: 10.0,
            targets: vec![
                Target::P99(Duration::from_millis(150)),
                Target::P99AheadOfPeer,
            ],
            loads: true,
        },
    ]
    .into_iter()
    .filter(|s| options.runs(s.scenario))
    .collect()
}

/// The routers' shape: 100 watchers over 10 connections, 5,000 changes/s.
fn routers_shape(options: &Options, scenario: Scenario, label: &'static str) -> Shape {
    let short = options.short;
    Shape {
        scenario,
        label,
        watchers: if short { 10 } else { 100 },
        connections: if short { 2 } else { 10 },
        rate: if short { 200.0 } else { 5_000.0 },
        targets: vec![Target::P99Within(1.5)],
        loads: true,
    }
}

/// The memory scenario: the dashboards' watchers, connected only.
fn memory_shape(options: &Options) -> Shape {
    Shape {
        scenario: Scenario::Memory,
        label: "memory",
        watchers: if options.short { 40 } else { 10_000 },
        connections: if options.short { 4 } else { 100 },
        rate: 0.0,
        targets: vec![Target::PeakRss(MEMORY_TARGET)],
        loads: false,
    }
}

/// Every fan-out and memory scenario `options` asks for.
pub async fn run(options: &Options) -> Result<Vec<Outcome>, BenchError> {
    let shapes = shapes(options);
    let memory = options
        .runs(Scenario::Memory)
        .then(|| memory_shape(options));
    let replicas = options.runs(Scenario::FanoutReplicas);
    if replicas && options.store != StoreKind::Postgres {
        eprintln!("fanout-replicas runs on PostgreSQL only (--store postgres): skipped");
    }
    let replicas = (replicas && options.store == StoreKind::Postgres)
        .then(|| routers_shape(options, Scenario::FanoutReplicas, "routers"));
    let most = shapes
        .iter()
        .chain(&memory)
        .chain(&replicas)
        .map(|s| s.watchers)
        .max();
    let Some(most) = most else {
        return Ok(Vec::new());
    };
    // One descriptor per Redis subscriber, and Redis must accept them all.
    rlimit::increase_nofile_limit(u64::MAX)?;
    let redis = redis::Client::open(options.redis_url.as_str())?;
    let max_clients = MaxClients::raise(&redis, most as u64 + 64).await?;
    let mut result = Ok(Vec::new());
    if !shapes.is_empty() || replicas.is_some() {
        result = fan_out(options, &shapes, replicas.as_ref(), &redis).await;
    }
    if let (Ok(outcomes), Some(shape)) = (&mut result, &memory) {
        match run_memory(options, shape, &redis).await {
            Ok(outcome) => outcomes.push(outcome),
            Err(err) => result = Err(err),
        }
    }
    if let Err(err) = max_clients.restore(&redis).await {
        eprintln!("could not put Redis's maxclients back: {err}");
    }
    result
}

/// A fresh Roster on a fresh database, seeded with the benchmark's users
/// (imported), the admin signed in with a lease longer than the run.
struct Seeded {
    database: Database,
    server: Server,
    channel: tonic::transport::Channel,
    token: String,
    users: usize,
}

impl Seeded {
    async fn start(options: &Options) -> Result<Self, BenchError> {
        let users = options.seed_users();
        let database = Database::fresh(options.store, &options.postgres_url).await?;
        let server = Server::start(ServerKind::Roster, &client::roster_env(&database.url)).await?;
        let channel = client::connect(&server).await?;
        let token = client::login(&channel, client::ADMIN_EMAIL, client::ADMIN_PASSWORD).await?;
        import::seed(&mut client::users(&channel, &token)?, users).await?;
        lengthen_lease(&channel, &token).await?;
        Ok(Self {
            database,
            server,
            channel,
            token,
            users,
        })
    }

    fn system(&self) -> System {
        System::Grpc {
            url: self.server.url(),
            feed_url: self.server.url(),
            token: self.token.clone(),
            pid: self.server.pid(),
        }
    }

    async fn stop(self) -> Result<(), BenchError> {
        drop(self.server);
        self.database.drop().await
    }
}

/// The fan-out shapes, each on Roster, the bare server and Redis in turn.
async fn fan_out(
    options: &Options,
    shapes: &[Shape],
    replicas: Option<&Shape>,
    redis: &redis::Client,
) -> Result<Vec<Outcome>, BenchError> {
    let roster = Seeded::start(options).await?;
    let agents = if options.short { 10 } else { 100 };
    let agents = Arc::new(sign_in_agents(&roster.channel, &roster.token, agents).await?);
    let template = capture_event(&roster.channel, &roster.token, &agents[0]).await?;
    let setting = Setting {
        agents,
        template: Arc::new(template),
        duration: options.duration(),
    };
    let mut roster_changes = Some(0);
    let mut outcomes = Vec::new();
    for shape in shapes {
        let on_roster = match roster_changes {
            Some(first) => match setting.measure(&roster.system(), shape, first).await {
                Ok((runs, next)) => {
                    roster_changes = Some(next);
                    runs
                }
                // A short run checks the program: any failure fails it. A
                // full run reports Roster's failure in its row and goes on.
                Err(err) if options.short => return Err(err),
                Err(err) => {
                    eprintln!("{} on Roster failed: {err}", shape.label);
                    // The agents' chat counts are unknown now, so a later
                    // change could repeat one and make no event.
                    roster_changes = None;
                    Runs::failed(&err)
                }
            },
            None => Runs::failed("not run after an earlier failure"),
        };
        let (on_bare, on_redis) = setting.ceiling_and_peer(shape, redis).await?;
        outcomes.extend(shape.outcomes(options, on_roster, on_bare, on_redis));
    }
    if let (Some(shape), Some(first)) = (replicas, roster_changes) {
        outcomes.extend(across_replicas(options, shape, &roster, &setting, first).await?);
    }
    roster.stop().await?;
    Ok(outcomes)
}

/// The routers' shape on one replica, then with a second replica on the
/// same database carrying the watchers while the changes still go through
/// the first: what a change costs to reach another replica's watchers.
async fn across_replicas(
    options: &Options,
    shape: &Shape,
    roster: &Seeded,
    setting: &Setting,
    first: u64,
) -> Result<Vec<Outcome>, BenchError> {
    let (one, next) = setting.measure(&roster.system(), shape, first).await?;
    let second = Server::start(
        ServerKind::Roster,
        &client::roster_env(&roster.database.url),
    )
    .await?;
    let pair = System::Grpc {
        url: second.url(),
        feed_url: roster.server.url(),
        token: roster.token.clone(),
        pid: second.pid(),
    };
    let (two, _) = setting.measure(&pair, shape, next).await?;
    drop(second);
    let who = format!(
        "{} watchers over {} conns on replica B, changes through replica A",
        thousands(shape.watchers as f64),
        shape.connections
    );
    let row = |scenario: String, two: Measure, one: Measure| Outcome {
        scenario,
        store: options.store,
        unit: "deliveries/s",
        roster: two,
        ceiling: Some(("Roster, one replica", one)),
        peer: None,
        targets: Vec::new(),
    };
    Ok(vec![
        row(
            format!(
                "WatchPresence across replicas, {who}, {} changes/s",
                thousands(shape.rate)
            ),
            two.paced,
            one.paced,
        ),
        row(
            format!(
                "WatchPresence across replicas, {who}, fastest with ≤ {WINDOW} changes undelivered"
            ),
            two.fastest,
            one.fastest,
        ),
    ])
}

/// Roster seeded with the benchmark's users and the memory shape's
/// watchers, on a server of its own: no agent signs in, so the figure
/// holds no password-hashing memory (see the Login scenario).
async fn run_memory(
    options: &Options,
    shape: &Shape,
    redis: &redis::Client,
) -> Result<Outcome, BenchError> {
    let roster = Seeded::start(options).await?;
    let setting = Setting {
        agents: Arc::new(Vec::new()),
        template: Arc::new(EventTemplate::new(pb::WatchPresenceResponse::default())),
        duration: options.duration(),
    };
    let on_roster = match setting.measure(&roster.system(), shape, 0).await {
        Ok((runs, _)) => runs,
        Err(err) if options.short => return Err(err),
        Err(err) => {
            eprintln!("memory on Roster failed: {err}");
            Runs::failed(&err)
        }
    };
    let users = roster.users;
    roster.stop().await?;
    let (on_bare, on_redis) = setting.ceiling_and_peer(shape, redis).await?;
    Ok(Outcome {
        scenario: format!(
            "Memory: {} users, {} watchers over {} conns, snapshots delivered",
            thousands(users as f64),
            thousands(shape.watchers as f64),
            shape.connections
        ),
        store: options.store,
        unit: "MB RSS",
        roster: on_roster.memory,
        ceiling: Some(("bare tonic broadcast", on_bare.memory)),
        peer: Some(("Redis pub/sub", on_redis.memory)),
        targets: shape.targets.clone(),
    })
}

/// What every system of a run shares.
struct Setting {
    agents: Arc<Vec<String>>,
    template: Arc<EventTemplate>,
    duration: Duration,
}

/// A system a shape is measured on.
enum System {
    /// Roster or the bare server: WatchPresence streams on `url`,
    /// ReportChatLoad on `feed_url` (another replica, or the same server).
    Grpc {
        url: String,
        feed_url: String,
        token: String,
        pid: u32,
    },
    /// Redis pub/sub; its process is measured when it can be read.
    Redis {
        client: redis::Client,
        pid: Option<u32>,
    },
}

impl System {
    fn name(&self) -> &'static str {
        match self {
            System::Grpc { token, .. } if token == BARE_TOKEN => "bare tonic broadcast",
            System::Grpc { .. } => "Roster",
            System::Redis { .. } => "Redis pub/sub",
        }
    }

    fn pid(&self) -> Option<u32> {
        match self {
            System::Grpc { pid, .. } => Some(*pid),
            System::Redis { pid, .. } => *pid,
        }
    }
}

/// What the bench sends the bare server, which does not check it.
const BARE_TOKEN: &str = "bare";

/// A line on stderr per load, with the benchmark's own CPU use: the load
/// generator shares the machine's cores with the server.
fn progress(shape: &Shape, system: &System, load: &str, measure: &Measure) {
    let p99 = measure
        .latency
        .map_or_else(String::new, |l| report::ms(l.p99));
    eprintln!(
        "{} on {}, {load}: {} deliveries/s, {} changes/s, p99 {p99}, bench client {:.2} cores",
        shape.label,
        system.name(),
        thousands(measure.rate),
        thousands(measure.changes.unwrap_or(0.0)),
        measure.client_cores.unwrap_or(0.0),
    );
}

/// A shape's measures on one system.
#[derive(Default)]
struct Runs {
    paced: Measure,
    fastest: Measure,
    memory: Measure,
}

impl Runs {
    fn failed(why: impl std::fmt::Display) -> Self {
        let why = why.to_string();
        Self {
            paced: Measure::failed(&why),
            fastest: Measure::failed(&why),
            memory: Measure::failed(&why),
        }
    }
}

impl Setting {
    /// The shape on a bare broadcast server of its own, then on Redis.
    async fn ceiling_and_peer(
        &self,
        shape: &Shape,
        redis: &redis::Client,
    ) -> Result<(Runs, Runs), BenchError> {
        let template = BASE64.encode(self.template.message.encode_to_vec());
        let server =
            Server::start(ServerKind::BareBroadcast, &[(bare::TEMPLATE_ENV, template)]).await?;
        let bare = System::Grpc {
            url: server.url(),
            feed_url: server.url(),
            token: BARE_TOKEN.into(),
            pid: server.pid(),
        };
        let (on_bare, _) = self.measure(&bare, shape, 0).await?;
        drop(server);
        let peer = System::Redis {
            client: redis.clone(),
            pid: redis_pid(redis).await,
        };
        let (on_redis, _) = self.measure(&peer, shape, 0).await?;
        Ok((on_bare, on_redis))
    }

    /// Connects the shape's watchers to `system`, measures memory and runs
    /// the loads. Changes start at number `first` (see [`Tracker`]); also
    /// returns the number after the last.
    async fn measure(
        &self,
        system: &System,
        shape: &Shape,
        first: u64,
    ) -> Result<(Runs, u64), BenchError> {
        let tracker = Tracker::new(self.agents.clone(), shape.watchers, first);
        let connecting = system.pid().map(UsageWindow::start).transpose()?;
        let watchers = match system {
            System::Grpc { url, token, .. } => {
                watchers::watch(url, token, shape.connections, &tracker).await?
            }
            System::Redis { client, .. } => {
                watchers::subscribe(client, shape.connections, &tracker).await?
            }
        };
        tracker.until_ready(READY_TIMEOUT).await?;
        let mut runs = Runs::default();
        if let Some(connecting) = &connecting {
            runs.memory = Measure {
                rate: connecting.now()?.rss_bytes as f64 / 1e6,
                server: Some(connecting.finish()?),
                ..Measure::default()
            };
        }
        if shape.loads {
            let feed = match system {
                System::Grpc {
                    feed_url, token, ..
                } => Feed::Grpc(GrpcFeed::connect(feed_url, token, FEED_CONNECTIONS).await?),
                System::Redis { client, .. } => {
                    Feed::Redis(RedisFeed::connect(client, self.template.clone(), &tracker).await?)
                }
            };
            let pid = system.pid();
            let paced = Pace::Rate(shape.rate);
            runs.paced = drive::drive(&tracker, &feed, paced, self.duration, pid).await?;
            progress(shape, system, "paced", &runs.paced);
            let fastest = Pace::Window(WINDOW);
            runs.fastest = drive::drive(&tracker, &feed, fastest, self.duration, pid).await?;
            progress(shape, system, "fastest", &runs.fastest);
        }
        drop(watchers);
        Ok((runs, tracker.next_first()))
    }
}

impl Shape {
    fn outcomes(&self, options: &Options, roster: Runs, bare: Runs, peer: Runs) -> Vec<Outcome> {
        let who = format!(
            "{}: {} watchers over {} conns",
            self.label,
            thousands(self.watchers as f64),
            self.connections
        );
        let mut outcomes = Vec::new();
        if self.loads {
            outcomes.push(Outcome {
                scenario: format!(
                    "WatchPresence fan-out, {who}, {} changes/s",
                    thousands(self.rate)
                ),
                store: options.store,
                unit: "deliveries/s",
                roster: roster.paced,
                ceiling: Some(("bare tonic broadcast", bare.paced)),
                peer: Some(("Redis pub/sub", peer.paced)),
                targets: self.targets.clone(),
            });
            outcomes.push(Outcome {
                scenario: format!(
                    "WatchPresence fan-out, {who}, fastest with ≤ {WINDOW} changes undelivered"
                ),
                store: options.store,
                unit: "deliveries/s",
                roster: roster.fastest,
                ceiling: Some(("bare tonic broadcast", bare.fastest)),
                peer: Some(("Redis pub/sub", peer.fastest)),
                targets: vec![Target::Ratio(0.7)],
            });
        }
        outcomes
    }
}

/// A real Roster change event, re-encoded with another sequence, agent and
/// chat count: what the ceiling and the peer send, at Roster's size.
pub struct EventTemplate {
    message: pb::WatchPresenceResponse,
}

impl EventTemplate {
    pub fn new(message: pb::WatchPresenceResponse) -> Self {
        Self { message }
    }

    pub fn encode(&self, sequence: u64, user_id: &str, active_chats: u32) -> Vec<u8> {
        let mut message = self.message.clone();
        message.sequence = sequence;
        if let Some(presence) = &mut message.presence {
            user_id.clone_into(&mut presence.user_id);
            presence.active_chats = active_chats;
        }
        message.encode_to_vec()
    }

    pub fn presence(&self) -> pb::Presence {
        self.message.presence.clone().unwrap_or_default()
    }
}

/// Sets the org's presence lease to [`LEASE`] and renews the admin's, so
/// no lease expires (an event of its own) during the run.
async fn lengthen_lease(
    channel: &tonic::transport::Channel,
    token: &str,
) -> Result<(), BenchError> {
    client::org(channel, token)?
        .update_org_settings(pb::UpdateOrgSettingsRequest {
            settings: Some(pb::OrgSettings {
                presence_lease: prost_types::Duration::try_from(LEASE).ok(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["presence_lease".into()],
            }),
        })
        .await?;
    client::presence(channel, token)?
        .heartbeat(pb::HeartbeatRequest {})
        .await?;
    Ok(())
}

/// Creates `count` agents and signs each in (presence UNAVAILABLE, so a
/// chat load may be reported); returns their ids.
async fn sign_in_agents(
    channel: &tonic::transport::Channel,
    token: &str,
    count: usize,
) -> Result<Vec<String>, BenchError> {
    let users = client::users(channel, token)?;
    futures_util::stream::iter(0..count)
        .map(|i| {
            let mut users = users.clone();
            async move {
                let email = format!("watched-agent{i}@bench.example.com");
                let user = users
                    .create_user(pb::CreateUserRequest {
                        user: Some(pb::User {
                            email: email.clone(),
                            display_name: format!("Watched Agent {i}"),
                            roles: vec!["agent".into()],
                            ..Default::default()
                        }),
                        password: AGENT_PASSWORD.into(),
                        ..Default::default()
                    })
                    .await?
                    .into_inner()
                    .user
                    .ok_or_else(|| BenchError::msg("CreateUser answered without a user"))?;
                client::login(channel, &email, AGENT_PASSWORD).await?;
                Ok::<_, BenchError>(user.user_id)
            }
        })
        .buffered(4)
        .try_collect()
        .await
}

/// The event Roster streams for a chat load report of `agent`; the agent
/// is left with no chats.
async fn capture_event(
    channel: &tonic::transport::Channel,
    token: &str,
    agent: &str,
) -> Result<EventTemplate, BenchError> {
    let mut presence = client::presence(channel, token)?;
    let mut stream = presence
        .watch_presence(pb::WatchPresenceRequest::default())
        .await?
        .into_inner();
    while let Some(event) = stream.message().await? {
        if event.kind() == pb::PresenceEventKind::SnapshotEnd {
            break;
        }
    }
    let report = |active_chats| pb::ReportChatLoadRequest {
        user_id: agent.to_owned(),
        active_chats,
    };
    presence.report_chat_load(report(1)).await?;
    let event = stream
        .message()
        .await?
        .filter(|e| e.kind() == pb::PresenceEventKind::Change)
        .ok_or_else(|| BenchError::msg("no change event after ReportChatLoad"))?;
    presence.report_chat_load(report(0)).await?;
    Ok(EventTemplate::new(event))
}

/// Redis's process id, if it runs here.
async fn redis_pid(redis: &redis::Client) -> Option<u32> {
    let mut connection = drive::redis_connection(redis).await.ok()?;
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut connection)
        .await
        .ok()?;
    let pid = info
        .lines()
        .find_map(|l| l.strip_prefix("process_id:"))?
        .trim()
        .parse()
        .ok()?;
    std::fs::metadata(format!("/proc/{pid}/stat")).ok()?;
    Some(pid)
}

/// Redis's `maxclients`, raised for the run and put back after.
struct MaxClients {
    previous: Option<u64>,
}

impl MaxClients {
    async fn raise(redis: &redis::Client, needed: u64) -> Result<Self, BenchError> {
        let mut connection = drive::redis_connection(redis).await?;
        let (_, current): (String, u64) = redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxclients")
            .query_async(&mut connection)
            .await?;
        if current >= needed {
            return Ok(Self { previous: None });
        }
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("maxclients")
            .arg(needed)
            .query_async::<()>(&mut connection)
            .await?;
        Ok(Self {
            previous: Some(current),
        })
    }

    async fn restore(self, redis: &redis::Client) -> Result<(), BenchError> {
        if let Some(previous) = self.previous {
            let mut connection = drive::redis_connection(redis).await?;
            redis::cmd("CONFIG")
                .arg("SET")
                .arg("maxclients")
                .arg(previous)
                .query_async::<()>(&mut connection)
                .await?;
        }
        Ok(())
    }
}
