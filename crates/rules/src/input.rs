//! The rules for values an administrator types or an API client sends. Each function takes the
//! raw value, returns it parsed and in canonical form, or an [`Invalid`] naming the field (the
//! REST body key and the panel's form field) with a message fragment ("must be …"): the REST API
//! shows it as `field: message`, the panel as a sentence beside the input.

use std::net::IpAddr;

/// A value a rule refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    /// The field the value belongs to, e.g. `quota_bytes`.
    pub field: String,
    /// What the value must be, as a fragment: `must be …`.
    pub message: String,
}

impl Invalid {
    fn new(field: &str, message: impl Into<String>) -> Invalid {
        Invalid {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

type Result<T> = std::result::Result<T, Invalid>;

/// Most characters in a user or administrator name.
pub const MAX_NAME_CHARS: usize = 64;
/// Fewest characters in an administrator password.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Most bytes in an administrator password (bounds the hashing work).
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Bytes in one GB as Arch counts it (10^9, as the REST `usage` fields do).
pub const GB: i64 = 1_000_000_000;
/// Largest quota in GB (keeps byte counts far from `i64` overflow).
pub const MAX_QUOTA_GB: i64 = 1_000_000_000;
/// Largest quota in bytes.
pub const MAX_QUOTA_BYTES: i64 = MAX_QUOTA_GB * GB;
/// Most entries in the private-network allow-list.
pub const MAX_ALLOWED_NETWORKS: usize = 64;
/// Largest traffic ratio.
pub const MAX_TRAFFIC_RATIO: f64 = 1000.0;
/// Schemes of the fallback proxy.
pub const PROXY_SCHEMES: [&str; 4] = ["socks5://", "socks5h://", "http://", "https://"];

fn name(field: &str, value: &str) -> Result<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(Invalid::new(field, "must not be empty"));
    }
    let ok = value.chars().count() <= MAX_NAME_CHARS
        && value
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '@'));
    if !ok {
        return Err(Invalid::new(
            field,
            "must be 1–64 letters, digits or _ - . @ (no spaces)",
        ));
    }
    Ok(value.to_owned())
}

/// A proxy user's name (`name`), trimmed: 1–64 letters (any script), digits or `_ - . @`.
pub fn user_name(value: &str) -> Result<String> {
    name("name", value)
}

/// A node's name (`name`), trimmed: 1–64 characters, letters, digits, spaces and
/// `_ - . @ ( ) #`; it names the node in the panel and in end users' server lists (where clients
/// show it), so nothing that could break a list line or a YAML scalar. Runs of spaces become one.
pub fn node_name(value: &str) -> Result<String> {
    let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
    if value.is_empty() {
        return Err(Invalid::new("name", "must not be empty"));
    }
    let ok = value.chars().count() <= MAX_NAME_CHARS
        && value.chars().all(|c| {
            c.is_alphanumeric() || matches!(c, ' ' | '_' | '-' | '.' | '@' | '(' | ')' | '#')
        });
    if !ok {
        return Err(Invalid::new(
            "name",
            "must be 1–64 letters, digits, spaces or _ - . @ ( ) #",
        ));
    }
    Ok(value)
}

/// An administrator's name (`username`), by the user-name rule.
pub fn admin_name(value: &str) -> Result<String> {
    name("username", value)
}

/// An administrator password (`password`): at least 12 characters, at most 1024 bytes.
pub fn password(value: &str) -> Result<()> {
    if value.chars().count() < MIN_PASSWORD_CHARS {
        return Err(Invalid::new(
            "password",
            format!("must be at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if value.len() > MAX_PASSWORD_BYTES {
        return Err(Invalid::new(
            "password",
            format!("must be at most {MAX_PASSWORD_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// A quota in bytes (`quota_bytes`): 0 (unlimited) up to [`MAX_QUOTA_BYTES`].
pub fn quota_bytes(value: i64) -> Result<i64> {
    if value < 0 {
        return Err(Invalid::new("quota_bytes", "must be 0 (unlimited) or more"));
    }
    if value > MAX_QUOTA_BYTES {
        return Err(Invalid::new(
            "quota_bytes",
            format!("must be at most {MAX_QUOTA_GB} GB"),
        ));
    }
    Ok(value)
}

/// Latest expiry: the last millisecond of year 9999 (UTC).
pub const MAX_EXPIRE_AT_MS: i64 = 253_402_300_799_999;
/// Longest access counted from first use: 100 years of 365 days, in ms.
pub const MAX_ACCESS_MS: i64 = 100 * 365 * DAY_MS;
/// One day in ms.
pub const DAY_MS: i64 = 86_400_000;

/// When a user's access ends (`expire_at`), Unix ms: from 0 to [`MAX_EXPIRE_AT_MS`]. A time in
/// the past is accepted: it expires the user at once.
pub fn expire_at(value: i64) -> Result<i64> {
    if !(0..=MAX_EXPIRE_AT_MS).contains(&value) {
        return Err(Invalid::new(
            "expire_at",
            "must be a time in Unix milliseconds between 1970 and the end of 9999",
        ));
    }
    Ok(value)
}

/// How long a user's access lasts from the first counted byte (`expire_after_first_use`), in
/// ms: more than 0, at most 100 years.
pub fn expire_after_first_use(value: i64) -> Result<i64> {
    if !(1..=MAX_ACCESS_MS).contains(&value) {
        return Err(Invalid::new(
            "expire_after_first_use",
            "must be a duration in milliseconds above 0 and at most 100 years",
        ));
    }
    Ok(value)
}

/// An expiry typed in a form, in UTC: `YYYY-MM-DD` (the start of that day) or
/// `YYYY-MM-DD HH:MM` (a `T` may stand for the space); empty = never. Checked by [`expire_at`].
pub fn expire_at_text(value: &str) -> Result<Option<i64>> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let bad = || {
        Invalid::new(
            "expire_at",
            "must be a UTC date as YYYY-MM-DD or YYYY-MM-DD HH:MM, e.g. 2027-01-31",
        )
    };
    let (date, time) = match value.split_once([' ', 'T']) {
        Some((d, t)) => (d, Some(t.trim())),
        None => (value, None),
    };
    let num = |s: &str, len: usize| {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<i64>().ok())
            .flatten()
    };
    let mut parts = date.split('-');
    let (Some(y), Some(m), Some(d), None) = (
        parts.next().and_then(|s| num(s, 4)),
        parts.next().and_then(|s| num(s, 2)),
        parts.next().and_then(|s| num(s, 2)),
        parts.next(),
    ) else {
        return Err(bad());
    };
    let (hh, mm) = match time {
        None => (0, 0),
        Some(t) => match t.split_once(':') {
            Some((h, m)) => (num(h, 2).ok_or_else(bad)?, num(m, 2).ok_or_else(bad)?),
            None => return Err(bad()),
        },
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let valid = (1970..=9999).contains(&y)
        && (1..=12).contains(&m)
        && usize::try_from(m - 1)
            .ok()
            .and_then(|i| month_days.get(i))
            .is_some_and(|max| (1..=*max).contains(&d))
        && hh < 24
        && mm < 60;
    if !valid {
        return Err(bad());
    }
    let ms = (days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60) * 1000;
    expire_at(ms).map(Some)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (`m` 1–12, `d` 1–31).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days typed in a form (`"30"`; empty = none) as the ms of [`expire_after_first_use`].
pub fn access_days_text(value: &str) -> Result<Option<i64>> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let days: i64 = value.parse().map_err(|_| {
        Invalid::new(
            "expire_after_first_use",
            "must be a whole number of days, e.g. 30",
        )
    })?;
    days.checked_mul(DAY_MS)
        .filter(|ms| *ms > 0)
        .map_or_else(|| expire_after_first_use(0), expire_after_first_use)
        .map(Some)
}

/// A quota typed in GB (`"2.5"`, `" 10 "`; 0 = unlimited), in bytes, by the rule of
/// [`quota_bytes`].
pub fn quota_gb(value: &str) -> Result<i64> {
    let gb: f64 = value
        .trim()
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
        .ok_or_else(|| Invalid::new("quota_bytes", "must be a number of GB, e.g. 10 or 2.5"))?;
    if gb < 0.0 {
        return quota_bytes(-1);
    }
    if gb > MAX_QUOTA_GB as f64 {
        return quota_bytes(i64::MAX);
    }
    // In range: at most 10^18, exactly representable bounds, no overflow.
    quota_bytes((gb * GB as f64).round() as i64)
}

/// The canonical form of an address: IPv4-mapped IPv6 becomes IPv4.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// A host (the manager's public host, a node's address): a domain name or an IP address, in one
/// spelling per host, so the same node cannot be registered twice. Names are lowercased without a
/// trailing dot; IPv6 literals lose their brackets and take their compressed form; IPv4-mapped
/// IPv6 becomes IPv4. Numeric forms that only some resolvers read as IPv4 (`127.000.000.001`,
/// `127.1`, `0x7f.0.0.1`, `2130706433`) are refused, as are empty labels (`a..b`).
pub fn host(field: &str, value: &str) -> Result<String> {
    let invalid = || Invalid::new(field, "must be a domain name or an IP address");
    let host = value.trim();
    let unbracketed = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = unbracketed.parse::<IpAddr>() {
        return Ok(canonical_ip(ip).to_string());
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
        || last
            .strip_prefix("0x")
            .is_some_and(|h| h.chars().all(|c| c.is_ascii_hexdigit()));
    if !labels_ok || numeric {
        return Err(invalid());
    }
    Ok(name)
}

fn port_message(allow_zero: bool) -> &'static str {
    if allow_zero {
        "must be between 0 and 65535"
    } else {
        "must be between 1 and 65535"
    }
}

/// A TCP port; `allow_zero` for the mode ports, where 0 turns the mode off.
pub fn port(field: &str, value: u16, allow_zero: bool) -> Result<u16> {
    if value == 0 && !allow_zero {
        return Err(Invalid::new(field, port_message(allow_zero)));
    }
    Ok(value)
}

/// A port typed into a field, by the rule of [`port`].
pub fn port_text(field: &str, value: &str, allow_zero: bool) -> Result<u16> {
    let parsed = value
        .trim()
        .parse::<u16>()
        .map_err(|_| Invalid::new(field, port_message(allow_zero)))?;
    port(field, parsed, allow_zero)
}

/// A node API token (`http_token`), trimmed: 16–256 printable ASCII characters. Whether an empty
/// value means "generate one" or "keep the current one" is the caller's choice.
pub fn node_token(value: &str) -> Result<String> {
    let value = value.trim();
    if !(16..=256).contains(&value.len()) || !value.chars().all(|c| c.is_ascii_graphic()) {
        return Err(Invalid::new(
            "http_token",
            "must be 16–256 printable characters without spaces",
        ));
    }
    Ok(value.to_owned())
}

/// A certificate's SHA-256 fingerprint (`tls_fingerprint`), trimmed, as 64 lowercase hex digits
/// (the way arch-node prints it): 64 hex digits in either case, or 32 colon-separated pairs
/// (`AB:CD:…`, as browsers and `openssl x509 -fingerprint -sha256` show it).
pub fn fingerprint(value: &str) -> Result<String> {
    let value = value.trim();
    let digits: String = if value.contains(':') {
        let pairs: Vec<&str> = value.split(':').collect();
        if pairs.len() != 32 || pairs.iter().any(|p| p.len() != 2) {
            return Err(fingerprint_invalid());
        }
        pairs.concat()
    } else {
        value.to_owned()
    };
    if digits.len() != 64 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(fingerprint_invalid());
    }
    Ok(digits.to_ascii_lowercase())
}

fn fingerprint_invalid() -> Invalid {
    Invalid::new(
        "tls_fingerprint",
        "must be a SHA-256 certificate fingerprint: 64 hex digits, optionally as 32 colon-separated pairs",
    )
}

/// The fallback proxy (`proxy_url`), trimmed: empty (none), or `scheme://[user:pass@]host:port`
/// with a scheme of [`PROXY_SCHEMES`].
pub fn proxy_url(value: &str) -> Result<String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(String::new());
    }
    let rest = PROXY_SCHEMES
        .iter()
        .find_map(|s| value.strip_prefix(s))
        .ok_or_else(|| {
            Invalid::new(
                "proxy_url",
                "must start with socks5://, socks5h://, http:// or https://",
            )
        })?;
    let authority = rest.split('/').next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    match host_port.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0) => {
            Ok(value.to_owned())
        }
        _ => Err(Invalid::new(
            "proxy_url",
            "must be scheme://host:port, e.g. socks5://127.0.0.1:1080",
        )),
    }
}

/// The traffic ratio (`traffic_ratio`, a multiplier applied to usage): above 0, at most 1000.
pub fn traffic_ratio(value: f64) -> Result<f64> {
    if !(value.is_finite() && value > 0.0 && value <= MAX_TRAFFIC_RATIO) {
        return Err(Invalid::new(
            "traffic_ratio",
            "must be a number above 0 and at most 1000",
        ));
    }
    Ok(value)
}

/// A traffic ratio typed into a field, by the rule of [`traffic_ratio`].
pub fn traffic_ratio_text(value: &str) -> Result<f64> {
    traffic_ratio(value.trim().parse().unwrap_or(f64::NAN))
}

/// The day of the month a monthly reset falls on (`reset_day`): 1–31; in a shorter month the
/// reset falls on its last day.
pub fn reset_day(value: i32) -> Result<i32> {
    if !(1..=31).contains(&value) {
        return Err(Invalid::new(
            "reset_day",
            "must be a day of the month, 1 to 31",
        ));
    }
    Ok(value)
}

/// The largest per-node usage multiplier (100 × what the node carried).
pub const MAX_USAGE_MULTIPLIER: f64 = 100.0;

/// A node's usage multiplier (`usage_multiplier`, what one byte through the node counts for its
/// users): 0 (not counted) to [`MAX_USAGE_MULTIPLIER`], in steps of 0.001. Returned in
/// thousandths, as stored and applied (integer arithmetic, so it is applied exactly).
pub fn usage_multiplier(value: f64) -> Result<i32> {
    let permille = (value * 1000.0).round();
    if !(value.is_finite() && (0.0..=MAX_USAGE_MULTIPLIER).contains(&value))
        || (value * 1000.0 - permille).abs() > 1e-6
    {
        return Err(Invalid::new(
            "usage_multiplier",
            "must be a number from 0 to 100 with at most three decimals",
        ));
    }
    // In range: 0..=100_000.
    Ok(permille as i32)
}

/// A usage multiplier typed into a field, by the rule of [`usage_multiplier`].
pub fn usage_multiplier_text(value: &str) -> Result<i32> {
    usage_multiplier(value.trim().parse().unwrap_or(f64::NAN))
}

/// An IANA time zone name as typed (`time_zone`): `UTC` or `Area/Location` of letters, digits
/// and `_ - + /`, at most 64 characters. Whether the zone exists is the manager's to check.
pub fn time_zone(value: &str) -> Result<String> {
    let value = value.trim();
    let ok = !value.is_empty()
        && value.len() <= 64
        && !value.starts_with('/')
        && !value.contains("..")
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+' | '/'));
    if !ok {
        return Err(Invalid::new(
            "time_zone",
            "must be an IANA time zone name such as UTC or Europe/Berlin",
        ));
    }
    Ok(value.to_owned())
}

/// Private networks user traffic may reach (`allowed_private_networks`): at most
/// [`MAX_ALLOWED_NETWORKS`] CIDRs by the data plane's rule (`xray::cidr`), written canonically
/// (`10.1.0.0/16`, a bare address as /32 or /128), duplicates dropped, order kept.
pub fn networks<S: AsRef<str>>(entries: &[S]) -> Result<Vec<String>> {
    const FIELD: &str = "allowed_private_networks";
    if entries.len() > MAX_ALLOWED_NETWORKS {
        return Err(Invalid::new(
            FIELD,
            format!("must be at most {MAX_ALLOWED_NETWORKS} networks"),
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for entry in entries {
        let net = xray::cidr::Cidr::parse(entry.as_ref().trim())
            .map_err(|e| Invalid::new(FIELD, e.to_string()))?
            .to_string();
        if !out.contains(&net) {
            out.push(net);
        }
    }
    Ok(out)
}

/// Networks typed into one field, separated by commas, spaces or new lines, by the rule of
/// [`networks`].
pub fn networks_text(value: &str) -> Result<Vec<String>> {
    let entries: Vec<&str> = value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .collect();
    networks(&entries)
}

#[cfg(test)]
mod tests;
