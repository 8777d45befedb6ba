//! One spelling per node address, so the same node cannot be registered twice: names are
//! lowercased without a trailing dot, IPv6 literals lose their brackets and take their compressed
//! form, IPv4-mapped IPv6 becomes IPv4. Numeric forms that only some resolvers read as IPv4
//! (`127.000.000.001`, `127.1`, `0x7f.0.0.1`, `2130706433`) are refused outright.

use crate::{Result, ServiceError};
use std::net::IpAddr;

/// The canonical spelling of a node host, or an `Invalid` error on `field`.
pub fn normalize(field: &str, host: &str) -> Result<String> {
    let invalid = || ServiceError::invalid(field, "must be a domain name or an IP address");
    let host = host.trim();
    let unbracketed = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = unbracketed.parse::<IpAddr>() {
        return Ok(crate::client_addr::canonical(ip).to_string());
    }
    if unbracketed != host {
        return Err(invalid()); // brackets around something that is not IPv6
    }
    let name = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let labels_ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            (1..=63).contains(&l.len())
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    // A name whose last label is numeric (or hex) is an IPv4 address to URL parsers and many
    // resolvers; only the canonical dotted-decimal form (parsed above) is accepted.
    let last = name.rsplit('.').next().unwrap_or_default();
    let numeric = last.chars().all(|c| c.is_ascii_digit())
        || (last.starts_with("0x") && last[2..].chars().all(|c| c.is_ascii_hexdigit()));
    if !labels_ok || numeric {
        return Err(invalid());
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn spellings() {
        let same = [
            ("127.0.0.1", "127.0.0.1"),
            ("::ffff:127.0.0.1", "127.0.0.1"),
            ("[::ffff:127.0.0.1]", "127.0.0.1"),
            ("::1", "::1"),
            ("0:0:0:0:0:0:0:1", "::1"),
            ("[0:0:0:0:0:0:0:1]", "::1"),
            ("2001:DB8::0:1", "2001:db8::1"),
            ("localhost", "localhost"),
            ("LOCALHOST.", "localhost"),
            (" Node-1.Example.ORG. ", "node-1.example.org"),
        ];
        for (input, want) in same {
            assert_eq!(
                normalize("host", input).ok().as_deref(),
                Some(want),
                "{input}"
            );
        }
        for bad in [
            "127.000.000.001",
            "127.1",
            "0x7f.0.0.1",
            "2130706433",
            "0177.0.0.1",
            "[localhost]",
            "",
            ".",
            "a..b",
            "-x.example",
            "has space",
            "example.com..",
        ] {
            assert!(normalize("host", bad).is_err(), "{bad}");
        }
    }
}
