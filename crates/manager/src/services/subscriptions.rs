//! Subscriptions: each user's secret, the URLs built from it, and the profile a client app or
//! the profile page reads.
//!
//! - **Secret**: 24 bytes from the OS's generator (192 bits), base64url without padding
//!   ([`new_secret`]). Stored with its SHA-256; a request's secret is looked up by the hash of
//!   what it carries ([`SubscriptionService::find`]), so the database compares digests and its
//!   timing says nothing about how much of a guessed secret was right; the match is then
//!   confirmed in constant time. A known and an unknown secret cost the same queries: the
//!   lookup, the settings and the node list are loaded either way.
//! - **URLs**: `{base}/sub/{secret}` and `{base}/u/{secret}`, `base` being the setting
//!   `subscription_url_base` or, when it is empty, the panel's own
//!   `{scheme}://{settings.host}:{port}` ([`PublicPanel`], told by the server at start).
//! - **Rotation** ([`SubscriptionService::rotate`]) replaces the secret: the old URL is unknown
//!   from the moment the transaction commits.
//! - **Rate limit** per source address ([`SubscriptionService::allow`]): a token bucket of
//!   [`RATE_BURST`] requests refilled at [`RATE_PER_MINUTE`] a minute, bounded memory.

use super::{settings, users::User, Ctx};
use crate::entity::{node, settings as settings_entity, user};
use crate::{links, util, Result, ServiceError};
use base64::Engine as _;
use rand::RngCore as _;
use rules::{DisableReason, Mode};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, Set,
};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};

/// Requests per minute one source address may make to `/sub` and `/u` in the long run.
pub const RATE_PER_MINUTE: u32 = 30;
/// Requests one source address may make at once before the rate applies.
pub const RATE_BURST: u32 = 10;
/// Addresses tracked at most; beyond it, full buckets are forgotten first, then every bucket.
const MAX_ADDRESSES: usize = 10_000;
/// How often clients should refresh, in hours (`profile-update-interval`).
pub const UPDATE_INTERVAL_HOURS: u32 = 12;

/// A new secret and the SHA-256 (hex) it is stored and looked up by: 24 random bytes as
/// base64url without padding, 32 characters of `A–Z a–z 0–9 - _`.
pub fn new_secret() -> (String, String) {
    let mut buf = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf);
    let hash = util::sha256_hex(&secret);
    (secret, hash)
}

/// How the panel is reached, for the default URL base: `https` and the listening port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicPanel {
    pub https: bool,
    pub port: u16,
}

impl Default for PublicPanel {
    fn default() -> Self {
        PublicPanel {
            https: false,
            port: 8080,
        }
    }
}

/// A user's subscription as the profile page and `/sub` serve it.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub user: User,
    /// What every format renders; no server for a disabled user.
    pub profile: subscription::Profile,
    /// Modes of `profile.servers`, in the same order.
    pub modes: Vec<Mode>,
    /// `{base}/sub/{secret}`.
    pub url: String,
    /// `{base}/u/{secret}`.
    pub page_url: String,
}

impl Subscription {
    /// Why the user is disabled, in words; `None` when active.
    pub fn disabled_because(&self) -> Option<&'static str> {
        if self.user.enabled {
            return None;
        }
        Some(match self.user.disabled_reason {
            Some(DisableReason::Quota) => "the traffic quota is used up",
            Some(DisableReason::Expired) => "the access period has ended",
            _ => "disabled by the administrator",
        })
    }
}

/// A request over the rate limit: retry after this many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub u64);

/// Per-address token buckets (IPv6 by /64).
#[derive(Debug, Default)]
struct Buckets {
    /// address → (tokens, last refill in ms)
    map: HashMap<IpAddr, (f64, i64)>,
}

impl Buckets {
    fn take(&mut self, ip: IpAddr, now: i64) -> std::result::Result<(), RetryAfter> {
        let per_ms = f64::from(RATE_PER_MINUTE) / 60_000.0;
        let burst = f64::from(RATE_BURST);
        if self.map.len() >= MAX_ADDRESSES && !self.map.contains_key(&ip) {
            self.map
                .retain(|_, (tokens, at)| *tokens + (now - *at) as f64 * per_ms < burst);
            if self.map.len() >= MAX_ADDRESSES {
                self.map.clear();
            }
        }
        let (tokens, at) = self.map.entry(ip).or_insert((burst, now));
        *tokens = (*tokens + (now - *at).max(0) as f64 * per_ms).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            let wait_ms = (1.0 - *tokens) / per_ms;
            Err(RetryAfter((wait_ms / 1000.0).ceil().max(1.0) as u64))
        }
    }
}

/// The key of a source address: IPv4 as is, IPv6 by its /64.
fn address_key(ip: IpAddr) -> IpAddr {
    match crate::client_addr::canonical(ip) {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & (u128::MAX << 64)).into()),
        v4 => v4,
    }
}

/// Subscription secrets, URLs and profiles.
#[derive(Clone)]
pub struct SubscriptionService {
    pub(crate) ctx: Ctx,
    panel: Arc<RwLock<PublicPanel>>,
    limits: Arc<Mutex<Buckets>>,
}

impl SubscriptionService {
    pub(crate) fn new(ctx: Ctx) -> SubscriptionService {
        SubscriptionService {
            ctx,
            panel: Arc::default(),
            limits: Arc::default(),
        }
    }

    /// Tells the service how the panel is reached (the default URL base); the server calls it
    /// once it listens.
    pub fn set_public_panel(&self, panel: PublicPanel) {
        if let Ok(mut p) = self.panel.write() {
            *p = panel;
        }
    }

    /// The base of subscription URLs by the settings `s`: the setting, else the panel's own.
    pub fn url_base(&self, s: &settings_entity::Model) -> String {
        if !s.subscription_url_base.is_empty() {
            return s.subscription_url_base.clone();
        }
        let p = self.panel.read().map(|p| *p).unwrap_or_default();
        let scheme = if p.https { "https" } else { "http" };
        let host = if s.host.contains(':') {
            format!("[{}]", s.host)
        } else {
            s.host.clone()
        };
        format!("{scheme}://{host}:{}", p.port)
    }

    /// The subscription URL of every user in `users`, in order.
    pub async fn urls(&self, users: &[User]) -> Result<Vec<String>> {
        let s = settings::load(&self.ctx.db).await?;
        let base = self.url_base(&s);
        Ok(users
            .iter()
            .map(|u| format!("{base}/sub/{}", u.sub_secret))
            .collect())
    }

    /// The subscription URL of one user.
    pub async fn url(&self, user: &User) -> Result<String> {
        let mut urls = self.urls(std::slice::from_ref(user)).await?;
        urls.pop()
            .ok_or_else(|| ServiceError::Internal("no subscription URL".into()))
    }

    /// Gives user `id` a new secret; the old one is unknown once this returns.
    pub async fn rotate(&self, id: i64) -> Result<User> {
        self.ctx
            .authorize(rules::Permission::Operate, "user.rotate-subscription")
            .await?;
        let txn = crate::db::write_txn(&self.ctx.db).await?;
        let current = user::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("user {id}")))?;
        let (secret, hash) = new_secret();
        let mut am = current.into_active_model();
        am.sub_secret = Set(secret);
        am.sub_secret_hash = Set(hash);
        am.updated_at = Set(util::now_ms());
        let row = am.update(&txn).await?;
        txn.commit().await?;
        tracing::info!(user.id = id, "subscription secret rotated");
        self.ctx
            .audit(
                super::audit::Entry::new("user.rotate-subscription")
                    .object("user", Some(id), &row.name)
                    .changes(super::audit::Changes::new().secret("subscription_url")),
            )
            .await;
        self.ctx.events.send(crate::events::Event::UsersChanged);
        Ok(row)
    }

    /// Whether a request from `ip` may be answered now (`None`: no address known, allowed).
    pub fn allow(&self, ip: Option<IpAddr>) -> std::result::Result<(), RetryAfter> {
        let Some(ip) = ip else { return Ok(()) };
        match self.limits.lock() {
            Ok(mut b) => b.take(address_key(ip), util::now_ms()),
            Err(_) => Ok(()),
        }
    }

    /// The subscription whose secret is `secret`, or `None`. Known and unknown secrets cost the
    /// same work (see the module doc); the secret itself is never logged.
    pub async fn find(&self, secret: &str) -> Result<Option<Subscription>> {
        let hash = util::sha256_hex(secret);
        let found = user::Entity::find()
            .filter(user::Column::SubSecretHash.eq(hash))
            .one(&self.ctx.db)
            .await?;
        let s = settings::load(&self.ctx.db).await?;
        let nodes = node::Entity::find()
            .order_by_asc(node::Column::Id)
            .all(&self.ctx.db)
            .await?;
        let Some(user) = found.filter(|u| util::secrets_equal(&u.sub_secret, secret)) else {
            return Ok(None);
        };
        Ok(Some(self.build(user, &s, &nodes)))
    }

    fn build(&self, user: User, s: &settings_entity::Model, nodes: &[node::Model]) -> Subscription {
        let healthy: Vec<node::Model> = nodes.iter().filter(|n| n.is_healthy()).cloned().collect();
        let entries = if user.enabled {
            links::entries(&user, s, &healthy)
        } else {
            Vec::new()
        };
        let base = self.url_base(s);
        let url = format!("{base}/sub/{}", user.sub_secret);
        let page_url = format!("{base}/u/{}", user.sub_secret);
        // The traffic ratio scales what the user is shown, usage and quota alike (enforcement
        // counts real bytes): a ratio of 2 shows 1 GB used of a 10 GB quota as 2 GB of 20 GB.
        let shown = |bytes: i64| shown_bytes(bytes, s.traffic_ratio);
        let quota = Some(shown(user.quota_bytes)).filter(|q| *q > 0);
        let profile = subscription::Profile {
            title: format!("Arch · {}", user.name),
            servers: entries.iter().map(|e| e.server.clone()).collect(),
            usage: subscription::Usage {
                used: shown(user.usage_bytes),
                quota,
                expire_at_ms: user.expire_at,
            },
            update_interval_hours: UPDATE_INTERVAL_HOURS,
            page_url: Some(page_url.clone()),
        };
        Subscription {
            modes: entries.iter().map(|e| e.mode).collect(),
            user,
            profile,
            url,
            page_url,
        }
    }
}

/// `bytes` as a user is shown them at traffic ratio `ratio` (rounded; 0 for negative input).
fn shown_bytes(bytes: i64, ratio: f64) -> u64 {
    let bytes = u64::try_from(bytes).unwrap_or(0);
    if ratio == 1.0 {
        return bytes;
    }
    // `as` saturates: a product beyond u64 shows as u64::MAX.
    (bytes as f64 * ratio).round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ratio_scales_what_users_are_shown() {
        assert_eq!(shown_bytes(1_000_000_000, 1.0), 1_000_000_000);
        assert_eq!(shown_bytes(1_000_000_000, 2.0), 2_000_000_000);
        assert_eq!(shown_bytes(3, 0.5), 2);
        assert_eq!(shown_bytes(-5, 2.0), 0);
        assert_eq!(shown_bytes(i64::MAX, 1000.0), u64::MAX);
        // Exact at ratio 1 even where f64 is not.
        assert_eq!(
            shown_bytes(9_007_199_254_740_993, 1.0),
            9_007_199_254_740_993
        );
    }

    #[test]
    fn secrets_are_long_url_safe_and_distinct() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let (secret, hash) = new_secret();
            assert_eq!(secret.len(), 32);
            assert!(secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            assert_eq!(hash, util::sha256_hex(&secret));
            assert_eq!(
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(&secret)
                    .expect("base64url")
                    .len(),
                24
            );
            assert!(seen.insert(secret));
        }
    }

    #[test]
    fn the_rate_limit_allows_a_burst_then_the_rate() {
        let mut b = Buckets::default();
        let ip: IpAddr = "203.0.113.7".parse().expect("ip");
        let other: IpAddr = "203.0.113.8".parse().expect("ip");
        for _ in 0..RATE_BURST {
            assert_eq!(b.take(ip, 0), Ok(()));
        }
        assert_eq!(b.take(ip, 0), Err(RetryAfter(2)));
        assert_eq!(b.take(other, 0), Ok(()));
        // One token comes back every 2 s (30 a minute).
        assert_eq!(b.take(ip, 2_000), Ok(()));
        assert_eq!(b.take(ip, 2_000), Err(RetryAfter(2)));
        // One IPv6 host's /64 shares a bucket.
        let a: IpAddr = "2001:db8::1".parse().expect("ip");
        let c: IpAddr = "2001:db8::2".parse().expect("ip");
        assert_eq!(address_key(a), address_key(c));
    }

    #[test]
    fn the_rate_limit_memory_is_bounded() {
        let mut b = Buckets::default();
        for i in 0..(MAX_ADDRESSES as u32 + 5) {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(i));
            assert_eq!(b.take(ip, 0), Ok(()));
            assert!(b.map.len() <= MAX_ADDRESSES);
        }
    }
}
