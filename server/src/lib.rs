//! `arch-manager`: the control plane as a library. It opens the database, starts the local data
//! plane and the coordinator, and serves the panel (Leptos SSR + server functions), the REST API
//! (`/v1`) and live events (`/events`). On SIGTERM it stops accepting, drains the loops, flushes
//! the local counters and closes the database. Business rules live in the `manager` crate.
//!
//! The binary (`src/main.rs`) parses the command line and calls [`run`]. [`router`] builds the
//! whole HTTP surface and [`serve_on`] runs a manager on a listener until cancelled, so tests can
//! start managers in their own process on port 0.

pub mod cli;

mod api;
mod panel;
mod sse;

use anyhow::Context as _;
use axum::http::HeaderMap;
use axum::routing::get;
use axum::Router;
use cli::{AdminCommand, Command, ServeArgs};
use manager::{CoordinatorConfig, Manager, Options};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Runs one parsed subcommand of `arch-manager`.
pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => serve(args).await,
        Command::Migrate(db) => migrate(db).await,
        Command::Admin(cmd) => admin(cmd).await,
        Command::CheckConfig(args) => check_config(args).await,
    }
}

/// The bearer token of a request, if any.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

fn options(args: &ServeArgs) -> anyhow::Result<Options> {
    Ok(Options {
        database_url: args.db.url()?,
        admin_token: args.admin_token()?,
        coordinator: CoordinatorConfig {
            pull_interval: args.pull_interval,
            pull_timeout: args.pull_timeout,
            ..CoordinatorConfig::default()
        },
        node_timeout: args.node_timeout,
        trusted_proxies: manager::TrustedProxies(args.trusted_proxy.clone()),
    })
}

/// Opens the database for the one-shot subcommands (no engine, no loops).
async fn open_db(db: &cli::DbArgs) -> anyhow::Result<Manager> {
    let opts = Options {
        database_url: db.url()?,
        admin_token: None,
        coordinator: CoordinatorConfig::default(),
        node_timeout: std::time::Duration::from_secs(5),
        trusted_proxies: manager::TrustedProxies::default(),
    };
    Manager::open(opts, None)
        .await
        .context("opening the database")
}

/// The whole HTTP surface; a function so tests can serve it on port 0.
pub fn router(m: &Manager, site_root: std::path::PathBuf) -> Router {
    let services = m.services.clone();
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/events", get(sse::events).with_state(services.clone()))
        .merge(api::routes(services.clone()))
        .merge(panel::routes(services, site_root))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(1 << 20))
        .layer(tower_http::trace::TraceLayer::new_for_http())
}

/// `arch-manager serve`: validates the flags, binds, opens the database and the local data plane,
/// prints the first-run setup URL when no administrator exists, and serves until SIGINT or
/// SIGTERM (see [`serve_on`]).
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    args.validate()?;
    let opts = options(&args)?;
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    let engine = engine::Engine::new();
    // The local engine's replay filter outlives restarts, like a node's.
    daemon::fs::create_private_dir(&args.db.data_dir)?;
    let replay = engine::ReplayFile::open(&engine, &args.db.data_dir.join("replay-filter.bin"));
    let m = Manager::open(opts, Some(engine.clone()))
        .await
        .context("opening the database")?;

    println!("arch-manager listening on http://{addr}");
    if let Some(token) = m.services.auth.setup_token().await? {
        println!("No administrator yet. First-run setup URL: http://{addr}/setup?token={token}");
        println!("(or create one with: arch-manager admin create --username NAME)");
    }
    let cancel = CancellationToken::new();
    tokio::spawn(daemon::shutdown_signal(cancel.clone()));
    let replay_keeper = tokio::spawn(replay.clone().keep(cancel.clone()));
    let site = Site {
        root: args.site_root.clone(),
        limits: args.http.limits(),
    };
    let served = serve_on(listener, m, Some(engine), site, cancel).await;
    let _ = replay_keeper.await;
    if let Err(e) = replay.save() {
        tracing::warn!(error = %e, "saving the replay filter failed");
    }
    served
}

/// Where the panel's static files are and the limits of the HTTP server.
#[derive(Debug, Clone)]
pub struct Site {
    /// Directory with the panel's `pkg/` (built by `scripts/build-site.sh`).
    pub root: std::path::PathBuf,
    pub limits: daemon::http::Limits,
}

/// Runs an opened manager on `listener` until `cancel`: the coordinator's loops and the HTTP
/// surface of [`router`]. Then, in order: stops accepting and drains HTTP (bounded grace), joins
/// the loops (final flush of the local counters), stops `engine` (the manager's own data plane,
/// the one given to [`Manager::open`]) and closes the database.
pub async fn serve_on(
    listener: TcpListener,
    m: Manager,
    engine: Option<engine::Engine>,
    site: Site,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let coordinator = tokio::spawn(m.coordinator.clone().run(cancel.clone()));
    let app = router(&m, site.root);
    // Every request carries `ConnectInfo<SocketAddr>` (sign-in limits use the peer address).
    let served = daemon::http::serve(listener, app, site.limits, None, cancel.clone())
        .await
        .context("serving HTTP");
    cancel.cancel();
    tracing::info!("HTTP stopped; draining the coordinator");
    if let Err(e) = coordinator.await {
        tracing::error!(error = %e, "coordinator task failed");
    }
    if let Some(engine) = engine {
        engine.shutdown().await;
    }
    m.db.close().await.context("closing the database")?;
    tracing::info!("bye");
    served
}

async fn migrate(db: cli::DbArgs) -> anyhow::Result<()> {
    let m = open_db(&db).await?;
    m.db.close().await?;
    println!("migrations applied");
    Ok(())
}

async fn admin(cmd: AdminCommand) -> anyhow::Result<()> {
    match cmd {
        AdminCommand::Create(a) => {
            let m = open_db(&a.db).await?;
            let password = cli::read_password(a.password_file.as_ref())?;
            let admin = m.services.auth.create_admin(&a.username, &password).await?;
            println!(
                "administrator `{}` created (id {})",
                admin.username, admin.id
            );
        }
        AdminCommand::ResetPassword(a) => {
            let m = open_db(&a.db).await?;
            let password = cli::read_password(a.password_file.as_ref())?;
            m.services
                .auth
                .reset_password(&a.username, &password)
                .await?;
            println!(
                "password of `{}` changed; their sessions were ended",
                a.username
            );
        }
        AdminCommand::CreateToken { db, name } => {
            let m = open_db(&db).await?;
            let token = m.services.auth.create_api_token(&name).await?;
            println!("{token}");
        }
    }
    Ok(())
}

async fn check_config(args: ServeArgs) -> anyhow::Result<()> {
    args.validate()?;
    let url = args.db.url()?;
    let m = open_db(&args.db).await?;
    let settings = m.services.settings.get().await?;
    m.db.close().await?;
    let redacted = match url.split_once('@') {
        Some((scheme_user, rest)) => format!(
            "{}:***@{rest}",
            scheme_user.split(':').take(2).collect::<Vec<_>>().join(":")
        ),
        None => url,
    };
    println!("listen         {}", args.listen);
    println!("database       {redacted}");
    println!("site root      {}", args.site_root.display());
    println!(
        "admin token    {}",
        if args.admin_token()?.is_some() {
            "set"
        } else {
            "not set"
        }
    );
    println!("pull interval  {:?}", args.pull_interval);
    println!("pull timeout   {:?}", args.pull_timeout);
    println!("node timeout   {:?}", args.node_timeout);
    println!("settings       {}", serde_json::to_string(&settings)?);
    println!("ok");
    Ok(())
}
