//! Presence: sign-in and sign-out, availability, leases, chat load, the
//! suspend guard, and WatchPresence's ordering, resume, resync and replica
//! contract, through the real server.

use std::{collections::BTreeMap, time::Duration};

use rand::Rng;
use roster::{
    api::{
        Bearer,
        pb::{
            self, PresenceChangeReason as Why, PresenceEventKind as Kind, PresenceStatus as St,
            auth_service_client::AuthServiceClient, org_service_client::OrgServiceClient,
            presence_service_client::PresenceServiceClient,
        },
    },
    config::Config,
};
use tonic::{
    Code, Status,
    codec::Streaming,
    service::interceptor::InterceptedService,
    transport::{Channel, Endpoint},
};

use crate::helpers::{
    ADMIN_EMAIL, ADMIN_PASSWORD, ORG, Stoppable, TestApp, TestDatabase, USER_PASSWORD, reason,
    spawn_app, spawn_app_on, spawn_app_with, start,
};

type Client = PresenceServiceClient<InterceptedService<Channel, Bearer>>;

fn presence_as(app: &TestApp, token: &str) -> Client {
    PresenceServiceClient::with_interceptor(app.channel.clone(), Bearer::new(token).expect("token"))
}

fn admin(app: &TestApp) -> Client {
    presence_as(app, &app.admin_token)
}

/// An agent who is signed in; returns (user id, session token).
async fn signed_in_agent(app: &TestApp, email: &str) -> (String, String) {
    let user = app.create_user(email, "Agent", &["agent"]).await;
    let token = app.login(email, USER_PASSWORD).await.session_token;
    (user.user_id, token)
}

/// `n` signed-in agents, a user who never signed in, and a watch of the
/// org past its snapshot (with the snapshot's sequence).
async fn agents_under_watch(
    app: &TestApp,
    n: usize,
) -> (Vec<(String, String)>, pb::User, Watch, u64) {
    let agents = signed_in_agents(app, n).await;
    let offline = app.create_user("off@example.com", "Off", &["agent"]).await;
    let mut watch = Watch::open(&mut admin(app), watch_all())
        .await
        .expect("watch");
    let start = watch.snapshot().await;
    (agents, offline, watch, start)
}

/// `n` signed-in agents.
async fn signed_in_agents(app: &TestApp, n: usize) -> Vec<(String, String)> {
    let mut agents = Vec::new();
    for i in 0..n {
        agents.push(signed_in_agent(app, &format!("agent{i}@example.com")).await);
    }
    agents
}

async fn get(app: &TestApp, user_id: &str) -> pb::Presence {
    admin(app)
        .get_presence(pb::GetPresenceRequest {
            user_ids: vec![user_id.into()],
        })
        .await
        .expect("get presence")
        .into_inner()
        .presences
        .remove(0)
}

async fn set(client: &mut Client, user_id: &str, status: St) -> Result<pb::Presence, Status> {
    client
        .set_availability(pb::SetAvailabilityRequest {
            user_id: user_id.into(),
            status: status.into(),
        })
        .await
        .map(|r| r.into_inner().presence.expect("presence"))
}

async fn load(client: &mut Client, user_id: &str, chats: u32) -> Result<pb::Presence, Status> {
    client
        .report_chat_load(pb::ReportChatLoadRequest {
            user_id: user_id.into(),
            active_chats: chats,
        })
        .await
        .map(|r| r.into_inner().presence.expect("presence"))
}

async fn list_all(app: &TestApp) -> BTreeMap<String, pb::Presence> {
    let mut all = BTreeMap::new();
    let mut page_token = String::new();
    loop {
        let page = admin(app)
            .list_presence(pb::ListPresenceRequest {
                page_size: 7,
                page_token,
                ..Default::default()
            })
            .await
            .expect("list presence")
            .into_inner();
        for p in page.presences {
            all.insert(p.user_id.clone(), p);
        }
        if page.next_page_token.is_empty() {
            return all;
        }
        page_token = page.next_page_token;
    }
}

/// A watch stream and what its client knows.
struct Watch {
    stream: Streaming<pb::WatchPresenceResponse>,
    state: BTreeMap<String, pb::Presence>,
    /// The last resumable sequence seen.
    last: u64,
    /// Every CHANGE/REMOVED sequence, in arrival order.
    changes: Vec<u64>,
    /// (user id, active chats) of every chat-load change, in order.
    loads: Vec<(String, u32)>,
    resets: usize,
}

impl Watch {
    async fn open(client: &mut Client, request: pb::WatchPresenceRequest) -> Result<Self, Status> {
        let stream = client.watch_presence(request).await?.into_inner();
        Ok(Self {
            stream,
            state: BTreeMap::new(),
            last: 0,
            changes: Vec::new(),
            loads: Vec::new(),
            resets: 0,
        })
    }

    async fn next(&mut self) -> Result<pb::WatchPresenceResponse, Status> {
        let event = tokio::time::timeout(Duration::from_secs(15), self.stream.message())
            .await
            .expect("an event within 15 s")?
            .expect("the stream goes on");
        self.apply(&event);
        Ok(event)
    }

    fn apply(&mut self, event: &pb::WatchPresenceResponse) {
        match event.kind() {
            Kind::Reset => {
                self.resets += 1;
                self.state.clear();
            }
            Kind::Snapshot => {
                let p = event.presence.clone().expect("snapshot presence");
                self.state.insert(p.user_id.clone(), p);
            }
            Kind::SnapshotEnd => self.last = event.sequence,
            Kind::Change | Kind::Removed => {
                assert!(
                    event.sequence > self.last,
                    "sequence {} after {}",
                    event.sequence,
                    self.last
                );
                self.last = event.sequence;
                self.changes.push(event.sequence);
                let p = event.presence.clone().expect("change presence");
                if event.reason() == Why::ChatLoadReported {
                    self.loads.push((p.user_id.clone(), p.active_chats));
                }
                if event.kind() == Kind::Change {
                    self.state.insert(p.user_id.clone(), p);
                } else {
                    self.state.remove(&p.user_id);
                }
            }
            Kind::Unspecified => panic!("unspecified event kind"),
        }
    }

    /// The chat loads seen for the user, in order.
    fn loads_of(&self, user_id: &str) -> Vec<u32> {
        self.loads
            .iter()
            .filter(|(user, _)| user == user_id)
            .map(|(_, chats)| *chats)
            .collect()
    }

    /// Reads up to and including the snapshot's end marker.
    async fn snapshot(&mut self) -> u64 {
        loop {
            let event = self.next().await.expect("snapshot");
            if event.kind() == Kind::SnapshotEnd {
                return event.sequence;
            }
        }
    }

    /// Reads until a CHANGE/REMOVED event about `user_id` arrives.
    async fn change_of(&mut self, user_id: &str) -> pb::WatchPresenceResponse {
        loop {
            let event = self.next().await.expect("event");
            if matches!(event.kind(), Kind::Change | Kind::Removed)
                && event
                    .presence
                    .as_ref()
                    .is_some_and(|p| p.user_id == user_id)
            {
                return event;
            }
        }
    }

    /// Reads until an event about `user_id` with reason `why` arrives.
    async fn reason_of(&mut self, user_id: &str, why: Why) -> pb::WatchPresenceResponse {
        loop {
            let event = self.change_of(user_id).await;
            if event.reason() == why {
                return event;
            }
        }
    }

    /// Reads until the watch has seen `sequence`.
    async fn until(&mut self, sequence: u64) {
        while self.last < sequence {
            self.next().await.expect("event");
        }
    }
}

/// Another server on the database at `url` (a replica, or the same
/// service after a restart), and a presence client of it.
async fn second_server(url: &str, bearer: Bearer) -> (Client, tokio::task::JoinHandle<()>) {
    let mut config = Config::for_tests(url);
    config.bootstrap_org = ORG.into();
    let (addr, server) = start(config).await;
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    (
        PresenceServiceClient::with_interceptor(channel, bearer),
        server,
    )
}

/// The status a watch that must not open is refused with.
async fn refusal(client: &mut Client, request: pb::WatchPresenceRequest) -> Status {
    match Watch::open(client, request).await {
        Err(status) => status,
        Ok(_) => panic!("the watch opened"),
    }
}

/// Changes one org setting as the admin.
async fn update_settings(app: &TestApp, path: &str, settings: pb::OrgSettings) {
    OrgServiceClient::with_interceptor(app.channel.clone(), app.bearer())
        .update_org_settings(pb::UpdateOrgSettingsRequest {
            settings: Some(settings),
            update_mask: Some(prost_types::FieldMask {
                paths: vec![path.into()],
            }),
        })
        .await
        .expect("settings updated");
}

/// The org's latest sequence, as a new watch's snapshot states it.
async fn latest(app: &TestApp) -> u64 {
    Watch::open(&mut admin(app), watch_all())
        .await
        .expect("watch")
        .snapshot()
        .await
}

fn watch_all() -> pb::WatchPresenceRequest {
    pb::WatchPresenceRequest::default()
}

#[tokio::test]
async fn sign_in_availability_and_sign_out_move_presence() {
    let app = spawn_app().await;
    let (agent, token) = signed_in_agent(&app, "ann@example.com").await;
    let signed_in = get(&app, &agent).await;
    assert_eq!(signed_in.status(), St::Unavailable);
    assert_eq!(signed_in.effective_max_chats, 6);
    assert_eq!(signed_in.max_chats_source(), pb::MaxChatsSource::OrgDefault);
    assert!(signed_in.can_handle_chats && !signed_in.has_capacity);

    let mut own = presence_as(&app, &token);
    let available = set(&mut own, "", St::Available).await.expect("set own");
    assert_eq!(available.status(), St::Available);
    assert!(available.has_capacity);
    // Setting the status one has changes nothing, not even the time.
    let again = set(&mut own, "", St::Available).await.expect("same again");
    assert_eq!(again.status_changed_at, available.status_changed_at);

    app.auth_as(&token)
        .logout(pb::LogoutRequest {})
        .await
        .expect("logout");
    let out = get(&app, &agent).await;
    assert_eq!(out.status(), St::Offline);
    assert_eq!(out.active_chats, 0);
}

#[tokio::test]
async fn availability_is_refused_precisely_and_changes_nothing() {
    let app = spawn_app().await;
    let (agent, agent_token) = signed_in_agent(&app, "ann@example.com").await;
    let (other, _) = signed_in_agent(&app, "bob@example.com").await;
    let offline = app.create_user("cat@example.com", "Cat", &["agent"]).await;
    let viewer = app.create_user("vic@example.com", "Vic", &["viewer"]).await;
    let viewer_token = app
        .login("vic@example.com", USER_PASSWORD)
        .await
        .session_token;
    let mut agent_client = presence_as(&app, &agent_token);
    let before = get(&app, &other).await;

    let denied = set(&mut agent_client, &other, St::Available)
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let bad = set(&mut admin(&app), &agent, St::Offline)
        .await
        .unwrap_err();
    assert_eq!(
        (bad.code(), reason(&bad).as_str()),
        (Code::InvalidArgument, "INVALID_STATUS")
    );
    let off = set(&mut admin(&app), &offline.user_id, St::Available)
        .await
        .unwrap_err();
    assert_eq!(
        (off.code(), reason(&off).as_str()),
        (Code::FailedPrecondition, "USER_OFFLINE")
    );
    let unknown = set(
        &mut admin(&app),
        &uuid::Uuid::now_v7().to_string(),
        St::Available,
    )
    .await
    .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let garbage = set(&mut admin(&app), "nope", St::Available)
        .await
        .unwrap_err();
    assert_eq!(
        (garbage.code(), reason(&garbage).as_str()),
        (Code::InvalidArgument, "INVALID_ID")
    );
    // Viewers do not handle chats: they cannot make themselves available.
    let viewer_self = set(&mut presence_as(&app, &viewer_token), "", St::Available)
        .await
        .unwrap_err();
    assert_eq!(viewer_self.code(), Code::PermissionDenied);
    let viewer_by_admin = set(&mut admin(&app), &viewer.user_id, St::Available)
        .await
        .unwrap_err();
    assert_eq!(reason(&viewer_by_admin), "CANNOT_HANDLE_CHATS");
    assert_eq!(get(&app, &other).await, before);

    // An admin sets someone else's availability, and the audit log says so.
    let set_by_admin = set(&mut admin(&app), &other, St::Available)
        .await
        .expect("admin sets");
    assert_eq!(set_by_admin.status(), St::Available);
    let actions = app
        .sql_strings(&format!(
            "SELECT action FROM audit_events WHERE target_user_id = '{other}' AND action = 'presence.set'"
        ))
        .await;
    assert_eq!(actions.len(), 1);
}

#[tokio::test]
async fn chat_load_sets_capacity_and_bad_loads_are_refused() {
    let app = spawn_app().await;
    let (agent, token) = signed_in_agent(&app, "ann@example.com").await;
    set(&mut presence_as(&app, &token), "", St::Available)
        .await
        .expect("available");
    let mut router = admin(&app);
    let loaded = load(&mut router, &agent, 5).await.expect("load 5");
    assert_eq!((loaded.active_chats, loaded.has_capacity), (5, true));
    let full = load(&mut router, &agent, 6).await.expect("load 6");
    assert!(!full.has_capacity);

    let too_many = load(&mut router, &agent, 10_001).await.unwrap_err();
    assert_eq!(
        (too_many.code(), reason(&too_many).as_str()),
        (Code::InvalidArgument, "INVALID_CHAT_LOAD")
    );
    let unknown = load(&mut router, &uuid::Uuid::now_v7().to_string(), 1)
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let agent_reports = load(&mut presence_as(&app, &token), &agent, 1)
        .await
        .unwrap_err();
    assert_eq!(agent_reports.code(), Code::PermissionDenied);
    let offline = app.create_user("off@example.com", "Off", &["agent"]).await;
    let refused = load(&mut router, &offline.user_id, 1).await.unwrap_err();
    assert_eq!(reason(&refused), "USER_OFFLINE");
    assert_eq!(get(&app, &agent).await.active_chats, 6);

    // A user's own max_chats overrides the org default.
    app.admin_users()
        .update_user(pb::UpdateUserRequest {
            user: Some(pb::User {
                user_id: agent.clone(),
                max_chats: Some(10),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["max_chats".into()],
            }),
        })
        .await
        .expect("update max chats");
    let raised = get(&app, &agent).await;
    assert_eq!(raised.effective_max_chats, 10);
    assert_eq!(raised.max_chats_source(), pb::MaxChatsSource::User);
    assert!(raised.has_capacity);
}

/// Reports sent at once are written together; each still gets its own
/// answer, a refused one leaves the others alone, and watchers see every
/// accepted report, in each router's order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_chat_loads_each_get_their_answer_and_reach_watchers_in_order() {
    let app = spawn_app().await;
    let (agents, offline, mut watch, start) = agents_under_watch(&app, 8).await;

    const REPORTS: u32 = 25;
    let mut routers = Vec::new();
    for (agent, _) in &agents {
        let (mut router, agent) = (admin(&app), agent.clone());
        routers.push(tokio::spawn(async move {
            for chats in 1..=REPORTS {
                let presence = load(&mut router, &agent, chats).await.expect("load");
                assert_eq!(presence.active_chats, chats);
            }
        }));
    }
    let (mut router, offline_id) = (admin(&app), offline.user_id.clone());
    let refusals = tokio::spawn(async move {
        for _ in 0..REPORTS {
            let refused = load(&mut router, &offline_id, 1).await.unwrap_err();
            assert_eq!(reason(&refused), "USER_OFFLINE");
        }
    });
    for router in routers {
        router.await.expect("router");
    }
    refusals.await.expect("refusals");

    let total = start + u64::from(REPORTS) * agents.len() as u64;
    watch.until(total).await;
    assert_eq!(watch.changes, (start + 1..=total).collect::<Vec<_>>());
    for (agent, _) in &agents {
        assert_eq!(
            watch.loads_of(agent),
            (1..=REPORTS).collect::<Vec<_>>(),
            "{agent}"
        );
    }
}

/// Availability (own and another's), heartbeats and chat loads sent at
/// once are written together: each is answered as if it were alone, the
/// audited ones are audited, and watchers see them all, numbered in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn availability_heartbeats_and_loads_sent_together_are_each_answered_as_if_alone() {
    let app = spawn_app().await;
    let (agents, offline, mut watch, start) = agents_under_watch(&app, 6).await;

    const ROUNDS: u32 = 10;
    let mut writers = Vec::new();
    for (i, (agent, token)) in agents.iter().cloned().enumerate() {
        let (mut own, mut other) = (presence_as(&app, &token), admin(&app));
        let (neighbour, offline_id) = (
            agents[(i + 1) % agents.len()].0.clone(),
            offline.user_id.clone(),
        );
        writers.push(tokio::spawn(async move {
            for round in 1..=ROUNDS {
                let mine = set(&mut own, "", St::Available).await.expect("own");
                assert_eq!(
                    (mine.user_id.as_str(), mine.status()),
                    (agent.as_str(), St::Available)
                );
                let beat = own
                    .heartbeat(pb::HeartbeatRequest {})
                    .await
                    .expect("heartbeat")
                    .into_inner();
                assert!(beat.lease_expires_at.is_some());
                let loaded = load(&mut other, &agent, round).await.expect("load");
                assert_eq!(loaded.active_chats, round);
                let theirs = set(&mut other, &neighbour, St::Unavailable)
                    .await
                    .expect("another's");
                assert_eq!(theirs.user_id, neighbour);
                let refused = set(&mut other, &offline_id, St::Available)
                    .await
                    .unwrap_err();
                assert_eq!(reason(&refused), "USER_OFFLINE");
            }
        }));
    }
    for writer in writers {
        writer.await.expect("writer");
    }

    let latest = latest(&app).await;
    watch.until(latest).await;
    assert_eq!(watch.changes, (start + 1..=latest).collect::<Vec<_>>());
    for (agent, _) in &agents {
        assert_eq!(
            watch.loads_of(agent),
            (1..=ROUNDS).collect::<Vec<_>>(),
            "{agent}"
        );
        assert_eq!(watch.state[agent], get(&app, agent).await);
    }
    // Every change of another's status (the only ones to UNAVAILABLE here)
    // was audited, none of one's own.
    let set_by_admin = app
        .sql_strings(
            "SELECT user_id FROM presence_events \
             WHERE reason = 'availability_set' AND status = 'unavailable'",
        )
        .await;
    let audited = app
        .sql_strings("SELECT actor_id FROM audit_events WHERE action = 'presence.set'")
        .await;
    // Not empty: the agents cannot all finish before their neighbours start.
    assert!(!set_by_admin.is_empty());
    assert_eq!(audited.len(), set_by_admin.len());
    let admin_id = app.admin_id().await;
    assert!(
        audited.iter().all(|actor| *actor == admin_id),
        "{audited:?}"
    );
}

#[tokio::test]
async fn suspending_an_agent_with_chats_needs_force_and_tells_routers() {
    let app = spawn_app().await;
    let (agent, _) = signed_in_agent(&app, "ann@example.com").await;
    load(&mut admin(&app), &agent, 2).await.expect("load");
    let mut watch = Watch::open(&mut admin(&app), watch_all())
        .await
        .expect("watch");
    watch.snapshot().await;
    let suspend = |force| pb::SuspendUserRequest {
        user_id: agent.clone(),
        reason: String::new(),
        force,
    };
    let refused = app
        .admin_users()
        .suspend_user(suspend(false))
        .await
        .unwrap_err();
    assert_eq!(
        (refused.code(), reason(&refused).as_str()),
        (Code::FailedPrecondition, "ACTIVE_CHATS")
    );
    let info = tonic_types::StatusExt::get_details_error_info(&refused).expect("error info");
    assert_eq!(
        info.metadata.get("active_chats").map(String::as_str),
        Some("2")
    );
    assert_eq!(
        app.get_user(&agent).await.expect("user").state(),
        pb::UserState::Active
    );

    app.admin_users()
        .suspend_user(suspend(true))
        .await
        .expect("forced");
    let event = watch.change_of(&agent).await;
    assert_eq!(
        (event.kind(), event.reason()),
        (Kind::Removed, Why::UserSuspended)
    );
    let presence = event.presence.expect("presence");
    assert_eq!((presence.status(), presence.active_chats), (St::Offline, 0));
    assert!(!watch.state.contains_key(&agent));

    app.admin_users()
        .reactivate_user(pb::ReactivateUserRequest {
            user_id: agent.clone(),
        })
        .await
        .expect("reactivate");
    let back = watch.change_of(&agent).await;
    assert_eq!(
        (back.kind(), back.reason()),
        (Kind::Change, Why::UserReactivated)
    );
}

#[tokio::test]
async fn a_lapsed_lease_goes_offline_and_a_heartbeat_brings_it_back() {
    let app = spawn_app().await;
    update_settings(
        &app,
        "presence_lease",
        pb::OrgSettings {
            presence_lease: Some(prost_types::Duration {
                seconds: 5,
                nanos: 0,
            }),
            ..Default::default()
        },
    )
    .await;
    let mut watch = Watch::open(&mut admin(&app), watch_all())
        .await
        .expect("watch");
    watch.snapshot().await;
    let (agent, token) = signed_in_agent(&app, "ann@example.com").await;
    let mut own = presence_as(&app, &token);
    let beat = own
        .heartbeat(pb::HeartbeatRequest {})
        .await
        .expect("beat")
        .into_inner();
    let interval = beat.heartbeat_interval.expect("interval");
    assert!(
        interval.seconds >= 1 && interval.seconds < 5,
        "{interval:?}"
    );
    assert_eq!(beat.presence.expect("presence").status(), St::Unavailable);

    // No more beats: the sweeper takes the agent OFFLINE.
    let expired = watch.reason_of(&agent, Why::LeaseExpired).await;
    assert_eq!(expired.presence.expect("presence").status(), St::Offline);
    assert_eq!(get(&app, &agent).await.status(), St::Offline);

    // The session is still valid: a heartbeat signs the agent back in.
    let revived = own
        .heartbeat(pb::HeartbeatRequest {})
        .await
        .expect("beat")
        .into_inner();
    assert_eq!(
        revived.presence.expect("presence").status(),
        St::Unavailable
    );
    let back = watch.change_of(&agent).await;
    assert_eq!(back.reason(), Why::SignedIn);
}

#[tokio::test]
async fn a_watch_sends_a_snapshot_then_changes_with_lifecycle_reasons() {
    let app = spawn_app().await;
    let (agent, token) = signed_in_agent(&app, "ann@example.com").await;
    let mut watch = Watch::open(&mut admin(&app), watch_all())
        .await
        .expect("watch");
    let at = watch.snapshot().await;
    assert!(watch.state.contains_key(&agent));
    assert!(at > 0);

    set(&mut presence_as(&app, &token), "", St::Available)
        .await
        .expect("available");
    let event = watch.change_of(&agent).await;
    assert_eq!(
        (event.kind(), event.reason()),
        (Kind::Change, Why::AvailabilitySet)
    );
    assert!(event.sequence > at);

    let new = app.create_user("new@example.com", "New", &["agent"]).await;
    let activated = watch.change_of(&new.user_id).await;
    assert_eq!(activated.reason(), Why::UserActivated);
    assert_eq!(activated.presence.expect("presence").status(), St::Offline);

    let update = |paths: &[&str], user: pb::User| pb::UpdateUserRequest {
        user: Some(user),
        update_mask: Some(prost_types::FieldMask {
            paths: paths.iter().map(|p| p.to_string()).collect(),
        }),
    };
    app.admin_users()
        .update_user(update(
            &["roles"],
            pb::User {
                user_id: agent.clone(),
                roles: vec!["viewer".into()],
                ..Default::default()
            },
        ))
        .await
        .expect("roles");
    let roles = watch.change_of(&agent).await;
    assert_eq!(roles.reason(), Why::RolesChanged);
    assert!(!roles.presence.expect("presence").can_handle_chats);

    let team = app.create_team("Sales").await;
    app.admin_users()
        .update_user(update(
            &["team_ids"],
            pb::User {
                user_id: agent.clone(),
                team_ids: vec![team.clone()],
                ..Default::default()
            },
        ))
        .await
        .expect("teams");
    let teams = watch.change_of(&agent).await;
    assert_eq!(teams.reason(), Why::TeamsChanged);
    assert_eq!(
        teams.presence.expect("presence").team_ids,
        vec![team.clone()]
    );

    update_settings(
        &app,
        "default_max_chats",
        pb::OrgSettings {
            default_max_chats: 3,
            ..Default::default()
        },
    )
    .await;
    let capacity = watch.change_of(&agent).await;
    assert_eq!(capacity.reason(), Why::MaxChatsChanged);
    assert_eq!(capacity.presence.expect("presence").effective_max_chats, 3);

    app.admin_users()
        .delete_user(pb::DeleteUserRequest {
            user_id: new.user_id.clone(),
        })
        .await
        .expect("delete");
    let deleted = watch.reason_of(&new.user_id, Why::UserDeleted).await;
    assert_eq!(deleted.kind(), Kind::Removed);

    // The stream ends up where the list is.
    let latest = latest(&app).await;
    watch.until(latest).await;
    assert_eq!(watch.state, list_all(&app).await);
}

#[tokio::test]
async fn filters_and_scopes_narrow_a_watch() {
    let app = spawn_app().await;
    let (alpha, beta) = (
        app.create_team("Alpha").await,
        app.create_team("Beta").await,
    );
    let member = |email: &'static str, roles: &'static [&'static str], team: String| {
        let users = app.admin_users();
        async move {
            let mut request = crate::helpers::create_request(email, "Member", roles);
            request.user.as_mut().expect("user").team_ids = vec![team];
            users
                .clone()
                .create_user(request)
                .await
                .expect("create")
                .into_inner()
                .user
                .expect("user")
        }
    };
    let in_alpha = member("a@example.com", &["agent"], alpha.clone()).await;
    let in_beta = member("b@example.com", &["agent"], beta.clone()).await;
    member("sup@example.com", &["supervisor"], alpha.clone()).await;
    let sup_token = app
        .login("sup@example.com", USER_PASSWORD)
        .await
        .session_token;
    let a_token = app
        .login("a@example.com", USER_PASSWORD)
        .await
        .session_token;
    let b_token = app
        .login("b@example.com", USER_PASSWORD)
        .await
        .session_token;

    // A supervisor sees their team only, and may not ask for another.
    let mut sup = presence_as(&app, &sup_token);
    let mut scoped = Watch::open(&mut sup, watch_all()).await.expect("watch");
    scoped.snapshot().await;
    assert!(scoped.state.contains_key(&in_alpha.user_id));
    assert!(!scoped.state.contains_key(&in_beta.user_id));
    let other_team = refusal(
        &mut sup,
        pb::WatchPresenceRequest {
            team_ids: vec![beta.clone()],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(other_team.code(), Code::PermissionDenied);

    // An AVAILABLE-only watch: users enter as CHANGE and leave as REMOVED.
    let mut available = Watch::open(
        &mut admin(&app),
        pb::WatchPresenceRequest {
            statuses: vec![St::Available.into()],
            ..Default::default()
        },
    )
    .await
    .expect("watch");
    available.snapshot().await;
    assert!(available.state.is_empty());
    set(&mut presence_as(&app, &b_token), "", St::Available)
        .await
        .expect("b available");
    set(&mut presence_as(&app, &a_token), "", St::Available)
        .await
        .expect("a available");
    let entered = available.change_of(&in_beta.user_id).await;
    assert_eq!(entered.kind(), Kind::Change);
    set(&mut presence_as(&app, &b_token), "", St::Unavailable)
        .await
        .expect("b away");
    let left = available.change_of(&in_beta.user_id).await;
    assert_eq!(left.kind(), Kind::Removed);

    // The supervisor's stream carried only the team's change.
    let a_event = scoped.change_of(&in_alpha.user_id).await;
    assert_eq!(a_event.reason(), Why::AvailabilitySet);
    assert!(!scoped.state.contains_key(&in_beta.user_id));

    // An agent sees only themselves.
    let mut own = Watch::open(&mut presence_as(&app, &a_token), watch_all())
        .await
        .expect("watch");
    own.snapshot().await;
    assert_eq!(
        own.state.keys().collect::<Vec<_>>(),
        vec![&in_alpha.user_id]
    );
    // Bad filters are named.
    let bad = refusal(
        &mut admin(&app),
        pb::WatchPresenceRequest {
            statuses: vec![42],
            team_ids: vec!["x".into()],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(
        crate::helpers::bad_fields(&bad),
        vec!["team_ids", "statuses"]
    );
}

#[tokio::test]
async fn resuming_replays_exactly_the_missed_events_even_after_a_restart() {
    let database = TestDatabase::create().await;
    let url = database.url.clone();
    let app = spawn_app_on(database).await;
    let (agent, token) = signed_in_agent(&app, "ann@example.com").await;
    let mut own = presence_as(&app, &token);
    let mut watch = Watch::open(&mut admin(&app), watch_all())
        .await
        .expect("watch");
    let seen = watch.snapshot().await;
    drop(watch);

    set(&mut own, "", St::Available).await.expect("available");
    load(&mut admin(&app), &agent, 1).await.expect("load");
    let mut resumed = Watch::open(
        &mut admin(&app),
        pb::WatchPresenceRequest {
            resume_after: Some(seen),
            ..Default::default()
        },
    )
    .await
    .expect("resume");
    let first = resumed.next().await.expect("first");
    assert_eq!(
        (first.kind(), first.sequence, first.reason()),
        (Kind::Change, seen + 1, Why::AvailabilitySet)
    );
    let second = resumed.next().await.expect("second");
    assert_eq!(
        (second.sequence, second.reason()),
        (seen + 2, Why::ChatLoadReported)
    );

    let beyond = refusal(
        &mut admin(&app),
        pb::WatchPresenceRequest {
            resume_after: Some(seen + 100),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        (beyond.code(), reason(&beyond).as_str()),
        (Code::OutOfRange, "SEQUENCE_OUT_OF_RANGE")
    );

    // A second server on the same database (a restart) resumes the same way.
    let (mut other, _server) = second_server(&url, app.bearer()).await;
    let mut after_restart = Watch::open(
        &mut other,
        pb::WatchPresenceRequest {
            resume_after: Some(seen + 1),
            ..Default::default()
        },
    )
    .await
    .expect("resume on the new server");
    let replayed = after_restart.next().await.expect("replayed");
    assert_eq!(
        (replayed.sequence, replayed.reason()),
        (seen + 2, Why::ChatLoadReported)
    );
}

#[tokio::test]
async fn concurrent_changes_reach_resuming_watchers_in_order_without_gaps() {
    let app = spawn_app().await;
    let agents = signed_in_agents(&app, 6).await;
    let from = latest(&app).await;

    // Four writers: agents toggling availability, a router reporting loads.
    let mut writers = Vec::new();
    for w in 0..4 {
        let agents = agents.clone();
        let admin_client = admin(&app);
        let clients: Vec<Client> = agents.iter().map(|(_, t)| presence_as(&app, t)).collect();
        writers.push(tokio::spawn(async move {
            let mut router = admin_client;
            let mut clients = clients;
            for round in 0..25 {
                let i = (w + round) % agents.len();
                if (w + round) % 2 == 0 {
                    let status = if round % 4 < 2 {
                        St::Available
                    } else {
                        St::Unavailable
                    };
                    set(&mut clients[i], "", status).await.expect("set");
                } else {
                    load(&mut router, &agents[i].0, (round % 5) as u32)
                        .await
                        .expect("load");
                }
            }
        }));
    }

    // Three watchers that drop their stream at random and resume, until
    // the writers are done and the stream has gone quiet.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut watchers = Vec::new();
    for _ in 0..3 {
        let mut client = admin(&app);
        let done = done.clone();
        watchers.push(tokio::spawn(async move {
            let mut seen: Vec<u64> = Vec::new();
            let mut last = from;
            loop {
                let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                let mut watch = Watch::open(
                    &mut client,
                    pb::WatchPresenceRequest {
                        resume_after: Some(last),
                        ..Default::default()
                    },
                )
                .await
                .expect("resume");
                watch.last = last;
                let read = rand::rng().random_range(1..15);
                let mut quiet = false;
                for _ in 0..read {
                    match tokio::time::timeout(Duration::from_secs(1), watch.stream.message()).await
                    {
                        Ok(message) => {
                            let event = message.expect("event").expect("open");
                            assert_ne!(
                                event.kind(),
                                Kind::Reset,
                                "a resume in retention never resets"
                            );
                            watch.apply(&event);
                        }
                        Err(_) => {
                            quiet = true;
                            break;
                        }
                    }
                }
                seen.extend(&watch.changes);
                last = watch.last;
                if finished && quiet {
                    return (seen, last);
                }
            }
        }));
    }
    for writer in writers {
        writer.await.expect("writer");
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let latest = latest(&app).await;
    // Setting a status one already has is no change and gets no number.
    assert!(latest > from && latest <= from + 100, "{from}..{latest}");
    for watcher in watchers {
        let (seen, last) = watcher.await.expect("watcher");
        assert_eq!(last, latest);
        let expected: Vec<u64> = (from + 1..=latest).collect();
        assert_eq!(seen, expected, "each change once, in order");
    }
}

#[tokio::test]
async fn a_watch_ends_up_equal_to_the_list() {
    let app = spawn_app().await;
    let agents = signed_in_agents(&app, 4).await;
    let mut watch = Watch::open(&mut admin(&app), watch_all())
        .await
        .expect("watch");
    watch.snapshot().await;
    for (i, (id, token)) in agents.iter().enumerate() {
        set(&mut presence_as(&app, token), "", St::Available)
            .await
            .expect("set");
        load(&mut admin(&app), id, i as u32).await.expect("load");
    }
    let latest = latest(&app).await;
    watch.until(latest).await;
    assert_eq!(watch.state, list_all(&app).await);
}

#[tokio::test]
async fn a_watcher_that_stops_reading_is_resynchronised() {
    let app = spawn_app_with(|c| c.presence_watch_buffer = 8).await;
    let (agent, _) = signed_in_agent(&app, "ann@example.com").await;
    // A small HTTP/2 window, so the server cannot buffer much for us.
    let channel = Endpoint::from_shared(format!("http://{}", app.addr))
        .expect("uri")
        .initial_stream_window_size(Some(1024))
        .connect()
        .await
        .expect("connect");
    let mut slow_client = PresenceServiceClient::with_interceptor(channel, app.bearer());
    let mut slow = Watch::open(&mut slow_client, watch_all())
        .await
        .expect("watch");
    slow.snapshot().await;

    // Far more changes than the window, the stream queue and the buffer hold.
    let mut writers = Vec::new();
    for w in 0..4u32 {
        let mut router = admin(&app);
        let agent = agent.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..250u32 {
                load(&mut router, &agent, (w * 250 + i) % 7)
                    .await
                    .expect("load");
            }
        }));
    }
    for writer in writers {
        writer.await.expect("writer");
    }
    let latest = latest(&app).await;

    // Reading again: a RESET and a fresh snapshot, never a silent gap.
    slow.until(latest).await;
    assert!(slow.resets >= 1, "the slow watcher was resynchronised");
    assert_eq!(slow.state, list_all(&app).await);
}

#[tokio::test]
async fn a_change_through_one_replica_reaches_a_watcher_on_another() {
    let database = TestDatabase::create().await;
    let url = database.url.clone();
    let a = spawn_app_on(database).await;
    let (mut on_b, _server) = second_server(&url, a.bearer()).await;
    let mut watch = Watch::open(&mut on_b, watch_all())
        .await
        .expect("watch on B");
    watch.snapshot().await;

    let (agent, token) = signed_in_agent(&a, "ann@example.com").await;
    set(&mut presence_as(&a, &token), "", St::Available)
        .await
        .expect("set through A");
    let event = watch.reason_of(&agent, Why::AvailabilitySet).await;
    assert_eq!(event.presence.expect("presence").status(), St::Available);
}

#[tokio::test]
async fn stopping_the_server_ends_watches_with_unavailable() {
    let database = TestDatabase::create().await;
    let mut config = Config::for_tests(database.url.clone());
    config.bootstrap_org = ORG.into();
    config.bootstrap_admin_email = ADMIN_EMAIL.into();
    config.bootstrap_admin_password = Some(ADMIN_PASSWORD.into());
    config.shutdown_grace_secs = 5;
    let mut server = Stoppable::start(config).await;
    let channel = server.channel.clone();
    let token = AuthServiceClient::new(channel.clone())
        .login(pb::LoginRequest {
            org: ORG.into(),
            login: ADMIN_EMAIL.into(),
            password: ADMIN_PASSWORD.into(),
        })
        .await
        .expect("login")
        .into_inner()
        .session_token;
    let mut client =
        PresenceServiceClient::with_interceptor(channel, Bearer::new(&token).expect("token"));
    let mut watch = Watch::open(&mut client, watch_all()).await.expect("watch");
    watch.snapshot().await;

    server.stop();
    let ended = tokio::time::timeout(Duration::from_secs(10), watch.stream.message())
        .await
        .expect("the watch ends promptly");
    let status = ended.expect_err("the watch ends with a status");
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (Code::Unavailable, "SHUTTING_DOWN")
    );
    tokio::time::timeout(Duration::from_secs(10), server.server)
        .await
        .expect("stops within the grace period")
        .expect("task")
        .expect("clean stop");
}

#[tokio::test]
async fn users_are_listed_by_presence_status() {
    let app = spawn_app().await;
    let (agent, _) = signed_in_agent(&app, "ann@example.com").await;
    let offline = app.create_user("off@example.com", "Off", &["agent"]).await;
    let list = |status: i32| {
        let mut users = app.admin_users();
        async move {
            users
                .list_users(pb::ListUsersRequest {
                    presence_status: status,
                    ..Default::default()
                })
                .await
                .map(|r| {
                    r.into_inner()
                        .users
                        .into_iter()
                        .map(|u| u.user_id)
                        .collect::<Vec<_>>()
                })
        }
    };
    let unavailable = list(St::Unavailable.into()).await.expect("list");
    assert!(unavailable.contains(&agent) && !unavailable.contains(&offline.user_id));
    let off = list(St::Offline.into()).await.expect("list");
    assert!(off.contains(&offline.user_id) && !off.contains(&agent));
    assert!(list(St::Available.into()).await.expect("list").is_empty());
    let bad = list(9).await.unwrap_err();
    assert_eq!(crate::helpers::bad_fields(&bad), vec!["presence_status"]);
}

/// Appends to the org's presence log behind the server's back, as a writer
/// whose notification was lost would: a copy of the org's latest event,
/// numbered `skipped + 1` after it (skipped events: pruned before this
/// replica read them). Returns the new event's sequence.
async fn append_behind_the_servers_back(app: &TestApp, org_slug: &str, skipped: u64) -> u64 {
    let org_id = app
        .sql_strings(&format!("SELECT id FROM orgs WHERE slug = '{org_slug}'"))
        .await
        .remove(0);
    let step = skipped + 1;
    let columns = "user_id, reason, occurred_at, status, status_changed_at, active_chats, \
                   effective_max_chats, max_chats_overridden, team_ids, can_handle_chats, \
                   watched, prev_status, prev_team_ids, prev_watched, prev_active_chats";
    app.sql(&format!(
        "INSERT INTO presence_events (org_id, sequence, {columns}) \
         SELECT org_id, sequence + {step}, {columns} FROM presence_events \
         WHERE org_id = '{org_id}' ORDER BY sequence DESC LIMIT 1"
    ))
    .await;
    app.sql(&format!(
        "UPDATE presence_sequences SET last_sequence = last_sequence + {step} \
         WHERE org_id = '{org_id}'"
    ))
    .await;
    app.sql_strings(&format!(
        "SELECT CAST(last_sequence AS TEXT) FROM presence_sequences WHERE org_id = '{org_id}'"
    ))
    .await
    .remove(0)
    .parse()
    .expect("a sequence")
}

#[tokio::test]
async fn a_gap_in_the_log_moves_every_watch_to_the_reloaded_org() {
    // No poll during the test: the gap is found when the server next reads.
    let app = spawn_app_with(|c| c.presence_poll_ms = 600_000).await;
    let (agent, token) = signed_in_agent(&app, "ann@example.com").await;
    let mut old = Watch::open(&mut admin(&app), watch_all())
        .await
        .expect("watch");
    old.snapshot().await;

    let after_gap = append_behind_the_servers_back(&app, ORG, 5).await;
    // This watch's own catch-up finds the gap.
    let mut fresh = Watch::open(&mut admin(&app), watch_all())
        .await
        .expect("watch");
    assert_eq!(fresh.snapshot().await, after_gap);

    set(&mut presence_as(&app, &token), "", St::Available)
        .await
        .expect("available");
    let change = fresh.change_of(&agent).await;
    assert_eq!(change.sequence, after_gap + 1);
    // The watch opened before the gap starts over, then follows too.
    let change = old.change_of(&agent).await;
    assert_eq!(change.sequence, after_gap + 1);
    assert_eq!(old.resets, 1);
    assert_eq!(old.state[&agent].status(), St::Available);
    // And one more change reaches both: neither follows a dead feed.
    set(&mut presence_as(&app, &token), "", St::Unavailable)
        .await
        .expect("unavailable");
    assert_eq!(fresh.change_of(&agent).await.sequence, after_gap + 2);
    assert_eq!(old.change_of(&agent).await.sequence, after_gap + 2);
}

#[tokio::test]
async fn a_lost_notification_is_caught_by_the_poll_even_while_other_orgs_are_busy() {
    let app = spawn_app_with(|c| c.presence_poll_ms = 500).await;
    let (_, quiet_token) = second_org_admin(&app, "quiet").await;
    let mut quiet = Watch::open(&mut presence_as(&app, &quiet_token), watch_all())
        .await
        .expect("watch");
    quiet.snapshot().await;

    // The busy org changes far more often than the poll.
    let (agent, _) = signed_in_agent(&app, "busy@example.com").await;
    let busy = tokio::spawn({
        let mut client = admin(&app);
        async move {
            for chats in (0..).map(|n| n % 3) {
                load(&mut client, &agent, chats).await.expect("chat load");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    let lost = append_behind_the_servers_back(&app, "quiet", 0).await;
    tokio::time::timeout(Duration::from_secs(10), quiet.until(lost))
        .await
        .expect("the poll reads the quiet org within seconds");
    assert!(!busy.is_finished(), "the busy org kept changing throughout");
    busy.abort();
}

/// Signs in the admin of a second org made behind the API (orgs have no
/// RPC yet), with the bootstrap admin's password. Returns (user id, session
/// token).
async fn second_org_admin(app: &TestApp, slug: &str) -> (String, String) {
    let email = format!("admin@{slug}.example.com");
    let user_id = app
        .insert_org_admin(slug, &email, "Admin", &app.admin_id().await)
        .await;
    let token = app
        .auth()
        .login(pb::LoginRequest {
            org: slug.into(),
            login: email,
            password: ADMIN_PASSWORD.into(),
        })
        .await
        .expect("signed in to the second org")
        .into_inner()
        .session_token;
    (user_id, token)
}

#[tokio::test]
async fn a_large_org_loading_does_not_hold_up_the_first_watch_of_another() {
    let app = spawn_app().await;
    let (big_admin, big_token) = second_org_admin(&app, "big").await;
    let org_id = app
        .sql_strings("SELECT id FROM orgs WHERE slug = 'big'")
        .await
        .remove(0);
    let id = if app.database_url.starts_with("postgres") {
        "'00000000-0000-7000-8000-' || lpad(i::text, 12, '0')"
    } else {
        "printf('00000000-0000-7000-8000-%012d', i)"
    };
    app.sql(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 150000) \
         INSERT INTO users (id, org_id, email, login_id, display_name, sort_key, search_text, \
         public_name, state, locked_at, max_chats, login_with, language, landline_phone, \
         mobile_phone, job_title, location, can_view_colleagues_chats, version, created_at, \
         updated_at, last_login_at, last_logout_at, suspend_reason, has_avatar) \
         SELECT {id}, o.id, 'big' || i || '@example.com', NULL, 'Big', 'big', 'big', '', \
         'active', NULL, NULL, NULL, '', '', '', '', '', false, 1, o.created_at, o.created_at, \
         NULL, NULL, NULL, false FROM n, orgs o WHERE o.id = '{org_id}'"
    ))
    .await;
    app.sql(&format!(
        "INSERT INTO presence (user_id, org_id, status, status_changed_at, active_chats, \
         lease_expires_at, effective_max_chats, max_chats_overridden, team_ids, \
         can_handle_chats, watched) SELECT u.id, u.org_id, p.status, p.status_changed_at, 0, \
         p.lease_expires_at, p.effective_max_chats, false, '', p.can_handle_chats, true \
         FROM users u, presence p WHERE u.org_id = '{org_id}' AND u.id <> '{big_admin}' \
         AND p.user_id = '{big_admin}'"
    ))
    .await;

    // The large org's first load starts, and the small org's watch opens
    // while it runs.
    let big = tokio::spawn({
        let mut client = presence_as(&app, &big_token);
        async move {
            let mut watch = Watch::open(&mut client, watch_all()).await.expect("watch");
            watch.next().await.expect("the large org's first item");
            tokio::time::Instant::now()
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut small = Watch::open(&mut admin(&app), watch_all())
        .await
        .expect("watch");
    small.snapshot().await;
    let small_done = tokio::time::Instant::now();
    let big_first = big.await.expect("large watch");
    assert!(
        small_done < big_first,
        "the small org's snapshot waited for the large org's load"
    );
}
