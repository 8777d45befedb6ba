//! IP networks (`10.0.0.0/8`, `fc00::/7`, a bare address) as routing rules and settings name
//! them, the built-in set of private destinations (`geoip:private`), and set subtraction, which
//! turns "private minus what the operator allows" into a plain list of networks.
//!
//! One home for these rules: the manager validates its allow-list setting with [`Cidr::parse`],
//! the writer builds the block rule with [`private_except`], the engine matches with
//! [`Cidr::contains`].

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// The name that stands for [`PRIVATE`] in a rule's `ip` list (as in Xray).
pub const GEOIP_PRIVATE: &str = "geoip:private";

/// Destinations user traffic must not reach by default: this-network, loopback, RFC 1918,
/// CGNAT, link-local, benchmarking, multicast and reserved IPv4; unspecified, loopback,
/// IPv4-mapped, ULA, link-local and multicast IPv6.
pub const PRIVATE: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/128",
    "::1/128",
    "::ffff:0:0/96",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
];

/// An IP network: an address and a prefix length; the host bits are zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// Why a network does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not an IP network: {reason}")]
pub struct CidrError {
    input: String,
    reason: &'static str,
}

fn bits(addr: IpAddr) -> (u128, u8) {
    match addr {
        IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    }
}

fn mask(width: u8, prefix: u8) -> u128 {
    let all = if width == 128 {
        u128::MAX
    } else {
        (1u128 << width) - 1
    };
    if prefix == 0 {
        0
    } else {
        all & !((1u128 << (width - prefix)) - 1)
    }
}

fn from_bits(v4: bool, value: u128) -> IpAddr {
    if v4 {
        IpAddr::V4(Ipv4Addr::from(u32::try_from(value).unwrap_or(u32::MAX)))
    } else {
        IpAddr::V6(Ipv6Addr::from(value))
    }
}

impl Cidr {
    /// `addr/prefix` or a bare address (a /32 or /128). Host bits must be zero, IPv4 in the
    /// canonical dotted form.
    pub fn parse(input: &str) -> Result<Cidr, CidrError> {
        let fail = |reason| CidrError {
            input: input.to_owned(),
            reason,
        };
        let (addr, prefix) = match input.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (input, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| fail("not an IP address"))?;
        let width = bits(addr).1;
        let prefix = match prefix {
            None => width,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.len() <= 3 => {
                p.parse::<u8>().map_err(|_| fail("bad prefix length"))?
            }
            Some(_) => return Err(fail("bad prefix length")),
        };
        if prefix > width {
            return Err(fail("prefix length longer than the address"));
        }
        let (value, _) = bits(addr);
        if value & !mask(width, prefix) != 0 {
            return Err(fail("host bits are set (use the network address)"));
        }
        Ok(Cidr { addr, prefix })
    }

    /// The network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Does the network hold `ip`? An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is matched as
    /// the IPv4 address it carries too.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let inside = |ip: IpAddr| {
            let (net, width) = bits(self.addr);
            let (value, w) = bits(ip);
            w == width && value & mask(width, self.prefix) == net
        };
        match ip {
            IpAddr::V6(v6) => inside(ip) || v6.to_ipv4_mapped().is_some_and(|v4| inside(v4.into())),
            IpAddr::V4(_) => inside(ip),
        }
    }

    fn range(&self) -> (bool, u128, u128) {
        let (net, width) = bits(self.addr);
        (
            width == 32,
            net,
            net | !mask(width, self.prefix) & mask(width, width),
        )
    }

    /// The networks covering `self` minus `other`, in address order.
    fn minus(&self, other: &Cidr) -> Vec<Cidr> {
        let (v4, lo, hi) = self.range();
        let (ov4, olo, ohi) = other.range();
        if v4 != ov4 || ohi < lo || olo > hi {
            return vec![*self];
        }
        let mut out = Vec::new();
        if olo > lo {
            out.extend(cover(v4, lo, olo - 1));
        }
        if ohi < hi {
            out.extend(cover(v4, ohi + 1, hi));
        }
        out
    }
}

/// The fewest networks covering exactly `lo..=hi`.
fn cover(v4: bool, mut lo: u128, hi: u128) -> Vec<Cidr> {
    let width: u8 = if v4 { 32 } else { 128 };
    let mut out = Vec::new();
    loop {
        // The largest aligned block starting at `lo` that ends at or before `hi`.
        let mut size_bits = if lo == 0 {
            u32::from(width)
        } else {
            lo.trailing_zeros().min(u32::from(width))
        };
        while size_bits > 0 {
            let last = if size_bits >= 128 {
                u128::MAX
            } else {
                lo + ((1u128 << size_bits) - 1)
            };
            if last <= hi {
                break;
            }
            size_bits -= 1;
        }
        let prefix = width - u8::try_from(size_bits).unwrap_or(width);
        out.push(Cidr {
            addr: from_bits(v4, lo),
            prefix,
        });
        let end = if size_bits >= 128 {
            u128::MAX
        } else {
            lo + ((1u128 << size_bits) - 1)
        };
        if end >= hi {
            return out;
        }
        lo = end + 1;
    }
}

impl FromStr for Cidr {
    type Err = CidrError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Cidr::parse(s)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The built-in private networks.
pub fn private() -> Vec<Cidr> {
    PRIVATE.iter().filter_map(|c| Cidr::parse(c).ok()).collect()
}

/// Expands one entry of a rule's `ip` list: a network, or [`GEOIP_PRIVATE`].
pub fn expand(entry: &str) -> Result<Vec<Cidr>, CidrError> {
    if entry.eq_ignore_ascii_case(GEOIP_PRIVATE) {
        Ok(private())
    } else {
        Cidr::parse(entry).map(|c| vec![c])
    }
}

/// The private networks minus the ones in `allowed`: what a block rule lists when the operator
/// opens some private ranges to user traffic.
pub fn private_except(allowed: &[Cidr]) -> Vec<Cidr> {
    let mut nets = private();
    for a in allowed {
        nets = nets.iter().flat_map(|n| n.minus(a)).collect();
    }
    nets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn parse_accepts_networks_and_refuses_the_rest() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("10.0.0.0/8", Ok("10.0.0.0/8")),
            ("192.168.1.7", Ok("192.168.1.7/32")),
            ("::1", Ok("::1/128")),
            ("fc00::/7", Ok("fc00::/7")),
            ("0.0.0.0/0", Ok("0.0.0.0/0")),
            ("10.0.0.1/8", Err("host bits")),
            ("10.0.0.0/33", Err("longer")),
            ("10.0.0.0/", Err("prefix")),
            ("10.0.0.0/+8", Err("prefix")),
            ("010.0.0.0/8", Err("not an IP")),
            ("example.com", Err("not an IP")),
            ("", Err("not an IP")),
        ];
        for (input, want) in cases {
            match (Cidr::parse(input), want) {
                (Ok(c), Ok(s)) => assert_eq!(c.to_string(), *s, "{input}"),
                (Err(e), Err(part)) => assert!(e.to_string().contains(part), "{input}: {e}"),
                (got, want) => panic!("{input}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn private_set_holds_what_users_must_not_reach() {
        let nets = private();
        let private_ips = [
            "127.0.0.1",
            "127.255.255.254",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.0.1",
            "100.64.0.1",
            "169.254.169.254",
            "0.0.0.0",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ];
        for s in private_ips {
            assert!(nets.iter().any(|n| n.contains(ip(s))), "{s} is private");
        }
        for s in [
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2001:db8::1",
            "8.8.8.8",
        ] {
            assert!(!nets.iter().any(|n| n.contains(ip(s))), "{s} is public");
        }
    }

    #[test]
    fn subtraction_opens_exactly_the_allowed_range() {
        let allowed = [Cidr::parse("10.1.0.0/16").expect("cidr")];
        let nets = private_except(&allowed);
        let inside = |s: &str| nets.iter().any(|n| n.contains(ip(s)));
        assert!(!inside("10.1.0.0"));
        assert!(!inside("10.1.255.255"));
        assert!(inside("10.0.255.255"));
        assert!(inside("10.2.0.0"));
        assert!(inside("127.0.0.1"));
        // 10/8 minus 10.1/16 is eight networks: 10.0/16, 10.2/15, 10.4/14, … 10.128/9.
        let tens: Vec<String> = nets
            .iter()
            .filter(|n| Cidr::parse("10.0.0.0/8").expect("cidr").contains(n.addr()))
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            tens,
            [
                "10.0.0.0/16",
                "10.2.0.0/15",
                "10.4.0.0/14",
                "10.8.0.0/13",
                "10.16.0.0/12",
                "10.32.0.0/11",
                "10.64.0.0/10",
                "10.128.0.0/9"
            ]
        );
        let all_v4 = private_except(&[Cidr::parse("0.0.0.0/0").expect("cidr")]);
        assert!(all_v4.iter().all(|n| n.addr().is_ipv6()));
        let loopback = private_except(&[Cidr::parse("127.0.0.0/8").expect("cidr")]);
        assert!(!loopback.iter().any(|n| n.contains(ip("127.0.0.1"))));
        assert!(loopback.iter().any(|n| n.contains(ip("::1"))));
    }

    #[test]
    fn geoip_private_expands() {
        assert_eq!(expand("geoip:private").expect("set").len(), PRIVATE.len());
        assert_eq!(expand("1.2.3.4").expect("one").len(), 1);
        assert!(expand("geoip:cn").is_err());
    }
}
