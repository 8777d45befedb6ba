//! Golden-file tests of the writer, one per mode, plus determinism and health-aware balancers.
//! Regenerate the files with `UPDATE_GOLDEN=1 cargo test -p manager writer` and review the diff.

use super::Snapshot;
use crate::entity::node::{self, NodeStatus};
use crate::entity::{settings, user};

fn settings(direct: i32, relay: i32, reverse: i32, remote: i32) -> settings::Model {
    settings::Model {
        id: 1,
        host: "198.51.100.1".into(),
        ss_direct_port: direct,
        ss_relay_port: relay,
        ss_reverse_port: reverse,
        ss_remote_port: remote,
        proxy_url: String::new(),
        traffic_ratio: 1.0,
        allowed_private_networks: String::new(),
        config_updated_at: 1_764_000_000_000,
        subscription_url_base: String::new(),
        time_zone: "UTC".into(),
    }
}

fn user(id: i64, enabled: bool) -> user::Model {
    user::Model {
        id,
        name: format!("user{id}"),
        password: format!("cGFzc3dvcmQtb2YtdXNlci0{id}"),
        method: "chacha20-ietf-poly1305".into(),
        enabled,
        disabled_reason: None,
        quota_bytes: 0,
        usage_bytes: 0,
        expire_at: None,
        expire_after_first_use: None,
        first_used_at: None,
        created_at: 0,
        updated_at: 0,
        sub_secret: format!("secret-{id}"),
        sub_secret_hash: format!("hash-{id}"),
        reset_strategy: rules::ResetStrategy::None,
        reset_day: 1,
        usage_reset_at: 0,
        next_reset_at: None,
    }
}

fn node(id: i64, healthy: bool) -> node::Model {
    node::Model {
        id,
        name: format!("node-{id}"),
        host: format!("203.0.113.{id}"),
        http_port: 8080,
        http_token: "t".repeat(32),
        usage_bytes: 0,
        push_status: if healthy {
            NodeStatus::Available
        } else {
            NodeStatus::Unavailable
        },
        pull_status: if healthy {
            NodeStatus::Available
        } else {
            NodeStatus::Unavailable
        },
        pushed_at: 0,
        pulled_at: 0,
        applied_version: None,
        last_error: None,
        relay_key: format!("cmVsYXkta2V5LW5vZGUt{id}A=="),
        relay_port: 40000 + id as i32,
        internal_key: format!("aW50ZXJuYWwta2V5LW5v{id}A=="),
        internal_port: 30000 + id as i32,
        created_at: 0,
        updated_at: 0,
        tls_fingerprint: None,
        presented_fingerprint: None,
        insecure_http: false,
        pending_token: None,
        refused_calls: 0,
        usage_multiplier_permille: 1000,
        desired_version: None,
    }
}

fn snapshot(s: settings::Model) -> Snapshot {
    Snapshot {
        settings: s,
        users: vec![user(1, true), user(2, true), user(3, false)],
        nodes: vec![node(1, true), node(2, false)],
    }
}

fn golden(name: &str, config: &xray::Config) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.json"));
    let mut actual = serde_json::to_string_pretty(config).expect("serializes");
    actual.push('\n');
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &actual).expect("write golden");
    }
    let expected =
        std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("missing {}", path.display()));
    assert_eq!(actual, expected, "{name} differs from its golden file");
    config.validate().expect("generated configs are valid");
}

#[test]
fn direct_mode() {
    let snap = snapshot(settings(8001, 0, 0, 0));
    golden("direct-manager", &snap.local_config());
    golden("direct-node1", &snap.node_config(&snap.nodes[0]));
}

#[test]
fn relay_mode() {
    let snap = snapshot(settings(0, 8002, 0, 0));
    golden("relay-manager", &snap.local_config());
    golden("relay-node1", &snap.node_config(&snap.nodes[0]));
}

#[test]
fn reverse_mode() {
    let snap = snapshot(settings(0, 0, 8003, 0));
    golden("reverse-manager", &snap.local_config());
    golden("reverse-node1", &snap.node_config(&snap.nodes[0]));
}

#[test]
fn remote_mode() {
    let snap = snapshot(settings(0, 0, 0, 8004));
    golden("remote-manager", &snap.local_config());
    golden("remote-node1", &snap.node_config(&snap.nodes[0]));
}

/// The block rule of a config: its inbounds and its networks.
fn block_rule(c: &xray::Config) -> (Vec<String>, Vec<String>) {
    let r = c
        .routing
        .rules
        .iter()
        .find(|r| r.outbound_tag.as_deref() == Some(super::BLOCK))
        .expect("a block rule");
    (r.inbound_tag.clone(), r.ip.clone())
}

#[test]
fn user_exits_are_guarded_and_the_allow_list_opens_exactly_its_networks() {
    let snap = snapshot(settings(8001, 8002, 8003, 8004));
    let manager = snap.local_config();
    let node = snap.node_config(&snap.nodes[0]);
    assert_eq!(manager.routing.domain_strategy, "IPOnDemand");
    assert_eq!(block_rule(&manager).0, ["direct"]);
    assert_eq!(block_rule(&node).0, ["direct", "bridge", "remote"]);
    // The bridge's own rule comes first (its domain is not a destination), then the guard,
    // then the catch-alls.
    let order: Vec<String> = node
        .routing
        .rules
        .iter()
        .map(|r| r.outbound_tag.clone().unwrap_or_default())
        .collect();
    assert_eq!(order, ["internal", "block", "out", "out", "out"]);
    let private: Vec<String> = xray::cidr::private()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(block_rule(&node).1, private);

    let mut s = settings(8001, 8002, 8003, 8004);
    s.allowed_private_networks = "10.0.0.0/8,127.0.0.0/8".into();
    let snap = snapshot(s);
    let (_, nets) = block_rule(&snap.node_config(&snap.nodes[0]));
    let want: Vec<String> = private
        .into_iter()
        .filter(|n| n != "10.0.0.0/8" && n != "127.0.0.0/8")
        .collect();
    assert_eq!(nets, want);
}

#[test]
fn same_state_same_bytes_and_version() {
    let a = snapshot(settings(8001, 8002, 8003, 8004));
    let b = snapshot(settings(8001, 8002, 8003, 8004));
    assert_eq!(
        a.local_config().to_canonical_json(),
        b.local_config().to_canonical_json()
    );
    assert_eq!(
        a.node_config(&a.nodes[1]).version(),
        b.node_config(&b.nodes[1]).version()
    );
}

#[test]
fn balancers_hold_only_healthy_nodes() {
    let mut snap = snapshot(settings(0, 8002, 8003, 0));
    let selectors = |s: &Snapshot| {
        let c = s.local_config();
        c.routing
            .balancers
            .iter()
            .map(|b| (b.tag.clone(), b.selector.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        selectors(&snap),
        vec![
            ("relay".into(), vec!["relay-1".to_string()]),
            ("portal".into(), vec!["portal-1".to_string()])
        ]
    );
    // Node 1 goes down: balancers empty, but its outbound and portal remain defined.
    snap.nodes[0].pull_status = NodeStatus::Unavailable;
    assert_eq!(
        selectors(&snap),
        vec![("relay".into(), vec![]), ("portal".into(), vec![])]
    );
    // A dirty node (reached through the proxy) still carries traffic.
    snap.nodes[1].push_status = NodeStatus::Dirty;
    snap.nodes[1].pull_status = NodeStatus::Available;
    assert_eq!(
        selectors(&snap),
        vec![
            ("relay".into(), vec!["relay-2".to_string()]),
            ("portal".into(), vec!["portal-2".to_string()])
        ]
    );
    // Health does not change what a node is sent.
    let before = snap.node_config(&snap.nodes[0]).version();
    snap.nodes[0].pull_status = NodeStatus::Available;
    assert_eq!(snap.node_config(&snap.nodes[0]).version(), before);
}

#[test]
fn disabled_users_are_left_out() {
    let snap = snapshot(settings(8001, 0, 0, 8004));
    let local = snap.local_config();
    let emails: Vec<_> = local.inbounds[0]
        .settings
        .clients
        .iter()
        .map(|c| c.email.as_str())
        .collect();
    assert_eq!(emails, ["1", "2"]);
}
