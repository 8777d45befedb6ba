//! The admin panel's HTTP surface: Leptos server-side rendered pages, the server functions
//! (`POST /api/<name>`) and the hydrate bundle under `/pkg`, with `manager::Services` provided to
//! every render and server-function call as Leptos context.
//!
//! Owns the panel's request policy: pages need a session (otherwise 303 → `/login`), server
//! functions are POST-only and accept a browser request only when it comes from the panel's own
//! origin (CSRF), request bodies are bounded, and responses carry anti-framing headers. Knows
//! nothing of the REST API or `/events`; `main.rs` merges this router with those.

use std::path::PathBuf;

use axum::{
    extract::{Request, State},
    http::{header, HeaderMap, HeaderValue, Method, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Redirect, Response},
    Router,
};
use leptos::prelude::{provide_context, LeptosOptions};
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_http::{limit::RequestBodyLimitLayer, services::ServeDir};

/// Header Leptos puts on server-function error responses.
const SERVER_FN_ERROR_HEADER: &str = "serverfnerror";
/// Largest request body a server function accepts.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// Pages reachable without a session.
const PUBLIC_PAGES: [&str; 2] = ["/login", "/setup"];

/// Router for the panel: pages, server functions and `/pkg` static files from `site_root/pkg`
/// (built by `scripts/build-site.sh`).
pub fn routes(services: manager::Services, site_root: PathBuf) -> Router {
    let options = LeptosOptions::builder()
        .output_name(env!("LEPTOS_OUTPUT_NAME"))
        .site_root(site_root.to_string_lossy().as_ref())
        .site_pkg_dir("pkg")
        .build();
    let context_services = services.clone();
    let shell_options = options.clone();
    let leptos = Router::new()
        .leptos_routes_with_context(
            &options,
            generate_route_list(app::App),
            move || provide_context(context_services.clone()),
            move || app::shell(shell_options.clone()),
        )
        .with_state(options)
        .layer(middleware::from_fn_with_state(services, require_session))
        .layer(middleware::from_fn(error_status))
        .layer(middleware::from_fn(same_origin_only))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES));
    let pkg = Router::new()
        .nest_service("/pkg", ServeDir::new(site_root.join("pkg")))
        .layer(middleware::map_response(revalidate));
    leptos
        .merge(pkg)
        .layer(middleware::map_response(security_headers))
}

/// Sends page requests without a valid session to `/login`, and signed-in visits of the
/// sign-in / setup pages to `/nodes`. Server functions check the session themselves.
async fn require_session(
    State(services): State<manager::Services>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    if !matches!(*req.method(), Method::GET | Method::HEAD) || path.starts_with("/api/") {
        return next.run(req).await;
    }
    let public = PUBLIC_PAGES.contains(&path);
    let signed_in = app::ssr::admin_from_headers(req.headers(), &services)
        .await
        .is_some();
    match (public, signed_in) {
        (false, false) => Redirect::to("/login").into_response(),
        (true, true) => Redirect::to("/nodes").into_response(),
        _ => next.run(req).await,
    }
}

/// CSRF guard: a state-changing request that a browser marks as coming from another origin is
/// refused. (Server functions are POST-only; the session cookie is also SameSite=Strict.)
async fn same_origin_only(req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if safe || is_same_origin(req.headers()) {
        next.run(req).await
    } else {
        (StatusCode::FORBIDDEN, "cross-origin request refused").into_response()
    }
}

/// True unless the browser says the request comes from a different origin: `Origin` must name
/// the `Host` the request was sent to; without `Origin`, `Sec-Fetch-Site` must not be
/// cross-site. Requests with neither header come from non-browser clients, which carry no
/// ambient cookies, and are allowed.
fn is_same_origin(headers: &HeaderMap) -> bool {
    let get = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if let Some(origin) = get(header::ORIGIN.as_str()) {
        let origin_host = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"))
            .map(|rest| rest.trim_end_matches('/'));
        let host = get(header::HOST.as_str());
        return matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h));
    }
    match get("sec-fetch-site") {
        Some(site) => matches!(site, "same-origin" | "none"),
        None => true,
    }
}

/// Server-function errors leave Leptos as `500` + the `serverfnerror` header; this gives them the
/// status their [`app::AppError`] means (422 invalid, 409 conflict, 401 signed out, …), so logs,
/// proxies and browsers see client errors as client errors. The body is unchanged.
async fn error_status(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    if res.status() != StatusCode::INTERNAL_SERVER_ERROR
        || !res.headers().contains_key(SERVER_FN_ERROR_HEADER)
    {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "error response too large",
        )
            .into_response();
    };
    if let Ok(err) = serde_json::from_slice::<app::AppError>(&bytes) {
        parts.status = status_of(&err);
    }
    Response::from_parts(parts, bytes.into())
}

/// The HTTP status that describes an [`app::AppError`].
fn status_of(err: &app::AppError) -> StatusCode {
    use app::AppError as E;
    match err {
        E::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        E::Conflict { .. } => StatusCode::CONFLICT,
        E::NotFound(_) => StatusCode::NOT_FOUND,
        E::Unauthorized => StatusCode::UNAUTHORIZED,
        E::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        E::Unreachable(_) => StatusCode::BAD_GATEWAY,
        E::Request(_) => StatusCode::BAD_REQUEST,
        E::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Static files have stable names (`arch.js`, `arch.wasm`): make browsers revalidate them.
async fn revalidate(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

/// Headers on every panel response: no framing (clickjacking), no MIME sniffing, no referrer
/// leaking outside the panel.
async fn security_headers(mut res: Response) -> Response {
    let headers = res.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    header::HeaderName::from_static(k),
                    HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    #[test]
    fn origin_must_match_host() {
        assert!(is_same_origin(&headers(&[
            ("origin", "http://127.0.0.1:8080"),
            ("host", "127.0.0.1:8080")
        ])));
        assert!(is_same_origin(&headers(&[
            ("origin", "https://panel.example"),
            ("host", "Panel.Example")
        ])));
        assert!(!is_same_origin(&headers(&[
            ("origin", "http://evil.example"),
            ("host", "127.0.0.1:8080")
        ])));
        assert!(!is_same_origin(&headers(&[
            ("origin", "null"),
            ("host", "127.0.0.1:8080")
        ])));
        assert!(!is_same_origin(&headers(&[(
            "origin",
            "http://127.0.0.1:8080"
        )])));
    }

    #[test]
    fn error_statuses() {
        assert_eq!(
            status_of(&app::AppError::invalid("name", "x")),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            status_of(&app::AppError::Unauthorized),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            status_of(&app::AppError::Internal),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn without_origin_fetch_metadata_decides() {
        assert!(is_same_origin(&headers(&[(
            "sec-fetch-site",
            "same-origin"
        )])));
        assert!(!is_same_origin(&headers(&[(
            "sec-fetch-site",
            "cross-site"
        )])));
        assert!(!is_same_origin(&headers(&[(
            "sec-fetch-site",
            "same-site"
        )])));
        assert!(is_same_origin(&HeaderMap::new()));
    }
}
