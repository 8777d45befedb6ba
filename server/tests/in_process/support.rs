//! `TestApp`: a manager and `n` nodes in the test process, each on its own port 0 on 127.0.0.1,
//! with fast coordinator loops. The handles carry the base URLs, the tokens and HTTP clients;
//! dropping a handle stops what it started.
//!
//! The manager runs without a local data plane (no user ports are opened); the nodes run their
//! engines bound to 127.0.0.1 and serve their API over TLS with a fresh self-signed certificate
//! each; every request that reaches a node's router is counted.

use daemon::tls::{Fingerprint, NodeIdentity};
use manager::{CoordinatorConfig, Manager, Options};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use testkit::net::LOCALHOST;
use testkit::procs::Api;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

pub use testkit::procs::{wait_until, ADMIN_TOKEN, NODE_TOKEN};

/// How long a stopped server may take to finish its shutdown.
const STOP_WITHIN: Duration = Duration::from_secs(10);

/// Loops fast enough for tests: a pull every 200 ms, a node is `unavailable` after 1.5 s
/// without a successful pull.
pub fn fast_loops() -> CoordinatorConfig {
    CoordinatorConfig {
        pull_interval: Duration::from_millis(200),
        pull_timeout: Duration::from_millis(1500),
        sync_interval: Duration::from_millis(500),
        debounce: Duration::from_millis(50),
        concurrency: 8,
    }
}

/// An HTTP client for the test servers: no proxy, no redirects followed (a 303 is asserted as
/// such), every request bounded.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("HTTP client")
}

/// What to start.
pub struct TestAppBuilder {
    nodes: usize,
    coordinator: CoordinatorConfig,
}

impl TestAppBuilder {
    /// Starts `n` nodes next to the manager (not registered with it).
    pub fn nodes(mut self, n: usize) -> Self {
        self.nodes = n;
        self
    }

    /// Starts the manager and the nodes. Every listener is bound before this returns, so
    /// requests can be sent at once (they queue until the serving task accepts them).
    pub async fn start(self) -> TestApp {
        testkit::init_logs();
        let manager = TestManager::start(self.coordinator).await;
        let mut nodes = Vec::with_capacity(self.nodes);
        for _ in 0..self.nodes {
            nodes.push(TestNode::start().await);
        }
        TestApp { manager, nodes }
    }
}

/// A running manager and its nodes.
pub struct TestApp {
    pub manager: TestManager,
    pub nodes: Vec<TestNode>,
}

impl TestApp {
    /// One manager, no nodes, [`fast_loops`].
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            nodes: 0,
            coordinator: fast_loops(),
        }
    }

    /// Registers node `i` with the manager over REST (over TLS, the certificate pinned on first
    /// use); returns the manager's record.
    pub async fn register(&self, i: usize) -> Value {
        self.register_with(i, json!({})).await
    }

    /// Registers node `i` with the fields of `extra` added to (or replacing) the defaults:
    /// host `127.0.0.1`, the node's port, [`NODE_TOKEN`].
    pub async fn register_with(&self, i: usize, extra: Value) -> Value {
        let node = &self.nodes[i];
        let mut body =
            json!({"host": "127.0.0.1", "http_port": node.port(), "http_token": NODE_TOKEN});
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        let (st, created) = self.manager.api.post("/v1/nodes", &body).await;
        assert_eq!(st, StatusCode::CREATED, "{created}");
        created
    }
}

/// The manager: its REST client (admin token), its services and database for set-up and
/// fault injection, and the task serving it.
pub struct TestManager {
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    pub admin_token: &'static str,
    /// JSON client of the REST API with the admin token.
    pub api: Api,
    pub services: manager::Services,
    pub db: manager::DatabaseConnection,
    _stop: DropGuard,
    _dir: tempfile::TempDir,
}

impl TestManager {
    async fn start(coordinator: CoordinatorConfig) -> TestManager {
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = Options {
            database_url: manager::db::default_sqlite_url(dir.path()),
            admin_token: Some(ADMIN_TOKEN.to_owned()),
            coordinator,
            node_timeout: Duration::from_secs(1),
            trusted_proxies: manager::TrustedProxies::default(),
        };
        let m = Manager::open(opts, None).await.expect("open the manager");
        let (services, db) = (m.services.clone(), m.db.clone());
        let listener = TcpListener::bind((LOCALHOST, 0)).await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let site = server::Site {
            root: dir.path().join("site"),
            limits: daemon::http::Limits::with_max_connections(64),
        };
        let cancel = CancellationToken::new();
        tokio::spawn(server::serve_on(listener, m, None, site, cancel.clone()));
        let base_url = format!("http://{addr}");
        TestManager {
            api: Api {
                http: client(),
                base: base_url.clone(),
                token: ADMIN_TOKEN.to_owned(),
            },
            base_url,
            admin_token: ADMIN_TOKEN,
            services,
            db,
            _stop: cancel.drop_guard(),
            _dir: dir,
        }
    }

    /// `base_url` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }
}

/// A node: its API client (node token, pinned to its certificate), its certificate's
/// fingerprint, the number of requests that reached its router, and the task serving it.
pub struct TestNode {
    pub addr: SocketAddr,
    /// JSON client of the node API with the node token, pinned to [`TestNode::fingerprint`].
    pub api: Api,
    pub state: Arc<node::NodeState>,
    /// The SHA-256 fingerprint of the node's certificate.
    pub fingerprint: Fingerprint,
    /// Requests that reached the node's router (a refused TLS handshake never does).
    requests: Arc<AtomicU64>,
    identity: NodeIdentity,
    cancel: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    dir: tempfile::TempDir,
}

impl TestNode {
    /// A new node (fresh data dir and certificate) on a free port.
    pub async fn start() -> TestNode {
        let listener = TcpListener::bind((LOCALHOST, 0)).await.expect("bind");
        Self::start_on(listener, tempfile::tempdir().expect("tempdir")).await
    }

    /// A new node (fresh data dir and certificate) on `port`: another node taking over an
    /// address.
    pub async fn start_at(port: u16) -> TestNode {
        let listener = TcpListener::bind((LOCALHOST, port)).await.expect("bind");
        Self::start_on(listener, tempfile::tempdir().expect("tempdir")).await
    }

    async fn start_on(listener: TcpListener, dir: tempfile::TempDir) -> TestNode {
        let (identity, _) =
            NodeIdentity::load_or_create(dir.path(), &["127.0.0.1".to_owned()]).expect("identity");
        let fingerprint = identity.fingerprint();
        let (tls, _) = daemon::tls::pinned_client_config(Some(fingerprint)).expect("client config");
        let addr = listener.local_addr().expect("address");
        let mut node = TestNode {
            addr,
            api: Api {
                http: reqwest::Client::builder()
                    .no_proxy()
                    .redirect(reqwest::redirect::Policy::none())
                    .timeout(Duration::from_secs(10))
                    .use_preconfigured_tls(tls)
                    .build()
                    .expect("HTTP client"),
                base: format!("https://{addr}"),
                token: NODE_TOKEN.to_owned(),
            },
            state: Arc::new(
                node::NodeState::open(dir.path(), Some(LOCALHOST))
                    .await
                    .expect("open the node state"),
            ),
            fingerprint,
            requests: Arc::default(),
            identity,
            cancel: CancellationToken::new(),
            task: None,
            dir,
        };
        node.serve(listener);
        node
    }

    /// Serves the node API on `listener` over TLS, as `arch-node serve` does: on cancel the API
    /// closes, the replay filter is kept, the data plane stops and the counters are flushed.
    fn serve(&mut self, listener: TcpListener) {
        let requests = self.requests.clone();
        let app = node::router(self.state.clone(), NODE_TOKEN.to_owned()).layer(
            axum::middleware::from_fn(
                move |req: axum::extract::Request, next: axum::middleware::Next| {
                    requests.fetch_add(1, Ordering::SeqCst);
                    next.run(req)
                },
            ),
        );
        let tls = daemon::tls::server_config(&self.identity).expect("server config");
        let (state, cancel) = (self.state.clone(), self.cancel.clone());
        self.task = Some(tokio::spawn(async move {
            let keeper = tokio::spawn(state.replay_file().keep(cancel.clone()));
            let limits = daemon::http::Limits::with_max_connections(16);
            let served =
                daemon::http::serve(listener, app, limits, Some(tls), cancel.clone()).await;
            cancel.cancel();
            keeper.await?;
            state.shutdown().await?;
            Ok(served?)
        }));
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// How many requests reached the node's router so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// Stops the node as SIGTERM would (the API closes, the data plane stops, the counters are
    /// flushed) and waits until that is done.
    pub async fn stop(&mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(STOP_WITHIN, task)
                .await
                .expect("the node stops in time")
                .expect("node task")
                .expect("node shutdown");
        }
    }

    /// Starts a stopped node again: same data dir, certificate, port and token.
    pub async fn restart(&mut self) {
        let listener = TcpListener::bind(self.addr).await.expect("bind again");
        self.state = Arc::new(
            node::NodeState::open(self.dir.path(), Some(LOCALHOST))
                .await
                .expect("open the node state"),
        );
        self.cancel = CancellationToken::new();
        self.serve(listener);
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// A `text/event-stream` body read event by event.
pub struct EventStream {
    response: reqwest::Response,
    buffer: Vec<u8>,
}

impl EventStream {
    /// `GET /events` with `auth` (a Bearer token or a cookie); asserts a 200 stream.
    pub async fn open(m: &TestManager, auth: (&str, &str)) -> EventStream {
        // No overall timeout: the stream lives as long as the test; each read is bounded.
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .expect("HTTP client");
        let response = http
            .get(m.url("/events"))
            .header(auth.0, auth.1)
            .send()
            .await
            .expect("GET /events");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[reqwest::header::CONTENT_TYPE],
            "text/event-stream"
        );
        EventStream {
            response,
            buffer: Vec::new(),
        }
    }

    /// The next event (`event:` name and `data:` as JSON), skipping keep-alive comments.
    async fn next(&mut self) -> (String, Value) {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let bytes: Vec<u8> = self.buffer.drain(..end + 2).collect();
                let message = String::from_utf8(bytes).expect("events are UTF-8");
                let (mut name, mut data) = (String::new(), String::new());
                for line in message.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                if name.is_empty() && data.is_empty() {
                    continue; // a comment (keep-alive)
                }
                let data = serde_json::from_str(&data).expect("event data is JSON");
                return (name, data);
            }
            let chunk = self
                .response
                .chunk()
                .await
                .expect("reading /events")
                .expect("the stream ended");
            self.buffer.extend_from_slice(&chunk);
        }
    }

    /// Reads events until one named `name` satisfies `want`, and returns its data; panics after
    /// `within`.
    pub async fn wait_for(
        &mut self,
        name: &str,
        within: Duration,
        want: impl Fn(&Value) -> bool,
    ) -> Value {
        let found = tokio::time::timeout(within, async {
            loop {
                let (n, data) = self.next().await;
                if n == name && want(&data) {
                    return data;
                }
            }
        })
        .await;
        found.unwrap_or_else(|_| panic!("no matching `{name}` event within {within:?}"))
    }
}
