//! `roster.v1.ReportService`: activity reports from the presence history.

use chrono::{DateTime, SecondsFormat, Utc};
use tonic::{Request, Response, Status};

use super::{
    caller,
    convert::{
        Violations, decode_cursor, encode_cursor, fingerprint, page_size_within, parse_ids,
        parse_time,
    },
    pb::{self, report_service_server::ReportService},
};
use crate::{
    domain::{ActivityRange, Granularity, TeamId, UserId},
    error::{Error, ParseError, Reason},
    presence::{ActivityPageKey, ActivityQuery, Presences},
};

/// Rows per page unless the request says otherwise, and at most.
const DEFAULT_PAGE: u64 = 1000;
const MAX_PAGE: u64 = 10_000;

pub struct ReportApi {
    presences: Presences,
}

impl ReportApi {
    pub fn new(presences: Presences) -> Self {
        Self { presences }
    }
}

#[tonic::async_trait]
impl ReportService for ReportApi {
    #[tracing::instrument(skip_all)]
    async fn get_activity(
        &self,
        req: Request<pb::GetActivityRequest>,
    ) -> Result<Response<pb::GetActivityResponse>, Status> {
        let (principal, _) = caller(&req)?;
        let pb::GetActivityRequest {
            user_ids,
            team_ids,
            start_time,
            end_time,
            granularity,
            page_size,
            page_token,
        } = req.into_inner();
        let mut v = Violations::default();
        let user_ids = parse_ids(&mut v, "user_ids", &user_ids, UserId::parse);
        let team_ids = parse_ids(&mut v, "team_ids", &team_ids, TeamId::parse);
        let start = v.check("start_time", required_time(start_time));
        let end = v.check("end_time", required_time(end_time));
        let granularity = v.check("granularity", parse_granularity(granularity));
        let size = v.check(
            "page_size",
            page_size_within(page_size, DEFAULT_PAGE, MAX_PAGE).map(|n| n as usize),
        );
        let range = match (start, end, granularity) {
            (Some(start), Some(end), Some(granularity)) => {
                v.check("end_time", ActivityRange::parse(start, end, granularity))
            }
            _ => None,
        };
        let (query, size) = v.finish(|| {
            Some((
                ActivityQuery {
                    user_ids: user_ids?,
                    team_ids: team_ids?,
                    range: range?,
                },
                size?,
            ))
        })?;
        let print = fingerprint(&query);
        let after = decode_cursor(&page_token, &print)
            .and_then(|cursor| cursor.map(page_key).transpose())
            .map_err(|e| Error::invalid(e.at("page_token")))?;
        let (rows, next) = self
            .presences
            .activity(&principal, &query, after, size)
            .await?;
        Ok(Response::new(pb::GetActivityResponse {
            rows: rows.iter().map(pb::ActivityRow::from).collect(),
            next_page_token: next
                .map(|key| {
                    let bucket = key.bucket_start.to_rfc3339_opts(SecondsFormat::Secs, true);
                    encode_cursor(&bucket, &key.user_id.to_string(), print)
                })
                .unwrap_or_default(),
        }))
    }
}

fn required_time(raw: Option<prost_types::Timestamp>) -> Result<DateTime<Utc>, ParseError> {
    parse_time(raw.ok_or_else(|| ParseError::new(Reason::InvalidArgument, "is required"))?)
}

fn parse_granularity(raw: i32) -> Result<Granularity, ParseError> {
    match pb::ActivityGranularity::try_from(raw) {
        Ok(pb::ActivityGranularity::Unspecified | pb::ActivityGranularity::Day) => {
            Ok(Granularity::Day)
        }
        Ok(pb::ActivityGranularity::Hour) => Ok(Granularity::Hour),
        Err(_) => Err(ParseError::new(
            Reason::InvalidArgument,
            "must be ACTIVITY_GRANULARITY_DAY or ACTIVITY_GRANULARITY_HOUR",
        )),
    }
}

fn page_key((bucket, user_id): (String, String)) -> Result<ActivityPageKey, ParseError> {
    let invalid = || {
        ParseError::new(
            Reason::InvalidPageToken,
            "is not a token this listing issued",
        )
    };
    Ok(ActivityPageKey {
        user_id: UserId::parse(&user_id).map_err(|_| invalid())?,
        bucket_start: DateTime::parse_from_rfc3339(&bucket)
            .map_err(|_| invalid())?
            .with_timezone(&Utc),
    })
}
