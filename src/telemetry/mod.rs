//! Logs to stderr (text or JSON) and, when configured, traces and metrics:
//! over OTLP/gRPC to a collector (`OTEL_EXPORTER_OTLP_ENDPOINT`) and as a
//! Prometheus scrape endpoint (`ROSTER_METRICS_LISTEN`).
//!
//! Contract:
//! - Each RPC is a server span ([`rpc_span`]) that continues the caller's
//!   W3C trace (`traceparent`); database statements and password hashing
//!   are its children. Only spans are exported, never log events, since log
//!   lines may carry what traces must not (emails, invitation links): span
//!   fields are ids, names and codes, never tokens, passwords or emails.
//! - Exporting never slows an RPC: spans go through a bounded queue (full
//!   means dropped) to the batch exporter's thread, metrics are aggregated in
//!   memory and exported from the reader's thread, and every export is
//!   bounded by a connect timeout and a request timeout.
//! - With traces on, JSON log lines carry the `trace_id` and `span_id` of
//!   the span they were logged in, so logs and traces join.
//! - The guard flushes and shuts the exporters down when dropped (each at
//!   most 5 s).

mod prometheus;
mod rpc;

use std::{fmt, io::IsTerminal, time::Duration};

use opentelemetry::{
    global,
    trace::{TraceContextExt as _, TracerProvider as _},
};
use opentelemetry_otlp::WithTonicConfig;
use opentelemetry_sdk::{
    Resource,
    metrics::{PeriodicReader, SdkMeterProvider},
    propagation::TraceContextPropagator,
    trace::SdkTracerProvider,
};
use tracing::{Event, Subscriber};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{
    EnvFilter, Layer,
    filter::{DynFilterFn, FilterExt, filter_fn},
    fmt::{FmtContext, FormatEvent, FormatFields, format::Writer},
    layer::SubscriberExt,
    registry::LookupSpan,
    util::SubscriberInitExt,
};

pub use rpc::{RpcLayer, rpc_span};

use crate::config::{Config, LogFormat};

/// The longest an exporter may take to connect to the collector: without
/// it, a collector that drops packets holds each export for the kernel's
/// SYN retries (minutes).
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Flushes and shuts down the exporters when dropped.
#[must_use = "telemetry stops when the guard is dropped"]
pub struct TelemetryGuard {
    tracer: Option<SdkTracerProvider>,
    meter: Option<SdkMeterProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        // Nothing sensible to do with a failed flush while exiting but say so.
        if let Some(tracer) = self.tracer.take()
            && let Err(err) = tracer.shutdown()
        {
            eprintln!("trace export shutdown: {err}");
        }
        if let Some(meter) = self.meter.take()
            && let Err(err) = meter.shutdown()
        {
            eprintln!("metric export shutdown: {err}");
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid log filter: {0}")]
    Filter(#[from] tracing_subscriber::filter::ParseError),
    #[error("OTLP exporter: {0}")]
    Exporter(String),
    #[error("cannot serve metrics on {addr}: {source}")]
    MetricsListen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("a global subscriber is already set: {0}")]
    Init(#[from] tracing_subscriber::util::TryInitError),
    #[error("metrics endpoint TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
}

/// Installs the global subscriber, tracer and meter providers, and starts
/// the Prometheus endpoint when configured. Call once, from `main`, inside
/// the tokio runtime (the exporters and the endpoint run on it).
pub fn init(config: &Config) -> Result<TelemetryGuard, TelemetryError> {
    global::set_text_map_propagator(TraceContextPropagator::new());
    let filter = EnvFilter::builder().parse(&config.log_level)?;
    let resource = Resource::builder().with_service_name("roster").build();
    let channel = config
        .otlp_endpoint
        .as_deref()
        .map(|endpoint| otlp_channel(endpoint, config.otlp_timeout()))
        .transpose()?;

    let tracer = channel
        .clone()
        .map(|channel| -> Result<_, TelemetryError> {
            let spans = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_channel(channel)
                .build()
                .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
            // The batch processor's queue is bounded (OTEL_BSP_MAX_QUEUE_SIZE,
            // 2048): when the collector cannot keep up, spans are dropped.
            Ok(SdkTracerProvider::builder()
                .with_resource(resource.clone())
                .with_batch_exporter(spans)
                .build())
        })
        .transpose()?;

    let prometheus = config
        .metrics_listen
        .map(|_| prometheus::PrometheusReader::default());
    let meter = if channel.is_some() || prometheus.is_some() {
        let mut builder = SdkMeterProvider::builder().with_resource(resource);
        if let Some(channel) = channel {
            let exporter = opentelemetry_otlp::MetricExporter::builder()
                .with_tonic()
                .with_channel(channel)
                .build()
                .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
            builder = builder.with_reader(
                PeriodicReader::builder(exporter)
                    .with_interval(config.metric_export_interval())
                    .build(),
            );
        }
        if let Some(reader) = &prometheus {
            builder = builder.with_reader(reader.clone());
        }
        let meter = builder.build();
        global::set_meter_provider(meter.clone());
        Some(meter)
    } else {
        None
    };
    if let (Some(addr), Some(reader)) = (config.metrics_listen, prometheus) {
        let tls = config
            .tls_files()
            .map(|files| crate::tls::Tls::load(&files, crate::tls::Alpn::Http1))
            .transpose()?;
        prometheus::serve(addr, reader, tls)?;
    }

    let traced = tracer.is_some();
    let fmt = match config.log_format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            // Colour only for a person at a terminal, never into files.
            .with_ansi(std::io::stderr().is_terminal())
            .boxed(),
        LogFormat::Json if traced => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .map_event_format(WithTraceIds)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let otel = tracer.as_ref().map(|tracer| {
        tracing_opentelemetry::layer()
            .with_tracer(tracer.tracer("roster"))
            .with_filter(exported_spans())
    });
    // Database statements are spans for traces only: kept by the log layer
    // too, each would cost a formatted copy of its SQL, export or not.
    let no_statement_spans =
        || filter_fn(|meta| !(meta.is_span() && meta.target().starts_with("sea_orm")));
    match otel {
        Some(otel) => tracing_subscriber::registry()
            .with(fmt.with_filter(filter.and(no_statement_spans())))
            .with(otel)
            .try_init()?,
        // Without an exporter the log's filters are the only ones, and
        // global: what they drop is never recorded. (Not `.with(otel)` on a
        // `None`: that layer declares interest in every callsite, so every
        // dropped span would still be made and kept in the registry.)
        None => tracing_subscriber::registry()
            .with(fmt)
            .with(filter)
            .with(no_statement_spans())
            .try_init()?,
    }
    if let Some(addr) = config.metrics_listen {
        let scheme = if config.tls_files().is_some() {
            "https"
        } else {
            "http"
        };
        tracing::info!(%addr, "serving Prometheus metrics at {scheme}://{addr}/metrics");
    }
    Ok(TelemetryGuard { tracer, meter })
}

/// Which spans become OpenTelemetry spans: Roster's own at INFO and above,
/// and the database's (sea-orm's) only inside one of those, so background
/// polling does not make a trace per statement. No events: see the module
/// contract.
fn exported_spans<S>() -> DynFilterFn<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    DynFilterFn::new(|meta, cx| {
        if !meta.is_span() || *meta.level() > tracing::Level::INFO {
            return false;
        }
        let target = meta.target();
        target.starts_with("roster")
            || (target.starts_with("sea_orm") && cx.lookup_current().is_some())
    })
}

/// One lazily connected channel for both exporters, bounded twice: the
/// connect timeout covers the TCP and HTTP/2 handshake, which the request
/// timeout does not (tonic connects before the request timer starts).
fn otlp_channel(
    endpoint: &str,
    timeout: Duration,
) -> Result<tonic::transport::Channel, TelemetryError> {
    Ok(tonic::transport::Endpoint::from_shared(endpoint.to_owned())
        .map_err(|e| TelemetryError::Exporter(format!("endpoint {endpoint:?}: {e}")))?
        .connect_timeout(MAX_CONNECT_TIMEOUT.min(timeout))
        .timeout(timeout)
        .connect_lazy())
}

/// The JSON log format with the OpenTelemetry ids of the current span first:
/// `{"trace_id":"…","span_id":"…",…}`. Lines logged outside any span are
/// left as they are.
struct WithTraceIds<F>(F);

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // Read through the span itself rather than the formatter's context,
        // which hides spans the log filter leaves out (an RPC's span, when
        // logging at WARN).
        let context = tracing::Span::current().context();
        let span = context.span();
        let ids = span.span_context();
        if !ids.is_valid() {
            return self.0.format_event(ctx, writer, event);
        }
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        let rest = line.strip_prefix('{').ok_or(fmt::Error)?;
        write!(
            writer,
            "{{\"trace_id\":\"{}\",\"span_id\":\"{}\",{rest}",
            ids.trace_id(),
            ids.span_id()
        )
    }
}
