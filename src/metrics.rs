//! Roster's metric instruments, in one place: what each measures is listed
//! in docs/telemetry.md, and those names are a contract with dashboards.
//!
//! The instruments are process-wide, built on first use from the global
//! meter provider, which [`crate::telemetry::init`] installs before anything
//! records; with no provider (no exporter configured, and in-process tests)
//! they are no-ops. Process-wide rather than a handle passed down because
//! they are recorded deep in auth, users and presence, whose constructors
//! would otherwise all grow a parameter, and a process has one meter
//! provider anyway. Recording is an in-memory aggregation; exporting happens
//! elsewhere (the reader's thread, or a scrape), so it never blocks a caller.
//!
//! Gauges of state (presence, the connection pool) are observed only when
//! collected, from the hub's memory and the pool's counters, by callbacks
//! that [`observe`] registers for the provider's lifetime.

use std::{collections::HashMap, sync::OnceLock, time::Duration};

use opentelemetry::{
    KeyValue, global,
    metrics::{AsyncInstrument, Counter, Histogram, Meter, UpDownCounter},
};

use crate::{
    domain::PresenceStatus,
    presence::{Hub, WatchItem},
    store::Store,
};

/// The meter (instrumentation scope) every Roster instrument belongs to.
const SCOPE: &str = "roster";

/// Bounds of `rpc.server.duration`, in milliseconds.
const DURATION_BOUNDS_MS: [f64; 14] = [
    1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10_000.0,
    30_000.0,
];

pub struct Metrics {
    rpc_duration: Histogram<f64>,
    watch_streams: UpDownCounter<i64>,
    watch_events: Counter<u64>,
    watch_resyncs: Counter<u64>,
    logins: Counter<u64>,
    lockouts: Counter<u64>,
    import_rows: Counter<u64>,
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// The instruments.
pub fn get() -> &'static Metrics {
    METRICS.get_or_init(|| Metrics::new(&global::meter(SCOPE)))
}

impl Metrics {
    fn new(meter: &Meter) -> Self {
        Self {
            rpc_duration: meter
                .f64_histogram("rpc.server.duration")
                .with_unit("ms")
                .with_description(
                    "Duration of RPCs handled, until the response head (a stream's opening)",
                )
                .with_boundaries(DURATION_BOUNDS_MS.to_vec())
                .build(),
            watch_streams: meter
                .i64_up_down_counter("roster.presence.watch.streams")
                .with_unit("{stream}")
                .with_description("Open WatchPresence streams")
                .build(),
            watch_events: meter
                .u64_counter("roster.presence.watch.events")
                .with_unit("{event}")
                .with_description("Presence items queued to WatchPresence streams, by kind")
                .build(),
            watch_resyncs: meter
                .u64_counter("roster.presence.watch.resyncs")
                .with_unit("{resync}")
                .with_description("WatchPresence streams reset to a fresh snapshot")
                .build(),
            logins: meter
                .u64_counter("roster.auth.logins")
                .with_unit("{login}")
                .with_description("Sign-in attempts, by outcome")
                .build(),
            lockouts: meter
                .u64_counter("roster.auth.lockouts")
                .with_unit("{lockout}")
                .with_description("Accounts locked by failed sign-ins")
                .build(),
            import_rows: meter
                .u64_counter("roster.import.rows")
                .with_unit("{row}")
                .with_description("CSV import rows, by outcome (dry runs not counted)")
                .build(),
        }
    }

    /// One RPC, `code` being its gRPC status code.
    pub fn rpc(&self, service: &str, method: &str, code: i32, elapsed: Duration) {
        self.rpc_duration.record(
            elapsed.as_secs_f64() * 1e3,
            &[
                KeyValue::new("rpc.system", "grpc"),
                KeyValue::new("rpc.service", service.to_owned()),
                KeyValue::new("rpc.method", method.to_owned()),
                KeyValue::new("rpc.grpc.status_code", i64::from(code)),
            ],
        );
    }

    /// Counts a WatchPresence stream as open until the guard drops.
    pub fn watch_opened(&'static self) -> OpenStream {
        self.watch_streams.add(1, &[]);
        OpenStream(self)
    }

    /// An item about to be sent on a WatchPresence stream.
    pub fn watch_item(&self, item: &WatchItem) {
        match item {
            WatchItem::Change { .. } => {
                self.watch_events.add(1, &[KeyValue::new("kind", "change")])
            }
            WatchItem::Snapshot { .. } => self
                .watch_events
                .add(1, &[KeyValue::new("kind", "snapshot")]),
            WatchItem::Reset { .. } => self.watch_resyncs.add(1, &[]),
            WatchItem::SnapshotEnd { .. } => {}
        }
    }

    /// A sign-in attempt: `success`, or why it was refused (`wrong password`,
    /// `unknown login`, …, as the audit log words it).
    pub fn login(&self, outcome: &str) {
        self.logins
            .add(1, &[KeyValue::new("outcome", outcome.replace(' ', "_"))]);
    }

    /// An account just locked by failed sign-ins.
    pub fn lockout(&self) {
        self.lockouts.add(1, &[]);
    }

    /// Rows of an import batch that committed.
    pub fn import_rows(&self, imported: u64, rejected: u64) {
        self.import_rows
            .add(imported, &[KeyValue::new("outcome", "imported")]);
        self.import_rows
            .add(rejected, &[KeyValue::new("outcome", "rejected")]);
    }
}

/// An open WatchPresence stream; dropping it closes the count.
pub struct OpenStream(&'static Metrics);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.watch_streams.add(-1, &[]);
    }
}

/// Registers the gauges read from `hub` (presence of the orgs it has loaded)
/// and `store` (the connection pool). Call once per process, for the server
/// it runs; the callbacks run at each collection, on the exporter's thread
/// or a scrape, and only read memory.
pub fn observe(hub: &Hub, store: &Store) {
    let meter = global::meter(SCOPE);
    let by_status = hub.clone();
    meter
        .u64_observable_gauge("roster.presence.agents")
        .with_unit("{agent}")
        .with_description("Active agents by org and presence status (orgs loaded by this replica)")
        .with_callback(move |gauge| {
            let mut counts: HashMap<(String, PresenceStatus), u64> = HashMap::new();
            by_status.visit_loaded(|org_id, presence| {
                if presence.can_handle_chats {
                    *counts
                        .entry((org_id.to_string(), presence.status))
                        .or_default() += 1;
                }
            });
            observe_by_status(gauge, "roster.org_id", counts);
        })
        .build();
    let by_team = hub.clone();
    meter
        .u64_observable_gauge("roster.presence.team_agents")
        .with_unit("{agent}")
        .with_description("Active agents by team and presence status (orgs loaded by this replica)")
        .with_callback(move |gauge| {
            let mut counts: HashMap<(String, PresenceStatus), u64> = HashMap::new();
            by_team.visit_loaded(|_, presence| {
                if presence.can_handle_chats {
                    for team_id in &presence.team_ids {
                        *counts
                            .entry((team_id.to_string(), presence.status))
                            .or_default() += 1;
                    }
                }
            });
            observe_by_status(gauge, "roster.team_id", counts);
        })
        .build();
    let with_capacity = hub.clone();
    meter
        .u64_observable_gauge("roster.presence.agents_with_capacity")
        .with_unit("{agent}")
        .with_description(
            "Agents a router may send a new chat now, by org (orgs loaded by this replica)",
        )
        .with_callback(move |gauge| {
            let mut counts: HashMap<String, u64> = HashMap::new();
            with_capacity.visit_loaded(|org_id, presence| {
                // Every loaded org appears, with 0 when nobody has room.
                let n = counts.entry(org_id.to_string()).or_default();
                if presence.has_capacity() {
                    *n += 1;
                }
            });
            for (org_id, n) in counts {
                gauge.observe(n, &[KeyValue::new("roster.org_id", org_id)]);
            }
        })
        .build();
    let pool = store.clone();
    meter
        .u64_observable_gauge("db.client.connection.count")
        .with_unit("{connection}")
        .with_description("Database connections open, by state")
        .with_callback(move |gauge| {
            let usage = pool.pool_usage();
            let state = |s: &'static str| [KeyValue::new("db.client.connection.state", s)];
            gauge.observe(u64::from(usage.idle), &state("idle"));
            gauge.observe(
                u64::from(usage.open.saturating_sub(usage.idle)),
                &state("used"),
            );
        })
        .build();
    let pool = store.clone();
    meter
        .u64_observable_gauge("db.client.connection.max")
        .with_unit("{connection}")
        .with_description("Most database connections the pool opens")
        .with_callback(move |gauge| gauge.observe(u64::from(pool.pool_usage().max), &[]))
        .build();
}

/// One point per (key, status) count.
fn observe_by_status(
    gauge: &dyn AsyncInstrument<u64>,
    key: &'static str,
    counts: HashMap<(String, PresenceStatus), u64>,
) {
    for ((id, status), n) in counts {
        gauge.observe(
            n,
            &[
                KeyValue::new(key, id),
                KeyValue::new("status", status.as_str()),
            ],
        );
    }
}
