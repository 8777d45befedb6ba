//! Engine-specific helpers on top of the shared harness (`testkit`): configs and counters.

use std::net::SocketAddr;
pub use testkit::clients::{
    client_bin, curl, spawn, ss_local, ss_tunnel_udp, sslocal, wait_udp_bound,
};
pub use testkit::configs::{direct_config, inbound, key};
pub use testkit::net::{echo_through, free_port, tcp_server_side, udp_echo, Http};
pub use testkit::procs::wait_until;
pub use testkit::{init_logs, settle};

/// `user_traffic`, once it has reached `want` (or after 2 s): UDP counters are bumped right
/// after each send, so the last echo can arrive a moment before it is counted.
pub async fn settled_user_traffic(e: &engine::Engine, email: &str, want: (u64, u64)) -> (u64, u64) {
    testkit::settle(&want, std::time::Duration::from_secs(2), || async {
        user_traffic(e, email)
    })
    .await
}

/// A counter's value (0 when absent).
pub fn counter(e: &engine::Engine, name: &str) -> u64 {
    e.counters().get(name).copied().unwrap_or(0)
}

/// `user>>>{email}>>>traffic>>>uplink|downlink`.
pub fn user_traffic(e: &engine::Engine, email: &str) -> (u64, u64) {
    (
        counter(e, &format!("user>>>{email}>>>traffic>>>uplink")),
        counter(e, &format!("user>>>{email}>>>traffic>>>downlink")),
    )
}

/// Local socket address on 127.0.0.1.
pub fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}
