//! Data-plane benchmark (a documented command, not a test): see `scripts/bench.sh` and
//! `docs/performance.md`.
//!
//! * Throughput: `--gib` GiB over loopback, curl → sslocal → server → local HTTP source, for
//!   `arch-node` (its config pushed over `POST /v1/configs`, as the manager does) and `ssserver`,
//!   same cipher and client, runs interleaved. Reports MB/s and the server's CPU seconds per GiB
//!   from `/proc/<pid>/stat`. Both servers are built the same way: `scripts/bench.sh` builds
//!   `arch-node` with the `dist` profile (fat LTO, one codegen unit), as `ssserver`'s own release
//!   profile is.
//! * Handshake latency: sequential connections with the crate's client (connect → first response
//!   byte through an echo target) against ports with 1, 1 000 and 10 000 users, classic and SS-2022.
//!
//! Usage: `bench [--runs N] [--gib G] [--conns N] [--pin] [--skip-throughput] [--skip-handshake]`
//! (`bench --help` describes each flag).
//!
//! `--pin` (needs 2+ CPUs and `taskset`): servers run on CPU 0, the bench itself and every client
//! (sslocal, curl, the HTTP source) on CPU 1, so the servers' CPU time is measured on a core of
//! their own.

use anyhow::{bail, Context as _};
use base64::Engine as _;
use serde_json::json;
use shadowsocks::config::{ServerAddr, ServerConfig, ServerType};
use shadowsocks::context::Context;
use shadowsocks::crypto::CipherKind;
use shadowsocks::relay::socks5::Address;
use shadowsocks::relay::tcprelay::ProxyClientStream;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

/// Data-plane benchmark: arch-node vs ssserver throughput and CPU, and handshake latency by user
/// count (everything on 127.0.0.1; results as markdown tables on stdout).
#[derive(clap::Parser, Debug)]
#[command(name = "bench")]
struct Args {
    /// Throughput runs per server (interleaved).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    runs: u64,
    /// GiB downloaded per throughput run (fractions allowed, e.g. 0.25).
    #[arg(long, default_value_t = 1.0, value_parser = positive_gib)]
    gib: f64,
    /// Sequential connections per handshake measurement.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    conns: u64,
    /// Servers on CPU 0, the bench and every client on CPU 1 (needs 2+ CPUs and `taskset`).
    #[arg(long)]
    pin: bool,
    /// Skip the throughput comparison.
    #[arg(long)]
    skip_throughput: bool,
    /// Skip the handshake latency table.
    #[arg(long)]
    skip_handshake: bool,
}

/// A `--gib` value: a finite number above zero.
fn positive_gib(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(g) if g.is_finite() && g > 0.0 => Ok(g),
        _ => Err(format!("`{s}` is not a positive number of GiB")),
    }
}

struct Opts {
    runs: usize,
    bytes: u64,
    conns: usize,
    throughput: bool,
    handshake: bool,
    pin: bool,
}

/// The options from the command line; `--help`, `--version` and bad flags print and exit here.
fn opts() -> Opts {
    let a = <Args as clap::Parser>::parse();
    Opts {
        runs: usize::try_from(a.runs).unwrap_or(usize::MAX),
        bytes: (a.gib * (1u64 << 30) as f64) as u64,
        conns: usize::try_from(a.conns).unwrap_or(usize::MAX),
        throughput: !a.skip_throughput,
        handshake: !a.skip_handshake,
        pin: a.pin,
    }
}

fn find_bin(name: &str) -> anyhow::Result<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    // This example lives in target/<profile>/examples; arch-node in target/<profile>.
    let exe = std::env::current_exe()?;
    for dir in exe.ancestors().skip(1).take(2) {
        dirs.insert(0, dir.to_path_buf());
    }
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .with_context(|| {
            format!("`{name}` not found (run scripts/bench.sh / install shadowsocks-rust)")
        })
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn wait_port(port: u16) -> anyhow::Result<()> {
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("port {port} never opened")
}

/// CPU the servers run on with `--pin` (set once in `main`).
static SERVER_CPU: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

/// Starts a server process (on [`SERVER_CPU`] when pinning).
async fn spawn_server(bin: &Path, args: &[String], port: u16) -> anyhow::Result<Child> {
    match SERVER_CPU.get() {
        Some(cpu) => {
            let mut all = vec![
                "-c".to_owned(),
                (*cpu).to_owned(),
                bin.display().to_string(),
            ];
            all.extend_from_slice(args);
            spawn(Path::new("taskset"), &all, port).await
        }
        None => spawn(bin, args, port).await,
    }
}

async fn spawn(bin: &Path, args: &[String], port: u16) -> anyhow::Result<Child> {
    let child = Command::new(bin)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    wait_port(port).await?;
    Ok(child)
}

/// User + system CPU seconds of `pid` so far.
fn cpu_seconds(pid: u32, tick: f64) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = stat.rsplit_once(')').context("odd stat")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the command: state(0) ... utime is field 14 overall, i.e. index 11 here.
    let utime: f64 = f.get(11).context("utime")?.parse()?;
    let stime: f64 = f.get(12).context("stime")?.parse()?;
    Ok((utime + stime) / tick)
}

fn clock_tick() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// `GET /N` → N zero bytes, as fast as possible.
async fn http_source() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let port = l.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 8192 {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&req);
                let n: u64 = text
                    .split_whitespace()
                    .nth(1)
                    .and_then(|p| p.trim_start_matches('/').parse().ok())
                    .unwrap_or(0);
                let head =
                    format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\nConnection: close\r\n\r\n");
                if s.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let zeros = vec![0u8; 256 * 1024];
                let mut left = n;
                while left > 0 {
                    let k = left.min(zeros.len() as u64) as usize;
                    if s.write_all(&zeros[..k]).await.is_err() {
                        return;
                    }
                    left -= k as u64;
                }
                let _ = s.shutdown().await;
            });
        }
    });
    Ok(port)
}

/// An echo target for handshake timing.
async fn echo_target() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let port = l.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok(port)
}

fn b64(byte: u8, len: usize) -> String {
    base64::engine::general_purpose::STANDARD.encode(vec![byte; len])
}

fn user_key(i: usize, len: usize) -> String {
    let mut k = vec![0u8; len];
    k[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
    base64::engine::general_purpose::STANDARD.encode(k)
}

/// A node config with one inbound of `n` users; returns it and the last user's client password.
fn node_config(port: u16, method: &str, n: usize) -> (serde_json::Value, String) {
    let is_2022 = method.starts_with("2022");
    let key_len = if method.contains("128") { 16 } else { 32 };
    let ipsk = b64(0x42, key_len);
    let (server_pw, clients, client_pw) = if n == 0 {
        let pw = if is_2022 {
            ipsk.clone()
        } else {
            "bench-password".to_owned()
        };
        (pw.clone(), vec![], pw)
    } else {
        let pw = |i: usize| {
            if is_2022 {
                user_key(i, key_len)
            } else {
                format!("bench-user-{i}")
            }
        };
        let clients: Vec<_> = (0..n)
            .map(|i| json!({"email": format!("u{i}"), "password": pw(i)}))
            .collect();
        let last = pw(n - 1);
        let client_pw = if is_2022 {
            format!("{ipsk}:{last}")
        } else {
            last
        };
        (
            if is_2022 { ipsk.clone() } else { String::new() },
            clients,
            client_pw,
        )
    };
    let mut settings = json!({"method": method, "network": "tcp", "clients": clients});
    if !server_pw.is_empty() {
        settings["password"] = json!(server_pw);
    }
    let config = json!({
        "inbounds": [{"tag": "bench", "listen": "127.0.0.1", "port": port, "protocol": "shadowsocks", "settings": settings}],
        "outbounds": [{"tag": "out", "protocol": "freedom"}],
        "routing": {"rules": [{"inboundTag": ["bench"], "outboundTag": "out"}]}
    });
    (config, client_pw)
}

/// Token of the benchmark's `arch-node` API.
const NODE_TOKEN: &str = "bench-node-token-0123456789";

/// Starts `arch-node serve` (on [`SERVER_CPU`] when pinning) and pushes `config` to it through
/// `POST /v1/configs`, exactly as the manager would; returns once its data port `port` accepts.
async fn start_node(dir: &Path, config: &serde_json::Value, port: u16) -> anyhow::Result<Child> {
    let api = free_port()?;
    let data = dir.join(format!("node-{port}"));
    std::fs::create_dir_all(&data)?;
    let node = spawn_server(
        &find_bin("arch-node")?,
        &[
            "--log".into(),
            "warn".into(),
            "serve".into(),
            "--listen".into(),
            format!("127.0.0.1:{api}"),
            "--token".into(),
            NODE_TOKEN.into(),
            "--data-dir".into(),
            data.display().to_string(),
        ],
        api,
    )
    .await?;
    let path = dir.join(format!("config-{port}.json"));
    std::fs::write(&path, serde_json::to_vec(config)?)?;
    let out = Command::new("curl")
        .args(["-s", "-S", "--fail-with-body", "--max-time", "60", "-H"])
        .arg(format!("Authorization: Bearer {NODE_TOKEN}"))
        .args(["-H", "Content-Type: application/json", "--data-binary"])
        .arg(format!("@{}", path.display()))
        .arg(format!("http://127.0.0.1:{api}/v1/configs"))
        .output()
        .await?;
    if !out.status.success() {
        bail!(
            "arch-node refused the benchmark config: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    wait_port(port).await?;
    Ok(node)
}

async fn curl(socks: u16, url: &str) -> anyhow::Result<(u64, f64)> {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{size_download} %{time_total}",
            "--max-time",
            "300",
        ])
        .arg("--socks5-hostname")
        .arg(format!("127.0.0.1:{socks}"))
        .arg(url)
        .output()
        .await?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut it = text.split_whitespace();
    let size = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let secs = it.next().and_then(|s| s.parse().ok()).unwrap_or(f64::NAN);
    Ok((size, secs))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    v[v.len() / 2]
}

async fn throughput(o: &Opts, dir: &Path, tick: f64) -> anyhow::Result<()> {
    let http = http_source().await?;
    let sslocal = find_bin("sslocal")?;
    let ssserver = find_bin("ssserver")?;
    println!(
        "\n## Throughput: {} bytes per run, {} interleaved runs per server\n",
        o.bytes, o.runs
    );
    println!("| cipher | server | median MB/s | min–max MB/s | median server CPU s/GiB | MB/s ratio vs ssserver (median of per-run ratios) | CPU ratio |");
    println!("|---|---|---|---|---|---|---|");
    for method in [
        "aes-256-gcm",
        "chacha20-ietf-poly1305",
        "2022-blake3-aes-128-gcm",
    ] {
        let (pe, ps) = (free_port()?, free_port()?);
        let (config, pw) = node_config(pe, method, 0);
        let mut node = start_node(dir, &config, pe).await?;
        let mut server = spawn_server(
            &ssserver,
            &[
                "-s".into(),
                format!("127.0.0.1:{ps}"),
                "-m".into(),
                method.into(),
                "-k".into(),
                pw.clone(),
            ],
            ps,
        )
        .await?;
        let (le, ls) = (free_port()?, free_port()?);
        let client = |lp: u16, sp: u16| {
            vec![
                "-b".into(),
                format!("127.0.0.1:{lp}"),
                "-s".into(),
                format!("127.0.0.1:{sp}"),
                "-m".into(),
                method.into(),
                "-k".into(),
                pw.clone(),
            ]
        };
        let _ce = spawn(&sslocal, &client(le, pe), le).await?;
        let _cs = spawn(&sslocal, &client(ls, ps), ls).await?;
        let url = format!("http://127.0.0.1:{http}/{}", o.bytes);
        let gib = o.bytes as f64 / (1u64 << 30) as f64;
        let (mut rate, mut cpu) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
        let mut ratios = (Vec::new(), Vec::new());
        for _ in 0..o.runs {
            let mut this = [0.0f64; 2];
            let mut this_cpu = [0.0f64; 2];
            for (i, (pid, socks)) in [(node.id(), le), (server.id(), ls)].into_iter().enumerate() {
                let pid = pid.context("server exited")?;
                let before = cpu_seconds(pid, tick)?;
                let (size, secs) = curl(socks, &url).await?;
                let used = cpu_seconds(pid, tick)? - before;
                if size != o.bytes {
                    bail!(
                        "{method}: run through {} got {size} of {} bytes",
                        ["arch-node", "ssserver"][i],
                        o.bytes
                    );
                }
                this[i] = o.bytes as f64 / secs / 1e6;
                this_cpu[i] = used / gib;
                rate[i].push(this[i]);
                cpu[i].push(this_cpu[i]);
            }
            ratios.0.push(this[0] / this[1]);
            ratios.1.push(this_cpu[0] / this_cpu[1]);
        }
        for (i, name) in ["arch-node", "ssserver"].into_iter().enumerate() {
            let min = rate[i].iter().copied().fold(f64::INFINITY, f64::min);
            let max = rate[i].iter().copied().fold(0.0, f64::max);
            let (r, c) = (median(&mut rate[i].clone()), median(&mut cpu[i].clone()));
            let ratio = if i == 0 {
                (
                    format!("{:.2}", median(&mut ratios.0)),
                    format!("{:.2}", median(&mut ratios.1)),
                )
            } else {
                ("1.00".into(), "1.00".into())
            };
            println!(
                "| {method} | {name} | {r:.0} | {min:.0}–{max:.0} | {c:.3} | {} | {} |",
                ratio.0, ratio.1
            );
        }
        let _ = node.kill().await;
        let _ = server.kill().await;
    }
    Ok(())
}

async fn handshake(o: &Opts, dir: &Path) -> anyhow::Result<()> {
    let echo = echo_target().await?;
    println!(
        "\n## Handshake latency: {} sequential connections, last user's key\n",
        o.conns
    );
    println!("| method | users | first connection ms | p50 ms | p99 ms | mean ms |");
    println!("|---|---|---|---|---|---|");
    for method in ["aes-256-gcm", "2022-blake3-aes-128-gcm"] {
        for n in [1usize, 1000, 10000] {
            let port = free_port()?;
            let (config, pw) = node_config(port, method, n);
            let mut node = start_node(dir, &config, port).await?;
            let kind: CipherKind = method.parse().map_err(|_| anyhow::anyhow!("bad method"))?;
            let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse()?;
            let cfg = ServerConfig::new(ServerAddr::from(addr), pw, kind)?;
            let ctx = Context::new_shared(ServerType::Local);
            let target: std::net::SocketAddr = format!("127.0.0.1:{echo}").parse()?;
            let mut times = Vec::with_capacity(o.conns);
            for _ in 0..o.conns {
                let t0 = Instant::now();
                let mut s =
                    ProxyClientStream::connect(ctx.clone(), &cfg, Address::SocketAddress(target))
                        .await?;
                s.write_all(b"ping").await?;
                let mut b = [0u8; 4];
                tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut b)).await??;
                times.push(t0.elapsed().as_secs_f64() * 1e3);
            }
            let first = times[0];
            let mean = times.iter().sum::<f64>() / times.len() as f64;
            let mut sorted = times.clone();
            sorted.sort_by(|a, b| a.total_cmp(b));
            let p = |q: f64| sorted[((sorted.len() as f64 - 1.0) * q).round() as usize];
            println!(
                "| {method} | {n} | {first:.3} | {:.3} | {:.3} | {mean:.3} |",
                p(0.5),
                p(0.99)
            );
            let _ = node.kill().await;
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let o = opts();
    if o.pin {
        // Every thread of this process (and the clients it starts) on CPU 1; servers on CPU 0.
        let ok = std::process::Command::new("taskset")
            .args(["-a", "-cp", "1", &std::process::id().to_string()])
            .stdout(Stdio::null())
            .status()
            .context("running taskset")?
            .success();
        if !ok {
            bail!("taskset could not pin the bench to CPU 1 (needs 2+ CPUs)");
        }
        let _ = SERVER_CPU.set("0");
        println!("Pinned: servers on CPU 0; bench, sslocal, curl and the HTTP source on CPU 1.");
    }
    let dir = std::env::temp_dir().join(format!("arch-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let tick = clock_tick();
    if o.throughput {
        throughput(&o, &dir, tick).await?;
    }
    if o.handshake {
        handshake(&o, &dir).await?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
