//! Settings: the public host, the four mode ports (0 = mode off), the proxy fallback used when a
//! node cannot be reached directly, the traffic ratio, and the private networks user traffic may
//! reach (none by default: see `xray::cidr`), the base of subscription URLs, and the time zone
//! usage resets follow.

use super::audit::{mask_url_credentials, Changes, Entry};
use super::Ctx;
use crate::entity::settings::{self, Entity as SettingsEntity};
use crate::events::Event;
use crate::{util, Result, ServiceError};
use rules::{input, Permission};
use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, IntoActiveModel, Set};
use serde::{Deserialize, Serialize};

/// The settings as the API and panel see them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub host: String,
    pub ss_direct_port: u16,
    pub ss_relay_port: u16,
    pub ss_reverse_port: u16,
    pub ss_remote_port: u16,
    /// `socks5://…`, `socks5h://…`, `http://…` or empty (no fallback).
    pub proxy_url: String,
    pub traffic_ratio: f64,
    /// Private networks (CIDRs, canonical form) that user traffic may reach; every other private,
    /// loopback, link-local, CGNAT, ULA and multicast destination is refused.
    #[serde(default)]
    pub allowed_private_networks: Vec<String>,
    /// Where subscription URLs point: an absolute `http(s)://` URL without query or fragment
    /// (no trailing slash), e.g. a reverse proxy's; "" = the panel's own scheme, host and port.
    #[serde(default)]
    pub subscription_url_base: String,
    /// The IANA time zone whose midnights usage resets fall on (`UTC` by default).
    #[serde(default = "utc")]
    pub time_zone: String,
}

fn utc() -> String {
    "UTC".to_owned()
}

/// The stored allow-list as networks (entries that no longer parse are skipped).
pub fn allowed_networks(m: &settings::Model) -> Vec<xray::cidr::Cidr> {
    split_networks(&m.allowed_private_networks)
        .filter_map(|n| xray::cidr::Cidr::parse(n).ok())
        .collect()
}

fn split_networks(stored: &str) -> impl Iterator<Item = &str> {
    stored.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// A partial update; absent fields keep their value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    pub host: Option<String>,
    pub ss_direct_port: Option<u16>,
    pub ss_relay_port: Option<u16>,
    pub ss_reverse_port: Option<u16>,
    pub ss_remote_port: Option<u16>,
    pub proxy_url: Option<String>,
    pub traffic_ratio: Option<f64>,
    pub allowed_private_networks: Option<Vec<String>>,
    pub subscription_url_base: Option<String>,
    pub time_zone: Option<String>,
}

impl From<&settings::Model> for Settings {
    fn from(m: &settings::Model) -> Self {
        let port = |p: i32| u16::try_from(p).unwrap_or(0);
        Settings {
            host: m.host.clone(),
            ss_direct_port: port(m.ss_direct_port),
            ss_relay_port: port(m.ss_relay_port),
            ss_reverse_port: port(m.ss_reverse_port),
            ss_remote_port: port(m.ss_remote_port),
            proxy_url: m.proxy_url.clone(),
            traffic_ratio: m.traffic_ratio,
            allowed_private_networks: split_networks(&m.allowed_private_networks)
                .map(str::to_owned)
                .collect(),
            subscription_url_base: m.subscription_url_base.clone(),
            time_zone: m.time_zone.clone(),
        }
    }
}

/// The row, created with defaults on first use.
pub(crate) async fn load(db: &impl ConnectionTrait) -> Result<settings::Model> {
    if let Some(m) = SettingsEntity::find_by_id(1).one(db).await? {
        return Ok(m);
    }
    let row = settings::ActiveModel {
        id: Set(1),
        host: Set("127.0.0.1".to_owned()),
        ss_direct_port: Set(0),
        ss_relay_port: Set(0),
        ss_reverse_port: Set(0),
        ss_remote_port: Set(0),
        proxy_url: Set(String::new()),
        traffic_ratio: Set(1.0),
        allowed_private_networks: Set(String::new()),
        config_updated_at: Set(util::now_ms()),
        subscription_url_base: Set(String::new()),
        time_zone: Set(utc()),
    };
    // Two first callers may race; the loser reads the winner's row.
    if let Err(e) = SettingsEntity::insert(row).exec(db).await {
        tracing::debug!(error = %e, "settings row created concurrently");
    }
    SettingsEntity::find_by_id(1)
        .one(db)
        .await?
        .ok_or_else(|| ServiceError::Internal("settings row missing".into()))
}

/// Marks generated configs as changed now (their `metadata.updated_at`).
pub(crate) async fn touch(db: &impl ConnectionTrait) -> Result<()> {
    let row = load(db).await?;
    let mut am = row.into_active_model();
    am.config_updated_at = Set(util::now_ms());
    am.update(db).await?;
    Ok(())
}

/// The proxy URL by the shared rule, and one the HTTP client can use.
fn validate_proxy(url: &str) -> Result<String> {
    let url = input::proxy_url(url)?;
    if !url.is_empty() && reqwest::Proxy::all(&url).is_err() {
        return Err(ServiceError::invalid(
            "proxy_url",
            "is not a proxy URL the manager can use",
        ));
    }
    Ok(url)
}

/// The subscription URL base in its stored form: "" (the default), or an absolute `http://` /
/// `https://` URL with a host, no credentials, query or fragment, without trailing slash.
pub fn validate_url_base(base: &str) -> Result<String> {
    const FIELD: &str = "subscription_url_base";
    let base = base.trim();
    if base.is_empty() {
        return Ok(String::new());
    }
    let bad = |why: &str| ServiceError::invalid(FIELD, why.to_owned());
    let url = reqwest::Url::parse(base)
        .map_err(|_| bad("must be an absolute http:// or https:// URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(bad("must be an absolute http:// or https:// URL"));
    }
    if url.query().is_some() || url.fragment().is_some() || base.contains(['?', '#']) {
        return Err(bad("must not have a query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not carry a user name or password"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// Checks the merged settings and writes host and proxy URL canonically.
fn validate(s: &mut Settings) -> Result<()> {
    s.host = input::host("host", &s.host)?;
    s.proxy_url = validate_proxy(&s.proxy_url)?;
    input::traffic_ratio(s.traffic_ratio)?;
    s.subscription_url_base = validate_url_base(&s.subscription_url_base)?;
    s.time_zone = input::time_zone(&s.time_zone)?;
    crate::resets::zone(&s.time_zone)?;
    let ports = [
        ("ss_direct_port", s.ss_direct_port),
        ("ss_relay_port", s.ss_relay_port),
        ("ss_reverse_port", s.ss_reverse_port),
        ("ss_remote_port", s.ss_remote_port),
    ];
    for (i, (field, port)) in ports.iter().enumerate() {
        if *port != 0 && ports[..i].iter().any(|(_, p)| p == port) {
            return Err(ServiceError::invalid(
                field,
                format!("port {port} is already used by another mode"),
            ));
        }
    }
    Ok(())
}

/// Reads and updates the settings.
#[derive(Clone)]
pub struct SettingsService {
    pub(crate) ctx: Ctx,
}

impl SettingsService {
    /// The time zones the settings accept, for a choice list ([`crate::resets::zone_names`]).
    pub fn time_zones(&self) -> Vec<String> {
        crate::resets::zone_names()
    }

    pub async fn get(&self) -> Result<Settings> {
        Ok(Settings::from(&load(&self.ctx.db).await?))
    }

    /// Validates the merged settings; on error nothing changes.
    pub async fn update(&self, patch: SettingsPatch) -> Result<Settings> {
        self.ctx
            .authorize(Permission::Administer, "settings.update")
            .await?;
        let txn = crate::db::write_txn(&self.ctx.db).await?;
        let row = load(&txn).await?;
        let mut s = Settings::from(&row);
        if let Some(v) = patch.host {
            s.host = v;
        }
        if let Some(v) = patch.proxy_url {
            s.proxy_url = v;
        }
        s.ss_direct_port = patch.ss_direct_port.unwrap_or(s.ss_direct_port);
        s.ss_relay_port = patch.ss_relay_port.unwrap_or(s.ss_relay_port);
        s.ss_reverse_port = patch.ss_reverse_port.unwrap_or(s.ss_reverse_port);
        s.ss_remote_port = patch.ss_remote_port.unwrap_or(s.ss_remote_port);
        s.traffic_ratio = patch.traffic_ratio.unwrap_or(s.traffic_ratio);
        if let Some(v) = patch.allowed_private_networks {
            s.allowed_private_networks = input::networks(&v)?;
        }
        if let Some(v) = patch.subscription_url_base {
            s.subscription_url_base = v;
        }
        if let Some(v) = patch.time_zone {
            s.time_zone = v;
        }
        validate(&mut s)?;
        let before = Settings::from(&row);
        if s == before {
            return Ok(s);
        }
        // The URL base, the ratio shown to users and the resets' time zone are not in generated
        // configs: changing only those leaves the configs as they are.
        let zone_changed = s.time_zone != before.time_zone;
        let configs_changed = Settings {
            subscription_url_base: s.subscription_url_base.clone(),
            traffic_ratio: s.traffic_ratio,
            time_zone: s.time_zone.clone(),
            ..before.clone()
        } != s;
        let mut am = row.into_active_model();
        am.host = Set(s.host.clone());
        am.ss_direct_port = Set(s.ss_direct_port.into());
        am.ss_relay_port = Set(s.ss_relay_port.into());
        am.ss_reverse_port = Set(s.ss_reverse_port.into());
        am.ss_remote_port = Set(s.ss_remote_port.into());
        am.proxy_url = Set(s.proxy_url.clone());
        am.traffic_ratio = Set(s.traffic_ratio);
        am.allowed_private_networks = Set(s.allowed_private_networks.join(","));
        am.subscription_url_base = Set(s.subscription_url_base.clone());
        am.time_zone = Set(s.time_zone.clone());
        if configs_changed {
            am.config_updated_at = Set(util::now_ms());
        }
        am.update(&txn).await?;
        if zone_changed {
            let tz = crate::resets::zone(&s.time_zone)?;
            crate::resets::reschedule_all(&txn, util::now_ms(), &tz).await?;
        }
        txn.commit().await?;
        tracing::info!(host = %s.host, direct = s.ss_direct_port, relay = s.ss_relay_port,
            reverse = s.ss_reverse_port, remote = s.ss_remote_port,
            subscription_url_base = %s.subscription_url_base, time_zone = %s.time_zone,
            "settings updated");
        let masked = |s: &Settings| Settings {
            proxy_url: mask_url_credentials(&s.proxy_url),
            ..s.clone()
        };
        self.ctx
            .audit(
                Entry::new("settings.update")
                    .object("settings", None, "settings")
                    .changes(Changes::between(masked(&before), masked(&s), &[], &[])),
            )
            .await;
        self.ctx.events.send(Event::SettingsChanged);
        if configs_changed {
            self.ctx.changes.notify();
        }
        Ok(s)
    }
}
