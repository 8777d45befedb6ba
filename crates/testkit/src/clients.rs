//! Independent Shadowsocks clients (`ss-local` from shadowsocks-libev, `sslocal` from
//! shadowsocks-rust) and `curl` through their SOCKS5 ports.

use crate::net::{free_port, LOCALHOST};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// The one rule for a missing client binary (`ss-local`, `ss-tunnel`, `sslocal`, `curl`): the
/// test fails, saying how to install it. Only the explicit opt-out `ARCH_SKIP_INTEROP=1` (which
/// CI never sets) turns it into a skip: then this returns `None` and the test returns early.
pub const SKIP_INTEROP_VAR: &str = "ARCH_SKIP_INTEROP";

/// Finds a client binary; `None` only when interop tests are explicitly skipped
/// ([`SKIP_INTEROP_VAR`]`=1`), otherwise a missing binary panics with how to install it.
pub fn client_bin(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    dirs.push(PathBuf::from("/usr/bin"));
    if let Some(found) = dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file()) {
        return Some(found);
    }
    if std::env::var(SKIP_INTEROP_VAR).as_deref() == Ok("1") {
        eprintln!("skipping: `{name}` not installed and {SKIP_INTEROP_VAR}=1");
        return None;
    }
    panic!(
        "interop client `{name}` is not installed (apt-get install shadowsocks-libev for ss-local/ss-tunnel, \
         curl for curl; scripts/setup.sh installs sslocal into ~/.cargo/bin). Set {SKIP_INTEROP_VAR}=1 to skip."
    );
}

/// A client process, killed on drop.
pub struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.start_kill();
    }
}

/// Starts `bin args…` and, with `wait_port`, waits (bounded) until it accepts TCP on
/// 127.0.0.1:`wait_port`; without, returns at once (the caller waits for its own sign).
pub async fn spawn(bin: &PathBuf, args: &[String], wait_port: Option<u16>) -> Proc {
    let child = Command::new(bin)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    if let Some(port) = wait_port {
        for _ in 0..100 {
            if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Proc(child)
}

/// `ss-local` for one user of the server at 127.0.0.1:`server`; returns the process and its
/// SOCKS port.
pub async fn ss_local(server: u16, method: &str, password: &str) -> Option<(Proc, u16)> {
    ss_local_at(LOCALHOST, server, method, password).await
}

/// The shadowsocks-libev options shared by `ss-local` and `ss-tunnel`: the server, the user's
/// method and password, and the local 127.0.0.1 port to listen on.
fn libev_args(host: IpAddr, server: u16, method: &str, password: &str, local: u16) -> Vec<String> {
    let (host, server, local) = (host.to_string(), server.to_string(), local.to_string());
    [
        "-s",
        &host,
        "-p",
        &server,
        "-k",
        password,
        "-m",
        method,
        "-b",
        "127.0.0.1",
        "-l",
        &local,
    ]
    .map(String::from)
    .to_vec()
}

/// `ss-local` for one user of the server at `host`:`server`.
pub async fn ss_local_at(
    host: IpAddr,
    server: u16,
    method: &str,
    password: &str,
) -> Option<(Proc, u16)> {
    let bin = client_bin("ss-local")?;
    let local = free_port();
    let args = libev_args(host, server, method, password, local);
    Some((spawn(&bin, &args, Some(local)).await, local))
}

/// `ss-tunnel -U` for one user of the classic server at 127.0.0.1:`server`, forwarding UDP from
/// its local port to 127.0.0.1:`target`; returns the process and that local UDP port.
pub async fn ss_tunnel_udp(
    server: u16,
    method: &str,
    password: &str,
    target: u16,
) -> Option<(Proc, u16)> {
    let bin = client_bin("ss-tunnel")?;
    let local = free_port();
    let mut args = libev_args(LOCALHOST, server, method, password, local);
    args.extend([
        "-L".to_owned(),
        format!("127.0.0.1:{target}"),
        "-U".to_owned(),
    ]);
    // UDP only: nothing to connect to, so wait (bounded) until the local UDP port is bound,
    // without sending anything that would be counted.
    let proc = spawn(&bin, &args, None).await;
    wait_udp_bound(local).await;
    Some((proc, local))
}

/// Waits (bounded: 5 s) until a UDP socket on this host is bound to `port`, e.g. a UDP-only
/// client's local port; panics if none is.
pub async fn wait_udp_bound(port: u16) {
    for _ in 0..100 {
        if udp_bound(port) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing bound UDP port {port} within 5 s");
}

/// Whether a UDP socket on this host is bound to `port` (from `/proc/net/udp` and `udp6`).
fn udp_bound(port: u16) -> bool {
    let needle = format!(":{port:04X}");
    ["/proc/net/udp", "/proc/net/udp6"].iter().any(|path| {
        std::fs::read_to_string(path).is_ok_and(|table| {
            table.lines().skip(1).any(|line| {
                line.split_whitespace()
                    .nth(1)
                    .is_some_and(|local| local.ends_with(&needle))
            })
        })
    })
}

/// The parts of an `ss://` SIP002 link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsLink {
    pub method: String,
    pub password: String,
    pub host: String,
    pub port: u16,
}

/// Parses a SIP002 link as a client would: `ss://userinfo@host:port#tag`, userinfo being
/// base64url(`method:password`) or percent-encoded `method:password` (SS-2022).
pub fn parse_sip002(url: &str) -> Option<SsLink> {
    use base64::Engine as _;
    let rest = url.strip_prefix("ss://")?;
    let rest = rest.split('#').next()?;
    let (userinfo, server) = rest.rsplit_once('@')?;
    let decoded = if userinfo.contains(':') || userinfo.contains('%') {
        percent_encoding::percent_decode_str(userinfo)
            .decode_utf8()
            .ok()?
            .into_owned()
    } else {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(userinfo.trim_end_matches('='))
            .ok()?;
        String::from_utf8(bytes).ok()?
    };
    let (method, password) = decoded.split_once(':')?;
    let (host, port) = server.rsplit_once(':')?;
    Some(SsLink {
        method: method.to_owned(),
        password: password.to_owned(),
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        port: port.parse().ok()?,
    })
}

/// `ss-local` configured from a SIP002 link, as a user would set it up.
pub async fn ss_local_for(link: &str) -> Option<(Proc, u16)> {
    let l = parse_sip002(link).unwrap_or_else(|| panic!("not a SIP002 link: {link}"));
    let host: IpAddr = l.host.parse().expect("links in tests use IP addresses");
    ss_local_at(host, l.port, &l.method, &l.password).await
}

/// `sslocal` (shadowsocks-rust) SOCKS client; returns the process and its SOCKS port.
pub async fn sslocal(server: u16, method: &str, password: &str) -> Option<(Proc, u16)> {
    let bin = client_bin("sslocal")?;
    let local = free_port();
    let args = [
        "-b",
        &format!("127.0.0.1:{local}"),
        "-s",
        &format!("127.0.0.1:{server}"),
        "-m",
        method,
        "-k",
        password,
    ]
    .map(String::from);
    Some((spawn(&bin, &args, Some(local)).await, local))
}

/// Result of one curl run: its exit code (0 = success) and the body bytes received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fetch {
    pub code: i32,
    pub bytes: u64,
}

/// `curl --socks5-hostname` through 127.0.0.1:`socks` to `url`, bounded by `max_time` seconds.
/// Tests reach this only after starting a SOCKS client, so a missing `curl` fails them (the
/// opt-out already returned early when that client was missing).
pub async fn curl(socks: u16, url: &str, max_time: u32) -> Fetch {
    let bin = client_bin("curl").unwrap_or_else(|| PathBuf::from("curl"));
    let out = Command::new(bin)
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{size_download}",
            "--max-time",
        ])
        .arg(max_time.to_string())
        .arg("--socks5-hostname")
        .arg(format!("127.0.0.1:{socks}"))
        .arg(url)
        .output()
        .await
        .expect("run curl");
    Fetch {
        code: out.status.code().unwrap_or(-1),
        bytes: String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_udp_port_is_seen() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let port = socket.local_addr().expect("addr").port();
        assert!(udp_bound(port));
        drop(socket);
        assert!(!udp_bound(port));
    }

    #[test]
    fn sip002_links_parse_both_encodings() {
        // base64url("chacha20-ietf-poly1305:pw")
        let classic = "ss://Y2hhY2hhMjAtaWV0Zi1wb2x5MTMwNTpwdw@127.0.0.2:8004#a-remote-1";
        assert_eq!(
            parse_sip002(classic),
            Some(SsLink {
                method: "chacha20-ietf-poly1305".into(),
                password: "pw".into(),
                host: "127.0.0.2".into(),
                port: 8004,
            })
        );
        let ss2022 = "ss://2022-blake3-aes-128-gcm:a%2Bb%3D@[::1]:9#x";
        let l = parse_sip002(ss2022).expect("parses");
        assert_eq!((l.password.as_str(), l.host.as_str()), ("a+b=", "::1"));
        assert_eq!(parse_sip002("http://x"), None);
    }
}
