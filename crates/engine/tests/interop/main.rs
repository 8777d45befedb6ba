//! Interop tests of the engine against independent Shadowsocks clients (shadowsocks-libev's
//! `ss-local` / `ss-tunnel`, shadowsocks-rust's `sslocal`), all on 127.0.0.1.
//!
//! A missing client binary fails the test with a clear message unless `ARCH_SKIP_INTEROP=1`.

mod support;

mod apply;
mod chain;
mod classic;
mod reverse;
mod security;
mod ss2022;
mod udp;
