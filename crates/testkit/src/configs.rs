//! Xray configs for data-plane tests: SS-2022 keys, inbounds on 127.0.0.1, direct routing.

use xray::{Client, Config, Inbound, Method, Network, Rule};

/// Base64 of `len` bytes of `byte`: an SS-2022 key.
pub fn key(byte: u8, len: usize) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(vec![byte; len])
}

/// A classic or SS-2022 Shadowsocks inbound on 127.0.0.1 (TCP and UDP) with `users` as
/// `(email, password)`.
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
            .push(Rule::to_outbound(ib.tag.clone(), "out"));
    }
    c.inbounds = inbounds;
    c
}
