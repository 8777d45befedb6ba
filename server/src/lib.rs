//! `arch-manager`: the control plane as a library. It opens the database, starts the local data
//! plane and the coordinator, and serves the panel (Leptos SSR + server functions), the REST API
//! (`/v1`) and live events (`/events`). On SIGTERM it stops the local data plane before the last
//! flush of its counters, stops accepting, ends the event streams, drains HTTP within a grace
//! period and closes the database (see [`serve_on`]). Business rules live in the `manager` crate.
//!
//! The binary (`src/main.rs`) parses the command line and calls [`run`]. [`router`] builds the
//! whole HTTP surface and [`serve_on`] runs a manager on a listener until cancelled, so tests can
//! start managers in their own process on port 0.

// The panel's page types (Leptos views) nest deeper than rustc's default query depth.
#![recursion_limit = "256"]

pub mod cli;

mod api;
mod panel;
mod sse;
mod subscription;

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
pub fn router(m: &Manager, bundle: &Bundle) -> Router {
    let services = m.services.clone();
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/events", get(sse::events).with_state(services.clone()))
        .merge(api::routes(services.clone()))
        .merge(subscription::routes(services.clone()))
        .merge(panel::routes(services, bundle))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(1 << 20))
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(request_span))
}

/// The span of one request: method and path, with subscription secrets redacted.
fn request_span<B>(req: &axum::http::Request<B>) -> tracing::Span {
    tracing::debug_span!(
        "request",
        method = %req.method(),
        path = %subscription::redacted_path(req.uri().path()),
    )
}

/// `arch-manager serve`: validates the flags (the TLS files loaded), binds, opens the database
/// and the local data plane, prints the first-run setup URL when no administrator exists, and
/// serves until SIGINT or SIGTERM (see [`serve_on`]).
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    args.validate()?;
    let opts = options(&args)?;
    let tls = args.tls()?;
    let tls_config = args.tls_config()?;
    let bundle = args.bundle();
    bundle.warn_if_missing();
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    let scheme = match &tls {
        Some(identity) => {
            tracing::info!(
                listen = %addr,
                tls.fingerprint = %identity.fingerprint(),
                "serving the panel over HTTPS"
            );
            "https"
        }
        None => {
            if !addr.ip().is_loopback() {
                tracing::warn!(
                    listen = %addr,
                    "serving the panel over plain HTTP on a non-loopback address: sign-ins, \
                     session cookies and API tokens cross the network in clear; give \
                     --tls-cert/--tls-key, or put a TLS-terminating reverse proxy in front \
                     and name it with --trusted-proxy"
                );
            }
            "http"
        }
    };
    let engine = engine::Engine::new();
    // The local engine's replay filter outlives restarts, like a node's.
    daemon::fs::create_private_dir(&args.db.data_dir)?;
    let replay = engine::ReplayFile::open(&engine, &args.db.data_dir.join("replay-filter.bin"));
    let m = Manager::open(opts, Some(engine.clone()))
        .await
        .context("opening the database")?;

    println!("arch-manager listening on {scheme}://{addr}");
    if let Some(token) = m.services.auth.setup_token().await? {
        println!(
            "No administrator yet. First-run setup URL: {scheme}://{addr}/setup?token={token}"
        );
        println!("(or create one with: arch-manager admin create --username NAME)");
    }
    let cancel = CancellationToken::new();
    tokio::spawn(daemon::shutdown_signal(cancel.clone()));
    let replay_keeper = tokio::spawn(replay.clone().keep(cancel.clone()));
    let serving = Serving {
        bundle,
        limits: args.http.limits(),
        tls: tls_config,
    };
    let served = serve_on(listener, m, Some(engine), serving, cancel).await;
    let _ = replay_keeper.await;
    if let Err(e) = replay.save() {
        tracing::warn!(error = %e, "saving the replay filter failed");
    }
    served
}

/// Where the panel's `/pkg` files (the browser bundle) come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bundle {
    /// The bundle built into the binary (crate `site`): the default, from any directory.
    Embedded,
    /// A site root on disk whose `pkg/` is served (`--site-root`, for development).
    Dir(std::path::PathBuf),
}

impl Bundle {
    /// Logs a warning when there is no bundle to serve: the pages then render but never
    /// hydrate (no sign-in form that works, no live updates).
    pub fn warn_if_missing(&self) {
        match self {
            Bundle::Embedded if site::is_empty() => tracing::warn!(
                "this arch-manager was built without the panel bundle: the panel will not \
                 work; run scripts/build-site.sh, then cargo build --release -p server"
            ),
            Bundle::Dir(root) if !root.join("pkg").is_dir() => tracing::warn!(
                site_root = %root.display(),
                "--site-root has no pkg/ directory: the panel will not work; run \
                 scripts/build-site.sh or leave out --site-root to use the built-in bundle"
            ),
            _ => {}
        }
    }
}

/// How [`serve_on`] serves HTTP: the panel bundle, the server limits and, for HTTPS, the TLS
/// configuration (plain HTTP with `None`).
#[derive(Debug, Clone)]
pub struct Serving {
    pub bundle: Bundle,
    pub limits: daemon::http::Limits,
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
}

/// Plain HTTP with the panel's files from a directory: the form the in-process tests use.
#[derive(Debug, Clone)]
pub struct Site {
    /// Directory with the panel's `pkg/` (built by `scripts/build-site.sh`).
    pub root: std::path::PathBuf,
    pub limits: daemon::http::Limits,
}

impl From<Site> for Serving {
    fn from(site: Site) -> Serving {
        Serving {
            bundle: Bundle::Dir(site.root),
            limits: site.limits,
            tls: None,
        }
    }
}

/// Runs an opened manager on `listener` until `cancel`: the coordinator's loops and the HTTP
/// surface of [`router`]. When `cancel` fires, two things run side by side: the coordinator ends
/// its loops, stops the local data plane given to [`Manager::open`] (listeners closed, sessions
/// ended, so nothing more is counted) and only then flushes its counters a last time; HTTP stops
/// accepting, ends the open event streams (`/events`) and drains the other requests within the
/// grace period of `serving.limits`. Once both are done, `engine` is stopped too (a no-op when it
/// is the one the coordinator already stopped) and the database is closed.
pub async fn serve_on(
    listener: TcpListener,
    m: Manager,
    engine: Option<engine::Engine>,
    serving: impl Into<Serving>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let serving = serving.into();
    if let Ok(addr) = listener.local_addr() {
        m.services
            .subscriptions
            .set_public_panel(manager::PublicPanel {
                https: serving.tls.is_some(),
                port: addr.port(),
            });
    }
    let coordinator = tokio::spawn(m.coordinator.clone().run(cancel.clone()));
    // The event streams end with `cancel`, so an open panel never holds the drain for its grace.
    let app = router(&m, &serving.bundle).layer(axum::Extension(sse::Shutdown(cancel.clone())));
    // Every request carries `ConnectInfo<SocketAddr>` (sign-in limits use the peer address) and
    // the `Transport` it came on (HTTPS decides the cookie's `Secure` and HSTS).
    let served = daemon::http::serve(listener, app, serving.limits, serving.tls, cancel.clone())
        .await
        .context("serving HTTP");
    cancel.cancel();
    tracing::info!("HTTP stopped; waiting for the coordinator's last flush");
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
    match args.bundle() {
        Bundle::Embedded => println!("panel files    built in ({} files)", site::names().len()),
        Bundle::Dir(root) => println!("panel files    {}", root.display()),
    }
    match args.tls()? {
        Some(identity) => println!(
            "https          on (certificate SHA-256 {})",
            identity.fingerprint()
        ),
        None => println!("https          off"),
    }
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
