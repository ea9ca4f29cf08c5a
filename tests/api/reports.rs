//! ReportService.GetActivity through the real server: totals that equal the
//! time between the status changes the test makes, scopes, paging and bad
//! input.

use chrono::{DateTime, TimeDelta, Utc};
use roster::api::{
    Bearer,
    pb::{
        self, ActivityGranularity as Granularity, PresenceStatus as St,
        presence_service_client::PresenceServiceClient, report_service_client::ReportServiceClient,
    },
};
use tonic::{Code, Status, service::interceptor::InterceptedService, transport::Channel};

use crate::helpers::{
    TestApp, USER_PASSWORD, bad_fields, create_request, reason, spawn_app, spawn_app_with,
};

type Reports = ReportServiceClient<InterceptedService<Channel, Bearer>>;
type Presence = PresenceServiceClient<InterceptedService<Channel, Bearer>>;

fn reports_as(app: &TestApp, token: &str) -> Reports {
    ReportServiceClient::with_interceptor(app.channel.clone(), Bearer::new(token).expect("token"))
}

fn ts(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

fn time_of(t: &Option<prost_types::Timestamp>) -> DateTime<Utc> {
    let t = t.as_ref().expect("timestamp");
    DateTime::from_timestamp(t.seconds, t.nanos as u32).expect("valid time")
}

fn delta(d: &Option<prost_types::Duration>) -> TimeDelta {
    let d = d.as_ref().expect("duration");
    TimeDelta::seconds(d.seconds) + TimeDelta::nanoseconds(d.nanos.into())
}

fn request(
    user_ids: &[&str],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    granularity: Granularity,
) -> pb::GetActivityRequest {
    pb::GetActivityRequest {
        user_ids: user_ids.iter().map(|s| s.to_string()).collect(),
        start_time: Some(ts(start)),
        end_time: Some(ts(end)),
        granularity: granularity.into(),
        ..Default::default()
    }
}

/// A user created with `roles` and `teams`, signed in; (user, token).
async fn member(app: &TestApp, email: &str, roles: &[&str], teams: &[&str]) -> (pb::User, String) {
    let mut create = create_request(email, email, roles);
    if let Some(user) = create.user.as_mut() {
        user.team_ids = teams.iter().map(|t| t.to_string()).collect();
    }
    let user = app
        .admin_users()
        .create_user(create)
        .await
        .expect("user created")
        .into_inner()
        .user
        .expect("user");
    let token = app.login(email, USER_PASSWORD).await.session_token;
    (user, token)
}

/// Everyone's rows, following page tokens.
async fn all_rows(client: &mut Reports, mut req: pb::GetActivityRequest) -> Vec<pb::ActivityRow> {
    let mut rows = Vec::new();
    loop {
        let page = client
            .get_activity(req.clone())
            .await
            .expect("report")
            .into_inner();
        rows.extend(page.rows);
        if page.next_page_token.is_empty() {
            return rows;
        }
        req.page_token = page.next_page_token;
    }
}

/// Each status's total over the rows, and the highest peak.
fn totals(rows: &[pb::ActivityRow]) -> (TimeDelta, TimeDelta, TimeDelta, u32) {
    rows.iter().fold(
        (TimeDelta::zero(), TimeDelta::zero(), TimeDelta::zero(), 0),
        |(off, unav, av, peak), r| {
            (
                off + delta(&r.offline_duration),
                unav + delta(&r.unavailable_duration),
                av + delta(&r.available_duration),
                peak.max(r.peak_active_chats),
            )
        },
    )
}

#[tokio::test]
async fn totals_equal_the_time_between_the_changes() {
    let app = spawn_app().await;
    let (agent, token) = member(&app, "ann@example.com", &["agent"], &[]).await;
    let mut presence =
        PresenceServiceClient::with_interceptor(app.channel.clone(), Bearer::new(&token).unwrap());
    let mut admin_presence =
        PresenceServiceClient::with_interceptor(app.channel.clone(), app.bearer());
    let now_of = |p: &pb::Presence| time_of(&p.status_changed_at);
    async fn current(client: &mut Presence, user_id: &str) -> pb::Presence {
        let mut got = client
            .get_presence(pb::GetPresenceRequest {
                user_ids: vec![user_id.into()],
            })
            .await
            .expect("presence")
            .into_inner();
        got.presences.remove(0)
    }
    async fn set(client: &mut Presence, status: St) -> pb::Presence {
        client
            .set_availability(pb::SetAvailabilityRequest {
                user_id: String::new(),
                status: status.into(),
            })
            .await
            .expect("availability set")
            .into_inner()
            .presence
            .expect("presence")
    }

    let signed_in = current(&mut admin_presence, &agent.user_id).await;
    assert_eq!(signed_in.status, St::Unavailable as i32);
    let t1 = now_of(&signed_in);
    let t2 = now_of(&set(&mut presence, St::Available).await);
    for chats in [3, 1] {
        admin_presence
            .report_chat_load(pb::ReportChatLoadRequest {
                user_id: agent.user_id.clone(),
                active_chats: chats,
            })
            .await
            .expect("chat load");
    }
    let t3 = now_of(&set(&mut presence, St::Unavailable).await);
    app.auth_as(&token)
        .logout(pb::LogoutRequest {})
        .await
        .expect("logout");
    let signed_out = current(&mut admin_presence, &agent.user_id).await;
    assert_eq!(signed_out.status, St::Offline as i32);
    let t4 = now_of(&signed_out);

    // From sign-in to sign-out: nothing OFFLINE.
    let mut reports = reports_as(&app, &app.admin_token);
    for granularity in [Granularity::Hour, Granularity::Day] {
        let rows = all_rows(
            &mut reports,
            request(&[&agent.user_id], t1, t4, granularity),
        )
        .await;
        assert!(rows.iter().all(|r| r.user_id == agent.user_id));
        assert_eq!(
            totals(&rows),
            (TimeDelta::zero(), (t2 - t1) + (t4 - t3), t3 - t2, 3),
            "{granularity:?}"
        );
    }

    // From the user's creation to a second after sign-out: OFFLINE before
    // signing in and after signing out.
    let created = time_of(&agent.created_at);
    let end = t4 + TimeDelta::seconds(1);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let rows = all_rows(
        &mut reports,
        request(&[&agent.user_id], created, end, Granularity::Hour),
    )
    .await;
    let (off, unav, av, peak) = totals(&rows);
    assert_eq!(off, (t1 - created) + (end - t4));
    assert_eq!((unav, av, peak), ((t2 - t1) + (t4 - t3), t3 - t2, 3));
    assert_eq!(off + unav + av, end - created);
    let first = rows.first().expect("a row");
    assert_eq!(
        time_of(&first.bucket_start).timestamp() % 3600,
        0,
        "buckets are whole hours"
    );
}

#[tokio::test]
async fn time_not_yet_passed_has_no_row_and_a_quiet_user_is_in_one_state() {
    let app = spawn_app().await;
    let (agent, _token) = member(&app, "ann@example.com", &["agent"], &[]).await;
    let now = Utc::now();
    let rows = all_rows(
        &mut reports_as(&app, &app.admin_token),
        request(
            &[&agent.user_id],
            now,
            now + TimeDelta::hours(20),
            Granularity::Hour,
        ),
    )
    .await;
    assert!(rows.len() <= 2, "only the hours up to now: {}", rows.len());
    let (off, unav, av, _) = totals(&rows);
    assert_eq!(off, TimeDelta::zero());
    assert_eq!(av, TimeDelta::zero());
    assert!(
        unav > TimeDelta::zero() && unav < TimeDelta::minutes(5),
        "{unav}"
    );
}

#[tokio::test]
async fn each_caller_reads_their_scope() {
    let app = spawn_app().await;
    let support = app.create_team("Support").await;
    let sales = app.create_team("Sales").await;
    let (ann, ann_token) = member(&app, "ann@example.com", &["agent"], &[&support]).await;
    let (bob, _) = member(&app, "bob@example.com", &["agent"], &[&sales]).await;
    let (sue, sue_token) = member(&app, "sue@example.com", &["supervisor"], &[&support]).await;
    let (_, viewer_token) = member(&app, "vic@example.com", &["viewer"], &[]).await;
    let end = Utc::now();
    let everyone = request(&[], end - TimeDelta::hours(1), end, Granularity::Hour);
    let only = |users: &[&str], teams: &[&str]| pb::GetActivityRequest {
        user_ids: users.iter().map(|u| u.to_string()).collect(),
        team_ids: teams.iter().map(|t| t.to_string()).collect(),
        ..everyone.clone()
    };
    async fn users_in(client: &mut Reports, req: pb::GetActivityRequest) -> Vec<String> {
        let mut ids: Vec<String> = all_rows(client, req)
            .await
            .into_iter()
            .map(|r| r.user_id)
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }
    async fn denied(client: &mut Reports, req: pb::GetActivityRequest) {
        let err = client.get_activity(req).await.expect_err("out of scope");
        assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    }
    let sorted = |mut ids: Vec<String>| {
        ids.sort();
        ids
    };

    // An agent: their own only; naming anyone else is refused.
    let mut as_ann = reports_as(&app, &ann_token);
    assert_eq!(
        users_in(&mut as_ann, everyone.clone()).await,
        vec![ann.user_id.clone()]
    );
    denied(&mut as_ann, only(&[&bob.user_id], &[])).await;
    denied(&mut as_ann, only(&[], &[&support])).await;

    // A supervisor: their team's members and themselves.
    let mut as_sue = reports_as(&app, &sue_token);
    let support_people = sorted(vec![ann.user_id.clone(), sue.user_id.clone()]);
    assert_eq!(
        users_in(&mut as_sue, everyone.clone()).await,
        support_people
    );
    assert_eq!(
        users_in(&mut as_sue, only(&[], &[&support])).await,
        support_people
    );
    denied(&mut as_sue, only(&[&bob.user_id], &[])).await;
    denied(&mut as_sue, only(&[], &[&sales])).await;

    // A viewer: the org, narrowed to a team when asked.
    let mut as_viewer = reports_as(&app, &viewer_token);
    let org = users_in(&mut as_viewer, everyone.clone()).await;
    assert_eq!(org.len(), 5, "admin, ann, bob, sue, vic: {org:?}");
    assert_eq!(
        users_in(&mut as_viewer, only(&[], &[&sales])).await,
        vec![bob.user_id.clone()]
    );
}

#[tokio::test]
async fn pages_follow_each_other_without_gaps_or_repeats() {
    let app = spawn_app().await;
    for name in ["a", "b", "c"] {
        member(&app, &format!("{name}@example.com"), &["agent"], &[]).await;
    }
    let end = Utc::now();
    let start = end - TimeDelta::hours(5);
    let mut reports = reports_as(&app, &app.admin_token);
    let whole = reports
        .get_activity(request(&[], start, end, Granularity::Hour))
        .await
        .unwrap()
        .into_inner();
    assert!(whole.next_page_token.is_empty());
    assert!(whole.rows.len() >= 4, "at least one row per user");
    let mut small = request(&[], start, end, Granularity::Hour);
    small.page_size = 1;
    let paged = all_rows(&mut reports, small.clone()).await;
    assert_eq!(paged, whole.rows);

    // A token belongs to its request.
    let first = reports
        .get_activity(small.clone())
        .await
        .unwrap()
        .into_inner();
    let mut changed = request(&[], start - TimeDelta::hours(1), end, Granularity::Hour);
    changed.page_token = first.next_page_token;
    let err = reports.get_activity(changed).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(reason(&err), "INVALID_PAGE_TOKEN");
}

#[tokio::test]
async fn bad_requests_name_their_field_and_reason() {
    let app = spawn_app_with(|c| c.presence_retention_secs = 3 * 86_400).await;
    let mut reports = reports_as(&app, &app.admin_token);
    let now = Utc::now();
    let hour = request(&[], now - TimeDelta::hours(1), now, Granularity::Hour);
    let expect = |err: Status, code: Code, why: &str, field: &str| {
        assert_eq!(err.code(), code, "{err:?}");
        assert_eq!(reason(&err), why, "{err:?}");
        assert_eq!(bad_fields(&err), vec![field.to_string()], "{err:?}");
    };

    let mut missing = hour.clone();
    missing.start_time = None;
    expect(
        reports.get_activity(missing).await.unwrap_err(),
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
        "start_time",
    );
    let reversed = request(&[], now, now - TimeDelta::hours(1), Granularity::Hour);
    expect(
        reports.get_activity(reversed).await.unwrap_err(),
        Code::InvalidArgument,
        "INVALID_TIME_RANGE",
        "end_time",
    );
    let too_long = request(
        &[],
        now - TimeDelta::days(2),
        now + TimeDelta::days(30),
        Granularity::Hour,
    );
    expect(
        reports.get_activity(too_long).await.unwrap_err(),
        Code::InvalidArgument,
        "RANGE_TOO_LONG",
        "end_time",
    );
    let too_old = request(&[], now - TimeDelta::days(4), now, Granularity::Day);
    expect(
        reports.get_activity(too_old).await.unwrap_err(),
        Code::InvalidArgument,
        "BEYOND_RETENTION",
        "start_time",
    );
    let mut granularity = hour.clone();
    granularity.granularity = 7;
    expect(
        reports.get_activity(granularity).await.unwrap_err(),
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
        "granularity",
    );
    let mut page = hour.clone();
    page.page_size = -1;
    expect(
        reports.get_activity(page).await.unwrap_err(),
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
        "page_size",
    );
    let mut bad_id = hour.clone();
    bad_id.user_ids = vec!["not-an-id".into()];
    expect(
        reports.get_activity(bad_id).await.unwrap_err(),
        Code::InvalidArgument,
        "INVALID_ID",
        "user_ids",
    );

    let unknown_user = request(
        &[&uuid::Uuid::now_v7().to_string()],
        now - TimeDelta::hours(1),
        now,
        Granularity::Hour,
    );
    let err = reports.get_activity(unknown_user).await.unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::NotFound, "USER_NOT_FOUND")
    );
    let mut unknown_team = hour.clone();
    unknown_team.team_ids = vec![uuid::Uuid::now_v7().to_string()];
    let err = reports.get_activity(unknown_team).await.unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::NotFound, "TEAM_NOT_FOUND")
    );
}
