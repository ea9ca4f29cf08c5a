//! The results table: one row per scenario and store, Roster next to its
//! ceiling, printed as Markdown so it can go into BENCHMARKS.md as it is.

use std::time::Duration;

use crate::database::StoreKind;

/// How fast something went: a rate, and latencies when it was a load of
/// requests.
#[derive(Clone, Debug)]
pub struct Measure {
    pub rate: f64,
    pub latency: Option<Latency>,
    /// The server's CPU use (cores) and peak RSS, when it was a child.
    pub server: Option<ServerUse>,
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
}

pub struct Outcome {
    pub scenario: String,
    pub store: StoreKind,
    /// Unit of the rates, e.g. `rows/s`.
    pub unit: &'static str,
    pub roster: Measure,
    /// The ceiling's name and measure.
    pub ceiling: Option<(&'static str, Measure)>,
    pub target: Option<Target>,
}

impl Outcome {
    fn ratio(&self) -> Option<f64> {
        self.ceiling
            .as_ref()
            .map(|(_, ceiling)| self.roster.rate / ceiling.rate)
    }

    fn target_text(&self) -> String {
        match self.target {
            None => "-".into(),
            Some(Target::Rate(rate)) => format!("≥ {} {}", thousands(rate), self.unit),
            Some(Target::Ratio(ratio)) => format!("≥ {:.0}% of ceiling", ratio * 100.0),
            Some(Target::P99(p99)) => format!("p99 < {}", ms(p99)),
        }
    }

    fn met(&self) -> Option<bool> {
        match self.target? {
            Target::Rate(rate) => Some(self.roster.rate >= rate),
            Target::Ratio(ratio) => self.ratio().map(|r| r >= ratio),
            Target::P99(p99) => self.roster.latency.map(|l| l.p99 < p99),
        }
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
        let ceiling = o.ceiling.as_ref().map_or_else(
            || "-".to_owned(),
            |(name, m)| format!("{name}: {}", rate_text(m, o.unit)),
        );
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
    format!("{} {unit}", thousands(m.rate))
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
