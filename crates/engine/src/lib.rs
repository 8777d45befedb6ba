//! The Arch data plane: runs an [`xray::Config`].
//!
//! [`Engine`] serves Shadowsocks inbounds (classic AEAD with many users per port, each user with
//! their own cipher if the config says so; SS-2022 with EIH users and one method per port),
//! routes their TCP streams and UDP datagrams to freedom / blackhole / Shadowsocks outbounds or
//! through reverse tunnels (bridges and portals; UDP crosses Shadowsocks hops and tunnels as
//! UDP-over-TCP), and keeps Xray-named traffic counters. A new config is
//! applied hot: unchanged listeners and the live connections the new config still allows are
//! kept. Built on the `shadowsocks` crate's stream types; every crate stream written by generic
//! code is wrapped in [`WriteStable`].
//!
//! Module map: `inbound` (users and keys of a port), `tcp` / `udp` (serving a port), `route`
//! (rules, networks, balancers, health, reverse domains), `outbound` (dialing and relaying),
//! `reverse` (bridge / portal), `uot` (UDP-over-TCP), `guard` (replay filter, hint cache, probe
//! limiter), `persist` (the replay filter on disk), `io` (stream adapters), `stats` (counters),
//! `apply` (diffing configs).
//!
//! User traffic is routed by `Shared::route_user`: reverse domains are never destinations,
//! rules with networks judge a name by what it resolves to, and freedom dials exactly those
//! addresses. A reverse tunnel is registered only by a connection authenticated with the key of
//! an inbound that a rule sends straight to the portal.
//!
//! Limits: every counter is kept whatever the config's `stats` / `policy` say; a live connection
//! is not re-routed when only the routing of a new config changes (it is closed only when its
//! user or inbound goes away).

mod apply;
mod guard;
mod inbound;
mod io;
mod outbound;
mod persist;
#[cfg(test)]
mod restart_tests;
mod reverse;
mod route;
mod stats;
mod tcp;
mod udp;
mod uot;

pub use io::WriteStable;
pub use persist::{ReplayFile, SAVE_EVERY as REPLAY_SAVE_EVERY};

use guard::{HintCache, ProbeLimiter, SaltFilter};
use inbound::InboundRuntime;
use route::{OutboundRt, Router};
use shadowsocks::config::ServerType;
use shadowsocks::context::{Context, SharedContext};
use shadowsocks::relay::socks5::Address;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Longest wait for a client's Shadowsocks request header (and a bridge's hello).
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest wait for an outbound connection.
pub(crate) const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// Shortest life of a connection that has not authenticated: it is read and ignored until the
/// peer closes or a deadline drawn from `DRAIN_MIN .. DRAIN_MIN + DRAIN_SPREAD` after accept,
/// whatever it sent, so a prober learns nothing from when or how we close.
pub(crate) const DRAIN_MIN: Duration = Duration::from_secs(60);
/// Width of the random part of that deadline.
pub(crate) const DRAIN_SPREAD: Duration = Duration::from_secs(60);
/// Most refused connections held open at once; beyond this a refused peer is closed at once
/// (so a flood of probes cannot exhaust file descriptors).
pub(crate) const MAX_DRAINING: usize = 4096;
/// How long [`Engine::shutdown`] waits for the sessions it ended to finish.
const SESSIONS_STOP: Duration = Duration::from_secs(5);

/// Why a config could not be applied. When `apply` returns one, nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The config fails `xray` validation.
    #[error(transparent)]
    Invalid(#[from] xray::ValidationError),
    /// A listening socket could not be opened.
    #[error("inbound `{tag}`: cannot bind {network} port {port}: {source}")]
    Bind {
        tag: String,
        port: u16,
        network: &'static str,
        source: std::io::Error,
    },
    /// A key or password of an inbound is unusable.
    #[error("inbound `{tag}`: {message}")]
    Key { tag: String, message: String },
    /// An outbound cannot be built.
    #[error("outbound `{tag}`: {message}")]
    Outbound { tag: String, message: String },
    /// A reverse bridge is not routed to a Shadowsocks outbound.
    #[error("bridge `{tag}`: {message}")]
    Bridge { tag: String, message: String },
    /// `shutdown` was called.
    #[error("the engine is shut down")]
    ShutDown,
}

/// State shared by every task of an engine.
pub(crate) struct Shared {
    pub(crate) stats: stats::Stats,
    pub(crate) server_ctx: SharedContext,
    pub(crate) client_ctx: SharedContext,
    router: RwLock<Arc<Router>>,
    pub(crate) health: Mutex<route::HealthBook>,
    pub(crate) salts: SaltFilter,
    pub(crate) hints: HintCache,
    pub(crate) limiter: ProbeLimiter,
    pub(crate) portals: reverse::Portals,
    /// Refused connections being drained now (see [`MAX_DRAINING`]).
    pub(crate) draining: std::sync::atomic::AtomicUsize,
    pub(crate) root: CancellationToken,
    /// Every connection and association task (TCP and UDP sessions, bridged streams), so that
    /// shutdown can wait until none of them counts any more.
    pub(crate) sessions: TaskTracker,
}

impl Shared {
    fn new() -> Shared {
        Shared {
            stats: stats::Stats::default(),
            server_ctx: Context::new_shared(ServerType::Server),
            client_ctx: Context::new_shared(ServerType::Local),
            router: RwLock::new(Arc::new(Router::empty())),
            health: Mutex::default(),
            salts: SaltFilter::new(1 << 17),
            hints: HintCache::new(1 << 16),
            limiter: ProbeLimiter::new(20, 2.0, 1 << 16),
            portals: reverse::Portals::default(),
            draining: std::sync::atomic::AtomicUsize::new(0),
            root: CancellationToken::new(),
            sessions: TaskTracker::new(),
        }
    }

    pub(crate) fn router(&self) -> Arc<Router> {
        self.router
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_router(&self, router: Router) {
        *self.router.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(router);
    }

    /// Where a stream from `inbound` to `addr` goes now, by the rules alone (no name
    /// resolution, no destination policy): for the engine's own dials, such as a bridge's.
    pub(crate) fn route(&self, inbound: &str, addr: &Address) -> Option<Arc<OutboundRt>> {
        self.router()
            .route(inbound, addr, &|tag| self.portals.is_up(tag))
    }

    /// Where user traffic from `inbound` to `addr` goes, or `None` when it is refused: a reverse
    /// domain is never a destination, a name that must be resolved and does not resolve goes
    /// nowhere. Rules with networks see a domain's resolved addresses as the strategy says
    /// (see `route`), and a stream for freedom is dialed to exactly the addresses the rules saw,
    /// so a name cannot resolve to a refused address between the decision and the dial.
    pub(crate) async fn route_user(&self, inbound: &str, addr: &Address) -> Option<Routed> {
        let router = self.router();
        let up = |tag: &str| self.portals.is_up(tag);
        let domain = match addr {
            Address::DomainNameAddress(d, _) => Some(d.as_str()),
            Address::SocketAddress(_) => None,
        };
        if domain.is_some_and(|d| router.is_reverse_domain(d)) {
            tracing::debug!(inbound, target = %addr, "a reverse domain is not a destination");
            return None;
        }
        let mut resolved = None;
        let (matched, mut decision) = if domain.is_some() && router.resolves_first(inbound) {
            let found = resolve(addr).await.ok()?;
            let ips: Vec<IpAddr> = found.iter().map(SocketAddr::ip).collect();
            resolved = Some(found);
            router.decide(inbound, addr, &ips, &up)
        } else {
            router.decide(inbound, addr, &[], &up)
        };
        if !matched && domain.is_some() && router.resolves_on_miss(inbound) {
            if let Ok(found) = resolve(addr).await {
                let ips: Vec<IpAddr> = found.iter().map(SocketAddr::ip).collect();
                decision = router.decide(inbound, addr, &ips, &up).1;
                resolved = Some(found);
            }
        }
        let route::Decision::To(out) = decision else {
            tracing::debug!(inbound, target = %addr, "no route");
            return None;
        };
        let targets = match (&out.kind, addr) {
            (route::OutboundKind::Freedom, Address::SocketAddress(sa)) => vec![*sa],
            (route::OutboundKind::Freedom, Address::DomainNameAddress(..)) => match resolved {
                Some(found) => found,
                None => match resolve(addr).await {
                    Ok(found) => found,
                    Err(e) => {
                        tracing::debug!(inbound, target = %addr, error = %e, "name did not resolve");
                        return None;
                    }
                },
            },
            (route::OutboundKind::Blackhole, _) => {
                tracing::debug!(inbound, target = %addr, outbound = %out.tag, "destination refused");
                Vec::new()
            }
            _ => Vec::new(),
        };
        Some(Routed { out, targets })
    }
}

impl Shared {
    /// What happens to one user datagram from `inbound` to `addr`: `None` when it is refused
    /// (counted when a blackhole refused it), else the route, whose `targets` hold the address
    /// to send to when it leaves through freedom.
    pub(crate) async fn route_datagram(&self, inbound: &str, addr: &Address) -> Option<Routed> {
        let routed = self.route_user(inbound, addr).await?;
        if let Some((_, datagrams)) = &routed.out.refused {
            datagrams.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return None;
        }
        Some(routed)
    }
}

/// Where user traffic goes: the outbound, and for freedom the addresses to dial.
pub(crate) struct Routed {
    pub(crate) out: Arc<OutboundRt>,
    /// For freedom: the destination's addresses, looked up once, in the resolver's order.
    pub(crate) targets: Vec<SocketAddr>,
}

/// The addresses of `addr` (a name is looked up, bounded by [`DIAL_TIMEOUT`]).
pub(crate) async fn resolve(addr: &Address) -> std::io::Result<Vec<SocketAddr>> {
    let found: Vec<SocketAddr> = match addr {
        Address::SocketAddress(sa) => vec![*sa],
        Address::DomainNameAddress(host, port) => {
            let lookup = tokio::net::lookup_host((host.as_str(), *port));
            tokio::time::timeout(DIAL_TIMEOUT, lookup)
                .await
                .map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "lookup timed out")
                })??
                .collect()
        }
    };
    if found.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "name did not resolve",
        ));
    }
    Ok(found)
}

/// What the tasks of one port read on each new connection or packet.
pub(crate) struct PortShared {
    runtime: RwLock<Arc<InboundRuntime>>,
}

impl PortShared {
    pub(crate) fn new(rt: InboundRuntime) -> PortShared {
        PortShared {
            runtime: RwLock::new(Arc::new(rt)),
        }
    }

    /// The inbound as the latest applied config defines it.
    pub(crate) fn current(&self) -> Arc<InboundRuntime> {
        self.runtime
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Installs a new runtime and returns the old one.
    pub(crate) fn swap(&self, rt: InboundRuntime) -> Arc<InboundRuntime> {
        let mut guard = self.runtime.write().unwrap_or_else(PoisonError::into_inner);
        std::mem::replace(&mut *guard, Arc::new(rt))
    }
}

/// The data plane. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
    state: Arc<tokio::sync::Mutex<apply::State>>,
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new()
    }
}

impl Engine {
    /// An engine with no listeners. Must be used inside a tokio runtime once configs are applied.
    pub fn new() -> Engine {
        Engine {
            shared: Arc::new(Shared::new()),
            state: Arc::new(tokio::sync::Mutex::new(apply::State::default())),
        }
    }

    /// Runs `config` from now on. Listeners whose address, protocol, method and key are unchanged
    /// stay open, live connections the new config still allows continue, removed or changed users
    /// are disconnected at once, changed ports are rebound. Applying the running config again is
    /// a no-op. On error nothing changes.
    pub async fn apply(&self, config: &xray::Config) -> Result<(), EngineError> {
        let mut state = self.state.lock().await;
        if self.shared.root.is_cancelled() {
            return Err(EngineError::ShutDown);
        }
        state.apply(&self.shared, config).await
    }

    /// The manual restart: runs `config` rebuilt from scratch, even when it is the config in
    /// force. The router, every outbound and every inbound runtime are built anew, the outbounds'
    /// dial records are forgotten and an inbound without a listener (its port could not be bound
    /// at an earlier apply) is bound; the live connections of users the config still allows
    /// continue, removed or changed users are disconnected as by [`Engine::apply`]. Counters, the
    /// replay filter, the listening sockets of unchanged inbounds and connected bridge tunnels are
    /// handed over, not reopened (reopening would cut sessions the config allows). On error
    /// nothing changes.
    pub async fn restart(&self, config: &xray::Config) -> Result<(), EngineError> {
        let mut state = self.state.lock().await;
        if self.shared.root.is_cancelled() {
            return Err(EngineError::ShutDown);
        }
        state.restart(&self.shared, config).await
    }

    /// Every counter (Xray names), cumulative since [`Engine::new`].
    pub fn counters(&self) -> BTreeMap<String, u64> {
        self.shared.stats.snapshot()
    }

    /// The classic-AEAD replay filter (salts of authenticated connections seen within
    /// a week), to be saved and handed to [`Engine::restore_replay_filter`] after a restart, so
    /// a recorded connection stays refused across restarts.
    pub fn export_replay_filter(&self) -> Vec<u8> {
        self.shared.salts.export()
    }

    /// Adds the salts of an [`Engine::export_replay_filter`]; returns how many were added.
    pub fn restore_replay_filter(&self, saved: &[u8]) -> usize {
        self.shared.salts.import(saved)
    }

    /// Changes whenever the replay filter learns a salt (to save it only when it changed).
    pub fn replay_filter_generation(&self) -> u64 {
        self.shared.salts.generation()
    }

    /// Tags of the reverse portals whose bridge tunnel is connected now, sorted.
    pub fn connected_portals(&self) -> Vec<String> {
        self.shared.portals.connected()
    }

    /// The version ([`xray::Config::version`]) of the config in force, if any.
    pub async fn version(&self) -> Option<String> {
        self.state.lock().await.version()
    }

    /// Closes every listener and live connection and stops the bridges, then waits (at most
    /// 5 s) until every session task has ended: once this returns, [`Engine::counters`] no
    /// longer change. Later applies fail. Calling it again does nothing more.
    pub async fn shutdown(&self) {
        let mut state = self.state.lock().await;
        self.shared.root.cancel();
        state.close_all().await;
        self.shared.sessions.close();
        let stopped = tokio::time::timeout(SESSIONS_STOP, self.shared.sessions.wait()).await;
        if stopped.is_err() {
            tracing::warn!(
                sessions = self.shared.sessions.len(),
                "sessions still running after the engine was shut down"
            );
        }
    }
}
