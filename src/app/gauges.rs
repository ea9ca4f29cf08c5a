//! The gauges read at each collection from what the composition root owns:
//! the hub (presence of the orgs this replica has loaded) and the store's
//! connection pool. Here rather than in `metrics`, which stays a leaf that
//! the use cases call.

use std::collections::HashMap;

use opentelemetry::{KeyValue, global, metrics::AsyncInstrument};

use crate::{domain::PresenceStatus, metrics::SCOPE, presence::Hub, store::Store};

/// Registers the gauges read from `hub` (presence of the orgs it has loaded)
/// and `store` (the connection pool). Call once per process, for the server
/// it runs; the callbacks run at each collection, on the exporter's thread
/// or a scrape, and only read memory.
pub(super) fn observe(hub: &Hub, store: &Store) {
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
