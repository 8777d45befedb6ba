//! The node API in this process, as `arch-node serve` runs it: HTTPS on 127.0.0.1 with the
//! certificate and the token store of a data dir. Checks the pinned channel, token rotation
//! across restarts, and the record of refused calls (counter, header, rate-limited log).

use daemon::tls::{Fingerprint, NodeIdentity};
use node::auth::Opened;
use node::{Auth, NodeState};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "first-node-token-0123456789";
const NEXT: &str = "second-node-token-0123456789";
const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A node serving HTTPS from `dir` until stopped.
struct Node {
    addr: SocketAddr,
    fingerprint: Fingerprint,
    cancel: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Node {
    /// Starts a node from `dir` as `arch-node serve --token TOKEN` would: the certificate and
    /// the token state are loaded from (or created in) the data dir.
    async fn start(dir: &Path) -> Node {
        let (identity, _) =
            NodeIdentity::load_or_create(dir, &["127.0.0.1".to_owned()]).expect("identity");
        let tls = daemon::tls::server_config(&identity).expect("server config");
        let (auth, _) = Auth::open(dir, Some(TOKEN)).expect("token state");
        let state = Arc::new(NodeState::open(dir, Some(LOCALHOST)).await.expect("state"));
        let listener = TcpListener::bind((LOCALHOST, 0)).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let cancel = CancellationToken::new();
        let task = tokio::spawn(node::serve_on(
            listener,
            state,
            Arc::new(auth),
            daemon::http::Limits::with_max_connections(16),
            Some(tls),
            cancel.clone(),
        ));
        Node {
            addr,
            fingerprint: identity.fingerprint(),
            cancel,
            task,
        }
    }

    async fn stop(self) {
        self.cancel.cancel();
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("stops in time")
            .expect("task")
            .expect("served");
    }

    fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    /// A client pinned to this node's certificate.
    fn client(&self) -> reqwest::Client {
        client(self.fingerprint, None)
    }

    async fn get(&self, path: &str, token: Option<&str>) -> StatusCode {
        let mut req = self.client().get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request").status()
    }

    /// `POST /v1/token` with `body`: the status and the body as JSON (`null` when empty).
    async fn post_token(&self, token: &str, body: &str) -> (StatusCode, Value) {
        let resp = self
            .client()
            .post(self.url("/v1/token"))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("request");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        if text.is_empty() {
            return (status, Value::Null);
        }
        let json = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: {text:?}"));
        (status, json)
    }
}

fn client(pin: Fingerprint, local: Option<IpAddr>) -> reqwest::Client {
    let (tls, _) = daemon::tls::pinned_client_config(Some(pin)).expect("client config");
    reqwest::Client::builder()
        .no_proxy()
        .use_preconfigured_tls(tls)
        .local_address(local)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

fn assert_no_token_on_disk(dir: &Path, tokens: &[&str]) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read");
        for token in tokens {
            assert!(
                !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
                "{} holds a token",
                path.display()
            );
        }
    }
}

#[tokio::test]
async fn the_api_is_https_and_only_the_pinned_certificate_is_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::start(dir.path()).await;
    assert_eq!(node.get("/v1/info", Some(TOKEN)).await, StatusCode::OK);

    let other = tempfile::tempdir().expect("tempdir");
    let (stranger, _) = NodeIdentity::load_or_create(other.path(), &[]).expect("identity");
    let refused = client(stranger.fingerprint(), None)
        .get(node.url("/v1/info"))
        .bearer_auth(TOKEN)
        .send()
        .await;
    assert!(refused.is_err(), "a client pinned to another certificate");

    // Plain HTTP to the TLS port gets no HTTP answer.
    let addr = node.addr;
    let answer = tokio::task::spawn_blocking(move || {
        let mut tcp = std::net::TcpStream::connect(addr).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        tcp.write_all(b"GET /v1/info HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .expect("write");
        let mut answer = Vec::new();
        let _ = tcp.read_to_end(&mut answer);
        answer
    })
    .await
    .expect("plain client");
    assert!(!answer.starts_with(b"HTTP/"), "{answer:?}");
    assert!(node.get("/", None).await.is_success());
    node.stop().await;
}

#[tokio::test]
async fn a_rotation_switches_tokens_without_downtime_and_survives_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state_file = dir.path().join(node::auth::TOKEN_STATE_FILE);
    let node = Node::start(dir.path()).await;

    // Bad bodies change nothing.
    let before = std::fs::read(&state_file).expect("token.json");
    let (st, body) = node.post_token(TOKEN, "not json").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"error": r#"expected a JSON body {"token": "<new token>"}"#})
    );
    let (st, body) = node.post_token(TOKEN, r#"{"token": "short"}"#).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"error": "token must be 16–256 printable characters without spaces", "path": "token"})
    );
    assert_eq!(std::fs::read(&state_file).expect("token.json"), before);
    assert_eq!(
        node.get("/v1/info", Some(NEXT)).await,
        StatusCode::UNAUTHORIZED
    );
    // Only a caller with the token may rotate it.
    let refused = node
        .post_token(NEXT, &json!({"token": NEXT}).to_string())
        .await;
    assert_eq!(refused, (StatusCode::UNAUTHORIZED, Value::Null));

    let (st, body) = node
        .post_token(TOKEN, &json!({"token": NEXT}).to_string())
        .await;
    assert_eq!((st, body), (StatusCode::OK, json!({})));
    assert_eq!(node.get("/v1/info", Some(TOKEN)).await, StatusCode::OK);
    node.stop().await;

    // Restarted with the operator's first token as the seed: the rotation is kept.
    let node = Node::start(dir.path()).await;
    assert_eq!(node.get("/v1/info", Some(TOKEN)).await, StatusCode::OK);
    assert_eq!(node.get("/v1/stats", Some(NEXT)).await, StatusCode::OK);
    assert_eq!(
        node.get("/v1/info", Some(TOKEN)).await,
        StatusCode::UNAUTHORIZED
    );
    node.stop().await;

    let node = Node::start(dir.path()).await;
    assert_eq!(
        node.get("/v1/info", Some(TOKEN)).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(node.get("/v1/info", Some(NEXT)).await, StatusCode::OK);
    node.stop().await;
    assert_no_token_on_disk(dir.path(), &[TOKEN, NEXT]);
}

/// A log sink the test can read.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log buffer")).into_owned()
    }
}

#[tokio::test]
async fn refused_calls_are_counted_and_logged_once_per_source() {
    let log = Captured::default();
    let sink = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || sink.clone())
        .finish();
    // Process-wide (a thread's default misses events when other tests log at the same time):
    // the other tests' events land here too, so this test's sources are addresses no other test
    // uses.
    tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");

    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::start(dir.path()).await;
    const WRONG: &str = "wrong-token-never-logged-42";
    let from = |last: u8| {
        client(
            node.fingerprint,
            Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))),
        )
    };
    for (source, calls) in [(31, 5), (32, 3)] {
        let c = from(source);
        for _ in 0..calls {
            let st = c
                .get(node.url("/v1/configs"))
                .bearer_auth(WRONG)
                .send()
                .await
                .expect("request")
                .status();
            assert_eq!(st, StatusCode::UNAUTHORIZED);
        }
    }
    let c = from(31);
    for auth in [None, Some(format!("Basic {WRONG}"))] {
        let mut req = c.get(node.url("/v1/stats"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        assert_eq!(
            req.send().await.expect("request").status(),
            StatusCode::UNAUTHORIZED
        );
    }

    let info: Value = node
        .client()
        .get(node.url("/v1/info"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("info")
        .json()
        .await
        .expect("json");
    assert_eq!(info["refused_calls"], 10);
    let stats = node
        .client()
        .get(node.url("/v1/stats"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("stats");
    assert_eq!(stats.status(), StatusCode::OK);
    assert_eq!(
        stats
            .headers()
            .get(xray::api::REFUSED_CALLS_HEADER)
            .and_then(|v| v.to_str().ok()),
        Some("10")
    );
    node.stop().await;

    let text = log.text();
    let refusals: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("refused a node API call") && l.contains("source=127.0.0.3"))
        .collect();
    assert_eq!(refusals.len(), 2, "{text}");
    assert!(
        refusals[0].contains(r#"source=127.0.0.31 reason="wrong token""#),
        "{}",
        refusals[0]
    );
    assert!(
        refusals[1].contains(r#"source=127.0.0.32 reason="wrong token""#),
        "{}",
        refusals[1]
    );
    for token in [WRONG, TOKEN, NEXT] {
        assert!(!text.contains(token), "no token is ever logged");
    }
}

#[test]
fn opening_twice_with_the_same_seed_keeps_the_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, first) = Auth::open(dir.path(), Some(TOKEN)).expect("open");
    assert_eq!(first, Opened::Seeded);
    let (_, second) = Auth::open(dir.path(), Some(TOKEN)).expect("reopen");
    assert_eq!(second, Opened::Kept);
}

impl Node {
    /// `POST /v1/configs{query}` with `body`: the status and the answer as JSON.
    async fn post_config(&self, query: &str, body: &[u8]) -> (StatusCode, Value) {
        let resp = self
            .client()
            .post(self.url(&format!("/v1/configs{query}")))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("request");
        let status = resp.status();
        (status, resp.json().await.expect("JSON answer"))
    }

    async fn get_json(&self, path: &str) -> Value {
        let resp = self
            .client()
            .get(self.url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json().await.expect("JSON answer")
    }
}

#[tokio::test]
async fn restart_re_applies_the_config_in_force_and_keeps_the_epoch_and_counters() {
    use testkit::configs::{direct_config, inbound};
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::start(dir.path()).await;
    let port = testkit::net::free_port();
    let users = [("7", "alice-pass-1")];
    let config = direct_config(vec![inbound(
        "remote",
        port,
        xray::Method::Aes256Gcm,
        "",
        &users,
    )]);
    let body = config.to_canonical_json();
    let version = config.version();

    let (st, first) = node.post_config("", &body).await;
    assert_eq!(st, StatusCode::OK, "{first}");
    assert_eq!(
        (first["version"].as_str(), &first["changed"]),
        (Some(version.as_str()), &json!(true))
    );
    let (st, again) = node.post_config("", &body).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(again["changed"], json!(false), "the same config is a no-op");
    assert_eq!(again["applied_at"], first["applied_at"]);
    let info = node.get_json("/v1/info").await;
    let stats = node.get_json("/v1/stats").await;

    // `restart=false` is a plain push: still a no-op.
    let (st, plain) = node.post_config("?restart=false", &body).await;
    assert_eq!((st, &plain["changed"]), (StatusCode::OK, &json!(false)));

    // The restart re-applies the same version and says so.
    let (st, restarted) = node.post_config("?restart=true", &body).await;
    assert_eq!(st, StatusCode::OK, "{restarted}");
    assert_eq!(restarted["version"], json!(version));
    assert_eq!(restarted["changed"], json!(true));
    assert!(
        restarted["applied_at"].as_i64() >= first["applied_at"].as_i64(),
        "{restarted} after {first}"
    );
    assert_eq!(
        node.get_json("/v1/configs").await["version"],
        json!(version)
    );
    // Same epoch, same counters (nothing moved), the port still open for the user.
    let after = node.get_json("/v1/info").await;
    assert_eq!(after["epoch"], info["epoch"]);
    assert_eq!(after["config_version"], json!(version));
    assert_eq!(node.get_json("/v1/stats").await, stats);
    assert!(
        std::net::TcpListener::bind((LOCALHOST, port)).is_err(),
        "the user port is served"
    );
    let saved = std::fs::read(dir.path().join("config.json")).expect("config.json");
    assert_eq!(saved, body, "the config in force is on disk");

    // A bad value is refused and changes nothing; a bad config with restart too.
    let (st, refused) = node.post_config("?restart=yes", &body).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(refused["path"], json!("restart"));
    let (st, _) = node
        .post_config("?restart=true", b"{\"inbounds\": 3}")
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(
        node.get_json("/v1/configs").await["version"],
        json!(version)
    );

    // A restart with a changed config applies it.
    let moved = direct_config(vec![inbound(
        "remote",
        port,
        xray::Method::Aes256Gcm,
        "",
        &[("7", "alice-pass-1"), ("8", "bob-pass-2")],
    )]);
    let (st, changed) = node
        .post_config("?restart=true", &moved.to_canonical_json())
        .await;
    assert_eq!(st, StatusCode::OK, "{changed}");
    assert_eq!(changed["version"], json!(moved.version()));
    node.stop().await;
}
