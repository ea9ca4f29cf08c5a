//! The results table: one row per scenario and store, Roster next to its
//! ceiling, printed as Markdown so it can go into BENCHMARKS.md as it is.

use std::time::Duration;

use crate::database::StoreKind;

/// How fast something went: a rate, and latencies when it was a load of
/// requests.
#[derive(Clone, Debug, Default)]
pub struct Measure {
    pub rate: f64,
    pub latency: Option<Latency>,
    /// The server's CPU use (cores) and peak RSS, when it was a child.
    pub server: Option<ServerUse>,
    /// For a fan-out: the changes per second the deliveries came from.
    pub changes: Option<f64>,
    /// The load generator's own CPU use (cores), when measured.
    pub client_cores: Option<f64>,
    /// Why the load could not be measured, when it failed.
    pub failure: Option<String>,
}

impl Measure {
    pub fn failed(why: impl std::fmt::Display) -> Self {
        Self {
            failure: Some(why.to_string()),
            ..Self::default()
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Latency {
    pub p50: Duration,
    pub p99: Duration,
    pub p999: Duration,
}

#[derive(Clone, Copy, Debug)]
pub struct ServerUse {
    pub cores: f64,
    pub peak_rss_bytes: u64,
}

/// What a scenario aims at, checked against its outcome.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    /// At least this rate.
    Rate(f64),
    /// At least this share of the ceiling's rate.
    Ratio(f64),
    /// A p99 latency under this.
    P99(Duration),
    /// A p99 latency at most this many times the ceiling's.
    P99Within(f64),
    /// A p99 latency under the peer's.
    P99AheadOfPeer,
    /// A peak RSS under this many bytes.
    PeakRss(u64),
}

pub struct Outcome {
    pub scenario: String,
    pub store: StoreKind,
    /// Unit of the rates, e.g. `rows/s`.
    pub unit: &'static str,
    pub roster: Measure,
    /// The ceiling's name and measure.
    pub ceiling: Option<(&'static str, Measure)>,
    /// What a user would otherwise pick for the same job, measured the same
    /// way (shown beside the ceiling).
    pub peer: Option<(&'static str, Measure)>,
    /// Every one must be met.
    pub targets: Vec<Target>,
}

impl Outcome {
    fn ratio(&self) -> Option<f64> {
        self.ceiling
            .as_ref()
            .map(|(_, ceiling)| self.roster.rate / ceiling.rate)
    }

    /// Whether a target holds Roster's latency against another's, which the
    /// table then shows.
    fn compares_latency(&self) -> bool {
        self.targets
            .iter()
            .any(|t| matches!(t, Target::P99Within(_) | Target::P99AheadOfPeer))
    }

    fn target_text(&self) -> String {
        if self.targets.is_empty() {
            return "-".into();
        }
        let peer = self.peer.as_ref().map_or("the peer", |(name, _)| *name);
        let texts: Vec<String> = self
            .targets
            .iter()
            .map(|target| match *target {
                Target::Rate(rate) => format!("≥ {} {}", thousands(rate), self.unit),
                Target::Ratio(ratio) => format!("≥ {:.0}% of ceiling", ratio * 100.0),
                Target::P99(p99) => format!("p99 < {}", ms(p99)),
                Target::P99Within(times) => format!("p99 ≤ {times}× ceiling's"),
                Target::P99AheadOfPeer => format!("p99 < {peer}'s"),
                Target::PeakRss(bytes) => format!("peak RSS < {:.0} MB", bytes as f64 / 1e6),
            })
            .collect();
        texts.join(", ")
    }

    fn met(&self) -> Option<bool> {
        if self.targets.is_empty() {
            return None;
        }
        if self.roster.failure.is_some() {
            return Some(false);
        }
        let p99 = |m: &Measure| m.latency.map(|l| l.p99);
        let mut all = true;
        for target in &self.targets {
            let met = match *target {
                Target::Rate(rate) => Some(self.roster.rate >= rate),
                Target::Ratio(ratio) => self.ratio().map(|r| r >= ratio),
                Target::P99(limit) => p99(&self.roster).map(|p| p < limit),
                Target::P99Within(times) => {
                    let ceiling = self.ceiling.as_ref().and_then(|(_, c)| p99(c));
                    p99(&self.roster)
                        .zip(ceiling)
                        .map(|(p, c)| p.as_secs_f64() <= c.as_secs_f64() * times)
                }
                Target::P99AheadOfPeer => {
                    let peer = self.peer.as_ref().and_then(|(_, c)| p99(c));
                    p99(&self.roster).zip(peer).map(|(p, c)| p < c)
                }
                Target::PeakRss(bytes) => self.roster.server.map(|s| s.peak_rss_bytes < bytes),
            };
            all &= met?;
        }
        Some(all)
    }
}

/// Prints the machine the figures come from.
pub fn print_machine() {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or_else(
            || "?".into(),
            |kib| format!("{:.0} GiB", kib as f64 / 1048576.0),
        );
    println!("machine: {cores} cores, {memory}, {cpu}");
    println!();
}

pub fn print(outcomes: &[Outcome]) {
    println!(
        "| scenario | store | Roster | p50 / p99 / p99.9 | server CPU, peak RSS | ceiling | ratio | target | met |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for o in outcomes {
        let against = |(name, m): &(&str, Measure)| {
            let p99 = m
                .latency
                .filter(|_| o.compares_latency())
                .map_or_else(String::new, |l| format!(", p99 {}", ms(l.p99)));
            format!("{name}: {}{p99}", rate_text(m, o.unit))
        };
        let ceiling = match (&o.ceiling, &o.peer) {
            (None, None) => "-".to_owned(),
            (Some(c), None) => against(c),
            (None, Some(p)) => against(p),
            (Some(c), Some(p)) => format!("{}; {}", against(c), against(p)),
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            o.scenario,
            o.store,
            rate_text(&o.roster, o.unit),
            o.roster.latency.map_or_else(|| "-".into(), latency_text),
            o.roster.server.map_or_else(|| "-".into(), server_text),
            ceiling,
            o.ratio()
                .map_or_else(|| "-".into(), |r| format!("{:.0}%", r * 100.0)),
            o.target_text(),
            match o.met() {
                None => "-",
                Some(true) => "yes",
                Some(false) => "**no**",
            },
        );
    }
}

fn rate_text(m: &Measure, unit: &str) -> String {
    if let Some(failure) = &m.failure {
        return format!("failed: {failure}");
    }
    match m.changes {
        Some(changes) => format!(
            "{} {unit} ({} changes/s)",
            thousands(m.rate),
            thousands(changes)
        ),
        None => format!("{} {unit}", thousands(m.rate)),
    }
}

fn latency_text(l: Latency) -> String {
    format!("{} / {} / {}", ms(l.p50), ms(l.p99), ms(l.p999))
}

fn server_text(s: ServerUse) -> String {
    format!(
        "{:.2} cores, {:.0} MB",
        s.cores,
        s.peak_rss_bytes as f64 / 1e6
    )
}

pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// `12345.6` → `12,346`.
pub fn thousands(n: f64) -> String {
    let digits = format!("{:.0}", n.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1234567.8), "1,234,568");
    }
}
