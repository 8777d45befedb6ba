//! The `arch-manager` and `arch-node` binaries as child processes, and a small client for their
//! HTTP APIs.

use daemon::tls::Fingerprint;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Admin API token the manager is started with.
pub const ADMIN_TOKEN: &str = "integration-admin-token-0123456789";
/// API token nodes are started with.
pub const NODE_TOKEN: &str = "integration-node-token-0123456789";

/// Path of an Arch binary built in the same profile as the running test
/// (`target/<profile>/deps/<test>` → `target/<profile>/<name>`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build it first (cargo build -p server -p node, same profile as the tests)",
        path.display()
    );
    path
}

/// A child process killed (and reaped) on drop.
pub struct ArchProc(Child);

impl Drop for ArchProc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl ArchProc {
    /// Sends `sig` (`-TERM`, `-KILL`, …) and waits (at most 10 s) until the process exits.
    pub fn signal(&mut self, sig: &str) {
        let pid = self.0.id().to_string();
        let ok = Command::new("kill")
            .args([sig, &pid])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill {sig} {pid}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.0.try_wait().expect("wait").is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("process {pid} did not exit after {sig}");
    }
}

/// Starts `arch-node serve` with its API on `ip`:`port` over HTTPS (the certificate it
/// generates in `data` on first start; reach it with [`Api::node`]) and the token
/// [`NODE_TOKEN`]; `bind` replaces the data plane's wildcard listen address.
pub fn start_node(ip: IpAddr, port: u16, data: &Path, bind: Option<IpAddr>) -> ArchProc {
    spawn_node(ip, port, data, bind, &[])
}

/// Like [`start_node`] with the API over plain HTTP (`--insecure-http`): for tests that must see
/// what crosses the network without TLS.
pub fn start_insecure_node(ip: IpAddr, port: u16, data: &Path, bind: Option<IpAddr>) -> ArchProc {
    spawn_node(ip, port, data, bind, &["--insecure-http"])
}

fn spawn_node(
    ip: IpAddr,
    port: u16,
    data: &Path,
    bind: Option<IpAddr>,
    extra: &[&str],
) -> ArchProc {
    let mut cmd = Command::new(binary("arch-node"));
    cmd.arg("serve")
        .args(extra)
        .args(["--listen", &format!("{ip}:{port}"), "--data-dir"])
        .arg(data)
        .env("ARCH_NODE_TOKEN", NODE_TOKEN)
        .env("ARCH_NODE_LOG", "warn")
        .stdout(Stdio::null());
    if let Some(bind) = bind {
        cmd.args(["--bind", &bind.to_string()]);
    }
    ArchProc(cmd.spawn().expect("spawn arch-node"))
}

/// The fingerprint of the certificate a node keeps in its data dir `data`, once the node has
/// written it (waits at most 20 s).
pub async fn node_fingerprint(data: &Path) -> Fingerprint {
    let cert = data.join(daemon::tls::CERT_FILE);
    wait_until(
        "the node's certificate file",
        Duration::from_secs(20),
        || async { cert.exists() },
    )
    .await;
    Fingerprint::of_pem_file(&cert).expect("the node's certificate")
}

/// Starts `arch-manager serve` on 127.0.0.1:`port` with fast loops (pull every 500 ms, a node is
/// unavailable after 3 s without a pull, 1 s node request timeout).
pub fn start_manager(port: u16, data: &Path) -> ArchProc {
    let child = Command::new(binary("arch-manager"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data)
        .args([
            "--pull-interval",
            "500ms",
            "--pull-timeout",
            "3s",
            "--node-timeout",
            "1s",
        ])
        .env("ARCH_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("ARCH_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn arch-manager");
    ArchProc(child)
}

/// Polls `f` every 100 ms until it holds; panics after `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

/// A JSON client of one process's HTTP API.
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
}

impl Api {
    /// The API at `ip`:`port` over plain HTTP, authenticated with `token`.
    pub fn new(ip: IpAddr, port: u16, token: &str) -> Api {
        Api {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .no_proxy()
                .build()
                .expect("client"),
            base: format!("http://{ip}:{port}"),
            token: token.to_owned(),
        }
    }

    /// The API at `ip`:`port` over HTTPS, accepting only the certificate with `fingerprint`
    /// (TLS 1.3, as the manager connects), authenticated with `token`.
    pub fn pinned(ip: IpAddr, port: u16, fingerprint: Fingerprint, token: &str) -> Api {
        let (tls, _) = daemon::tls::pinned_client_config(Some(fingerprint)).expect("TLS config");
        let host = match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        };
        Api {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .no_proxy()
                .use_preconfigured_tls(tls)
                .build()
                .expect("client"),
            base: format!("https://{host}:{port}"),
            token: token.to_owned(),
        }
    }

    /// The API of the TLS node started at `ip`:`port` with data dir `data` (see [`start_node`]),
    /// pinned to the certificate the node wrote there.
    pub async fn node(ip: IpAddr, port: u16, data: &Path, token: &str) -> Api {
        Api::pinned(ip, port, node_fingerprint(data).await, token)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.request(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.request(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.request(Method::PUT, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.request(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> StatusCode {
        self.request(Method::DELETE, path, None).await.0
    }

    /// `method path` with `body` as JSON and this client's bearer token.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        self.request_as(method, path, &self.token, body).await
    }

    /// Like [`Api::request`] with another bearer token.
    pub async fn request_as(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            req = req.json(body);
        }
        let r = req.send().await.expect("request");
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Does anything answer HTTP here?
    pub async fn up(&self) -> bool {
        self.http
            .get(format!("{}/", self.base))
            .send()
            .await
            .is_ok()
    }

    /// Value of counter `name` in this node's `GET /v1/stats` (0 when absent).
    pub async fn counter(&self, name: &str) -> u64 {
        let (st, stats) = self.get("/v1/stats").await;
        assert_eq!(st, StatusCode::OK, "{stats}");
        stats
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["name"] == name)
            .and_then(|s| s["value"].as_u64())
            .unwrap_or(0)
    }
}
