//! Activity reports: per user and per UTC day or hour, the time spent in
//! each presence status and the most chats open at once, computed from the
//! user's presence history.
//!
//! A user's history is the state they were in when the range began and the
//! changes after it, in sequence order. Time runs from the later of the
//! range's start and the user's creation to the earlier of its end and now:
//! a bucket outside that span has no row, and the three durations of a row
//! add up to the part of its bucket inside it.

use chrono::{DateTime, TimeDelta, Utc};

use super::{PresenceStatus, UserId};
use crate::error::{ParseError, Reason};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Granularity {
    Day,
    Hour,
}

impl Granularity {
    fn step(self) -> TimeDelta {
        match self {
            Granularity::Day => TimeDelta::days(1),
            Granularity::Hour => TimeDelta::hours(1),
        }
    }

    /// The longest range a report may span at this granularity.
    pub fn max_span(self) -> TimeDelta {
        match self {
            Granularity::Day => TimeDelta::days(366),
            Granularity::Hour => TimeDelta::days(31),
        }
    }

    /// The start of the UTC day or hour that holds `t`.
    pub fn bucket_of(self, t: DateTime<Utc>) -> DateTime<Utc> {
        let step = self.step().num_seconds();
        let seconds = t.timestamp() - t.timestamp().rem_euclid(step);
        DateTime::from_timestamp(seconds, 0).unwrap_or(t)
    }
}

/// A report's time range: `start` before `end`, within the granularity's
/// longest span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ActivityRange {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    granularity: Granularity,
}

impl ActivityRange {
    pub fn parse(
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        granularity: Granularity,
    ) -> Result<Self, ParseError> {
        if end <= start {
            return Err(ParseError::new(
                Reason::InvalidTimeRange,
                "must be after start_time",
            ));
        }
        if end - start > granularity.max_span() {
            return Err(ParseError::new(
                Reason::RangeTooLong,
                format!(
                    "the range may span at most {} days at this granularity",
                    granularity.max_span().num_days()
                ),
            ));
        }
        Ok(Self {
            start,
            end,
            granularity,
        })
    }

    pub fn start(&self) -> DateTime<Utc> {
        self.start
    }

    pub fn end(&self) -> DateTime<Utc> {
        self.end
    }

    pub fn granularity(&self) -> Granularity {
        self.granularity
    }
}

/// One user's presence history over a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    pub user_id: UserId,
    pub created_at: DateTime<Utc>,
    /// Status and open chats when the range began (or the user was created).
    pub initial: (PresenceStatus, u32),
    /// Each change in the range, in sequence order: when, and the state after.
    pub changes: Vec<(DateTime<Utc>, PresenceStatus, u32)>,
}

/// The activity of one user in one bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityRow {
    pub user_id: UserId,
    pub bucket_start: DateTime<Utc>,
    pub offline: TimeDelta,
    pub unavailable: TimeDelta,
    pub available: TimeDelta,
    pub peak_active_chats: u32,
}

impl ActivityRow {
    fn time_in(&mut self, status: PresenceStatus) -> &mut TimeDelta {
        match status {
            PresenceStatus::Offline => &mut self.offline,
            PresenceStatus::Unavailable => &mut self.unavailable,
            PresenceStatus::Available => &mut self.available,
        }
    }
}

/// The rows of one user's timeline, in bucket order, up to `now`.
pub fn activity(
    range: &ActivityRange,
    now: DateTime<Utc>,
    timeline: &Timeline,
) -> Vec<ActivityRow> {
    let from = range.start.max(timeline.created_at);
    let to = range.end.min(now);
    if from >= to {
        return Vec::new();
    }
    let granularity = range.granularity;
    let mut rows = Vec::new();
    let mut bucket = granularity.bucket_of(from);
    while bucket < to {
        rows.push(ActivityRow {
            user_id: timeline.user_id,
            bucket_start: bucket,
            offline: TimeDelta::zero(),
            unavailable: TimeDelta::zero(),
            available: TimeDelta::zero(),
            peak_active_chats: 0,
        });
        bucket += granularity.step();
    }
    let first_bucket = granularity.bucket_of(from);
    let last_index = rows.len() - 1;
    let index_of = |t: DateTime<Utc>| {
        let steps = (granularity.bucket_of(t) - first_bucket).num_seconds()
            / granularity.step().num_seconds();
        (steps.max(0) as usize).min(last_index)
    };
    // Each state holds from its start to the next change: its time goes to
    // every bucket it overlaps, its chat count to their peaks (a state that
    // held for no time at all still counts for the peak of its instant).
    let hold = |rows: &mut [ActivityRow], a: DateTime<Utc>, b: DateTime<Utc>, state| {
        let (status, chats): (PresenceStatus, u32) = state;
        let last = if b > a {
            index_of(b - TimeDelta::microseconds(1))
        } else {
            index_of(a)
        };
        for row in &mut rows[index_of(a)..=last] {
            let bucket_end = row.bucket_start + granularity.step();
            let overlap = b.min(bucket_end) - a.max(row.bucket_start);
            if overlap > TimeDelta::zero() {
                *row.time_in(status) += overlap;
            }
            row.peak_active_chats = row.peak_active_chats.max(chats);
        }
    };
    let mut state = timeline.initial;
    let mut since = from;
    for &(at, status, chats) in &timeline.changes {
        // Clocks of different writers may disagree slightly: a change is
        // never earlier than the one before it.
        let at = at.max(since);
        if at >= to {
            break;
        }
        hold(&mut rows, since, at, state);
        state = (status, chats);
        since = at;
    }
    hold(&mut rows, since, to, state);
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use PresenceStatus::{Available, Offline, Unavailable};

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("2026-12-01T{h:02}:{m:02}:00Z"))
            .unwrap()
            .with_timezone(&Utc)
    }

    fn minutes(n: i64) -> TimeDelta {
        TimeDelta::minutes(n)
    }

    fn hourly(start: DateTime<Utc>, end: DateTime<Utc>) -> ActivityRange {
        ActivityRange::parse(start, end, Granularity::Hour).unwrap()
    }

    fn timeline(
        initial: (PresenceStatus, u32),
        changes: &[(DateTime<Utc>, PresenceStatus, u32)],
    ) -> Timeline {
        Timeline {
            user_id: UserId::generate(),
            created_at: at(0, 0),
            initial,
            changes: changes.to_vec(),
        }
    }

    fn times(row: &ActivityRow) -> (i64, i64, i64, u32) {
        (
            row.offline.num_minutes(),
            row.unavailable.num_minutes(),
            row.available.num_minutes(),
            row.peak_active_chats,
        )
    }

    #[test]
    fn a_day_of_changes_split_into_hours() {
        let t = timeline(
            (Offline, 0),
            &[
                (at(9, 15), Unavailable, 0),
                (at(9, 30), Available, 0),
                (at(10, 5), Available, 3),
                (at(10, 10), Available, 1),
                (at(11, 30), Offline, 0),
            ],
        );
        let rows = activity(&hourly(at(9, 0), at(12, 0)), at(23, 0), &t);
        let got: Vec<_> = rows.iter().map(times).collect();
        assert_eq!(got, vec![(15, 15, 30, 0), (0, 0, 60, 3), (30, 0, 30, 1)]);
        assert_eq!(rows[1].bucket_start, at(10, 0));
    }

    #[test]
    fn durations_add_up_to_the_part_of_the_bucket_in_range() {
        let t = timeline((Available, 2), &[(at(10, 50), Unavailable, 0)]);
        // 10:20 to 11:10: the buckets are 10:00 and 11:00, each clipped.
        let rows = activity(&hourly(at(10, 20), at(11, 10)), at(23, 0), &t);
        let got: Vec<_> = rows.iter().map(times).collect();
        assert_eq!(got, vec![(0, 10, 30, 2), (0, 10, 0, 0)]);
        assert_eq!(rows[0].bucket_start, at(10, 0));
    }

    #[test]
    fn nothing_after_now_and_nothing_before_the_user_existed() {
        let mut t = timeline((Offline, 0), &[(at(10, 30), Available, 0)]);
        t.created_at = at(10, 15);
        let rows = activity(&hourly(at(9, 0), at(14, 0)), at(11, 20), &t);
        let got: Vec<_> = rows.iter().map(times).collect();
        assert_eq!(got, vec![(15, 0, 30, 0), (0, 0, 20, 0)]);
        assert!(activity(&hourly(at(12, 0), at(14, 0)), at(11, 20), &t).is_empty());
    }

    #[test]
    fn an_instant_state_counts_for_the_peak_only() {
        let t = timeline(
            (Available, 1),
            &[(at(10, 30), Available, 9), (at(10, 30), Available, 2)],
        );
        let rows = activity(&hourly(at(10, 0), at(11, 0)), at(23, 0), &t);
        assert_eq!(times(&rows[0]), (0, 0, 60, 9));
    }

    #[test]
    fn a_change_stamped_before_its_predecessor_takes_no_time_back() {
        let t = timeline(
            (Unavailable, 0),
            &[(at(10, 40), Available, 0), (at(10, 39), Unavailable, 0)],
        );
        let rows = activity(&hourly(at(10, 0), at(11, 0)), at(23, 0), &t);
        assert_eq!(times(&rows[0]), (0, 60, 0, 0));
    }

    #[test]
    fn days_are_utc_days() {
        let range = ActivityRange::parse(at(6, 0), at(18, 0), Granularity::Day).unwrap();
        let rows = activity(&range, at(23, 0), &timeline((Available, 0), &[]));
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].bucket_start, at(0, 0));
        assert_eq!(rows[0].available, minutes(12 * 60));
    }

    #[test]
    fn ranges_are_checked() {
        let reason = |r: Result<ActivityRange, ParseError>| r.unwrap_err().reason;
        assert_eq!(
            reason(ActivityRange::parse(at(10, 0), at(9, 0), Granularity::Hour)),
            Reason::InvalidTimeRange
        );
        assert_eq!(
            reason(ActivityRange::parse(at(10, 0), at(10, 0), Granularity::Day)),
            Reason::InvalidTimeRange
        );
        let start = at(0, 0);
        assert!(
            ActivityRange::parse(start, start + TimeDelta::days(31), Granularity::Hour).is_ok()
        );
        assert_eq!(
            reason(ActivityRange::parse(
                start,
                start + TimeDelta::days(32),
                Granularity::Hour
            )),
            Reason::RangeTooLong
        );
        assert!(
            ActivityRange::parse(start, start + TimeDelta::days(366), Granularity::Day).is_ok()
        );
    }
}
