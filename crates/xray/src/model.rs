//! Serde model of the Xray JSON subset, plus builders used by the writer.
//!
//! Field names follow Xray (camelCase) except `metadata`, whose wire form comes from the Arch spec.
//! Unknown fields are rejected so a node never silently ignores something it was asked to run.

use crate::Method;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A complete config: what `POST /v1/configs` carries and what the engine runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<Log>,
    #[serde(default)]
    pub inbounds: Vec<Inbound>,
    #[serde(default)]
    pub outbounds: Vec<Outbound>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<Stats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Policy>,
    #[serde(default)]
    pub routing: Routing,
    #[serde(default, skip_serializing_if = "Reverse::is_empty")]
    pub reverse: Reverse,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
}

/// `log` block; only the level is honoured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Log {
    pub loglevel: String,
}

/// `stats: {}` turns counters on, as in Xray.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stats {}

/// Which counters are kept (Xray's policy block).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub levels: BTreeMap<String, LevelPolicy>,
    #[serde(default)]
    pub system: SystemPolicy,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LevelPolicy {
    #[serde(default)]
    pub stats_user_uplink: bool,
    #[serde(default)]
    pub stats_user_downlink: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SystemPolicy {
    #[serde(default)]
    pub stats_inbound_uplink: bool,
    #[serde(default)]
    pub stats_inbound_downlink: bool,
    #[serde(default)]
    pub stats_outbound_uplink: bool,
    #[serde(default)]
    pub stats_outbound_downlink: bool,
}

impl Policy {
    /// Every counter on: per user, per inbound, per outbound.
    pub fn all_counters() -> Policy {
        let level = LevelPolicy {
            stats_user_uplink: true,
            stats_user_downlink: true,
        };
        Policy {
            levels: BTreeMap::from([("0".to_owned(), level)]),
            system: SystemPolicy {
                stats_inbound_uplink: true,
                stats_inbound_downlink: true,
                stats_outbound_uplink: true,
                stats_outbound_downlink: true,
            },
        }
    }
}

/// Who wrote a config and when (the spec's `metadata`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    pub updated_at: String,
    pub updated_by: String,
}

/// Transport networks an inbound serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Network {
    #[serde(rename = "tcp")]
    Tcp,
    #[serde(rename = "udp")]
    Udp,
    #[serde(rename = "tcp,udp")]
    TcpUdp,
}

impl Network {
    pub fn has_tcp(self) -> bool {
        matches!(self, Network::Tcp | Network::TcpUdp)
    }
    pub fn has_udp(self) -> bool {
        matches!(self, Network::Udp | Network::TcpUdp)
    }
}

/// Inbound protocols the engine serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InboundProtocol {
    Shadowsocks,
}

/// A listening Shadowsocks port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inbound {
    pub tag: String,
    #[serde(default = "default_listen")]
    pub listen: String,
    pub port: u16,
    pub protocol: InboundProtocol,
    pub settings: ShadowsocksInbound,
}

fn default_listen() -> String {
    "0.0.0.0".to_owned()
}

/// Settings of a Shadowsocks inbound.
///
/// Classic AEAD: each client has its own password (several users share the port; the server
/// `password` is used only when there are no clients), and may carry its own classic `method`
/// (as in Xray, clients of one port may use different classic ciphers; the inbound's `method`
/// may then be absent). SS-2022: `method` is required and is the one method of the port,
/// `password` is the server PSK (iPSK) and clients carry their EIH user PSKs; with no clients it
/// is a single-key port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShadowsocksInbound {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<Method>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password: String,
    pub network: Network,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clients: Vec<Client>,
}

/// One user of an inbound; `email` is the Arch user id and names the user's counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Client {
    pub email: String,
    pub password: String,
    /// The client's own cipher; `None` uses the inbound's. A classic method only, unless it
    /// repeats the inbound's SS-2022 method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<Method>,
}

impl ShadowsocksInbound {
    /// The method `client` connects with: its own, else the inbound's (`None` only in a config
    /// that fails validation).
    pub fn client_method(&self, client: &Client) -> Option<Method> {
        client.method.or(self.method)
    }

    /// The method that decides how the port works (classic or SS-2022): the inbound's, else the
    /// first client's (validation makes every client of such a port classic).
    pub fn port_method(&self) -> Option<Method> {
        self.method
            .or_else(|| self.clients.first().and_then(|c| c.method))
    }
}

/// Outbound protocols the engine runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutboundProtocol {
    Freedom,
    Blackhole,
    Shadowsocks,
}

/// Where routed traffic leaves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outbound {
    pub tag: String,
    pub protocol: OutboundProtocol,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<OutboundSettings>,
}

/// Settings of a shadowsocks outbound: exactly one server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundSettings {
    pub servers: Vec<Server>,
}

/// The upstream Shadowsocks server of an outbound.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub address: String,
    pub port: u16,
    pub method: Method,
    pub password: String,
    /// UDP-over-TCP: carry UDP inside the TCP stream.
    #[serde(default)]
    pub uot: bool,
}

impl Outbound {
    /// The single upstream server of a shadowsocks outbound.
    pub fn server(&self) -> Option<&Server> {
        self.settings.as_ref().and_then(|s| s.servers.first())
    }
}

/// Field routing: rules are tried in order; the first match wins.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Routing {
    #[serde(default = "default_domain_strategy")]
    pub domain_strategy: String,
    #[serde(default)]
    pub rules: Vec<Rule>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub balancers: Vec<Balancer>,
}

fn default_domain_strategy() -> String {
    "AsIs".to_owned()
}

/// A routing rule: traffic entering `inbound_tag` (and, if given, for one of `domain`, and for a
/// destination inside one of `ip`) goes to `outbound_tag` or `balancer_tag`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Rule {
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub inbound_tag: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domain: Vec<String>,
    /// Destination networks (`10.0.0.0/8`, `::1`, `geoip:private`). A domain destination is
    /// matched by its resolved addresses under the `IPOnDemand` / `IPIfNonMatch` strategies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound_tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balancer_tag: Option<String>,
}

/// A set of outbounds (or portals) one of which carries each connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Balancer {
    pub tag: String,
    pub selector: Vec<String>,
}

/// Reverse proxy: bridges (node side) dial out; portals (manager side) accept them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reverse {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bridges: Vec<ReverseItem>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub portals: Vec<ReverseItem>,
}

impl Reverse {
    pub fn is_empty(&self) -> bool {
        self.bridges.is_empty() && self.portals.is_empty()
    }
}

/// A bridge or portal: its tag and the `sN.reverse.proxy` domain that pairs them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReverseItem {
    pub tag: String,
    pub domain: String,
}

// ---- builders ------------------------------------------------------------------------------

impl Config {
    /// The skeleton every generated config starts from: log level, counters on, no ports.
    pub fn skeleton(loglevel: &str) -> Config {
        Config {
            log: Some(Log {
                loglevel: loglevel.to_owned(),
            }),
            inbounds: Vec::new(),
            outbounds: vec![Outbound::freedom("out")],
            stats: Some(Stats {}),
            policy: Some(Policy::all_counters()),
            routing: Routing {
                domain_strategy: default_domain_strategy(),
                rules: Vec::new(),
                balancers: Vec::new(),
            },
            reverse: Reverse::default(),
            metadata: None,
        }
    }

    pub fn find_inbound(&self, tag: &str) -> Option<&Inbound> {
        self.inbounds.iter().find(|i| i.tag == tag)
    }

    pub fn find_outbound(&self, tag: &str) -> Option<&Outbound> {
        self.outbounds.iter().find(|o| o.tag == tag)
    }

    pub fn find_balancer_mut(&mut self, tag: &str) -> Option<&mut Balancer> {
        self.routing.balancers.iter_mut().find(|b| b.tag == tag)
    }
}

impl Inbound {
    /// A Shadowsocks inbound listening on all addresses.
    pub fn shadowsocks(
        tag: impl Into<String>,
        port: u16,
        method: Method,
        password: impl Into<String>,
        network: Network,
        clients: Vec<Client>,
    ) -> Inbound {
        Inbound {
            tag: tag.into(),
            listen: default_listen(),
            port,
            protocol: InboundProtocol::Shadowsocks,
            settings: ShadowsocksInbound {
                method: Some(method),
                password: password.into(),
                network,
                clients,
            },
        }
    }
}

impl Outbound {
    pub fn freedom(tag: impl Into<String>) -> Outbound {
        Outbound {
            tag: tag.into(),
            protocol: OutboundProtocol::Freedom,
            settings: None,
        }
    }

    pub fn blackhole(tag: impl Into<String>) -> Outbound {
        Outbound {
            tag: tag.into(),
            protocol: OutboundProtocol::Blackhole,
            settings: None,
        }
    }

    /// A Shadowsocks client outbound to one server.
    pub fn shadowsocks(tag: impl Into<String>, server: Server) -> Outbound {
        Outbound {
            tag: tag.into(),
            protocol: OutboundProtocol::Shadowsocks,
            settings: Some(OutboundSettings {
                servers: vec![server],
            }),
        }
    }
}

impl Rule {
    /// `inbound → outbound`.
    pub fn to_outbound(inbound: impl Into<String>, outbound: impl Into<String>) -> Rule {
        Rule {
            inbound_tag: vec![inbound.into()],
            outbound_tag: Some(outbound.into()),
            ..Rule::default()
        }
    }

    /// `inbound → balancer`.
    pub fn to_balancer(inbound: impl Into<String>, balancer: impl Into<String>) -> Rule {
        Rule {
            inbound_tag: vec![inbound.into()],
            balancer_tag: Some(balancer.into()),
            ..Rule::default()
        }
    }

    /// Restricts the rule to exact domains (`full:` matches).
    pub fn for_domain(mut self, domain: &str) -> Rule {
        self.domain.push(format!("full:{domain}"));
        self
    }

    /// Traffic entering any of `inbounds` for a private destination (see
    /// [`crate::cidr::PRIVATE`]) other than the `allowed` networks goes to `outbound` (a
    /// blackhole). Put it before the inbounds' other rules, with the `IPOnDemand` strategy so a
    /// name is judged by the addresses it resolves to.
    pub fn block_private(
        inbounds: Vec<String>,
        allowed: &[crate::cidr::Cidr],
        outbound: impl Into<String>,
    ) -> Rule {
        Rule {
            inbound_tag: inbounds,
            ip: crate::cidr::private_except(allowed)
                .iter()
                .map(ToString::to_string)
                .collect(),
            outbound_tag: Some(outbound.into()),
            ..Rule::default()
        }
    }
}
