//! The single settings row (id 1): public host, the four mode ports (0 = off), proxy fallback,
//! traffic ratio, the subscription URL base, the resets' time zone, and when the generated configs last changed.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "settings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i64,
    pub host: String,
    pub ss_direct_port: i32,
    pub ss_relay_port: i32,
    pub ss_reverse_port: i32,
    pub ss_remote_port: i32,
    pub proxy_url: String,
    pub traffic_ratio: f64,
    /// Private networks open to user traffic: canonical CIDRs, comma-separated ("" = none).
    pub allowed_private_networks: String,
    /// Unix ms of the last change that affects generated configs (their `metadata.updated_at`).
    pub config_updated_at: i64,
    /// Where subscription URLs point (`https://sub.example.org`, no trailing slash); "" = the
    /// panel's own scheme, host and port.
    pub subscription_url_base: String,
    /// The IANA time zone whose midnights usage resets fall on.
    pub time_zone: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
