//! The node API: `POST/GET /v1/configs`, `GET /v1/stats`, `GET /v1/info` behind a Bearer token
//! compared in constant time; `GET /` answers health checks without auth. Bodies are size-limited.

use crate::state::{ApplyError, NodeState};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;
use xray::api::{ApiError, NodeInfo, CONFIG_VERSION_HEADER, EPOCH_HEADER};

/// Largest config accepted (tens of thousands of users fit).
const MAX_CONFIG_BYTES: usize = 16 << 20;

#[derive(Clone)]
struct AppState {
    node: Arc<NodeState>,
    token_hash: [u8; 32],
}

/// The node API router.
pub fn router(node: Arc<NodeState>, token: String) -> Router {
    let state = AppState {
        node,
        token_hash: Sha256::digest(token.as_bytes()).into(),
    };
    let v1 = Router::new()
        .route("/v1/configs", get(get_config).post(post_config))
        .route("/v1/stats", get(get_stats))
        .route("/v1/info", get(get_info))
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

async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let hash: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    if presented.is_empty() || !bool::from(hash.ct_eq(&state.token_hash)) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    next.run(req).await
}

async fn post_config(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
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
    match state.node.apply(&body).await {
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
    resp
}

async fn get_info(State(state): State<AppState>) -> Response {
    Json(NodeInfo {
        name: "arch-node".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        uptime_seconds: state.node.uptime_seconds(),
        epoch: state.node.epoch().to_owned(),
        config_version: state.node.config_version().await,
    })
    .into_response()
}
