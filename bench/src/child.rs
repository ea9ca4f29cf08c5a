//! Servers under measurement run as child processes of this same binary
//! (`roster-bench serve …`), so their CPU time and memory are read from
//! `/proc` apart from the load generator's.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::{BenchError, report::ServerUse};

/// The server kinds `roster-bench serve` runs.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ServerKind {
    /// rosterd itself: `roster::app::App`, configured from the environment.
    Roster,
    /// The unary ceiling: a bare tonic server answering from memory.
    Bare,
    /// The fan-out ceiling: a bare tonic server broadcasting pre-encoded
    /// WatchPresence events to every open stream.
    BareBroadcast,
}

/// What a child prints first on stdout: `listening <addr>`.
const READY: &str = "listening ";

/// A running server child; killed when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
}

impl Server {
    /// Starts `roster-bench serve <kind>` with `env` and waits until it
    /// listens.
    pub async fn start(kind: ServerKind, env: &[(&str, String)]) -> Result<Self, BenchError> {
        let kind_arg = match kind {
            ServerKind::Roster => "roster",
            ServerKind::Bare => "bare",
            ServerKind::BareBroadcast => "bare-broadcast",
        };
        let mut child = Command::new(std::env::current_exe()?)
            .args(["serve", kind_arg])
            .env("ROSTER_LISTEN", "127.0.0.1:0")
            .env(
                "ROSTER_LOG_LEVEL",
                std::env::var("ROSTER_BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| BenchError::msg("the server has no stdout"))?;
        let first = tokio::task::spawn_blocking(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let read = reader.read_line(&mut line);
            // Keep draining so the child never blocks on a full pipe.
            std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
            read.map(|_| line)
        });
        let mut server = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let line = tokio::time::timeout(Duration::from_secs(120), first)
            .await
            .map_err(|_| BenchError::msg("the server did not start within 120 s"))?
            .map_err(BenchError::msg)??;
        let addr = line
            .trim()
            .strip_prefix(READY)
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| BenchError::msg(format!("the server did not start: {line:?}")))?;
        server.addr = addr;
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts measuring the server's CPU and peak memory from now.
    pub fn measure(&self) -> Result<UsageWindow, BenchError> {
        UsageWindow::start(self.pid())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A process's CPU seconds (user + system, all threads) and memory.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    pub cpu_secs: f64,
    pub rss_bytes: u64,
    pub peak_rss_bytes: u64,
}

/// Linux reports CPU time in ticks of USER_HZ, which is 100 on every
/// architecture Linux supports today.
const TICKS_PER_SEC: f64 = 100.0;

impl Usage {
    pub fn of(pid: u32) -> Result<Self, BenchError> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        // Fields after the command name, which may hold spaces and ')'.
        let rest = stat
            .rsplit_once(')')
            .map(|(_, r)| r)
            .ok_or_else(|| BenchError::msg("unreadable /proc stat"))?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of stat; `rest` starts at 3.
        let ticks = |i: usize| -> Result<f64, BenchError> {
            fields
                .get(i - 3)
                .and_then(|f| f.parse::<f64>().ok())
                .ok_or_else(|| BenchError::msg("unreadable /proc stat"))
        };
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .unwrap_or(0)
                * 1024
        };
        Ok(Self {
            cpu_secs: (ticks(14)? + ticks(15)?) / TICKS_PER_SEC,
            rss_bytes: kib("VmRSS:"),
            peak_rss_bytes: kib("VmHWM:"),
        })
    }
}

/// A process's CPU use and peak memory from a starting point: a child
/// server, or a server this program did not start (Redis).
pub struct UsageWindow {
    pid: u32,
    before: Usage,
    started: Instant,
}

impl UsageWindow {
    /// Starts a new peak-memory window (the kernel's VmHWM restarts from the
    /// current RSS) and notes the CPU time so far.
    pub fn start(pid: u32) -> Result<Self, BenchError> {
        std::fs::write(format!("/proc/{pid}/clear_refs"), "5")?;
        Ok(Self {
            pid,
            before: Usage::of(pid)?,
            started: Instant::now(),
        })
    }

    /// Cores used on average since the start, and the peak RSS.
    pub fn finish(&self) -> Result<ServerUse, BenchError> {
        let elapsed = self.started.elapsed().as_secs_f64();
        let after = Usage::of(self.pid)?;
        Ok(ServerUse {
            cores: (after.cpu_secs - self.before.cpu_secs) / elapsed,
            peak_rss_bytes: after.peak_rss_bytes,
        })
    }

    /// The memory now.
    pub fn now(&self) -> Result<Usage, BenchError> {
        Usage::of(self.pid)
    }
}

/// Prints where the server listens, for [`Server::start`].
pub fn announce(addr: SocketAddr) {
    println!("{READY}{addr}");
}

/// A bare server's accepted connections, with Nagle's algorithm off as
/// Roster's are (the builder's `tcp_nodelay` does not reach a listener
/// handed to it).
pub fn incoming(listener: tokio::net::TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true))
}
