//! Traces, metrics and the Prometheus endpoint, observed from outside: a
//! `rosterd` process exports to an OTLP receiver in this test (telemetry is
//! process-wide, so it cannot point at one test's receiver in-process).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use opentelemetry_proto::tonic::{
    collector::{
        metrics::v1::{
            ExportMetricsServiceRequest, ExportMetricsServiceResponse,
            metrics_service_server::{MetricsService, MetricsServiceServer},
        },
        trace::v1::{
            ExportTraceServiceRequest, ExportTraceServiceResponse,
            trace_service_server::{TraceService, TraceServiceServer},
        },
    },
    common::v1::{AnyValue, KeyValue, any_value::Value},
    metrics::v1::{Metric, metric::Data, number_data_point},
    trace::v1::{Span, span::SpanKind},
};
use roster::api::pb::{
    self, PresenceEventKind as Kind, PresenceStatus as St,
    presence_service_client::PresenceServiceClient,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::{Request, Response, Status};

use crate::helpers::{
    ADMIN_EMAIL, ADMIN_PASSWORD, ORG, TestApp, USER_PASSWORD, create_request, spawn_rosterd,
};

/// The caller's trace, as a W3C `traceparent` (sampled).
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN_ID: &str = "00f067aa0ba902b7";

/// What a collector received.
#[derive(Clone, Default)]
struct Receiver {
    traces: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
    metrics: Arc<Mutex<Vec<ExportMetricsServiceRequest>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        lock(&self.traces).push(request.into_inner());
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Receiver {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        lock(&self.metrics).push(request.into_inner());
        Ok(Response::new(ExportMetricsServiceResponse::default()))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Receiver {
    /// A receiver on 127.0.0.1:0; returns it and its endpoint URL.
    async fn start() -> (Self, String) {
        let receiver = Self::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(receiver.clone()))
                .add_service(MetricsServiceServer::new(receiver.clone()))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        (receiver, endpoint)
    }

    fn spans(&self) -> Vec<Span> {
        lock(&self.traces)
            .iter()
            .flat_map(|r| &r.resource_spans)
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| s.spans.clone())
            .collect()
    }

    /// Every attribute of every span and resource received, and of every
    /// span event.
    fn span_attributes(&self) -> Vec<KeyValue> {
        let traces = lock(&self.traces);
        let mut all = Vec::new();
        for resource in traces.iter().flat_map(|r| &r.resource_spans) {
            all.extend(resource.resource.iter().flat_map(|r| r.attributes.clone()));
            for span in resource.scope_spans.iter().flat_map(|s| &s.spans) {
                all.extend(span.attributes.clone());
                all.extend(span.events.iter().flat_map(|e| e.attributes.clone()));
            }
        }
        all
    }

    /// The metrics of the latest export (they are cumulative).
    fn latest_metrics(&self) -> Vec<Metric> {
        lock(&self.metrics)
            .last()
            .into_iter()
            .flat_map(|r| &r.resource_metrics)
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| s.metrics.clone())
            .collect()
    }
}

/// A `rosterd` exporting to `endpoint` often, logging JSON at INFO.
async fn exporting_to(endpoint: &str) -> TestApp {
    spawn_rosterd(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.into()),
        ("OTEL_METRIC_EXPORT_INTERVAL", "200".into()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".into()),
        ("ROSTER_LOG_FORMAT", "json".into()),
        ("ROSTER_LOG_LEVEL", "info".into()),
    ])
    .await
}

fn traced<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-01")
            .parse()
            .expect("header value"),
    );
    request
}

fn text(value: &Option<AnyValue>) -> String {
    match value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

fn attributes(attrs: &[KeyValue]) -> HashMap<String, String> {
    attrs
        .iter()
        .map(|kv| (kv.key.clone(), text(&kv.value)))
        .collect()
}

/// Waits up to 30 s for `ready` to hold.
async fn eventually(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        assert!(Instant::now() < deadline, "{what} within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The first server span of `method` in the caller's trace.
fn rpc_span<'a>(spans: &'a [Span], method: &str) -> Option<&'a Span> {
    spans.iter().find(|s| {
        s.kind == SpanKind::Server as i32
            && s.trace_id == hex(TRACE_ID)
            && attributes(&s.attributes)
                .get("rpc.method")
                .map(String::as_str)
                == Some(method)
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn rpc_spans_join_the_callers_trace_with_ids_and_codes_and_no_secrets() {
    let (receiver, endpoint) = Receiver::start().await;
    let app = exporting_to(&endpoint).await;
    let admin = app
        .auth()
        .login(traced(pb::LoginRequest {
            org: ORG.into(),
            login: ADMIN_EMAIL.into(),
            password: ADMIN_PASSWORD.into(),
        }))
        .await
        .expect("login")
        .into_inner();
    let admin_id = admin.user.expect("user").user_id;
    app.users_as(&admin.session_token)
        .get_user(traced(pb::GetUserRequest {
            user_id: admin_id.clone(),
        }))
        .await
        .expect("get user");
    let missing = app
        .admin_users()
        .get_user(traced(pb::GetUserRequest {
            user_id: uuid::Uuid::now_v7().to_string(),
        }))
        .await
        .expect_err("no such user");
    assert_eq!(missing.code(), tonic::Code::NotFound);
    // Logs the invitation, link and all, with no SMTP server: the log may
    // say it, the trace must not.
    let invite = app
        .admin_users()
        .invite_user(traced(pb::InviteUserRequest {
            user: create_request("invitee@example.com", "Invitee", &["agent"]).user,
            request_id: String::new(),
        }))
        .await;
    invite.expect("invite");

    eventually("the spans of every call", || {
        let spans = receiver.spans();
        ["Login", "GetUser", "InviteUser"]
            .iter()
            .all(|m| rpc_span(&spans, m).is_some())
            && spans.iter().any(|s| {
                attributes(&s.attributes)
                    .get("rpc.grpc.status_code")
                    .map(String::as_str)
                    == Some("5")
            })
    })
    .await;
    let spans = receiver.spans();
    for method in ["Login", "GetUser", "InviteUser"] {
        let span = rpc_span(&spans, method)
            .unwrap_or_else(|| panic!("{method} has a server span in the caller's trace"));
        assert_eq!(
            span.parent_span_id,
            hex(PARENT_SPAN_ID),
            "{method}'s parent"
        );
    }

    let login = rpc_span(&spans, "Login").expect("login span");
    let attrs = attributes(&login.attributes);
    assert_eq!(attrs["rpc.system"], "grpc");
    assert_eq!(attrs["rpc.service"], "roster.v1.AuthService");
    assert_eq!(attrs["rpc.grpc.status_code"], "0");
    assert_eq!(login.name, "roster.v1.AuthService/Login");
    let below = descendants(&spans, login);
    assert!(below.contains(&"password.verify"), "{below:?}");
    assert!(
        below.iter().any(|n| n.starts_with("sea_orm.")),
        "database spans: {below:?}"
    );

    let get = spans
        .iter()
        .find(|s| {
            let a = attributes(&s.attributes);
            a.get("rpc.method").map(String::as_str) == Some("GetUser")
                && a.get("rpc.grpc.status_code").map(String::as_str) == Some("0")
        })
        .expect("a successful GetUser");
    let attrs = attributes(&get.attributes);
    assert_eq!(attrs["rpc.service"], "roster.v1.UserService");
    assert_eq!(attrs["roster.user_id"], admin_id);
    assert!(
        uuid::Uuid::parse_str(&attrs["roster.org_id"]).is_ok(),
        "org id {:?}",
        attrs["roster.org_id"]
    );

    let secrets = [
        ADMIN_PASSWORD,
        ADMIN_EMAIL,
        "invitee@example.com",
        admin.session_token.as_str(),
        app.admin_token.as_str(),
        "accept-invite",
    ];
    for kv in receiver.span_attributes() {
        let value = text(&kv.value);
        for secret in secrets {
            assert!(
                !value.contains(secret),
                "{} = {value:?} exports a secret",
                kv.key
            );
        }
    }

    // The log line of the invitation email carries the trace's id.
    let log = app.process_log();
    let invitation = log
        .lines()
        .find(|l| l.contains("invitee@example.com"))
        .unwrap_or_else(|| panic!("the invitation is logged: {log}"));
    let line: serde_json::Value = serde_json::from_str(invitation).expect("a JSON line");
    assert_eq!(line["trace_id"], TRACE_ID, "{invitation}");
    assert_eq!(
        line["span_id"].as_str().map(str::len),
        Some(16),
        "{invitation}"
    );
}

/// The names of the spans under `root`, at any depth.
fn descendants<'a>(spans: &'a [Span], root: &Span) -> Vec<&'a str> {
    let mut parents = vec![root.span_id.clone()];
    let mut names = Vec::new();
    while let Some(parent) = parents.pop() {
        for child in spans.iter().filter(|s| s.parent_span_id == parent) {
            names.push(child.name.as_str());
            parents.push(child.span_id.clone());
        }
    }
    names
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// The value of each data point of a gauge or sum, by attribute set
/// (`key=value` pairs, sorted, joined with `,`).
fn points(metric: &Metric) -> HashMap<String, f64> {
    let number = |p: &opentelemetry_proto::tonic::metrics::v1::NumberDataPoint| match p.value {
        Some(number_data_point::Value::AsInt(i)) => i as f64,
        Some(number_data_point::Value::AsDouble(d)) => d,
        None => f64::NAN,
    };
    let key = |attrs: &[KeyValue]| {
        let mut pairs: Vec<String> = attrs
            .iter()
            .map(|kv| format!("{}={}", kv.key, text(&kv.value)))
            .collect();
        pairs.sort();
        pairs.join(",")
    };
    match &metric.data {
        Some(Data::Sum(sum)) => sum
            .data_points
            .iter()
            .map(|p| (key(&p.attributes), number(p)))
            .collect(),
        Some(Data::Gauge(gauge)) => gauge
            .data_points
            .iter()
            .map(|p| (key(&p.attributes), number(p)))
            .collect(),
        Some(Data::Histogram(histogram)) => histogram
            .data_points
            .iter()
            .map(|p| (key(&p.attributes), p.count as f64))
            .collect(),
        _ => HashMap::new(),
    }
}

/// `metric`'s value at `attrs` in the latest export, if any.
fn value(receiver: &Receiver, metric: &str, attrs: &str) -> Option<f64> {
    receiver
        .latest_metrics()
        .iter()
        .find(|m| m.name == metric)
        .and_then(|m| points(m).get(attrs).copied())
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_arrive_with_their_names_and_the_values_of_known_activity() {
    let (receiver, endpoint) = Receiver::start().await;
    let app = exporting_to(&endpoint).await;
    // The admin signed in once already. An agent in a team signs in and
    // becomes available; someone else fails five times and is locked out.
    let team_id = app.create_team("Tier 1").await;
    let mut request = create_request("agent@example.com", "Agent", &["agent"]);
    if let Some(user) = request.user.as_mut() {
        user.team_ids = vec![team_id.clone()];
    }
    app.admin_users().create_user(request).await.expect("agent");
    app.create_user("victim@example.com", "Victim", &["agent"])
        .await;
    let agent_token = app
        .login("agent@example.com", USER_PASSWORD)
        .await
        .session_token;
    for _ in 0..5 {
        app.try_login("victim@example.com", "not the password")
            .await
            .expect_err("wrong password");
    }
    let mut presence = PresenceServiceClient::with_interceptor(app.channel.clone(), app.bearer());
    let mut watch = presence
        .watch_presence(pb::WatchPresenceRequest::default())
        .await
        .expect("watch")
        .into_inner();
    let mut snapshot = 0;
    loop {
        let event = watch.message().await.expect("event").expect("open");
        match event.kind() {
            Kind::Snapshot => snapshot += 1,
            Kind::SnapshotEnd => break,
            other => panic!("{other:?} before the snapshot's end"),
        }
    }
    PresenceServiceClient::with_interceptor(
        app.channel.clone(),
        roster::api::Bearer::new(&agent_token).expect("token"),
    )
    .set_availability(pb::SetAvailabilityRequest {
        user_id: String::new(),
        status: St::Available.into(),
    })
    .await
    .expect("available");
    let change = watch.message().await.expect("event").expect("open");
    assert_eq!(change.kind(), Kind::Change);
    let csv = "first_name,last_name,login_id,email\nAda,Lovelace,,ada@example.com\n\
               Alan,Turing,,alan@example.com\nBad,Row,,not-an-email\n";
    app.admin_users()
        .import_users(tokio_stream::iter(vec![
            pb::ImportUsersRequest {
                file_name: "people.csv".into(),
                ..Default::default()
            },
            pb::ImportUsersRequest {
                chunk: csv.as_bytes().to_vec(),
                ..Default::default()
            },
        ]))
        .await
        .expect("import");
    let org_id = app
        .sql_strings(&format!(
            "SELECT CAST(id AS TEXT) FROM orgs WHERE slug = '{ORG}'"
        ))
        .await
        .remove(0);

    let org = format!("roster.org_id={org_id}");
    let expected: Vec<(&str, String, f64)> = vec![
        ("roster.auth.logins", "outcome=success".into(), 2.0),
        ("roster.auth.logins", "outcome=wrong_password".into(), 5.0),
        ("roster.auth.lockouts", String::new(), 1.0),
        ("roster.presence.watch.streams", String::new(), 1.0),
        ("roster.presence.watch.events", "kind=snapshot".into(), f64::from(snapshot)),
        ("roster.presence.watch.events", "kind=change".into(), 1.0),
        // The one change, delivered on the one stream.
        ("roster.presence.delivery.duration", String::new(), 1.0),
        ("roster.presence.agents", format!("{org},status=available"), 1.0),
        // The victim is an agent who never signed in.
        ("roster.presence.agents", format!("{org},status=offline"), 1.0),
        ("roster.presence.agents_with_capacity", org.clone(), 1.0),
        (
            "roster.presence.team_agents",
            format!("roster.team_id={team_id},status=available"),
            1.0,
        ),
        ("roster.import.rows", "outcome=imported".into(), 2.0),
        ("roster.import.rows", "outcome=rejected".into(), 1.0),
        (
            "rpc.server.duration",
            "rpc.grpc.status_code=16,rpc.method=Login,rpc.service=roster.v1.AuthService,rpc.system=grpc"
                .into(),
            5.0,
        ),
        (
            "db.client.connection.max",
            String::new(),
            if app.database_url.starts_with("postgres") { 32.0 } else { 8.0 },
        ),
    ];
    let mismatches = || {
        expected
            .iter()
            .filter(|(name, attrs, want)| value(&receiver, name, attrs) != Some(*want))
            .map(|(name, attrs, want)| {
                format!(
                    "{name}{{{attrs}}}: {:?}, not {want}",
                    value(&receiver, name, attrs)
                )
            })
            .collect::<Vec<_>>()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !mismatches().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(mismatches(), Vec::<String>::new());
    let metrics = receiver.latest_metrics();
    let duration = metrics
        .iter()
        .find(|m| m.name == "rpc.server.duration")
        .expect("duration");
    assert_eq!(duration.unit, "ms");
    let used = value(
        &receiver,
        "db.client.connection.count",
        "db.client.connection.state=used",
    );
    let idle = value(
        &receiver,
        "db.client.connection.count",
        "db.client.connection.state=idle",
    );
    assert!(
        used.is_some() && idle.is_some(),
        "pool gauges {used:?} {idle:?}"
    );
    drop(watch);
}

/// `GET path` on `addr` over HTTP/1.0: (status line, body).
async fn http_get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: roster\r\n\r\n").as_bytes())
        .await
        .expect("request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("answer");
    let (head, body) = answer.split_once("\r\n\r\n").expect("head and body");
    (
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_prometheus_endpoint_serves_the_collectors_names() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let app = spawn_rosterd(&[("ROSTER_METRICS_LISTEN", addr.to_string())]).await;
    app.try_login(ADMIN_EMAIL, "not the password")
        .await
        .expect_err("wrong password");
    // A method of the caller's invention is counted, not named.
    let mut grpc = tonic::client::Grpc::new(app.channel.clone());
    grpc.ready().await.expect("ready");
    let unknown = grpc
        .unary::<(), (), _>(
            Request::new(()),
            http::uri::PathAndQuery::from_static("/roster.v1.Invented/Anything"),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .expect_err("no such method");
    assert_eq!(unknown.code(), tonic::Code::Unauthenticated);

    let (status, body) = http_get(addr, "/metrics").await;
    assert!(status.contains("200"), "{status}");
    for line in [
        "# TYPE roster_auth_logins_total counter",
        r#"roster_auth_logins_total{outcome="success"} 1"#,
        r#"roster_auth_logins_total{outcome="wrong_password"} 1"#,
        "# TYPE rpc_server_duration_milliseconds histogram",
        "# TYPE db_client_connection_count gauge",
    ] {
        assert!(body.lines().any(|l| l == line), "no {line:?} in:\n{body}");
    }
    assert!(
        body.lines()
            .any(|l| l.starts_with("rpc_server_duration_milliseconds_count{")
                && l.contains(r#"rpc_method="Login""#)
                && l.contains(r#"rpc_grpc_status_code="16""#)
                && l.ends_with(" 1")),
        "the failed login's duration:\n{body}"
    );
    assert!(
        body.lines()
            .any(|l| l.starts_with("rpc_server_duration_milliseconds_count{")
                && l.contains(r#"rpc_method="_OTHER""#)
                && l.contains(r#"rpc_service="_OTHER""#)
                && l.contains(r#"rpc_grpc_status_code="16""#)),
        "the unknown method's duration:\n{body}"
    );
    assert!(!body.contains("Invented"), "{body}");
    let (status, _) = http_get(addr, "/other").await;
    assert!(status.contains("404"), "{status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_collector_that_refuses_connections_slows_and_fails_no_rpc() {
    let refusing = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    };
    let app = spawn_rosterd(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{refusing}")),
        ("OTEL_METRIC_EXPORT_INTERVAL", "50".into()),
        ("OTEL_BSP_SCHEDULE_DELAY", "50".into()),
    ])
    .await;
    let mut users = app.admin_users();
    let admin_id = app
        .login(ADMIN_EMAIL, ADMIN_PASSWORD)
        .await
        .user
        .expect("user")
        .user_id;
    // Two seconds of calls: forty export attempts of each kind fail meanwhile.
    let mut slowest = Duration::ZERO;
    let mut calls = 0;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        let call = Instant::now();
        users
            .get_user(traced(pb::GetUserRequest {
                user_id: admin_id.clone(),
            }))
            .await
            .expect("the call succeeds whatever the exporter does");
        slowest = slowest.max(call.elapsed());
        calls += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(calls > 10, "{calls} calls");
    // A call waiting on an export would take the exporter's timeouts
    // (2 s to connect, 10 s per export).
    assert!(slowest < Duration::from_secs(1), "slowest call {slowest:?}");
}

/// The metric names of docs/telemetry.md's Prometheus column, a histogram
/// with its `_bucket`, `_sum` and `_count`.
fn documented_prometheus_names() -> Vec<String> {
    let doc = include_str!("../../docs/telemetry.md");
    let mut names = Vec::new();
    for row in doc.lines().filter(|l| l.starts_with("| `")) {
        let Some(prometheus) = row.trim_end_matches('|').rsplit('|').next() else {
            continue;
        };
        let cells: Vec<&str> = prometheus.split('`').skip(1).step_by(2).collect();
        if let Some(first) = cells.first() {
            names.push(first.to_string());
            if let Some(base) = first.strip_suffix("_bucket") {
                names.extend(["_sum", "_count"].map(|s| format!("{base}{s}")));
            }
        }
    }
    names
}

#[test]
fn the_dashboard_queries_only_documented_metrics() {
    let documented = documented_prometheus_names();
    assert!(
        documented.contains(&"roster_auth_logins_total".to_owned()),
        "{documented:?}"
    );
    let dashboard: serde_json::Value =
        serde_json::from_str(include_str!("../../deploy/grafana/dashboards/roster.json"))
            .expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.push(target["expr"].as_str().expect("expr").to_owned());
        }
    }
    for variable in dashboard["templating"]["list"]
        .as_array()
        .expect("variables")
    {
        exprs.push(
            variable["definition"]
                .as_str()
                .expect("definition")
                .to_owned(),
        );
    }
    assert!(exprs.len() > 10, "{exprs:?}");
    // Labels are the metrics' attributes, dots as underscores.
    let labels = [
        "rpc_service",
        "rpc_method",
        "rpc_grpc_status_code",
        "roster_org_id",
        "roster_team_id",
        "db_client_connection_state",
    ];
    let mut queried = 0;
    for expr in &exprs {
        for token in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')) {
            let metric_like = ["roster_", "rpc_", "db_"]
                .iter()
                .any(|p| token.starts_with(p));
            if metric_like && !labels.contains(&token) {
                queried += 1;
                assert!(
                    documented.iter().any(|d| d == token),
                    "{token} (in {expr}) is not a documented metric"
                );
            }
        }
    }
    assert!(queried >= exprs.len(), "every query names a metric");
}
