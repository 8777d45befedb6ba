//! Applying a config: diff the running listeners, bridges and portals against the new config,
//! build everything that can fail first, then commit.
//!
//! A port is kept when its inbound tag, listen address, port and network are unchanged; its
//! runtime (method, keys, users) is swapped in place, so the socket stays open. Ports that move
//! are bound before anything is torn down, so a bind failure leaves the engine as it was. The one
//! exception is a port number handed from a removed inbound to a new one: the old listener must
//! close before the new one can bind.

use crate::inbound::InboundRuntime;
use crate::route::{HealthBook, OutboundKind, Router};
use crate::{reverse, tcp, udp, EngineError, PortShared, Shared};
use shadowsocks::relay::socks5::Address;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::net::{TcpListener, TcpSocket, UdpSocket};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use xray::Network;

/// A serving port: its sockets' tasks and the runtime they read.
struct Port {
    addr: SocketAddr,
    network: Network,
    shared: Arc<PortShared>,
    token: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Port {
    /// Cancels the port (its listeners and every connection on it) and waits for the sockets to
    /// close.
    async fn close(self) {
        self.token.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

struct Bridge {
    key: String,
    token: CancellationToken,
    task: JoinHandle<()>,
}

/// What is running: the config in force and the ports and bridges that serve it.
#[derive(Default)]
pub(crate) struct State {
    config: Option<xray::Config>,
    ports: HashMap<String, Port>,
    bridges: HashMap<String, Bridge>,
}

/// A new port, bound or still to bind.
struct NewPort {
    tag: String,
    addr: SocketAddr,
    network: Network,
    token: CancellationToken,
    rt: InboundRuntime,
    sockets: Option<(Option<TcpListener>, Option<UdpSocket>)>,
}

fn bind(
    tag: &str,
    addr: SocketAddr,
    network: Network,
) -> Result<(Option<TcpListener>, Option<UdpSocket>), EngineError> {
    let err = |network: &'static str| {
        move |source: std::io::Error| EngineError::Bind {
            tag: tag.to_owned(),
            port: addr.port(),
            network,
            source,
        }
    };
    let tcp = if network.has_tcp() {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(err("tcp"))?;
        socket.set_reuseaddr(true).map_err(err("tcp"))?;
        socket.bind(addr).map_err(err("tcp"))?;
        Some(socket.listen(1024).map_err(err("tcp"))?)
    } else {
        None
    };
    let udp = if network.has_udp() {
        let socket = std::net::UdpSocket::bind(addr).map_err(err("udp"))?;
        socket.set_nonblocking(true).map_err(err("udp"))?;
        Some(UdpSocket::from_std(socket).map_err(err("udp"))?)
    } else {
        None
    };
    Ok((tcp, udp))
}

impl State {
    /// The version of the config in force.
    pub(crate) fn version(&self) -> Option<String> {
        self.config.as_ref().map(|c| c.version())
    }

    /// Applies `config` as a diff against what runs (see the module docs); the config in force
    /// again is a no-op.
    pub(crate) async fn apply(
        &mut self,
        shared: &Arc<Shared>,
        config: &xray::Config,
    ) -> Result<(), EngineError> {
        if self.config.as_ref() == Some(config) {
            return Ok(());
        }
        self.apply_with(shared, config, false).await
    }

    /// The manual restart: applies `config` even when it is the config in force, with the
    /// outbounds' dial records forgotten (every balancer member starts clean). Everything is built
    /// anew from the config: the router and every outbound, every inbound runtime (each user the
    /// config still has keeps their live connections), an inbound missing from the running set
    /// (say, its port could not be bound at an earlier apply) is bound. Handed over rather than
    /// reopened, because reopening them would cut sessions the config still allows: the listening
    /// sockets of unchanged inbounds (a UDP association answers through its port's socket), the
    /// connected bridge tunnels (their streams are users' sessions), the counters and the replay
    /// filter. On error nothing changes.
    pub(crate) async fn restart(
        &mut self,
        shared: &Arc<Shared>,
        config: &xray::Config,
    ) -> Result<(), EngineError> {
        self.apply_with(shared, config, true).await
    }

    async fn apply_with(
        &mut self,
        shared: &Arc<Shared>,
        config: &xray::Config,
        restart: bool,
    ) -> Result<(), EngineError> {
        config.validate()?;
        // A restart builds the router on a fresh dial record book, installed at commit.
        let fresh_health = restart.then(|| std::sync::Mutex::new(HealthBook::default()));
        let router = Router::build(
            config,
            &shared.stats,
            fresh_health.as_ref().unwrap_or(&shared.health),
        )?;
        let bridges = plan_bridges(config, &router)?;

        // Build every inbound runtime (may fail on keys; no side effects).
        let mut kept = Vec::new();
        let mut fresh = Vec::new();
        for ib in &config.inbounds {
            let ip: IpAddr = ib.listen.parse().map_err(|_| EngineError::Key {
                tag: ib.tag.clone(),
                message: format!("listen address `{}` is not an IP", ib.listen),
            })?;
            let addr = SocketAddr::new(ip, ib.port);
            let network = ib.settings.network;
            match self
                .ports
                .get(&ib.tag)
                .filter(|p| p.addr == addr && p.network == network)
            {
                Some(p) => {
                    let prev = p.shared.current();
                    let rt = InboundRuntime::build(ib, Some(&prev), &p.token, &shared.stats)?;
                    kept.push((ib.tag.clone(), rt));
                }
                None => {
                    let token = shared.root.child_token();
                    let rt = InboundRuntime::build(ib, None, &token, &shared.stats)?;
                    fresh.push(NewPort {
                        tag: ib.tag.clone(),
                        addr,
                        network,
                        token,
                        rt,
                        sockets: None,
                    });
                }
            }
        }
        let kept_tags: HashSet<&str> = kept.iter().map(|(t, _)| t.as_str()).collect();
        let closing: Vec<String> = self
            .ports
            .keys()
            .filter(|t| !kept_tags.contains(t.as_str()))
            .cloned()
            .collect();
        let closing_ports: HashSet<u16> = closing
            .iter()
            .filter_map(|t| self.ports.get(t).map(|p| p.addr.port()))
            .collect();

        // Bind what does not collide with a port we are about to close; failure changes nothing.
        for p in fresh.iter_mut() {
            if !closing_ports.contains(&p.addr.port()) {
                p.sockets = Some(bind(&p.tag, p.addr, p.network)?);
            }
        }

        // Commit.
        if let Some(book) = fresh_health {
            *shared
                .health
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = book
                .into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        shared.set_router(router);
        for tag in &closing {
            if let Some(port) = self.ports.remove(tag) {
                tracing::info!(inbound = %tag, port = port.addr.port(), "closing port");
                port.close().await;
            }
        }
        for (tag, rt) in kept {
            if let Some(port) = self.ports.get(&tag) {
                let old = port.shared.swap(rt);
                old.retire(Some(&port.shared.current()));
            }
        }
        let mut late_error = None;
        for mut p in fresh {
            let sockets = match p.sockets.take() {
                Some(s) => s,
                None => match bind(&p.tag, p.addr, p.network) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::error!(inbound = %p.tag, error = %e, "rebinding a handed-over port failed");
                        late_error.get_or_insert(e);
                        continue;
                    }
                },
            };
            tracing::info!(inbound = %p.tag, addr = %p.addr, "listening");
            self.ports
                .insert(p.tag.clone(), start_port(shared, p, sockets));
        }
        self.apply_bridges(shared, bridges);
        shared
            .portals
            .retain(&|tag| config.reverse.portals.iter().any(|p| p.tag == tag));
        self.config = Some(config.clone());
        match late_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn apply_bridges(&mut self, shared: &Arc<Shared>, plan: Vec<(String, String, String)>) {
        let wanted: HashMap<&str, &str> = plan
            .iter()
            .map(|(t, _, k)| (t.as_str(), k.as_str()))
            .collect();
        self.bridges.retain(|tag, b| {
            let keep = wanted.get(tag.as_str()) == Some(&b.key.as_str());
            if !keep {
                b.token.cancel();
                b.task.abort();
            }
            keep
        });
        for (tag, domain, key) in plan {
            if self.bridges.contains_key(&tag) {
                continue;
            }
            let token = shared.root.child_token();
            let task = tokio::spawn(reverse::run_bridge(
                shared.clone(),
                tag.clone(),
                domain,
                token.clone(),
            ));
            self.bridges.insert(tag, Bridge { key, token, task });
        }
    }

    /// Closes every port and bridge (engine shutdown).
    pub(crate) async fn close_all(&mut self) {
        for (_, b) in self.bridges.drain() {
            b.token.cancel();
            let _ = b.task.await;
        }
        for (_, p) in self.ports.drain() {
            p.close().await;
        }
        self.config = None;
    }
}

/// Each bridge as (tag, domain, identity of what it dials); the bridge must route its own domain
/// to a Shadowsocks outbound.
fn plan_bridges(
    config: &xray::Config,
    router: &Router,
) -> Result<Vec<(String, String, String)>, EngineError> {
    let mut plan = Vec::new();
    for b in &config.reverse.bridges {
        let target = Address::DomainNameAddress(b.domain.clone(), 0);
        let bad = |message: &str| EngineError::Bridge {
            tag: b.tag.clone(),
            message: message.to_owned(),
        };
        let out = router
            .route(&b.tag, &target, &|_| false)
            .ok_or_else(|| bad("its domain routes nowhere"))?;
        if !matches!(out.kind, OutboundKind::Shadowsocks { .. }) {
            return Err(bad("its domain must route to a shadowsocks outbound"));
        }
        let server = config.find_outbound(&out.tag).and_then(|o| o.server());
        let key = format!("{}|{}|{:?}", b.domain, out.tag, server);
        plan.push((b.tag.clone(), b.domain.clone(), key));
    }
    Ok(plan)
}

fn start_port(
    shared: &Arc<Shared>,
    p: NewPort,
    sockets: (Option<TcpListener>, Option<UdpSocket>),
) -> Port {
    let ps = Arc::new(PortShared::new(p.rt));
    let mut tasks = Vec::new();
    if let Some(l) = sockets.0 {
        tasks.push(tokio::spawn(tcp::serve(
            l,
            ps.clone(),
            shared.clone(),
            p.token.clone(),
        )));
    }
    if let Some(u) = sockets.1 {
        tasks.push(tokio::spawn(udp::serve(
            u,
            ps.clone(),
            shared.clone(),
            p.token.clone(),
        )));
    }
    Port {
        addr: p.addr,
        network: p.network,
        shared: ps,
        token: p.token,
        tasks,
    }
}
