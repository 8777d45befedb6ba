//! Process plumbing shared by the two binaries, `arch-manager` and `arch-node`: logging set-up,
//! the shutdown signal (SIGINT / SIGTERM), the exit status of a command, HTTP serving with
//! resource limits ([`http`]), private files and directories ([`fs`]) and the node channel's TLS:
//! certificates, pinning, configurations ([`tls`]). It knows nothing of the data plane or the
//! database.

pub mod fs;
pub mod http;
pub mod tls;

use std::process::ExitCode;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// The log filter for `spec` (tracing env-filter syntax), or `info` with a warning on stderr
/// when `spec` does not parse: a typo in `--log` must not silence the process.
pub fn log_filter(program: &str, spec: &str) -> EnvFilter {
    EnvFilter::try_new(spec).unwrap_or_else(|e| {
        eprintln!("{program}: ignoring the log filter {spec:?} ({e}); logging at info");
        EnvFilter::new("info")
    })
}

/// Sends logs to stderr, filtered by `spec` (see [`log_filter`]).
pub fn init_tracing(program: &str, spec: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(log_filter(program, spec))
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();
}

/// Waits for SIGINT or SIGTERM, then cancels `cancel`.
pub async fn shutdown_signal(cancel: CancellationToken) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutdown requested");
    cancel.cancel();
}

/// The exit status of a command: success, or its error chain on stderr and failure.
pub fn exit_code(program: &str, result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{program}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_log_filter_falls_back_to_info() {
        assert_eq!(
            log_filter("t", "manager=debug").to_string(),
            "manager=debug"
        );
        assert_eq!(log_filter("t", "a=b=c").to_string(), "info");
    }

    #[tokio::test]
    async fn sigterm_cancels_the_token() {
        let cancel = CancellationToken::new();
        let waiter = tokio::spawn(shutdown_signal(cancel.clone()));
        // Let the handler install before the signal is raised.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let pid = std::process::id().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success());
        tokio::time::timeout(std::time::Duration::from_secs(5), cancel.cancelled())
            .await
            .expect("token cancelled after SIGTERM");
        waiter.await.expect("join");
    }
}
