//! Every input rule with accepted and refused values, in one table: the rule, the input, and
//! either the canonical value or the field and message a refusal carries.

use super::*;

const HOST_MSG: &str = "must be a domain name or an IP address";
const NAME_MSG: &str = "must be 1–64 letters, digits or _ - . @ (no spaces)";
const NODE_NAME_MSG: &str = "must be 1–64 letters, digits, spaces or _ - . @ ( ) #";
const EXPIRE_MSG: &str = "must be a time in Unix milliseconds between 1970 and the end of 9999";
const ACCESS_MSG: &str = "must be a duration in milliseconds above 0 and at most 100 years";
const DATE_MSG: &str = "must be a UTC date as YYYY-MM-DD or YYYY-MM-DD HH:MM, e.g. 2027-01-31";
const DAYS_MSG: &str = "must be a whole number of days, e.g. 30";
const PORT1_MSG: &str = "must be between 1 and 65535";
const PORT0_MSG: &str = "must be between 0 and 65535";
const FP_MSG: &str =
    "must be a SHA-256 certificate fingerprint: 64 hex digits, optionally as 32 colon-separated pairs";
const FP_HEX: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const TOKEN_MSG: &str = "must be 16–256 printable characters without spaces";
const QUOTA_NEG: &str = "must be 0 (unlimited) or more";
const QUOTA_BIG: &str = "must be at most 1000000000 GB";
const QUOTA_NAN: &str = "must be a number of GB, e.g. 10 or 2.5";
const RATIO_MSG: &str = "must be a number above 0 and at most 1000";
const PROXY_SCHEME: &str = "must start with socks5://, socks5h://, http:// or https://";
const PROXY_HOST_PORT: &str = "must be scheme://host:port, e.g. socks5://127.0.0.1:1080";

/// A rule under test: text in, the accepted value as text out.
type Rule = fn(&str) -> Result<String>;

fn show<T: std::fmt::Debug>(r: Result<T>) -> Result<String> {
    r.map(|v| format!("{v:?}").trim_matches('"').to_owned())
}

fn int(s: &str) -> i64 {
    s.parse()
        .unwrap_or_else(|_| panic!("test input {s} is an integer"))
}

fn num<T: std::str::FromStr>(s: &str) -> T {
    s.parse()
        .unwrap_or_else(|_| panic!("test input {s} is a number"))
}

const RULES: &[(&str, Rule)] = &[
    ("user_name", |s| user_name(s)),
    ("admin_name", |s| admin_name(s)),
    ("node_name", |s| node_name(s)),
    ("expire_at", |s| show(expire_at(int(s)))),
    ("expire_after_first_use", |s| {
        show(expire_after_first_use(int(s)))
    }),
    ("access_days_text", |s| show(access_days_text(s))),
    ("expire_at_text", |s| show(expire_at_text(s))),
    ("password", |s| show(password(s))),
    ("quota_bytes", |s| show(quota_bytes(int(s)))),
    ("quota_gb", |s| show(quota_gb(s))),
    ("host", |s| host("host", s)),
    ("node_port", |s| show(port("http_port", num(s), false))),
    ("mode_port", |s| show(port("ss_relay_port", num(s), true))),
    ("node_port_text", |s| show(port_text("http_port", s, false))),
    ("mode_port_text", |s| {
        show(port_text("ss_relay_port", s, true))
    }),
    ("node_token", |s| node_token(s)),
    ("fingerprint", |s| fingerprint(s)),
    ("proxy_url", |s| proxy_url(s)),
    ("traffic_ratio", |s| show(traffic_ratio(num(s)))),
    ("traffic_ratio_text", |s| show(traffic_ratio_text(s))),
    ("networks_text", |s| show(networks_text(s))),
];

/// (rule, input, Ok(canonical value) or Err((field, message))).
type Case = (
    &'static str,
    &'static str,
    std::result::Result<&'static str, (&'static str, &'static str)>,
);

const CASES: &[Case] = &[
    // user and administrator names: trimmed, any script, no spaces, at most 64 characters
    ("user_name", " bob.smith@x ", Ok("bob.smith@x")),
    ("user_name", "Zoë_Ωmega-1", Ok("Zoë_Ωmega-1")),
    ("user_name", "用户", Ok("用户")),
    ("user_name", "  ", Err(("name", "must not be empty"))),
    ("user_name", "two words", Err(("name", NAME_MSG))),
    ("user_name", "semi;colon", Err(("name", NAME_MSG))),
    ("user_name", "tab\there", Err(("name", NAME_MSG))),
    ("user_name", "😀", Err(("name", NAME_MSG))),
    ("admin_name", " admin ", Ok("admin")),
    ("admin_name", "", Err(("username", "must not be empty"))),
    ("admin_name", "ad min", Err(("username", NAME_MSG))),
    // node names: spaces allowed (runs collapse), nothing that breaks a list line or YAML
    ("node_name", "  Frankfurt   #2 (edge) ", Ok("Frankfurt #2 (edge)")),
    ("node_name", "東京-1", Ok("東京-1")),
    ("node_name", " \t ", Err(("name", "must not be empty"))),
    ("node_name", "a: b", Err(("name", NODE_NAME_MSG))),
    ("node_name", "quote\"d", Err(("name", NODE_NAME_MSG))),
    ("node_name", "line\u{2028}sep", Ok("line sep")),
    ("node_name", "new\nline", Ok("new line")),
    ("node_name", "ctl\u{7}x", Err(("name", NODE_NAME_MSG))),
    ("node_name", "x\u{200b}y", Err(("name", NODE_NAME_MSG))),
    // expiry: Unix ms up to the end of 9999; the past is allowed (expires at once)
    ("expire_at", "0", Ok("0")),
    ("expire_at", "253402300799999", Ok("253402300799999")),
    ("expire_at", "253402300800000", Err(("expire_at", EXPIRE_MSG))),
    ("expire_at", "-1", Err(("expire_at", EXPIRE_MSG))),
    // access from first use: 1 ms to 100 years; typed in days in the panel
    ("expire_after_first_use", "1", Ok("1")),
    ("expire_after_first_use", "3153600000000", Ok("3153600000000")),
    ("expire_after_first_use", "3153600000001", Err(("expire_after_first_use", ACCESS_MSG))),
    ("expire_after_first_use", "0", Err(("expire_after_first_use", ACCESS_MSG))),
    ("access_days_text", " 30 ", Ok("Some(2592000000)")),
    ("access_days_text", "", Ok("None")),
    ("access_days_text", "0", Err(("expire_after_first_use", ACCESS_MSG))),
    ("access_days_text", "36501", Err(("expire_after_first_use", ACCESS_MSG))),
    ("access_days_text", "1.5", Err(("expire_after_first_use", DAYS_MSG))),
    ("access_days_text", "99999999999999999", Err(("expire_after_first_use", ACCESS_MSG))),
    // expiry typed as a UTC date (and time)
    ("expire_at_text", "", Ok("None")),
    ("expire_at_text", "1970-01-01", Ok("Some(0)")),
    ("expire_at_text", " 2027-01-31 ", Ok("Some(1801353600000)")),
    ("expire_at_text", "2027-01-31 13:45", Ok("Some(1801403100000)")),
    ("expire_at_text", "2027-01-31T13:45", Ok("Some(1801403100000)")),
    ("expire_at_text", "2024-02-29", Ok("Some(1709164800000)")),
    ("expire_at_text", "9999-12-31 23:59", Ok("Some(253402300740000)")),
    ("expire_at_text", "2023-02-29", Err(("expire_at", DATE_MSG))),
    ("expire_at_text", "2027-13-01", Err(("expire_at", DATE_MSG))),
    ("expire_at_text", "2027-01-31 24:00", Err(("expire_at", DATE_MSG))),
    ("expire_at_text", "2027-1-31", Err(("expire_at", DATE_MSG))),
    ("expire_at_text", "1969-12-31", Err(("expire_at", DATE_MSG))),
    ("expire_at_text", "31.01.2027", Err(("expire_at", DATE_MSG))),
    ("expire_at_text", "2027-01-31 13", Err(("expire_at", DATE_MSG))),
    ("expire_at_text", "+027-01-31", Err(("expire_at", DATE_MSG))),
    // passwords: characters counted, bytes bounded
    ("password", "twelve chars", Ok("()")),
    ("password", "ääääääääääää", Ok("()")),
    (
        "password",
        "eleven char",
        Err(("password", "must be at least 12 characters")),
    ),
    // quotas in bytes: 0 = unlimited, no negatives, at most 10^18
    ("quota_bytes", "0", Ok("0")),
    (
        "quota_bytes",
        "1000000000000000000",
        Ok("1000000000000000000"),
    ),
    (
        "quota_bytes",
        "1000000000000000001",
        Err(("quota_bytes", QUOTA_BIG)),
    ),
    (
        "quota_bytes",
        "9223372036854775807",
        Err(("quota_bytes", QUOTA_BIG)),
    ),
    ("quota_bytes", "-1", Err(("quota_bytes", QUOTA_NEG))),
    (
        "quota_bytes",
        "-9223372036854775808",
        Err(("quota_bytes", QUOTA_NEG)),
    ),
    // quotas typed in GB
    ("quota_gb", " 1.5 ", Ok("1500000000")),
    ("quota_gb", "0", Ok("0")),
    ("quota_gb", "1000000000", Ok("1000000000000000000")),
    ("quota_gb", "1e12", Err(("quota_bytes", QUOTA_BIG))),
    ("quota_gb", "1e400", Err(("quota_bytes", QUOTA_NAN))),
    ("quota_gb", "-2", Err(("quota_bytes", QUOTA_NEG))),
    ("quota_gb", "abc", Err(("quota_bytes", QUOTA_NAN))),
    ("quota_gb", "NaN", Err(("quota_bytes", QUOTA_NAN))),
    ("quota_gb", "", Err(("quota_bytes", QUOTA_NAN))),
    // hosts: one spelling per host
    ("host", "127.0.0.1", Ok("127.0.0.1")),
    ("host", " 10.0.0.1 ", Ok("10.0.0.1")),
    ("host", "::ffff:127.0.0.1", Ok("127.0.0.1")),
    ("host", "[::ffff:127.0.0.1]", Ok("127.0.0.1")),
    ("host", "::1", Ok("::1")),
    ("host", "[0:0:0:0:0:0:0:1]", Ok("::1")),
    ("host", "2001:DB8::0:1", Ok("2001:db8::1")),
    ("host", "fe80::1%eth0", Err(("host", HOST_MSG))),
    ("host", "LOCALHOST.", Ok("localhost")),
    ("host", " Node-1.Example.ORG. ", Ok("node-1.example.org")),
    ("host", "xn--bcher-kva.example", Ok("xn--bcher-kva.example")),
    ("host", "a..b", Err(("host", HOST_MSG))),
    ("host", "example.com..", Err(("host", HOST_MSG))),
    ("host", ".", Err(("host", HOST_MSG))),
    ("host", ".example.com", Err(("host", HOST_MSG))),
    ("host", "-x.example", Err(("host", HOST_MSG))),
    ("host", "x-.example", Err(("host", HOST_MSG))),
    ("host", "has space", Err(("host", HOST_MSG))),
    ("host", "bücher.example", Err(("host", HOST_MSG))),
    ("host", "http://x", Err(("host", HOST_MSG))),
    ("host", "example.com:80", Err(("host", HOST_MSG))),
    ("host", "[localhost]", Err(("host", HOST_MSG))),
    ("host", "127.000.000.001", Err(("host", HOST_MSG))),
    ("host", "127.1", Err(("host", HOST_MSG))),
    ("host", "0x7f.0.0.1", Err(("host", HOST_MSG))),
    ("host", "0177.0.0.1", Err(("host", HOST_MSG))),
    ("host", "2130706433", Err(("host", HOST_MSG))),
    ("host", "", Err(("host", HOST_MSG))),
    // ports: 0 only where it turns a mode off
    ("node_port", "8080", Ok("8080")),
    ("node_port", "65535", Ok("65535")),
    ("node_port", "0", Err(("http_port", PORT1_MSG))),
    ("mode_port", "0", Ok("0")),
    ("node_port_text", " 8080 ", Ok("8080")),
    ("node_port_text", "0", Err(("http_port", PORT1_MSG))),
    ("node_port_text", "65536", Err(("http_port", PORT1_MSG))),
    ("node_port_text", "-1", Err(("http_port", PORT1_MSG))),
    ("node_port_text", "", Err(("http_port", PORT1_MSG))),
    ("mode_port_text", "0", Ok("0")),
    ("mode_port_text", "65536", Err(("ss_relay_port", PORT0_MSG))),
    ("mode_port_text", "70000", Err(("ss_relay_port", PORT0_MSG))),
    ("mode_port_text", "80x", Err(("ss_relay_port", PORT0_MSG))),
    // node tokens
    ("node_token", " 0123456789abcdef ", Ok("0123456789abcdef")),
    ("node_token", "short", Err(("http_token", TOKEN_MSG))),
    ("node_token", "", Err(("http_token", TOKEN_MSG))),
    (
        "node_token",
        "sixteen chars ok",
        Err(("http_token", TOKEN_MSG)),
    ),
    (
        "node_token",
        "0123456789abcdéf",
        Err(("http_token", TOKEN_MSG)),
    ),
    // certificate fingerprints
    (
        "fingerprint",
        " 00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff ",
        Ok(FP_HEX),
    ),
    (
        "fingerprint",
        "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff",
        Ok(FP_HEX),
    ),
    ("fingerprint", "", Err(("tls_fingerprint", FP_MSG))),
    (
        "fingerprint",
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeef",
        Err(("tls_fingerprint", FP_MSG)),
    ),
    (
        "fingerprint",
        "g0112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
        Err(("tls_fingerprint", FP_MSG)),
    ),
    (
        "fingerprint",
        "001:12:23:34:45:56:67:78:89:9a:ab:bc:cd:de:ef:f0:01:12:23:34:45:56:67:78:89:9a:ab:bc:cd:de:ef:f",
        Err(("tls_fingerprint", FP_MSG)),
    ),
    (
        "fingerprint",
        "+0:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff",
        Err(("tls_fingerprint", FP_MSG)),
    ),
    // the fallback proxy
    ("proxy_url", "", Ok("")),
    (
        "proxy_url",
        " socks5://127.0.0.1:1080 ",
        Ok("socks5://127.0.0.1:1080"),
    ),
    (
        "proxy_url",
        "socks5h://127.0.0.1:1080",
        Ok("socks5h://127.0.0.1:1080"),
    ),
    (
        "proxy_url",
        "http://user:pw@proxy.example:3128/",
        Ok("http://user:pw@proxy.example:3128/"),
    ),
    ("proxy_url", "ftp://x:1", Err(("proxy_url", PROXY_SCHEME))),
    (
        "proxy_url",
        "socks5://host",
        Err(("proxy_url", PROXY_HOST_PORT)),
    ),
    (
        "proxy_url",
        "socks5://:80",
        Err(("proxy_url", PROXY_HOST_PORT)),
    ),
    (
        "proxy_url",
        "socks5://host:0",
        Err(("proxy_url", PROXY_HOST_PORT)),
    ),
    (
        "proxy_url",
        "socks5://host:65536",
        Err(("proxy_url", PROXY_HOST_PORT)),
    ),
    // the traffic ratio
    ("traffic_ratio", "1.5", Ok("1.5")),
    ("traffic_ratio", "1000", Ok("1000.0")),
    ("traffic_ratio", "0", Err(("traffic_ratio", RATIO_MSG))),
    ("traffic_ratio", "-1", Err(("traffic_ratio", RATIO_MSG))),
    ("traffic_ratio", "1000.5", Err(("traffic_ratio", RATIO_MSG))),
    ("traffic_ratio", "inf", Err(("traffic_ratio", RATIO_MSG))),
    ("traffic_ratio_text", " 2 ", Ok("2.0")),
    (
        "traffic_ratio_text",
        "two",
        Err(("traffic_ratio", RATIO_MSG)),
    ),
    (
        "traffic_ratio_text",
        "NaN",
        Err(("traffic_ratio", RATIO_MSG)),
    ),
    // private networks: canonical, deduplicated, order kept
    (
        "networks_text",
        "10.1.0.0/16, ::1\n192.168.5.0/24 10.1.0.0/16",
        Ok(r#"["10.1.0.0/16", "::1/128", "192.168.5.0/24"]"#),
    ),
    ("networks_text", "", Ok("[]")),
    (
        "networks_text",
        "10.1.0.1/16",
        Err((
            "allowed_private_networks",
            "`10.1.0.1/16` is not an IP network: host bits are set (use the network address)",
        )),
    ),
    (
        "networks_text",
        "example.com",
        Err((
            "allowed_private_networks",
            "`example.com` is not an IP network: not an IP address",
        )),
    ),
    (
        "networks_text",
        "10.0.0.0/40",
        Err((
            "allowed_private_networks",
            "`10.0.0.0/40` is not an IP network: prefix length longer than the address",
        )),
    ),
];

#[test]
fn every_rule_accepts_and_refuses_as_documented() {
    let mut failures = Vec::new();
    for (rule, input, want) in CASES {
        let Some((_, f)) = RULES.iter().find(|(name, _)| name == rule) else {
            panic!("no rule named {rule}");
        };
        let got = f(input);
        let want = want
            .map(str::to_owned)
            .map_err(|(field, message)| Invalid::new(field, message));
        if got != want {
            failures.push(format!("{rule}({input:?}): got {got:?}, want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_rule_has_accepted_and_refused_cases() {
    for (name, _) in RULES {
        let cases = || CASES.iter().filter(|(r, _, _)| r == name);
        assert!(
            cases().any(|(_, _, w)| w.is_ok()),
            "{name}: no accepted case"
        );
        let refused = cases().any(|(_, _, w)| w.is_err());
        // `mode_port` takes any u16 (the type bounds it); the text form covers 65536.
        assert!(refused || *name == "mode_port", "{name}: no refused case");
    }
}

#[test]
fn lengths_are_bounded() {
    let many: Vec<String> = (0..=MAX_ALLOWED_NETWORKS)
        .map(|i| format!("10.0.{i}.0/24"))
        .collect();
    assert_eq!(
        networks(&many),
        Err(Invalid::new(
            "allowed_private_networks",
            "must be at most 64 networks"
        ))
    );
    assert_eq!(
        networks(&many[..MAX_ALLOWED_NETWORKS]).map(|v| v.len()),
        Ok(64)
    );
    let name = "ß".repeat(MAX_NAME_CHARS);
    assert_eq!(user_name(&name), Ok(name.clone()));
    assert_eq!(
        user_name(&format!("{name}x")),
        Err(Invalid::new("name", NAME_MSG))
    );
    let long = "x".repeat(MAX_PASSWORD_BYTES + 1);
    assert_eq!(
        password(&long),
        Err(Invalid::new("password", "must be at most 1024 bytes"))
    );
}

#[test]
fn reset_days_multipliers_and_time_zones() {
    assert_eq!(reset_day(1), Ok(1));
    assert_eq!(reset_day(31), Ok(31));
    for bad in [0, 32, -1] {
        assert!(reset_day(bad).is_err(), "{bad}");
    }
    assert_eq!(usage_multiplier(1.0), Ok(1000));
    assert_eq!(usage_multiplier(0.0), Ok(0));
    assert_eq!(usage_multiplier(1.5), Ok(1500));
    assert_eq!(usage_multiplier(0.001), Ok(1));
    assert_eq!(usage_multiplier(100.0), Ok(100_000));
    assert_eq!(usage_multiplier_text(" 2.25 "), Ok(2250));
    let msg = Invalid::new(
        "usage_multiplier",
        "must be a number from 0 to 100 with at most three decimals",
    );
    for bad in [-0.5, 100.001, 0.0005, f64::NAN, f64::INFINITY] {
        assert_eq!(usage_multiplier(bad), Err(msg.clone()), "{bad}");
    }
    assert_eq!(usage_multiplier_text("x"), Err(msg));
    assert_eq!(time_zone(" Europe/Berlin "), Ok("Europe/Berlin".to_owned()));
    assert_eq!(time_zone("UTC"), Ok("UTC".to_owned()));
    assert_eq!(
        time_zone("America/Argentina/Buenos_Aires"),
        Ok("America/Argentina/Buenos_Aires".to_owned())
    );
    assert_eq!(time_zone("Etc/GMT+5"), Ok("Etc/GMT+5".to_owned()));
    for bad in ["", "/etc/passwd", "../x", "Europe/Ber lin", &"A".repeat(65)] {
        assert!(time_zone(bad).is_err(), "{bad:?}");
    }
}
