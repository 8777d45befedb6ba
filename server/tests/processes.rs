//! Integration tests with real processes on 127.0.0.1: `arch-manager` and `arch-node` binaries
//! (build them first: `cargo build --release -p server -p node`, or the debug equivalents),
//! driven over their HTTP APIs. Only what needs processes is here (signals, restarts, a node
//! replaced by another, the bytes on the wire); the REST API, registration, push and pull, and
//! `/events` are tested in process (`tests/in_process`).
//!
//! Nodes speak TLS as they do by default; the test's own client to a node is pinned to the
//! certificate the node wrote in its data dir, as the manager is.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testkit::net::LOCALHOST;
use testkit::procs::{self, node_fingerprint, wait_until, Api, ArchProc, ADMIN_TOKEN, NODE_TOKEN};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// The manager's pull period in these tests (`procs::start_manager`).
const PULL_PERIOD: Duration = Duration::from_millis(500);

fn start_node(port: u16, data: &Path) -> ArchProc {
    procs::start_node(LOCALHOST, port, data, None)
}

fn free_port() -> u16 {
    testkit::net::free_port()
}

/// Starts the manager in `data` and waits until it answers.
async fn manager(data: &Path) -> (ArchProc, Api) {
    let port = free_port();
    let proc = procs::start_manager(port, data);
    let api = Api::new(LOCALHOST, port, ADMIN_TOKEN);
    wait_until("the manager to listen", Duration::from_secs(20), || {
        api.up()
    })
    .await;
    (proc, api)
}

/// Registers a node (`POST /v1/nodes` with `body`) and returns its record.
async fn register(m: &Api, body: Value) -> Value {
    let (st, created) = m.post("/v1/nodes", &body).await;
    assert_eq!(st, StatusCode::CREATED, "{created}");
    created
}

/// The manager's record of node `id`.
async fn node_record(m: &Api, id: i64) -> Value {
    let (st, v) = m.get(&format!("/v1/nodes/{id}")).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v
}

/// Waits until the manager's pushes to and pulls from node `id` succeed.
async fn wait_available(m: &Api, id: i64, what: &str) {
    wait_until(what, Duration::from_secs(20), || async {
        let v = node_record(m, id).await;
        v["push_status"] == "available" && v["pull_status"] == "available"
    })
    .await;
}

/// Adds a user and returns its record.
async fn add_user(m: &Api, name: &str) -> Value {
    let (st, u) = m.post("/v1/users", &json!({"name": name})).await;
    assert_eq!(st, StatusCode::CREATED, "{u}");
    u
}

/// The config version the manager last pushed to node `id`, once the node reports it too and a
/// pull has followed the push.
async fn wait_pushed_and_pulled(m: &Api, n: &Api, id: i64, older_than: &Value) -> Value {
    wait_until(
        "a push of the new config and a pull after it",
        Duration::from_secs(20),
        || async {
            let v = node_record(m, id).await;
            let applied = n.get("/v1/configs").await.1["version"].clone();
            v["push_status"] == "available"
                && v["pull_status"] == "available"
                && v["applied_version"] != *older_than
                && applied == v["applied_version"]
                && v["pulled_at"].as_i64() > v["pushed_at"].as_i64()
        },
    )
    .await;
    node_record(m, id).await["applied_version"].clone()
}

#[tokio::test]
async fn node_restarts_keep_or_start_the_epoch_and_health_follows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nport = free_port();
    let node_dir = dir.path().join("node");
    let mut node = start_node(nport, &node_dir);
    let (_manager, m) = manager(&dir.path().join("manager")).await;
    let n = Api::node(LOCALHOST, nport, &node_dir, NODE_TOKEN).await;
    wait_until("the node to listen", Duration::from_secs(20), || n.up()).await;

    // Register the node: it gets pushed and pulled.
    let created = register(
        &m,
        json!({"host": "127.0.0.1", "http_port": nport, "http_token": NODE_TOKEN}),
    )
    .await;
    assert_eq!(
        created["http_token"], NODE_TOKEN,
        "the token is shown at creation"
    );
    let id = created["id"].as_i64().expect("id");
    wait_available(&m, id, "push and pull to succeed").await;
    let record = node_record(&m, id).await;
    let (st, applied) = n.get("/v1/configs").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(applied["version"], record["applied_version"]);
    let version = applied["version"].clone();

    // Graceful restart keeps the counter epoch; the config survives.
    let (_, info) = n.get("/v1/info").await;
    let epoch = info["epoch"].clone();
    node.signal("-TERM");
    node = start_node(nport, &node_dir);
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
        || async { node_record(&m, id).await["pull_status"] == "unavailable" },
    )
    .await;
    let _node = start_node(nport, &node_dir);
    wait_available(&m, id, "pull status available again").await;
    let (_, info) = n.get("/v1/info").await;
    assert_ne!(info["epoch"], epoch, "a crash starts a new epoch");
}

/// Every file under `dir` (bounded depth), with its contents.
fn files_under(dir: &Path, depth: usize, out: &mut Vec<(std::path::PathBuf, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() && depth > 0 {
            files_under(&path, depth - 1, out);
        } else if path.is_file() {
            let bytes = std::fs::read(&path).expect("read file");
            out.push((path, bytes));
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The node token the manager's database holds for node `id` (the REST API shows a token only
/// at registration). Read while the manager runs (SQLite in WAL mode).
async fn stored_token(manager_dir: &Path, id: i64) -> String {
    let db = manager::db::connect(&manager::db::default_sqlite_url(manager_dir))
        .await
        .expect("the manager's database");
    let opts = manager::Options {
        database_url: String::new(),
        admin_token: None,
        coordinator: manager::CoordinatorConfig::default(),
        node_timeout: Duration::from_secs(1),
        trusted_proxies: manager::TrustedProxies::default(),
    };
    let services = manager::Manager::with_db(db.clone(), opts, None)
        .expect("services")
        .services;
    let token = services.nodes.get(id).await.expect("node").http_token;
    db.close().await.expect("close");
    token
}

#[tokio::test]
async fn a_node_with_another_certificate_gets_nothing_until_repinned_and_its_token_rotates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nport = free_port();
    let (a_dir, b_dir) = (dir.path().join("node-a"), dir.path().join("node-b"));
    let manager_dir = dir.path().join("manager");
    let mut node_a = start_node(nport, &a_dir);
    let (_manager, m) = manager(&manager_dir).await;
    let a = Api::node(LOCALHOST, nport, &a_dir, NODE_TOKEN).await;
    wait_until("node A to listen", Duration::from_secs(20), || a.up()).await;

    // Registered without a fingerprint: the manager pins what A presents (trust on first use).
    let created = register(
        &m,
        json!({"host": "127.0.0.1", "http_port": nport, "http_token": NODE_TOKEN}),
    )
    .await;
    let id = created["id"].as_i64().expect("id");
    let node_path = format!("/v1/nodes/{id}");
    add_user(&m, "alice").await;
    wait_available(&m, id, "node A pushed and pulled").await;
    let fp_a = node_fingerprint(&a_dir).await.to_string();
    assert_eq!(node_record(&m, id).await["tls_fingerprint"], fp_a.as_str());
    assert_eq!(
        a.get("/v1/configs").await.1["version"],
        node_record(&m, id).await["applied_version"]
    );

    // A dies; B, a different arch-node with the same token, takes over its address.
    node_a.signal("-KILL");
    drop(node_a);
    let mut node_b = start_node(nport, &b_dir);
    let mut b = Api::node(LOCALHOST, nport, &b_dir, NODE_TOKEN).await;
    wait_until("node B to listen", Duration::from_secs(20), || b.up()).await;
    let fp_b = node_fingerprint(&b_dir).await.to_string();
    assert_ne!(fp_a, fp_b);
    let since = Instant::now();
    let refused = format!("certificate changed: pinned {fp_a}, presented {fp_b}");
    wait_until(
        "the manager to refuse B's certificate",
        Duration::from_secs(20),
        || async {
            let v = node_record(&m, id).await;
            v["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("certificate changed"))
        },
    )
    .await;
    assert_eq!(node_record(&m, id).await["last_error"], refused.as_str());
    // The manager keeps trying (a pull every period, pushes on the health change): watch it
    // refuse B for at least two more pull periods.
    wait_until(
        "two pull periods of refusals",
        Duration::from_secs(10),
        || async {
            let v = node_record(&m, id).await;
            assert_eq!(v["last_error"], refused.as_str(), "{v}");
            since.elapsed() >= 2 * PULL_PERIOD
        },
    )
    .await;
    let v = node_record(&m, id).await;
    assert_eq!(v["push_status"], "unavailable");
    assert_eq!(v["pull_status"], "unavailable");
    assert_eq!(v["tls_fingerprint"], fp_a.as_str(), "the pin is unchanged");
    assert_eq!(v["presented_fingerprint"], fp_b.as_str());
    // B's own view: no config arrived, and no call reached a handler (a refused handshake
    // carries no request, so not even a refused one).
    let (st, config) = b.get("/v1/configs").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(config["version"], Value::Null, "{config}");
    assert_eq!(config["applied_at"], Value::Null, "{config}");
    let (st, info) = b.get("/v1/info").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(info["refused_calls"], 0, "{info}");
    assert_eq!(info["config_version"], Value::Null, "{info}");

    // Re-pinned: B gets the config.
    let (st, repinned) = m.post(&format!("{node_path}/repin"), &json!({})).await;
    assert_eq!(st, StatusCode::OK, "{repinned}");
    assert_eq!(repinned["tls_fingerprint"], fp_b.as_str());
    assert_eq!(repinned["presented_fingerprint"], Value::Null);
    wait_until(
        "B pushed after the re-pin",
        Duration::from_secs(20),
        || async {
            let v = node_record(&m, id).await;
            v["push_status"] == "available"
                && v["pull_status"] == "available"
                && v["applied_version"].is_string()
                && b.get("/v1/configs").await.1["version"] == v["applied_version"]
        },
    )
    .await;
    assert_eq!(node_record(&m, id).await["last_error"], Value::Null);

    // Token rotation: the node keeps working on the new token; the old one is refused.
    let (st, rotated) = m
        .request(Method::POST, &format!("{node_path}/rotate-token"), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{rotated}");
    assert_eq!(rotated["token_rotation_pending"], false);
    assert!(rotated.get("http_token").is_none(), "{rotated}");
    let new_token = stored_token(&manager_dir, id).await;
    assert_ne!(new_token, NODE_TOKEN);
    assert_eq!(new_token.len(), 64, "32 random bytes in hex");
    b.token = new_token.clone();
    let version = node_record(&m, id).await["applied_version"].clone();
    add_user(&m, "bob").await;
    wait_pushed_and_pulled(&m, &b, id, &version).await;
    let (st, _) = b
        .request_as(Method::GET, "/v1/info", NODE_TOKEN, None)
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "the old token is refused");
    let (st, info) = b
        .request_as(Method::GET, "/v1/info", &new_token, None)
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(info["refused_calls"], 1, "the refused call is counted");
    let mut files = Vec::new();
    files_under(&b_dir, 3, &mut files);
    assert!(files.iter().any(|(p, _)| p.ends_with("token.json")));
    for (path, bytes) in &files {
        for secret in [new_token.as_str(), NODE_TOKEN] {
            assert!(
                !contains(bytes, secret.as_bytes()),
                "{} holds a token",
                path.display()
            );
        }
    }

    // Interrupted: the node is down, the rotation fails and changes nothing; the node back up
    // is reached with the token in force.
    node_b.signal("-TERM");
    let (st, failed) = m
        .request(Method::POST, &format!("{node_path}/rotate-token"), None)
        .await;
    assert_eq!(st, StatusCode::BAD_GATEWAY, "{failed}");
    assert_eq!(
        failed["error"], "node unreachable: connection refused or timed out",
        "{failed}"
    );
    assert_eq!(stored_token(&manager_dir, id).await, new_token);
    assert_eq!(node_record(&m, id).await["token_rotation_pending"], false);
    let _node_b = start_node(nport, &b_dir);
    let version = node_record(&m, id).await["applied_version"].clone();
    add_user(&m, "carol").await;
    wait_pushed_and_pulled(&m, &b, id, &version).await;
    let (st, _) = b
        .request_as(Method::GET, "/v1/info", &new_token, None)
        .await;
    assert_eq!(st, StatusCode::OK);
}

/// Everything a [`relay`] copied, per connection: (client → node, node → client).
type Recording = Arc<Mutex<Vec<(Vec<u8>, Vec<u8>)>>>;

/// Bytes a relay records in all (each direction of each connection is capped too).
const RECORD_CAP: usize = 8 << 20;
/// Connections a relay accepts before it stops listening.
const RELAY_CONNECTIONS: usize = 1024;

/// A TCP relay on 127.0.0.1 in front of 127.0.0.1:`target`: copies both directions of each
/// connection and records the bytes. Returns its port.
async fn relay(target: u16, recording: Recording) -> u16 {
    let listener = TcpListener::bind((LOCALHOST, 0)).await.expect("bind relay");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        for index in 0..RELAY_CONNECTIONS {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let Ok(node) = TcpStream::connect((LOCALHOST, target)).await else {
                continue;
            };
            recording
                .lock()
                .expect("recording")
                .push((Vec::new(), Vec::new()));
            let (client_r, client_w) = client.into_split();
            let (node_r, node_w) = node.into_split();
            tokio::spawn(copy(client_r, node_w, recording.clone(), index, true));
            tokio::spawn(copy(node_r, client_w, recording.clone(), index, false));
        }
    });
    port
}

/// Copies `from` to `to` until either side ends, recording into connection `index`.
async fn copy(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    recording: Recording,
    index: usize,
    upstream: bool,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        {
            let mut rec = recording.lock().expect("recording");
            let total: usize = rec.iter().map(|(u, d)| u.len() + d.len()).sum();
            if total + n <= RECORD_CAP {
                let (up, down) = &mut rec[index];
                let side = if upstream { up } else { down };
                side.extend_from_slice(&buf[..n]);
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// All bytes recorded, both directions of every connection.
fn recorded(recording: &Recording) -> Vec<(Vec<u8>, Vec<u8>)> {
    recording.lock().expect("recording").clone()
}

/// The secrets a push and a pull carry, in the spellings a capture could show them.
fn secret_spellings(password: &str) -> Vec<(String, Vec<u8>)> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let raw = b64.decode(password).expect("the password is base64");
    vec![
        ("the user's password".into(), password.as_bytes().to_vec()),
        ("the password's bytes in hex".into(), hex(&raw).into_bytes()),
        ("the node token".into(), NODE_TOKEN.as_bytes().to_vec()),
        (
            "the node token in base64".into(),
            b64.encode(NODE_TOKEN).into_bytes(),
        ),
        (
            "the node token in hex".into(),
            hex(NODE_TOKEN.as_bytes()).into_bytes(),
        ),
        ("a config push".into(), b"POST /v1/configs".to_vec()),
        ("a config's inbounds".into(), b"\"inbounds\"".to_vec()),
    ]
}

#[tokio::test]
async fn a_capture_of_the_node_channel_shows_no_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (tls_port, http_port, remote_port) = (free_port(), free_port(), free_port());
    let (tls_dir, http_dir) = (dir.path().join("node-tls"), dir.path().join("node-http"));
    // Both nodes run the users' inbound on the same port: each on its own loopback address.
    let _tls_node = procs::start_node(LOCALHOST, tls_port, &tls_dir, Some(LOCALHOST));
    let control_ip = std::net::IpAddr::from([127, 0, 0, 2]);
    let _http_node = procs::start_insecure_node(LOCALHOST, http_port, &http_dir, Some(control_ip));
    let (_manager, m) = manager(&dir.path().join("manager")).await;
    let tls = Api::node(LOCALHOST, tls_port, &tls_dir, NODE_TOKEN).await;
    let plain = Api::new(LOCALHOST, http_port, NODE_TOKEN);
    wait_until("both nodes to listen", Duration::from_secs(20), || async {
        tls.up().await && plain.up().await
    })
    .await;
    let (st, s) = m
        .put(
            "/v1/settings",
            &json!({"host": "127.0.0.1", "ss_remote_port": remote_port}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{s}");

    // The manager reaches each node through a recording relay.
    let (tls_rec, http_rec) = (Recording::default(), Recording::default());
    let tls_relay = relay(tls_port, tls_rec.clone()).await;
    let http_relay = relay(http_port, http_rec.clone()).await;
    let tls_id = register(
        &m,
        json!({"host": "127.0.0.1", "http_port": tls_relay, "http_token": NODE_TOKEN}),
    )
    .await["id"]
        .as_i64()
        .expect("id");
    let http_id = register(
        &m,
        json!({"host": "127.0.0.1", "http_port": http_relay, "http_token": NODE_TOKEN,
               "insecure_http": true}),
    )
    .await["id"]
        .as_i64()
        .expect("id");
    wait_available(&m, tls_id, "the TLS node pushed and pulled").await;
    wait_available(&m, http_id, "the plain-HTTP node pushed and pulled").await;
    let tls_version = node_record(&m, tls_id).await["applied_version"].clone();
    let http_version = node_record(&m, http_id).await["applied_version"].clone();

    // A user added: both nodes get a config with the user's key, then are pulled.
    let user = add_user(&m, "alice").await;
    let password = user["password"].as_str().expect("password").to_owned();
    wait_pushed_and_pulled(&m, &tls, tls_id, &tls_version).await;
    wait_pushed_and_pulled(&m, &plain, http_id, &http_version).await;
    let (st, config) = plain.get("/v1/configs").await;
    assert_eq!(st, StatusCode::OK, "{config}");

    // The control: in plain HTTP the capture shows every secret.
    let http_bytes: Vec<u8> = recorded(&http_rec)
        .into_iter()
        .flat_map(|(up, down)| up.into_iter().chain(down))
        .collect();
    for (what, bytes) in secret_spellings(&password) {
        if what.contains("hex") || what.contains("base64") {
            continue; // spellings the plain channel has no reason to use
        }
        assert!(contains(&http_bytes, &bytes), "control: {what} not seen");
    }

    // Over TLS: every connection opens with a TLS handshake record, and no secret shows.
    let connections = recorded(&tls_rec);
    assert!(!connections.is_empty());
    let mut total = 0;
    for (up, down) in &connections {
        assert!(
            up.starts_with(&[0x16, 0x03]),
            "not a TLS handshake: {up:02x?}"
        );
        total += up.len() + down.len();
    }
    assert!(total > 1000, "{total} bytes recorded");
    let tls_bytes: Vec<u8> = connections
        .into_iter()
        .flat_map(|(up, down)| up.into_iter().chain(down))
        .collect();
    for (what, bytes) in secret_spellings(&password) {
        assert!(!contains(&tls_bytes, &bytes), "the capture shows {what}");
    }
}

/// Bytes each short fetch of [`sigterm_stops_the_data_plane_before_the_last_flush_and_loses_no_byte`]
/// asks for.
const SHORT_BODY: usize = 50_000;
/// Short fetches made while the streams run.
const SHORT_FETCHES: usize = 20;
/// Body of each long fetch (`/slow/`, about 8 MB/s): far more than arrives before the signal.
const STREAM_BODY: u64 = 400_000_000;
/// Long fetches in flight when the manager is told to stop.
const STREAMS: usize = 2;
/// How soon the manager must exit after SIGTERM with an event stream open: well within the
/// 10 s HTTP grace period (`daemon::http::GRACE`), which an open stream would use up whole.
const EXIT_BOUND: Duration = Duration::from_secs(5);

/// `GET {path}` through the SOCKS proxy on 127.0.0.1:`socks` to `http`; adds every response byte
/// to `received` as it arrives and reads until the server or the proxy closes. `None` when the
/// proxy refused; otherwise whether the whole response arrived is for the caller to check.
async fn fetch_counted(
    socks: u16,
    http: &testkit::net::Http,
    path: &str,
    received: &std::sync::atomic::AtomicU64,
) -> Option<u64> {
    use std::sync::atomic::Ordering;
    let mut s = testkit::net::socks5_connect(socks, &http.ip.to_string(), http.port).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", http.ip);
    s.write_all(request.as_bytes()).await.ok()?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0u64;
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return Some(got),
            Ok(n) => {
                got += n as u64;
                received.fetch_add(n as u64, Ordering::SeqCst);
            }
        }
    }
}

/// The size of the whole response to `GET /{body}` from `testkit::net::Http`.
fn response_len(body: u64) -> u64 {
    format!("HTTP/1.1 200 OK\r\nContent-Length: {body}\r\nConnection: close\r\n\r\n").len() as u64
        + body
}

/// SIGTERM while traffic flows through the manager's own data plane (direct mode): the engine
/// stops before the last flush of its counters, so after a restart the user's usage is exactly
/// what crossed: every request byte the web server read plus every response byte the client got,
/// for the fetches that completed and for those the shutdown cut. The streams cut are the proof:
/// they would keep flowing (uncounted) if the engine outlived the flush. An open `/events` stream
/// ends with the shutdown instead of holding the HTTP drain for its whole grace period.
///
/// Counted at the client, not from the web server's log, for the cut streams: the server logs
/// each answer's full size before sending it. No new fetch starts once the signal is sent, so
/// no request is half way between client and server when the engine stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_stops_the_data_plane_before_the_last_flush_and_loses_no_byte() {
    use std::sync::atomic::{AtomicU64, Ordering};
    testkit::init_logs();
    if testkit::clients::client_bin("ss-local").is_none() {
        return;
    }
    let http = Arc::new(testkit::net::Http::start().await);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("manager");
    let (proc, m) = manager(&data).await;
    let direct = free_port();
    let (st, s) = m
        .put(
            "/v1/settings",
            // The web server is on loopback, which user traffic may not reach by default.
            &json!({"host": "127.0.0.1", "ss_direct_port": direct,
                    "allowed_private_networks": ["127.0.0.0/8"]}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{s}");
    let user = add_user(&m, "alice").await;
    let uid = user["id"].as_i64().expect("id");
    let (st, links) = m.get(&format!("/v1/users/{uid}/links")).await;
    assert_eq!(st, StatusCode::OK, "{links}");
    let link = links
        .as_array()
        .expect("links")
        .iter()
        .find(|l| l["mode"] == "direct")
        .and_then(|l| l["url"].as_str())
        .unwrap_or_else(|| panic!("no direct link in {links}"))
        .to_owned();
    let Some((_ss_local, socks)) = testkit::clients::ss_local_for(&link).await else {
        return;
    };
    let received = Arc::new(AtomicU64::new(0));

    // The local engine runs the user once a whole fetch comes back. A try before that gets
    // nothing: the engine answers no unknown user and refuses connections before it listens.
    let short = format!("/{SHORT_BODY}");
    wait_until(
        "a first fetch through the direct mode",
        Duration::from_secs(30),
        || async {
            let once = fetch_counted(socks, &http, &short, &received);
            matches!(
                tokio::time::timeout(Duration::from_secs(3), once).await,
                Ok(Some(n)) if n == response_len(SHORT_BODY as u64)
            )
        },
    )
    .await;

    // Long fetches, in flight from here to the signal.
    let streams: Vec<_> = (0..STREAMS)
        .map(|_| {
            let (http, received) = (http.clone(), received.clone());
            tokio::spawn(async move {
                let path = format!("/slow/{STREAM_BODY}");
                fetch_counted(socks, &http, &path, &received).await
            })
        })
        .collect();
    // Short fetches one after another while they flow; each one completes.
    for i in 0..SHORT_FETCHES {
        let got = tokio::time::timeout(
            Duration::from_secs(10),
            fetch_counted(socks, &http, &short, &received),
        )
        .await
        .unwrap_or_else(|_| panic!("short fetch {i} timed out"));
        assert_eq!(
            got,
            Some(response_len(SHORT_BODY as u64)),
            "short fetch {i}"
        );
    }
    // Every request has reached the web server, and the streams are well under way.
    let first = 1 + SHORT_FETCHES;
    wait_until(
        "the streams to be answered and flowing",
        Duration::from_secs(20),
        || async {
            let short_bytes = first as u64 * response_len(SHORT_BODY as u64);
            http.requests() >= first + STREAMS
                && received.load(Ordering::SeqCst) > short_bytes + 2_000_000
        },
    )
    .await;

    // An admin's live view is open.
    let sse = reqwest::Client::new()
        .get(format!("{}/events", m.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("GET /events");
    assert_eq!(sse.status(), StatusCode::OK);
    let sse_reader = tokio::spawn(async move {
        let mut sse = sse;
        // Keep-alive comments or events until the manager ends the stream.
        while let Ok(Some(_)) = sse.chunk().await {}
    });

    let (proc, took) = tokio::task::spawn_blocking(move || {
        let mut proc = proc;
        let sent = Instant::now();
        proc.signal("-TERM");
        (proc, sent.elapsed())
    })
    .await
    .expect("signal");
    assert!(
        took < EXIT_BOUND,
        "the manager took {took:?} to exit after SIGTERM with an event stream open"
    );
    tokio::time::timeout(Duration::from_secs(5), sse_reader)
        .await
        .expect("the event stream ended with the manager")
        .expect("sse reader");
    for (i, s) in streams.into_iter().enumerate() {
        let got = tokio::time::timeout(Duration::from_secs(20), s)
            .await
            .unwrap_or_else(|_| panic!("stream {i} still open after the manager exited"))
            .expect("stream task")
            .unwrap_or_else(|| panic!("stream {i} refused"));
        assert!(
            got < response_len(STREAM_BODY),
            "stream {i} was cut by the shutdown, yet got all {got} bytes"
        );
    }
    drop(proc);

    let exchanged = http.totals().request + received.load(Ordering::SeqCst);
    eprintln!(
        "exit {took:?} after SIGTERM; {} requests, {exchanged} bytes exchanged",
        http.requests()
    );
    let (_proc, m) = manager(&data).await;
    let (st, u) = m.get(&format!("/v1/users/{uid}")).await;
    assert_eq!(st, StatusCode::OK, "{u}");
    assert_eq!(
        u["usage_bytes"].as_u64(),
        Some(exchanged),
        "usage after the restart against the bytes exchanged ({} requests)",
        http.requests()
    );
}
