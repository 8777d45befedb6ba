//! The secure node channel against in-process TLS nodes: the certificate pinned on first use or
//! given by the operator, a changed certificate refused before anything is sent (also through
//! the proxy fallback), re-pinning, and token rotation including interrupted rotations.

use crate::support::{wait_until, TestApp, TestNode, NODE_TOKEN};
use manager::ConnectionTrait;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use testkit::net::LOCALHOST;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const WITHIN: Duration = Duration::from_secs(15);

/// Waits until node `id`'s record satisfies `want`; returns it.
async fn wait_node(app: &TestApp, id: i64, what: &str, want: impl Fn(&Value) -> bool) -> Value {
    let path = format!("/v1/nodes/{id}");
    wait_until(what, WITHIN, || async {
        let (_, v) = app.manager.api.get(&path).await;
        want(&v)
    })
    .await;
    app.manager.api.get(&path).await.1
}

fn id_of(record: &Value) -> i64 {
    record["id"].as_i64().expect("id")
}

#[tokio::test]
async fn first_use_pin_and_a_wrong_pin_sends_nothing() {
    let app = TestApp::builder().nodes(2).start().await;
    let m = &app.manager.api;
    let (a, b) = (&app.nodes[0], &app.nodes[1]);

    // Trust on first use: the registration's /v1/info call pins exactly the node's certificate.
    let created = app.register(0).await;
    assert_eq!(created["tls_fingerprint"], a.fingerprint.to_string());
    assert_eq!(created["presented_fingerprint"], Value::Null);
    assert_eq!(created["insecure_http"], false);
    assert_eq!(created["refused_calls"], 0);
    assert_eq!(created["token_rotation_pending"], false);
    assert!(created.get("pending_token").is_none(), "{created}");
    let id_a = id_of(&created);
    let record = wait_node(&app, id_a, "node A available", |v| {
        v["push_status"] == "available" && v["pull_status"] == "available"
    })
    .await;
    let (_, applied) = a.api.get("/v1/configs").await;
    assert_eq!(applied["version"], record["applied_version"]);

    // A malformed fingerprint is refused and nothing is created.
    let (st, e) = m
        .post(
            "/v1/nodes",
            &json!({"host": "127.0.0.1", "http_port": b.port(), "tls_fingerprint": "abc"}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["field"], "tls_fingerprint");
    assert_eq!(
        e["error"],
        "tls_fingerprint: must be a SHA-256 certificate fingerprint: 64 hex digits, optionally as 32 colon-separated pairs"
    );
    assert_eq!(m.get("/v1/nodes").await.1.as_array().map(Vec::len), Some(1));

    // The operator gives a pin that is not B's: every call is refused in the handshake.
    let created = app
        .register_with(1, json!({"tls_fingerprint": a.fingerprint.to_string()}))
        .await;
    let id_b = id_of(&created);
    assert_eq!(created["tls_fingerprint"], a.fingerprint.to_string());
    let expected = format!(
        "certificate changed: pinned {}, presented {}",
        a.fingerprint, b.fingerprint
    );
    let record = wait_node(&app, id_b, "node B refused", |v| {
        v["last_error"] == expected.as_str()
    })
    .await;
    assert_eq!(record["push_status"], "unavailable");
    assert_eq!(record["pull_status"], "unavailable");
    assert_eq!(record["presented_fingerprint"], b.fingerprint.to_string());
    assert_eq!(record["tls_fingerprint"], a.fingerprint.to_string());
    assert_eq!(
        b.requests(),
        0,
        "no request (no token, no config) reached node B"
    );

    // Re-pin: a malformed fingerprint → 400 and nothing changes; unknown ids → 404.
    let repin = format!("/v1/nodes/{id_b}/repin");
    let (st, e) = m.post(&repin, &json!({"tls_fingerprint": "zz"})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["field"], "tls_fingerprint");
    let (st, e) = m.post(&repin, &json!({"fingerprint": "zz"})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
    let (_, still) = m.get(&format!("/v1/nodes/{id_b}")).await;
    assert_eq!(still["tls_fingerprint"], a.fingerprint.to_string());
    assert_eq!(still["presented_fingerprint"], b.fingerprint.to_string());
    for path in ["/v1/nodes/999/repin", "/v1/nodes/999/rotate-token"] {
        let (st, e) = m.request(Method::POST, path, None).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{path}: {e}");
        assert_eq!(e["error"], "node 999 not found");
    }

    // Re-pin without a body takes the presented certificate; B gets its config.
    let (st, record) = m.request(Method::POST, &repin, None).await;
    assert_eq!(st, StatusCode::OK, "{record}");
    assert_eq!(record["tls_fingerprint"], b.fingerprint.to_string());
    assert_eq!(record["presented_fingerprint"], Value::Null);
    assert_eq!(record["last_error"], Value::Null);
    let record = wait_node(&app, id_b, "node B available", |v| {
        v["push_status"] == "available" && v["pull_status"] == "available"
    })
    .await;
    let (_, applied) = b.api.get("/v1/configs").await;
    assert_eq!(applied["version"], record["applied_version"]);
    // Nothing left to re-pin.
    let (st, e) = m.request(Method::POST, &repin, None).await;
    assert_eq!(st, StatusCode::CONFLICT, "{e}");
    assert_eq!(
        e["error"],
        "tls_fingerprint: the node presented no other certificate: give the fingerprint to pin"
    );
}

#[tokio::test]
async fn a_node_taking_over_the_address_is_refused_until_repinned() {
    let mut app = TestApp::builder().nodes(1).start().await;
    let id = id_of(&app.register(0).await);
    wait_node(&app, id, "node A available", |v| {
        v["push_status"] == "available" && v["pull_status"] == "available"
    })
    .await;
    let old = app.nodes[0].fingerprint;
    let port = app.nodes[0].port();
    app.nodes[0].stop().await;
    app.nodes[0] = TestNode::start_at(port).await;
    let new = app.nodes[0].fingerprint;
    assert_ne!(old, new);

    let expected = format!("certificate changed: pinned {old}, presented {new}");
    let record = wait_node(&app, id, "the new certificate refused", |v| {
        v["last_error"] == expected.as_str()
    })
    .await;
    assert_eq!(record["push_status"], "unavailable");
    assert_eq!(record["pull_status"], "unavailable");
    assert_eq!(record["tls_fingerprint"], old.to_string());
    assert_eq!(record["presented_fingerprint"], new.to_string());
    assert_eq!(
        app.nodes[0].requests(),
        0,
        "no request (no token, no config) reached node B"
    );

    let (st, record) = app
        .manager
        .api
        .request(Method::POST, &format!("/v1/nodes/{id}/repin"), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{record}");
    assert_eq!(record["tls_fingerprint"], new.to_string());
    let record = wait_node(&app, id, "node B available", |v| {
        v["push_status"] == "available" && v["pull_status"] == "available"
    })
    .await;
    let (_, applied) = app.nodes[0].api.get("/v1/configs").await;
    assert_eq!(applied["version"], record["applied_version"]);
}

/// A CONNECT proxy on 127.0.0.1 that sends every tunnel to 127.0.0.1 (whatever loopback address
/// was asked for) and counts the tunnels it opened.
async fn connect_proxy() -> (u16, Arc<AtomicU64>) {
    let listener = TcpListener::bind((LOCALHOST, 0)).await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let tunnels = Arc::new(AtomicU64::new(0));
    let count = tunnels.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                    if client.read_exact(&mut byte).await.is_err() {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let Some(port) = head
                    .strip_prefix("CONNECT ")
                    .and_then(|r| r.split_whitespace().next())
                    .and_then(|authority| authority.rsplit_once(':'))
                    .and_then(|(host, port)| host.starts_with("127.").then_some(port))
                    .and_then(|p| p.parse::<u16>().ok())
                else {
                    let _ = client.write_all(b"HTTP/1.1 403 Forbidden\r\n\r\n").await;
                    return;
                };
                let Ok(mut upstream) = TcpStream::connect((LOCALHOST, port)).await else {
                    let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                    return;
                };
                count.fetch_add(1, Ordering::SeqCst);
                if client
                    .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                    .await
                    .is_ok()
                {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                }
            });
        }
    });
    (port, tunnels)
}

#[tokio::test]
async fn the_proxy_fallback_checks_the_pin_too() {
    let app = TestApp::builder().nodes(1).start().await;
    let m = &app.manager.api;
    let node = &app.nodes[0];
    let (proxy_port, tunnels) = connect_proxy().await;
    let (st, s) = m
        .put(
            "/v1/settings",
            &json!({"proxy_url": format!("http://127.0.0.1:{proxy_port}")}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{s}");
    // Nothing listens on 127.0.0.2: the node is reached only through the proxy.
    let wrong = daemon::tls::Fingerprint::of(b"not the node's certificate");
    let (st, created) = m
        .post(
            "/v1/nodes",
            &json!({"host": "127.0.0.2", "http_port": node.port(), "http_token": NODE_TOKEN,
                "tls_fingerprint": wrong.to_string()}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{created}");
    let id = id_of(&created);
    let expected = format!(
        "certificate changed: pinned {wrong}, presented {}",
        node.fingerprint
    );
    let record = wait_node(&app, id, "refused through the proxy", |v| {
        v["last_error"] == expected.as_str()
    })
    .await;
    assert_eq!(record["push_status"], "unavailable");
    assert!(
        tunnels.load(Ordering::SeqCst) > 0,
        "the proxy carried the handshake"
    );
    assert_eq!(node.requests(), 0, "nothing reached the node");

    let (st, record) = m
        .post(
            &format!("/v1/nodes/{id}/repin"),
            &json!({"tls_fingerprint": node.fingerprint.to_string()}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{record}");
    let record = wait_node(&app, id, "pushed through the proxy", |v| {
        v["push_status"] == "dirty"
    })
    .await;
    let (_, applied) = node.api.get("/v1/configs").await;
    assert_eq!(applied["version"], record["applied_version"]);
}

/// The node's answer to `GET /v1/info` with `token`.
async fn info_with(node: &TestNode, token: &str) -> StatusCode {
    node.api
        .request_as(Method::GET, "/v1/info", token, None)
        .await
        .0
}

/// The tokens the manager holds for node `id`: (`http_token`, `pending_token`).
async fn tokens(app: &TestApp, id: i64) -> (String, Option<String>) {
    let n = app.manager.services.nodes.get(id).await.expect("node");
    (n.http_token, n.pending_token)
}

async fn set_pending(app: &TestApp, id: i64, token: &str) {
    app.manager
        .db
        .execute_unprepared(&format!(
            "UPDATE nodes SET pending_token = '{token}' WHERE id = {id}"
        ))
        .await
        .expect("set the pending token");
}

/// Offers `token` to the node as the manager's rotation does (step 2).
async fn offer(node: &TestNode, token: &str) {
    let (st, body) = node.api.post("/v1/token", &json!({ "token": token })).await;
    assert!(st.is_success(), "{st}: {body}");
}

#[tokio::test]
async fn token_rotation_and_interrupted_rotations() {
    let mut app = TestApp::builder().nodes(4).start().await;
    let mut ids = Vec::new();
    for i in 0..4 {
        let id = id_of(&app.register(i).await);
        wait_node(&app, id, "node available", |v| {
            v["push_status"] == "available" && v["pull_status"] == "available"
        })
        .await;
        ids.push(id);
    }
    let m = &app.manager.api;

    // Happy path: the node takes only the new token, the manager holds it.
    let (st, record) = m
        .request(
            Method::POST,
            &format!("/v1/nodes/{}/rotate-token", ids[0]),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{record}");
    assert_eq!(record["token_rotation_pending"], false);
    assert!(record.get("http_token").is_none() && record.get("pending_token").is_none());
    let (new, pending) = tokens(&app, ids[0]).await;
    assert_eq!(pending, None);
    assert_ne!(new, NODE_TOKEN);
    assert_eq!(new.len(), 64);
    assert_eq!(
        info_with(&app.nodes[0], NODE_TOKEN).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(info_with(&app.nodes[0], &new).await, StatusCode::OK);
    let before = wait_node(&app, ids[0], "pulled", |_| true).await["pulled_at"].clone();
    wait_node(&app, ids[0], "pulled with the new token", |v| {
        v["pulled_at"] != before && v["pull_status"] == "available"
    })
    .await;

    // Node down: the rotation fails and changes nothing; the node is reachable once back.
    app.nodes[1].stop().await;
    let (st, e) = m
        .request(
            Method::POST,
            &format!("/v1/nodes/{}/rotate-token", ids[1]),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::BAD_GATEWAY, "{e}");
    assert_eq!(tokens(&app, ids[1]).await, (NODE_TOKEN.to_owned(), None));
    app.nodes[1].restart().await;
    let before = app
        .manager
        .api
        .get(&format!("/v1/nodes/{}", ids[1]))
        .await
        .1["pulled_at"]
        .clone();
    wait_node(&app, ids[1], "pulled after the restart", |v| {
        v["pulled_at"] != before && v["pull_status"] == "available"
    })
    .await;

    // The node took the new token, the manager stopped before its first call with it: the next
    // pull settles it.
    let next = "b".repeat(64);
    offer(&app.nodes[2], &next).await;
    set_pending(&app, ids[2], &next).await;
    wait_until("the rotation settled", WITHIN, || async {
        tokens(&app, ids[2]).await == (next.clone(), None)
    })
    .await;
    assert_eq!(
        info_with(&app.nodes[2], NODE_TOKEN).await,
        StatusCode::UNAUTHORIZED
    );

    // The node already takes only the new token, the manager's row was not updated: the pull's
    // refused call is retried with the pending token, which becomes the token.
    let next = "c".repeat(64);
    offer(&app.nodes[3], &next).await;
    assert_eq!(info_with(&app.nodes[3], &next).await, StatusCode::OK);
    assert_eq!(
        info_with(&app.nodes[3], NODE_TOKEN).await,
        StatusCode::UNAUTHORIZED
    );
    set_pending(&app, ids[3], &next).await;
    wait_until("the rotation recovered", WITHIN, || async {
        tokens(&app, ids[3]).await == (next.clone(), None)
    })
    .await;
    let (_, record) = m.get(&format!("/v1/nodes/{}", ids[3])).await;
    assert_eq!(record["token_rotation_pending"], false);

    // A pending token the node never received is forgotten; the node keeps its token.
    set_pending(&app, ids[1], &"d".repeat(64)).await;
    wait_until("the stale pending token dropped", WITHIN, || async {
        tokens(&app, ids[1]).await == (NODE_TOKEN.to_owned(), None)
    })
    .await;
    assert_eq!(info_with(&app.nodes[1], NODE_TOKEN).await, StatusCode::OK);
}
