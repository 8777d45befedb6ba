//! `arch-node`: the node agent as a library. It serves the node API (`/v1/configs`, `/v1/stats`,
//! `/v1/info`) for the manager, runs the pushed config in the embedded engine, and keeps traffic
//! counters on disk so the manager can account them exactly once. It must not reach the
//! manager's database or know about users beyond what a config says.
//!
//! The binary (`src/main.rs`) parses the command line and calls [`run`]; tests start a node in
//! their own process with [`NodeState::open`] and [`serve_on`] (or [`router`]) on port 0.

pub mod api;
pub mod cli;
pub mod state;

use anyhow::Context as _;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use api::router;
pub use state::{ApplyError, NodeState};

/// Runs one parsed subcommand of `arch-node`.
pub async fn run(command: cli::Command) -> anyhow::Result<()> {
    match command {
        cli::Command::Serve(args) => serve(args).await,
        cli::Command::CheckConfig(args) => check_config(&args),
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

/// `arch-node serve`: binds the API, opens the state in the data dir, serves until SIGINT or
/// SIGTERM, then flushes the counters.
pub async fn serve(args: cli::ServeArgs) -> anyhow::Result<()> {
    let settings = args.resolve()?;
    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("binding the node API on {}", settings.listen))?;
    let state = Arc::new(NodeState::open(&settings.data_dir, settings.bind).await?);
    if settings.token_generated {
        println!(
            "arch-node: generated API token (stored in {}): {}",
            settings.token_file_hint, settings.token
        );
    }
    tracing::info!(listen = %listener.local_addr()?, epoch = %state.epoch(), "arch-node serving");
    println!("arch-node listening on {}", listener.local_addr()?);

    let cancel = CancellationToken::new();
    tokio::spawn(daemon::shutdown_signal(cancel.clone()));
    serve_on(listener, state, settings.token, settings.http, cancel).await
}

/// Serves the node API of `state` on `listener` (Bearer `token`) until `cancel`, keeping the
/// replay filter on disk meanwhile; then closes the data plane and writes the counters journal
/// clean, so the next start continues the epoch.
pub async fn serve_on(
    listener: TcpListener,
    state: Arc<NodeState>,
    token: String,
    limits: daemon::http::Limits,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let replay_keeper = tokio::spawn(state.replay_file().keep(cancel.clone()));
    let app = router(state.clone(), token);
    let served = daemon::http::serve(listener, app, limits, None, cancel.clone())
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
