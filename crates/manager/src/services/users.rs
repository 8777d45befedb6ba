//! Users: create, list, edit quota / expiry / enabled, delete. Every change re-syncs configs, so
//! a disabled or deleted user's live sessions are cut by the engines.
//!
//! Limits decide by one rule, [`DisableReason::limit_reached`]: an edit that reaches a limit
//! (a quota at or below the usage, an expiry in the past) disables the user for it at once; an
//! edit that lifts the limit a user was disabled for (a higher quota, a later expiry) enables
//! the user at once. A manual disable is only ever undone by enabling the user; enabling a user
//! whose limit is reached is refused, naming the limit. `enabled: false` always records a manual
//! disable, also for a user a limit had disabled.
//!
//! Lists for people and API clients are paged ([`UserService::page`], in [`page`]);
//! [`UserService::list`] reads every user, for config generation.

use super::audit::{Changes, Entry};
use super::{settings, unique_violation, Ctx};
use crate::entity::user::{self, Entity as UserEntity};
use crate::events::Event;
use crate::{history, resets, util, Result, ServiceError};
use rules::{input, DisableReason, Permission, ResetStrategy};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, Set,
};
use serde::Deserialize;

pub mod page;

pub use page::{SortKey, UserPage, UserQuery, UserSort, UserStatus};
pub use user::Model as User;

/// The method users' links use.
pub const USER_METHOD: xray::Method = xray::Method::Chacha20IetfPoly1305;

/// A new user.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub name: String,
    /// Bytes; 0 = unlimited.
    #[serde(default)]
    pub quota_bytes: i64,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Unix ms; absent or null = never.
    #[serde(default)]
    pub expire_at: Option<i64>,
    /// Ms of access from the first counted byte; absent or null = none.
    #[serde(default)]
    pub expire_after_first_use: Option<i64>,
    /// When the usage is zeroed on its own; absent = never.
    #[serde(default)]
    pub reset_strategy: ResetStrategy,
    /// The day of the month of a monthly reset (1–31); absent = 1.
    #[serde(default = "first_day")]
    pub reset_day: i32,
}

fn first_day() -> i32 {
    1
}

fn yes() -> bool {
    true
}

impl Default for NewUser {
    /// An enabled user without limits (the name is left to fill in).
    fn default() -> Self {
        NewUser {
            name: String::new(),
            quota_bytes: 0,
            enabled: true,
            expire_at: None,
            expire_after_first_use: None,
            reset_strategy: ResetStrategy::None,
            reset_day: 1,
        }
    }
}

/// A partial update of a user; absent fields keep their value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    pub name: Option<String>,
    pub quota_bytes: Option<i64>,
    pub enabled: Option<bool>,
    /// Absent keeps it; `null` removes the expiry.
    #[serde(default, deserialize_with = "present")]
    pub expire_at: Option<Option<i64>>,
    /// Absent keeps it; `null` removes the first-use clock.
    #[serde(default, deserialize_with = "present")]
    pub expire_after_first_use: Option<Option<i64>>,
    pub reset_strategy: Option<ResetStrategy>,
    pub reset_day: Option<i32>,
}

/// A field that is present, possibly `null` (absent fields stay `None` by `default`).
fn present<'de, D, T>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Manages users.
#[derive(Clone)]
pub struct UserService {
    pub(crate) ctx: Ctx,
}

impl UserService {
    /// Every user by id. For config generation and other whole-set work; lists shown to people
    /// or API clients use [`UserService::page`].
    pub async fn list(&self) -> Result<Vec<User>> {
        Ok(UserEntity::find()
            .order_by_asc(user::Column::Id)
            .all(&self.ctx.db)
            .await?)
    }

    pub async fn get(&self, id: i64) -> Result<User> {
        UserEntity::find_by_id(id)
            .one(&self.ctx.db)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("user {id}")))
    }

    pub async fn create(&self, new: NewUser) -> Result<User> {
        self.ctx
            .authorize(Permission::Operate, "user.create")
            .await?;
        let name = input::user_name(&new.name)?;
        input::quota_bytes(new.quota_bytes)?;
        let expire_at = new.expire_at.map(input::expire_at).transpose()?;
        let expire_after_first_use = new
            .expire_after_first_use
            .map(input::expire_after_first_use)
            .transpose()?;
        input::reset_day(new.reset_day)?;
        let now = util::now_ms();
        let disabled_reason = if new.enabled {
            DisableReason::limit_reached(0, new.quota_bytes, expire_at, now)
        } else {
            Some(DisableReason::Manual)
        };
        let (sub_secret, sub_secret_hash) = super::subscriptions::new_secret();
        let txn = crate::db::write_txn(&self.ctx.db).await?;
        let tz = resets::settings_zone(&txn).await?;
        let row = user::ActiveModel {
            name: Set(name),
            password: Set(util::random_key(16)),
            method: Set(USER_METHOD.as_str().to_owned()),
            enabled: Set(disabled_reason.is_none()),
            disabled_reason: Set(disabled_reason),
            quota_bytes: Set(new.quota_bytes),
            usage_bytes: Set(0),
            expire_at: Set(expire_at),
            expire_after_first_use: Set(expire_after_first_use),
            first_used_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            sub_secret: Set(sub_secret),
            sub_secret_hash: Set(sub_secret_hash),
            reset_strategy: Set(new.reset_strategy),
            reset_day: Set(new.reset_day),
            usage_reset_at: Set(now),
            next_reset_at: Set(resets::next_reset(
                new.reset_strategy,
                new.reset_day,
                now,
                &tz,
            )),
            ..Default::default()
        }
        .insert(&txn)
        .await
        .map_err(|e| unique_violation(e, "name", "a user with this name exists"))?;
        settings::touch(&txn).await?;
        txn.commit().await?;
        tracing::info!(user.id = row.id, "user created");
        self.ctx
            .audit(
                Entry::new("user.create")
                    .object("user", Some(row.id), &row.name)
                    .changes(user_changes(None, Some(&row))),
            )
            .await;
        self.changed();
        Ok(row)
    }

    pub async fn update(&self, id: i64, patch: UserPatch) -> Result<User> {
        self.ctx
            .authorize(Permission::Operate, "user.update")
            .await?;
        let name = patch.name.as_deref().map(input::user_name).transpose()?;
        if let Some(q) = patch.quota_bytes {
            input::quota_bytes(q)?;
        }
        if let Some(Some(at)) = patch.expire_at {
            input::expire_at(at)?;
        }
        if let Some(Some(ms)) = patch.expire_after_first_use {
            input::expire_after_first_use(ms)?;
        }
        if let Some(day) = patch.reset_day {
            input::reset_day(day)?;
        }
        let txn = crate::db::write_txn(&self.ctx.db).await?;
        let current = UserEntity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("user {id}")))?;
        let mut am = current.clone().into_active_model();
        if let Some(name) = name {
            am.name = Set(name);
        }
        if let Some(q) = patch.quota_bytes.filter(|q| *q != current.quota_bytes) {
            am.quota_bytes = Set(q);
        }
        let mut expire_at = patch.expire_at.unwrap_or(current.expire_at);
        let clock = patch
            .expire_after_first_use
            .unwrap_or(current.expire_after_first_use);
        if clock != current.expire_after_first_use {
            am.expire_after_first_use = Set(clock);
        }
        // After the first use, a first-use period ends at first use + period: when the period
        // changes and the expiry is not changed with it, or when no expiry is left.
        if let (Some(ms), Some(first)) = (clock, current.first_used_at) {
            let period_changed = clock != current.expire_after_first_use;
            let expiry_kept = expire_at == current.expire_at;
            if (period_changed && expiry_kept) || expire_at.is_none() {
                expire_at = Some(first.saturating_add(ms));
            }
        }
        if expire_at != current.expire_at {
            am.expire_at = Set(expire_at);
        }
        let now = util::now_ms();
        let strategy = patch.reset_strategy.unwrap_or(current.reset_strategy);
        let day = patch.reset_day.unwrap_or(current.reset_day);
        if (strategy, day) != (current.reset_strategy, current.reset_day) {
            let tz = resets::settings_zone(&txn).await?;
            am.reset_strategy = Set(strategy);
            am.reset_day = Set(day);
            am.next_reset_at = Set(resets::next_reset(strategy, day, now, &tz));
        }
        let quota = patch.quota_bytes.unwrap_or(current.quota_bytes);
        let reached = DisableReason::limit_reached(current.usage_bytes, quota, expire_at, now);
        let (enabled, reason) = status_after(&current, patch.enabled, reached)?;
        if enabled != current.enabled || reason != current.disabled_reason {
            am.enabled = Set(enabled);
            am.disabled_reason = Set(reason);
        }
        if !am.is_changed() {
            return Ok(current);
        }
        am.updated_at = Set(now);
        let row = am
            .update(&txn)
            .await
            .map_err(|e| unique_violation(e, "name", "a user with this name exists"))?;
        settings::touch(&txn).await?;
        txn.commit().await?;
        tracing::info!(user.id = id, enabled = row.enabled, "user updated");
        self.ctx
            .audit(
                Entry::new("user.update")
                    .object("user", Some(id), &row.name)
                    .changes(user_changes(Some(&current), Some(&row))),
            )
            .await;
        self.changed();
        Ok(row)
    }

    pub async fn delete(&self, id: i64) -> Result<()> {
        self.delete_many(&[id]).await
    }

    /// Deletes each of `ids`. All or nothing: an unknown id deletes nothing and is reported.
    pub async fn delete_many(&self, ids: &[i64]) -> Result<()> {
        self.ctx
            .authorize(Permission::Operate, "user.delete")
            .await?;
        check_bulk(ids)?;
        let txn = crate::db::write_txn(&self.ctx.db).await?;
        let rows = every_user(&txn, ids).await?;
        UserEntity::delete_many()
            .filter(user::Column::Id.is_in(ids.iter().copied()))
            .exec(&txn)
            .await?;
        for id in ids {
            history::forget(&txn, history::Subject::User, *id).await?;
        }
        settings::touch(&txn).await?;
        txn.commit().await?;
        for row in &rows {
            tracing::info!(user.id = row.id, "user deleted");
            self.ctx
                .audit(
                    Entry::new("user.delete")
                        .object("user", Some(row.id), &row.name)
                        .changes(user_changes(Some(row), None)),
                )
                .await;
        }
        self.changed();
        Ok(())
    }

    /// Enables or disables each of `ids` as an edit of `enabled` alone would (disabling records a
    /// manual disable; enabling a user whose limit is reached is refused, naming the user). All
    /// or nothing. Returns the users as they are afterwards.
    pub async fn set_enabled(&self, ids: &[i64], enabled: bool) -> Result<Vec<User>> {
        let action = if enabled {
            "user.enable"
        } else {
            "user.disable"
        };
        self.ctx.authorize(Permission::Operate, action).await?;
        check_bulk(ids)?;
        let txn = crate::db::write_txn(&self.ctx.db).await?;
        let rows = every_user(&txn, ids).await?;
        let now = util::now_ms();
        let mut after = Vec::with_capacity(rows.len());
        let mut changed = Vec::new();
        for current in rows {
            let reached = DisableReason::limit_reached(
                current.usage_bytes,
                current.quota_bytes,
                current.expire_at,
                now,
            );
            let (on, reason) =
                status_after(&current, Some(enabled), reached).map_err(|e| match e {
                    ServiceError::Invalid { field, message } => ServiceError::Invalid {
                        field,
                        message: format!("{}: {message}", current.name),
                    },
                    other => other,
                })?;
            if (on, reason) == (current.enabled, current.disabled_reason) {
                after.push(current);
                continue;
            }
            let mut am = current.clone().into_active_model();
            am.enabled = Set(on);
            am.disabled_reason = Set(reason);
            am.updated_at = Set(now);
            let row = am.update(&txn).await?;
            changed.push((current, row.clone()));
            after.push(row);
        }
        if !changed.is_empty() {
            settings::touch(&txn).await?;
        }
        txn.commit().await?;
        for (before, row) in &changed {
            tracing::info!(user.id = row.id, enabled = row.enabled, "user updated");
            self.ctx
                .audit(
                    Entry::new(action)
                        .object("user", Some(row.id), &row.name)
                        .changes(user_changes(Some(before), Some(row))),
                )
                .await;
        }
        if !changed.is_empty() {
            self.changed();
        }
        Ok(after)
    }

    /// Disables every enabled user whose `expire_at` has passed, with reason `expired`, and
    /// returns their ids. Run by the coordinator on every pull, so an expired user's sessions are
    /// cut within one pull period plus the push that follows.
    pub async fn expire_due(&self) -> Result<Vec<i64>> {
        let ids = expire_due(&self.ctx.db, util::now_ms()).await?;
        if !ids.is_empty() {
            self.changed();
        }
        Ok(ids)
    }

    /// Resets every user whose scheduled reset has come (see `crate::resets`) and returns their
    /// ids. Run by the coordinator on every pull.
    pub async fn reset_due(&self) -> Result<Vec<i64>> {
        let ids = resets::reset_due(&self.ctx.db, util::now_ms()).await?;
        if !ids.is_empty() {
            self.changed();
        }
        Ok(ids)
    }

    /// Zeroes the usage of each of `ids` now, as a scheduled reset does: users the quota
    /// disabled are enabled again (unless expired), a manual disable stays, and the next
    /// scheduled reset counts from now. All or nothing: an unknown id changes nothing and is
    /// reported. Returns the users as they are after the reset.
    pub async fn reset_usage(&self, ids: &[i64]) -> Result<Vec<User>> {
        self.ctx
            .authorize(Permission::Operate, "user.reset-usage")
            .await?;
        check_bulk(ids)?;
        let txn = crate::db::write_txn(&self.ctx.db).await?;
        let before = UserEntity::find()
            .filter(user::Column::Id.is_in(ids.iter().copied()))
            .all(&txn)
            .await?;
        let tz = resets::settings_zone(&txn).await?;
        let now = util::now_ms();
        let reset = resets::reset_users(&txn, ids, now, &tz).await?;
        if let Some(missing) = ids.iter().find(|id| !reset.contains(id)) {
            return Err(ServiceError::NotFound(format!("user {missing}")));
        }
        settings::touch(&txn).await?;
        let users = UserEntity::find()
            .filter(user::Column::Id.is_in(reset.iter().copied()))
            .order_by_asc(user::Column::Id)
            .all(&txn)
            .await?;
        txn.commit().await?;
        for row in &users {
            tracing::info!(user.id = row.id, "usage reset by an administrator");
            let old = before.iter().find(|b| b.id == row.id);
            self.ctx
                .audit(
                    Entry::new("user.reset-usage")
                        .object("user", Some(row.id), &row.name)
                        .changes(user_changes(old, Some(row))),
                )
                .await;
        }
        self.changed();
        Ok(users)
    }

    /// The user's usage per hour or day in `[from, to)` (see [`history::query`]).
    pub async fn usage_history(
        &self,
        id: i64,
        step: history::Step,
        from: i64,
        to: i64,
    ) -> Result<Vec<history::Point>> {
        self.get(id).await?;
        history::query(&self.ctx.db, history::Subject::User, id, step, from, to).await
    }

    fn changed(&self) {
        self.ctx.events.send(Event::UsersChanged);
        self.ctx.changes.notify();
    }
}

impl UserService {
    /// The user's `ss://` links for every enabled mode.
    pub async fn links(&self, id: i64) -> Result<Vec<crate::links::Link>> {
        let user = self.get(id).await?;
        let s = settings::load(&self.ctx.db).await?;
        let nodes = crate::entity::node::Entity::find()
            .order_by_asc(crate::entity::node::Column::Id)
            .all(&self.ctx.db)
            .await?;
        Ok(crate::links::for_user(&user, &s, &nodes))
    }
}

/// The most users one bulk action names.
pub const MAX_BULK: usize = 10_000;

/// The users `ids` by id, or `NotFound` naming the first that does not exist.
async fn every_user(db: &impl sea_orm::ConnectionTrait, ids: &[i64]) -> Result<Vec<User>> {
    let rows = UserEntity::find()
        .filter(user::Column::Id.is_in(ids.iter().copied()))
        .order_by_asc(user::Column::Id)
        .all(db)
        .await?;
    match ids.iter().find(|id| !rows.iter().any(|r| r.id == **id)) {
        Some(missing) => Err(ServiceError::NotFound(format!("user {missing}"))),
        None => Ok(rows),
    }
}

/// Refuses an empty or oversized list of ids for a bulk action.
fn check_bulk(ids: &[i64]) -> Result<()> {
    if ids.is_empty() {
        return Err(ServiceError::invalid("ids", "must name at least one user"));
    }
    if ids.len() > MAX_BULK {
        return Err(ServiceError::invalid(
            "ids",
            format!("must name at most {MAX_BULK} users"),
        ));
    }
    Ok(())
}

/// Whether `current` is enabled after an edit that sets `enabled` (or leaves it, `None`), and
/// why not, given the limit the edited user has `reached` (see the module doc).
fn status_after(
    current: &User,
    enabled: Option<bool>,
    reached: Option<DisableReason>,
) -> Result<(bool, Option<DisableReason>)> {
    Ok(match (enabled, current.disabled_reason) {
        // Disabling is always the administrator's: no limit lifts it later.
        (Some(false), _) => (false, Some(DisableReason::Manual)),
        (Some(true), _) if !current.enabled => match reached {
            None => (true, None),
            Some(limit) => return Err(limit_blocks_enabling(limit)),
        },
        // Manually disabled: stays so whatever the limits say.
        (_, Some(DisableReason::Manual)) if !current.enabled => {
            (false, Some(DisableReason::Manual))
        }
        // Enabled, or disabled by a limit: the limits decide, now.
        _ => (reached.is_none(), reached),
    })
}

/// The audited fields of a user before and after a change (`None`: created or deleted). The
/// password and subscription secret are recorded as changed, never by value; counters that move
/// on their own (`updated_at`, the next reset) are left out.
fn user_changes(before: Option<&User>, after: Option<&User>) -> Changes {
    Changes::between(
        before,
        after,
        &["password"],
        &["updated_at", "next_reset_at"],
    )
}

/// The refusal of enabling a user whose `limit` is reached, on the field that lifts it.
fn limit_blocks_enabling(limit: DisableReason) -> ServiceError {
    match limit {
        DisableReason::Expired => ServiceError::invalid(
            "expire_at",
            "has passed: set a later expiry (or none) to enable the user",
        ),
        _ => ServiceError::invalid(
            "quota_bytes",
            "is used up: raise the quota (or reset the usage) to enable the user",
        ),
    }
}

/// See [`UserService::expire_due`]; `now` in Unix ms.
pub(crate) async fn expire_due(db: &sea_orm::DatabaseConnection, now: i64) -> Result<Vec<i64>> {
    use sea_orm::sea_query::Expr;
    use sea_orm::QuerySelect;
    let due = || {
        UserEntity::find()
            .select_only()
            .column(user::Column::Id)
            .filter(user::Column::Enabled.eq(true))
            .filter(user::Column::ExpireAt.lte(now))
            .into_tuple::<i64>()
    };
    // Most passes find nobody: look before taking the write lock.
    if due().one(db).await?.is_none() {
        return Ok(Vec::new());
    }
    let txn = crate::db::write_txn(db).await?;
    let ids = due().all(&txn).await?;
    UserEntity::update_many()
        .col_expr(user::Column::Enabled, Expr::value(false))
        .col_expr(
            user::Column::DisabledReason,
            Expr::value(DisableReason::Expired.as_str()),
        )
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .filter(user::Column::Id.is_in(ids.iter().copied()))
        .filter(user::Column::Enabled.eq(true))
        .exec(&txn)
        .await?;
    settings::touch(&txn).await?;
    txn.commit().await?;
    for id in &ids {
        tracing::info!(user.id = id, "user's access expired; disabled");
    }
    Ok(ids)
}
