//! Routing: the runtime form of outbounds, portals, rules and balancers.
//!
//! Rules are tried in order (first match wins) on the inbound tag and, when a rule lists
//! domains, on an exact (`full:`) match of the target domain. With no match the first outbound
//! is used, as in Xray. A balancer picks round-robin among its members that are up: an outbound
//! is up unless a dial to it failed within [`DOWN_FOR`]; a portal is up while its bridge tunnel
//! is connected.

use crate::stats::{Stats, Traffic};
use crate::EngineError;
use shadowsocks::config::{ServerAddr, ServerConfig};
use shadowsocks::relay::socks5::Address;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long an outbound counts as down after a failed dial.
pub(crate) const DOWN_FOR: Duration = Duration::from_secs(10);

/// Recent dial results of one outbound; survives config applies.
#[derive(Debug, Default)]
pub(crate) struct Health {
    failed_at: Mutex<Option<Instant>>,
}

impl Health {
    pub(crate) fn up(&self) -> bool {
        let failed = self
            .failed_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        failed.is_none_or(|t| t.elapsed() >= DOWN_FOR)
    }

    pub(crate) fn record(&self, ok: bool) {
        let mut failed = self
            .failed_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *failed = if ok { None } else { Some(Instant::now()) };
    }
}

/// Dial records by outbound tag, and which outbounds the last applied config put in a
/// balancer. A member that a new config (re-)adds to a balancer starts with a clean record: the
/// control plane has just judged it healthy, so an old failed dial must not keep it out.
#[derive(Debug, Default)]
pub(crate) struct HealthBook {
    by_tag: HashMap<String, Arc<Health>>,
    members: HashSet<String>,
}

/// What an outbound does with a stream.
#[derive(Debug)]
pub(crate) enum OutboundKind {
    Freedom,
    Blackhole,
    /// A Shadowsocks client to one server; with `uot`, UDP rides inside a TCP stream.
    Shadowsocks {
        config: Box<ServerConfig>,
        uot: bool,
    },
    /// Streams go through the bridge tunnel registered for this portal.
    Portal {
        domain: String,
    },
}

/// One outbound or portal, ready to dial.
#[derive(Debug)]
pub(crate) struct OutboundRt {
    pub(crate) tag: Arc<str>,
    pub(crate) kind: OutboundKind,
    pub(crate) traffic: Traffic,
    pub(crate) health: Arc<Health>,
}

enum Target {
    Outbound(String),
    Balancer(String),
}

struct RuleRt {
    inbounds: HashSet<String>,
    domains: Vec<String>,
    target: Target,
}

struct BalancerRt {
    members: Vec<String>,
    next: AtomicUsize,
}

/// The routing table of one config.
pub(crate) struct Router {
    rules: Vec<RuleRt>,
    outbounds: HashMap<String, Arc<OutboundRt>>,
    balancers: HashMap<String, BalancerRt>,
    default: Option<String>,
}

impl Router {
    /// An empty table (before the first apply): routes nothing.
    pub(crate) fn empty() -> Router {
        Router {
            rules: Vec::new(),
            outbounds: HashMap::new(),
            balancers: HashMap::new(),
            default: None,
        }
    }

    /// Builds the table of `config`; `health` keeps each outbound's record across applies.
    pub(crate) fn build(
        config: &xray::Config,
        stats: &Stats,
        health: &Mutex<HealthBook>,
    ) -> Result<Router, EngineError> {
        let mut book = health.lock().unwrap_or_else(PoisonError::into_inner);
        let mut outbounds = HashMap::new();
        let mut add = |tag: &str, kind: OutboundKind| {
            let rt = OutboundRt {
                tag: tag.into(),
                kind,
                traffic: stats.traffic("outbound", tag),
                health: book.by_tag.entry(tag.to_owned()).or_default().clone(),
            };
            outbounds.insert(tag.to_owned(), Arc::new(rt));
        };
        for o in &config.outbounds {
            let kind = match o.protocol {
                xray::OutboundProtocol::Freedom => OutboundKind::Freedom,
                xray::OutboundProtocol::Blackhole => OutboundKind::Blackhole,
                xray::OutboundProtocol::Shadowsocks => {
                    let server = o.server().ok_or_else(|| EngineError::Outbound {
                        tag: o.tag.clone(),
                        message: "needs one server".into(),
                    })?;
                    let addr = match server.address.parse::<std::net::IpAddr>() {
                        Ok(ip) => ServerAddr::from(std::net::SocketAddr::new(ip, server.port)),
                        Err(_) => ServerAddr::DomainName(server.address.clone(), server.port),
                    };
                    let kind = crate::inbound::cipher_kind(server.method);
                    let mut config = ServerConfig::new(addr, server.password.as_str(), kind)
                        .map_err(|e| EngineError::Outbound {
                            tag: o.tag.clone(),
                            message: e.to_string(),
                        })?;
                    config.set_timeout(crate::DIAL_TIMEOUT);
                    OutboundKind::Shadowsocks {
                        config: Box::new(config),
                        uot: server.uot,
                    }
                }
            };
            add(&o.tag, kind);
        }
        for p in &config.reverse.portals {
            add(
                &p.tag,
                OutboundKind::Portal {
                    domain: p.domain.clone(),
                },
            );
        }
        let rules = config
            .routing
            .rules
            .iter()
            .map(|r| RuleRt {
                inbounds: r.inbound_tag.iter().cloned().collect(),
                domains: r
                    .domain
                    .iter()
                    .map(|d| d.strip_prefix("full:").unwrap_or(d).to_ascii_lowercase())
                    .collect(),
                target: match (&r.outbound_tag, &r.balancer_tag) {
                    (Some(o), _) => Target::Outbound(o.clone()),
                    (None, Some(b)) => Target::Balancer(b.clone()),
                    (None, None) => Target::Outbound(String::new()),
                },
            })
            .collect();
        let balancers = config
            .routing
            .balancers
            .iter()
            .map(|b| {
                let rt = BalancerRt {
                    members: b.selector.clone(),
                    next: AtomicUsize::new(0),
                };
                (b.tag.clone(), rt)
            })
            .collect::<HashMap<String, BalancerRt>>();
        let members: HashSet<String> = balancers
            .values()
            .flat_map(|b| b.members.iter().cloned())
            .collect();
        for tag in members.difference(&book.members) {
            if let Some(h) = book.by_tag.get(tag) {
                h.record(true);
            }
        }
        book.members = members;
        Ok(Router {
            rules,
            outbounds,
            balancers,
            default: config.outbounds.first().map(|o| o.tag.clone()),
        })
    }

    /// The outbound or portal tagged `tag`.
    #[cfg(test)]
    pub(crate) fn outbound(&self, tag: &str) -> Option<&Arc<OutboundRt>> {
        self.outbounds.get(tag)
    }

    /// Where a stream from `inbound` to `addr` goes. `portal_up` tells whether a portal's tunnel
    /// is connected.
    pub(crate) fn route(
        &self,
        inbound: &str,
        addr: &Address,
        portal_up: &dyn Fn(&str) -> bool,
    ) -> Option<Arc<OutboundRt>> {
        let domain = match addr {
            Address::DomainNameAddress(d, _) => Some(d.to_ascii_lowercase()),
            Address::SocketAddress(_) => None,
        };
        let rule = self.rules.iter().find(|r| {
            r.inbounds.contains(inbound)
                && (r.domains.is_empty() || domain.as_ref().is_some_and(|d| r.domains.contains(d)))
        });
        let target = match rule {
            Some(r) => &r.target,
            None => return self.outbounds.get(self.default.as_deref()?).cloned(),
        };
        match target {
            Target::Outbound(tag) => self.outbounds.get(tag).cloned(),
            Target::Balancer(tag) => self.pick(self.balancers.get(tag)?, portal_up),
        }
    }

    fn pick(&self, b: &BalancerRt, portal_up: &dyn Fn(&str) -> bool) -> Option<Arc<OutboundRt>> {
        let members: Vec<&Arc<OutboundRt>> = b
            .members
            .iter()
            .filter_map(|m| self.outbounds.get(m))
            .collect();
        let up: Vec<&Arc<OutboundRt>> = members
            .iter()
            .copied()
            .filter(|o| match o.kind {
                OutboundKind::Portal { .. } => portal_up(&o.tag),
                _ => o.health.up(),
            })
            .collect();
        let pool = if up.is_empty() { &members } else { &up };
        if pool.is_empty() {
            return None;
        }
        let i = b.next.fetch_add(1, Ordering::Relaxed) % pool.len();
        Some(pool[i].clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xray::{Balancer, Config, Outbound, ReverseItem, Rule};

    fn router(c: &Config) -> Router {
        Router::build(c, &Stats::default(), &Mutex::default()).expect("router")
    }

    fn config() -> Config {
        let mut c = Config::skeleton("info");
        c.outbounds.push(Outbound::blackhole("block"));
        c.outbounds.push(Outbound::freedom("out2"));
        c.reverse.portals.push(ReverseItem {
            tag: "portal-1".into(),
            domain: "s1.reverse.proxy".into(),
        });
        c.routing.balancers.push(Balancer {
            tag: "bal".into(),
            selector: vec!["out".into(), "out2".into()],
        });
        c.routing.balancers.push(Balancer {
            tag: "portal".into(),
            selector: vec!["portal-1".into()],
        });
        c.routing.rules = vec![
            Rule::to_outbound("a", "block").for_domain("bad.example"),
            Rule::to_outbound("a", "out2"),
            Rule::to_balancer("b", "bal"),
            Rule::to_balancer("r", "portal"),
        ];
        c
    }

    fn dom(d: &str) -> Address {
        Address::DomainNameAddress(d.into(), 80)
    }

    #[test]
    fn first_matching_rule_wins_and_domains_are_exact() {
        let r = router(&config());
        let up = |_: &str| true;
        assert_eq!(
            &*r.route("a", &dom("BAD.example"), &up).expect("route").tag,
            "block"
        );
        assert_eq!(
            &*r.route("a", &dom("x.bad.example"), &up).expect("route").tag,
            "out2"
        );
        let ip = Address::SocketAddress("127.0.0.1:1".parse().expect("addr"));
        assert_eq!(&*r.route("a", &ip, &up).expect("route").tag, "out2");
        assert_eq!(&*r.route("nobody", &ip, &up).expect("route").tag, "out");
    }

    #[test]
    fn balancer_skips_members_that_are_down() {
        let r = router(&config());
        let up = |_: &str| true;
        let picks: Vec<String> = (0..4)
            .map(|_| r.route("b", &dom("x"), &up).expect("route").tag.to_string())
            .collect();
        assert_eq!(picks, ["out", "out2", "out", "out2"]);
        r.outbound("out").expect("out").health.record(false);
        for _ in 0..3 {
            assert_eq!(&*r.route("b", &dom("x"), &up).expect("route").tag, "out2");
        }
        r.outbound("out").expect("out").health.record(true);
        let tags: HashSet<String> = (0..2)
            .map(|_| r.route("b", &dom("x"), &up).expect("route").tag.to_string())
            .collect();
        assert_eq!(tags.len(), 2);
    }

    #[test]
    fn a_member_readded_by_the_control_plane_starts_clean() {
        let (stats, book) = (Stats::default(), Mutex::default());
        let full = config();
        let r = Router::build(&full, &stats, &book).expect("router");
        r.outbound("out").expect("out").health.record(false);
        // Still a member in the next config: the failure is remembered.
        let r = Router::build(&full, &stats, &book).expect("router");
        assert!(!r.outbound("out").expect("out").health.up());
        // Dropped from the balancer, then added back: clean record.
        let mut without = full.clone();
        without.routing.balancers[0].selector = vec!["out2".into()];
        let r = Router::build(&without, &stats, &book).expect("router");
        assert!(!r.outbound("out").expect("out").health.up());
        let r = Router::build(&full, &stats, &book).expect("router");
        assert!(r.outbound("out").expect("out").health.up());
    }

    #[test]
    fn portal_members_follow_their_tunnel() {
        let r = router(&config());
        let down = |_: &str| false;
        // With no member up, the balancer still answers (the dial will fail fast).
        assert_eq!(
            &*r.route("r", &dom("x"), &down).expect("route").tag,
            "portal-1"
        );
    }
}
