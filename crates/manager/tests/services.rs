//! Service-layer tests against a real database: a fresh SQLite file per test, or, when
//! `ARCH_TEST_DATABASE_URL` names a PostgreSQL server (e.g. `postgres://arch@127.0.0.1:55432/postgres`),
//! a fresh PostgreSQL database per test. CI runs this file on both.

use manager::entity::node::NodeStatus;
use manager::{
    accounting, CoordinatorConfig, Manager, NewNode, NewUser, NodePatch, Options, ServiceError,
    SettingsPatch, UserPatch,
};
use sea_orm::{ConnectionTrait, Database};
use std::time::Duration;
use xray::api::Stat;

#[path = "services/counters.rs"]
mod counters;
#[path = "services/dashboard.rs"]
mod dashboard;
#[path = "services/drift.rs"]
mod drift;
#[path = "services/hardening.rs"]
mod hardening;
#[path = "services/lifecycle.rs"]
mod lifecycle;
#[path = "services/roles.rs"]
mod roles;
#[path = "services/subscriptions.rs"]
mod subscriptions;
#[path = "services/usage.rs"]
mod usage;
#[path = "services/users_page.rs"]
mod users_page;

struct TestDb {
    manager: Manager,
    _dir: Option<tempfile::TempDir>,
}

async fn open() -> TestDb {
    let (url, dir) = match std::env::var("ARCH_TEST_DATABASE_URL") {
        Ok(admin_url) if !admin_url.is_empty() => {
            let name = format!("arch_test_{}", manager::util::random_hex(6));
            let admin = Database::connect(&admin_url)
                .await
                .expect("connect to PostgreSQL");
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create test database");
            admin.close().await.expect("close");
            let base = admin_url
                .rsplit_once('/')
                .map_or(admin_url.as_str(), |(b, _)| b)
                .to_owned();
            (format!("{base}/{name}"), None)
        }
        _ => {
            let dir = tempfile::tempdir().expect("tempdir");
            (manager::db::default_sqlite_url(dir.path()), Some(dir))
        }
    };
    let opts = Options {
        database_url: url,
        admin_token: Some("automation-token-0123456789".into()),
        coordinator: CoordinatorConfig::default(),
        node_timeout: Duration::from_secs(2),
        trusted_proxies: Default::default(),
    };
    TestDb {
        manager: Manager::open(opts, None).await.expect("open manager"),
        _dir: dir,
    }
}

fn field(e: &ServiceError) -> &str {
    e.field().unwrap_or("<none>")
}

#[tokio::test]
async fn users_crud_and_validation() {
    let t = open().await;
    let users = &t.manager.services.users;
    let alice = users
        .create(NewUser {
            name: "alice".into(),
            quota_bytes: 5_000,
            enabled: true,
            ..Default::default()
        })
        .await
        .expect("create");
    assert_eq!(alice.usage_bytes, 0);
    assert!(alice.enabled);
    assert_eq!(alice.method, "chacha20-ietf-poly1305");

    let bad = users
        .create(NewUser {
            name: "has space".into(),
            quota_bytes: 0,
            enabled: true,
            ..Default::default()
        })
        .await;
    assert!(matches!(&bad, Err(e @ ServiceError::Invalid { .. }) if field(e) == "name"));
    let neg = users
        .create(NewUser {
            name: "bob".into(),
            quota_bytes: -1,
            enabled: true,
            ..Default::default()
        })
        .await;
    assert!(matches!(&neg, Err(e @ ServiceError::Invalid { .. }) if field(e) == "quota_bytes"));
    let dup = users
        .create(NewUser {
            name: "alice".into(),
            quota_bytes: 0,
            enabled: true,
            ..Default::default()
        })
        .await;
    assert!(matches!(&dup, Err(e @ ServiceError::Conflict { .. }) if field(e) == "name"));
    assert_eq!(
        users.list().await.expect("list").len(),
        1,
        "rejected creates change nothing"
    );

    let off = users
        .update(
            alice.id,
            UserPatch {
                enabled: Some(false),
                ..Default::default()
            },
        )
        .await
        .expect("disable");
    assert!(!off.enabled);
    assert_eq!(off.disabled_reason, Some(rules::DisableReason::Manual));
    let on = users
        .update(
            alice.id,
            UserPatch {
                enabled: Some(true),
                quota_bytes: Some(9_000),
                ..Default::default()
            },
        )
        .await
        .expect("enable");
    assert!(on.enabled);
    assert_eq!(on.disabled_reason, None);
    assert_eq!(on.quota_bytes, 9_000);

    assert!(matches!(
        users.get(999).await,
        Err(ServiceError::NotFound(_))
    ));
    users.delete(alice.id).await.expect("delete");
    assert!(matches!(
        users.delete(alice.id).await,
        Err(ServiceError::NotFound(_))
    ));
}

#[tokio::test]
async fn nodes_generate_tokens_and_keys_once() {
    let t = open().await;
    let nodes = &t.manager.services.nodes;
    let n = nodes
        .create(NewNode {
            host: "203.0.113.5".into(),
            http_port: 8080,
            http_token: None,
            tls_fingerprint: Some("ab".repeat(32)),
            ..Default::default()
        })
        .await
        .expect("create");
    assert_eq!(n.http_token.len(), 64);
    assert_eq!(n.push_status, NodeStatus::Processing);
    assert_eq!(
        n.relay_key.len(),
        24,
        "16-byte key for 2022-blake3-aes-128-gcm"
    );
    assert_ne!(n.relay_key, n.internal_key);

    let dup = nodes
        .create(NewNode {
            host: "203.0.113.5".into(),
            http_port: 8080,
            http_token: Some("x".repeat(20)),
            ..Default::default()
        })
        .await;
    assert!(matches!(&dup, Err(e @ ServiceError::Conflict { .. }) if field(e) == "host"));
    let bad = nodes
        .create(NewNode {
            host: "not a host".into(),
            http_port: 8080,
            http_token: None,
            ..Default::default()
        })
        .await;
    assert!(matches!(&bad, Err(e @ ServiceError::Invalid { .. }) if field(e) == "host"));
    let bad = nodes
        .create(NewNode {
            host: "h.example".into(),
            http_port: 0,
            http_token: None,
            ..Default::default()
        })
        .await;
    assert!(matches!(&bad, Err(e @ ServiceError::Invalid { .. }) if field(e) == "http_port"));
    let bad = nodes
        .create(NewNode {
            host: "h.example".into(),
            http_port: 1,
            http_token: Some("short".into()),
            ..Default::default()
        })
        .await;
    assert!(matches!(&bad, Err(e @ ServiceError::Invalid { .. }) if field(e) == "http_token"));
    assert_eq!(nodes.list().await.expect("list").len(), 1);

    // Editing the token keeps the link keys; only rotation changes them.
    let edited = nodes
        .update(
            n.id,
            NodePatch {
                http_token: Some("y".repeat(32)),
                ..Default::default()
            },
        )
        .await
        .expect("update");
    assert_eq!(edited.relay_key, n.relay_key);
    assert_eq!(edited.internal_port, n.internal_port);
    let rotated = nodes.rotate_keys(n.id).await.expect("rotate");
    assert_ne!(rotated.relay_key, n.relay_key);
    assert_ne!(rotated.internal_key, n.internal_key);

    nodes.delete(n.id).await.expect("delete");
    assert!(matches!(
        nodes.get(n.id).await,
        Err(ServiceError::NotFound(_))
    ));
}

#[tokio::test]
async fn nodes_have_unique_names() {
    let t = open().await;
    let nodes = &t.manager.services.nodes;
    let add = |name: Option<&str>, port: u16| {
        nodes.create(NewNode {
            name: name.map(str::to_owned),
            host: "203.0.113.7".into(),
            http_port: port,
            insecure_http: true,
            ..Default::default()
        })
    };
    let first = add(None, 8001).await.expect("unnamed");
    assert_eq!(first.name, format!("node-{}", first.id));
    // A name the next unnamed node would get by default: the default moves aside.
    let next = format!("node-{}", first.id + 2);
    let squatter = add(Some(&next), 8002).await.expect("named");
    assert_eq!(squatter.name, next);
    let third = add(Some("  "), 8003).await.expect("blank name = default");
    assert_eq!(third.name, format!("node-{}-2", third.id));
    let named = add(Some(" Frankfurt  #1 "), 8004).await.expect("named");
    assert_eq!(named.name, "Frankfurt #1");
    let dup = add(Some("Frankfurt #1"), 8005).await;
    assert!(matches!(&dup, Err(e @ ServiceError::Conflict { .. }) if field(e) == "name"));
    let bad = add(Some("a: b"), 8005).await;
    assert!(matches!(&bad, Err(e @ ServiceError::Invalid { .. }) if field(e) == "name"));
    assert_eq!(nodes.list().await.expect("list").len(), 4);

    // Renaming changes only the name: the channel's state stays proven.
    let renamed = nodes
        .update(
            first.id,
            NodePatch {
                name: Some("Tokyo".into()),
                host: Some(first.host.clone()),
                http_port: Some(8001),
                ..Default::default()
            },
        )
        .await
        .expect("rename");
    assert_eq!(renamed.name, "Tokyo");
    assert_eq!(renamed.relay_key, first.relay_key);
    assert!(renamed.updated_at >= first.updated_at);
    let clash = nodes
        .update(
            first.id,
            NodePatch {
                name: Some("Frankfurt #1".into()),
                ..Default::default()
            },
        )
        .await;
    assert!(matches!(&clash, Err(e @ ServiceError::Conflict { .. }) if field(e) == "name"));
    assert_eq!(nodes.get(first.id).await.expect("get").name, "Tokyo");
}

#[tokio::test]
async fn settings_validate_before_changing() {
    let t = open().await;
    let s = &t.manager.services.settings;
    let before = s.get().await.expect("get");
    assert_eq!(before.traffic_ratio, 1.0);
    let err = s
        .update(SettingsPatch {
            ss_direct_port: Some(9000),
            ss_relay_port: Some(9000),
            ..Default::default()
        })
        .await
        .expect_err("duplicate ports");
    assert_eq!(field(&err), "ss_relay_port");
    let err = s
        .update(SettingsPatch {
            proxy_url: Some("ftp://x:1".into()),
            ..Default::default()
        })
        .await
        .expect_err("bad proxy");
    assert_eq!(field(&err), "proxy_url");
    let err = s
        .update(SettingsPatch {
            traffic_ratio: Some(0.0),
            ..Default::default()
        })
        .await
        .expect_err("bad ratio");
    assert_eq!(field(&err), "traffic_ratio");
    // The shared host rule (`rules::input::host`), with the message the panel shows too.
    let err = s
        .update(SettingsPatch {
            host: Some("a..b".into()),
            ..Default::default()
        })
        .await
        .expect_err("empty label");
    assert_eq!(
        err.to_string(),
        "host: must be a domain name or an IP address"
    );
    assert_eq!(
        s.get().await.expect("get"),
        before,
        "rejected updates change nothing"
    );

    let after = s
        .update(SettingsPatch {
            host: Some(" Panel.Example.ORG. ".into()),
            ss_direct_port: Some(9001),
            proxy_url: Some("socks5://127.0.0.1:1080".into()),
            ..Default::default()
        })
        .await
        .expect("update");
    assert_eq!(after.host, "panel.example.org");
    assert_eq!(after.ss_direct_port, 9001);
    assert_eq!(s.get().await.expect("get"), after);
}

#[tokio::test]
async fn setup_login_sessions_and_rate_limit() {
    let t = open().await;
    let auth = &t.manager.services.auth;
    assert!(auth.needs_setup().await.expect("needs_setup"));
    let token = auth
        .setup_token()
        .await
        .expect("token")
        .expect("some token");
    assert!(matches!(
        auth.setup("wrong", "root", "correct horse battery", None)
            .await,
        Err(ServiceError::Unauthorized)
    ));
    let short = auth.setup(&token, "root", "short", None).await;
    assert!(matches!(&short, Err(e @ ServiceError::Invalid { .. }) if field(e) == "password"));
    let session = auth
        .setup(&token, "root", "correct horse battery", None)
        .await
        .expect("setup");
    assert!(!auth.needs_setup().await.expect("needs_setup"));
    assert_eq!(auth.setup_token().await.expect("token"), None);
    assert!(matches!(
        auth.setup(&token, "other", "correct horse battery", None)
            .await,
        Err(ServiceError::Unauthorized)
    ));

    let admin = auth
        .admin_for_session(&session.token)
        .await
        .expect("lookup")
        .expect("valid");
    assert_eq!(admin.username, "root");
    auth.logout(&session.token).await.expect("logout");
    assert_eq!(
        auth.admin_for_session(&session.token)
            .await
            .expect("lookup"),
        None
    );

    let ip = Some("192.0.2.1".parse().expect("ip"));
    for _ in 0..5 {
        assert!(matches!(
            auth.login("root", "wrong password!", ip).await,
            Err(ServiceError::Unauthorized)
        ));
    }
    assert!(matches!(
        auth.login("root", "correct horse battery", ip).await,
        Err(ServiceError::RateLimited)
    ));
    // The account itself now waits (backoff), from any address it never signed in from.
    let other_ip = Some("192.0.2.2".parse().expect("ip"));
    assert!(matches!(
        auth.login("root", "correct horse battery", other_ip).await,
        Err(ServiceError::RateLimited)
    ));

    assert!(auth
        .check_bearer("automation-token-0123456789")
        .await
        .expect("bearer"));
    assert!(!auth
        .check_bearer("automation-token-0123456780")
        .await
        .expect("bearer"));
    let api = auth.create_api_token("ci").await.expect("token");
    assert!(auth.check_bearer(&api).await.expect("bearer"));
}

/// A plain-HTTP node on 127.0.0.1:9 (nothing listens there): a source of counters only.
async fn counter_node(t: &TestDb) -> manager::Node {
    t.manager
        .services
        .nodes
        .create(NewNode {
            host: "127.0.0.1".into(),
            http_port: 9,
            insecure_http: true,
            ..Default::default()
        })
        .await
        .expect("node")
}

/// What a node counting for `users` (and no inbound or outbound) may report.
fn counting_for(users: &[i64]) -> accounting::Expected {
    accounting::Expected::Node {
        users: users.iter().copied().collect(),
        inbounds: Default::default(),
        outbounds: Default::default(),
    }
}

fn stat(name: &str, value: u64) -> Stat {
    Stat {
        name: name.into(),
        value,
    }
}

#[tokio::test]
async fn accounting_is_exactly_once_and_enforces_quotas() {
    let t = open().await;
    let s = &t.manager.services;
    let db = &t.manager.db;
    let u = s
        .users
        .create(NewUser {
            name: "u".into(),
            quota_bytes: 10_000,
            enabled: true,
            ..Default::default()
        })
        .await
        .expect("user");
    let n = s
        .nodes
        .create(NewNode {
            host: "127.0.0.1".into(),
            http_port: 9,
            http_token: None,
            ..Default::default()
        })
        .await
        .expect("node");
    let up = format!("user>>>{}>>>traffic>>>uplink", u.id);
    let down = format!("user>>>{}>>>traffic>>>downlink", u.id);
    let exp = accounting::Expected::Node {
        users: [u.id, 999].into(),
        inbounds: ["remote".to_owned()].into(),
        outbounds: Default::default(),
    };

    let pull1 = [
        stat(&up, 100),
        stat(&down, 1_000),
        stat("inbound>>>remote>>>traffic>>>downlink", 1_000),
    ];
    let a = accounting::apply(db, n.id, "e1", &pull1, &exp)
        .await
        .expect("apply");
    assert_eq!(a.user_bytes.get(&u.id), Some(&1_100));
    assert_eq!(a.node_bytes, 1_000);
    // The same reply again (a retried pull) adds nothing.
    let again = accounting::apply(db, n.id, "e1", &pull1, &exp)
        .await
        .expect("apply");
    assert!(again.user_bytes.is_empty());
    assert_eq!(s.users.get(u.id).await.expect("get").usage_bytes, 1_100);
    let node = s.nodes.get(n.id).await.expect("node");
    assert_eq!(node.usage_bytes, 1_000);
    assert_eq!(node.pull_status, NodeStatus::Available);
    assert!(node.pulled_at > 0);

    // Cumulative growth adds the difference only.
    accounting::apply(db, n.id, "e1", &[stat(&up, 150), stat(&down, 3_000)], &exp)
        .await
        .expect("apply");
    assert_eq!(s.users.get(u.id).await.expect("get").usage_bytes, 3_150);

    // A new epoch (node crashed) counts from zero.
    accounting::apply(db, n.id, "e2", &[stat(&up, 50), stat(&down, 50)], &exp)
        .await
        .expect("apply");
    assert_eq!(s.users.get(u.id).await.expect("get").usage_bytes, 3_250);

    // Crossing the quota disables the user with the reason.
    let a = accounting::apply(db, n.id, "e2", &[stat(&down, 7_000)], &exp)
        .await
        .expect("apply");
    assert_eq!(a.disabled, vec![u.id]);
    let after = s.users.get(u.id).await.expect("get");
    assert_eq!(after.usage_bytes, 10_200);
    assert!(!after.enabled);
    assert_eq!(after.disabled_reason, Some(rules::DisableReason::Quota));

    // Counters of a deleted user are ignored, not an error.
    accounting::apply(
        db,
        n.id,
        "e2",
        &[stat("user>>>999>>>traffic>>>uplink", 5)],
        &exp,
    )
    .await
    .expect("apply");
}
