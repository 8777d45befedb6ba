//! The writer: from one database snapshot, the manager's own config and every node's config, as
//! Xray JSON (ARCHITECTURE §4). Pure functions: the same snapshot gives byte-identical JSON, hence
//! the same version, so unchanged nodes are never re-pushed.

use crate::entity::{node, settings, user};
use crate::services::nodes::LINK_METHOD;
use crate::services::users::USER_METHOD;
use xray::{
    Balancer, Client, Config, Inbound, Metadata, Network, Outbound, ReverseItem, Rule, Server,
};

/// Log level of generated configs.
const LOG_LEVEL: &str = "warning";
/// The blackhole that refused destinations go to (counted as `outbound>>>block>>>refused>>>…`).
pub const BLOCK: &str = "block";

/// Sends private destinations of user traffic entering `inbounds` to [`BLOCK`], except the
/// networks the operator allows; names are judged by what they resolve to (`IPOnDemand`).
fn guard_private(c: &mut Config, s: &settings::Model, inbounds: Vec<String>) {
    c.outbounds.push(Outbound::blackhole(BLOCK));
    c.routing.domain_strategy = "IPOnDemand".into();
    if inbounds.is_empty() {
        return;
    }
    let allowed = crate::services::settings::allowed_networks(s);
    c.routing
        .rules
        .push(Rule::block_private(inbounds, &allowed, BLOCK));
}

/// Everything the writer reads, loaded in one go.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub settings: settings::Model,
    /// Enabled users, ordered by id.
    pub users: Vec<user::Model>,
    /// All nodes, ordered by id.
    pub nodes: Vec<node::Model>,
}

/// The reverse-tunnel domain that pairs node N's bridge with the manager's portal N.
pub fn reverse_domain(node_id: i64) -> String {
    format!("s{node_id}.reverse.proxy")
}

fn port(p: i32) -> Option<u16> {
    u16::try_from(p).ok().filter(|p| *p != 0)
}

fn metadata(s: &settings::Model) -> Metadata {
    use time::format_description::well_known::Rfc3339;
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(
        i128::from(s.config_updated_at) * 1_000_000,
    )
    .ok()
    .and_then(|t| t.format(&Rfc3339).ok())
    .unwrap_or_default();
    Metadata {
        updated_at: at,
        updated_by: s.host.clone(),
    }
}

fn clients(users: &[user::Model]) -> Vec<Client> {
    users
        .iter()
        .filter(|u| u.enabled)
        .map(|u| Client {
            email: u.id.to_string(),
            password: u.password.clone(),
            method: None,
        })
        .collect()
}

fn user_inbound(tag: &str, port: u16, clients: &[Client]) -> Inbound {
    Inbound::shadowsocks(
        tag,
        port,
        USER_METHOD,
        "",
        Network::TcpUdp,
        clients.to_vec(),
    )
}

impl Snapshot {
    /// The manager's own config: direct, relay (balancer `relay` over healthy `relay-N`) and
    /// reverse (balancer `portal` over healthy `portal-N`, fed by `internal-N` inbounds).
    pub fn local_config(&self) -> Config {
        let s = &self.settings;
        let mut c = Config::skeleton(LOG_LEVEL);
        c.metadata = Some(metadata(s));
        let clients = clients(&self.users);
        let (relay, reverse, direct) = (
            port(s.ss_relay_port),
            port(s.ss_reverse_port),
            port(s.ss_direct_port),
        );
        // Direct traffic leaves here; relay and reverse traffic leaves at the node, which
        // guards its own exits.
        let guarded = match (clients.is_empty(), direct) {
            (false, Some(_)) => vec!["direct".to_owned()],
            _ => Vec::new(),
        };
        guard_private(&mut c, s, guarded);
        if !clients.is_empty() {
            if let Some(p) = relay {
                c.inbounds.push(user_inbound("relay", p, &clients));
                c.routing.rules.push(Rule::to_balancer("relay", "relay"));
            }
            if let Some(p) = reverse {
                c.inbounds.push(user_inbound("reverse", p, &clients));
                c.routing.rules.push(Rule::to_balancer("reverse", "portal"));
            }
            if let Some(p) = direct {
                c.inbounds.push(user_inbound("direct", p, &clients));
                c.routing.rules.push(Rule::to_outbound("direct", "out"));
            }
        }
        // Balancers exist even when empty, so relay / reverse traffic fails closed instead of
        // leaving through the manager when no node is healthy.
        if relay.is_some() {
            c.routing.balancers.push(Balancer {
                tag: "relay".into(),
                selector: Vec::new(),
            });
        }
        if reverse.is_some() {
            c.routing.balancers.push(Balancer {
                tag: "portal".into(),
                selector: Vec::new(),
            });
        }
        for n in &self.nodes {
            let healthy = n.is_healthy();
            if let (Some(_), Some(internal_port)) = (reverse, port(n.internal_port)) {
                let inbound = format!("internal-{}", n.id);
                let portal = format!("portal-{}", n.id);
                c.inbounds.push(Inbound::shadowsocks(
                    &inbound,
                    internal_port,
                    LINK_METHOD,
                    &n.internal_key,
                    Network::Tcp,
                    Vec::new(),
                ));
                c.reverse.portals.push(ReverseItem {
                    tag: portal.clone(),
                    domain: reverse_domain(n.id),
                });
                c.routing.rules.push(Rule::to_outbound(inbound, &portal));
                if healthy {
                    if let Some(b) = c.find_balancer_mut("portal") {
                        b.selector.push(portal);
                    }
                }
            }
            if let (Some(_), Some(relay_port)) = (relay, port(n.relay_port)) {
                let tag = format!("relay-{}", n.id);
                c.outbounds.push(Outbound::shadowsocks(
                    &tag,
                    Server {
                        address: n.host.clone(),
                        port: relay_port,
                        method: LINK_METHOD,
                        password: n.relay_key.clone(),
                        uot: true,
                    },
                ));
                if healthy {
                    if let Some(b) = c.find_balancer_mut("relay") {
                        b.selector.push(tag);
                    }
                }
            }
        }
        c
    }

    /// Node N's config: the relay hop (`direct`, keyed like `relay-N`), the reverse bridge to the
    /// manager's `internal-N`, and the users' `remote` inbound. Every exit of user traffic is
    /// guarded against private destinations: the relay hop, the bridge (after its own rule for
    /// the reverse domain) and the remote inbound.
    pub fn node_config(&self, n: &node::Model) -> Config {
        let s = &self.settings;
        let mut c = Config::skeleton(LOG_LEVEL);
        c.metadata = Some(metadata(s));
        let clients = clients(&self.users);
        let relay_hop = port(s.ss_relay_port).and(port(n.relay_port));
        let bridge = port(s.ss_reverse_port).and(port(n.internal_port));
        let remote = port(s.ss_remote_port).filter(|_| !clients.is_empty());
        if let Some(internal_port) = bridge {
            let domain = reverse_domain(n.id);
            c.outbounds.push(Outbound::shadowsocks(
                "internal",
                Server {
                    address: s.host.clone(),
                    port: internal_port,
                    method: LINK_METHOD,
                    password: n.internal_key.clone(),
                    uot: true,
                },
            ));
            c.reverse.bridges.push(ReverseItem {
                tag: "bridge".into(),
                domain: domain.clone(),
            });
            c.routing
                .rules
                .push(Rule::to_outbound("bridge", "internal").for_domain(&domain));
        }
        let guarded = [
            (relay_hop.is_some(), "direct"),
            (bridge.is_some(), "bridge"),
            (remote.is_some(), "remote"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, tag)| (*tag).to_owned())
        .collect();
        guard_private(&mut c, s, guarded);
        if let Some(relay_port) = relay_hop {
            c.inbounds.push(Inbound::shadowsocks(
                "direct",
                relay_port,
                LINK_METHOD,
                &n.relay_key,
                Network::Tcp,
                Vec::new(),
            ));
            c.routing.rules.push(Rule::to_outbound("direct", "out"));
        }
        if bridge.is_some() {
            c.routing.rules.push(Rule::to_outbound("bridge", "out"));
        }
        if let Some(p) = remote {
            c.inbounds.push(user_inbound("remote", p, &clients));
            c.routing.rules.push(Rule::to_outbound("remote", "out"));
        }
        c
    }
}

#[cfg(test)]
mod tests;
