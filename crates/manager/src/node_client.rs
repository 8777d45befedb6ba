//! HTTP client for the node API. Every call has a timeout and a response size cap. When a node
//! cannot be reached directly and a proxy fallback is configured, the call is retried through the
//! proxy and the result says so (the node is then `dirty`).
//!
//! Failures are a [`ClientError`] that keeps its cause (the transport error, the JSON error, the
//! node's status) typed; its `Display` is the line stored as a node's `last_error`, and
//! [`ClientError::summary`] is the short message shown when a node is added.

use reqwest::{header, Client, Method, StatusCode};
use std::sync::Mutex;
use std::time::Duration;
use xray::api::{ApiError, ConfigState, NodeInfo, Stat, CONFIG_VERSION_HEADER, EPOCH_HEADER};

/// Largest node answer we read (stats of many thousands of users fit easily).
const MAX_RESPONSE: usize = 32 << 20;

/// How a call reached the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Direct,
    Proxy,
}

/// Why a node call failed. The transport variants keep the `reqwest::Error` itself (typed, for
/// callers that ask `is_timeout()` / `is_connect()`) and print its whole cause chain in one line,
/// so they do not also report it as `source()` (a `{:#}` chain would print it twice).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The HTTP client could not be built (no usable TLS backend, …).
    #[error("building the node client failed: {}", describe(.0))]
    Build(reqwest::Error),
    /// The proxy fallback URL is not usable.
    #[error("unreachable: bad proxy: {}", describe(.0))]
    BadProxy(reqwest::Error),
    /// Connection refused, timed out, DNS, proxy failure…
    #[error("unreachable: {}", describe(.0))]
    Unreachable(reqwest::Error),
    /// Unreachable directly and through the proxy fallback.
    #[error("unreachable: {}; through proxy: {}", describe(.direct), describe(.proxied))]
    UnreachableViaProxy {
        direct: reqwest::Error,
        proxied: reqwest::Error,
    },
    #[error("the node rejected the token")]
    Unauthorized,
    /// The node answered with an error status; `message` is its error text (shortened).
    #[error("node answered {status}: {message}")]
    Rejected { status: u16, message: String },
    #[error("bad answer from node: {0}")]
    BadResponse(#[source] BadResponse),
}

/// What was wrong with an answer that arrived.
#[derive(Debug, thiserror::Error)]
pub enum BadResponse {
    #[error("no epoch header")]
    NoEpoch,
    #[error("answer too large")]
    TooLarge,
    #[error("{0}")]
    Json(#[source] serde_json::Error),
    #[error("health check answered {0}")]
    HealthStatus(StatusCode),
}

impl ClientError {
    /// One short sentence of Arch's own about the failure, for whoever is adding the node:
    /// nothing the address answered is echoed.
    pub fn summary(&self) -> String {
        match self {
            ClientError::Build(_) => "the manager could not set up its node client".into(),
            ClientError::BadProxy(_) => "the proxy fallback URL is not usable".into(),
            ClientError::Unreachable(_) | ClientError::UnreachableViaProxy { .. } => {
                "connection refused or timed out".into()
            }
            ClientError::Unauthorized => "the node rejected the token".into(),
            ClientError::Rejected { status, .. } => format!("the address answered HTTP {status}"),
            ClientError::BadResponse(_) => "the address answered, but not as an Arch node".into(),
        }
    }
}

/// One pull: the counters and what identifies them.
#[derive(Debug, Clone)]
pub struct StatsReply {
    pub epoch: String,
    pub config_version: Option<String>,
    pub stats: Vec<Stat>,
}

/// Shared client for all nodes (connection pooling), plus a cached client for the proxy.
pub struct NodeClient {
    direct: Client,
    proxied: Mutex<Option<(String, Client)>>,
    timeout: Duration,
}

impl NodeClient {
    /// A client whose every call times out after `timeout`. Fails (rather than falling back to
    /// a client without timeouts) when the HTTP client cannot be built.
    pub fn new(timeout: Duration) -> Result<NodeClient, ClientError> {
        Ok(NodeClient {
            direct: build(None, timeout)?,
            proxied: Mutex::new(None),
            timeout,
        })
    }

    fn via_proxy(&self, proxy: &str) -> Result<Client, ClientError> {
        let mut guard = self.proxied.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((url, client)) = guard.as_ref() {
            if url == proxy {
                return Ok(client.clone());
            }
        }
        let client = build(Some(proxy), self.timeout)?;
        *guard = Some((proxy.to_owned(), client.clone()));
        Ok(client)
    }

    /// Sends one request directly, then through `proxy` if the node was unreachable.
    async fn call(
        &self,
        method: Method,
        url: &str,
        token: &str,
        body: Option<Vec<u8>>,
        proxy: &str,
    ) -> Result<(Route, reqwest::Response), ClientError> {
        let first = send(&self.direct, method.clone(), url, token, body.clone()).await;
        match first {
            Err(ClientError::Unreachable(direct)) if !proxy.is_empty() => {
                let client = self.via_proxy(proxy)?;
                match send(&client, method, url, token, body).await {
                    Ok(r) => Ok((Route::Proxy, r)),
                    Err(ClientError::Unreachable(proxied)) => {
                        Err(ClientError::UnreachableViaProxy { direct, proxied })
                    }
                    Err(e) => Err(e),
                }
            }
            other => other.map(|r| (Route::Direct, r)),
        }
    }

    /// `POST /v1/configs`.
    pub async fn push(
        &self,
        base: &str,
        token: &str,
        config: Vec<u8>,
        proxy: &str,
    ) -> Result<(Route, ConfigState), ClientError> {
        let (route, resp) = self
            .call(
                Method::POST,
                &format!("{base}/v1/configs"),
                token,
                Some(config),
                proxy,
            )
            .await?;
        Ok((route, json(resp).await?))
    }

    /// `GET /v1/stats`.
    pub async fn stats(
        &self,
        base: &str,
        token: &str,
        proxy: &str,
    ) -> Result<(Route, StatsReply), ClientError> {
        let (route, resp) = self
            .call(Method::GET, &format!("{base}/v1/stats"), token, None, proxy)
            .await?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let epoch = header(EPOCH_HEADER)
            .filter(|e| !e.is_empty())
            .ok_or(ClientError::BadResponse(BadResponse::NoEpoch))?;
        let config_version = header(CONFIG_VERSION_HEADER).filter(|v| !v.is_empty());
        let stats: Vec<Stat> = json(resp).await?;
        Ok((
            route,
            StatsReply {
                epoch,
                config_version,
                stats,
            },
        ))
    }

    /// `GET /` without a token: is a node API listening there at all?
    pub async fn health(&self, base: &str) -> Result<(), ClientError> {
        let resp = self
            .direct
            .get(format!("{base}/"))
            .send()
            .await
            .map_err(ClientError::Unreachable)?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(ClientError::BadResponse(BadResponse::HealthStatus(
                resp.status(),
            )))
        }
    }

    /// `GET /v1/info`, directly only: used for the connection check when a node is added.
    pub async fn info(&self, base: &str, token: &str) -> Result<NodeInfo, ClientError> {
        let resp = send(
            &self.direct,
            Method::GET,
            &format!("{base}/v1/info"),
            token,
            None,
        )
        .await?;
        json(resp).await
    }
}

fn build(proxy: Option<&str>, timeout: Duration) -> Result<Client, ClientError> {
    let mut b = Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("arch-manager/", env!("CARGO_PKG_VERSION")));
    b = match proxy {
        Some(p) => b.proxy(reqwest::Proxy::all(p).map_err(ClientError::BadProxy)?),
        None => b.no_proxy(),
    };
    b.build().map_err(ClientError::Build)
}

async fn send(
    client: &Client,
    method: Method,
    url: &str,
    token: &str,
    body: Option<Vec<u8>>,
) -> Result<reqwest::Response, ClientError> {
    let mut req = client.request(method, url).bearer_auth(token);
    if let Some(b) = body {
        req = req.header(header::CONTENT_TYPE, "application/json").body(b);
    }
    let resp = req.send().await.map_err(ClientError::Unreachable)?;
    match resp.status() {
        s if s.is_success() => Ok(resp),
        StatusCode::UNAUTHORIZED => Err(ClientError::Unauthorized),
        s => {
            let status = s.as_u16();
            let bytes = read_limited(resp).await.unwrap_or_default();
            let message = match serde_json::from_slice::<ApiError>(&bytes) {
                Ok(ApiError {
                    error,
                    path: Some(p),
                }) => format!("{error} (at `{p}`)"),
                Ok(ApiError { error, path: None }) => error,
                Err(_) => String::from_utf8_lossy(&bytes).chars().take(200).collect(),
            };
            // One line in logs and in the panel, whatever the node sent.
            let message = message
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            Err(ClientError::Rejected { status, message })
        }
    }
}

/// A transport error with its causes, in one line ("timed out" for a timeout).
fn describe(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut s = if e.is_timeout() {
        "timed out".to_owned()
    } else {
        e.to_string()
    };
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

async fn read_limited(mut resp: reqwest::Response) -> Result<Vec<u8>, ClientError> {
    if resp
        .content_length()
        .is_some_and(|l| l > MAX_RESPONSE as u64)
    {
        return Err(ClientError::BadResponse(BadResponse::TooLarge));
    }
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(ClientError::Unreachable)? {
        if buf.len() + chunk.len() > MAX_RESPONSE {
            return Err(ClientError::BadResponse(BadResponse::TooLarge));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

async fn json<T: serde::de::DeserializeOwned>(resp: reqwest::Response) -> Result<T, ClientError> {
    let bytes = read_limited(resp).await?;
    serde_json::from_slice(&bytes).map_err(|e| ClientError::BadResponse(BadResponse::Json(e)))
}
