//! Wire types of the node API (`/v1/configs`, `/v1/stats`, `/v1/info`, `/v1/token`), shared by
//! arch-node and the manager's node client so both sides agree on every field.

use crate::Metadata;
use serde::{Deserialize, Serialize};

/// Response header of `GET /v1/stats`: the node's counter epoch. Counters are cumulative within an
/// epoch; a new epoch starts from zero (after a crash or a wiped data dir).
pub const EPOCH_HEADER: &str = "x-arch-epoch";
/// Response header of `GET /v1/stats`: the version of the config in force (empty when none).
pub const CONFIG_VERSION_HEADER: &str = "x-arch-config-version";
/// Response header of `GET /v1/stats`: how many API calls the node refused (no or a wrong token)
/// since it started, so the manager can record it on every pull.
pub const REFUSED_CALLS_HEADER: &str = "x-arch-refused-calls";
/// Query parameter of `POST /v1/configs`: with `restart=true` the node runs the pushed config
/// rebuilt from scratch even when it is the config in force (the manual restart).
pub const RESTART_PARAM: &str = "restart";

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
    /// API calls refused since the node started (no or a malformed `Authorization`, or a wrong
    /// token). Absent from nodes older than this field: 0.
    #[serde(default)]
    pub refused_calls: u64,
}

/// Body of `POST /v1/token`: the node's next token. The node accepts it next to the current one
/// until the first call made with it, then only it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRotation {
    pub token: String,
}

impl std::fmt::Debug for TokenRotation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRotation")
            .field("token", &"<redacted>")
            .finish()
    }
}

/// Error body of every non-2xx node answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
    /// JSON path of the offending field, for a rejected config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_rotation_never_shows_its_token() {
        let body = TokenRotation {
            token: "0123456789abcdef-secret".into(),
        };
        assert_eq!(
            format!("{body:?}"),
            r#"TokenRotation { token: "<redacted>" }"#
        );
        assert_eq!(
            serde_json::to_string(&body).expect("json"),
            r#"{"token":"0123456789abcdef-secret"}"#
        );
    }

    #[test]
    fn refused_calls_default_to_zero_for_older_nodes() {
        let info: NodeInfo = serde_json::from_str(
            r#"{"name":"arch-node","version":"0.1.0","uptime_seconds":3,"epoch":"e","config_version":null}"#,
        )
        .expect("older info");
        assert_eq!(info.refused_calls, 0);
    }
}
