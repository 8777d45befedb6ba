//! The accounting under faults, with real processes on 127.0.0.1: `arch-manager`, one `arch-node`
//! reached through `testkit::fault::FaultProxy` (registered in the manager at the proxy's port),
//! stock `ss-local` clients and the counting HTTP server, whose byte counts are the truth.
//!
//! The manager keeps its data in SQLite in its data dir, or, when `ARCH_TEST_DATABASE_URL` names
//! a PostgreSQL server (an admin URL, as for the service tests), in a fresh database created
//! there. Build the binaries first: `cargo build --release -p server -p node`.
//!
//! - [`faults_lose_and_double_count_nothing`]: two users, each in two modes (direct through the
//!   manager's own engine, remote through the node), through dropped, cut and delayed replies, a
//!   graceful node restart and a manager kill -9 in the middle of a pull; at the end every user's
//!   and the node's usage equal exactly what was exchanged.
//! - [`node_kill_9_loses_at_most_the_traffic_since_the_last_pull`]: a node killed while traffic
//!   flows; the bytes lost are measured against the bytes exchanged since the manager's last
//!   successful pull.

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use testkit::clients::{client_bin, curl, ss_local_for, Proc};
use testkit::fault::{Fault, FaultProxy};
use testkit::net::{free_port, Http, LOCALHOST};
use testkit::procs::{self, wait_until, Api, ArchProc, ADMIN_TOKEN, NODE_TOKEN};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Body size of each short fetch.
const BODY: u64 = 100_000;
/// Where a cut ends a pull's reply. On a new connection the node's reply is about 1.1 KB here:
/// a 184-byte flight of TLS session tickets, then the HTTP answer (about 925 bytes with two
/// users, headers first, the JSON counters last). Cutting after 900 bytes ends it about 200
/// bytes before the answer's end, inside the body. A reply that no longer reaches past this
/// would pass whole, and the suite would fail: the node's usage would move under the fault.
const CUT_AFTER: usize = 900;
/// A delay beyond the manager's node request timeout (1 s in these tests), and one within it.
const LONG_DELAY: u64 = 1500;
const SHORT_DELAY: u64 = 300;

fn unix_ms() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    u64::try_from(since.as_millis()).expect("unix ms fit in u64")
}

/// The manager's database URL: `None` for SQLite in its data dir, or a fresh PostgreSQL
/// database on the server `ARCH_TEST_DATABASE_URL` names.
async fn database() -> Option<String> {
    use manager::ConnectionTrait as _;
    let admin = std::env::var("ARCH_TEST_DATABASE_URL").ok()?;
    if admin.is_empty() {
        return None;
    }
    let name = format!("arch_faults_{}", manager::util::random_hex(6));
    let db = manager::db::connect(&admin)
        .await
        .expect("connect to ARCH_TEST_DATABASE_URL");
    db.execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create the test database");
    db.close().await.expect("close the admin connection");
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    Some(format!("{base}/{name}"))
}

/// `arch-manager serve` with the loops of `testkit::procs::start_manager` (pull every 500 ms,
/// pull timeout 3 s, node request timeout 1 s), on the given database; killed on drop.
struct Manager {
    child: Child,
    api: Api,
}

impl Drop for Manager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Manager {
    /// Starts on a free port with data dir `data` and `url` (SQLite in `data` when `None`), and
    /// waits until it answers.
    async fn start(data: &Path, url: Option<&str>) -> Manager {
        let port = free_port();
        let mut cmd = Command::new(procs::binary("arch-manager"));
        cmd.args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data)
        .args(["--pull-interval", "500ms", "--pull-timeout", "3s"])
        .args(["--node-timeout", "1s"])
        .env_remove("ARCH_DATABASE_URL")
        .env("ARCH_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("ARCH_LOG", "warn")
        .stdout(Stdio::null());
        if let Some(url) = url {
            cmd.args(["--database-url", url]);
        }
        let child = cmd.spawn().expect("spawn arch-manager");
        let api = Api::new(LOCALHOST, port, ADMIN_TOKEN);
        let m = Manager { child, api };
        wait_until("the manager to listen", Duration::from_secs(20), || {
            m.api.up()
        })
        .await;
        m
    }

    /// kill -9: no shutdown of any kind.
    fn kill_9(&mut self) {
        self.child.kill().expect("SIGKILL the manager");
        self.child.wait().expect("reap the manager");
    }
}

async fn get(m: &Api, path: &str) -> Value {
    let (st, v) = m.get(path).await;
    assert_eq!(st, StatusCode::OK, "{path}: {v}");
    v
}

async fn usage(m: &Api, path: &str) -> u64 {
    get(m, path).await["usage_bytes"]
        .as_u64()
        .unwrap_or_else(|| panic!("{path}: no usage_bytes"))
}

async fn pulled_at(m: &Api, node: i64) -> i64 {
    get(m, &format!("/v1/nodes/{node}")).await["pulled_at"]
        .as_i64()
        .expect("pulled_at")
}

async fn node_ready(m: &Api, node: i64) -> bool {
    let v = get(m, &format!("/v1/nodes/{node}")).await;
    v["push_status"] == "available" && v["pull_status"] == "available"
}

/// Waits (at most 20 s) until the manager has recorded `n` more successful pulls of `node`.
async fn wait_pulls(m: &Api, node: i64, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut last, mut seen) = (pulled_at(m, node).await, 0);
    while seen < n {
        assert!(
            Instant::now() < deadline,
            "node {node}: {seen} of {n} pulls in 20 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = pulled_at(m, node).await;
        if now > last {
            (last, seen) = (now, seen + 1);
        }
    }
}

/// The manager, one node behind a fault proxy, and the web server.
struct Setup {
    http: Arc<Http>,
    manager: Manager,
    db: Option<String>,
    manager_dir: std::path::PathBuf,
    proxy: FaultProxy,
    node: Option<ArchProc>,
    node_dir: std::path::PathBuf,
    node_port: u16,
    node_api: Api,
    node_id: i64,
    _dir: tempfile::TempDir,
}

impl Setup {
    async fn start() -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = database().await;
        let (manager_dir, node_dir) = (dir.path().join("manager"), dir.path().join("node"));
        let node_port = free_port();
        let node = procs::start_node(LOCALHOST, node_port, &node_dir, Some(LOCALHOST));
        let manager = Manager::start(&manager_dir, db.as_deref()).await;
        let node_api = Api::node(LOCALHOST, node_port, &node_dir, NODE_TOKEN).await;
        wait_until("the node to listen", Duration::from_secs(20), || {
            node_api.up()
        })
        .await;
        let proxy = FaultProxy::start(node_port).await;
        let direct = free_port();
        let remote = (0..50)
            .map(|_| free_port())
            .find(|&p| p != direct)
            .expect("two distinct free ports");
        let (st, s) = manager
            .api
            .put(
                "/v1/settings",
                // The web server is on loopback, which user traffic may not reach by default.
                &json!({"host": "127.0.0.1", "ss_direct_port": direct, "ss_remote_port": remote,
                        "allowed_private_networks": ["127.0.0.0/8"]}),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{s}");
        let (st, n) = manager
            .api
            .post(
                "/v1/nodes",
                &json!({"host": "127.0.0.1", "http_port": proxy.port, "http_token": NODE_TOKEN}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{n}");
        let node_id = n["id"].as_i64().expect("node id");
        Setup {
            http: Arc::new(Http::start().await),
            manager,
            db,
            manager_dir,
            proxy,
            node: Some(node),
            node_dir,
            node_port,
            node_api,
            node_id,
            _dir: dir,
        }
    }

    fn m(&self) -> &Api {
        &self.manager.api
    }

    /// Adds a user and starts `ss-local` for its direct and remote links (the first fetches wait
    /// until the engines run the user); `None` when interop tests are skipped.
    async fn user(&self, name: &str) -> Option<(i64, [u16; 2], Vec<Proc>)> {
        let (st, u) = self.m().post("/v1/users", &json!({"name": name})).await;
        assert_eq!(st, StatusCode::CREATED, "{u}");
        let id = u["id"].as_i64().expect("user id");
        let links = get(self.m(), &format!("/v1/users/{id}/links")).await;
        let mut socks = [0u16; 2];
        let mut procs = Vec::new();
        for (i, mode) in ["direct", "remote"].into_iter().enumerate() {
            let link = links
                .as_array()
                .expect("links")
                .iter()
                .find(|l| l["mode"] == mode)
                .and_then(|l| l["url"].as_str())
                .unwrap_or_else(|| panic!("no {mode} link in {links}"));
            let (p, port) = ss_local_for(link).await?;
            socks[i] = port;
            procs.push(p);
        }
        Some((id, socks, procs))
    }

    async fn start_node(&mut self) {
        self.node = Some(procs::start_node(
            LOCALHOST,
            self.node_port,
            &self.node_dir,
            Some(LOCALHOST),
        ));
        wait_until("the node to listen", Duration::from_secs(20), || {
            self.node_api.up()
        })
        .await;
    }

    /// Sends `sig` (`-TERM`, `-KILL`) to the node and waits until it exited.
    async fn signal_node(&mut self, sig: &'static str) {
        let mut node = self.node.take().expect("the node runs");
        tokio::task::spawn_blocking(move || node.signal(sig))
            .await
            .expect("signal the node");
    }

    async fn epoch(&self) -> Value {
        get(&self.node_api, "/v1/info").await["epoch"].clone()
    }
}

/// Fetches `BODY` bytes through the SOCKS port `socks`; returns the bytes the web server
/// exchanged for it (request + response). A try that fails is repeated (for at most 30 s, while
/// a restarted process comes up), provided it exchanged nothing with the web server: the bytes
/// of a failed fetch would not be known exactly.
async fn fetch(http: &Http, socks: u16, what: &str) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let before = http.totals();
        let f = curl(socks, &http.url(&format!("/{BODY}")), 10).await;
        let after = http.totals();
        let exchanged = after.request + after.response - before.request - before.response;
        if f.code == 0 {
            assert_eq!(f.bytes, BODY, "{what}: short body");
            return exchanged;
        }
        assert_eq!(
            exchanged, 0,
            "{what}: a failed fetch reached the web server"
        );
        assert!(
            Instant::now() < deadline,
            "{what}: fetches still failing (curl exit {})",
            f.code
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What the manager must show: each user's bytes in all modes, the node's remote bytes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Expected {
    users: [u64; 2],
    node: u64,
}

const DIRECT: usize = 0;
const REMOTE: usize = 1;

/// One fetch per user in each of `modes` (`DIRECT`, `REMOTE`), added to `want`.
async fn traffic(http: &Http, socks: &[[u16; 2]; 2], modes: &[usize], want: &mut Expected) {
    for (u, ports) in socks.iter().enumerate() {
        for &mode in modes {
            let what = format!("user {u}, {}", ["direct", "remote"][mode]);
            let n = fetch(http, ports[mode], &what).await;
            want.users[u] += n;
            if mode == REMOTE {
                want.node += n;
            }
        }
    }
}

/// What the manager shows now.
async fn shown(s: &Setup, users: &[i64; 2]) -> Expected {
    Expected {
        users: [
            usage(s.m(), &format!("/v1/users/{}", users[0])).await,
            usage(s.m(), &format!("/v1/users/{}", users[1])).await,
        ],
        node: usage(s.m(), &format!("/v1/nodes/{}", s.node_id)).await,
    }
}

/// Waits until the manager shows exactly `want`; any usage above it fails at once.
async fn settles_at(s: &Setup, users: &[i64; 2], want: Expected, phase: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got = shown(s, users).await;
        if got == want {
            return;
        }
        let over = got.node > want.node || (0..2).any(|u| got.users[u] > want.users[u]);
        assert!(
            !over,
            "{phase}: usage {got:?} exceeds what was carried {want:?}"
        );
        assert!(
            Instant::now() < deadline,
            "{phase}: usage stuck at {got:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sets `fault`, makes traffic and waits until the fault acted on the replies to two pulls after
/// it (each pull of these faults comes on a new connection: the manager gives up on the old one,
/// or the proxy closed it). The node's usage must stay at `counted` (no reply got through).
async fn exercise(
    s: &Setup,
    users: &[i64; 2],
    socks: &[[u16; 2]; 2],
    fault: Fault,
    want: &mut Expected,
    counted: u64,
) {
    s.proxy.set(fault);
    traffic(&s.http, socks, &[DIRECT, REMOTE], want).await;
    let hits = s.proxy.hits(fault);
    wait_until(
        &format!("{fault:?} to hit two pulls"),
        Duration::from_secs(20),
        || async { s.proxy.hits(fault) >= hits + 2 },
    )
    .await;
    let node = usage(s.m(), &format!("/v1/nodes/{}", s.node_id)).await;
    assert_eq!(
        node, counted,
        "{fault:?}: the node's usage moved with no reply through"
    );
    eprintln!(
        "{fault:?}: {} connections, {} replies hit; usage {:?}",
        s.proxy.connections(fault),
        s.proxy.hits(fault),
        shown(s, users).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_lose_and_double_count_nothing() {
    testkit::init_logs();
    if client_bin("ss-local").is_none() {
        return;
    }
    let started = Instant::now();
    let mut s = Setup::start().await;
    let Some((alice, alice_socks, _alice_procs)) = s.user("alice").await else {
        return;
    };
    let Some((bob, bob_socks, _bob_procs)) = s.user("bob").await else {
        return;
    };
    let (users, socks) = ([alice, bob], [alice_socks, bob_socks]);
    wait_until(
        "the node pushed and pulled",
        Duration::from_secs(20),
        || node_ready(s.m(), s.node_id),
    )
    .await;
    let mut want = Expected::default();

    // Unfaulted: every mode counts (the first fetches also wait for the engines to run the users).
    traffic(&s.http, &socks, &[DIRECT, REMOTE], &mut want).await;
    settles_at(&s, &users, want, "pass").await;
    let counted = want;

    // Replies dropped, cut inside the answer, held beyond the request timeout: the node
    // answers every pull, the manager takes none, and counts nothing from the node.
    for fault in [
        Fault::DropReplies,
        Fault::CutReplies { after: CUT_AFTER },
        Fault::Delay { ms: LONG_DELAY },
    ] {
        exercise(&s, &users, &socks, fault, &mut want, counted.node).await;
    }
    // Held within the timeout: the pulls succeed, and everything since the faults began counts
    // once.
    let hits = s.proxy.hits(Fault::Delay { ms: 0 });
    s.proxy.set(Fault::Delay { ms: SHORT_DELAY });
    traffic(&s.http, &socks, &[DIRECT, REMOTE], &mut want).await;
    settles_at(&s, &users, want, "short delay").await;
    assert!(s.proxy.hits(Fault::Delay { ms: 0 }) > hits);
    eprintln!("after the faults: {want:?} at {:?}", started.elapsed());

    // Graceful node restart: what the node counted and nobody pulled yet is kept (same epoch).
    s.proxy.set(Fault::Pass);
    traffic(&s.http, &socks, &[REMOTE], &mut want).await;
    let epoch = s.epoch().await;
    s.signal_node("-TERM").await;
    traffic(&s.http, &socks, &[DIRECT], &mut want).await;
    s.start_node().await;
    assert_eq!(
        s.epoch().await,
        epoch,
        "a clean restart continues the epoch"
    );
    traffic(&s.http, &socks, &[DIRECT, REMOTE], &mut want).await;
    settles_at(&s, &users, want, "graceful node restart").await;

    // Manager kill -9 while a pull carrying new counters is in flight: the manager's own
    // engine loses what it counted since its last pull (nothing: all counted above), the node
    // loses nothing: the pull that dies with the manager is made again from the stored cursors.
    // The new counters reach no pull (replies dropped) until the delayed one (a switch ends
    // the open connections, so the next pull comes on a new one).
    s.proxy.set(Fault::DropReplies);
    traffic(&s.http, &socks, &[REMOTE], &mut want).await;
    let hits = s.proxy.hits(Fault::Delay { ms: 0 });
    s.proxy.set(Fault::Delay { ms: 400 });
    wait_until(
        "a pull with the new counters in flight",
        Duration::from_secs(10),
        || async { s.proxy.hits(Fault::Delay { ms: 0 }) > hits },
    )
    .await;
    s.manager.kill_9();
    s.manager = Manager::start(&s.manager_dir, s.db.as_deref()).await;
    s.proxy.set(Fault::Pass);
    traffic(&s.http, &socks, &[DIRECT, REMOTE], &mut want).await;
    settles_at(&s, &users, want, "manager kill -9").await;

    // Nothing more comes: two more pulls add nothing (no double counting).
    wait_pulls(s.m(), s.node_id, 2).await;
    assert_eq!(shown(&s, &users).await, want, "usage moved after settling");
    let total = s.http.totals();
    assert_eq!(
        want.users[0] + want.users[1],
        total.request + total.response,
        "every byte the web server exchanged is counted once"
    );
    eprintln!(
        "faults suite on {}: {want:?}, {} requests, in {:?}",
        if s.db.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        s.http.requests(),
        started.elapsed()
    );
}

/// `GET {path}` through the SOCKS port `socks` to `http`, adding every response byte to
/// `received` as it arrives, until the server or the proxy closes.
async fn stream(socks: u16, http: &Http, path: &str, received: &AtomicU64) {
    let Some(mut s) = testkit::net::socks5_connect(socks, &http.ip.to_string(), http.port).await
    else {
        return;
    };
    let request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", http.ip);
    if s.write_all(request.as_bytes()).await.is_err() {
        return;
    }
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                received.fetch_add(n as u64, Ordering::SeqCst);
            }
        }
    }
}

/// A node killed while traffic flows starts a new epoch: what it counted since the snapshot
/// behind the manager's last successful pull is lost, and nothing else.
///
/// Bytes exchanged are the request bytes the web server read plus the response bytes the client
/// received, sampled every 10 ms. The node counts a request byte before the server reads it and
/// a response byte before the client receives it, so whatever the node had counted when it
/// answered a pull is at least what was exchanged when that pull's request crossed the proxy
/// (`FaultProxy::request_times`). The loss (exchanged − counted) is therefore at most what was
/// exchanged from that request to the end: the window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_kill_9_loses_at_most_the_traffic_since_the_last_pull() {
    testkit::init_logs();
    if client_bin("ss-local").is_none() {
        return;
    }
    let mut s = Setup::start().await;
    let Some((carol, socks, _procs)) = s.user("carol").await else {
        return;
    };
    wait_until(
        "the node pushed and pulled",
        Duration::from_secs(20),
        || node_ready(s.m(), s.node_id),
    )
    .await;
    fetch(&s.http, socks[REMOTE], "carol, remote").await;
    // Response bytes the client received: so far, the whole of every response.
    let received = Arc::new(AtomicU64::new(s.http.totals().response));

    // Exchanged bytes over time, each sample read before its time is taken.
    let (samples, stop) = (
        Arc::new(Mutex::new(Vec::<(u64, u64)>::new())),
        Arc::new(AtomicBool::new(false)),
    );
    let sampler = {
        let (http, received, samples, stop) = (
            s.http.clone(),
            received.clone(),
            samples.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            for _ in 0..6000 {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let bytes = http.totals().request + received.load(Ordering::SeqCst);
                samples.lock().expect("samples").push((unix_ms(), bytes));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let streams: Vec<_> = (0..2)
        .map(|_| {
            let (http, received) = (s.http.clone(), received.clone());
            let socks = socks[REMOTE];
            tokio::spawn(async move {
                stream(socks, &http, "/slow/400000000", &received).await;
            })
        })
        .collect();
    let flowing = received.load(Ordering::SeqCst) + 2_000_000;
    wait_until("the streams to flow", Duration::from_secs(20), || async {
        received.load(Ordering::SeqCst) > flowing
    })
    .await;
    wait_pulls(s.m(), s.node_id, 2).await;
    // The kill comes late in a pull period, 450 ms after the last successful pull (pulls start
    // every 500 ms): about the longest time the node's counts wait for a pull.
    wait_until("late in a pull period", Duration::from_secs(10), || async {
        let last = u64::try_from(pulled_at(s.m(), s.node_id).await).expect("pulled_at");
        unix_ms() >= last + 450
    })
    .await;

    let killed_at = unix_ms();
    let tried = s.proxy.connections(Fault::Pass);
    s.signal_node("-KILL").await;
    for (i, st) in streams.into_iter().enumerate() {
        tokio::time::timeout(Duration::from_secs(20), st)
            .await
            .unwrap_or_else(|_| panic!("stream {i} still open after the node died"))
            .expect("stream task");
    }
    stop.store(true, Ordering::SeqCst);
    sampler.await.expect("sampler");
    let exchanged_before_restart = s.http.totals().request + received.load(Ordering::SeqCst);
    // Two pulls tried and failed since the kill: the last successful one is final.
    wait_until(
        "two pull attempts after the kill",
        Duration::from_secs(10),
        || async { s.proxy.connections(Fault::Pass) >= tried + 2 },
    )
    .await;
    let last_pull = u64::try_from(pulled_at(s.m(), s.node_id).await).expect("pulled_at");
    let request = s
        .proxy
        .request_times()
        .into_iter()
        .filter(|&t| t <= last_pull)
        .max()
        .expect("the last successful pull's request crossed the proxy");
    let at_request = samples
        .lock()
        .expect("samples")
        .iter()
        .filter(|(t, _)| *t <= request)
        .map(|(_, b)| *b)
        .max()
        .expect("a sample before the last pull");
    let window = exchanged_before_restart - at_request;

    // Back with a new epoch; one more fetch counts exactly.
    s.start_node().await;
    wait_until("the node pulled again", Duration::from_secs(20), || {
        node_ready(s.m(), s.node_id)
    })
    .await;
    let exchanged =
        exchanged_before_restart + fetch(&s.http, socks[REMOTE], "carol, remote, after").await;
    wait_pulls(s.m(), s.node_id, 3).await;
    let counted = usage(s.m(), &format!("/v1/nodes/{}", s.node_id)).await;
    assert_eq!(
        usage(s.m(), &format!("/v1/users/{carol}")).await,
        counted,
        "the user's usage is the node's (one user, remote mode only)"
    );
    assert!(
        counted <= exchanged,
        "counted {counted} bytes, more than the {exchanged} exchanged"
    );
    let lost = exchanged - counted;
    eprintln!(
        "node kill -9 {} ms after the last successful pull ({} ms after its request): \
         {lost} bytes lost of {exchanged} exchanged; {window} bytes exchanged since that request",
        killed_at.saturating_sub(last_pull),
        killed_at.saturating_sub(request),
    );
    assert!(
        lost <= window,
        "lost {lost} bytes, more than the {window} exchanged since the last successful pull"
    );
}
