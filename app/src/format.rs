//! Pure formatting helpers shared by server rendering and the browser: sizes in GB, relative
//! times, ISO-8601 timestamps, certificate fingerprints in blocks. No I/O, no clock — callers
//! pass "now" in. Parsing typed values is `crate::validate`'s job.

/// `num / den` (`den` > 0) with `places` decimals, rounded half away from zero: `decimal(3, 2, 2)`
/// is `"1.50"`. Integer arithmetic, exact for every `i64` input, and it keeps floating-point
/// formatting out of the browser bundles.
pub fn decimal(num: i128, den: i128, places: u32) -> String {
    let scale = 10i128.pow(places);
    let q = (num.unsigned_abs() * scale.unsigned_abs() * 2 + den.unsigned_abs())
        / (den.unsigned_abs() * 2);
    let sign = if num < 0 && q != 0 { "-" } else { "" };
    let (whole, frac) = (q / scale.unsigned_abs(), q % scale.unsigned_abs());
    if places == 0 {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}.{frac:0width$}", width = places as usize)
    }
}

/// `n` with the noun in the number it needs: `"1 user"`, `"2 users"`, `"0 users"`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `bytes` as GB (10^9 bytes, as the manager's REST `usage` fields count) with two decimals,
/// e.g. `"1.50"`.
pub fn gb(bytes: i64) -> String {
    decimal(bytes.into(), rules::input::GB.into(), 2)
}

/// `bytes` in the largest decimal unit that keeps the number ≥ 1, e.g. `"512 B"`, `"1.50 MB"`.
pub fn bytes(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["KB", "MB", "GB", "TB", "PB"];
    if bytes.abs() < 1000 {
        return format!("{bytes} B");
    }
    let mut div: i128 = 1000;
    let mut unit = 0;
    while i128::from(bytes).abs() >= div * 1000 && unit + 1 < UNITS.len() {
        div *= 1000;
        unit += 1;
    }
    format!("{} {}", decimal(bytes.into(), div, 2), UNITS[unit])
}

/// A quota for display: `"unlimited"` for 0, otherwise GB with two decimals.
pub fn quota(bytes: i64) -> String {
    if bytes == 0 {
        "unlimited".to_owned()
    } else {
        gb(bytes)
    }
}

/// The value a GB input field starts with for `bytes` (no trailing zeros: `1.5`, `0`).
pub fn gb_input(bytes: i64) -> String {
    let s = decimal(bytes.into(), rules::input::GB.into(), 3);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

/// How long ago `at_ms` was, relative to `now_ms`; `"never"` for 0.
pub fn relative(now_ms: i64, at_ms: i64) -> String {
    if at_ms <= 0 {
        return "never".to_owned();
    }
    let secs = (now_ms - at_ms) / 1000;
    match secs {
        i64::MIN..=-5 => "in the future".to_owned(),
        -4..=4 => "just now".to_owned(),
        5..=59 => format!("{secs} s ago"),
        60..=3599 => format!("{} min ago", secs / 60),
        3600..=86_399 => format!("{} h ago", secs / 3600),
        _ => format!("{} d ago", secs / 86_400),
    }
}

/// `at_ms` (unix milliseconds) as `YYYY-MM-DDTHH:MM:SSZ`; empty for 0 (never).
pub fn iso8601(at_ms: i64) -> String {
    if at_ms <= 0 {
        return String::new();
    }
    let secs = at_ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A certificate fingerprint in blocks of four characters for reading (`"ab12"`, `"cd34"`, …);
/// the page spaces the blocks with CSS, so a copy of the value stays one unbroken string.
pub fn fingerprint_blocks(fingerprint: &str) -> Vec<String> {
    let chars: Vec<char> = fingerprint.chars().collect();
    chars.chunks(4).map(|c| c.iter().collect()).collect()
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Current time in unix milliseconds (browser clock in wasm, system clock on the server).
pub fn now_ms() -> i64 {
    #[cfg(all(target_arch = "wasm32", feature = "hydrate"))]
    {
        js_sys::Date::now() as i64
    }
    #[cfg(not(all(target_arch = "wasm32", feature = "hydrate")))]
    {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_pick_a_readable_unit() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(1000), "1.00 KB");
        assert_eq!(bytes(1_500_000), "1.50 MB");
        assert_eq!(bytes(2_345_678_901), "2.35 GB");
        assert_eq!(bytes(7_000_000_000_000_000_000), "7000.00 PB");
    }

    #[test]
    fn sizes() {
        assert_eq!(gb(0), "0.00");
        assert_eq!(gb(5_000_000), "0.01");
        assert_eq!(gb(4_999_999), "0.00");
        assert_eq!(gb(-1_500_000_000), "-1.50");
        assert_eq!(gb(i64::MAX), "9223372036.85");
        assert_eq!(decimal(3, 2, 2), "1.50");
        assert_eq!(decimal(-1, 3, 0), "0");
        assert_eq!(decimal(-2, 3, 1), "-0.7");
        assert_eq!(gb(1_500_000_000), "1.50");
        assert_eq!(quota(0), "unlimited");
        assert_eq!(gb_input(1_500_000_000), "1.5");
        assert_eq!(gb_input(0), "0");
        assert_eq!(gb_input(10_000_000_000), "10");
        assert_eq!(gb_input(1_234_567_890), "1.235");
    }

    #[test]
    fn relative_times() {
        let now = 1_000_000_000;
        assert_eq!(relative(now, 0), "never");
        assert_eq!(relative(now, now - 2_000), "just now");
        assert_eq!(relative(now, now - 42_000), "42 s ago");
        assert_eq!(relative(now, now - 3 * 60_000), "3 min ago");
        assert_eq!(relative(now, now - 5 * 3_600_000), "5 h ago");
        assert_eq!(relative(now, now - 2 * 86_400_000), "2 d ago");
        assert_eq!(relative(now, now + 60_000), "in the future");
    }

    #[test]
    fn fingerprints_in_blocks() {
        let fp = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        let blocks = fingerprint_blocks(fp);
        assert_eq!(blocks.len(), 16);
        assert_eq!(blocks[0], "0011");
        assert_eq!(blocks[15], "eeff");
        assert_eq!(blocks.concat(), fp);
        assert_eq!(fingerprint_blocks("abcdef"), vec!["abcd", "ef"]);
        assert!(fingerprint_blocks("").is_empty());
    }

    #[test]
    fn iso_timestamps() {
        assert_eq!(iso8601(0), "");
        assert_eq!(iso8601(1), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_795_630_218_000), "2026-11-25T18:10:18Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00Z");
    }
}
