//! Test harness: free ports, a counting HTTP server, a UDP echo server, client processes, curl.

use std::net::{SocketAddr, TcpListener as StdTcpListener, UdpSocket as StdUdpSocket};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::process::{Child, Command};
use xray::{Client, Config, Inbound, Method, Network};

/// Base64 of `len` bytes of `byte`: an SS-2022 key.
pub fn key(byte: u8, len: usize) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(vec![byte; len])
}

/// A port free for both TCP and UDP on 127.0.0.1 (bounded retries).
pub fn free_port() -> u16 {
    for _ in 0..50 {
        let tcp = StdTcpListener::bind("127.0.0.1:0").expect("bind tcp");
        let port = tcp.local_addr().expect("addr").port();
        if StdUdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port found");
}

/// Finds a client binary; `None` only when interop tests are explicitly skipped.
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
    if std::env::var("ARCH_SKIP_INTEROP").as_deref() == Ok("1") {
        eprintln!("skipping: `{name}` not installed and ARCH_SKIP_INTEROP=1");
        return None;
    }
    panic!(
        "interop client `{name}` is not installed (apt-get install shadowsocks-libev for ss-local/ss-tunnel; \
         scripts/setup.sh installs sslocal into ~/.cargo/bin). Set ARCH_SKIP_INTEROP=1 to skip."
    );
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

/// One request the HTTP server saw: bytes received and bytes answered.
#[derive(Debug, Clone, Copy, Default)]
pub struct Exchange {
    pub request: u64,
    pub response: u64,
}

/// An HTTP server: `GET /N` answers N bytes; `GET /slow/N` answers N bytes at ~8 MB/s.
pub struct Http {
    pub port: u16,
    pub log: Arc<Mutex<Vec<Exchange>>>,
}

impl Http {
    pub async fn start() -> Http {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind http");
        let port = listener.local_addr().expect("addr").port();
        let log: Arc<Mutex<Vec<Exchange>>> = Arc::default();
        let l2 = log.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let log = l2.clone();
                tokio::spawn(async move { serve_http(s, log).await });
            }
        });
        Http { port, log }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Sum of everything exchanged so far.
    pub fn totals(&self) -> Exchange {
        let log = self.log.lock().expect("log");
        log.iter().fold(Exchange::default(), |a, e| Exchange {
            request: a.request + e.request,
            response: a.response + e.response,
        })
    }
}

async fn serve_http(mut s: TcpStream, log: Arc<Mutex<Vec<Exchange>>>) {
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
        if req.len() > 16384 {
            return;
        }
    }
    let line = String::from_utf8_lossy(&req);
    let path = line.split_whitespace().nth(1).unwrap_or("/0").to_owned();
    let (slow, n) = match path.strip_prefix("/slow/") {
        Some(n) => (true, n.parse::<usize>().unwrap_or(0)),
        None => (
            false,
            path.trim_start_matches('/').parse::<usize>().unwrap_or(0),
        ),
    };
    let header = format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\nConnection: close\r\n\r\n");
    // Logged before answering: curl may exit (and the test read the log) as soon as the last
    // byte arrives, before this task would get to record it.
    log.lock().expect("log").push(Exchange {
        request: req.len() as u64,
        response: (header.len() + n) as u64,
    });
    if s.write_all(header.as_bytes()).await.is_err() {
        return;
    }
    let chunk = vec![b'x'; 64 * 1024];
    let mut left = n;
    while left > 0 {
        let k = left.min(chunk.len());
        if s.write_all(&chunk[..k]).await.is_err() {
            break;
        }
        left -= k;
        if slow {
            tokio::time::sleep(Duration::from_millis(8)).await;
        }
    }
    let _ = s.shutdown().await;
}

/// A UDP echo server on 127.0.0.1; returns its port.
pub async fn udp_echo() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
    let port = s.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        while let Ok((n, peer)) = s.recv_from(&mut buf).await {
            let _ = s.send_to(&buf[..n], peer).await;
        }
    });
    port
}

/// A client process, killed on drop.
pub struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.start_kill();
    }
}

/// Starts `bin args…` and waits (bounded) until it accepts TCP on `wait_port` (if given).
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
    } else {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Proc(child)
}

/// `ss-local` for one user of a classic port; returns the process and its SOCKS port.
pub async fn ss_local(server: u16, method: &str, password: &str) -> Option<(Proc, u16)> {
    let bin = client_bin("ss-local")?;
    let local = free_port();
    let args = [
        "-s",
        "127.0.0.1",
        "-p",
        &server.to_string(),
        "-k",
        password,
        "-m",
        method,
        "-b",
        "127.0.0.1",
        "-l",
        &local.to_string(),
    ]
    .map(String::from);
    Some((spawn(&bin, &args, Some(local)).await, local))
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

/// Result of one curl run.
#[derive(Debug)]
pub struct Fetch {
    pub code: i32,
    pub bytes: u64,
}

/// `curl --socks5-hostname` through `socks` to `url`, bounded by `max_time` seconds.
pub async fn curl(socks: u16, url: &str, max_time: u32) -> Fetch {
    let out = Command::new("curl")
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

/// Installs a log subscriber once (RUST_LOG controls it).
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}
