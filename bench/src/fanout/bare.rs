//! The fan-out ceiling (`roster-bench serve bare-broadcast`): a bare tonic
//! server with Roster's WatchPresence route and codec. Each
//! `ReportChatLoad` numbers a change, encodes it once from a real Roster
//! event and broadcasts the bytes (`tokio::sync::broadcast`, Roster's
//! buffer size) to every open stream. No database, no authentication, no
//! filters, no per-stream task.

use std::{
    convert::Infallible,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
    task::{Context, Poll},
};

use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use futures_util::{Stream, StreamExt};
use prost::Message;
use roster::api::{PassThrough, WATCH_PATH, pb};
use tokio::sync::broadcast;
use tokio_stream::wrappers::{BroadcastStream, errors::BroadcastStreamRecvError};
use tonic::{
    Request, Response, Status,
    body::Body,
    codegen::{BoxFuture, Bytes, Service, http},
    server::{Grpc, NamedService, ServerStreamingService},
};

use super::EventTemplate;
use crate::BenchError;

/// The env variable that hands the server the Roster event it imitates.
pub const TEMPLATE_ENV: &str = "ROSTER_BENCH_WATCH_EVENT";
/// Events a stream may fall behind, as Roster's default watch buffer.
const BUFFER: usize = 1024;

pub async fn serve() -> Result<(), BenchError> {
    let template = std::env::var(TEMPLATE_ENV)
        .ok()
        .and_then(|text| BASE64.decode(text).ok())
        .map(|bytes| pb::WatchPresenceResponse::decode(bytes.as_slice()))
        .transpose()?
        .ok_or_else(|| BenchError::msg(format!("{TEMPLATE_ENV} is not set")))?;
    let hub = Arc::new(Hub {
        template: EventTemplate::new(template),
        state: Mutex::new(HubState {
            sequence: 0,
            sender: broadcast::channel(BUFFER).0,
        }),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    crate::child::announce(listener.local_addr()?);
    tonic::transport::Server::builder()
        .add_service(BroadcastServer {
            generated: pb::presence_service_server::PresenceServiceServer::from_arc(hub.clone()),
            hub,
        })
        .serve_with_incoming(crate::child::incoming(listener))
        .await?;
    Ok(())
}

struct Hub {
    template: EventTemplate,
    state: Mutex<HubState>,
}

struct HubState {
    sequence: u64,
    sender: broadcast::Sender<Bytes>,
}

#[tonic::async_trait]
impl pb::presence_service_server::PresenceService for Hub {
    async fn report_chat_load(
        &self,
        req: Request<pb::ReportChatLoadRequest>,
    ) -> Result<Response<pb::ReportChatLoadResponse>, Status> {
        let pb::ReportChatLoadRequest {
            user_id,
            active_chats,
        } = req.into_inner();
        // Numbered and sent under one lock, so streams see sequence order.
        {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.sequence += 1;
            let event = self.template.encode(state.sequence, &user_id, active_chats);
            // No receivers is fine: nobody watches.
            let _ = state.sender.send(Bytes::from(event));
        }
        let mut presence = self.template.presence();
        presence.user_id = user_id;
        presence.active_chats = active_chats;
        Ok(Response::new(pb::ReportChatLoadResponse {
            presence: Some(presence),
        }))
    }
}

/// Roster's presence service shape: WatchPresence on its own route with
/// the pass-through codec, the generated server for the rest.
#[derive(Clone)]
struct BroadcastServer {
    generated: pb::presence_service_server::PresenceServiceServer<Hub>,
    hub: Arc<Hub>,
}

impl NamedService for BroadcastServer {
    const NAME: &'static str = "roster.v1.PresenceService";
}

impl Service<http::Request<Body>> for BroadcastServer {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        if req.uri().path() == WATCH_PATH {
            let watch = Watch(self.hub.clone());
            Box::pin(async move { Ok(Grpc::new(PassThrough).server_streaming(watch, req).await) })
        } else {
            self.generated.call(req)
        }
    }
}

#[derive(Clone)]
struct Watch(Arc<Hub>);

type EventStream = Pin<Box<dyn Stream<Item = Result<Bytes, Status>> + Send>>;

impl ServerStreamingService<pb::WatchPresenceRequest> for Watch {
    type Response = Bytes;
    type ResponseStream = EventStream;
    type Future = BoxFuture<Response<EventStream>, Status>;

    /// SNAPSHOT_END at the current sequence (no users: the snapshot is
    /// not what is measured), then every change.
    fn call(&mut self, _: Request<pb::WatchPresenceRequest>) -> Self::Future {
        let (receiver, sequence) = {
            let state = self.0.state.lock().unwrap_or_else(PoisonError::into_inner);
            (state.sender.subscribe(), state.sequence)
        };
        let end = pb::WatchPresenceResponse {
            sequence,
            kind: pb::PresenceEventKind::SnapshotEnd.into(),
            ..Default::default()
        };
        let changes = BroadcastStream::new(receiver).map(|item| {
            item.map_err(|BroadcastStreamRecvError::Lagged(missed)| {
                Status::resource_exhausted(format!("fell {missed} events behind"))
            })
        });
        let stream =
            futures_util::stream::iter([Ok(Bytes::from(end.encode_to_vec()))]).chain(changes);
        Box::pin(async move { Ok(Response::new(Box::pin(stream) as EventStream)) })
    }
}
