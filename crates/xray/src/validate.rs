//! Semantic checks on a parsed [`Config`]: everything serde cannot see (keys that fit their method,
//! unique tags and ports, routes that point at something). Each error names the JSON path.

use crate::{Config, Inbound, Method, Outbound, OutboundProtocol, Rule};
use std::collections::HashSet;

/// A config that parsed but cannot be run; `path` is the JSON path of the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid config at `{path}`: {message}")]
pub struct ValidationError {
    pub path: String,
    pub message: String,
}

fn err<T>(path: impl Into<String>, message: impl Into<String>) -> Result<T, ValidationError> {
    Err(ValidationError {
        path: path.into(),
        message: message.into(),
    })
}

/// Tags that may be used as a route's target or a balancer member: outbounds and portals.
fn route_targets(c: &Config) -> HashSet<&str> {
    c.outbounds
        .iter()
        .map(|o| o.tag.as_str())
        .chain(c.reverse.portals.iter().map(|p| p.tag.as_str()))
        .collect()
}

impl Config {
    /// Checks everything the engine relies on. The first problem found is returned.
    pub fn validate(&self) -> Result<(), ValidationError> {
        // A config with nothing to listen on and nowhere to send would stop every port and
        // route of the node at once; it is never what the manager generates (its configs
        // always carry the freedom outbound `out`), so it is refused as a mistake.
        if self.inbounds.is_empty() && self.outbounds.is_empty() {
            return err(
                "inbounds",
                "the config has no inbound and no outbound; a node needs at least one of either",
            );
        }
        let mut tags = HashSet::new();
        let mut ports = HashSet::new();
        for (i, inbound) in self.inbounds.iter().enumerate() {
            let path = format!("inbounds[{i}]");
            validate_inbound(inbound, &path)?;
            if !tags.insert(inbound.tag.as_str()) {
                return err(
                    format!("{path}.tag"),
                    format!("duplicate tag `{}`", inbound.tag),
                );
            }
            if !ports.insert((inbound.listen.as_str(), inbound.port)) {
                return err(
                    format!("{path}.port"),
                    format!("port {} is used twice", inbound.port),
                );
            }
        }
        for (i, b) in self.reverse.bridges.iter().enumerate() {
            let path = format!("reverse.bridges[{i}]");
            check_item(&b.tag, &b.domain, &path)?;
            if !tags.insert(b.tag.as_str()) {
                return err(format!("{path}.tag"), format!("duplicate tag `{}`", b.tag));
            }
        }
        let mut out_tags = HashSet::new();
        for (i, outbound) in self.outbounds.iter().enumerate() {
            let path = format!("outbounds[{i}]");
            validate_outbound(outbound, &path)?;
            if !out_tags.insert(outbound.tag.as_str()) {
                return err(
                    format!("{path}.tag"),
                    format!("duplicate tag `{}`", outbound.tag),
                );
            }
        }
        for (i, p) in self.reverse.portals.iter().enumerate() {
            let path = format!("reverse.portals[{i}]");
            check_item(&p.tag, &p.domain, &path)?;
            if !out_tags.insert(p.tag.as_str()) {
                return err(format!("{path}.tag"), format!("duplicate tag `{}`", p.tag));
            }
        }
        let targets = route_targets(self);
        let mut balancers = HashSet::new();
        for (i, b) in self.routing.balancers.iter().enumerate() {
            let path = format!("routing.balancers[{i}]");
            if b.tag.is_empty() {
                return err(format!("{path}.tag"), "must not be empty");
            }
            if !balancers.insert(b.tag.as_str()) {
                return err(
                    format!("{path}.tag"),
                    format!("duplicate balancer `{}`", b.tag),
                );
            }
            for (j, member) in b.selector.iter().enumerate() {
                if !targets.contains(member.as_str()) {
                    return err(
                        format!("{path}.selector[{j}]"),
                        format!("no outbound or portal tagged `{member}`"),
                    );
                }
            }
        }
        if !DOMAIN_STRATEGIES.contains(&self.routing.domain_strategy.as_str()) {
            return err(
                "routing.domainStrategy",
                format!("must be one of {}", DOMAIN_STRATEGIES.join(", ")),
            );
        }
        for (i, rule) in self.routing.rules.iter().enumerate() {
            validate_rule(
                rule,
                &format!("routing.rules[{i}]"),
                &tags,
                &targets,
                &balancers,
            )?;
        }
        Ok(())
    }
}

fn validate_inbound(inbound: &Inbound, path: &str) -> Result<(), ValidationError> {
    if inbound.tag.is_empty() {
        return err(format!("{path}.tag"), "must not be empty");
    }
    if inbound.port == 0 {
        return err(format!("{path}.port"), "must be between 1 and 65535");
    }
    if inbound.listen.parse::<std::net::IpAddr>().is_err() {
        return err(format!("{path}.listen"), "must be an IP address");
    }
    let s = &inbound.settings;
    let mpath = format!("{path}.settings.method");
    let method = match (s.method, s.clients.is_empty()) {
        (Some(m), _) => Some(m),
        (None, true) => return err(mpath, "required for an inbound without clients"),
        (None, false) => None,
    };
    if let Some(m) = method.filter(|m| s.clients.is_empty() || m.is_2022()) {
        if let Err(e) = m.check_password(&s.password) {
            return err(format!("{path}.settings.password"), e.to_string());
        }
    }
    let mut emails = HashSet::new();
    for (j, client) in s.clients.iter().enumerate() {
        let cpath = format!("{path}.settings.clients[{j}]");
        if client.email.is_empty() {
            return err(format!("{cpath}.email"), "must not be empty");
        }
        if !emails.insert(client.email.as_str()) {
            return err(
                format!("{cpath}.email"),
                format!("duplicate user `{}`", client.email),
            );
        }
        let client_method = match (method, client.method) {
            (Some(m), Some(c)) if c == m => m,
            // SS-2022 has one method per port: a client may only repeat it.
            (Some(m), Some(c)) if m.is_2022() && c != m => {
                return err(
                    format!("{cpath}.method"),
                    format!(
                        "must match the inbound method `{m}` (an SS-2022 port has one method \
                         for all its clients)"
                    ),
                )
            }
            // Clients of a classic port may each use their own classic cipher, never SS-2022.
            (_, Some(c)) if c.is_2022() => {
                return err(
                    format!("{cpath}.method"),
                    format!(
                        "`{c}` cannot be a client's own method: an SS-2022 method must be set \
                         on the inbound, for all its clients"
                    ),
                )
            }
            (_, Some(c)) => c,
            (Some(m), None) => m,
            (None, None) => {
                return err(
                    format!("{cpath}.method"),
                    "required when the inbound has no method",
                )
            }
        };
        if let Err(e) = client_method.check_password(&client.password) {
            return err(format!("{cpath}.password"), e.to_string());
        }
    }
    Ok(())
}

fn validate_outbound(outbound: &Outbound, path: &str) -> Result<(), ValidationError> {
    if outbound.tag.is_empty() {
        return err(format!("{path}.tag"), "must not be empty");
    }
    match outbound.protocol {
        OutboundProtocol::Freedom | OutboundProtocol::Blackhole => {
            if outbound.settings.is_some() {
                return err(
                    format!("{path}.settings"),
                    "freedom and blackhole take no settings",
                );
            }
        }
        OutboundProtocol::Shadowsocks => {
            let servers = outbound.settings.as_ref().map(|s| s.servers.as_slice());
            let [server] = servers.unwrap_or_default() else {
                return err(
                    format!("{path}.settings.servers"),
                    "must hold exactly one server",
                );
            };
            let spath = format!("{path}.settings.servers[0]");
            if server.address.is_empty() {
                return err(format!("{spath}.address"), "must not be empty");
            }
            if server.port == 0 {
                return err(format!("{spath}.port"), "must be between 1 and 65535");
            }
            check_client_password(
                server.method,
                &server.password,
                &format!("{spath}.password"),
            )?;
        }
    }
    Ok(())
}

/// A client-side password: for SS-2022 it may be `iPSK:uPSK` (EIH), each part sized by the method.
fn check_client_password(
    method: Method,
    password: &str,
    path: &str,
) -> Result<(), ValidationError> {
    let parts: Vec<&str> = if method.is_2022() {
        password.split(':').collect()
    } else {
        vec![password]
    };
    for part in parts {
        if let Err(e) = method.check_password(part) {
            return err(path, e.to_string());
        }
    }
    Ok(())
}

fn check_item(tag: &str, domain: &str, path: &str) -> Result<(), ValidationError> {
    if tag.is_empty() {
        return err(format!("{path}.tag"), "must not be empty");
    }
    if domain.is_empty() || domain.contains(char::is_whitespace) {
        return err(format!("{path}.domain"), "must be a domain name");
    }
    Ok(())
}

/// The routing domain strategies the engine runs (Xray's names).
pub const DOMAIN_STRATEGIES: &[&str] = &["AsIs", "IPIfNonMatch", "IPOnDemand"];

fn validate_rule(
    rule: &Rule,
    path: &str,
    inbound_tags: &HashSet<&str>,
    targets: &HashSet<&str>,
    balancers: &HashSet<&str>,
) -> Result<(), ValidationError> {
    if let Some(kind) = &rule.kind {
        if kind != "field" {
            return err(format!("{path}.type"), "only `field` rules are supported");
        }
    }
    if rule.inbound_tag.is_empty() {
        return err(
            format!("{path}.inboundTag"),
            "must name at least one inbound",
        );
    }
    for (j, tag) in rule.inbound_tag.iter().enumerate() {
        if !inbound_tags.contains(tag.as_str()) {
            return err(
                format!("{path}.inboundTag[{j}]"),
                format!("no inbound or bridge tagged `{tag}`"),
            );
        }
    }
    for (j, d) in rule.domain.iter().enumerate() {
        match d.strip_prefix("full:") {
            Some(name) if !name.is_empty() => {}
            _ => {
                return err(
                    format!("{path}.domain[{j}]"),
                    "only `full:<domain>` matches are supported",
                )
            }
        }
    }
    for (j, net) in rule.ip.iter().enumerate() {
        if let Err(e) = crate::cidr::expand(net) {
            return err(format!("{path}.ip[{j}]"), e.to_string());
        }
    }
    match (&rule.outbound_tag, &rule.balancer_tag) {
        (Some(out), None) if targets.contains(out.as_str()) => Ok(()),
        (Some(out), None) => err(
            format!("{path}.outboundTag"),
            format!("no outbound or portal tagged `{out}`"),
        ),
        (None, Some(b)) if balancers.contains(b.as_str()) => Ok(()),
        (None, Some(b)) => err(
            format!("{path}.balancerTag"),
            format!("no balancer tagged `{b}`"),
        ),
        _ => err(path, "needs exactly one of `outboundTag` and `balancerTag`"),
    }
}

#[cfg(test)]
mod tests {
    use crate::*;

    fn key(len: usize) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(vec![1u8; len])
    }

    fn sample() -> Config {
        let mut c = Config::skeleton("info");
        c.inbounds.push(Inbound::shadowsocks(
            "remote",
            2004,
            Method::Chacha20IetfPoly1305,
            "",
            Network::TcpUdp,
            vec![Client {
                email: "1".into(),
                password: "pw-1".into(),
                method: None,
            }],
        ));
        c.inbounds.push(Inbound::shadowsocks(
            "direct",
            40522,
            Method::Blake3Aes128Gcm,
            key(16),
            Network::Tcp,
            vec![],
        ));
        c.outbounds.push(Outbound::shadowsocks(
            "internal",
            Server {
                address: "127.0.0.1".into(),
                port: 38211,
                method: Method::Blake3Aes128Gcm,
                password: key(16),
                uot: true,
            },
        ));
        c.reverse.bridges.push(ReverseItem {
            tag: "bridge".into(),
            domain: "s1.reverse.proxy".into(),
        });
        c.routing.rules = vec![
            Rule::to_outbound("remote", "out"),
            Rule::to_outbound("direct", "out"),
            Rule::to_outbound("bridge", "internal").for_domain("s1.reverse.proxy"),
            Rule::to_outbound("bridge", "out"),
        ];
        c
    }

    #[test]
    fn sample_round_trips_and_validates() {
        let c = sample();
        let json = c.to_canonical_json();
        let back = Config::from_json(&json).expect("valid");
        assert_eq!(back, c);
        assert_eq!(back.version(), c.version());
        assert_eq!(c.version().len(), 16);
    }

    #[test]
    fn version_changes_with_content() {
        let a = sample();
        let mut b = sample();
        b.inbounds[0].port = 2005;
        assert_ne!(a.version(), b.version());
    }

    fn path_of(json: serde_json::Value) -> String {
        let bytes = serde_json::to_vec(&json).expect("json");
        Config::from_json(&bytes)
            .expect_err("must be rejected")
            .path()
            .to_owned()
    }

    #[test]
    fn errors_name_the_field() {
        let base = serde_json::to_value(sample()).expect("json");

        let mut v = base.clone();
        v["inbounds"][1]["settings"]["password"] = key(32).into();
        assert_eq!(path_of(v), "inbounds[1].settings.password");

        let mut v = base.clone();
        v["inbounds"][0]["port"] = 70000.into();
        assert_eq!(path_of(v), "inbounds[0].port");

        let mut v = base.clone();
        v["inbounds"][0]["settings"]["method"] = "rc4-md5".into();
        assert_eq!(path_of(v), "inbounds[0].settings.method");

        let mut v = base.clone();
        v["inbounds"][1]["port"] = 2004.into();
        assert_eq!(path_of(v), "inbounds[1].port");

        let mut v = base.clone();
        v["routing"]["rules"][1]["outboundTag"] = "nowhere".into();
        assert_eq!(path_of(v), "routing.rules[1].outboundTag");

        let mut v = base.clone();
        v["routing"]["rules"][2]["domain"][0] = "regexp:.*".into();
        assert_eq!(path_of(v), "routing.rules[2].domain[0]");

        let mut v = base.clone();
        v["routing"]["rules"][0]["ip"] = serde_json::json!(["geoip:private", "10.0.0.1/8"]);
        assert_eq!(path_of(v), "routing.rules[0].ip[1]");

        let mut v = base.clone();
        v["routing"]["domainStrategy"] = "UseIP".into();
        assert_eq!(path_of(v), "routing.domainStrategy");

        let mut v = base.clone();
        v["outbounds"][1]["settings"]["servers"] = serde_json::json!([]);
        assert_eq!(path_of(v), "outbounds[1].settings.servers");

        let mut v = base.clone();
        v["inbounds"][0]["settings"]["clients"][0]["email"] = "".into();
        assert_eq!(path_of(v), "inbounds[0].settings.clients[0].email");

        let mut v = base;
        v["surprise"] = 1.into();
        assert_eq!(path_of(v), "surprise");
    }

    #[test]
    fn a_config_with_no_inbound_and_no_outbound_is_refused() {
        let e = Config::from_json(br#"{"inbounds": [], "outbounds": []}"#)
            .expect_err("an empty config must be refused");
        assert_eq!(e.path(), "inbounds");
        assert_eq!(
            e.to_string(),
            "invalid config at `inbounds`: the config has no inbound and no outbound; \
             a node needs at least one of either"
        );
        assert_eq!(
            Config::from_json(b"{}").expect_err("empty document").path(),
            "inbounds"
        );
        // Outbounds only (the skeleton, or a node that serves nothing yet) stay valid, and so
        // does a config with inbounds only.
        Config::skeleton("info").validate().expect("skeleton");
        let mut only_in = sample();
        only_in.outbounds.clear();
        only_in.routing.rules.clear();
        only_in.reverse.bridges.clear();
        only_in.validate().expect("inbounds only");
    }

    /// The first inbound of a one-inbound config given as Xray JSON `settings`.
    fn with_settings(settings: serde_json::Value) -> Result<Config, ParseError> {
        let mut json = serde_json::to_value(Config::skeleton("info")).expect("json");
        json["inbounds"] = serde_json::json!([
            {"tag": "in", "port": 8388, "protocol": "shadowsocks", "settings": settings},
        ]);
        Config::from_json(&serde_json::to_vec(&json).expect("json"))
    }

    #[test]
    fn classic_clients_may_each_carry_their_own_cipher() {
        // Xray's form: no method on the inbound, one per client, two different classic ciphers.
        let c = with_settings(serde_json::json!({
            "network": "tcp,udp",
            "clients": [
                {"email": "a", "password": "pw-a", "method": "aes-256-gcm"},
                {"email": "b", "password": "pw-b", "method": "chacha20-ietf-poly1305"},
            ],
        }))
        .expect("valid Xray JSON");
        let s = &c.inbounds[0].settings;
        assert_eq!(s.method, None);
        assert_eq!(s.port_method(), Some(Method::Aes256Gcm));
        let methods: Vec<_> = s.clients.iter().map(|cl| s.client_method(cl)).collect();
        assert_eq!(
            methods,
            [Some(Method::Aes256Gcm), Some(Method::Chacha20IetfPoly1305)]
        );
        // An inbound method is the default for clients without one; others override it.
        let c = with_settings(serde_json::json!({
            "method": "aes-128-gcm",
            "network": "tcp",
            "clients": [
                {"email": "a", "password": "pw-a"},
                {"email": "b", "password": "pw-b", "method": "chacha20-ietf-poly1305"},
            ],
        }))
        .expect("valid");
        let s = &c.inbounds[0].settings;
        let methods: Vec<_> = s.clients.iter().map(|cl| s.client_method(cl)).collect();
        assert_eq!(
            methods,
            [Some(Method::Aes128Gcm), Some(Method::Chacha20IetfPoly1305)]
        );
        // The canonical JSON keeps the inbound without a method.
        let back = Config::from_json(&c.to_canonical_json()).expect("round trip");
        assert_eq!(back, c);
    }

    #[test]
    fn methods_that_cannot_work_are_refused_with_the_field() {
        let refused = |settings: serde_json::Value| {
            let e = with_settings(settings).expect_err("must be refused");
            match e {
                ParseError::Invalid(v) => (v.path, v.message),
                ParseError::Syntax { path, message } => panic!("syntax error at {path}: {message}"),
            }
        };
        let k16 = key(16);
        // A client without a method on an inbound without one.
        assert_eq!(
            refused(serde_json::json!({"network": "tcp", "clients": [
                {"email": "a", "password": "pw-a", "method": "aes-256-gcm"},
                {"email": "b", "password": "pw-b"},
            ]})),
            (
                "inbounds[0].settings.clients[1].method".into(),
                "required when the inbound has no method".into()
            )
        );
        // No clients and no method.
        assert_eq!(
            refused(serde_json::json!({"network": "tcp", "password": "pw"})),
            (
                "inbounds[0].settings.method".into(),
                "required for an inbound without clients".into()
            )
        );
        // SS-2022 per client, on an inbound without a method or with a classic one.
        let per_client_2022 = "`2022-blake3-aes-128-gcm` cannot be a client's own method: an \
                               SS-2022 method must be set on the inbound, for all its clients";
        for inbound_method in [None, Some("aes-256-gcm")] {
            let mut settings = serde_json::json!({"network": "tcp", "clients": [
                {"email": "a", "password": "pw-a", "method": "aes-256-gcm"},
                {"email": "b", "password": k16, "method": "2022-blake3-aes-128-gcm"},
            ]});
            if let Some(m) = inbound_method {
                settings["method"] = m.into();
            }
            assert_eq!(
                refused(settings),
                (
                    "inbounds[0].settings.clients[1].method".into(),
                    per_client_2022.into()
                ),
                "{inbound_method:?}"
            );
        }
        // An SS-2022 port: clients may repeat its method, never name another one.
        for other in ["2022-blake3-aes-256-gcm", "aes-128-gcm"] {
            assert_eq!(
                refused(serde_json::json!({
                    "method": "2022-blake3-aes-128-gcm", "password": k16, "network": "tcp",
                    "clients": [
                        {"email": "a", "password": k16, "method": "2022-blake3-aes-128-gcm"},
                        {"email": "b", "password": k16, "method": other},
                    ]
                })),
                (
                    "inbounds[0].settings.clients[1].method".into(),
                    "must match the inbound method `2022-blake3-aes-128-gcm` (an SS-2022 port \
                     has one method for all its clients)"
                        .into()
                ),
                "{other}"
            );
        }
        // Each client's password is checked against its own method.
        let (path, _) = refused(serde_json::json!({"network": "tcp", "clients": [
            {"email": "a", "password": "", "method": "chacha20-ietf-poly1305"},
        ]}));
        assert_eq!(path, "inbounds[0].settings.clients[0].password");
    }

    #[test]
    fn balancer_members_must_exist() {
        let mut c = sample();
        c.routing.balancers.push(Balancer {
            tag: "relay".into(),
            selector: vec!["relay-9".into()],
        });
        let e = c.validate().expect_err("unknown member");
        assert_eq!(e.path, "routing.balancers[0].selector[0]");
    }
}
