//! `roster.v1.PresenceService`.
//!
//! `WatchPresence` does not go through the generated handler: it has a route
//! of its own ([`PresenceServer`]) whose codec writes each event's cached
//! encoding as it is, so an event is encoded once for all its watchers.

use std::{
    convert::Infallible,
    task::{Context, Poll},
    time::Duration,
};

use super::wire::RosterDecoder;
use bytes::{BufMut, Bytes};
use futures_util::stream::{self, BoxStream, StreamExt};
use prost::Message;
use tokio::sync::broadcast;
use tonic::{
    Request, Response, Status,
    body::Body,
    codec::{Codec, EncodeBuf, Encoder},
    server::{Grpc, NamedService, ServerStreamingService},
};

use super::{
    caller,
    convert::{
        Violations, decode_cursor, encode_cursor, fingerprint, page_size, parse_status, timestamp,
    },
    middleware::bearer_token,
    pb::{self, presence_service_server::PresenceService},
};
use crate::{
    auth::{Authenticator, Principal},
    domain::{OrgId, Permission, Presence, PresenceStatus, TeamId, UserId},
    error::{Error, ParseError, Reason},
    metrics::WatchEvent,
    presence::{PresenceQuery, Presences, WatchItem, Watcher},
};

/// The most chats one agent may be reported to have open.
const MAX_CHAT_LOAD: u32 = 10_000;
/// The most ids one GetPresence may name.
const MAX_GET: usize = 1000;
/// How often a watch re-checks the caller's credentials and access.
const REAUTH_INTERVAL: Duration = Duration::from_secs(10);
/// The route of `WatchPresence`, answered with [`PassThrough`].
pub const WATCH_PATH: &str = "/roster.v1.PresenceService/WatchPresence";

pub struct PresenceApi {
    presences: Presences,
}

impl PresenceApi {
    pub fn new(presences: Presences) -> Self {
        Self { presences }
    }
}

#[tonic::async_trait]
impl PresenceService for PresenceApi {
    #[tracing::instrument(skip_all, fields(user_id = %req.get_ref().user_id))]
    async fn set_availability(
        &self,
        req: Request<pb::SetAvailabilityRequest>,
    ) -> Result<Response<pb::SetAvailabilityResponse>, Status> {
        let (principal, origin) = caller(&req)?;
        let pb::SetAvailabilityRequest { user_id, status } = req.into_inner();
        let mut v = Violations::default();
        let user_id = v.check("user_id", optional_user_id(&user_id));
        let status = v.check(
            "status",
            match pb::PresenceStatus::try_from(status) {
                Ok(pb::PresenceStatus::Available) => Ok(PresenceStatus::Available),
                Ok(pb::PresenceStatus::Unavailable) => Ok(PresenceStatus::Unavailable),
                _ => Err(ParseError::new(
                    Reason::InvalidStatus,
                    "must be PRESENCE_STATUS_AVAILABLE or PRESENCE_STATUS_UNAVAILABLE",
                )),
            },
        );
        let (user_id, status) = v.finish(|| Some((user_id?, status?)))?;
        let presence = self
            .presences
            .set_availability(&principal, &origin, user_id, status)
            .await?;
        Ok(Response::new(pb::SetAvailabilityResponse {
            presence: Some((&presence).into()),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn heartbeat(
        &self,
        req: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        let (principal, _) = caller(&req)?;
        let beat = self.presences.heartbeat(&principal).await?;
        Ok(Response::new(pb::HeartbeatResponse {
            presence: Some((&beat.presence).into()),
            lease_expires_at: Some(timestamp(beat.lease_expires_at)),
            heartbeat_interval: prost_types::Duration::try_from(beat.interval).ok(),
        }))
    }

    #[tracing::instrument(skip_all, fields(user_id = %req.get_ref().user_id))]
    async fn report_chat_load(
        &self,
        req: Request<pb::ReportChatLoadRequest>,
    ) -> Result<Response<pb::ReportChatLoadResponse>, Status> {
        let (principal, _) = caller(&req)?;
        let pb::ReportChatLoadRequest {
            user_id,
            active_chats,
        } = req.into_inner();
        let mut v = Violations::default();
        let user_id = v.check("user_id", UserId::parse(&user_id));
        let active_chats = v.check(
            "active_chats",
            if active_chats <= MAX_CHAT_LOAD {
                Ok(active_chats)
            } else {
                Err(ParseError::new(
                    Reason::InvalidChatLoad,
                    format!("must be 0 to {MAX_CHAT_LOAD}"),
                ))
            },
        );
        let (user_id, active_chats) = v.finish(|| Some((user_id?, active_chats?)))?;
        let presence = self
            .presences
            .report_chat_load(&principal, user_id, active_chats)
            .await?;
        Ok(Response::new(pb::ReportChatLoadResponse {
            presence: Some((&presence).into()),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_presence(
        &self,
        req: Request<pb::GetPresenceRequest>,
    ) -> Result<Response<pb::GetPresenceResponse>, Status> {
        let (principal, _) = caller(&req)?;
        let ids = req.into_inner().user_ids;
        let mut v = Violations::default();
        if ids.is_empty() || ids.len() > MAX_GET {
            v.check::<()>(
                "user_ids",
                Err(ParseError::new(
                    Reason::InvalidArgument,
                    format!("name 1 to {MAX_GET} users"),
                )),
            );
        }
        let parsed: Vec<Option<UserId>> = ids
            .iter()
            .map(|id| v.check("user_ids", UserId::parse(id)))
            .collect();
        let ids = v.finish(|| parsed.into_iter().collect::<Option<Vec<_>>>())?;
        let presences = self.presences.get(&principal, &ids).await?;
        Ok(Response::new(pb::GetPresenceResponse {
            presences: presences.iter().map(Into::into).collect(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_presence(
        &self,
        req: Request<pb::ListPresenceRequest>,
    ) -> Result<Response<pb::ListPresenceResponse>, Status> {
        let (principal, _) = caller(&req)?;
        let pb::ListPresenceRequest {
            page_size: raw_page_size,
            page_token,
            team_ids,
            statuses,
        } = req.into_inner();
        let mut v = Violations::default();
        let size = v.check("page_size", page_size(raw_page_size));
        let query = parse_query(&mut v, &team_ids, &statuses);
        let (size, query) = v.finish(|| Some((size?, query?)))?;
        let print = fingerprint(&(&query.team_ids, &query.statuses));
        let after = decode_cursor(&page_token, &print)
            .and_then(|c| c.map(|(_, id)| UserId::parse(&id)).transpose())
            .map_err(|e| Error::invalid(e.at("page_token")))?;
        let (page, more) = self
            .presences
            .list(&principal, &query, after, size as usize)
            .await?;
        let next_page_token = match page.last() {
            Some(last) if more => encode_cursor("", &last.user_id.to_string(), print),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListPresenceResponse {
            presences: page.iter().map(Into::into).collect(),
            next_page_token,
        }))
    }
}

fn optional_user_id(raw: &str) -> Result<Option<UserId>, ParseError> {
    (!raw.trim().is_empty())
        .then(|| UserId::parse(raw))
        .transpose()
}

fn parse_query(v: &mut Violations, team_ids: &[String], statuses: &[i32]) -> Option<PresenceQuery> {
    let teams: Vec<Option<TeamId>> = team_ids
        .iter()
        .map(|t| v.check("team_ids", TeamId::parse(t)))
        .collect();
    let statuses: Vec<Option<PresenceStatus>> = statuses
        .iter()
        .map(|s| v.check("statuses", parse_status(*s)))
        .collect();
    let mut query = PresenceQuery {
        team_ids: teams.into_iter().collect::<Option<_>>()?,
        statuses: statuses.into_iter().collect::<Option<_>>()?,
    };
    query.team_ids.sort();
    query.team_ids.dedup();
    query.statuses.sort_by_key(|s| s.as_str());
    query.statuses.dedup();
    Some(query)
}

/// The wire form of a watch item; a change's is cached on the shared event.
fn encode(item: &WatchItem) -> Bytes {
    use pb::PresenceEventKind as Kind;
    let message = |sequence, kind: Kind, presence: Option<&Presence>, reason, time| {
        let message = pb::WatchPresenceResponse {
            sequence,
            kind: kind.into(),
            presence: presence.map(Into::into),
            reason: reason as i32,
            time,
        };
        Bytes::from(message.encode_to_vec())
    };
    let none = pb::PresenceChangeReason::Unspecified;
    match item {
        WatchItem::Reset { sequence } => message(*sequence, Kind::Reset, None, none, None),
        WatchItem::Snapshot {
            sequence,
            presence,
            taken_at,
        } => message(
            *sequence,
            Kind::Snapshot,
            Some(presence),
            none,
            Some(timestamp(*taken_at)),
        ),
        WatchItem::SnapshotEnd { sequence } => {
            message(*sequence, Kind::SnapshotEnd, None, none, None)
        }
        WatchItem::Change { event, removed } => {
            let (cache, kind) = if *removed {
                (&event.encoded_removal, Kind::Removed)
            } else {
                (&event.encoded_change, Kind::Change)
            };
            cache
                .get_or_init(|| {
                    let e = &event.event;
                    message(
                        e.sequence,
                        kind,
                        Some(&e.presence),
                        e.reason.into(),
                        Some(timestamp(e.occurred_at)),
                    )
                })
                .clone()
        }
    }
}

/// The presence service as served: the generated server for every RPC but
/// `WatchPresence`, which [`WatchService`] answers with pre-encoded events.
#[derive(Clone)]
pub struct PresenceServer {
    generated: pb::presence_service_server::PresenceServiceServer<PresenceApi>,
    watch: WatchService,
}

impl PresenceServer {
    pub fn new(presences: Presences, authenticator: Authenticator) -> Self {
        Self {
            generated: pb::presence_service_server::PresenceServiceServer::new(PresenceApi::new(
                presences.clone(),
            )),
            watch: WatchService {
                presences,
                authenticator,
            },
        }
    }
}

impl NamedService for PresenceServer {
    const NAME: &'static str = "roster.v1.PresenceService";
}

impl tower::Service<http::Request<Body>> for PresenceServer {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = tonic::codegen::BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        if req.uri().path() == WATCH_PATH {
            let watch = self.watch.clone();
            Box::pin(async move { Ok(Grpc::new(PassThrough).server_streaming(watch, req).await) })
        } else {
            self.generated.call(req)
        }
    }
}

#[derive(Clone)]
struct WatchService {
    presences: Presences,
    authenticator: Authenticator,
}

impl ServerStreamingService<pb::WatchPresenceRequest> for WatchService {
    type Response = Bytes;
    type ResponseStream = WatchStream;
    type Future = tonic::codegen::BoxFuture<Response<Self::ResponseStream>, Status>;

    fn call(&mut self, req: Request<pb::WatchPresenceRequest>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { this.watch(req).await })
    }
}

/// A watch's encoded items, pulled by the HTTP/2 stream itself as its flow
/// control allows: no task or queue per watch between the hub and the wire.
pub type WatchStream = BoxStream<'static, Result<Bytes, Status>>;

impl WatchService {
    #[tracing::instrument(skip_all, fields(resume_after = ?req.get_ref().resume_after))]
    async fn watch(
        self,
        req: Request<pb::WatchPresenceRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        let (principal, _) = caller(&req)?;
        let token = bearer_token(
            req.metadata()
                .get("authorization")
                .and_then(|v| v.to_str().ok()),
        )
        .map(str::to_owned);
        let pb::WatchPresenceRequest {
            team_ids,
            statuses,
            resume_after,
        } = req.into_inner();
        let mut v = Violations::default();
        let query = parse_query(&mut v, &team_ids, &statuses);
        let query = v.finish(|| query)?;
        let watcher = self
            .presences
            .watch(&principal, &query, resume_after)
            .await?;
        let mut reauth = tokio::time::interval_at(
            tokio::time::Instant::now() + REAUTH_INTERVAL,
            REAUTH_INTERVAL,
        );
        reauth.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let watch = Watch {
            watcher,
            reauth,
            org_changes: self.presences.org_changes(),
            authenticator: self.authenticator,
            token,
            principal,
            ended: false,
            _open: crate::metrics::get().watch_opened(),
        };
        Ok(Response::new(
            stream::unfold(watch, |mut watch| async move {
                let item = watch.next().await?;
                Some((item, watch))
            })
            .boxed(),
        ))
    }
}

/// One open watch: its place in the hub and what it re-checks the caller
/// with. Dropped when the client leaves, which unsubscribes it.
struct Watch {
    watcher: Watcher,
    reauth: tokio::time::Interval,
    org_changes: broadcast::Receiver<Option<OrgId>>,
    authenticator: Authenticator,
    token: Option<String>,
    principal: Principal,
    ended: bool,
    /// Counts the stream as open until it is dropped.
    _open: crate::metrics::OpenStream,
}

impl Watch {
    /// The next message; after an error, `None`: the watch ends, or the
    /// caller lost access.
    async fn next(&mut self) -> Option<Result<Bytes, Status>> {
        if self.ended {
            return None;
        }
        let message = loop {
            tokio::select! {
                item = self.watcher.next() => {
                    break item
                        .map(|item| {
                            let metrics = crate::metrics::get();
                            match &item {
                                WatchItem::Change { event, .. } => {
                                    metrics.watch_event(WatchEvent::Change);
                                    // Zero if the clocks of two replicas disagree.
                                    let elapsed = chrono::Utc::now() - event.event.occurred_at;
                                    metrics.presence_delivered(elapsed.to_std().unwrap_or_default());
                                }
                                WatchItem::Snapshot { .. } => {
                                    metrics.watch_event(WatchEvent::Snapshot)
                                }
                                WatchItem::Reset { .. } => metrics.watch_resync(),
                                WatchItem::SnapshotEnd { .. } => {}
                            }
                            encode(&item)
                        })
                        .map_err(Status::from);
                }
                // Periodically, and at once when the caller's org changes
                // (its settings, roles, teams or state) on any replica.
                () = recheck_due(&mut self.reauth, &mut self.org_changes, self.principal.org_id) => {
                    match still_allowed(&self.authenticator, self.token.as_deref(), &self.principal)
                        .await
                    {
                        Ok(()) => {}
                        // Nothing about the caller can change while the
                        // database is away: check again at the next tick.
                        Err(Error::Unavailable { .. }) => {}
                        Err(err) => break Err(Status::from(err)),
                    }
                }
            }
        };
        self.ended = message.is_err();
        Some(message)
    }
}

/// Returns at the next re-check tick, or as soon as the org changes (or
/// perhaps changed: announcements were missed).
async fn recheck_due(
    tick: &mut tokio::time::Interval,
    org_changes: &mut broadcast::Receiver<Option<OrgId>>,
    org_id: OrgId,
) {
    let org_changed = async {
        loop {
            match org_changes.recv().await {
                Ok(Some(id)) if id != org_id => continue,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => return,
                // Nobody can announce a change any more: ticks only.
                Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
            }
        }
    };
    tokio::select! {
        _ = tick.tick() => {}
        () = org_changed => {}
    }
}

/// Fails when the caller's org is no longer active, the token no longer
/// authenticates, or its presence access changed since the watch began.
async fn still_allowed(
    authenticator: &Authenticator,
    token: Option<&str>,
    principal: &Principal,
) -> Result<(), Error> {
    authenticator.org_in_service(principal.org_id).await?;
    let token = token.ok_or(Error::Unauthenticated(Reason::MissingCredentials))?;
    let now = authenticator.authenticate(token).await?;
    let access = |p: &Principal| {
        (
            p.permissions.contains(Permission::ReadPresence),
            p.permissions.contains(Permission::ReadTeamPresence),
            p.team_ids.clone(),
        )
    };
    if access(&now) == access(principal) {
        Ok(())
    } else {
        Err(Error::permission_denied(
            "your access to presence changed: watch again",
        ))
    }
}

/// Writes already-encoded messages as they are; decodes requests with prost.
/// Public so a benchmark's bare broadcast server serves the same wire path.
#[derive(Clone, Copy, Debug, Default)]
pub struct PassThrough;

impl Codec for PassThrough {
    type Encode = Bytes;
    type Decode = pb::WatchPresenceRequest;
    type Encoder = PassThrough;
    type Decoder = RosterDecoder<pb::WatchPresenceRequest>;

    fn encoder(&mut self) -> Self::Encoder {
        PassThrough
    }

    fn decoder(&mut self) -> Self::Decoder {
        RosterDecoder::default()
    }
}

impl Encoder for PassThrough {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}
