//! The four document formats. Server names are made unique first (Clash and sing-box refuse a
//! profile with two proxies of one name), so every format lists the same names.

use crate::{Document, Format, Profile, Server};
use base64::Engine as _;
use serde::Serialize;
use serde_json::json;

/// The selector group / outbound every profile routes through.
const SELECT: &str = "Arch";
/// The automatic (latency-tested) group inside it.
const AUTO: &str = "auto";
/// What the latency test fetches (answers 204 with no body).
const PROBE_URL: &str = "https://www.gstatic.com/generate_204";

/// `profile` as `format`.
pub fn render(profile: &Profile, format: Format) -> Document {
    let servers = unique_names(&profile.servers);
    let body = match format {
        Format::Base64 => base64_list(&servers),
        Format::Sip008 => sip008(profile, &servers),
        Format::Clash => clash(&servers),
        Format::SingBox => sing_box(&servers),
    };
    Document { format, body }
}

/// The servers with names made unique: a repeated name gets ` (2)`, ` (3)`, … in list order;
/// names that would clash with the group names get the same treatment.
fn unique_names(servers: &[Server]) -> Vec<Server> {
    let mut seen: std::collections::HashSet<String> = [SELECT, AUTO, "DIRECT", "REJECT", "direct"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    servers
        .iter()
        .map(|s| {
            let mut name = if s.name.trim().is_empty() {
                format!("{}:{}", s.host, s.port)
            } else {
                s.name.clone()
            };
            let base = name.clone();
            let mut n = 2;
            while !seen.insert(name.clone()) {
                name = format!("{base} ({n})");
                n += 1;
            }
            Server { name, ..s.clone() }
        })
        .collect()
}

fn base64_list(servers: &[Server]) -> String {
    let links: Vec<String> = servers.iter().map(Server::link).collect();
    base64::engine::general_purpose::STANDARD.encode(links.join("\n"))
}

fn sip008(profile: &Profile, servers: &[Server]) -> String {
    let list: Vec<_> = servers
        .iter()
        .map(|s| {
            json!({
                "id": s.id,
                "remarks": s.name,
                "server": s.host,
                "server_port": s.port,
                "password": s.password,
                "method": s.method,
                "plugin": "",
                "plugin_opts": "",
            })
        })
        .collect();
    let u = profile.usage;
    let mut doc = json!({
        "version": 1,
        "servers": list,
        "bytes_used": u.used,
    });
    if let Some(quota) = u.quota {
        doc["bytes_remaining"] = json!(quota.saturating_sub(u.used));
    }
    pretty(&doc)
}

#[derive(Serialize)]
struct ClashProfile<'a> {
    #[serde(rename = "mixed-port")]
    mixed_port: u16,
    mode: &'static str,
    #[serde(rename = "log-level")]
    log_level: &'static str,
    proxies: Vec<ClashProxy<'a>>,
    #[serde(rename = "proxy-groups")]
    proxy_groups: Vec<ClashGroup>,
    rules: Vec<String>,
}

#[derive(Serialize)]
struct ClashProxy<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    server: &'a str,
    port: u16,
    cipher: &'a str,
    password: &'a str,
    udp: bool,
}

#[derive(Serialize)]
struct ClashGroup {
    name: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    proxies: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    interval: Option<u32>,
}

/// A Clash / mihomo profile. With no server (a disabled user) it has no proxy and no group and
/// sends everything `DIRECT`: a valid profile that routes nothing through Arch.
fn clash(servers: &[Server]) -> String {
    let names: Vec<String> = servers.iter().map(|s| s.name.clone()).collect();
    let (proxy_groups, rules) = if servers.is_empty() {
        (Vec::new(), vec!["MATCH,DIRECT".to_owned()])
    } else {
        let mut select = vec![AUTO.to_owned()];
        select.extend(names.iter().cloned());
        (
            vec![
                ClashGroup {
                    name: SELECT,
                    kind: "select",
                    proxies: select,
                    url: None,
                    interval: None,
                },
                ClashGroup {
                    name: AUTO,
                    kind: "url-test",
                    proxies: names,
                    url: Some(PROBE_URL),
                    interval: Some(300),
                },
            ],
            vec![format!("MATCH,{SELECT}")],
        )
    };
    let profile = ClashProfile {
        mixed_port: 7890,
        mode: "rule",
        log_level: "info",
        proxies: servers
            .iter()
            .map(|s| ClashProxy {
                name: &s.name,
                kind: "ss",
                server: &s.host,
                port: s.port,
                cipher: &s.method,
                password: &s.password,
                udp: s.udp,
            })
            .collect(),
        proxy_groups,
        rules,
    };
    // Serialising plain structs of strings, numbers and lists cannot fail.
    serde_yaml_ng::to_string(&profile).unwrap_or_default()
}

/// A complete sing-box profile (1.11 or newer: rule actions): a tun inbound for the mobile and
/// desktop apps and a local mixed (SOCKS + HTTP) inbound, one `shadowsocks` outbound per
/// server, a `urltest` over them inside a `selector`, and `direct`. DNS is sniffed and hijacked
/// to sing-box's resolver. With no server the profile sends everything `direct`.
fn sing_box(servers: &[Server]) -> String {
    let tags: Vec<&str> = servers.iter().map(|s| s.name.as_str()).collect();
    let mut outbounds = Vec::new();
    if !servers.is_empty() {
        let mut select = vec![AUTO];
        select.extend(tags.iter().copied());
        outbounds.push(json!({
            "type": "selector", "tag": SELECT, "outbounds": select, "default": AUTO,
        }));
        outbounds.push(json!({
            "type": "urltest", "tag": AUTO, "outbounds": tags,
            "url": PROBE_URL, "interval": "3m",
        }));
    }
    for s in servers {
        let mut o = json!({
            "type": "shadowsocks", "tag": s.name, "server": s.host, "server_port": s.port,
            "method": s.method, "password": s.password,
        });
        if !s.udp {
            o["network"] = json!("tcp");
        }
        outbounds.push(o);
    }
    outbounds.push(json!({"type": "direct", "tag": "direct"}));
    let doc = json!({
        "log": {"level": "info"},
        "inbounds": [
            {
                "type": "tun", "tag": "tun-in",
                "address": ["172.19.0.1/30", "fdfe:dcba:9876::1/126"],
                "auto_route": true, "strict_route": true, "stack": "system",
            },
            {"type": "mixed", "tag": "mixed-in", "listen": "127.0.0.1", "listen_port": 2080},
        ],
        "outbounds": outbounds,
        "route": {
            "rules": [
                {"action": "sniff"},
                {"protocol": "dns", "action": "hijack-dns"},
            ],
            "final": if servers.is_empty() { "direct" } else { SELECT },
            "auto_detect_interface": true,
        },
    });
    pretty(&doc)
}

fn pretty(v: &serde_json::Value) -> String {
    // A `Value` always serialises.
    serde_json::to_string_pretty(v).unwrap_or_default()
}
