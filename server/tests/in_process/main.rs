//! In-process integration tests of `arch-manager`: the manager (router, coordinator, temp SQLite)
//! and nodes (router and engine) served on port 0 on 127.0.0.1 inside the test process (see
//! [`support::TestApp`]), driven over HTTP. No prebuilt binaries are needed. `lifecycle` runs a manager with its
//! own data plane and a stock `ss-local` to see an expired user's session end. What needs real
//! processes (signals, restarts, the four modes over two nodes) stays in `processes.rs` and
//! `modes.rs`.

mod dashboard;
mod events;
mod lifecycle;
mod rest;
mod restart;
mod roles;
mod sessions;
mod subscription;
mod support;
mod tls;
