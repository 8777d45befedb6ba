//! Users at scale (a documented command, not a test): seeds `--users` users straight into a
//! fresh database (batched inserts, one transaction per 1 000 rows), serves the manager
//! in-process on 127.0.0.1:0, and measures — sequentially, one request at a time — the latency
//! of paged REST requests, of the panel's users page (server-rendered, signed in with a
//! session cookie) and of the dashboard (REST and panel). Prints a Markdown table of the median
//! and p95 per request kind; the numbers and the targets are in `docs/performance.md` ("Users at
//! scale").
//!
//! Usage: `cargo run --release -p server --example users_bench -- [--database-url URL]
//! [--users N] [--requests N]`. Without `--database-url`, a SQLite file in a temp dir. A
//! `postgres://…` URL names a server: a fresh database is created there and dropped at the end.
//! Each request kind stops after `--requests` requests or 60 s, whichever comes first.

use anyhow::{bail, ensure, Context as _};
use manager::entity::user;
use manager::{ConnectionTrait, CoordinatorConfig, Manager, Options};
use rules::{DisableReason, ResetStrategy};
use sea_orm::{EntityTrait, TransactionTrait};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const ADMIN_TOKEN: &str = "bench-admin-token-0123456789";
const PASSWORD: &str = "bench password 0123";
const BATCH: usize = 1000;
const PER_KIND: Duration = Duration::from_secs(60);

struct Args {
    database_url: Option<String>,
    users: usize,
    requests: usize,
}

fn args() -> anyhow::Result<Args> {
    let mut out = Args {
        database_url: None,
        users: 100_000,
        requests: 200,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--database-url" => out.database_url = Some(value()?),
            "--users" => out.users = value()?.parse().context("--users")?,
            "--requests" => out.requests = value()?.parse().context("--requests")?,
            "-h" | "--help" => {
                println!("users_bench [--database-url URL] [--users N] [--requests N]");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other} (see --help)"),
        }
    }
    ensure!(out.requests > 0, "--requests must be at least 1");
    Ok(out)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    let dir = tempfile::tempdir()?;
    let (url, pg) = match &args.database_url {
        Some(admin) if admin.starts_with("postgres") => {
            let name = format!("arch_bench_{}", manager::util::random_hex(6));
            let conn = manager::db::connect(admin).await?;
            conn.execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await?;
            let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
            (format!("{base}/{name}"), Some((conn, name)))
        }
        Some(url) => (url.clone(), None),
        None => (manager::db::default_sqlite_url(dir.path()), None),
    };
    let result = run(&args, &url, dir.path()).await;
    if let Some((conn, name)) = pg {
        conn.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await?;
    }
    result
}

async fn run(args: &Args, url: &str, dir: &std::path::Path) -> anyhow::Result<()> {
    let opts = Options {
        database_url: url.to_owned(),
        admin_token: Some(ADMIN_TOKEN.to_owned()),
        // No nodes: the loops stay idle.
        coordinator: CoordinatorConfig::default(),
        node_timeout: Duration::from_secs(2),
        trusted_proxies: manager::TrustedProxies::default(),
    };
    let m = Manager::open(opts, None).await?;
    let backend = if url.starts_with("postgres") {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let started = Instant::now();
    seed(&m.db, args.users).await?;
    if backend == "PostgreSQL" {
        // What autovacuum's analyze does on its own after a bulk load.
        m.db.execute_unprepared("ANALYZE users").await?;
    }
    eprintln!(
        "seeded {} users in {:.1} s",
        args.users,
        started.elapsed().as_secs_f64()
    );
    let auth = m.services.auth.clone();
    auth.create_admin("bench", PASSWORD).await?;
    let session = auth.login("bench", PASSWORD, None).await?;
    let cookie = format!("{}={}", app::ssr::SESSION_COOKIE, session.token);

    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let site = server::Site {
        root: dir.join("site"),
        limits: daemon::http::Limits::with_max_connections(64),
    };
    let cancel = CancellationToken::new();
    let serving = tokio::spawn(server::serve_on(listener, m, None, site, cancel.clone()));
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(120))
        .build()?;
    let rest = |path: String| http.get(format!("{base}{path}")).bearer_auth(ADMIN_TOKEN);

    // A cursor about half-way through (sorted by id), found by walking 500 at a time.
    let mut middle = None;
    let mut seen = 0;
    let mut path = "/v1/users?limit=500".to_owned();
    while seen < args.users / 2 {
        let r = rest(path.clone()).send().await?.error_for_status()?;
        let next = r
            .headers()
            .get("x-next-cursor")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        seen += r.json::<Vec<serde_json::Value>>().await?.len();
        let Some(next) = next else { break };
        path = format!("/v1/users?limit=500&after={next}");
        middle = Some(next);
    }
    let middle = middle.context("no middle cursor (too few users?)")?;

    let kinds: Vec<(&str, String, bool)> = vec![
        ("REST first page", "/v1/users?limit=50".into(), false),
        (
            "REST middle page (cursor)",
            format!("/v1/users?limit=50&after={middle}"),
            false,
        ),
        (
            "REST search `q=4242`",
            "/v1/users?limit=50&q=4242".into(),
            false,
        ),
        (
            "REST sort by usage desc",
            "/v1/users?limit=50&sort=-usage".into(),
            false,
        ),
        (
            "REST `status=quota&sort=name`",
            "/v1/users?limit=50&status=quota&sort=name".into(),
            false,
        ),
        (
            "REST `status=enabled&sort=-created`",
            "/v1/users?limit=50&status=enabled&sort=-created".into(),
            false,
        ),
        ("Panel `GET /users` (SSR)", "/users".into(), true),
        ("REST `GET /v1/dashboard`", "/v1/dashboard".into(), false),
        ("Panel `GET /` dashboard (SSR)", "/".into(), true),
    ];
    println!(
        "{} users on {backend}; sequential requests over loopback, {} per kind (at most {} s)\n",
        args.users,
        args.requests,
        PER_KIND.as_secs()
    );
    println!("| request | n | median ms | p95 ms | body KiB |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (label, path, panel) in kinds {
        let request = || {
            if panel {
                http.get(format!("{base}{path}"))
                    .header(reqwest::header::COOKIE, &cookie)
            } else {
                rest(path.clone())
            }
        };
        // Warm-up (connection, caches), not measured.
        for _ in 0..3 {
            request().send().await?.error_for_status()?.bytes().await?;
        }
        let mut times = Vec::new();
        let mut size = 0;
        let kind_started = Instant::now();
        while times.len() < args.requests && kind_started.elapsed() < PER_KIND {
            let t = Instant::now();
            let r = request().send().await?.error_for_status()?;
            size = r.bytes().await?.len();
            times.push(t.elapsed());
        }
        times.sort();
        let pct = |p: f64| {
            let i = ((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1;
            times[i].as_secs_f64() * 1000.0
        };
        println!(
            "| {label} | {} | {:.1} | {:.1} | {:.0} |",
            times.len(),
            pct(0.5),
            pct(0.95),
            size as f64 / 1024.0
        );
    }
    cancel.cancel();
    serving.await??;
    Ok(())
}

/// `n` users in transactions of [`BATCH`] rows: names `user000000`…, usage and creation times
/// spread with ties, 5 % disabled (manual, quota, expired in turn).
async fn seed(db: &manager::DatabaseConnection, n: usize) -> anyhow::Result<()> {
    let now = manager::util::now_ms();
    for start in (0..n).step_by(BATCH) {
        let rows = (start..n.min(start + BATCH)).map(|i| {
            let (enabled, reason) = match i % 60 {
                0 => (false, Some(DisableReason::Manual)),
                1 => (false, Some(DisableReason::Quota)),
                2 => (false, Some(DisableReason::Expired)),
                _ => (true, None),
            };
            let i64 = i as i64;
            let created = now - 86_400_000 + (i64 / 3) * 1000;
            user::ActiveModel {
                name: sea_orm::Set(format!("user{i:06}")),
                password: sea_orm::Set(manager::util::random_key(16)),
                method: sea_orm::Set(manager::services::users::USER_METHOD.as_str().to_owned()),
                enabled: sea_orm::Set(enabled),
                disabled_reason: sea_orm::Set(reason),
                quota_bytes: sea_orm::Set(0),
                usage_bytes: sea_orm::Set((i64 * 7_919) % 1_000_003 * 1000),
                expire_at: sea_orm::Set(None),
                expire_after_first_use: sea_orm::Set(None),
                first_used_at: sea_orm::Set(None),
                created_at: sea_orm::Set(created),
                updated_at: sea_orm::Set(created),
                reset_strategy: sea_orm::Set(ResetStrategy::None),
                reset_day: sea_orm::Set(1),
                usage_reset_at: sea_orm::Set(created),
                next_reset_at: sea_orm::Set(None),
                sub_secret: sea_orm::Set(format!("bench-secret-{i}")),
                sub_secret_hash: sea_orm::Set(format!("bench-hash-{i}")),
                ..Default::default()
            }
        });
        let txn = db.begin().await?;
        user::Entity::insert_many(rows)
            .exec_without_returning(&txn)
            .await?;
        txn.commit().await?;
    }
    Ok(())
}
