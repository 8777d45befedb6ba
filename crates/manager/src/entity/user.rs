//! A proxy user. `id` is the `email` in generated configs and names the user's counters.

use rules::{DisableReason, ResetStrategy};
use sea_orm::entity::prelude::*;
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub name: String,
    /// Shadowsocks password (base64 of 16 random bytes: valid for classic and SS-2022 methods).
    pub password: String,
    pub method: String,
    pub enabled: bool,
    /// Why the user is disabled (stored as `manual`, `quota` or `expired`).
    pub disabled_reason: Option<DisableReason>,
    /// 0 means unlimited.
    pub quota_bytes: i64,
    pub usage_bytes: i64,
    /// Unix ms after which the user is disabled as `expired`; `None` = never.
    pub expire_at: Option<i64>,
    /// Milliseconds of access counted from the first counted byte (which then sets `expire_at`).
    pub expire_after_first_use: Option<i64>,
    /// Unix ms of the user's first counted byte.
    pub first_used_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// When the usage is zeroed on its own (at midnight in the settings' time zone).
    pub reset_strategy: ResetStrategy,
    /// The day of the month a `monthly` reset falls on (1–31; a shorter month's last day).
    pub reset_day: i32,
    /// Unix ms of the last usage reset (the creation time until the first).
    pub usage_reset_at: i64,
    /// Unix ms of the next usage reset; `None` = none scheduled.
    pub next_reset_at: Option<i64>,
    /// The secret in the user's subscription URL (`/sub/{secret}`, `/u/{secret}`): 24 random
    /// bytes, base64url (see `services::subscriptions::new_secret`). Never serialised with the user; the
    /// REST API shows the whole URL instead.
    #[sea_orm(unique)]
    #[serde(skip)]
    pub sub_secret: String,
    /// SHA-256 (hex) of `sub_secret`: what a request's secret is looked up by.
    #[sea_orm(unique)]
    #[serde(skip)]
    pub sub_secret_hash: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
