//! Periodic usage resets. A user's [`ResetStrategy`] puts its resets at midnight in the settings'
//! IANA time zone; `users.next_reset_at` holds the next one, so the check the coordinator runs on
//! every pull ([`reset_due`]) reads only the users whose reset has come.
//!
//! A reset zeroes the usage and re-enables the user only when the quota disabled them (an expiry
//! or an administrator's disable stays). It is the same for a scheduled reset and an
//! administrator's ([`reset_users`]).

use crate::entity::user::{self, Entity as UserEntity};
use crate::services::settings;
use crate::{Result, ServiceError};
use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use rules::{DisableReason, ResetStrategy};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, QueryFilter, QuerySelect, Set,
};

/// The time zone named `name` (an IANA name; `UTC` needs no tz database).
pub fn zone(name: &str) -> Result<TimeZone> {
    if name == "UTC" {
        return Ok(TimeZone::UTC);
    }
    TimeZone::get(name).map_err(|_| {
        ServiceError::invalid(
            "time_zone",
            "is not a time zone this system knows (an IANA name such as Europe/Berlin)",
        )
    })
}

/// The time zone named `name`, or UTC when this system does not know it.
pub fn zone_or_utc(name: &str) -> TimeZone {
    zone(name).unwrap_or(TimeZone::UTC)
}

/// `at_ms` (Unix ms) as the wall-clock minute it was in `zone`: `2026-12-01 13:30`. Empty for a
/// time out of range.
pub fn local_minute(at_ms: i64, zone: &TimeZone) -> String {
    Timestamp::from_millisecond(at_ms)
        .map(|at| {
            at.to_zoned_datetime(zone.clone())
                .strftime("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

/// Every zone name [`zone`] accepts, sorted: `UTC` and the IANA names of the system's tz
/// database (its `posix/` and `right/` copies, the `Etc/` fixed offsets and the legacy upper-case
/// aliases left out), the choices the panel offers for the settings' time zone. Read from the
/// database on each call, so a tzdata update shows without a restart.
pub fn zone_names() -> Vec<String> {
    let mut names: Vec<String> = jiff::tz::db()
        .available()
        .map(|n| n.as_str().to_owned())
        .filter(|n| {
            n.contains('/')
                && !n.starts_with("posix/")
                && !n.starts_with("right/")
                && !n.starts_with("Etc/")
                && n.starts_with(|c: char| c.is_ascii_uppercase())
                && n.chars().any(|c| c.is_ascii_lowercase())
        })
        .collect();
    names.push("UTC".to_owned());
    names.sort();
    names.dedup();
    names
}

/// The time zone resets follow: the settings' (UTC if it no longer resolves, e.g. after the
/// system's tz database lost it).
pub(crate) async fn settings_zone(db: &impl ConnectionTrait) -> Result<TimeZone> {
    let s = settings::load(db).await?;
    Ok(zone(&s.time_zone).unwrap_or_else(|e| {
        tracing::warn!(time_zone = %s.time_zone, error = %e, "resets follow UTC");
        TimeZone::UTC
    }))
}

/// The first reset of `strategy` strictly after `after` (Unix ms), at midnight in `tz`;
/// `reset_day` is the day of the month of a monthly reset. `None` for [`ResetStrategy::None`] or
/// beyond the calendar.
pub fn next_reset(
    strategy: ResetStrategy,
    reset_day: i32,
    after: i64,
    tz: &TimeZone,
) -> Option<i64> {
    let today = Timestamp::from_millisecond(after)
        .ok()?
        .to_zoned_datetime(tz.clone())
        .date();
    let candidates: [Option<Date>; 2] = match strategy {
        ResetStrategy::None => return None,
        ResetStrategy::Daily => [today.tomorrow().ok(), None],
        ResetStrategy::Weekly => [today.nth_weekday(1, Weekday::Monday).ok(), None],
        ResetStrategy::Monthly => {
            let day = |month_start: Date| {
                let last = month_start.days_in_month();
                month_start
                    .with()
                    .day(i8::try_from(reset_day).unwrap_or(1).clamp(1, last))
                    .build()
                    .ok()
            };
            let this_month = today.first_of_month();
            [
                day(this_month),
                this_month.checked_add(1.month()).ok().and_then(day),
            ]
        }
        ResetStrategy::Every30Days => [today.checked_add(30.days()).ok(), None],
        ResetStrategy::Yearly => [Date::new(today.year().checked_add(1)?, 1, 1).ok(), None],
    };
    candidates
        .into_iter()
        .flatten()
        .filter_map(|date| date.to_zoned_datetime(tz.clone()).ok())
        .map(|midnight| midnight.timestamp().as_millisecond())
        .find(|at| *at > after)
}

/// Resets the usage of `ids` at `now`: usage 0, the next reset scheduled from now, and users
/// the quota disabled enabled again (unless their expiry has passed). Returns the ids that
/// exist. Runs inside the caller's write transaction.
pub(crate) async fn reset_users<C: ConnectionTrait>(
    txn: &C,
    ids: &[i64],
    now: i64,
    tz: &TimeZone,
) -> Result<Vec<i64>> {
    let users = UserEntity::find()
        .filter(user::Column::Id.is_in(ids.iter().copied()))
        .all(txn)
        .await?;
    for u in &users {
        let mut am = u.clone().into_active_model();
        am.usage_bytes = Set(0);
        am.usage_reset_at = Set(now);
        am.next_reset_at = Set(next_reset(u.reset_strategy, u.reset_day, now, tz));
        if !u.enabled && u.disabled_reason == Some(DisableReason::Quota) {
            let reached = DisableReason::limit_reached(0, u.quota_bytes, u.expire_at, now);
            am.enabled = Set(reached.is_none());
            am.disabled_reason = Set(reached);
        }
        am.updated_at = Set(now);
        am.update(txn).await?;
    }
    Ok(users.into_iter().map(|u| u.id).collect())
}

/// Resets every user whose `next_reset_at` has come (see [`reset_users`]) and returns their ids.
/// Run by the coordinator on every pull; a pass with nobody due takes no write lock.
pub(crate) async fn reset_due(db: &DatabaseConnection, now: i64) -> Result<Vec<i64>> {
    let due = || {
        UserEntity::find()
            .select_only()
            .column(user::Column::Id)
            .filter(user::Column::NextResetAt.lte(now))
            .into_tuple::<i64>()
    };
    if due().one(db).await?.is_none() {
        return Ok(Vec::new());
    }
    let txn = crate::db::write_txn(db).await?;
    let tz = settings_zone(&txn).await?;
    let ids = due().all(&txn).await?;
    let reset = reset_users(&txn, &ids, now, &tz).await?;
    settings::touch(&txn).await?;
    txn.commit().await?;
    for id in &reset {
        tracing::info!(user.id = id, "usage reset on schedule");
    }
    Ok(reset)
}

/// Schedules every user's next reset again from `now` in `tz` (the time zone changed).
pub(crate) async fn reschedule_all<C: ConnectionTrait>(
    txn: &C,
    now: i64,
    tz: &TimeZone,
) -> Result<()> {
    let users = UserEntity::find()
        .select_only()
        .column(user::Column::Id)
        .column(user::Column::ResetStrategy)
        .column(user::Column::ResetDay)
        .filter(user::Column::ResetStrategy.ne(ResetStrategy::None.as_str()))
        .into_tuple::<(i64, ResetStrategy, i32)>()
        .all(txn)
        .await?;
    for (id, strategy, day) in users {
        UserEntity::update_many()
            .col_expr(
                user::Column::NextResetAt,
                Expr::value(next_reset(strategy, day, now, tz)),
            )
            .filter(user::Column::Id.eq(id))
            .exec(txn)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_names_are_sorted_iana_names_that_all_resolve() {
        let names = zone_names();
        assert!(
            names.windows(2).all(|w| w[0] < w[1]),
            "sorted, no duplicates"
        );
        for name in ["UTC", "Europe/Berlin", "America/Santiago", "Asia/Tokyo"] {
            assert!(names.iter().any(|n| n == name), "{name} missing");
        }
        assert!(names
            .iter()
            .all(|n| !n.starts_with("posix/") && !n.starts_with("right/")));
        for name in &names {
            assert!(zone(name).is_ok(), "{name} does not resolve");
            assert!(
                rules::input::time_zone(name).is_ok(),
                "{name} is refused by the form"
            );
        }
    }

    fn ms(s: &str) -> i64 {
        s.parse::<Timestamp>().expect("timestamp").as_millisecond()
    }

    fn next(strategy: ResetStrategy, day: i32, after: &str, tz: &str) -> Option<String> {
        let tz = zone(tz).expect("zone");
        next_reset(strategy, day, ms(after), &tz)
            .map(|at| Timestamp::from_millisecond(at).expect("ms").to_string())
    }

    #[test]
    fn resets_fall_on_midnight_in_the_zone() {
        use ResetStrategy::*;
        let utc = "UTC";
        assert_eq!(next(None, 1, "2026-11-25T18:10:18Z", utc), Option::None);
        assert_eq!(
            next(Daily, 1, "2026-11-25T18:10:18Z", utc).as_deref(),
            Some("2026-11-26T00:00:00Z")
        );
        // Exactly at midnight: the next one, not this one.
        assert_eq!(
            next(Daily, 1, "2026-11-26T00:00:00Z", utc).as_deref(),
            Some("2026-11-27T00:00:00Z")
        );
        // 2026-11-25 is a Wednesday; from a Monday, the next Monday.
        assert_eq!(
            next(Weekly, 1, "2026-11-25T18:10:18Z", utc).as_deref(),
            Some("2026-11-30T00:00:00Z")
        );
        assert_eq!(
            next(Weekly, 1, "2026-11-30T00:00:00Z", utc).as_deref(),
            Some("2026-12-07T00:00:00Z")
        );
        // Monthly: this month's day if still ahead, else next month's; short months clamp.
        assert_eq!(
            next(Monthly, 28, "2026-11-25T18:10:18Z", utc).as_deref(),
            Some("2026-11-28T00:00:00Z")
        );
        assert_eq!(
            next(Monthly, 1, "2026-11-25T18:10:18Z", utc).as_deref(),
            Some("2026-12-01T00:00:00Z")
        );
        assert_eq!(
            next(Monthly, 31, "2027-02-10T00:00:00Z", utc).as_deref(),
            Some("2027-02-28T00:00:00Z")
        );
        assert_eq!(
            next(Monthly, 31, "2027-02-28T00:00:00Z", utc).as_deref(),
            Some("2027-03-31T00:00:00Z")
        );
        assert_eq!(
            next(Monthly, 31, "2028-02-10T00:00:00Z", utc).as_deref(),
            Some("2028-02-29T00:00:00Z")
        );
        assert_eq!(
            next(Every30Days, 1, "2026-11-25T18:10:18Z", utc).as_deref(),
            Some("2026-12-25T00:00:00Z")
        );
        assert_eq!(
            next(Yearly, 1, "2026-11-25T18:10:18Z", utc).as_deref(),
            Some("2027-01-01T00:00:00Z")
        );
        assert_eq!(
            next(Yearly, 1, "2027-01-01T00:00:00Z", utc).as_deref(),
            Some("2028-01-01T00:00:00Z")
        );
    }

    #[test]
    fn zones_and_daylight_saving() {
        use ResetStrategy::*;
        // Berlin is UTC+1 in winter: local midnight is 23:00 UTC the day before.
        assert_eq!(
            next(Daily, 1, "2026-11-25T18:10:18Z", "Europe/Berlin").as_deref(),
            Some("2026-11-25T23:00:00Z")
        );
        // Already 00:30 on the 26th in Berlin: the next midnight is the 27th's.
        assert_eq!(
            next(Daily, 1, "2026-11-25T23:30:00Z", "Europe/Berlin").as_deref(),
            Some("2026-11-26T23:00:00Z")
        );
        // Summer time (UTC+2) starts on 2027-03-28: that midnight is still UTC+1, the next UTC+2.
        assert_eq!(
            next(Daily, 1, "2027-03-27T12:00:00Z", "Europe/Berlin").as_deref(),
            Some("2027-03-27T23:00:00Z")
        );
        assert_eq!(
            next(Daily, 1, "2027-03-28T12:00:00Z", "Europe/Berlin").as_deref(),
            Some("2027-03-28T22:00:00Z")
        );
        // America/Santiago skips midnight when summer time starts (2026-09-06): the reset falls
        // on the first instant of the day, 01:00 local.
        assert_eq!(
            next(Daily, 1, "2026-09-05T12:00:00Z", "America/Santiago").as_deref(),
            Some("2026-09-06T04:00:00Z")
        );
        assert!(matches!(
            zone("Mars/Olympus"),
            Err(ServiceError::Invalid { .. })
        ));
    }
}
