//! The server's bound on how long an RPC may take to answer. Unlike a
//! blanket timeout it spares the uploads that stream a whole file before
//! answering (ImportUsers), whose time grows with the file; their clients
//! set a `grpc-timeout` if they want one, which tonic honours for every RPC.

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use http::{Request, Response};
use tonic::{Status, body::Body};
use tower::{Layer, Service};

use crate::error::Error;

/// RPCs whose answer comes only after an upload of any size.
const UNBOUNDED: [&str; 1] = ["/roster.v1.UserService/ImportUsers"];

#[derive(Clone)]
pub struct DeadlineLayer {
    timeout: Duration,
}

impl DeadlineLayer {
    pub fn new(timeout: Duration) -> Self {
        Self { timeout }
    }
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Deadline {
            inner,
            timeout: self.timeout,
        }
    }
}

#[derive(Clone)]
pub struct Deadline<S> {
    inner: S,
    timeout: Duration,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> Service<Request<B>> for Deadline<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let bounded = !UNBOUNDED.contains(&req.uri().path());
        let timeout = self.timeout;
        let answer = self.inner.call(req);
        Box::pin(async move {
            if !bounded {
                return answer.await;
            }
            match tokio::time::timeout(timeout, answer).await {
                Ok(result) => result,
                Err(_) => Ok(Status::from(Error::DeadlineExceeded(format!(
                    "the server's limit of {}s per request passed",
                    timeout.as_secs()
                )))
                .into_http()),
            }
        })
    }
}
