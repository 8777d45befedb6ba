//! The admin panel's HTTP surface: Leptos server-side rendered pages, the server functions
//! (`POST /api/<name>`) and the hydrate bundle under `/pkg`, with `manager::Services` provided to
//! every render and server-function call as Leptos context.
//!
//! Owns the panel's request policy: pages need a session (otherwise 303 → `/login`), server
//! functions are POST-only and accept a browser request only when it comes from the panel's own
//! origin (CSRF), request bodies are bounded, and responses carry anti-framing headers, and HSTS
//! when the request came over HTTPS (by `app::ssr::is_https`, the rule the session cookie's
//! `Secure` follows too). `/pkg` comes from the bundle built into the binary (crate `site`) or,
//! with `--site-root`, from a directory. Knows nothing of the REST API or `/events`; `lib.rs`
//! merges this router with those.

use crate::Bundle;

use axum::{
    extract::{Request, State},
    http::{header, HeaderMap, HeaderValue, Method, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Redirect, Response},
    Router,
};
use leptos::prelude::{provide_context, LeptosOptions};
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_http::compression::predicate::Predicate;
use tower_http::compression::CompressionLayer;
use tower_http::{limit::RequestBodyLimitLayer, services::ServeDir};

/// Header Leptos puts on server-function error responses.
const SERVER_FN_ERROR_HEADER: &str = "serverfnerror";
/// Largest request body a server function accepts.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// Pages reachable without a session.
const PUBLIC_PAGES: [&str; 2] = ["/login", "/setup"];

/// Router for the panel: pages, server functions and the `/pkg` static files of `bundle`.
pub fn routes(services: manager::Services, bundle: &Bundle) -> Router {
    // Leptos reads only the names from these options (the `/pkg/…/arch.*` URLs of the shell);
    // the site root is a path it would serve files from, and nothing here asks it to. The built-in
    // bundle is linked under its version (`/pkg/{version}/arch-{group}.js`, cached for a year, a new URL
    // for every new bundle); a --site-root directory may change under a running manager, so its
    // files keep their plain names and are revalidated on every use.
    let pkg_dir = match bundle {
        Bundle::Embedded => format!("pkg/{}", site::version()),
        Bundle::Dir(_) => "pkg".to_owned(),
    };
    let builder = LeptosOptions::builder()
        .output_name(env!("LEPTOS_OUTPUT_NAME"))
        .site_pkg_dir(pkg_dir);
    let options = match bundle {
        Bundle::Dir(root) => builder.site_root(root.to_string_lossy().as_ref()).build(),
        Bundle::Embedded => builder.build(),
    };
    let context_services = services.clone();
    let services_for_headers = services.clone();
    let shell_options = options.clone();
    let leptos = Router::new()
        .leptos_routes_with_context(
            &options,
            route_list(),
            move || provide_context(context_services.clone()),
            move || app::shell(shell_options.clone()),
        )
        .with_state(options)
        .layer(middleware::from_fn_with_state(services, require_session))
        .layer(middleware::from_fn(error_status))
        .layer(middleware::from_fn(same_origin_only))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES));
    let leptos = compress_pages(leptos);
    let pkg = match bundle {
        Bundle::Embedded => Router::new().nest("/pkg", site::router()),
        Bundle::Dir(root) => Router::new()
            .nest_service(
                "/pkg",
                ServeDir::new(root.join("pkg"))
                    .precompressed_br()
                    .precompressed_gzip(),
            )
            .layer(middleware::map_response(revalidate)),
    };
    leptos.merge(pkg).layer(middleware::from_fn_with_state(
        services_for_headers,
        security_headers,
    ))
}

/// Sends server-rendered pages gzip-compressed to browsers that accept it, except the pages that
/// show a secret ([`CompressiblePage`]).
fn compress_pages(router: Router) -> Router {
    router
        .layer(middleware::from_fn(mark_secret_pages))
        .layer(CompressionLayer::new().compress_when(CompressiblePage))
}

/// Marks a page that shows a secret (a user's page: the subscription URL; an end user's profile
/// page `/u/{secret}`) so that it is never compressed: compressing a secret next to anything a
/// requester can influence lets them guess it from the response's length (BREACH).
async fn mark_secret_pages(req: Request, next: Next) -> Response {
    let secret = shows_secret(req.uri().path());
    let mut res = next.run(req).await;
    if secret {
        res.extensions_mut().insert(ShowsSecret);
    }
    res
}

/// Whether the page at `path` shows a secret (see [`mark_secret_pages`]).
fn shows_secret(path: &str) -> bool {
    let mut parts = path.trim_matches('/').split('/');
    matches!(
        (parts.next(), parts.next()),
        (Some("u"), Some(_)) | (Some("users"), Some(_))
    )
}

/// Response extension of a page that shows a secret.
#[derive(Debug, Clone, Copy)]
struct ShowsSecret;

/// What the panel compresses: server-rendered pages (`text/html`) that show no secret. Server
/// function answers (which may carry a new token or secret) and everything else go as they are;
/// the bundle under `/pkg` is compressed ahead of time.
#[derive(Debug, Clone, Copy)]
struct CompressiblePage;

impl Predicate for CompressiblePage {
    fn should_compress<B: axum::body::HttpBody>(&self, res: &axum::http::Response<B>) -> bool {
        res.extensions().get::<ShowsSecret>().is_none()
            && res
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("text/html"))
    }
}

/// The panel's route list, generated once per process. Generating it renders the app on a
/// throw-away reactive owner; doing that while another router of the same process renders a page
/// (several in-process managers in one test binary) can leave that render waiting forever.
fn route_list() -> Vec<leptos_axum::AxumRouteListing> {
    static ROUTES: std::sync::OnceLock<Vec<leptos_axum::AxumRouteListing>> =
        std::sync::OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(app::App)).clone()
}

/// Resolves who makes the request (the session's administrator with their role, or
/// `anonymous`) and runs it as that actor, so the services check the role of every change a
/// server function asks for and record it under that name (`manager::services::audit`). Sends
/// page requests without a valid session to `/login`, and signed-in visits of the sign-in /
/// setup pages to the dashboard. Server functions check the session themselves.
async fn require_session(
    State(services): State<manager::Services>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    let page = matches!(*req.method(), Method::GET | Method::HEAD) && !path.starts_with("/api/");
    let actor = match app::ssr::actor_of(req.headers(), req.extensions(), &services).await {
        Ok(actor) => actor,
        Err(e) => {
            // Not a reason to sign in again: the sessions could not be read. A server function
            // runs as nobody and answers its own error (its session check fails the same way).
            tracing::error!(error = %e, "reading the session failed");
            if page {
                return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
            }
            manager::Actor::anonymous(None)
        }
    };
    let signed_in = actor.kind == manager::ActorKind::Admin;
    match (page, PUBLIC_PAGES.contains(&path), signed_in) {
        (true, false, false) => Redirect::to("/login").into_response(),
        (true, true, true) => Redirect::to("/").into_response(),
        _ => manager::services::audit::acting(actor, next.run(req)).await,
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
        E::Forbidden(_) => StatusCode::FORBIDDEN,
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

/// Policy of panel responses that did not set their own: nothing may load, nothing may frame.
/// Pages set theirs in `app::shell`, with the nonce of their inline hydration script.
const FALLBACK_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";
/// HSTS for panels reached over https: a year, subdomains untouched (the host may be shared).
const HSTS: &str = "max-age=31536000";

/// Headers on every panel response: a Content-Security-Policy, no framing (clickjacking), no
/// MIME sniffing, no referrer outside the panel (unless the page set a stricter policy), and HSTS when the request came over https.
async fn security_headers(
    State(services): State<manager::Services>,
    req: Request,
    next: Next,
) -> Response {
    let https = app::ssr::is_https(req.headers(), req.extensions(), &services);
    let mut res = next.run(req).await;
    let headers = res.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // A page may ask for less (the profile page sends no referrer at all).
    headers
        .entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("same-origin"));
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(FALLBACK_CSP),
        );
    }
    if https {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
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

    use daemon::http::Transport;
    use tower::ServiceExt as _;

    /// A manager on a fresh SQLite file, trusting `proxies`.
    async fn manager(proxies: &[&str]) -> (manager::Manager, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = manager::Options {
            database_url: manager::db::default_sqlite_url(dir.path()),
            admin_token: None,
            coordinator: manager::CoordinatorConfig::default(),
            node_timeout: std::time::Duration::from_secs(1),
            trusted_proxies: manager::TrustedProxies(
                proxies.iter().map(|p| p.parse().expect("cidr")).collect(),
            ),
        };
        let m = manager::Manager::open(opts, None).await.expect("open");
        (m, dir)
    }

    fn get(path: &str, peer: &str, proto: Option<&str>) -> Request {
        let mut req = axum::http::Request::builder().uri(path);
        if let Some(p) = proto {
            req = req.header("x-forwarded-proto", p);
        }
        let mut req = req.body(axum::body::Body::empty()).expect("request");
        let peer: std::net::SocketAddr = format!("{peer}:40000").parse().expect("addr");
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        req
    }

    #[tokio::test]
    async fn pages_carry_a_csp_whose_nonce_is_on_every_inline_script() {
        let (m, dir) = manager(&[]).await;
        let app = routes(m.services.clone(), &Bundle::Dir(dir.path().to_path_buf()));
        let res = app
            .oneshot(get("/login", "127.0.0.1", None))
            .await
            .expect("response");
        assert_eq!(res.status(), StatusCode::OK);
        let h = res.headers().clone();
        let csp = h[header::CONTENT_SECURITY_POLICY].to_str().expect("ascii");
        let nonce = csp
            .split("'nonce-")
            .nth(1)
            .and_then(|rest| rest.split('\'').next())
            .expect("a nonce in the policy")
            .to_owned();
        assert!(nonce.len() >= 16, "{nonce}");
        assert_eq!(csp, app::ssr::content_security_policy(&nonce));
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(h[header::REFERRER_POLICY], "same-origin");
        assert!(!h.contains_key(header::STRICT_TRANSPORT_SECURITY));
        let body = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .expect("body");
        let html = String::from_utf8_lossy(&body);
        let scripts: Vec<&str> = html.split("<script").skip(1).collect();
        assert!(!scripts.is_empty(), "the hydration script is inline");
        for s in scripts {
            let tag = s.split('>').next().unwrap_or_default();
            assert!(
                tag.contains(&format!("nonce=\"{nonce}\"")),
                "script without the nonce: <script{tag}>"
            );
        }
        // A second page gets a fresh nonce.
        let app = routes(m.services.clone(), &Bundle::Dir(dir.path().to_path_buf()));
        let again = app
            .oneshot(get("/login", "127.0.0.1", None))
            .await
            .expect("response");
        let csp2 = again.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .expect("ascii");
        assert!(!csp2.contains(&nonce));
    }

    /// Signs `admin` in through the `login` server function as a request from `peer` that
    /// arrived on `transport`; returns the response's `Set-Cookie` and HSTS headers.
    async fn sign_in(
        m: &manager::Manager,
        transport: Transport,
        peer: &str,
        proto: Option<&str>,
    ) -> (String, Option<String>) {
        let mut req = axum::http::Request::builder()
            .method(Method::POST)
            .uri("/api/login")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(p) = proto {
            req = req.header("x-forwarded-proto", p);
        }
        let mut req = req
            .body(axum::body::Body::from(format!(
                "username=admin&password={PASSWORD}"
            )))
            .expect("request");
        let peer: std::net::SocketAddr = format!("{peer}:40000").parse().expect("addr");
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        req.extensions_mut().insert(transport);
        let res = routes(m.services.clone(), &Bundle::Embedded)
            .oneshot(req)
            .await
            .expect("response");
        let h = res.headers();
        let cookie = h
            .get(header::SET_COOKIE)
            .unwrap_or_else(|| panic!("no session cookie: {}", res.status()))
            .to_str()
            .expect("ascii")
            .to_owned();
        let hsts = h
            .get(header::STRICT_TRANSPORT_SECURITY)
            .map(|v| v.to_str().expect("ascii").to_owned());
        (cookie, hsts)
    }

    const PASSWORD: &str = "correct-horse-battery";

    /// One rule for "came over HTTPS": direct TLS, or `X-Forwarded-Proto: https` from a
    /// trusted proxy; both the session cookie's `Secure` and HSTS follow it.
    #[tokio::test]
    async fn secure_cookie_and_hsts_follow_the_one_https_rule() {
        let (m, _dir) = manager(&["127.0.0.1"]).await;
        m.services
            .auth
            .create_admin("admin", PASSWORD)
            .await
            .expect("admin");
        let cases = [
            (Transport::Tls, "198.51.100.7", None, true),
            (Transport::Plain, "198.51.100.7", None, false),
            (Transport::Plain, "127.0.0.1", None, false),
            (Transport::Plain, "127.0.0.1", Some("https"), true),
            (Transport::Plain, "127.0.0.1", Some("http"), false),
            (Transport::Plain, "198.51.100.7", Some("https"), false),
        ];
        for (transport, peer, proto, https) in cases {
            let (cookie, hsts) = sign_in(&m, transport, peer, proto).await;
            let case = format!("{transport:?} from {peer}, X-Forwarded-Proto {proto:?}");
            assert!(cookie.starts_with("arch_session="), "{case}: {cookie}");
            assert_eq!(cookie.ends_with("; Secure"), https, "{case}: {cookie}");
            assert_eq!(cookie.contains("Secure"), https, "{case}: {cookie}");
            assert_eq!(hsts.as_deref(), https.then_some(HSTS), "{case}");
        }
    }

    #[tokio::test]
    async fn hsts_only_for_https() {
        let (m, dir) = manager(&["127.0.0.1"]).await;
        let cases = [
            ("127.0.0.1", Transport::Plain, Some("https"), true),
            ("127.0.0.1", Transport::Plain, Some("http"), false),
            ("127.0.0.1", Transport::Plain, None, false),
            ("198.51.100.7", Transport::Plain, Some("https"), false),
            ("198.51.100.7", Transport::Tls, None, true),
        ];
        for (peer, transport, proto, want) in cases {
            let app = routes(m.services.clone(), &Bundle::Dir(dir.path().to_path_buf()));
            let mut req = get("/pkg/arch.js", peer, proto);
            req.extensions_mut().insert(transport);
            let res = app.oneshot(req).await.expect("response");
            let h = res.headers();
            assert_eq!(
                h.get(header::STRICT_TRANSPORT_SECURITY)
                    .map(|v| v.to_str().expect("ascii")),
                want.then_some(HSTS),
                "{peer} {transport:?} {proto:?}"
            );
            assert_eq!(h[header::CONTENT_SECURITY_POLICY], FALLBACK_CSP);
            assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
        }
    }

    /// `/pkg` from the built-in bundle: every file with its type and validators, the security
    /// headers, and nothing outside the bundle whichever way the path is spelled.
    #[tokio::test]
    async fn pkg_from_the_embedded_bundle() {
        let (m, dir) = manager(&[]).await;
        for name in site::names() {
            let res = routes(m.services.clone(), &Bundle::Embedded)
                .oneshot(get(&format!("/pkg/{name}"), "127.0.0.1", None))
                .await
                .expect("response");
            assert_eq!(res.status(), StatusCode::OK, "{name}");
            let file = site::file(&name).expect("embedded");
            let h = res.headers();
            assert_eq!(h[header::CONTENT_TYPE], file.content_type);
            assert_eq!(h[header::ETAG], file.etag.as_str());
            assert_eq!(h[header::CACHE_CONTROL], "no-cache");
            assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        }
        // A file that exists next to the data dir, and the crate's own sources.
        std::fs::write(dir.path().join("secret.txt"), "x").expect("write");
        for bundle in [Bundle::Embedded, Bundle::Dir(dir.path().join("site"))] {
            for uri in [
                "/pkg/../Cargo.toml",
                "/pkg/%2e%2e/Cargo.toml",
                "/pkg/%2e%2e%2fCargo.toml",
                "/pkg/../../secret.txt",
                "/pkg/%2e%2e/%2e%2e/secret.txt",
                "/pkg/missing.js",
            ] {
                let res = routes(m.services.clone(), &bundle)
                    .oneshot(get(uri, "127.0.0.1", None))
                    .await
                    .expect("response");
                assert_eq!(res.status(), StatusCode::NOT_FOUND, "{bundle:?} {uri}");
            }
        }
    }

    /// GET `uri` with an `Accept-Encoding` header.
    async fn fetch(app: Router, uri: &str, accept_encoding: &str) -> Response {
        let mut req = get(uri, "127.0.0.1", None);
        req.headers_mut().insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(accept_encoding).expect("header"),
        );
        app.oneshot(req).await.expect("response")
    }

    /// The shell links the built-in bundle under its version; those answers are compressed when
    /// the browser allows it and cached for a year; another version is gone.
    #[tokio::test]
    async fn pages_link_the_versioned_bundle() {
        let (m, _dir) = manager(&[]).await;
        let app = || routes(m.services.clone(), &Bundle::Embedded);
        let page = fetch(app(), "/login", "identity").await;
        assert_eq!(page.status(), StatusCode::OK);
        let html = axum::body::to_bytes(page.into_body(), 1 << 20)
            .await
            .expect("body");
        let html = String::from_utf8_lossy(&html);
        let version = site::version();
        // The sign-in page's own bundle (app::bundle_of) and the shared stylesheet.
        for name in ["arch-public.js", "arch-public.wasm", "arch.css"] {
            let uri = format!("/pkg/{version}/{name}");
            assert!(html.contains(&uri), "{uri} not in the page:\n{html}");
            assert!(!html.contains(&format!("\"/pkg/{name}\"")), "{name}");
            if site::is_empty() {
                continue;
            }
            let res = fetch(app(), &uri, "gzip, deflate, br").await;
            assert_eq!(res.status(), StatusCode::OK, "{uri}");
            let h = res.headers();
            assert_eq!(h[header::CONTENT_ENCODING], "br", "{uri}");
            assert_eq!(h[header::CONTENT_TYPE], site::content_type(name));
            assert_eq!(h[header::VARY], "accept-encoding");
            assert_eq!(h[header::CACHE_CONTROL], site::IMMUTABLE);
            assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
            let br = site::encoded(name, Some(site::Encoding::Brotli)).expect("br twin");
            assert_eq!(h[header::ETAG], br.etag.as_str());

            let plain = fetch(app(), &uri, "identity").await;
            assert_eq!(plain.status(), StatusCode::OK);
            assert!(!plain.headers().contains_key(header::CONTENT_ENCODING));

            let old = fetch(app(), &format!("/pkg/0000000000000000/{name}"), "br").await;
            assert_eq!(old.status(), StatusCode::NOT_FOUND, "{name}");
            let twin = fetch(app(), &format!("/pkg/{version}/{name}.br"), "br").await;
            assert_eq!(twin.status(), StatusCode::NOT_FOUND, "{name}.br");
        }
    }

    /// Pages go out gzip-compressed when the browser accepts it, except those that show a secret
    /// (BREACH); the plain page is what a browser without gzip gets.
    #[tokio::test]
    async fn pages_are_compressed_unless_they_show_a_secret() {
        let (m, _dir) = manager(&[]).await;
        let app = || routes(m.services.clone(), &Bundle::Embedded);
        let page = fetch(app(), "/login", "gzip, deflate, br").await;
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(page.headers()[header::CONTENT_ENCODING], "gzip");
        assert!(page.headers()[header::CONTENT_TYPE]
            .to_str()
            .expect("ascii")
            .starts_with("text/html"));
        let gz = axum::body::to_bytes(page.into_body(), 1 << 20)
            .await
            .expect("body");
        let mut html = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut html)
            .expect("gunzip");
        assert!(html.contains("Sign in to Arch"), "{html}");
        assert!(gz.len() < html.len() / 2, "{} of {}", gz.len(), html.len());

        let plain = fetch(app(), "/login", "identity").await;
        assert!(!plain.headers().contains_key(header::CONTENT_ENCODING));

        // The same layers around pages of each kind: only those without a secret are compressed.
        let page = || async {
            (
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                "<p>page</p>".repeat(100),
            )
        };
        let pages = || {
            compress_pages(
                Router::new()
                    .route("/users", axum::routing::get(page))
                    .route("/users/{id}", axum::routing::get(page))
                    .route("/u/{secret}", axum::routing::get(page)),
            )
        };
        for (path, compressed) in [("/users", true), ("/users/7", false), ("/u/s3cret", false)] {
            let res = fetch(pages(), path, "gzip").await;
            assert_eq!(res.status(), StatusCode::OK, "{path}");
            assert_eq!(
                res.headers().contains_key(header::CONTENT_ENCODING),
                compressed,
                "{path}"
            );
        }
    }

    #[test]
    fn the_pages_that_show_a_secret() {
        for path in ["/u/abc", "/users/1", "/users/1/", "/u/abc/x"] {
            assert!(shows_secret(path), "{path}");
        }
        for path in [
            "/",
            "/users",
            "/users/",
            "/u",
            "/login",
            "/nodes/1",
            "/settings",
        ] {
            assert!(!shows_secret(path), "{path}");
        }
    }

    /// A --site-root directory keeps plain, revalidated names, and serves the compressed twins
    /// it holds.
    #[tokio::test]
    async fn site_root_serves_plain_names_and_twins() {
        let (m, dir) = manager(&[]).await;
        let pkg = dir.path().join("site/pkg");
        std::fs::create_dir_all(&pkg).expect("mkdir");
        std::fs::write(pkg.join("arch-public.js"), "export function hydrate() {}").expect("write");
        std::fs::write(pkg.join("arch-public.js.br"), b"brotli bytes").expect("write");
        let app = || routes(m.services.clone(), &Bundle::Dir(dir.path().join("site")));
        let page = fetch(app(), "/login", "br").await;
        let html = axum::body::to_bytes(page.into_body(), 1 << 20)
            .await
            .expect("body");
        let html = String::from_utf8_lossy(&html);
        assert!(html.contains("\"/pkg/arch.css\""), "{html}");
        assert!(html.contains("\"/pkg/arch-public.js\""), "{html}");
        assert!(!html.contains("/pkg/arch-users"), "{html}");
        let res = fetch(app(), "/pkg/arch-public.js", "gzip, br").await;
        assert_eq!(res.status(), StatusCode::OK);
        let h = res.headers();
        assert_eq!(h[header::CONTENT_ENCODING], "br");
        assert_eq!(h[header::CACHE_CONTROL], "no-cache");
        let plain = fetch(app(), "/pkg/arch-public.js", "gzip").await;
        assert_eq!(plain.status(), StatusCode::OK);
        assert!(!plain.headers().contains_key(header::CONTENT_ENCODING));
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
