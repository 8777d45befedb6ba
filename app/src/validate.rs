//! Form validation shared by the browser (instant messages before a request is sent) and the
//! server functions (the same rules again, before the manager's own validation runs).
//!
//! Each function returns the parsed value or an [`AppError::Invalid`] naming the field, with the
//! field names the manager uses, so client and server messages land next to the same input.

use crate::error::AppError;
use crate::format;

/// Minimum administrator password length.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Maximum length of user and administrator names.
pub const MAX_NAME_CHARS: usize = 64;

/// A name the manager accepts: 1–64 letters, digits or `_ - . @`.
fn name(field: &str, value: &str, empty: &str) -> Result<String, AppError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(AppError::invalid(field, empty));
    }
    let ok = value.chars().count() <= MAX_NAME_CHARS
        && value
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '@'));
    if !ok {
        return Err(AppError::invalid(
            field,
            "Use 1–64 letters, digits or _ - . @ (no spaces).",
        ));
    }
    Ok(value.to_owned())
}

/// An administrator user name.
pub fn username(value: &str) -> Result<String, AppError> {
    name("username", value, "Enter a user name.")
}

/// A new administrator password and its confirmation.
pub fn new_password(password: &str, confirm: &str) -> Result<(), AppError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AppError::invalid(
            "password",
            format!("Use at least {MIN_PASSWORD_CHARS} characters."),
        ));
    }
    if password != confirm {
        return Err(AppError::invalid("confirm", "The passwords do not match."));
    }
    Ok(())
}

/// A proxy user's name.
pub fn user_name(value: &str) -> Result<String, AppError> {
    name("name", value, "Enter a name.")
}

/// A quota typed in GB (0 = unlimited), returned in bytes.
pub fn quota_gb(value: &str) -> Result<i64, AppError> {
    format::parse_gb(value).map_err(|m| AppError::invalid("quota_bytes", m))
}

/// A quota in bytes as submitted to the server.
pub fn quota_bytes(value: i64) -> Result<i64, AppError> {
    if value < 0 {
        return Err(AppError::invalid(
            "quota_bytes",
            "The quota cannot be negative.",
        ));
    }
    Ok(value)
}

/// A host name or IP address (no scheme, no port, no spaces).
pub fn host(field: &str, value: &str, required: bool) -> Result<String, AppError> {
    let value = value.trim();
    if value.is_empty() {
        return if required {
            Err(AppError::invalid(field, "Enter a host name or IP address."))
        } else {
            Ok(String::new())
        };
    }
    if value.len() > 253 {
        return Err(AppError::invalid(field, "The host is too long."));
    }
    if value.contains("://") || value.contains('/') || value.chars().any(char::is_whitespace) {
        return Err(AppError::invalid(
            field,
            "Enter only a host name or IP address, without scheme, path or spaces.",
        ));
    }
    Ok(value.to_owned())
}

/// A TCP port typed into a field; `allow_zero` for the mode ports, where 0 turns the mode off.
pub fn port(field: &str, value: &str, allow_zero: bool) -> Result<u16, AppError> {
    let parsed: u16 = value
        .trim()
        .parse()
        .map_err(|_| AppError::invalid(field, "Enter a port number from 0 to 65535."))?;
    if parsed == 0 && !allow_zero {
        return Err(AppError::invalid(
            field,
            "Enter a port number from 1 to 65535.",
        ));
    }
    Ok(parsed)
}

/// A node API token: empty (generate one) or 16–256 printable ASCII characters.
pub fn node_token(value: &str) -> Result<String, AppError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(String::new());
    }
    if !(16..=256).contains(&value.len()) || !value.chars().all(|c| c.is_ascii_graphic()) {
        return Err(AppError::invalid(
            "http_token",
            "A token has 16 to 256 printable characters and no spaces; leave it empty to generate one.",
        ));
    }
    Ok(value.to_owned())
}

/// Schemes the manager can use for its fallback proxy.
pub const PROXY_SCHEMES: [&str; 4] = ["socks5://", "socks5h://", "http://", "https://"];

/// The fallback proxy URL: empty, or `socks5://`, `socks5h://`, `http://`, `https://` with host
/// and port.
pub fn proxy_url(value: &str) -> Result<String, AppError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(String::new());
    }
    let rest = PROXY_SCHEMES
        .iter()
        .find_map(|s| value.strip_prefix(s))
        .ok_or_else(|| {
            AppError::invalid(
                "proxy_url",
                "Use a socks5:// or http:// URL, or leave it empty.",
            )
        })?;
    let authority = rest.split('/').next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    match host_port.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0) => {
            Ok(value.to_owned())
        }
        _ => Err(AppError::invalid(
            "proxy_url",
            "The proxy URL needs a host and a port, e.g. socks5://127.0.0.1:1080.",
        )),
    }
}

/// The traffic ratio (a multiplier applied to usage): above 0, at most 1000.
pub fn traffic_ratio(value: &str) -> Result<f64, AppError> {
    let ratio: f64 = value
        .trim()
        .parse()
        .map_err(|_| AppError::invalid("traffic_ratio", "Enter a number, e.g. 1 or 1.5."))?;
    if !ratio.is_finite() || ratio <= 0.0 || ratio > 1000.0 {
        return Err(AppError::invalid(
            "traffic_ratio",
            "Use a number above 0 and at most 1000.",
        ));
    }
    Ok(ratio)
}

/// Private networks open to user traffic: CIDRs separated by commas, spaces or new lines, each
/// checked by the rule the manager and the data plane use (`xray::cidr`).
pub fn networks(value: &str) -> Result<Vec<String>, AppError> {
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|s| {
            xray::cidr::Cidr::parse(s)
                .map(|c| c.to_string())
                .map_err(|e| AppError::invalid("allowed_private_networks", e.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_use_the_shared_rule() {
        assert_eq!(
            networks("10.1.0.0/16, ::1\n192.168.5.0/24"),
            Ok(vec![
                "10.1.0.0/16".into(),
                "::1/128".into(),
                "192.168.5.0/24".into()
            ])
        );
        assert_eq!(networks(""), Ok(Vec::new()));
        assert_eq!(field(networks("10.1.0.1/16")), "allowed_private_networks");
    }

    fn field(r: Result<impl std::fmt::Debug, AppError>) -> String {
        r.expect_err("should fail")
            .field()
            .unwrap_or_default()
            .to_owned()
    }

    #[test]
    fn passwords() {
        assert_eq!(field(new_password("short", "short")), "password");
        assert_eq!(
            field(new_password("long-enough-pw", "other-password")),
            "confirm"
        );
        assert!(new_password("long-enough-pw", "long-enough-pw").is_ok());
    }

    #[test]
    fn ports_and_hosts() {
        assert_eq!(port("http_port", "8080", false), Ok(8080));
        assert_eq!(field(port("http_port", "0", false)), "http_port");
        assert_eq!(port("ss_relay_port", "0", true), Ok(0));
        assert_eq!(field(port("ss_relay_port", "70000", true)), "ss_relay_port");
        assert_eq!(host("host", " 10.0.0.1 ", true), Ok("10.0.0.1".to_owned()));
        assert_eq!(field(host("host", "http://x", true)), "host");
        assert_eq!(field(host("host", "", true)), "host");
        assert_eq!(host("host", "", false), Ok(String::new()));
    }

    #[test]
    fn proxy_urls() {
        assert!(proxy_url("").is_ok());
        assert!(proxy_url("socks5://127.0.0.1:1080").is_ok());
        assert!(proxy_url("http://user:pw@proxy.example:3128/").is_ok());
        assert!(proxy_url("socks5h://127.0.0.1:1080").is_ok());
        assert_eq!(field(proxy_url("ftp://x:1")), "proxy_url");
        assert_eq!(field(proxy_url("socks5://host")), "proxy_url");
    }

    #[test]
    fn users_and_ratio() {
        assert_eq!(field(user_name("  ")), "name");
        assert_eq!(field(user_name(&"x".repeat(65))), "name");
        assert_eq!(field(user_name("two words")), "name");
        assert_eq!(user_name(" bob.smith@x "), Ok("bob.smith@x".to_owned()));
        assert_eq!(quota_gb("2"), Ok(2_000_000_000));
        assert_eq!(field(quota_gb("-2")), "quota_bytes");
        assert_eq!(traffic_ratio("1.5"), Ok(1.5));
        assert_eq!(field(traffic_ratio("0")), "traffic_ratio");
        assert_eq!(field(node_token("short")), "http_token");
        assert_eq!(field(node_token("sixteen chars ok")), "http_token");
        assert!(node_token("0123456789abcdef").is_ok());
        assert_eq!(node_token(""), Ok(String::new()));
    }
}
