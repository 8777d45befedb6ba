//! Routing: the runtime form of outbounds, portals, rules and balancers.
//!
//! Rules are tried in order (first match wins) on the inbound tag and, when a rule lists
//! domains, on an exact (`full:`) match of the target domain, and when it lists networks
//! (`ip`), on the destination address. A domain destination has no address under the `AsIs`
//! strategy; under `IPOnDemand` it is resolved before rules with networks are tried, under
//! `IPIfNonMatch` only when no rule matched the name (both as in Xray). With no match the first
//! outbound is used, as in Xray. A balancer picks round-robin among its members that are up: an
//! outbound is up unless a dial to it failed within [`DOWN_FOR`]; a portal is up while its
//! bridge tunnel is connected.
//!
//! Reverse domains (every portal's and bridge's `sN.reverse.proxy`) are not destinations: a
//! portal's tunnel is registered only by a connection on an inbound that a rule sends straight
//! to that portal ([`Router::portal_for`]); see `Shared::route_user`.

use crate::stats::{Counter, Stats, Traffic};
use crate::EngineError;
use shadowsocks::config::{ServerAddr, ServerConfig};
use shadowsocks::relay::socks5::Address;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
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
    Portal,
}

/// One outbound or portal, ready to dial.
#[derive(Debug)]
pub(crate) struct OutboundRt {
    pub(crate) tag: Arc<str>,
    pub(crate) kind: OutboundKind,
    pub(crate) traffic: Traffic,
    /// Connections and datagrams refused by a blackhole (`outbound>>>{tag}>>>refused>>>…`).
    pub(crate) refused: Option<(Counter, Counter)>,
    pub(crate) health: Arc<Health>,
}

/// When a domain destination is resolved for rules with networks (Xray's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strategy {
    /// Never: rules with networks match literal addresses only.
    AsIs,
    /// When the name matched no rule, resolve it and try the rules again.
    IpIfNonMatch,
    /// Resolve it as soon as a rule with networks is tried.
    IpOnDemand,
}

impl Strategy {
    fn parse(s: &str) -> Strategy {
        match s {
            "IPIfNonMatch" => Strategy::IpIfNonMatch,
            "IPOnDemand" => Strategy::IpOnDemand,
            _ => Strategy::AsIs,
        }
    }
}

/// A domain as rules compare it: lower case, without a trailing dot.
pub(crate) fn normalize_domain(d: &str) -> String {
    d.strip_suffix('.').unwrap_or(d).to_ascii_lowercase()
}

enum Target {
    Outbound(String),
    Balancer(String),
}

struct RuleRt {
    inbounds: HashSet<String>,
    domains: Vec<String>,
    ips: Vec<xray::cidr::Cidr>,
    target: Target,
}

impl RuleRt {
    /// Does the rule take a stream from `inbound` to `domain` (if a name) at `ips`?
    fn matches(&self, inbound: &str, domain: Option<&str>, ips: &[IpAddr]) -> bool {
        self.inbounds.contains(inbound)
            && (self.domains.is_empty()
                || domain.is_some_and(|d| self.domains.iter().any(|x| x == d)))
            && (self.ips.is_empty()
                || ips
                    .iter()
                    .any(|ip| self.ips.iter().any(|n| n.contains(*ip))))
    }
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
    strategy: Strategy,
    /// Inbounds (and bridges) that some rule with networks applies to.
    ip_inbounds: HashSet<String>,
    /// Every portal's and bridge's domain, normalised.
    reverse_domains: HashSet<String>,
    /// Portal domain → (portal tag, the inbounds a rule sends straight to that portal).
    portal_owners: HashMap<String, (String, HashSet<String>)>,
}

/// Where a rule lookup ended.
pub(crate) enum Decision {
    /// A rule (or the default outbound) chose this outbound.
    To(Arc<OutboundRt>),
    /// Nothing to send it to (no outbound, or an empty balancer).
    Nowhere,
}

impl Router {
    /// An empty table (before the first apply): routes nothing.
    pub(crate) fn empty() -> Router {
        Router {
            rules: Vec::new(),
            outbounds: HashMap::new(),
            balancers: HashMap::new(),
            default: None,
            strategy: Strategy::AsIs,
            ip_inbounds: HashSet::new(),
            reverse_domains: HashSet::new(),
            portal_owners: HashMap::new(),
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
            let refused = matches!(kind, OutboundKind::Blackhole).then(|| {
                (
                    stats.counter(format!("outbound>>>{tag}>>>refused>>>connections")),
                    stats.counter(format!("outbound>>>{tag}>>>refused>>>datagrams")),
                )
            });
            let rt = OutboundRt {
                tag: tag.into(),
                kind,
                refused,
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
            add(&p.tag, OutboundKind::Portal);
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
                    .map(|d| normalize_domain(d.strip_prefix("full:").unwrap_or(d)))
                    .collect(),
                ips: r
                    .ip
                    .iter()
                    .filter_map(|n| xray::cidr::expand(n).ok())
                    .flatten()
                    .collect(),
                target: match (&r.outbound_tag, &r.balancer_tag) {
                    (Some(o), _) => Target::Outbound(o.clone()),
                    (None, Some(b)) => Target::Balancer(b.clone()),
                    (None, None) => Target::Outbound(String::new()),
                },
            })
            .collect::<Vec<RuleRt>>();
        let ip_inbounds = rules
            .iter()
            .filter(|r| !r.ips.is_empty())
            .flat_map(|r| r.inbounds.iter().cloned())
            .collect();
        let reverse_domains = config
            .reverse
            .portals
            .iter()
            .chain(&config.reverse.bridges)
            .map(|i| normalize_domain(&i.domain))
            .collect();
        let portal_owners = config
            .reverse
            .portals
            .iter()
            .map(|p| {
                let owners = rules
                    .iter()
                    .filter(|r| r.domains.is_empty() && r.ips.is_empty())
                    .filter(|r| matches!(&r.target, Target::Outbound(t) if *t == p.tag))
                    .flat_map(|r| r.inbounds.iter().cloned())
                    .collect();
                (normalize_domain(&p.domain), (p.tag.clone(), owners))
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
            strategy: Strategy::parse(&config.routing.domain_strategy),
            ip_inbounds,
            reverse_domains,
            portal_owners,
        })
    }

    /// The outbound or portal tagged `tag`.
    #[cfg(test)]
    pub(crate) fn outbound(&self, tag: &str) -> Option<&Arc<OutboundRt>> {
        self.outbounds.get(tag)
    }

    /// Where a stream from `inbound` to `addr` goes, with no name resolution (`ips` empty for a
    /// domain). `portal_up` tells whether a portal's tunnel is connected.
    pub(crate) fn route(
        &self,
        inbound: &str,
        addr: &Address,
        portal_up: &dyn Fn(&str) -> bool,
    ) -> Option<Arc<OutboundRt>> {
        match self.decide(inbound, addr, &[], portal_up).1 {
            Decision::To(out) => Some(out),
            Decision::Nowhere => None,
        }
    }

    /// Must a domain destination from `inbound` be resolved before deciding (`IPOnDemand` with a
    /// rule with networks for this inbound)?
    pub(crate) fn resolves_first(&self, inbound: &str) -> bool {
        self.strategy == Strategy::IpOnDemand && self.ip_inbounds.contains(inbound)
    }

    /// Should a domain that matched no rule be resolved and tried again (`IPIfNonMatch`)?
    pub(crate) fn resolves_on_miss(&self, inbound: &str) -> bool {
        self.strategy == Strategy::IpIfNonMatch && self.ip_inbounds.contains(inbound)
    }

    /// Is `domain` one of the reverse domains (portal or bridge)?
    pub(crate) fn is_reverse_domain(&self, domain: &str) -> bool {
        self.reverse_domains.contains(&normalize_domain(domain))
    }

    /// The portal whose tunnel a connection on `inbound` to `domain` registers, if that inbound is
    /// one a rule sends straight (no balancer, no domain or network condition) to the portal of
    /// `domain`.
    pub(crate) fn portal_for(&self, inbound: &str, domain: &str) -> Option<Arc<OutboundRt>> {
        let (tag, owners) = self.portal_owners.get(&normalize_domain(domain))?;
        if !owners.contains(inbound) {
            return None;
        }
        self.outbounds.get(tag).cloned()
    }

    /// Runs the rules for a stream from `inbound` to `addr`; `ips` are the destination's
    /// addresses when it is a resolved domain. Returns whether a rule matched, and the decision.
    pub(crate) fn decide(
        &self,
        inbound: &str,
        addr: &Address,
        ips: &[IpAddr],
        portal_up: &dyn Fn(&str) -> bool,
    ) -> (bool, Decision) {
        let (domain, literal) = match addr {
            Address::DomainNameAddress(d, _) => (Some(normalize_domain(d)), None),
            Address::SocketAddress(sa) => (None, Some([sa.ip()])),
        };
        let ips: &[IpAddr] = match &literal {
            Some(one) => one,
            None => ips,
        };
        let rule = self
            .rules
            .iter()
            .find(|r| r.matches(inbound, domain.as_deref(), ips));
        let out = match rule.map(|r| &r.target) {
            None => self
                .default
                .as_deref()
                .and_then(|d| self.outbounds.get(d))
                .cloned(),
            Some(Target::Outbound(tag)) => self.outbounds.get(tag).cloned(),
            Some(Target::Balancer(tag)) => self
                .balancers
                .get(tag)
                .and_then(|b| self.pick(b, portal_up)),
        };
        let decision = out.map_or(Decision::Nowhere, Decision::To);
        (rule.is_some(), decision)
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
                OutboundKind::Portal => portal_up(&o.tag),
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

    fn sock(s: &str) -> Address {
        Address::SocketAddress(s.parse().expect("socket address"))
    }

    #[test]
    fn network_rules_match_literal_addresses_and_resolved_names() {
        let mut c = config();
        c.routing.domain_strategy = "IPOnDemand".into();
        c.routing
            .rules
            .insert(0, Rule::block_private(vec!["a".into()], &[], "block"));
        let r = router(&c);
        let up = |_: &str| true;
        let tag = |addr: &Address, ips: &[IpAddr]| match r.decide("a", addr, ips, &up).1 {
            Decision::To(o) => o.tag.to_string(),
            Decision::Nowhere => String::new(),
        };
        assert_eq!(tag(&sock("127.0.0.1:80"), &[]), "block");
        assert_eq!(tag(&sock("[::1]:80"), &[]), "block");
        assert_eq!(tag(&sock("[::ffff:10.0.0.1]:80"), &[]), "block");
        assert_eq!(tag(&sock("1.1.1.1:80"), &[]), "out2");
        // A name is judged by what it resolved to; any private address refuses it.
        let public: IpAddr = "1.1.1.1".parse().expect("ip");
        let private: IpAddr = "192.168.1.1".parse().expect("ip");
        assert_eq!(tag(&dom("example.org"), &[public]), "out2");
        assert_eq!(tag(&dom("example.org"), &[public, private]), "block");
        assert!(r.resolves_first("a"));
        assert!(!r.resolves_first("b"), "no network rule for b: no lookup");
        // Other inbounds are not guarded by a's rule.
        assert!(
            matches!(r.decide("b", &sock("127.0.0.1:80"), &[], &up).1, Decision::To(o) if &*o.tag == "out" || &*o.tag == "out2")
        );
    }

    #[test]
    fn only_an_inbound_sent_straight_to_a_portal_may_register_its_tunnel() {
        let mut c = config();
        c.routing
            .rules
            .push(Rule::to_outbound("internal-1", "portal-1"));
        let r = router(&c);
        assert!(r.portal_for("internal-1", "s1.reverse.proxy").is_some());
        assert!(r.portal_for("internal-1", "S1.Reverse.Proxy.").is_some());
        // `r` reaches portal-1 only through a balancer: never a registration.
        assert!(r.portal_for("r", "s1.reverse.proxy").is_none());
        assert!(r.portal_for("a", "s1.reverse.proxy").is_none());
        assert!(r.portal_for("internal-1", "s2.reverse.proxy").is_none());
        assert!(r.is_reverse_domain("S1.REVERSE.PROXY."));
        assert!(!r.is_reverse_domain("reverse.proxy"));
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
