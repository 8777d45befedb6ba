use super::*;
use serde_json::Value;
use std::collections::HashSet;

fn server(name: &str, host: &str, port: u16, method: &str, password: &str, udp: bool) -> Server {
    Server {
        id: stable_id(name),
        name: name.into(),
        host: host.into(),
        port,
        method: method.into(),
        password: password.into(),
        udp,
    }
}

fn profile(servers: Vec<Server>) -> Profile {
    Profile {
        title: "Arch · alice".into(),
        servers,
        usage: Usage {
            used: 1_500,
            quota: Some(10_000),
            expire_at_ms: Some(1_800_000_000_999),
        },
        update_interval_hours: 12,
        page_url: Some("https://panel.example/u/s3cret".into()),
    }
}

fn four() -> Vec<Server> {
    vec![
        server(
            "Arch · direct",
            "203.0.113.1",
            8001,
            "chacha20-ietf-poly1305",
            "pw:1",
            true,
        ),
        server(
            "Arch · relay",
            "203.0.113.1",
            8002,
            "2022-blake3-aes-128-gcm",
            "a+b/c=:d==",
            true,
        ),
        server(
            "Arch · reverse",
            "203.0.113.1",
            8003,
            "2022-blake3-aes-128-gcm",
            "k1:k2",
            false,
        ),
        server(
            "node-2 · remote",
            "2001:db8::2",
            8004,
            "aes-256-gcm",
            "pw",
            true,
        ),
    ]
}

#[test]
fn sip002_forms() {
    assert_eq!(
        sip002(
            "chacha20-ietf-poly1305",
            "pw",
            "203.0.113.1",
            8388,
            "alice direct"
        ),
        "ss://Y2hhY2hhMjAtaWV0Zi1wb2x5MTMwNTpwdw@203.0.113.1:8388#alice%20direct"
    );
    assert_eq!(
        sip002("2022-blake3-aes-128-gcm", "a+b/c=", "::1", 9000, "x-y"),
        "ss://2022-blake3-aes-128-gcm:a%2Bb%2Fc%3D@[::1]:9000#x-y"
    );
    assert_eq!(
        sip002("aes-128-gcm", "p", "h", 1, "Arch · relay"),
        "ss://YWVzLTEyOC1nY206cA@h:1#Arch%20%C2%B7%20relay"
    );
}

#[test]
fn the_format_is_chosen_by_parameter_then_user_agent() {
    use Choice::{Document as D, Page};
    use Format::*;
    let cases: &[(Option<&str>, Option<&str>, Choice)] = &[
        (Some("sip008"), Some("ClashX/1.0"), D(Sip008)),
        (Some("CLASH"), None, D(Clash)),
        (Some("mihomo"), None, D(Clash)),
        (Some("sing-box"), None, D(SingBox)),
        (Some("singbox"), None, D(SingBox)),
        (Some("base64"), Some("Mozilla/5.0"), D(Base64)),
        (Some(""), Some("clash-verge/v1.7.7"), D(Clash)),
        (None, Some("ClashMetaForAndroid/2.10.1.Meta"), D(Clash)),
        (None, Some("mihomo/1.18.5"), D(Clash)),
        (None, Some("Stash/2.4.6 Clash/1.9.0"), D(Clash)),
        (None, Some("sing-box 1.11.4"), D(SingBox)),
        (None, Some("SFA/1.11.4 (Android 14)"), D(SingBox)),
        (None, Some("SFI/1.10.0"), D(SingBox)),
        (None, Some("SFM/1.11.0 (macOS)"), D(SingBox)),
        (None, Some("HiddifyNext/2.5.7 (android)"), D(SingBox)),
        (None, Some("v2rayNG/1.8.19"), D(Base64)),
        (None, Some("Shadowrocket/2070 CFNetwork/1494.0.7 Darwin/23.4.0"), D(Base64)),
        (None, Some("curl/8.5.0"), D(Base64)),
        (None, None, D(Base64)),
        (
            None,
            Some("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"),
            Page,
        ),
        (None, Some("Mozilla/5.0 (iPhone) Safari/604.1"), Page),
    ];
    for (format, ua, want) in cases {
        assert_eq!(choose(*format, *ua), Ok(*want), "{format:?} {ua:?}");
    }
    assert_eq!(choose(Some("xml"), None), Err(UnknownFormat("xml".into())));
    assert_eq!(
        choose(Some("xml"), None).expect_err("unknown").to_string(),
        "unknown format \"xml\": use base64, sip008, clash or sing-box"
    );
    for f in Format::ALL {
        assert_eq!(Format::parse(f.name()), Some(f));
    }
}

#[test]
fn headers_carry_usage_quota_expiry_and_names() {
    let p = profile(four());
    let h = headers(&p, Format::Clash);
    let get = |name: &str| {
        h.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name}"))
    };
    assert_eq!(get("content-type"), "text/yaml; charset=utf-8");
    assert_eq!(
        get("subscription-userinfo"),
        "upload=0; download=1500; total=10000; expire=1800000000"
    );
    assert_eq!(get("profile-update-interval"), "12");
    assert_eq!(
        get("profile-title"),
        format!(
            "base64:{}",
            base64::engine::general_purpose::STANDARD.encode("Arch · alice")
        )
    );
    assert_eq!(
        get("content-disposition"),
        "attachment; filename=\"Arch _ alice.yaml\"; filename*=UTF-8''Arch%20%C2%B7%20alice.yaml"
    );
    assert_eq!(
        get("profile-web-page-url"),
        "https://panel.example/u/s3cret"
    );

    let unlimited = Profile {
        usage: Usage {
            used: 7,
            quota: None,
            expire_at_ms: None,
        },
        page_url: None,
        ..p
    };
    let h = headers(&unlimited, Format::Base64);
    assert!(h.contains(&(
        "subscription-userinfo",
        "upload=0; download=7; total=0; expire=0".to_owned()
    )));
    assert!(h.contains(&("content-type", "text/plain; charset=utf-8".to_owned())));
    assert!(!h.iter().any(|(n, _)| *n == "profile-web-page-url"));
}

#[test]
fn the_base64_list_is_every_link_in_order() {
    let p = profile(four());
    let doc = render(&p, Format::Base64);
    let text = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(&doc.body)
            .expect("standard base64"),
    )
    .expect("utf-8");
    let links: Vec<String> = p.servers.iter().map(Server::link).collect();
    assert_eq!(text, links.join("\n"));
    assert_eq!(text.lines().count(), 4);
    assert!(
        text.contains("@[2001:db8::2]:8004#node-2%20%C2%B7%20remote"),
        "{text}"
    );
    assert_eq!(render(&profile(vec![]), Format::Base64).body, "");
}

#[test]
fn sip008_lists_every_server_with_the_required_fields() {
    let p = profile(four());
    let v: Value = serde_json::from_str(&render(&p, Format::Sip008).body).expect("json");
    assert_eq!(v["version"], 1);
    assert_eq!(v["bytes_used"], 1_500);
    assert_eq!(v["bytes_remaining"], 8_500);
    let servers = v["servers"].as_array().expect("servers");
    assert_eq!(servers.len(), 4);
    for (got, want) in servers.iter().zip(&p.servers) {
        assert_eq!(got["id"], want.id.as_str());
        assert_eq!(got["remarks"], want.name.as_str());
        assert_eq!(got["server"], want.host.as_str());
        assert_eq!(got["server_port"], want.port);
        assert_eq!(got["password"], want.password.as_str());
        assert_eq!(got["method"], want.method.as_str());
    }
    // Unlimited: no bytes_remaining; over quota: zero, never negative.
    let mut unlimited = profile(vec![]);
    unlimited.usage.quota = None;
    let v: Value = serde_json::from_str(&render(&unlimited, Format::Sip008).body).expect("json");
    assert!(v.get("bytes_remaining").is_none());
    assert_eq!(v["servers"], serde_json::json!([]));
    let mut over = profile(vec![]);
    over.usage.used = 20_000;
    let v: Value = serde_json::from_str(&render(&over, Format::Sip008).body).expect("json");
    assert_eq!(v["bytes_remaining"], 0);
}

/// The fields mihomo requires of an `ss` proxy and of `select` / `url-test` groups, checked on
/// the parsed YAML.
fn check_clash(yaml: &str) -> serde_yaml_ng::Value {
    let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(yaml).expect("valid YAML");
    let proxies = v["proxies"].as_sequence().expect("proxies");
    let mut names = HashSet::new();
    for p in proxies {
        for key in ["name", "server", "cipher", "password"] {
            assert!(
                p[key].as_str().is_some_and(|s| !s.is_empty()),
                "{key} in {p:?}"
            );
        }
        assert_eq!(p["type"].as_str(), Some("ss"));
        assert!(p["port"].as_u64().is_some_and(|n| (1..=65535).contains(&n)));
        assert!(p["udp"].as_bool().is_some());
        assert!(
            names.insert(p["name"].as_str().expect("name").to_owned()),
            "unique names"
        );
    }
    let groups = v["proxy-groups"].as_sequence().cloned().unwrap_or_default();
    let group_names: HashSet<String> = groups
        .iter()
        .map(|g| g["name"].as_str().expect("group name").to_owned())
        .collect();
    for g in &groups {
        let members = g["proxies"].as_sequence().expect("group proxies");
        assert!(!members.is_empty());
        for m in members {
            let m = m.as_str().expect("member name");
            assert!(
                names.contains(m) || group_names.contains(m),
                "unknown member {m}"
            );
        }
        match g["type"].as_str() {
            Some("select") => {}
            Some("url-test") => {
                assert!(g["url"].as_str().is_some_and(|u| u.starts_with("http")));
                assert!(g["interval"].as_u64().is_some());
            }
            other => panic!("group type {other:?}"),
        }
    }
    let rules = v["rules"].as_sequence().expect("rules");
    let last = rules.last().and_then(|r| r.as_str()).expect("a final rule");
    let target = last.strip_prefix("MATCH,").expect("MATCH last");
    assert!(
        group_names.contains(target) || target == "DIRECT",
        "{target}"
    );
    v
}

#[test]
fn clash_profiles_have_what_mihomo_requires() {
    let p = profile(four());
    let v = check_clash(&render(&p, Format::Clash).body);
    let proxies = v["proxies"].as_sequence().expect("proxies");
    assert_eq!(proxies.len(), 4);
    assert_eq!(proxies[1]["password"].as_str(), Some("a+b/c=:d=="));
    assert_eq!(
        proxies[1]["cipher"].as_str(),
        Some("2022-blake3-aes-128-gcm")
    );
    assert_eq!(proxies[2]["udp"].as_bool(), Some(false));
    assert_eq!(proxies[3]["server"].as_str(), Some("2001:db8::2"));
    assert_eq!(v["rules"][0].as_str(), Some("MATCH,Arch"));
    assert_eq!(v["proxy-groups"][0]["proxies"][0].as_str(), Some("auto"));

    let empty = check_clash(&render(&profile(vec![]), Format::Clash).body);
    assert_eq!(empty["rules"][0].as_str(), Some("MATCH,DIRECT"));
}

/// The fields sing-box requires: unique tags, every referenced tag exists, shadowsocks
/// outbounds complete, `route.final` names an outbound.
fn check_sing_box(json: &str) -> Value {
    let v: Value = serde_json::from_str(json).expect("valid JSON");
    let outbounds = v["outbounds"].as_array().expect("outbounds");
    let mut tags = HashSet::new();
    for o in outbounds {
        let tag = o["tag"].as_str().expect("tag").to_owned();
        assert!(tags.insert(tag), "unique tags");
    }
    for o in outbounds {
        match o["type"].as_str().expect("type") {
            "shadowsocks" => {
                for key in ["server", "method", "password"] {
                    assert!(o[key].as_str().is_some_and(|s| !s.is_empty()), "{key}");
                }
                assert!(o["server_port"].as_u64().is_some());
            }
            "selector" | "urltest" => {
                let members = o["outbounds"].as_array().expect("members");
                assert!(!members.is_empty());
                for m in members {
                    assert!(tags.contains(m.as_str().expect("member")), "{m}");
                }
            }
            "direct" => {}
            other => panic!("outbound type {other}"),
        }
    }
    assert!(tags.contains(v["route"]["final"].as_str().expect("final")));
    for i in v["inbounds"].as_array().expect("inbounds") {
        assert!(i["type"].as_str().is_some() && i["tag"].as_str().is_some());
    }
    v
}

#[test]
fn sing_box_profiles_have_what_sing_box_requires() {
    let v = check_sing_box(&render(&profile(four()), Format::SingBox).body);
    let ss: Vec<&Value> = v["outbounds"]
        .as_array()
        .expect("outbounds")
        .iter()
        .filter(|o| o["type"] == "shadowsocks")
        .collect();
    assert_eq!(ss.len(), 4);
    assert_eq!(ss[0]["server_port"], 8001);
    assert_eq!(ss[2]["network"], "tcp");
    assert!(ss[0].get("network").is_none());
    assert_eq!(v["route"]["final"], "Arch");

    let empty = check_sing_box(&render(&profile(vec![]), Format::SingBox).body);
    assert_eq!(empty["route"]["final"], "direct");
}

#[test]
fn repeated_names_are_made_unique_in_every_format() {
    let mut servers = four();
    servers[1].name = servers[0].name.clone();
    servers[2].name = "Arch".into();
    let p = profile(servers);
    let v = check_clash(&render(&p, Format::Clash).body);
    let names: Vec<&str> = v["proxies"]
        .as_sequence()
        .expect("proxies")
        .iter()
        .map(|p| p["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        [
            "Arch · direct",
            "Arch · direct (2)",
            "Arch (2)",
            "node-2 · remote"
        ]
    );
    check_sing_box(&render(&p, Format::SingBox).body);
}

#[test]
fn stable_ids_are_uuid_shaped_and_stable() {
    let a = stable_id("user 1 relay");
    assert_eq!(a, stable_id("user 1 relay"));
    assert_ne!(a, stable_id("user 1 direct"));
    assert_eq!(a.len(), 36);
    assert_eq!(a.as_bytes()[14], b'8');
    assert_eq!(a.chars().filter(|c| *c == '-').count(), 4, "{a}");
}

#[test]
fn import_links_encode_the_url() {
    let l = import_links("https://panel.example/sub/AbC_d-1?x=1", "Arch · alice");
    assert_eq!(
        l.clash,
        "clash://install-config?url=https%3A%2F%2Fpanel.example%2Fsub%2FAbC_d-1%3Fx%3D1"
    );
    assert_eq!(
        l.sing_box,
        "sing-box://import-remote-profile?url=https%3A%2F%2Fpanel.example%2Fsub%2FAbC_d-1%3Fx%3D1#Arch%20%C2%B7%20alice"
    );
    assert_eq!(
        l.shadowrocket,
        format!(
            "sub://{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode("https://panel.example/sub/AbC_d-1?x=1")
        )
    );
    assert_eq!(
        l.hiddify,
        "hiddify://import/https://panel.example/sub/AbC_d-1?x=1"
    );
}
