//! Usage history: the bytes counted for each user and each node per UTC hour (kept
//! [`HOURLY_KEEP_MS`]) and per UTC day (kept [`DAILY_KEEP_MS`]). [`record`] runs inside the
//! accounting transaction, so the history and the usage totals always agree: the rows of a
//! subject added up over a period are exactly what its total grew by in that period.

use crate::entity::usage_history::{self, Entity as History};
use crate::{Result, ServiceError};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde::{Deserialize, Serialize};

/// An hour, in ms.
pub const HOUR_MS: i64 = 3_600_000;
/// A day, in ms.
pub const DAY_MS: i64 = 24 * HOUR_MS;
/// How long hourly rows are kept: 7 days.
pub const HOURLY_KEEP_MS: i64 = 7 * DAY_MS;
/// How long daily rows are kept: 400 days.
pub const DAILY_KEEP_MS: i64 = 400 * DAY_MS;
/// The most buckets one query returns (a year of days, or 7 days of hours, fit easily).
pub const MAX_POINTS: i64 = 10_000;

/// Whose usage a row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    User,
    Node,
}

impl Subject {
    fn as_str(self) -> &'static str {
        match self {
            Subject::User => "user",
            Subject::Node => "node",
        }
    }
}

/// A bucket size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    Hour,
    Day,
}

impl Step {
    /// The wire and database value.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Hour => "hour",
            Step::Day => "day",
        }
    }

    /// The bucket length in ms.
    pub fn ms(self) -> i64 {
        match self {
            Step::Hour => HOUR_MS,
            Step::Day => DAY_MS,
        }
    }

    /// How long rows of this step are kept.
    pub fn keep_ms(self) -> i64 {
        match self {
            Step::Hour => HOURLY_KEEP_MS,
            Step::Day => DAILY_KEEP_MS,
        }
    }

    /// The start of the bucket holding `at`.
    pub fn bucket(self, at: i64) -> i64 {
        at - at.rem_euclid(self.ms())
    }

    /// The step named `value` (`hour` or `day`).
    pub fn parse(value: &str) -> Option<Step> {
        match value {
            "hour" => Some(Step::Hour),
            "day" => Some(Step::Day),
            _ => None,
        }
    }
}

/// One bucket of a history: its start (Unix ms) and the bytes counted in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Point {
    pub at: i64,
    pub bytes: i64,
}

/// Adds `bytes` at `now` to the hour and the day bucket of every `(subject, id, bytes)` given
/// (zero entries are skipped). Run inside the transaction that adds the same bytes to the totals.
pub(crate) async fn record<C: ConnectionTrait>(
    db: &C,
    entries: impl IntoIterator<Item = (Subject, i64, i64)>,
    now: i64,
) -> Result<()> {
    let rows: Vec<usage_history::ActiveModel> = entries
        .into_iter()
        .filter(|(_, _, bytes)| *bytes > 0)
        .flat_map(|(subject, id, bytes)| {
            [Step::Hour, Step::Day].map(|step| usage_history::ActiveModel {
                subject: Set(subject.as_str().to_owned()),
                subject_id: Set(id),
                step: Set(step.as_str().to_owned()),
                at: Set(step.bucket(now)),
                bytes: Set(bytes),
            })
        })
        .collect();
    for chunk in rows.chunks(200) {
        History::insert_many(chunk.to_vec())
            .on_conflict(
                OnConflict::columns([
                    usage_history::Column::Subject,
                    usage_history::Column::SubjectId,
                    usage_history::Column::Step,
                    usage_history::Column::At,
                ])
                .value(
                    usage_history::Column::Bytes,
                    Expr::col((History, usage_history::Column::Bytes))
                        .add(Expr::cust("excluded.bytes")),
                )
                .to_owned(),
            )
            .exec(db)
            .await?;
    }
    Ok(())
}

/// The buckets of `subject` `id` with `step` whose start lies in `[from, to)`, oldest first;
/// buckets in which nothing was counted are left out. At most [`MAX_POINTS`] buckets may lie in
/// the range.
pub async fn query(
    db: &DatabaseConnection,
    subject: Subject,
    id: i64,
    step: Step,
    from: i64,
    to: i64,
) -> Result<Vec<Point>> {
    if from >= to {
        return Err(ServiceError::invalid("to", "must be after from"));
    }
    if (to - from) / step.ms() > MAX_POINTS {
        return Err(ServiceError::invalid(
            "to",
            "spans too many buckets: at most 10000 per query",
        ));
    }
    let rows = History::find()
        .select_only()
        .column(usage_history::Column::At)
        .column(usage_history::Column::Bytes)
        .filter(usage_history::Column::Subject.eq(subject.as_str()))
        .filter(usage_history::Column::SubjectId.eq(id))
        .filter(usage_history::Column::Step.eq(step.as_str()))
        .filter(usage_history::Column::At.gte(step.bucket(from)))
        .filter(usage_history::Column::At.lt(to))
        .order_by_asc(usage_history::Column::At)
        .into_tuple::<(i64, i64)>()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(at, bytes)| Point { at, bytes })
        .collect())
}

/// Deletes the history of `subject` `id` (the user or node is being deleted).
pub(crate) async fn forget<C: ConnectionTrait>(db: &C, subject: Subject, id: i64) -> Result<()> {
    History::delete_many()
        .filter(usage_history::Column::Subject.eq(subject.as_str()))
        .filter(usage_history::Column::SubjectId.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Deletes hourly rows older than 7 days and daily rows older than 400 days, as of `now`;
/// returns how many went. Looks before it writes, so a pass with nothing to delete takes no write
/// lock.
pub async fn prune(db: &DatabaseConnection, now: i64) -> Result<u64> {
    let mut deleted = 0;
    for step in [Step::Hour, Step::Day] {
        let expired = || {
            usage_history::Column::Step
                .eq(step.as_str())
                .and(usage_history::Column::At.lt(now - step.keep_ms()))
        };
        if History::find().filter(expired()).one(db).await?.is_none() {
            continue;
        }
        deleted += History::delete_many()
            .filter(expired())
            .exec(db)
            .await?
            .rows_affected;
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_start_on_utc_hours_and_days() {
        let at = 1_795_630_218_000; // 2026-11-25T18:10:18Z
        assert_eq!(Step::Hour.bucket(at), 1_795_629_600_000); // 18:00
        assert_eq!(Step::Day.bucket(at), 1_795_564_800_000); // 00:00
        assert_eq!(Step::Hour.bucket(1_795_629_600_000), 1_795_629_600_000);
        assert_eq!(Step::parse("hour"), Some(Step::Hour));
        assert_eq!(Step::parse("week"), None);
    }
}
