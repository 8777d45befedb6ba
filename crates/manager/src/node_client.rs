//! HTTP client for the node API. Every call has a timeout and a response size cap. When a node
//! cannot be reached directly and a proxy fallback is configured, the call is retried through the
//! proxy and the result says so (the node is then `dirty`).
//!
//! The channel to a node is TLS that accepts exactly the node's pinned certificate
//! ([`Channel::Pinned`], built with `daemon::tls::pinned_client_config`), also through the proxy
//! (the proxy only carries the TLS stream). A node presenting another certificate fails closed
//! with [`ClientError::CertificateChanged`]: the handshake fails before any request (no token, no
//! config) is sent, and the proxy is not tried. [`Channel::FirstUse`] accepts any certificate and
//! reports the one presented, for the caller to pin once the call succeeded; plain HTTP is only for
//! nodes an operator registered as such ([`Channel::Plain`]). Clients are cached per (pin, proxy),
//! so connections are pooled; a first-use call gets a client of its own, so what it reports was
//! presented to that call.
//!
//! For a node being rotated to a new token ([`Target::pending_token`]) every call settles the
//! rotation: a node that refuses the current token is asked again with the pending one; a node
//! that still takes the current token is asked once (`GET /v1/info`) whether it knows the pending
//! one. [`Reached::pending_token`] tells the caller to promote the pending token (the node now
//! takes only it) or to forget it (the node never got it). This is the one place where that
//! recovery happens.
//!
//! Failures are a [`ClientError`] that keeps its cause (the transport error, the JSON error, the
//! node's status) typed; its `Display` is the line stored as a node's `last_error`, and
//! [`ClientError::summary`] is the short message shown when a node is added.

use crate::entity::node;
use daemon::tls::{pinned_client_config, Fingerprint, PresentedFingerprint, TlsError};
use reqwest::{header, Client, Method, StatusCode};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use xray::api::{
    ApiError, ConfigState, NodeInfo, Stat, TokenRotation, CONFIG_VERSION_HEADER, EPOCH_HEADER,
    REFUSED_CALLS_HEADER, RESTART_PARAM,
};

/// Largest node answer we read (stats of many thousands of users fit easily).
const MAX_RESPONSE: usize = 32 << 20;
/// Cached clients kept at most (one per pin and proxy); the cache starts over beyond that.
const MAX_CACHED_CLIENTS: usize = 4096;

/// How a call reached the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Direct,
    Proxy,
}

/// How the channel to a node is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// Plain HTTP: only for a node the operator registered with `insecure_http`.
    Plain,
    /// TLS 1.3 accepting exactly the certificate with this SHA-256 fingerprint.
    Pinned(Fingerprint),
    /// TLS 1.3 accepting any certificate (trust on first use): the reply names the one presented.
    FirstUse,
}

/// One node as a call reaches it: where, over which channel, with which token(s).
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// `https://host:port` (or `http://` for [`Channel::Plain`]).
    pub base: String,
    pub channel: Channel,
    pub token: &'a str,
    /// A token being rotated in: tried when the node refuses `token`, probed when it does not.
    pub pending_token: Option<&'a str>,
}

impl<'a> Target<'a> {
    /// The target of a node row: its pin (first use when it has none yet), its tokens.
    pub fn of(n: &'a node::Model) -> Result<Target<'a>, ClientError> {
        let channel = match (&n.tls_fingerprint, n.insecure_http) {
            (_, true) => Channel::Plain,
            (Some(pin), false) => Channel::Pinned(pin.parse().map_err(ClientError::BadPin)?),
            (None, false) => Channel::FirstUse,
        };
        Ok(Target {
            base: n.base_url(),
            channel,
            token: &n.http_token,
            pending_token: n.pending_token.as_deref(),
        })
    }
}

/// How a successful call got through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reached {
    pub route: Route,
    /// For a [`Channel::FirstUse`] call: the certificate the node presented, to pin now.
    pub first_use: Option<Fingerprint>,
    /// What the call learned of [`Target::pending_token`] (`None`: nothing, or there is none).
    pub pending_token: Option<PendingToken>,
}

/// What a node made of the pending token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingToken {
    /// The node took it: from now on it takes only this one.
    Accepted,
    /// The node refused it while it took the current one: it never received it.
    Refused,
}

/// Why a node call failed. The transport variants keep the `reqwest::Error` itself (typed, for
/// callers that ask `is_timeout()` / `is_connect()`) and print its whole cause chain in one line,
/// so they do not also report it as `source()` (a `{:#}` chain would print it twice).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The HTTP client could not be built (no usable TLS backend, …).
    #[error("building the node client failed: {}", describe(.0))]
    Build(reqwest::Error),
    /// The TLS configuration of the node channel could not be built.
    #[error("building the node channel failed: {0}")]
    Tls(#[source] TlsError),
    /// The stored pin does not parse (the database was edited by hand).
    #[error("the stored certificate pin is not usable: {0}")]
    BadPin(#[source] TlsError),
    /// The proxy fallback URL is not usable.
    #[error("unreachable: bad proxy: {}", describe(.0))]
    BadProxy(reqwest::Error),
    /// The node presented another certificate than the pinned one: nothing was sent.
    #[error("certificate changed: pinned {pinned}, presented {presented}")]
    CertificateChanged {
        pinned: Fingerprint,
        presented: Fingerprint,
    },
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
}

impl ClientError {
    /// One short sentence of Arch's own about the failure, for whoever is adding the node:
    /// nothing the address answered is echoed.
    pub fn summary(&self) -> String {
        match self {
            ClientError::Build(_) | ClientError::Tls(_) => {
                "the manager could not set up its node client".into()
            }
            ClientError::BadPin(_) => "the stored certificate pin is not usable".into(),
            ClientError::BadProxy(_) => "the proxy fallback URL is not usable".into(),
            // Both fingerprints are the manager's own digests: nothing the address sent is echoed.
            ClientError::CertificateChanged { .. } => self.to_string(),
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
    /// The node's count of refused calls since it started (absent from older nodes).
    pub refused_calls: Option<u64>,
}

/// A client and what the servers it reached presented (`None` for plain HTTP).
#[derive(Clone)]
struct Pinned {
    client: Client,
    presented: Option<PresentedFingerprint>,
}

/// Cache key: the pin (`None` = plain HTTP) and the proxy (`None` = direct).
type Key = (Option<Fingerprint>, Option<String>);

/// Node API client: cached clients per (pin, proxy) for connection pooling.
pub struct NodeClient {
    clients: Mutex<HashMap<Key, Pinned>>,
    timeout: Duration,
}

impl NodeClient {
    /// A client whose every call times out after `timeout`. Fails (rather than falling back to
    /// a client without timeouts) when the HTTP client cannot be built.
    pub fn new(timeout: Duration) -> Result<NodeClient, ClientError> {
        let client = NodeClient {
            clients: Mutex::new(HashMap::new()),
            timeout,
        };
        // Prove now that clients can be built.
        client.client(Channel::FirstUse, None)?;
        Ok(client)
    }

    /// The client for `channel` through `proxy` (direct when `None`): cached for a pin or plain
    /// HTTP, new for a first-use call.
    fn client(&self, channel: Channel, proxy: Option<&str>) -> Result<Pinned, ClientError> {
        let key = match channel {
            Channel::FirstUse => return build(channel, proxy, self.timeout),
            Channel::Plain => (None, proxy.map(str::to_owned)),
            Channel::Pinned(pin) => (Some(pin), proxy.map(str::to_owned)),
        };
        let mut cache = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(found) = cache.get(&key) {
            return Ok(found.clone());
        }
        let built = build(channel, proxy, self.timeout)?;
        if cache.len() >= MAX_CACHED_CLIENTS {
            cache.clear();
        }
        cache.insert(key, built.clone());
        Ok(built)
    }

    /// Sends one request directly, then through `proxy` if the node was unreachable (never
    /// after a certificate mismatch).
    async fn call(
        &self,
        method: Method,
        target: &Target<'_>,
        path: &str,
        body: Option<Vec<u8>>,
        proxy: &str,
    ) -> Result<(Reached, reqwest::Response), ClientError> {
        let url = format!("{}{path}", target.base);
        let direct = self.client(target.channel, None)?;
        match send_with_tokens(&direct, method.clone(), &url, target, body.clone()).await {
            Err(ClientError::Unreachable(first)) if !proxy.is_empty() => {
                let via = self.client(target.channel, Some(proxy))?;
                match send_with_tokens(&via, method, &url, target, body).await {
                    Ok((pending, r)) => Ok((reached(Route::Proxy, &via, target, pending), r)),
                    Err(ClientError::Unreachable(proxied)) => {
                        Err(ClientError::UnreachableViaProxy {
                            direct: first,
                            proxied,
                        })
                    }
                    Err(e) => Err(e),
                }
            }
            Ok((pending, r)) => Ok((reached(Route::Direct, &direct, target, pending), r)),
            Err(e) => Err(e),
        }
    }

    /// `POST /v1/configs`; with `restart`, `POST /v1/configs?restart=true` (the node rebuilds
    /// everything from the config even when it runs that version already).
    pub async fn push(
        &self,
        target: &Target<'_>,
        config: Vec<u8>,
        proxy: &str,
        restart: bool,
    ) -> Result<(Reached, ConfigState), ClientError> {
        let path = if restart {
            format!("/v1/configs?{RESTART_PARAM}=true")
        } else {
            "/v1/configs".to_owned()
        };
        let (reached, resp) = self
            .call(Method::POST, target, &path, Some(config), proxy)
            .await?;
        Ok((reached, json(resp).await?))
    }

    /// `GET /v1/stats`.
    pub async fn stats(
        &self,
        target: &Target<'_>,
        proxy: &str,
    ) -> Result<(Reached, StatsReply), ClientError> {
        let (reached, resp) = self
            .call(Method::GET, target, "/v1/stats", None, proxy)
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
        let refused_calls = header(REFUSED_CALLS_HEADER).and_then(|v| v.trim().parse().ok());
        let stats: Vec<Stat> = json(resp).await?;
        Ok((
            reached,
            StatsReply {
                epoch,
                config_version,
                stats,
                refused_calls,
            },
        ))
    }

    /// `GET /v1/info`, directly only: the connection check, the first-use pin at registration,
    /// and the first call with a rotated token.
    pub async fn info(&self, target: &Target<'_>) -> Result<(Reached, NodeInfo), ClientError> {
        let (reached, resp) = self.call(Method::GET, target, "/v1/info", None, "").await?;
        Ok((reached, json(resp).await?))
    }

    /// `POST /v1/token` with `{"token": new_token}`, authorised by `target.token` alone: the
    /// node then accepts both tokens until the first call with the new one.
    pub async fn offer_token(
        &self,
        target: &Target<'_>,
        new_token: &str,
        proxy: &str,
    ) -> Result<Reached, ClientError> {
        let alone = Target {
            pending_token: None,
            ..target.clone()
        };
        let body = serde_json::to_vec(&TokenRotation {
            token: new_token.to_owned(),
        })
        .map_err(|e| ClientError::BadResponse(BadResponse::Json(e)))?;
        let (reached, _) = self
            .call(Method::POST, &alone, "/v1/token", Some(body), proxy)
            .await?;
        Ok(reached)
    }
}

fn reached(
    route: Route,
    client: &Pinned,
    target: &Target<'_>,
    pending: Option<PendingToken>,
) -> Reached {
    Reached {
        route,
        first_use: match target.channel {
            Channel::FirstUse => client
                .presented
                .as_ref()
                .and_then(PresentedFingerprint::get),
            _ => None,
        },
        pending_token: pending,
    }
}

fn build(channel: Channel, proxy: Option<&str>, timeout: Duration) -> Result<Pinned, ClientError> {
    let mut b = Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("arch-manager/", env!("CARGO_PKG_VERSION")));
    b = match proxy {
        Some(p) => b.proxy(reqwest::Proxy::all(p).map_err(ClientError::BadProxy)?),
        None => b.no_proxy(),
    };
    let pin = match channel {
        Channel::Plain => None,
        Channel::Pinned(pin) => Some(Some(pin)),
        Channel::FirstUse => Some(None),
    };
    let presented = match pin {
        None => None,
        Some(pin) => {
            let (config, handle) = pinned_client_config(pin).map_err(ClientError::Tls)?;
            b = b.use_preconfigured_tls(config);
            Some(handle)
        }
    };
    Ok(Pinned {
        client: b.build().map_err(ClientError::Build)?,
        presented,
    })
}

/// Sends with the current token; with a pending token, once more with it when the node refuses
/// the current one, or else one `GET /v1/info` with it alone to learn whether the node has it.
async fn send_with_tokens(
    client: &Pinned,
    method: Method,
    url: &str,
    target: &Target<'_>,
    body: Option<Vec<u8>>,
) -> Result<(Option<PendingToken>, reqwest::Response), ClientError> {
    let first = send(client, method.clone(), url, target.token, body.clone()).await;
    let Some(pending) = target.pending_token else {
        return first.map(|r| (None, r));
    };
    match first {
        Err(ClientError::Unauthorized) => {
            let resp = send(client, method, url, pending, body).await?;
            Ok((Some(PendingToken::Accepted), resp))
        }
        Ok(resp) => {
            let info = format!("{}/v1/info", target.base);
            let outcome = match send(client, Method::GET, &info, pending, None).await {
                Ok(_) => Some(PendingToken::Accepted),
                Err(ClientError::Unauthorized) => Some(PendingToken::Refused),
                Err(_) => None,
            };
            Ok((outcome, resp))
        }
        Err(e) => Err(e),
    }
}

async fn send(
    client: &Pinned,
    method: Method,
    url: &str,
    token: &str,
    body: Option<Vec<u8>>,
) -> Result<reqwest::Response, ClientError> {
    let mut req = client.client.request(method, url).bearer_auth(token);
    if let Some(b) = body {
        req = req.header(header::CONTENT_TYPE, "application/json").body(b);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| transport_error(e, client.presented.as_ref()))?;
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

/// A failed send: [`ClientError::CertificateChanged`] when the handshake refused the node's
/// certificate, [`ClientError::Unreachable`] otherwise.
fn transport_error(e: reqwest::Error, presented: Option<&PresentedFingerprint>) -> ClientError {
    match certificate_refusal(&e) {
        Some(Some((pinned, presented))) => ClientError::CertificateChanged { pinned, presented },
        // Refused, but the typed reason did not survive the chain: ask the configuration.
        Some(None) => match presented.and_then(PresentedFingerprint::mismatch) {
            Some(TlsError::CertificateChanged { pinned, presented }) => {
                ClientError::CertificateChanged { pinned, presented }
            }
            _ => ClientError::Unreachable(e),
        },
        None => ClientError::Unreachable(e),
    }
}

/// Whether rustls refused the server's certificate somewhere in `e`'s cause chain, and if so the
/// pinned and presented fingerprints when the refusal carries them. Only this call's own error
/// is read, so a refusal seen by another call on the same client never leaks into this one.
fn certificate_refusal(e: &reqwest::Error) -> Option<Option<(Fingerprint, Fingerprint)>> {
    use std::error::Error;
    fn from_rustls(err: &(dyn Error + 'static)) -> Option<Option<(Fingerprint, Fingerprint)>> {
        match err.downcast_ref::<rustls::Error>()? {
            rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) => {
                match other.0.downcast_ref::<TlsError>() {
                    Some(TlsError::CertificateChanged { pinned, presented }) => {
                        Some(Some((*pinned, *presented)))
                    }
                    _ => Some(None),
                }
            }
            rustls::Error::InvalidCertificate(_) => Some(None),
            _ => None,
        }
    }
    /// Depth-first through `source()` and through io::Errors' payloads, which `source()` skips
    /// (hyper wraps the TLS connector's io::Error, itself holding rustls' error, in another one).
    fn walk(
        err: &(dyn Error + 'static),
        depth: usize,
    ) -> Option<Option<(Fingerprint, Fingerprint)>> {
        if depth > 16 {
            return None;
        }
        if let Some(found) = from_rustls(err) {
            return Some(found);
        }
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if let Some(found) = walk(inner, depth + 1) {
                return Some(found);
            }
        }
        err.source().and_then(|next| walk(next, depth + 1))
    }
    walk(e, 0)
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
