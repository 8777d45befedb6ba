//! Integration tests with real processes on 127.0.0.1: `arch-manager` and `arch-node` binaries
//! (build them first: `cargo build --release -p server -p node`, or the debug equivalents),
//! driven over their HTTP APIs.

use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::Duration;
use testkit::net::LOCALHOST;
use testkit::procs::{self, wait_until, Api, ADMIN_TOKEN, NODE_TOKEN};

fn start_node(port: u16, data: &std::path::Path) -> procs::ArchProc {
    procs::start_node(LOCALHOST, port, data, None)
}

fn free_port() -> u16 {
    testkit::net::free_port()
}

#[tokio::test]
async fn push_pull_health_and_node_api_guards() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mport, nport) = (free_port(), free_port());
    let mut node = start_node(nport, &dir.path().join("node"));
    let _manager = procs::start_manager(mport, &dir.path().join("manager"));
    let (m, n) = (
        Api::new(LOCALHOST, mport, ADMIN_TOKEN),
        Api::new(LOCALHOST, nport, NODE_TOKEN),
    );
    wait_until(
        "both processes to listen",
        Duration::from_secs(20),
        || async { m.up().await && n.up().await },
    )
    .await;

    // REST guards: no token → 401; unknown field → 400 naming it; nothing created.
    let (st, _) = m
        .request_as(Method::GET, "/v1/nodes", "wrong-token-wrong-token", None)
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, body) = m
        .request(
            Method::POST,
            "/v1/nodes",
            Some(&json!({"host": "127.0.0.1", "http_port": nport, "colour": "red"})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("colour"),
        "{body}"
    );
    let (_, list) = m.get("/v1/nodes").await;
    assert_eq!(list, json!([]));

    // Register the node: it gets pushed and pulled.
    let (st, created) = m
        .request(
            Method::POST,
            "/v1/nodes",
            Some(&json!({"host": "127.0.0.1", "http_port": nport, "http_token": NODE_TOKEN})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{created}");
    assert_eq!(
        created["http_token"], NODE_TOKEN,
        "the token is shown at creation"
    );
    let id = created["id"].as_i64().expect("id");
    let node_path = format!("/v1/nodes/{id}");
    wait_until(
        "push and pull to succeed",
        Duration::from_secs(15),
        || async {
            let (_, v) = m.get(&node_path).await;
            v["push_status"] == "available" && v["pull_status"] == "available"
        },
    )
    .await;
    let (_, record) = m.get(&node_path).await;
    assert!(
        record.get("http_token").is_none(),
        "the token is not shown again"
    );
    let (st, applied) = n.get("/v1/configs").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(applied["version"], record["applied_version"]);
    assert!(applied["metadata"]["updated_at"]
        .as_str()
        .is_some_and(|s| s.ends_with('Z')));
    let version = applied["version"].clone();

    // Node API guards: wrong token → 401 and the config is unchanged.
    let (st, _) = n
        .request_as(
            Method::POST,
            "/v1/configs",
            "not-the-node-token-xx",
            Some(&json!({"inbounds": []})),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = n.request_as(Method::GET, "/v1/stats", "", None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // Invalid config → 400 with the field path, config unchanged.
    let bad = json!({"inbounds": [{"tag": "x", "port": 0, "protocol": "shadowsocks",
        "settings": {"method": "aes-256-gcm", "password": "p", "network": "tcp"}}], "outbounds": []});
    let (st, body) = n.request(Method::POST, "/v1/configs", Some(&bad)).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(body["path"], "inbounds[0].port", "{body}");
    let (_, still) = n.get("/v1/configs").await;
    assert_eq!(still["version"], version);

    // Graceful restart keeps the counter epoch; the config survives.
    let (_, info) = n.get("/v1/info").await;
    let epoch = info["epoch"].clone();
    node.signal("-TERM");
    node = start_node(nport, &dir.path().join("node"));
    wait_until("node back", Duration::from_secs(10), || async {
        n.up().await
    })
    .await;
    let (_, info) = n.get("/v1/info").await;
    assert_eq!(info["epoch"], epoch, "a clean restart continues the epoch");
    assert_eq!(
        info["config_version"], version,
        "the saved config is applied at start"
    );

    // Killed: unavailable after the pull timeout (3 s); back: available again.
    node.signal("-KILL");
    wait_until(
        "pull status unavailable",
        Duration::from_secs(10),
        || async { m.get(&node_path).await.1["pull_status"] == "unavailable" },
    )
    .await;
    let _node = start_node(nport, &dir.path().join("node"));
    wait_until(
        "pull status available again",
        Duration::from_secs(15),
        || async {
            let (_, v) = m.get(&node_path).await;
            v["pull_status"] == "available" && v["push_status"] == "available"
        },
    )
    .await;
    let (_, info) = n.get("/v1/info").await;
    assert_ne!(info["epoch"], epoch, "a crash starts a new epoch");
}

#[tokio::test]
async fn rest_users_and_settings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mport = free_port();
    let _manager = procs::start_manager(mport, dir.path());
    let m = Api::new(LOCALHOST, mport, ADMIN_TOKEN);
    wait_until("manager to listen", Duration::from_secs(20), || async {
        m.up().await
    })
    .await;

    let (st, u) = m
        .request(
            Method::POST,
            "/v1/users",
            Some(&json!({"name": "alice", "quota_bytes": 1000})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{u}");
    let id = u["id"].as_i64().expect("id");
    let (st, e) = m
        .request(Method::POST, "/v1/users", Some(&json!({"name": "alice"})))
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert_eq!(e["field"], "name");
    let (st, e) = m
        .request(Method::POST, "/v1/users", Some(&json!({"name": 5})))
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(e["field"], "name");
    let (st, e) = m
        .request(
            Method::PATCH,
            &format!("/v1/users/{id}"),
            Some(&json!({"enabled": false})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{e}");
    assert_eq!(e["enabled"], false);
    assert_eq!(e["disabled_reason"], "manual");

    let (st, s) = m
        .request(
            Method::PUT,
            "/v1/settings",
            Some(&json!({"ss_direct_port": 9000, "ss_remote_port": 9000})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(s["field"], "ss_remote_port");
    let direct = free_port();
    let (st, s) = m
        .request(
            Method::PUT,
            "/v1/settings",
            Some(&json!({"ss_direct_port": direct, "host": "127.0.0.1"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{s}");
    let (st, links) = m.get(&format!("/v1/users/{id}/links")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(links[0]["mode"], "direct");
    assert!(links[0]["url"]
        .as_str()
        .unwrap_or_default()
        .ends_with(&format!("@127.0.0.1:{direct}#alice-direct")));

    assert_eq!(
        m.delete(&format!("/v1/users/{id}")).await,
        StatusCode::NO_CONTENT
    );
    let (st, _) = m.get(&format!("/v1/users/{id}")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}
