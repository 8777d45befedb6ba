//! Integration tests with real processes on 127.0.0.1: `arch-manager` and `arch-node` binaries
//! (build them first: `cargo build --release -p server -p node`, or the debug equivalents),
//! driven over their HTTP APIs. Only what needs processes is here (signals, restarts); the REST
//! API, registration, push and pull, and `/events` are tested in process (`tests/in_process`).

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
async fn node_restarts_keep_or_start_the_epoch_and_health_follows() {
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
    let (st, applied) = n.get("/v1/configs").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(applied["version"], record["applied_version"]);
    let version = applied["version"].clone();

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
