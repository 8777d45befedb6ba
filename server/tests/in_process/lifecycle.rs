//! A user's access period ends a live session: once `expire_at` passes, the next pull disables
//! the user (reason `expired`) and the sync that follows drops them from the manager's own data
//! plane, cutting the session they hold open; a later expiry enables them again at once.
//!
//! The manager here runs its local engine (direct mode), unlike [`crate::support::TestApp`]'s,
//! and the user's traffic goes through the stock `ss-local` to a TCP echo server on 127.0.0.1.

use crate::support::{client, fast_loops, wait_until, ADMIN_TOKEN};
use manager::{Manager, Options};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use testkit::net::{socks5_connect, LOCALHOST};
use testkit::procs::Api;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::{CancellationToken, DropGuard};

/// How far in the future the user's access ends when created: time enough to start the client
/// and prove a session before it does.
const EXPIRE_IN: Duration = Duration::from_secs(3);
/// Slack on every timing bound for the HTTP polls and a loaded machine.
const MARGIN: Duration = Duration::from_secs(1);
/// Bound on one echo round trip (or on learning that none will come) over loopback.
const ROUND_TRIP: Duration = Duration::from_secs(3);
/// One day in ms: the later expiry that lifts the first.
const DAY_MS: i64 = 86_400_000;
/// What each round trip sends.
const PING: &[u8] = b"arch lifecycle ping";

/// Unix ms now, the clock `expire_at` is on.
fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(since.as_millis()).expect("ms fit in i64")
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).expect("ms fit in i64")
}

/// From now to `at` (Unix ms); zero once it has passed.
fn until(at: i64) -> Duration {
    Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0))
}

/// A manager with its local data plane, served on port 0 of 127.0.0.1 with [`fast_loops`];
/// dropping it stops both.
struct DirectManager {
    api: Api,
    _stop: DropGuard,
    _dir: tempfile::TempDir,
}

impl DirectManager {
    async fn start() -> DirectManager {
        testkit::init_logs();
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = Options {
            database_url: manager::db::default_sqlite_url(dir.path()),
            admin_token: Some(ADMIN_TOKEN.to_owned()),
            coordinator: fast_loops(),
            node_timeout: Duration::from_secs(1),
            trusted_proxies: manager::TrustedProxies::default(),
        };
        let engine = engine::Engine::new();
        let m = Manager::open(opts, Some(engine.clone()))
            .await
            .expect("open the manager");
        let listener = TcpListener::bind((LOCALHOST, 0)).await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let site = server::Site {
            root: dir.path().join("site"),
            limits: daemon::http::Limits::with_max_connections(64),
        };
        let cancel = CancellationToken::new();
        tokio::spawn(server::serve_on(
            listener,
            m,
            Some(engine),
            site,
            cancel.clone(),
        ));
        DirectManager {
            api: Api {
                http: client(),
                base: format!("http://{addr}"),
                token: ADMIN_TOKEN.to_owned(),
            },
            _stop: cancel.drop_guard(),
            _dir: dir,
        }
    }
}

/// A TCP echo server on 127.0.0.1; returns its port.
async fn tcp_echo() -> u16 {
    let listener = TcpListener::bind((LOCALHOST, 0)).await.expect("bind echo");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    port
}

/// Sends [`PING`] on `s` and whether exactly it comes back within [`ROUND_TRIP`].
async fn echoes(s: &mut TcpStream) -> bool {
    let exchange = async {
        s.write_all(PING).await?;
        let mut back = vec![0u8; PING.len()];
        s.read_exact(&mut back).await?;
        Ok::<_, std::io::Error>(back)
    };
    matches!(
        tokio::time::timeout(ROUND_TRIP, exchange).await,
        Ok(Ok(back)) if back == PING
    )
}

/// A new session through the SOCKS client on `socks` to the echo server on `echo`, if it carries
/// an echo round trip (bounded by [`ROUND_TRIP`] for the SOCKS handshake and again for the echo).
async fn session(socks: u16, echo: u16) -> Option<TcpStream> {
    let opened = tokio::time::timeout(ROUND_TRIP, socks5_connect(socks, "127.0.0.1", echo));
    let mut s = opened.await.ok().flatten()?;
    echoes(&mut s).await.then_some(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_users_session_ends_within_a_pull_period_and_the_push() {
    if testkit::clients::client_bin("ss-local").is_none() {
        return;
    }
    let loops = fast_loops();
    // The pull that follows `expire_at` disables the user; the sync it triggers (after the
    // debounce) drops them from the engine, which ends their sessions.
    let disabled_within = loops.pull_interval + MARGIN;
    let cut_within = loops.pull_interval + loops.debounce + MARGIN;

    let m = DirectManager::start().await;
    let api = &m.api;
    let echo = tcp_echo().await;
    let direct = testkit::net::free_port_on(LOCALHOST);
    let (st, s) = api
        .put(
            "/v1/settings",
            // The echo server is on loopback, which user traffic may not reach by default.
            &json!({"host": "127.0.0.1", "ss_direct_port": direct,
                    "allowed_private_networks": ["127.0.0.0/8"]}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{s}");

    // 1. A user whose access ends in EXPIRE_IN, and a session of theirs carrying data.
    let expire_at = now_ms() + ms(EXPIRE_IN);
    let (st, user) = api
        .post(
            "/v1/users",
            &json!({"name": "alice", "expire_at": expire_at}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{user}");
    assert_eq!(user["enabled"], true);
    assert_eq!(user["disabled_reason"], Value::Null);
    assert_eq!(user["expire_at"], expire_at);
    let id = user["id"].as_i64().expect("id");
    let (st, links) = api.get(&format!("/v1/users/{id}/links")).await;
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
    // The engine opens the direct port once its config has a user.
    wait_until("the direct port to listen", EXPIRE_IN, || async {
        TcpStream::connect((LOCALHOST, direct)).await.is_ok()
    })
    .await;
    let live = std::sync::Mutex::new(None);
    wait_until("a session carrying data", EXPIRE_IN, || async {
        let opened = session(socks, echo).await;
        let carried = opened.is_some();
        *live.lock().expect("lock") = opened;
        carried
    })
    .await;
    let live = live.into_inner().expect("lock").expect("a live session");
    let proven_at = now_ms();
    assert!(
        proven_at < expire_at,
        "the session was proven {} ms after the expiry: setup took longer than {EXPIRE_IN:?}",
        proven_at - expire_at
    );

    // The session stays open: a reader waits for its end and notes when it came.
    let (mut reader, _writer) = live.into_split();
    let cut = tokio::spawn(async move {
        let mut buf = [0u8; 64];
        let read = reader.read(&mut buf).await;
        (now_ms(), read.map_err(|e| e.kind()))
    });

    // 2. The pull after `expire_at` disables the user, as expired.
    let until_disabled = until(expire_at + ms(disabled_within));
    wait_until(
        "the user to be disabled as expired",
        until_disabled,
        || async {
            let (_, u) = api.get(&format!("/v1/users/{id}")).await;
            u["enabled"] == false && u["disabled_reason"] == "expired"
        },
    )
    .await;
    let disabled_seen = now_ms();
    assert!(
        disabled_seen - expire_at <= ms(disabled_within),
        "disabled {} ms after the expiry, bound {disabled_within:?}",
        disabled_seen - expire_at
    );
    let (_, u) = api.get(&format!("/v1/users/{id}")).await;
    assert_eq!(u["expire_at"], expire_at);
    let updated_at = u["updated_at"].as_i64().expect("updated_at");
    assert!(
        (expire_at..=disabled_seen).contains(&updated_at),
        "disabled at {updated_at}, expiry {expire_at}, seen {disabled_seen}"
    );

    // 3. The open session ends (not before the expiry), and a new one carries nothing.
    let (cut_at, read) = tokio::time::timeout(until(expire_at + ms(cut_within)), cut)
        .await
        .unwrap_or_else(|_| panic!("the open session still runs {cut_within:?} after the expiry"))
        .expect("reader task");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "the open session ended with data: {read:?}"
    );
    assert!(
        cut_at >= expire_at,
        "the session ended {} ms before the expiry",
        expire_at - cut_at
    );
    assert!(
        cut_at - expire_at <= ms(cut_within),
        "the session ended {} ms after the expiry, bound {cut_within:?}",
        cut_at - expire_at
    );
    eprintln!(
        "expiry: disabled at +{} ms (seen at +{} ms), session ended at +{} ms",
        updated_at - expire_at,
        disabled_seen - expire_at,
        cut_at - expire_at
    );
    assert!(
        session(socks, echo).await.is_none(),
        "a new session of the expired user carried data"
    );

    // 4. A later expiry enables the user at once; the next sync lets them in again.
    let later = now_ms() + DAY_MS;
    let (st, u) = api
        .patch(&format!("/v1/users/{id}"), &json!({"expire_at": later}))
        .await;
    assert_eq!(st, StatusCode::OK, "{u}");
    assert_eq!(u["enabled"], true);
    assert_eq!(u["disabled_reason"], Value::Null);
    assert_eq!(u["expire_at"], later);
    let resync = loops.debounce + loops.sync_interval + 2 * ROUND_TRIP + MARGIN;
    wait_until("a new session to carry data again", resync, || async {
        session(socks, echo).await.is_some()
    })
    .await;
}
