//! The node API: `POST/GET /v1/configs`, `GET /v1/stats`, `GET /v1/info` and `POST /v1/token`
//! behind a Bearer token checked by [`Auth`] (constant time, rotation, refused calls counted and
//! logged); `GET /` answers health checks without auth. Bodies are size-limited.
//! `POST /v1/configs?restart=true` is the manual restart (see [`NodeState::restart`]).

use crate::auth::{Auth, Denied};
use crate::state::{ApplyError, NodeState};
use axum::extract::{ConnectInfo, DefaultBodyLimit, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use xray::api::{
    ApiError, NodeInfo, TokenRotation, CONFIG_VERSION_HEADER, EPOCH_HEADER, REFUSED_CALLS_HEADER,
    RESTART_PARAM,
};

/// Largest config accepted (tens of thousands of users fit).
const MAX_CONFIG_BYTES: usize = 16 << 20;
/// Largest `POST /v1/token` body: a token is at most 256 characters.
const MAX_TOKEN_BODY_BYTES: usize = 4 << 10;

#[derive(Clone)]
struct AppState {
    node: Arc<NodeState>,
    auth: Arc<Auth>,
}

/// The node API router accepting `token`, kept in memory only (a rotation lasts until the
/// process ends). A node started from the command line uses [`router_with`] and the store in
/// its data dir.
pub fn router(node: Arc<NodeState>, token: String) -> Router {
    router_with(node, Arc::new(Auth::in_memory(&token)))
}

/// The node API router with the token store `auth`.
pub fn router_with(node: Arc<NodeState>, auth: Arc<Auth>) -> Router {
    let state = AppState { node, auth };
    let v1 = Router::new()
        .route("/v1/configs", get(get_config).post(post_config))
        .route("/v1/stats", get(get_stats))
        .route("/v1/info", get(get_info))
        .route(
            "/v1/token",
            post(post_token).layer(DefaultBodyLimit::max(MAX_TOKEN_BODY_BYTES)),
        )
        .layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route(
            "/",
            get(|| async { Json(serde_json::json!({"message": "ok"})) }),
        )
        .merge(v1)
        .layer(DefaultBodyLimit::max(MAX_CONFIG_BYTES))
        .with_state(state)
}

fn error(status: StatusCode, message: impl Into<String>, path: Option<String>) -> Response {
    (
        status,
        Json(ApiError {
            error: message.into(),
            path,
        }),
    )
        .into_response()
}

/// Lets a call through when [`Auth::authorize`] does: 401 (no detail) for a missing or wrong
/// token, 503 when promoting the next token could not be stored.
async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let source = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match state.auth.authorize(authorization, source).await {
        Ok(()) => next.run(req).await,
        Err(Denied::Refused(_)) => StatusCode::UNAUTHORIZED.into_response(),
        Err(Denied::Storage(e)) => {
            tracing::error!(error = %e, "the next token could not be promoted; call not handled");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the node could not store its token state",
                None,
            )
        }
    }
}

/// `POST /v1/token`: sets the next token. 400 (nothing changes) for a body that is not
/// `{"token": "…"}` or a token the node-token rule refuses.
async fn post_token(State(state): State<AppState>, body: Bytes) -> Response {
    // serde's message could quote part of the body: it is not passed on.
    let Ok(rotation) = serde_json::from_slice::<TokenRotation>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            r#"expected a JSON body {"token": "<new token>"}"#,
            None,
        );
    };
    let token = match rules::input::node_token(&rotation.token) {
        Ok(t) => t,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("token {}", e.message),
                Some("token".into()),
            )
        }
    };
    match state.auth.rotate(&token).await {
        Ok(()) => {
            tracing::info!("next token set: both tokens are accepted until it is used");
            Json(serde_json::json!({})).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "the next token could not be stored");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the node could not store its token state",
                None,
            )
        }
    }
}

/// Whether the query of `POST /v1/configs` asks for the manual restart: `restart=true` does,
/// no query, `restart=false` and other parameters do not; any other value of `restart` is an
/// error (`Err` holds the message).
fn restart_requested(query: Option<&str>) -> Result<bool, &'static str> {
    let mut restart = false;
    for pair in query.unwrap_or_default().split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if name != RESTART_PARAM {
            continue;
        }
        restart = match value {
            "true" => true,
            "false" => false,
            _ => return Err("restart must be true or false"),
        };
    }
    Ok(restart)
}

/// `POST /v1/configs[?restart=true]`: applies the pushed config; with `restart=true`, runs it
/// rebuilt from scratch even when it is the config in force (see [`NodeState::restart`]).
async fn post_config(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected application/json",
            None,
        );
    }
    let restart = match restart_requested(query.as_deref()) {
        Ok(r) => r,
        Err(message) => return error(StatusCode::BAD_REQUEST, message, Some(RESTART_PARAM.into())),
    };
    let applied = if restart {
        state.node.restart(&body).await
    } else {
        state.node.apply(&body).await
    };
    match applied {
        Ok(applied) => Json(applied).into_response(),
        Err(ApplyError::Invalid(e)) => {
            tracing::warn!(error = %e, "pushed config rejected");
            error(
                StatusCode::BAD_REQUEST,
                e.to_string(),
                Some(e.path().to_owned()),
            )
        }
        Err(e @ ApplyError::Engine(_)) => {
            tracing::warn!(error = %e, "pushed config could not be applied");
            error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string(), None)
        }
        Err(e @ ApplyError::Storage(_)) => {
            tracing::error!(error = %e, "pushed config could not be stored");
            error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string(), None)
        }
    }
}

async fn get_config(State(state): State<AppState>) -> Response {
    Json(state.node.config_state().await).into_response()
}

async fn get_stats(State(state): State<AppState>) -> Response {
    let mut resp = Json(state.node.stats()).into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(state.node.epoch()) {
        h.insert(EPOCH_HEADER, v);
    }
    let version = state.node.config_version().await.unwrap_or_default();
    if let Ok(v) = HeaderValue::from_str(&version) {
        h.insert(CONFIG_VERSION_HEADER, v);
    }
    h.insert(
        REFUSED_CALLS_HEADER,
        HeaderValue::from(state.auth.refused_calls()),
    );
    resp
}

async fn get_info(State(state): State<AppState>) -> Response {
    Json(NodeInfo {
        name: "arch-node".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        uptime_seconds: state.node.uptime_seconds(),
        epoch: state.node.epoch().to_owned(),
        config_version: state.node.config_version().await,
        refused_calls: state.auth.refused_calls(),
    })
    .into_response()
}
