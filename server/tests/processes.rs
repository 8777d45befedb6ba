//! Integration tests with real processes on 127.0.0.1: `arch-manager` and `arch-node` binaries
//! (build them first: `cargo build --release -p server -p node`, or the debug equivalents),
//! driven over their HTTP APIs.

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ADMIN_TOKEN: &str = "integration-admin-token-0123456789";
const NODE_TOKEN: &str = "integration-node-token-0123456789";

fn binary(name: &str) -> PathBuf {
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build it first (cargo build -p server -p node)",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    fn signal(&mut self, sig: &str) {
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

fn start_node(port: u16, data: &std::path::Path) -> Proc {
    let child = Command::new(binary("arch-node"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data)
        .env("ARCH_NODE_TOKEN", NODE_TOKEN)
        .env("ARCH_NODE_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn arch-node");
    Proc(child)
}

fn start_manager(port: u16, data: &std::path::Path) -> Proc {
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
    Proc(child)
}

async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut f: F)
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

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET");
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: &Value,
    ) -> (StatusCode, Value) {
        let r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request");
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn up(&self) -> bool {
        self.http
            .get(format!("{}/", self.base))
            .send()
            .await
            .is_ok()
    }
}

fn api(port: u16) -> Api {
    Api {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("client"),
        base: format!("http://127.0.0.1:{port}"),
    }
}

#[tokio::test]
async fn push_pull_health_and_node_api_guards() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mport, nport) = (free_port(), free_port());
    let mut node = start_node(nport, &dir.path().join("node"));
    let _manager = start_manager(mport, &dir.path().join("manager"));
    let (m, n) = (api(mport), api(nport));
    wait_until(
        "both processes to listen",
        Duration::from_secs(20),
        || async { m.up().await && n.up().await },
    )
    .await;

    // REST guards: no token → 401; unknown field → 400 naming it; nothing created.
    let (st, _) = m.get("/v1/nodes", "wrong-token-wrong-token").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, body) = m
        .send(
            reqwest::Method::POST,
            "/v1/nodes",
            ADMIN_TOKEN,
            &json!({"host": "127.0.0.1", "http_port": nport, "colour": "red"}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("colour"),
        "{body}"
    );
    let (_, list) = m.get("/v1/nodes", ADMIN_TOKEN).await;
    assert_eq!(list, json!([]));

    // Register the node: it gets pushed and pulled.
    let (st, created) = m
        .send(
            reqwest::Method::POST,
            "/v1/nodes",
            ADMIN_TOKEN,
            &json!({"host": "127.0.0.1", "http_port": nport, "http_token": NODE_TOKEN}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{created}");
    assert_eq!(
        created["http_token"], NODE_TOKEN,
        "the token is shown at creation"
    );
    let id = created["id"].as_i64().expect("id");
    let node_path = format!("/v1/nodes/{id}");
    wait_until(
        "push and pull to succeed",
        Duration::from_secs(15),
        || async {
            let (_, v) = m.get(&node_path, ADMIN_TOKEN).await;
            v["push_status"] == "available" && v["pull_status"] == "available"
        },
    )
    .await;
    let (_, record) = m.get(&node_path, ADMIN_TOKEN).await;
    assert!(
        record.get("http_token").is_none(),
        "the token is not shown again"
    );
    let (st, applied) = n.get("/v1/configs", NODE_TOKEN).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(applied["version"], record["applied_version"]);
    assert!(applied["metadata"]["updated_at"]
        .as_str()
        .is_some_and(|s| s.ends_with('Z')));
    let version = applied["version"].clone();

    // Node API guards: wrong token → 401 and the config is unchanged.
    let (st, _) = n
        .send(
            reqwest::Method::POST,
            "/v1/configs",
            "not-the-node-token-xx",
            &json!({"inbounds": []}),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = n.get("/v1/stats", "").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // Invalid config → 400 with the field path, config unchanged.
    let bad = json!({"inbounds": [{"tag": "x", "port": 0, "protocol": "shadowsocks",
        "settings": {"method": "aes-256-gcm", "password": "p", "network": "tcp"}}], "outbounds": []});
    let (st, body) = n
        .send(reqwest::Method::POST, "/v1/configs", NODE_TOKEN, &bad)
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(body["path"], "inbounds[0].port", "{body}");
    let (_, still) = n.get("/v1/configs", NODE_TOKEN).await;
    assert_eq!(still["version"], version);

    // Graceful restart keeps the counter epoch; the config survives.
    let (_, info) = n.get("/v1/info", NODE_TOKEN).await;
    let epoch = info["epoch"].clone();
    node.signal("-TERM");
    node = start_node(nport, &dir.path().join("node"));
    wait_until("node back", Duration::from_secs(10), || async {
        n.up().await
    })
    .await;
    let (_, info) = n.get("/v1/info", NODE_TOKEN).await;
    assert_eq!(info["epoch"], epoch, "a clean restart continues the epoch");
    assert_eq!(
        info["config_version"], version,
        "the saved config is applied at start"
    );

    // Killed: unavailable after the pull timeout (3 s); back: available again.
    node.signal("-KILL");
    wait_until(
        "pull status unavailable",
        Duration::from_secs(10),
        || async { m.get(&node_path, ADMIN_TOKEN).await.1["pull_status"] == "unavailable" },
    )
    .await;
    let _node = start_node(nport, &dir.path().join("node"));
    wait_until(
        "pull status available again",
        Duration::from_secs(15),
        || async {
            let (_, v) = m.get(&node_path, ADMIN_TOKEN).await;
            v["pull_status"] == "available" && v["push_status"] == "available"
        },
    )
    .await;
    let (_, info) = n.get("/v1/info", NODE_TOKEN).await;
    assert_ne!(info["epoch"], epoch, "a crash starts a new epoch");
}

#[tokio::test]
async fn rest_users_and_settings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mport = free_port();
    let _manager = start_manager(mport, dir.path());
    let m = api(mport);
    wait_until("manager to listen", Duration::from_secs(20), || async {
        m.up().await
    })
    .await;

    let (st, u) = m
        .send(
            reqwest::Method::POST,
            "/v1/users",
            ADMIN_TOKEN,
            &json!({"name": "alice", "quota_bytes": 1000}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{u}");
    let id = u["id"].as_i64().expect("id");
    let (st, e) = m
        .send(
            reqwest::Method::POST,
            "/v1/users",
            ADMIN_TOKEN,
            &json!({"name": "alice"}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert_eq!(e["field"], "name");
    let (st, e) = m
        .send(
            reqwest::Method::POST,
            "/v1/users",
            ADMIN_TOKEN,
            &json!({"name": 5}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(e["field"], "name");
    let (st, e) = m
        .send(
            reqwest::Method::PATCH,
            &format!("/v1/users/{id}"),
            ADMIN_TOKEN,
            &json!({"enabled": false}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{e}");
    assert_eq!(e["enabled"], false);
    assert_eq!(e["disabled_reason"], "manual");

    let (st, s) = m
        .send(
            reqwest::Method::PUT,
            "/v1/settings",
            ADMIN_TOKEN,
            &json!({"ss_direct_port": 9000, "ss_remote_port": 9000}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(s["field"], "ss_remote_port");
    let direct = free_port();
    let (st, s) = m
        .send(
            reqwest::Method::PUT,
            "/v1/settings",
            ADMIN_TOKEN,
            &json!({"ss_direct_port": direct, "host": "127.0.0.1"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{s}");
    let (st, links) = m.get(&format!("/v1/users/{id}/links"), ADMIN_TOKEN).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(links[0]["mode"], "direct");
    assert!(links[0]["url"]
        .as_str()
        .unwrap_or_default()
        .ends_with(&format!("@127.0.0.1:{direct}#alice-direct")));

    let r = m
        .http
        .delete(format!("{}/v1/users/{id}", m.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (st, _) = m.get(&format!("/v1/users/{id}"), ADMIN_TOKEN).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}
