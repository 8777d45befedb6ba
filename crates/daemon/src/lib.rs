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

/// Installs the SIGINT and SIGTERM handlers now, before returning, and gives a future that waits
/// for either signal and then cancels `cancel`. A signal raised after this call is never missed,
/// even if the future has not been polled yet. Call it within a Tokio runtime. A handler that
/// cannot be installed is logged, and that signal is not waited for.
pub fn shutdown_signal(
    cancel: CancellationToken,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{signal, Signal, SignalKind};
    let install = |kind: SignalKind, name: &'static str| match signal(kind) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(signal = name, error = %e, "cannot install the signal handler");
            None
        }
    };
    let mut interrupt = install(SignalKind::interrupt(), "SIGINT");
    let mut terminate = install(SignalKind::terminate(), "SIGTERM");
    async fn received(s: Option<&mut Signal>) {
        match s {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    }
    async move {
        tokio::select! {
            _ = received(interrupt.as_mut()) => {},
            _ = received(terminate.as_mut()) => {},
        }
        tracing::info!("shutdown requested");
        cancel.cancel();
    }
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
        // The handler is installed when `shutdown_signal` returns, before the task first runs.
        let waiter = tokio::spawn(shutdown_signal(cancel.clone()));
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
