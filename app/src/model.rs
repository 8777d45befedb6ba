//! Data that crosses between the server and the browser: the panel's own serde structs.
//!
//! The `manager` crate is server-only, so nothing of it may appear here; `crate::ssr` converts
//! manager types into these. What both sides must spell the same (modes, disable reasons, live
//! events) comes from the wasm-safe `rules` crate. Node tokens are never part of a view — the token of a new node is
//! returned once, in [`CreatedNode`].

pub use rules::event::{NodeLive, UserLive};
pub use rules::{DisableReason, Mode, ResetStrategy};
use serde::{Deserialize, Serialize};

/// The signed-in administrator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminView {
    pub id: i64,
    pub username: String,
    pub role: rules::Role,
    /// Unix ms.
    pub created_at: i64,
}

/// One node as the nodes table shows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeView {
    pub id: i64,
    /// Unique; shown in end users' server lists.
    pub name: String,
    pub host: String,
    pub http_port: u16,
    pub usage_bytes: i64,
    /// `""` (processing), `available`, `dirty` or `unavailable`.
    pub push_status: String,
    /// `""` (processing), `available` or `unavailable`.
    pub pull_status: String,
    /// Unix ms of the last successful push, 0 = never.
    pub pushed_at: i64,
    /// Unix ms of the last successful pull, 0 = never.
    pub pulled_at: i64,
    pub applied_version: Option<String>,
    pub last_error: Option<String>,
    /// The pinned certificate fingerprint (64 lowercase hex digits); `None` until pinned, and
    /// always for a plain HTTP node.
    pub tls_fingerprint: Option<String>,
    /// A different certificate the node presented: its calls are refused until it is re-pinned.
    pub presented_fingerprint: Option<String>,
    /// The node API is plain HTTP (`arch-node --insecure-http`), not protected.
    pub insecure_http: bool,
    /// The node's refused calls since it started, as of the last pull.
    pub refused_calls: i64,
    /// A token rotation is under way (the token itself is never part of a view).
    pub token_rotation_pending: bool,
    /// What a byte through the node counts for its users, as typed (`1`, `1.5`, `0.125`).
    #[serde(default = "one")]
    pub usage_multiplier: String,
    /// The version of the config the manager would push to the node now.
    #[serde(default)]
    pub desired_version: Option<String>,
    /// The node does not run its current config yet (applied ≠ desired).
    #[serde(default)]
    pub drift: bool,
}

fn one() -> String {
    "1".to_owned()
}

/// A node that was just added. `token` is set only when the manager generated it: it is shown
/// once and must be given to `arch-node serve --token`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedNode {
    pub node: NodeView,
    pub token: Option<String>,
}

/// An API token as the panel lists it (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenView {
    pub id: i64,
    pub name: String,
    pub role: rules::Role,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms of the last use (to the minute), if any.
    pub last_used_at: Option<i64>,
}

/// A token just created: the secret is shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedToken {
    pub token: TokenView,
    pub secret: String,
}

/// What a successful connection check learned about a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCheck {
    /// Human-readable summary (version, applied config) of the node's `/v1/info`.
    pub summary: String,
    /// The fingerprint of the certificate the node presented (64 lowercase hex digits), for the
    /// administrator to compare with the one arch-node printed; `None` over plain HTTP.
    #[serde(default)]
    pub fingerprint: Option<String>,
}

/// The add-node form.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeForm {
    /// Empty when adding = `node-{id}`; when editing, the new name.
    #[serde(default)]
    pub name: String,
    pub host: String,
    pub http_port: u16,
    /// Empty = let the manager generate one.
    pub http_token: String,
    /// The certificate fingerprint arch-node printed; empty = pin the certificate the node
    /// presents now. Only read when adding a node.
    #[serde(default)]
    pub tls_fingerprint: String,
    /// The node API is plain HTTP (`arch-node --insecure-http`). Only read when adding a node.
    #[serde(default)]
    pub insecure_http: bool,
    /// What a byte through the node counts for its users (0–100, up to three decimals);
    /// empty = 1 when adding, unchanged when editing.
    #[serde(default)]
    pub usage_multiplier: String,
}

/// One user as the users table shows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UserView {
    pub id: i64,
    pub name: String,
    pub enabled: bool,
    pub disabled_reason: Option<DisableReason>,
    /// 0 = unlimited.
    pub quota_bytes: i64,
    pub usage_bytes: i64,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms when access ends; `None` = never (or a first-use clock not started yet).
    #[serde(default)]
    pub expire_at: Option<i64>,
    /// Ms of access from the first counted byte.
    #[serde(default)]
    pub expire_after_first_use: Option<i64>,
    /// Unix ms of the first counted byte.
    #[serde(default)]
    pub first_used_at: Option<i64>,
    /// When the usage is zeroed on its own.
    #[serde(default)]
    pub reset_strategy: ResetStrategy,
    /// The day of the month of a monthly reset.
    #[serde(default = "first_day")]
    pub reset_day: i32,
    /// Unix ms of the next scheduled reset.
    #[serde(default)]
    pub next_reset_at: Option<i64>,
}

fn first_day() -> i32 {
    1
}

/// Which users the users page lists: its URL parameters, as typed (the manager's
/// `UserQuery::from_params` reads and checks them, as for `GET /v1/users`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UsersQuery {
    /// A case-insensitive substring of the name; empty = any.
    #[serde(default)]
    pub q: String,
    /// `enabled`, `disabled`, `quota`, `expired`, `manual`; empty = every user.
    #[serde(default)]
    pub status: String,
    /// `id`, `name`, `usage`, `created`, `-` first for descending; empty = by id.
    #[serde(default)]
    pub sort: String,
    /// The cursor of the page to show; empty = the first page.
    #[serde(default)]
    pub after: String,
    /// Users per page (1–500); empty = 50.
    #[serde(default)]
    pub limit: String,
}

impl UsersQuery {
    /// The query as URL parameters (empty ones left out), e.g. `q=ann&sort=-usage`.
    pub fn to_params(&self) -> Vec<(&'static str, String)> {
        [
            ("q", &self.q),
            ("status", &self.status),
            ("sort", &self.sort),
            ("after", &self.after),
            ("limit", &self.limit),
        ]
        .into_iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| (k, v.clone()))
        .collect()
    }

    /// `/users` with this query, percent-encoded.
    pub fn href(&self) -> String {
        use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
        let pairs: Vec<String> = self
            .to_params()
            .into_iter()
            .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v.trim(), NON_ALPHANUMERIC)))
            .collect();
        if pairs.is_empty() {
            "/users".to_owned()
        } else {
            format!("/users?{}", pairs.join("&"))
        }
    }
}

/// One page of the users list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsersPage {
    pub users: Vec<UserView>,
    /// How many users match the filters, on every page.
    pub total: u64,
    /// The cursor of the next page, if there is one.
    pub next: Option<String>,
}

/// A user's expiry as the user page edits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserAccess {
    /// Unix ms; `None` = never.
    pub expire_at: Option<i64>,
    /// Ms from the first counted byte; `None` = no such clock.
    pub expire_after_first_use: Option<i64>,
}

/// One client link of a user, ready to show.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LinkView {
    pub mode: Mode,
    /// For remote links, the node they point at.
    pub node_id: Option<i64>,
    /// Human label: "Direct", "Remote via node 2 (203.0.113.7)", …
    pub label: String,
    /// The `ss://` URL (it contains the user's password).
    pub url: String,
    /// The URL as an inline `<svg>` QR code, rendered on the server.
    pub qr_svg: Option<String>,
}

/// A user's page: the user and their links.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserDetail {
    pub user: UserView,
    pub links: Vec<LinkView>,
}

/// The create-user form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewUserForm {
    pub name: String,
    /// 0 = unlimited.
    pub quota_bytes: i64,
    pub enabled: bool,
}

/// The edit-user form (the table edits quota and enabled in place).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserEdit {
    pub quota_bytes: i64,
    pub enabled: bool,
}

/// The settings page, both as shown and as submitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingsView {
    pub host: String,
    pub ss_direct_port: u16,
    pub ss_relay_port: u16,
    pub ss_reverse_port: u16,
    pub ss_remote_port: u16,
    /// `socks5://…` or `http://…`; empty = no fallback proxy.
    pub proxy_url: String,
    pub traffic_ratio: f64,
    /// Private networks user traffic may reach (CIDRs); empty = none.
    #[serde(default)]
    pub allowed_private_networks: Vec<String>,
    /// Where subscription URLs point (`https://sub.example.com`); empty = the panel's own address.
    #[serde(default)]
    pub subscription_url_base: String,
    /// The IANA time zone whose midnights usage resets fall on.
    #[serde(default = "utc")]
    pub time_zone: String,
}

fn utc() -> String {
    "UTC".to_owned()
}

/// Whose usage history a chart shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UsageOf {
    User(i64),
    Node(i64),
}

/// The bucket size of a usage chart: the last 24 hours by hour, or the last 30 days by day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UsageStep {
    #[default]
    Hour,
    Day,
}

impl UsageStep {
    /// How many buckets a chart of this step shows.
    pub fn buckets(self) -> i64 {
        match self {
            UsageStep::Hour => 24,
            UsageStep::Day => 30,
        }
    }
}

/// One bucket of a usage chart: its start (Unix ms), the bytes counted in it, and its start for
/// people in the series' zone (`2026-12-01 13:30` by hour, `2026-12-01` by day).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UsagePoint {
    pub at: i64,
    pub bytes: i64,
    pub label: String,
}

/// A usage chart's data: every bucket of the period, oldest first (empty buckets are 0). `zone`
/// is the time zone of the labels: the settings' zone for hours; `UTC` for days, which the
/// manager keeps as UTC days.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UsageSeries {
    pub step: UsageStep,
    pub zone: String,
    pub points: Vec<UsagePoint>,
}

impl NodeView {
    /// This node with the live fields of `live` applied.
    pub fn with_live(mut self, live: &NodeLive) -> Self {
        self.push_status.clone_from(&live.push_status);
        self.pull_status.clone_from(&live.pull_status);
        self.pushed_at = live.pushed_at;
        self.pulled_at = live.pulled_at;
        self.usage_bytes = live.usage_bytes;
        self.applied_version.clone_from(&live.applied_version);
        self.desired_version.clone_from(&live.desired_version);
        self.drift = self
            .desired_version
            .as_ref()
            .is_some_and(|d| self.applied_version.as_ref() != Some(d));
        self.last_error.clone_from(&live.last_error);
        self.tls_fingerprint.clone_from(&live.tls_fingerprint);
        self.presented_fingerprint
            .clone_from(&live.presented_fingerprint);
        self.refused_calls = live.refused_calls;
        self.token_rotation_pending = live.token_rotation_pending;
        self
    }
}

impl UserView {
    /// This user with the live fields of `live` applied.
    pub fn with_live(mut self, live: &UserLive) -> Self {
        self.usage_bytes = live.usage_bytes;
        self.enabled = live.enabled;
        self
    }
}

/// The dashboard: users by state, traffic today and this month, node health, the last 24 hours
/// of traffic and the last config pushes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DashboardView {
    pub users_total: u64,
    /// Enabled users.
    pub users_active: u64,
    pub users_disabled: u64,
    /// Disabled users per reason, every reason listed (0 included).
    pub disabled_by: Vec<(DisableReason, u64)>,
    /// All users' bytes since today's midnight in `time_zone`.
    pub traffic_today: i64,
    /// All users' bytes since this month's first midnight in `time_zone`.
    pub traffic_month: i64,
    /// The settings' IANA time zone.
    pub time_zone: String,
    pub nodes_total: u64,
    pub nodes_healthy: u64,
    pub nodes_unhealthy: u64,
    pub nodes_drift: u64,
    /// All users' traffic per hour over the last 24 hours.
    pub hourly: UsageSeries,
    /// The last config pushes, newest first.
    pub pushes: Vec<PushView>,
}

/// A node's last config push as the dashboard lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushView {
    pub node_id: i64,
    pub name: String,
    /// Unix ms of the last successful push, 0 = never.
    pub pushed_at: i64,
    /// `""` (processing), `available`, `dirty` or `unavailable`.
    pub push_status: String,
    pub applied_version: Option<String>,
    /// The node does not run its current config yet.
    pub drift: bool,
    pub last_error: Option<String>,
}

/// The audit log filters of the audit page, as URL parameters (empty = not set).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AuditFilter {
    pub action: String,
    pub actor: String,
    /// An entry id: show entries older than it.
    pub before: String,
}

impl AuditFilter {
    /// The parameters that are set, as the manager's `AuditQuery::from_params` reads them.
    pub fn to_params(&self) -> Vec<(&'static str, String)> {
        [
            ("action", &self.action),
            ("actor", &self.actor),
            ("before", &self.before),
        ]
        .into_iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| (k, v.trim().to_owned()))
        .collect()
    }

    /// The audit page's URL for these filters.
    pub fn href(&self) -> String {
        use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
        let query: Vec<String> = self
            .to_params()
            .iter()
            .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, NON_ALPHANUMERIC)))
            .collect();
        if query.is_empty() {
            "/audit".to_owned()
        } else {
            format!("/audit?{}", query.join("&"))
        }
    }
}

/// One changed field of an audit entry, its values as JSON text (a secret: `before` empty and
/// `after` "(changed)").
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChangeView {
    pub field: String,
    pub before: String,
    pub after: String,
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AuditView {
    pub id: i64,
    /// Unix ms.
    pub at: i64,
    pub actor_kind: String,
    pub actor_name: String,
    pub address: Option<String>,
    pub action: String,
    pub object_kind: Option<String>,
    pub object_id: Option<i64>,
    pub object_name: Option<String>,
    pub changes: Vec<ChangeView>,
    /// `ok`, `failed` or `refused`.
    pub outcome: String,
}

/// One page of the audit log and the id to read older entries from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPageView {
    pub entries: Vec<AuditView>,
    pub next: Option<i64>,
}
