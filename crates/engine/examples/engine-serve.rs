//! `engine-serve <config.json>`: runs one engine in its own process until SIGINT/SIGTERM.
//!
//! Used by the benchmark (so the server's CPU time can be read from /proc) and handy for manual
//! interop checks. Prints `ready` on stdout once the config is applied.

use anyhow::Context as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let path = std::env::args()
        .nth(1)
        .context("usage: engine-serve <config.json>")?;
    let bytes = std::fs::read(&path).with_context(|| format!("reading {path}"))?;
    let config = xray::Config::from_json(&bytes).with_context(|| format!("parsing {path}"))?;
    let engine = engine::Engine::new();
    engine.apply(&config).await.context("applying the config")?;
    println!("ready");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    engine.shutdown().await;
    Ok(())
}
