//! Engine-specific helpers on top of the shared harness (`testkit`): configs and counters.

use std::net::SocketAddr;
pub use testkit::clients::{client_bin, curl, spawn, ss_local, sslocal};
pub use testkit::init_logs;
pub use testkit::net::{free_port, udp_echo, Http};
use xray::{Client, Config, Inbound, Method, Network};

/// Base64 of `len` bytes of `byte`: an SS-2022 key.
pub fn key(byte: u8, len: usize) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(vec![byte; len])
}

/// A classic or SS-2022 inbound on 127.0.0.1.
pub fn inbound(
    tag: &str,
    port: u16,
    method: Method,
    password: &str,
    users: &[(&str, &str)],
) -> Inbound {
    let clients = users
        .iter()
        .map(|(email, pw)| Client {
            email: (*email).into(),
            password: (*pw).into(),
            method: None,
        })
        .collect();
    let mut ib = Inbound::shadowsocks(tag, port, method, password, Network::TcpUdp, clients);
    ib.listen = "127.0.0.1".into();
    ib
}

/// A config with the given inbounds all routed to freedom `out`.
pub fn direct_config(inbounds: Vec<Inbound>) -> Config {
    let mut c = Config::skeleton("warning");
    for ib in &inbounds {
        c.routing
            .rules
            .push(xray::Rule::to_outbound(ib.tag.clone(), "out"));
    }
    c.inbounds = inbounds;
    c
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
