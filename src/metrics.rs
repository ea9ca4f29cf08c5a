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

use std::{sync::OnceLock, time::Duration};

use opentelemetry::{
    KeyValue, global,
    metrics::{Counter, Histogram, Meter, UpDownCounter},
};

use crate::named::named_enum;

/// The meter (instrumentation scope) every Roster instrument belongs to.
pub const SCOPE: &str = "roster";

/// Bounds of `rpc.server.duration`, in milliseconds.
const DURATION_BOUNDS_MS: [f64; 14] = [
    1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10_000.0,
    30_000.0,
];

/// Bounds of `roster.presence.delivery.duration`, in milliseconds.
const DELIVERY_BOUNDS_MS: [f64; 14] = [
    0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10_000.0,
];

pub struct Metrics {
    rpc_duration: Histogram<f64>,
    delivery_duration: Histogram<f64>,
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
            delivery_duration: meter
                .f64_histogram("roster.presence.delivery.duration")
                .with_unit("ms")
                .with_description(
                    "From a presence change to its event queued on a WatchPresence stream",
                )
                .with_boundaries(DELIVERY_BOUNDS_MS.to_vec())
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

    /// A change or snapshot item about to be sent on a WatchPresence stream.
    pub fn watch_event(&self, kind: WatchEvent) {
        self.watch_events
            .add(1, &[KeyValue::new("kind", kind.as_str())]);
    }

    /// A change queued on a WatchPresence stream, `elapsed` after it was
    /// made.
    pub fn presence_delivered(&self, elapsed: Duration) {
        self.delivery_duration
            .record(elapsed.as_secs_f64() * 1e3, &[]);
    }

    /// A WatchPresence stream resynchronised (a RESET and a fresh snapshot).
    pub fn watch_resync(&self) {
        self.watch_resyncs.add(1, &[]);
    }

    /// A sign-in attempt and how it ended.
    pub fn login(&self, outcome: LoginOutcome) {
        self.logins
            .add(1, &[KeyValue::new("outcome", outcome.as_str())]);
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

named_enum! {
    /// What a WatchPresence stream sent, as `roster.presence.watch.events`
    /// counts it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum WatchEvent {
        Change => "change",
        Snapshot => "snapshot",
    }
}

named_enum! {
    /// How a sign-in ended: `roster.auth.logins`' `outcome` (the refusals as
    /// the audit log words them, with `_` for spaces).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum LoginOutcome {
        Success => "success",
        UnknownOrg => "unknown_org",
        UnknownLogin => "unknown_login",
        WrongPassword => "wrong_password",
        OrgSuspended => "org_suspended",
        AccountLocked => "account_locked",
        InvitationNotAccepted => "invitation_not_accepted",
        AccountSuspended => "account_suspended",
    }
}

/// An open WatchPresence stream; dropping it closes the count.
pub struct OpenStream(&'static Metrics);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.watch_streams.add(-1, &[]);
    }
}
