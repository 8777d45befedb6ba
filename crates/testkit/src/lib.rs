//! Test harness shared by Arch's integration tests. Everything listens on loopback addresses
//! only, every wait is bounded, and every spawned process is killed when its handle drops.
//!
//! - [`net`]: free ports, a counting HTTP server, a UDP echo server;
//! - [`configs`]: SS-2022 keys, inbounds on 127.0.0.1, direct routing;
//! - [`clients`]: independent Shadowsocks clients (`ss-local`, `sslocal`) and `curl`;
//! - [`procs`]: the `arch-manager` / `arch-node` binaries and a small HTTP API client.

#![allow(clippy::unwrap_used)] // test code: a failed setup step should panic loudly

pub mod clients;
pub mod configs;
pub mod fault;
pub mod net;
pub mod procs;

/// Installs a log subscriber once (`RUST_LOG` controls it).
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Polls `f` every 20 ms until it returns `want` or `within` has passed, and returns the last
/// value (the caller asserts it equals `want`). For counters bumped right after a send: the
/// receiver can see a datagram a moment before the sender has counted it.
pub async fn settle<T, F, Fut>(want: &T, within: std::time::Duration, mut f: F) -> T
where
    T: PartialEq,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let deadline = std::time::Instant::now() + within;
    loop {
        let got = f().await;
        if &got == want || std::time::Instant::now() >= deadline {
            return got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
