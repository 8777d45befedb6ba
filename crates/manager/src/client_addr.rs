//! The client address of an HTTP request. The TCP peer is the client unless it is one of the
//! operator's trusted reverse proxies (`--trusted-proxy`); then the client is the rightmost
//! `X-Forwarded-For` entry that is not itself a trusted proxy. Entries a client wrote itself sit
//! to the left of what the trusted proxies appended, so they are never believed.

use std::net::IpAddr;
use std::str::FromStr;

/// An address range: `192.0.2.0/24`, `2001:db8::/32`, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// Why a `--trusted-proxy` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an IP address or CIDR range (e.g. 10.0.0.1, 10.0.0.0/8, fd00::/8)")]
pub struct BadCidr(String);

impl FromStr for Cidr {
    type Err = BadCidr;

    fn from_str(s: &str) -> Result<Cidr, BadCidr> {
        let bad = || BadCidr(s.to_owned());
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Cidr { addr, prefix })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// `ip` as IPv4 when it is an IPv4-mapped IPv6 address, so both spellings match the same range.
pub use rules::input::canonical_ip as canonical;

impl Cidr {
    /// Whether `ip` is in the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let mask = |bits: u32, width: u32| -> u128 {
            if bits == 0 {
                0
            } else {
                (u128::MAX << (width - bits)) & (u128::MAX >> (128 - width))
            }
        };
        match (canonical(self.addr), canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let m = mask(u32::from(self.prefix).min(32), 32);
                u128::from(u32::from(net)) & m == u128::from(u32::from(ip)) & m
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let m = mask(u32::from(self.prefix), 128);
                u128::from(net) & m == u128::from(ip) & m
            }
            _ => false,
        }
    }
}

/// The operator's reverse proxies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(pub Vec<Cidr>);

impl TrustedProxies {
    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    /// The client address of a request whose TCP peer is `peer` and whose `X-Forwarded-For`
    /// values (all of them, in order) are `forwarded_for`.
    pub fn client_ip<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl IntoIterator<Item = &'a str>,
    ) -> IpAddr {
        let peer = canonical(peer);
        if !self.contains(peer) {
            return peer;
        }
        let hops: Vec<&str> = forwarded_for
            .into_iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            // A garbled entry ends what can be believed: the last trusted hop is the client.
            let Ok(ip) = hop.parse::<IpAddr>().map(canonical) else {
                break;
            };
            client = ip;
            if !self.contains(ip) {
                break;
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn ranges() {
        let c: Cidr = "10.0.0.0/8".parse().expect("cidr");
        assert!(c.contains(ip("10.1.2.3")));
        assert!(c.contains(ip("::ffff:10.1.2.3")));
        assert!(!c.contains(ip("11.0.0.1")));
        let one: Cidr = "192.0.2.7".parse().expect("cidr");
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        let v6: Cidr = "fd00::/8".parse().expect("cidr");
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        let all: Cidr = "0.0.0.0/0".parse().expect("cidr");
        assert!(all.contains(ip("203.0.113.1")));
        for bad in ["10.0.0.0/33", "example.org", "10.0.0.0/x", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_only_from_trusted_peers() {
        let t = TrustedProxies(vec!["127.0.0.1".parse().expect("cidr")]);
        // An untrusted peer's header is ignored.
        assert_eq!(
            t.client_ip(ip("198.51.100.9"), ["203.0.113.1"]),
            ip("198.51.100.9")
        );
        // The rightmost untrusted entry; what the client wrote itself (left) is not believed.
        assert_eq!(
            t.client_ip(ip("127.0.0.1"), ["6.6.6.6, 203.0.113.1"]),
            ip("203.0.113.1")
        );
        assert_eq!(
            t.client_ip(ip("127.0.0.1"), ["6.6.6.6", "203.0.113.1, 127.0.0.1"]),
            ip("203.0.113.1")
        );
        assert_eq!(t.client_ip(ip("127.0.0.1"), ["junk"]), ip("127.0.0.1"));
        assert_eq!(t.client_ip(ip("127.0.0.1"), []), ip("127.0.0.1"));
    }
}
