//! The Prometheus scrape endpoint: `GET /metrics` in the text exposition
//! format (0.0.4), collected from the meter provider at each scrape.
//!
//! Names are rendered as the OpenTelemetry Collector's `prometheus`
//! exporter renders them, so a dashboard works on either: dots become
//! underscores, the unit is appended (`ms` → `_milliseconds`, `s` →
//! `_seconds`, `By` → `_bytes`; `{…}` annotations add nothing), and
//! monotonic counters end in `_total`. A histogram gives `_bucket` (with
//! cumulative `le` buckets), `_sum` and `_count`.

use std::{
    fmt::{Display, Write as _},
    net::SocketAddr,
    sync::{Arc, Weak},
    time::Duration,
};

use http_body_util::Full;
use hyper::{body::Bytes, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use opentelemetry::KeyValue;
use opentelemetry_sdk::{
    error::OTelSdkResult,
    metrics::{
        InstrumentKind, ManualReader, Pipeline, Temporality,
        data::{AggregatedMetrics, Metric, MetricData, ResourceMetrics},
        reader::MetricReader,
    },
};

use tokio_stream::StreamExt;

use super::TelemetryError;
use crate::tls::Tls;

/// A reader collected on demand; shared by the meter provider and the
/// endpoint (the SDK's `ManualReader` cannot be cloned).
#[derive(Clone, Debug, Default)]
pub struct PrometheusReader(Arc<ManualReader>);

impl MetricReader for PrometheusReader {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.0.register_pipeline(pipeline);
    }
    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.0.collect(rm)
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }
    /// Prometheus counters are cumulative.
    fn temporality(&self, _: InstrumentKind) -> Temporality {
        Temporality::Cumulative
    }
}

impl PrometheusReader {
    /// Every metric as of now, in the text format.
    pub fn render(&self) -> Result<String, String> {
        let mut rm = ResourceMetrics::default();
        self.0.collect(&mut rm).map_err(|e| e.to_string())?;
        let mut out = String::new();
        for scope in rm.scope_metrics() {
            for metric in scope.metrics() {
                match metric.data() {
                    AggregatedMetrics::U64(data) => family(&mut out, metric, data),
                    AggregatedMetrics::I64(data) => family(&mut out, metric, data),
                    AggregatedMetrics::F64(data) => family(&mut out, metric, data),
                }
            }
        }
        Ok(out)
    }
}

/// Binds `addr` now (so a taken port fails start-up) and serves scrapes on
/// the tokio runtime until the process ends; over TLS with `tls` (the gRPC
/// listener's files, so mutual TLS and rotation apply here too).
pub(super) fn serve(
    addr: SocketAddr,
    reader: PrometheusReader,
    tls: Option<Tls>,
) -> Result<(), TelemetryError> {
    let bind_error = |source| TelemetryError::MetricsListen { addr, source };
    let listener = std::net::TcpListener::bind(addr).map_err(bind_error)?;
    listener.set_nonblocking(true).map_err(bind_error)?;
    let listener = tokio::net::TcpListener::from_std(listener).map_err(bind_error)?;
    match tls {
        Some(tls) => {
            tls.spawn_reloader();
            let mut incoming = tls.incoming(listener);
            tokio::spawn(async move {
                while let Some(stream) = incoming.next().await {
                    if let Ok(stream) = stream {
                        tokio::spawn(answer_scrapes(stream, reader.clone()));
                    }
                }
            });
        }
        None => {
            tokio::spawn(async move {
                loop {
                    match listener.accept().await {
                        Ok((stream, _)) => {
                            tokio::spawn(answer_scrapes(stream, reader.clone()));
                        }
                        Err(err) => {
                            tracing::warn!(%err, "metrics endpoint cannot accept");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
            });
        }
    }
    Ok(())
}

/// Serves one connection's scrapes.
async fn answer_scrapes(
    stream: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    reader: PrometheusReader,
) {
    let answer = service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let reader = reader.clone();
        async move { Ok::<_, std::convert::Infallible>(respond(req.uri().path(), &reader)) }
    });
    // A scraper that hangs up early is no concern of ours.
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), answer)
        .await;
}

fn respond(path: &str, reader: &PrometheusReader) -> http::Response<Full<Bytes>> {
    let (status, content_type, body) = match path {
        "/metrics" => match reader.render() {
            Ok(text) => (200, "text/plain; version=0.0.4; charset=utf-8", text),
            Err(err) => (500, "text/plain; charset=utf-8", err),
        },
        _ => (
            404,
            "text/plain; charset=utf-8",
            "not found: try /metrics\n".into(),
        ),
    };
    let mut response = http::Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or_default();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    response
}

/// One metric family: its HELP and TYPE lines, then its samples.
fn family<T: Copy + Display>(out: &mut String, metric: &Metric, data: &MetricData<T>) {
    let base = format!("{}{}", sanitize(metric.name()), unit_suffix(metric.unit()));
    let help = metric
        .description()
        .replace('\\', r"\\")
        .replace('\n', r"\n");
    let mut header = |name: &str, kind: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    match data {
        MetricData::Sum(sum) => {
            let (name, kind) = if sum.is_monotonic() {
                (format!("{base}_total"), "counter")
            } else {
                (base, "gauge")
            };
            header(&name, kind);
            for point in sum.data_points() {
                sample(out, &name, point.attributes(), None, point.value());
            }
        }
        MetricData::Gauge(gauge) => {
            header(&base, "gauge");
            for point in gauge.data_points() {
                sample(out, &base, point.attributes(), None, point.value());
            }
        }
        MetricData::Histogram(histogram) => {
            header(&base, "histogram");
            let bucket = format!("{base}_bucket");
            for point in histogram.data_points() {
                // The SDK counts per bucket; Prometheus's buckets are cumulative.
                let mut cumulative = 0u64;
                for (bound, n) in point.bounds().zip(point.bucket_counts()) {
                    cumulative += n;
                    let le = bound.to_string();
                    sample(out, &bucket, point.attributes(), Some(&le), cumulative);
                }
                sample(
                    out,
                    &bucket,
                    point.attributes(),
                    Some("+Inf"),
                    point.count(),
                );
                sample(
                    out,
                    &format!("{base}_sum"),
                    point.attributes(),
                    None,
                    point.sum(),
                );
                sample(
                    out,
                    &format!("{base}_count"),
                    point.attributes(),
                    None,
                    point.count(),
                );
            }
        }
        // Only produced when a view asks for it, and none does.
        MetricData::ExponentialHistogram(_) => {}
    }
}

fn sample<'a>(
    out: &mut String,
    name: &str,
    attributes: impl Iterator<Item = &'a KeyValue>,
    le: Option<&str>,
    value: impl Display,
) {
    out.push_str(name);
    let mut labels: Vec<String> = attributes
        .map(|kv| {
            format!(
                "{}=\"{}\"",
                sanitize(kv.key.as_str()),
                escape(&kv.value.as_str())
            )
        })
        .collect();
    if let Some(le) = le {
        labels.push(format!("le=\"{le}\""));
    }
    if !labels.is_empty() {
        let _ = write!(out, "{{{}}}", labels.join(","));
    }
    let _ = writeln!(out, " {value}");
}

/// The unit as the collector's exporter appends it.
fn unit_suffix(unit: &str) -> &'static str {
    match unit {
        "ms" => "_milliseconds",
        "s" => "_seconds",
        "By" => "_bytes",
        _ => "",
    }
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn escape(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

#[cfg(test)]
mod tests {
    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry_sdk::metrics::SdkMeterProvider;

    use super::*;

    #[test]
    fn renders_counters_gauges_and_histograms_as_the_collector_names_them() {
        let reader = PrometheusReader::default();
        let provider = SdkMeterProvider::builder()
            .with_reader(reader.clone())
            .build();
        let meter = provider.meter("roster");
        let logins = meter
            .u64_counter("roster.auth.logins")
            .with_unit("{login}")
            .build();
        logins.add(2, &[KeyValue::new("outcome", "wrong \"pass\"")]);
        let streams = meter
            .i64_up_down_counter("roster.presence.watch.streams")
            .build();
        streams.add(3, &[]);
        let duration = meter
            .f64_histogram("rpc.server.duration")
            .with_unit("ms")
            .with_boundaries(vec![1.0, 10.0])
            .build();
        for ms in [0.5, 5.0, 50.0] {
            duration.record(ms, &[KeyValue::new("rpc.grpc.status_code", 0)]);
        }

        let text = reader.render().unwrap();
        for line in [
            "# TYPE roster_auth_logins_total counter",
            r#"roster_auth_logins_total{outcome="wrong \"pass\""} 2"#,
            "# TYPE roster_presence_watch_streams gauge",
            "roster_presence_watch_streams 3",
            "# TYPE rpc_server_duration_milliseconds histogram",
            r#"rpc_server_duration_milliseconds_bucket{rpc_grpc_status_code="0",le="1"} 1"#,
            r#"rpc_server_duration_milliseconds_bucket{rpc_grpc_status_code="0",le="10"} 2"#,
            r#"rpc_server_duration_milliseconds_bucket{rpc_grpc_status_code="0",le="+Inf"} 3"#,
            r#"rpc_server_duration_milliseconds_sum{rpc_grpc_status_code="0"} 55.5"#,
            r#"rpc_server_duration_milliseconds_count{rpc_grpc_status_code="0"} 3"#,
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "no line {line:?} in:\n{text}"
            );
        }
    }
}
