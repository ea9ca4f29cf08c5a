//! The span of each RPC, following the OpenTelemetry RPC conventions
//! (`rpc.system`, `rpc.service`, `rpc.method`, `rpc.grpc.status_code`),
//! and [`RpcLayer`], which records the status on it and the call's duration
//! in `rpc.server.duration`.

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Instant,
};

use opentelemetry::{global, propagation::Extractor};
use tonic::Code;
use tower::{BoxError, Layer, Service};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::metrics;

/// The span of one RPC, child of the caller's trace when it sent
/// `traceparent`. `rpc.grpc.status_code` is recorded by [`RpcLayer`], and
/// `roster.org_id`/`roster.user_id` by authentication once the caller is
/// known.
pub fn rpc_span(req: &http::Request<()>) -> Span {
    let (service, method) = service_and_method(req.uri().path());
    let span = tracing::info_span!(
        "rpc",
        otel.name = %req.uri().path().trim_start_matches('/'),
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = %service,
        rpc.method = %method,
        rpc.grpc.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        roster.org_id = tracing::field::Empty,
        roster.user_id = tracing::field::Empty,
        roster.request_id = tracing::field::Empty,
    );
    let parent = global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(req.headers())));
    // Fails only when no OpenTelemetry layer is installed: then there is nothing to link.
    let _ = span.set_parent(parent);
    span
}

fn service_and_method(path: &str) -> (&str, &str) {
    let path = path.trim_start_matches('/');
    path.split_once('/').unwrap_or((path, ""))
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// The outermost layer of the server: it sees every RPC's outcome,
/// including those refused by load shedding or authentication. It runs
/// inside the RPC's span (tonic enters it around every poll).
#[derive(Clone, Copy)]
pub struct RpcLayer {
    known: fn(&str) -> bool,
}

impl RpcLayer {
    /// `known` tells the paths of the server's RPCs; any other path is the
    /// caller's to choose, so the metric records it as service and method
    /// `_OTHER`, and callers cannot grow its series without end.
    pub fn new(known: fn(&str) -> bool) -> Self {
        Self { known }
    }
}

impl<S> Layer<S> for RpcLayer {
    type Service = RpcService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RpcService {
            inner,
            known: self.known,
        }
    }
}

#[derive(Clone)]
pub struct RpcService<S> {
    inner: S,
    known: fn(&str) -> bool,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, R> Service<http::Request<B>> for RpcService<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = http::Response<R>;
    type Error = BoxError;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let started = Instant::now();
        let path = req.uri().path().to_owned();
        let known = (self.known)(&path);
        let future = self.inner.call(req);
        Box::pin(async move {
            let result = future.await.map_err(Into::into);
            let code = match &result {
                // An error status comes trailers-only, in the head; without
                // one the call succeeded so far (a stream's final status
                // comes later, in its trailers).
                Ok(response) => tonic::Status::from_header_map(response.headers())
                    .map_or(Code::Ok, |s| s.code()),
                Err(err) => error_code(err),
            };
            let span = Span::current();
            span.record("rpc.grpc.status_code", i64::from(i32::from(code)));
            if is_server_error(code) {
                span.record("otel.status_code", "error");
            }
            let (service, method) = if known {
                service_and_method(&path)
            } else {
                ("_OTHER", "_OTHER")
            };
            metrics::get().rpc(service, method, i32::from(code), started.elapsed());
            result
        })
    }
}

/// The status tonic will answer a layer's error with (its `RecoverError`).
fn error_code(err: &BoxError) -> Code {
    if let Some(status) = err.downcast_ref::<tonic::Status>() {
        status.code()
    } else if err.is::<tower::load_shed::error::Overloaded>() {
        Code::ResourceExhausted
    } else {
        Code::Unknown
    }
}

/// The codes that mark a server span as failed, per the gRPC semantic
/// conventions; the others are the client's mistakes, not the server's.
fn is_server_error(code: Code) -> bool {
    matches!(
        code,
        Code::Unknown
            | Code::DeadlineExceeded
            | Code::Unimplemented
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
    )
}
