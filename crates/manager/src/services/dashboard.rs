//! The dashboard: the manager at a glance for the panel's landing page and `GET /v1/dashboard`.
//! Users are counted and traffic summed in the database (`COUNT` / `SUM` with `GROUP BY`), never
//! loaded, so the dashboard costs the same at 100 000 users as at ten; nodes are few and read as
//! rows (their drift needs the desired versions kept in memory).
//!
//! "Today" and "this month" start at midnight in the settings' time zone, as usage resets do.
//! The history keeps hours for 7 days and UTC days beyond: a period that started within the last
//! 7 days is summed from hours (exact, for zones on whole hours; in a zone with a fractional
//! offset the hour holding midnight counts for the day before); an older month start is summed
//! from hours back to the first UTC midnight within the 7 days and from UTC days before that, from
//! the UTC day nearest the month's start.

use super::Ctx;
use crate::entity::node::{self, Entity as NodeEntity, NodeStatus};
use crate::entity::usage_history::{self, Entity as History};
use crate::entity::user::{self, Entity as UserEntity};
use crate::history::{Point, Step, DAY_MS, HOURLY_KEEP_MS, HOUR_MS};
use crate::{resets, util, Result};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use rules::DisableReason;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use serde::Serialize;

/// How many hours the dashboard's traffic series covers (the current one included).
pub const SERIES_HOURS: i64 = 24;
/// How many config pushes the dashboard lists.
pub const PUSHES_SHOWN: usize = 10;

/// The manager at a glance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dashboard {
    pub users: UserCounts,
    pub traffic: Traffic,
    pub nodes: NodeCounts,
    /// All users' traffic per UTC hour over the last [`SERIES_HOURS`] hours up to the current
    /// one, oldest first, every hour present (0 where nothing was counted).
    pub hourly: Vec<Point>,
    /// The last [`PUSHES_SHOWN`] config pushes: one per node, the newest first (nodes never
    /// pushed last).
    pub pushes: Vec<Push>,
    /// Unix ms the dashboard was computed at.
    pub generated_at: i64,
}

/// Users by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct UserCounts {
    pub total: u64,
    /// Enabled users.
    pub active: u64,
    pub disabled: u64,
    /// Disabled users by reason (a disabled user without a recorded reason counts as manual).
    pub disabled_by: DisabledCounts,
}

/// Disabled users per [`DisableReason`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DisabledCounts {
    pub manual: u64,
    pub quota: u64,
    pub expired: u64,
}

impl DisabledCounts {
    /// The count of users disabled for `reason`.
    pub fn get(&self, reason: DisableReason) -> u64 {
        match reason {
            DisableReason::Manual => self.manual,
            DisableReason::Quota => self.quota,
            DisableReason::Expired => self.expired,
        }
    }

    fn add(&mut self, reason: DisableReason, n: u64) {
        let slot = match reason {
            DisableReason::Manual => &mut self.manual,
            DisableReason::Quota => &mut self.quota,
            DisableReason::Expired => &mut self.expired,
        };
        *slot += n;
    }
}

/// All users' traffic in the current day and month of the settings' time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Traffic {
    pub today_bytes: i64,
    pub month_bytes: i64,
    /// Unix ms of today's midnight in `time_zone`.
    pub today_from: i64,
    /// Unix ms of the first midnight of this month in `time_zone`.
    pub month_from: i64,
    /// The settings' IANA time zone the day and month follow.
    pub time_zone: String,
}

/// Nodes by health.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct NodeCounts {
    pub total: u64,
    /// Pushed (directly or through the proxy) and not lost by the pull watchdog: what carries
    /// traffic (`Node::is_healthy`).
    pub healthy: u64,
    pub unhealthy: u64,
    /// Nodes whose applied config is not the one the manager would push now.
    pub drift: u64,
}

/// A node's last config push and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Push {
    pub node_id: i64,
    pub name: String,
    /// Unix ms of the last successful push (0 = never).
    pub pushed_at: i64,
    pub push_status: NodeStatus,
    pub applied_version: Option<String>,
    pub desired_version: Option<String>,
    /// The applied version is not the desired one (`Node::has_drift`).
    pub drift: bool,
    pub last_error: Option<String>,
}

/// Computes the dashboard.
#[derive(Clone)]
pub struct DashboardService {
    pub(crate) ctx: Ctx,
}

impl DashboardService {
    /// The dashboard as of now.
    pub async fn get(&self) -> Result<Dashboard> {
        self.at(util::now_ms()).await
    }

    /// The dashboard as of `now` (Unix ms).
    pub async fn at(&self, now: i64) -> Result<Dashboard> {
        let db = &self.ctx.db;
        let tz = resets::settings_zone(db).await?;
        let (today_from, month_from) = period_starts(now, &tz);
        let traffic = Traffic {
            today_bytes: traffic_since(db, today_from, now).await?,
            month_bytes: traffic_since(db, month_from, now).await?,
            today_from,
            month_from,
            time_zone: tz.iana_name().unwrap_or("UTC").to_owned(),
        };
        let mut nodes: Vec<node::Model> = NodeEntity::find()
            .all(db)
            .await?
            .into_iter()
            .map(|n| self.ctx.desired.fill(n))
            .collect();
        let counts = NodeCounts {
            total: nodes.len() as u64,
            healthy: nodes.iter().filter(|n| n.is_healthy()).count() as u64,
            unhealthy: nodes.iter().filter(|n| !n.is_healthy()).count() as u64,
            drift: nodes.iter().filter(|n| n.has_drift()).count() as u64,
        };
        nodes.sort_by_key(|n| (std::cmp::Reverse(n.pushed_at), n.id));
        let pushes = nodes
            .into_iter()
            .take(PUSHES_SHOWN)
            .map(|n| Push {
                drift: n.has_drift(),
                node_id: n.id,
                name: n.name,
                pushed_at: n.pushed_at,
                push_status: n.push_status,
                applied_version: n.applied_version,
                desired_version: n.desired_version,
                last_error: n.last_error,
            })
            .collect();
        Ok(Dashboard {
            users: user_counts(db).await?,
            traffic,
            nodes: counts,
            hourly: hourly(db, now).await?,
            pushes,
            generated_at: now,
        })
    }
}

/// Today's and this month's first midnight in `tz` (Unix ms), as of `now`.
fn period_starts(now: i64, tz: &TimeZone) -> (i64, i64) {
    let midnight = |date: jiff::civil::Date| {
        date.to_zoned_datetime(tz.clone())
            .ok()
            .map(|z| z.timestamp().as_millisecond())
    };
    let today = Timestamp::from_millisecond(now)
        .ok()
        .map(|t| t.to_zoned_datetime(tz.clone()).date());
    let day = today.and_then(midnight).unwrap_or(Step::Day.bucket(now));
    let month = today
        .and_then(|d| midnight(d.first_of_month()))
        .unwrap_or(day);
    (day, month)
}

/// Users counted by enabled state and disable reason, in one grouped query.
async fn user_counts(db: &impl ConnectionTrait) -> Result<UserCounts> {
    let groups: Vec<(bool, Option<DisableReason>, i64)> = UserEntity::find()
        .select_only()
        .column(user::Column::Enabled)
        .column(user::Column::DisabledReason)
        .expr(Expr::cust("COUNT(*)"))
        .group_by(user::Column::Enabled)
        .group_by(user::Column::DisabledReason)
        .into_tuple()
        .all(db)
        .await?;
    let mut counts = UserCounts::default();
    for (enabled, reason, n) in groups {
        let n = u64::try_from(n).unwrap_or(0);
        counts.total += n;
        if enabled {
            counts.active += n;
        } else {
            counts.disabled += n;
            counts
                .disabled_by
                .add(reason.unwrap_or(DisableReason::Manual), n);
        }
    }
    Ok(counts)
}

/// The sum of users' history rows of `step` with `at` in `[from, to)`.
async fn user_sum(db: &impl ConnectionTrait, step: Step, from: i64, to: i64) -> Result<i64> {
    if from >= to {
        return Ok(0);
    }
    // SUM of a BIGINT is NUMERIC on PostgreSQL: cast back.
    let sum: Option<i64> = History::find()
        .select_only()
        .expr(Expr::cust("CAST(COALESCE(SUM(bytes), 0) AS BIGINT)"))
        .filter(usage_history::Column::Step.eq(step.as_str()))
        .filter(usage_history::Column::At.gte(from))
        .filter(usage_history::Column::At.lt(to))
        .filter(usage_history::Column::Subject.eq("user"))
        .into_tuple()
        .one(db)
        .await?;
    Ok(sum.unwrap_or(0))
}

/// All users' traffic from `start` up to `now` (see the module doc for which rows count).
async fn traffic_since(db: &impl ConnectionTrait, start: i64, now: i64) -> Result<i64> {
    let end = now + 1;
    if start >= now - HOURLY_KEEP_MS {
        return user_sum(db, Step::Hour, start, end).await;
    }
    // The first UTC midnight whose hours are all still kept.
    let hours_from = Step::Day.bucket(now - HOURLY_KEEP_MS) + DAY_MS;
    let days_from = Step::Day.bucket(start + DAY_MS / 2);
    Ok(user_sum(db, Step::Day, days_from, hours_from).await?
        + user_sum(db, Step::Hour, hours_from, end).await?)
}

/// All users' traffic per hour over the last [`SERIES_HOURS`] hours, every hour present.
async fn hourly(db: &impl ConnectionTrait, now: i64) -> Result<Vec<Point>> {
    let first = Step::Hour.bucket(now) - (SERIES_HOURS - 1) * HOUR_MS;
    let rows: Vec<(i64, i64)> = History::find()
        .select_only()
        .column(usage_history::Column::At)
        .expr(Expr::cust("CAST(SUM(bytes) AS BIGINT)"))
        .filter(usage_history::Column::Step.eq(Step::Hour.as_str()))
        .filter(usage_history::Column::At.gte(first))
        .filter(usage_history::Column::At.lte(now))
        .filter(usage_history::Column::Subject.eq("user"))
        .group_by(usage_history::Column::At)
        .into_tuple()
        .all(db)
        .await?;
    Ok((0..SERIES_HOURS)
        .map(|i| {
            let at = first + i * HOUR_MS;
            let bytes = rows
                .iter()
                .filter(|(row_at, _)| *row_at == at)
                .map(|(_, b)| b)
                .sum();
            Point { at, bytes }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_start_at_local_midnights() {
        let berlin = resets::zone("Europe/Berlin").expect("tz");
        // 2026-12-01T00:30Z = 01:30 in Berlin: today and the month began at 2026-11-30T23:00Z.
        let now = 1_796_085_000_000;
        let start = 1_796_079_600_000;
        assert_eq!(period_starts(now, &berlin), (start, start));
        // 2026-11-30T22:30Z = 23:30 in Berlin, the last day of November.
        let (day, month) = period_starts(now - 2 * HOUR_MS, &berlin);
        assert_eq!(day, start - DAY_MS);
        assert_eq!(month, 1_793_487_600_000, "2026-10-31T23:00Z");
        assert_eq!(
            period_starts(now, &TimeZone::UTC),
            (1_796_083_200_000, 1_796_083_200_000)
        );
    }
}
