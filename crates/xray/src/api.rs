//! Wire types of the node API (`/v1/configs`, `/v1/stats`, `/v1/info`), shared by arch-node and the
//! manager's node client so both sides agree on every field.

use crate::Metadata;
use serde::{Deserialize, Serialize};

/// Response header of `GET /v1/stats`: the node's counter epoch. Counters are cumulative within an
/// epoch; a new epoch starts from zero (after a crash or a wiped data dir).
pub const EPOCH_HEADER: &str = "x-arch-epoch";
/// Response header of `GET /v1/stats`: the version of the config in force (empty when none).
pub const CONFIG_VERSION_HEADER: &str = "x-arch-config-version";

/// One counter, as Xray's StatsService reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stat {
    pub name: String,
    #[serde(default)]
    pub value: u64,
}

/// What the node runs: answer of `POST /v1/configs` and `GET /v1/configs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigState {
    /// Version of the config in force; `None` before the first push.
    pub version: Option<String>,
    pub metadata: Option<Metadata>,
    /// Unix ms when it was applied.
    pub applied_at: Option<i64>,
    /// False when the push changed nothing (same version).
    #[serde(default)]
    pub changed: bool,
}

/// `GET /v1/info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub name: String,
    pub version: String,
    pub uptime_seconds: u64,
    pub epoch: String,
    pub config_version: Option<String>,
}

/// Error body of every non-2xx node answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
    /// JSON path of the offending field, for a rejected config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}
