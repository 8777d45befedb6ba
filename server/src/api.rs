//! REST `/v1` for automation: nodes (with the manual restart), users (with links and bulk
//! enable, disable, delete and usage reset), usage history, the dashboard, settings,
//! administrators, API tokens (listed, created with a role and the secret shown once, revoked)
//! and the audit log, behind a Bearer token (the `--admin-token`, an owner, or a stored API
//! token with its role). Roles are enforced by the services: a change the token's role does not
//! allow is a 403 and changes nothing. Errors are JSON `{"error": …, "field": …}`; a 4xx never
//! changes state. Bodies are parsed strictly: unknown fields are refused by name.
//!
//! `GET /v1/users` is paged by keyset (`?limit&after&q&status&sort`, see
//! `manager::services::users::page`): the body is the page's array, `x-total-count` counts every
//! match, and `x-next-cursor` plus `link: <…>; rel="next"` lead to the next page. Unknown,
//! repeated or bad parameters are a 400 naming the parameter.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use bytes::Bytes;
use manager::history::Step;
use manager::services::users::UserQuery;
use manager::{
    NewNode, NewUser, Node, NodePatch, ServiceError, Services, SettingsPatch, UserPatch,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A REST error: status plus `{"error", "field"}`.
pub struct ApiError {
    status: StatusCode,
    message: String,
    field: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>, field: Option<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            field,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct Body {
            error: String,
            #[serde(skip_serializing_if = "Option::is_none")]
            field: Option<String>,
        }
        let body = Body {
            error: self.message,
            field: self.field,
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> ApiError {
        let field = e.field().map(str::to_owned);
        let status = match &e {
            ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
            ServiceError::Invalid { .. } => StatusCode::BAD_REQUEST,
            ServiceError::Conflict { .. } => StatusCode::CONFLICT,
            ServiceError::Unauthorized => StatusCode::UNAUTHORIZED,
            ServiceError::Forbidden(_) => StatusCode::FORBIDDEN,
            ServiceError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ServiceError::Unreachable(_) => StatusCode::BAD_GATEWAY,
            ServiceError::Db(_) | ServiceError::NodeClient(_) | ServiceError::Internal(_) => {
                tracing::error!(error = %e, "request failed");
                return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error", None);
            }
        };
        ApiError::new(status, e.to_string(), field)
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// Strict JSON body: the error names the offending field.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "expected application/json",
                None,
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.body_text(), None))?;
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(de).map(Body).map_err(|e| {
            let path = e.path().to_string();
            let field = (path != ".").then_some(path);
            ApiError::new(StatusCode::BAD_REQUEST, e.into_inner().to_string(), field)
        })
    }
}

/// An optional strict JSON body: absent when the request has no body and no content type.
impl<T: DeserializeOwned, S: Send + Sync> axum::extract::OptionalFromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        if req.headers().contains_key(header::CONTENT_TYPE) {
            return <Body<T> as axum::extract::FromRequest<S>>::from_request(req, state)
                .await
                .map(Some);
        }
        let bytes = <Bytes as axum::extract::FromRequest<S>>::from_request(req, state)
            .await
            .map_err(|e| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.body_text(), None))?;
        if bytes.is_empty() {
            Ok(None)
        } else {
            Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "expected application/json",
                None,
            ))
        }
    }
}

/// A node as the API shows it; the token only when just created.
#[derive(Serialize)]
struct NodeJson {
    id: i64,
    name: String,
    host: String,
    http_port: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_token: Option<String>,
    /// Port of the node's relay-hop inbound (the manager dials it in relay mode).
    relay_port: i32,
    /// Port of the manager's `internal-N` inbound (the node's bridge dials it in reverse mode).
    internal_port: i32,
    usage: f64,
    usage_bytes: i64,
    /// What a byte through the node counts for its users (1.0 = as carried).
    usage_multiplier: f64,
    push_status: &'static str,
    pull_status: &'static str,
    pushed_at: i64,
    pulled_at: i64,
    applied_version: Option<String>,
    /// The version of the config the manager would push to the node now.
    desired_version: Option<String>,
    /// The node does not run its current config yet (`applied_version` ≠ `desired_version`).
    drift: bool,
    last_error: Option<String>,
    created_at: i64,
    /// Is the node's reverse bridge connected to the manager right now?
    reverse_connected: bool,
    /// The pinned SHA-256 fingerprint of the node's certificate (hex), if any yet.
    tls_fingerprint: Option<String>,
    /// A different certificate the node presented (its calls are refused until a re-pin).
    presented_fingerprint: Option<String>,
    /// The node API is plain HTTP (registered so by the operator).
    insecure_http: bool,
    /// The node's own count of refused calls since it started, as of the last pull.
    refused_calls: i64,
    /// A token rotation is in progress (the pending token itself is never shown).
    token_rotation_pending: bool,
}

impl NodeJson {
    fn new(s: &Services, n: Node, with_token: bool) -> NodeJson {
        NodeJson {
            reverse_connected: s.nodes.reverse_connected().contains(&n.id),
            drift: n.has_drift(),
            id: n.id,
            usage: n.usage_gb(),
            name: n.name,
            host: n.host,
            http_port: n.http_port,
            relay_port: n.relay_port,
            internal_port: n.internal_port,
            http_token: with_token.then_some(n.http_token),
            usage_bytes: n.usage_bytes,
            usage_multiplier: f64::from(n.usage_multiplier_permille) / 1000.0,
            push_status: n.push_status.as_str(),
            pull_status: n.pull_status.as_str(),
            pushed_at: n.pushed_at,
            pulled_at: n.pulled_at,
            applied_version: n.applied_version,
            desired_version: n.desired_version,
            last_error: n.last_error,
            created_at: n.created_at,
            tls_fingerprint: n.tls_fingerprint,
            presented_fingerprint: n.presented_fingerprint,
            insecure_http: n.insecure_http,
            refused_calls: n.refused_calls,
            token_rotation_pending: n.pending_token.is_some(),
        }
    }
}

/// The `/v1` router (state: the services).
pub fn routes(services: Services) -> Router {
    Router::new()
        .route("/v1/nodes", post(create_node).get(list_nodes))
        .route(
            "/v1/nodes/{id}",
            get(get_node).patch(patch_node).delete(delete_node),
        )
        .route("/v1/nodes/{id}/rotate-keys", post(rotate_node_keys))
        .route("/v1/nodes/{id}/repin", post(repin_node))
        .route("/v1/nodes/{id}/rotate-token", post(rotate_node_token))
        .route("/v1/nodes/{id}/reset-usage", post(reset_node_usage))
        .route("/v1/nodes/{id}/restart", post(restart_node))
        .route("/v1/nodes/{id}/usage", get(node_usage))
        .route("/v1/users", post(create_user).get(list_users))
        .route(
            "/v1/users/{id}",
            get(get_user).patch(patch_user).delete(delete_user),
        )
        .route("/v1/users/{id}/links", get(user_links))
        .route("/v1/users/reset-usage", post(reset_users_usage))
        .route("/v1/users/enable", post(enable_users))
        .route("/v1/users/disable", post(disable_users))
        .route("/v1/users/delete", post(delete_users))
        .route("/v1/users/{id}/reset-usage", post(reset_user_usage))
        .route("/v1/users/{id}/usage", get(user_usage))
        .route(
            "/v1/users/{id}/rotate-subscription",
            post(rotate_subscription),
        )
        .route("/v1/dashboard", get(get_dashboard))
        .route("/v1/settings", get(get_settings).put(put_settings))
        .route("/v1/tokens", post(create_token).get(list_tokens))
        .route("/v1/tokens/{id}", delete(revoke_token))
        .route("/v1/admins", post(create_admin).get(list_admins))
        .route(
            "/v1/admins/{id}",
            axum::routing::patch(patch_admin).delete(delete_admin),
        )
        .route("/v1/audit", get(audit_log))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint", None) })
        .layer(middleware::from_fn_with_state(
            services.clone(),
            require_bearer,
        ))
        .with_state(services)
}

/// Accepts `Authorization: Bearer <admin token | API token>` (401 without detail otherwise) and
/// runs the request as that token's actor: the services check its role on every change (403
/// when it does not allow it) and record the change under the token's name.
async fn require_bearer(State(services): State<Services>, req: Request, next: Next) -> Response {
    let token = crate::bearer(req.headers()).unwrap_or_default();
    let address = app::ssr::client_ip(req.headers(), req.extensions(), &services);
    match services.auth.bearer_actor(token, address).await {
        Ok(Some(actor)) => manager::services::audit::acting(actor, next.run(req)).await,
        Ok(None) => StatusCode::UNAUTHORIZED.into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn create_node(
    State(s): State<Services>,
    Body(new): Body<NewNode>,
) -> ApiResult<impl IntoResponse> {
    let node = s.nodes.create(new).await?;
    Ok((StatusCode::CREATED, Json(NodeJson::new(&s, node, true))))
}

async fn list_nodes(State(s): State<Services>) -> ApiResult<Json<Vec<NodeJson>>> {
    let nodes = s.nodes.list().await?;
    Ok(Json(
        nodes
            .into_iter()
            .map(|n| NodeJson::new(&s, n, false))
            .collect(),
    ))
}

async fn get_node(State(s): State<Services>, Path(id): Path<i64>) -> ApiResult<Json<NodeJson>> {
    Ok(Json(NodeJson::new(&s, s.nodes.get(id).await?, false)))
}

async fn patch_node(
    State(s): State<Services>,
    Path(id): Path<i64>,
    Body(p): Body<NodePatch>,
) -> ApiResult<Json<NodeJson>> {
    Ok(Json(NodeJson::new(&s, s.nodes.update(id, p).await?, false)))
}

async fn rotate_node_keys(
    State(s): State<Services>,
    Path(id): Path<i64>,
) -> ApiResult<Json<NodeJson>> {
    Ok(Json(NodeJson::new(
        &s,
        s.nodes.rotate_keys(id).await?,
        false,
    )))
}

/// Body of `POST /v1/nodes/{id}/repin` (optional: without it the presented certificate is
/// pinned).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Repin {
    #[serde(default)]
    tls_fingerprint: Option<String>,
}

async fn repin_node(
    State(s): State<Services>,
    Path(id): Path<i64>,
    body: Option<Body<Repin>>,
) -> ApiResult<Json<NodeJson>> {
    let Repin { tls_fingerprint } = body.map(|Body(b)| b).unwrap_or_default();
    Ok(Json(NodeJson::new(
        &s,
        s.nodes.repin(id, tls_fingerprint).await?,
        false,
    )))
}

async fn rotate_node_token(
    State(s): State<Services>,
    Path(id): Path<i64>,
) -> ApiResult<Json<NodeJson>> {
    Ok(Json(NodeJson::new(
        &s,
        s.nodes.rotate_token(id).await?,
        false,
    )))
}

async fn delete_node(State(s): State<Services>, Path(id): Path<i64>) -> ApiResult<StatusCode> {
    s.nodes.delete(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A user as REST shows it: the stored fields plus the whole subscription URL.
#[derive(Serialize)]
struct UserJson {
    #[serde(flatten)]
    user: manager::User,
    subscription_url: String,
}

async fn user_json(s: &Services, users: Vec<manager::User>) -> ApiResult<Vec<UserJson>> {
    let urls = s.subscriptions.urls(&users).await?;
    Ok(users
        .into_iter()
        .zip(urls)
        .map(|(user, subscription_url)| UserJson {
            user,
            subscription_url,
        })
        .collect())
}

async fn one_user(s: &Services, user: manager::User) -> ApiResult<Json<UserJson>> {
    let mut list = user_json(s, vec![user]).await?;
    list.pop()
        .map(Json)
        .ok_or_else(|| ServiceError::Internal("no user".into()).into())
}

async fn create_user(
    State(s): State<Services>,
    Body(new): Body<NewUser>,
) -> ApiResult<impl IntoResponse> {
    let user = s.users.create(new).await?;
    Ok((StatusCode::CREATED, one_user(&s, user).await?))
}

/// `GET /v1/users?limit&after&q&status&sort`: one page (see `manager::services::users::page`),
/// with `x-total-count` and, when there is a next page, `x-next-cursor` and a `link` to it that
/// keeps the other parameters.
async fn list_users(
    State(s): State<Services>,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> ApiResult<Response> {
    let Query(params) =
        params.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text(), None))?;
    let query = UserQuery::from_params(params.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let page = s.users.page(query.clone()).await?;
    let mut headers = HeaderMap::new();
    headers.insert("x-total-count", HeaderValue::from(page.total));
    if let Some(next) = page.next {
        let link = format!(
            "</v1/users?{}>; rel=\"next\"",
            UserQuery {
                after: Some(next.clone()),
                ..query
            }
            .to_query_string()
        );
        // A cursor is base64url and the link percent-encoded: both are valid header values.
        for (name, value) in [("x-next-cursor", next), ("link", link)] {
            let value = HeaderValue::try_from(value)
                .map_err(|_| ServiceError::Internal("cursor not a header value".into()))?;
            headers.insert(name, value);
        }
    }
    Ok((headers, Json(user_json(&s, page.users).await?)).into_response())
}

async fn get_user(State(s): State<Services>, Path(id): Path<i64>) -> ApiResult<Json<UserJson>> {
    let user = s.users.get(id).await?;
    one_user(&s, user).await
}

async fn patch_user(
    State(s): State<Services>,
    Path(id): Path<i64>,
    Body(p): Body<UserPatch>,
) -> ApiResult<Json<UserJson>> {
    let user = s.users.update(id, p).await?;
    one_user(&s, user).await
}

/// A new subscription secret: the old URL answers 404 from now on.
async fn rotate_subscription(
    State(s): State<Services>,
    Path(id): Path<i64>,
) -> ApiResult<Json<UserJson>> {
    let user = s.subscriptions.rotate(id).await?;
    one_user(&s, user).await
}

async fn delete_user(State(s): State<Services>, Path(id): Path<i64>) -> ApiResult<StatusCode> {
    s.users.delete(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn user_links(
    State(s): State<Services>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Vec<manager::links::Link>>> {
    Ok(Json(s.users.links(id).await?))
}

async fn reset_user_usage(
    State(s): State<Services>,
    Path(id): Path<i64>,
) -> ApiResult<Json<UserJson>> {
    let mut users = s.users.reset_usage(&[id]).await?;
    let user = users
        .pop()
        .ok_or_else(|| ServiceError::NotFound(format!("user {id}")))?;
    one_user(&s, user).await
}

/// Users named in a bulk action.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Ids {
    ids: Vec<i64>,
}

/// Resets the usage of every user named, all or nothing (an unknown id: 404, nothing reset).
async fn reset_users_usage(
    State(s): State<Services>,
    Body(body): Body<Ids>,
) -> ApiResult<Json<Vec<UserJson>>> {
    let users = s.users.reset_usage(&body.ids).await?;
    Ok(Json(user_json(&s, users).await?))
}

/// Enables every user named, all or nothing (a user whose limit is reached: 400 naming them).
async fn enable_users(
    State(s): State<Services>,
    Body(body): Body<Ids>,
) -> ApiResult<Json<Vec<UserJson>>> {
    let users = s.users.set_enabled(&body.ids, true).await?;
    Ok(Json(user_json(&s, users).await?))
}

/// Disables every user named (a manual disable), all or nothing.
async fn disable_users(
    State(s): State<Services>,
    Body(body): Body<Ids>,
) -> ApiResult<Json<Vec<UserJson>>> {
    let users = s.users.set_enabled(&body.ids, false).await?;
    Ok(Json(user_json(&s, users).await?))
}

/// Deletes every user named, all or nothing.
async fn delete_users(State(s): State<Services>, Body(body): Body<Ids>) -> ApiResult<StatusCode> {
    s.users.delete_many(&body.ids).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn reset_node_usage(
    State(s): State<Services>,
    Path(id): Path<i64>,
) -> ApiResult<Json<NodeJson>> {
    let node = s.nodes.reset_usage(id).await?;
    Ok(Json(NodeJson::new(&s, node, false)))
}

/// The spec's manual restart: the node re-applies its full config from scratch now.
async fn restart_node(State(s): State<Services>, Path(id): Path<i64>) -> ApiResult<Json<NodeJson>> {
    let node = s.nodes.restart(id).await?;
    Ok(Json(NodeJson::new(&s, node, false)))
}

/// A usage history as REST shows it.
#[derive(Serialize)]
struct UsageJson {
    step: Step,
    from: i64,
    to: i64,
    /// The buckets with traffic, oldest first (`at`: the bucket's start, Unix ms, UTC).
    points: Vec<manager::history::Point>,
    total_bytes: i64,
}

/// `?from&to&step` of a usage query: Unix ms, `to` defaulting to now and `from` to one day
/// (`step=hour`, the default) or 30 days (`step=day`) before `to`.
fn usage_range(q: &HashMap<String, String>) -> Result<(Step, i64, i64), ApiError> {
    let step = match q.get("step").map(String::as_str) {
        None => Step::Hour,
        Some(v) => {
            Step::parse(v).ok_or_else(|| ServiceError::invalid("step", "must be hour or day"))?
        }
    };
    let ms = |field: &'static str| -> Result<Option<i64>, ApiError> {
        q.get(field)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    ServiceError::invalid(field, "must be a time in Unix milliseconds").into()
                })
            })
            .transpose()
    };
    let to = ms("to")?.unwrap_or_else(manager::util::now_ms);
    let span = match step {
        Step::Hour => manager::history::DAY_MS,
        Step::Day => 30 * manager::history::DAY_MS,
    };
    let from = ms("from")?.unwrap_or(to.saturating_sub(span));
    Ok((step, from, to))
}

fn usage_json(step: Step, from: i64, to: i64, points: Vec<manager::history::Point>) -> UsageJson {
    UsageJson {
        total_bytes: points.iter().map(|p| p.bytes).sum(),
        step,
        from,
        to,
        points,
    }
}

async fn user_usage(
    State(s): State<Services>,
    Path(id): Path<i64>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<UsageJson>> {
    let (step, from, to) = usage_range(&q)?;
    let points = s.users.usage_history(id, step, from, to).await?;
    Ok(Json(usage_json(step, from, to, points)))
}

async fn node_usage(
    State(s): State<Services>,
    Path(id): Path<i64>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<UsageJson>> {
    let (step, from, to) = usage_range(&q)?;
    let points = s.nodes.usage_history(id, step, from, to).await?;
    Ok(Json(usage_json(step, from, to, points)))
}

/// Users by state, traffic today and this month, node health, the last 24 hours of traffic
/// and the last config pushes (see `manager::services::dashboard`).
async fn get_dashboard(State(s): State<Services>) -> ApiResult<Json<manager::Dashboard>> {
    Ok(Json(s.dashboard.get().await?))
}

async fn get_settings(State(s): State<Services>) -> ApiResult<Json<manager::Settings>> {
    Ok(Json(s.settings.get().await?))
}

async fn put_settings(
    State(s): State<Services>,
    Body(p): Body<SettingsPatch>,
) -> ApiResult<Json<manager::Settings>> {
    Ok(Json(s.settings.update(p).await?))
}

/// Body of `POST /v1/tokens`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    name: String,
    /// Absent: `owner`, what tokens could do before roles.
    #[serde(default = "owner")]
    role: manager::Role,
}

fn owner() -> manager::Role {
    manager::Role::Owner
}

async fn create_token(
    State(s): State<Services>,
    Body(new): Body<NewToken>,
) -> ApiResult<impl IntoResponse> {
    let created = s.auth.create_token(&new.name, new.role).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn list_tokens(State(s): State<Services>) -> ApiResult<Json<Vec<manager::ApiToken>>> {
    Ok(Json(s.auth.list_tokens().await?))
}

async fn revoke_token(State(s): State<Services>, Path(id): Path<i64>) -> ApiResult<StatusCode> {
    s.auth.revoke_token(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_admins(State(s): State<Services>) -> ApiResult<Json<Vec<manager::Admin>>> {
    Ok(Json(s.auth.list_admins().await?))
}

async fn create_admin(
    State(s): State<Services>,
    Body(new): Body<manager::NewAdmin>,
) -> ApiResult<impl IntoResponse> {
    Ok((StatusCode::CREATED, Json(s.auth.add_admin(new).await?)))
}

async fn patch_admin(
    State(s): State<Services>,
    Path(id): Path<i64>,
    Body(patch): Body<manager::AdminPatch>,
) -> ApiResult<Json<manager::Admin>> {
    Ok(Json(s.auth.update_admin(id, patch).await?))
}

async fn delete_admin(State(s): State<Services>, Path(id): Path<i64>) -> ApiResult<StatusCode> {
    s.auth.delete_admin(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The audit log, newest first: `?action` (exact, or a prefix ending in `.`), `?actor`,
/// `?object=kind[:id]`, `?before` (an entry id) and `?limit` (1–500, default 50). The body is
/// the page's array; `x-next-cursor` and `link rel=next` lead to older entries.
async fn audit_log(
    State(s): State<Services>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> ApiResult<Response> {
    let Query(params) =
        query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text(), None))?;
    let q = manager::AuditQuery::from_params(&params)?;
    let page = s.audit.page(q.clone()).await?;
    let mut headers = HeaderMap::new();
    if let Some(next) = page.next {
        let query = manager::AuditQuery {
            before: Some(next),
            ..q
        }
        .to_query_string();
        let link = format!("</v1/audit?{query}>; rel=\"next\"");
        // The link is percent-encoded: a valid header value.
        for (name, value) in [("x-next-cursor", next.to_string()), ("link", link)] {
            let value = HeaderValue::try_from(value)
                .map_err(|_| ServiceError::Internal("cursor not a header value".into()))?;
            headers.insert(name, value);
        }
    }
    Ok((headers, Json(page.entries)).into_response())
}
