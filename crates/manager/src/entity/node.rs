//! A node: the spec's Node struct plus the internal keys and ports of its relay and reverse links
//! (generated once, rotated only on request), the config version it last acknowledged, and the
//! secure channel's state: the pinned certificate fingerprint, a different one the node presented,
//! plain HTTP by the operator's choice, a token being rotated in and the node's refused calls.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Push / pull health, with the spec's wire values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum NodeStatus {
    /// Not known yet (the spec's empty string).
    #[sea_orm(string_value = "")]
    #[serde(rename = "")]
    Processing,
    #[sea_orm(string_value = "available")]
    #[serde(rename = "available")]
    Available,
    /// Reached only through the proxy fallback.
    #[sea_orm(string_value = "dirty")]
    #[serde(rename = "dirty")]
    Dirty,
    #[sea_orm(string_value = "unavailable")]
    #[serde(rename = "unavailable")]
    Unavailable,
}

impl NodeStatus {
    /// The spec's wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeStatus::Processing => "",
            NodeStatus::Available => "available",
            NodeStatus::Dirty => "dirty",
            NodeStatus::Unavailable => "unavailable",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "nodes")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Unique; shown in the panel and in end users' server lists (`node-{id}` unless named).
    #[sea_orm(unique)]
    pub name: String,
    pub host: String,
    pub http_port: i32,
    pub http_token: String,
    pub usage_bytes: i64,
    pub push_status: NodeStatus,
    pub pull_status: NodeStatus,
    /// Unix ms of the last successful push (0 = never).
    pub pushed_at: i64,
    /// Unix ms of the last successful pull (0 = never).
    pub pulled_at: i64,
    pub applied_version: Option<String>,
    pub last_error: Option<String>,
    pub relay_key: String,
    pub relay_port: i32,
    pub internal_key: String,
    pub internal_port: i32,
    pub created_at: i64,
    pub updated_at: i64,
    /// The pinned SHA-256 fingerprint of the node's certificate (64 hex digits); `None` until
    /// given at registration or taken on first use.
    pub tls_fingerprint: Option<String>,
    /// A different certificate the node presented (the call was refused), for the operator to
    /// compare before re-pinning.
    pub presented_fingerprint: Option<String>,
    /// The node API is plain HTTP (only when the operator registered it so).
    pub insecure_http: bool,
    /// A token being rotated in: sent to the node, not yet known to be its only token.
    pub pending_token: Option<String>,
    /// The node's own count of refused calls since it started, as of the last pull.
    pub refused_calls: i64,
    /// What a byte through the node counts for its users, in thousandths (1000 = 1.0).
    pub usage_multiplier_permille: i32,
    /// Not stored: the version of the config the manager would push to the node, as of the last
    /// sync pass (which runs right after every change, debounced, and every 10 s) or the node's
    /// last restart ([`DesiredVersions`](crate::DesiredVersions)), to compare with
    /// `applied_version` (they differ = drift: the node does not run its current config yet).
    /// Filled by `NodeService::get`, `list`, `restart` and the other `NodeService` calls that
    /// return a node (`None` before the first pass that saw the node, e.g. right after `create`);
    /// `None` in rows read otherwise.
    #[sea_orm(ignore)]
    pub desired_version: Option<String>,
}

impl Model {
    /// Usage in GB (10^9 bytes), as the spec's `usage` field.
    pub fn usage_gb(&self) -> f64 {
        self.usage_bytes as f64 / 1e9
    }

    /// Base URL of the node API: `https://` unless the node was registered as plain HTTP.
    pub fn base_url(&self) -> String {
        node_base_url(&self.host, self.http_port as u16, !self.insecure_http)
    }

    /// Drift: the node's applied version is not the one the manager would push now
    /// (`false` while `desired_version` is not filled in).
    pub fn has_drift(&self) -> bool {
        self.desired_version
            .as_ref()
            .is_some_and(|d| self.applied_version.as_ref() != Some(d))
    }

    /// Reachable enough to carry traffic: pushed (directly or through the proxy) and not lost.
    pub fn is_healthy(&self) -> bool {
        matches!(self.push_status, NodeStatus::Available | NodeStatus::Dirty)
            && self.pull_status != NodeStatus::Unavailable
    }
}

/// `https://host:port` (`http://` when not `tls`), bracketing IPv6 literals.
pub fn node_base_url(host: &str, port: u16, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    if host.contains(':') {
        format!("{scheme}://[{host}]:{port}")
    } else {
        format!("{scheme}://{host}:{port}")
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
