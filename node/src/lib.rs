//! `arch-node`: the node agent as a library. It serves the node API (`/v1/configs`, `/v1/stats`,
//! `/v1/info`) for the manager, runs the pushed config in the embedded engine, and keeps traffic
//! counters on disk so the manager can account them exactly once. It must not reach the
//! manager's database or know about users beyond what a config says.
//!
//! The API is served over TLS 1.3 by default, with a certificate generated in the data dir (the
//! manager pins its fingerprint) or the operator's own; plain HTTP only with `--insecure-http`.
//! The token is kept as hashes only and can be rotated without downtime (see [`auth`]).
//!
//! The binary (`src/main.rs`) parses the command line and calls [`run`]; tests start a node in
//! their own process with [`NodeState::open`] and [`serve_on`] (or [`router`]) on port 0.

pub mod api;
pub mod auth;
pub mod cli;
pub mod state;

use anyhow::Context as _;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use api::{router, router_with};
pub use auth::Auth;
pub use state::{ApplyError, NodeState};

/// Runs one parsed subcommand of `arch-node`.
pub async fn run(command: cli::Command) -> anyhow::Result<()> {
    match command {
        cli::Command::Serve(args) => serve(args).await,
        cli::Command::CheckConfig(args) => check_config(&args),
        cli::Command::Fingerprint(args) => {
            println!("{}", args.fingerprint()?);
            Ok(())
        }
    }
}

/// Validates a config file the way `POST /v1/configs` would.
pub fn check_config(args: &cli::CheckConfigArgs) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let config = xray::Config::from_json(&bytes)?;
    println!("ok: version {}", config.version());
    Ok(())
}

/// `arch-node serve`: checks the flags and opens the token store and the certificate, binds the
/// API, opens the state in the data dir, serves until SIGINT or SIGTERM, then flushes the
/// counters.
pub async fn serve(args: cli::ServeArgs) -> anyhow::Result<()> {
    let settings = args.resolve()?;
    // Shown before binding: a start that fails later must not swallow a token stored as a hash.
    if let auth::Opened::Generated(token) = &settings.token {
        println!(
            "arch-node: generated API token (not stored, it will not be shown again; to get a new one, delete {} and restart): {}",
            settings.data_dir.join(auth::TOKEN_STATE_FILE).display(),
            token.expose()
        );
    }
    match &settings.tls {
        Some(tls) if tls.created => println!(
            "arch-node: TLS certificate fingerprint (SHA-256): {}",
            tls.fingerprint
        ),
        Some(_) => {}
        None => tracing::warn!(
            "--insecure-http: the node API is plain HTTP; the token and every user's key cross the network in clear text"
        ),
    }
    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("binding the node API on {}", settings.listen))?;
    let state = Arc::new(NodeState::open(&settings.data_dir, settings.bind).await?);
    let local = listener.local_addr()?;
    match &settings.tls {
        Some(tls) => tracing::info!(
            listen = %local,
            epoch = %state.epoch(),
            tls = true,
            fingerprint = %tls.fingerprint,
            "arch-node serving"
        ),
        None => {
            tracing::info!(listen = %local, epoch = %state.epoch(), tls = false, "arch-node serving")
        }
    }
    println!("arch-node listening on {local}");

    let cancel = CancellationToken::new();
    tokio::spawn(daemon::shutdown_signal(cancel.clone()));
    let tls = settings.tls.map(|t| t.config);
    serve_on(listener, state, settings.auth, settings.http, tls, cancel).await
}

/// Serves the node API of `state` on `listener` until `cancel`: HTTPS with `tls`, else plain
/// HTTP; calls are authorised by `auth`. Keeps the replay filter on disk meanwhile; then closes
/// the data plane and writes the counters journal clean, so the next start continues the epoch.
pub async fn serve_on(
    listener: TcpListener,
    state: Arc<NodeState>,
    auth: Arc<Auth>,
    limits: daemon::http::Limits,
    tls: Option<Arc<rustls::ServerConfig>>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let replay_keeper = tokio::spawn(state.replay_file().keep(cancel.clone()));
    let app = router_with(state.clone(), auth);
    let served = daemon::http::serve(listener, app, limits, tls, cancel.clone())
        .await
        .context("serving the node API");
    cancel.cancel();
    tracing::info!("node API stopped; closing the data plane");
    if let Err(e) = replay_keeper.await {
        tracing::warn!(error = %e, "replay filter task failed");
    }
    state.shutdown().await?;
    tracing::info!("counters flushed; bye");
    served
}
