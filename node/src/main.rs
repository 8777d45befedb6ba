//! `arch-node`: the node agent. It serves the node API (`/v1/configs`, `/v1/stats`, `/v1/info`)
//! for the manager, runs the pushed config in the embedded engine, and keeps traffic counters on
//! disk so the manager can account them exactly once. It must not reach the manager's database or
//! know about users beyond what a config says.

mod api;
mod cli;
mod state;

use anyhow::Context as _;
use clap::Parser as _;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    daemon::init_tracing("arch-node", &cli.log);
    let result = match cli.command {
        cli::Command::Serve(args) => serve(args).await,
        cli::Command::CheckConfig(args) => check_config(args),
    };
    daemon::exit_code("arch-node", result)
}

/// Validates a config file the way `POST /v1/configs` would.
fn check_config(args: cli::CheckConfigArgs) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let config = xray::Config::from_json(&bytes)?;
    println!("ok: version {}", config.version());
    Ok(())
}

async fn serve(args: cli::ServeArgs) -> anyhow::Result<()> {
    let settings = args.resolve()?;
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("binding the node API on {}", settings.listen))?;
    let state = Arc::new(state::NodeState::open(&settings.data_dir, settings.bind).await?);
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
    tokio::spawn(state.replay_file().keep(cancel.clone()));
    let app = api::router(state.clone(), settings.token.clone());
    daemon::http::serve(listener, app, settings.http.clone(), cancel.clone())
        .await
        .context("serving the node API")?;
    tracing::info!("node API stopped; closing the data plane");
    state.shutdown().await?;
    tracing::info!("counters flushed; bye");
    Ok(())
}
