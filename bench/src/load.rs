//! A closed-loop load: a number of callers spread over several HTTP/2
//! connections, each making one call after another for a fixed time,
//! recording every call's latency.

use std::{
    future::Future,
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use tonic::transport::Channel;

use crate::{
    BenchError,
    child::Server,
    report::{Latency, Measure},
};

/// How a load is shaped.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub connections: usize,
    /// Calls in flight at any time, over all connections.
    pub in_flight: usize,
    pub duration: Duration,
}

/// Runs `call` (given a connection and the caller's number) from
/// `shape.in_flight` callers until `shape.duration` has passed; every call
/// must succeed. The server's CPU and memory are read when it is a child.
pub async fn drive<F, Fut>(server: &Server, shape: Shape, call: F) -> Result<Measure, BenchError>
where
    F: Fn(Channel, usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), BenchError>> + Send,
{
    let mut channels = Vec::with_capacity(shape.connections);
    for _ in 0..shape.connections.max(1) {
        channels.push(crate::client::connect(server).await?);
    }
    let usage = server.measure()?;
    let started = Instant::now();
    let deadline = started + shape.duration;
    let mut callers = Vec::with_capacity(shape.in_flight);
    for n in 0..shape.in_flight.max(1) {
        let channel = channels[n % channels.len()].clone();
        let call = call.clone();
        callers.push(tokio::spawn(async move {
            let mut histogram = histogram()?;
            while Instant::now() < deadline {
                let sent = Instant::now();
                call(channel.clone(), n).await?;
                histogram.record(micros(sent.elapsed()))?;
            }
            Ok::<_, BenchError>(histogram)
        }));
    }
    let mut all = histogram()?;
    for caller in callers {
        all.add(caller.await??)?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(Measure {
        rate: all.len() as f64 / elapsed,
        latency: Some(latency(&all)),
        server: Some(usage.finish()?),
        ..Measure::default()
    })
}

/// Latencies from 1 µs to 10 minutes, to three significant digits.
pub fn histogram() -> Result<Histogram<u64>, BenchError> {
    Ok(Histogram::new_with_bounds(1, 600_000_000, 3)?)
}

pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

pub fn latency(h: &Histogram<u64>) -> Latency {
    let at = |q: f64| Duration::from_micros(h.value_at_quantile(q));
    Latency {
        p50: at(0.50),
        p99: at(0.99),
        p999: at(0.999),
    }
}
