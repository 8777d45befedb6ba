//! The admin panel's browser bundle, embedded in the `arch-manager` binary at build time, and the
//! HTTP handler that serves it under `/pkg`.
//!
//! `scripts/build-site.sh` writes the bundle to `target/site/pkg` (`arch.js`, `arch.wasm`,
//! `arch.css`); compiling this crate copies whatever is there into the binary, so a deployed
//! manager needs no files next to it. Build the bundle first, then the manager. Without a
//! bundle the crate compiles with no files ([`is_empty`]): the manager then warns at start and
//! the panel's pages render but cannot hydrate.
//!
//! Serving ([`router`]): `GET` and `HEAD`, the `Content-Type` of the file's extension, an
//! `ETag` from the SHA-256 of its bytes (computed at build time) with `304 Not Modified` on a
//! matching `If-None-Match`, `Cache-Control: no-cache` (the names carry no content hash, so a
//! browser must revalidate), and 404 for any name that is not an embedded file. Names are looked
//! up in the embedded table only: nothing is ever read from the file system, so no request path
//! (`..`, encoded or not) can reach a file outside the bundle.
//!
//! Knows nothing of the manager, Leptos or the database.

use std::borrow::Cow;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use rust_embed::RustEmbed;

/// The bundle directory, relative to this crate (where `scripts/build-site.sh` writes it).
#[derive(RustEmbed)]
#[folder = "../../target/site/pkg"]
#[allow_missing = true]
struct Bundle;

/// One embedded file, ready to be served.
#[derive(Debug, Clone)]
pub struct File {
    /// The file's bytes.
    pub data: Cow<'static, [u8]>,
    /// Strong entity tag, quoted: the hex SHA-256 of [`File::data`].
    pub etag: String,
    /// MIME type derived from the name's extension.
    pub content_type: &'static str,
}

/// Whether the binary was built without a bundle (no file embedded).
pub fn is_empty() -> bool {
    Bundle::iter().next().is_none()
}

/// Names of the embedded files, relative to `pkg/`, e.g. `arch.wasm`.
pub fn names() -> Vec<String> {
    Bundle::iter().map(Cow::into_owned).collect()
}

/// The embedded file `name` (relative to `pkg/`), if there is one. Only exact names of embedded
/// files match; a name with an empty, `.` or `..` segment never does.
pub fn file(name: &str) -> Option<File> {
    if name
        .split('/')
        .any(|segment| matches!(segment, "" | "." | ".."))
    {
        return None;
    }
    let embedded = Bundle::get(name)?;
    Some(File {
        etag: format!("\"{}\"", hex::encode(embedded.metadata.sha256_hash())),
        content_type: content_type(name),
        data: embedded.data,
    })
}

/// The MIME type of a bundle file by its extension (`application/octet-stream` if unknown).
pub fn content_type(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, ext)| ext)
        .unwrap_or_default();
    match ext.to_ascii_lowercase().as_str() {
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "html" => "text/html; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Routes serving the embedded files at `/{name}`; nest it where the pages expect the bundle
/// (`/pkg`).
pub fn router() -> Router {
    Router::new().route("/{*name}", get(serve).head(serve))
}

/// `GET`/`HEAD` of one embedded file.
async fn serve(method: Method, Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some(file) = file(&name) else {
        tracing::debug!(file = %name, embedded = !is_empty(), "no such file in the panel bundle");
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let etag = HeaderValue::from_str(&file.etag);
    let mut res = if matches_etag(&headers, &file.etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let len = file.data.len();
        let mut res = if method == Method::HEAD {
            Response::new(axum::body::Body::empty())
        } else {
            Response::new(axum::body::Body::from(file.data))
        };
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(file.content_type),
        );
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        res
    };
    let h = res.headers_mut();
    if let Ok(etag) = etag {
        h.insert(header::ETAG, etag);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

/// Whether `If-None-Match` names `etag` (or is `*`); weak tags compare by their value.
fn matches_etag(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt as _;

    fn disk_pkg() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/site/pkg")
    }

    #[test]
    fn embedded_bytes_equal_the_built_bundle() {
        let dir = disk_pkg();
        let Ok(entries) = std::fs::read_dir(&dir) else {
            // No bundle built before this test binary: nothing may be embedded either.
            assert!(
                is_empty(),
                "files embedded but {} is missing",
                dir.display()
            );
            return;
        };
        let mut on_disk: Vec<String> = entries
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let mut embedded = names();
        embedded.sort();
        assert_eq!(embedded, on_disk);
        for name in &on_disk {
            let bytes = std::fs::read(dir.join(name)).expect("read");
            let file = file(name).expect("embedded");
            assert_eq!(file.data.as_ref(), bytes.as_slice(), "{name}");
        }
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type("arch.wasm"), "application/wasm");
        assert_eq!(content_type("arch.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("arch.CSS"), "text/css; charset=utf-8");
        assert_eq!(content_type("README"), "application/octet-stream");
    }

    #[test]
    fn names_outside_the_bundle_never_match() {
        for name in [
            "",
            "../Cargo.toml",
            "./arch.js",
            "a//b",
            "..",
            "/etc/passwd",
        ] {
            assert!(file(name).is_none(), "{name}");
        }
    }

    #[test]
    fn if_none_match_forms() {
        let tag = "\"abc\"";
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::IF_NONE_MATCH, HeaderValue::from_static(v));
            matches_etag(&h, tag)
        };
        assert!(with("\"abc\""));
        assert!(with("\"x\", W/\"abc\""));
        assert!(with("*"));
        assert!(!with("\"abcd\""));
        assert!(!matches_etag(&HeaderMap::new(), tag));
    }

    async fn request(method: Method, uri: &str, etag: Option<&str>) -> Response {
        let mut req = axum::http::Request::builder().method(method).uri(uri);
        if let Some(tag) = etag {
            req = req.header(header::IF_NONE_MATCH, tag);
        }
        let req = req.body(axum::body::Body::empty()).expect("request");
        Router::new()
            .nest("/pkg", router())
            .oneshot(req)
            .await
            .expect("response")
    }

    async fn body(res: Response) -> Vec<u8> {
        axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .expect("body")
            .to_vec()
    }

    #[tokio::test]
    async fn traversal_and_unknown_names_are_404() {
        for uri in [
            "/pkg/../Cargo.toml",
            "/pkg/%2e%2e/Cargo.toml",
            "/pkg/%2E%2E%2FCargo.toml",
            "/pkg/..%2f..%2fCargo.toml",
            "/pkg/../../crates/site/Cargo.toml",
            "/pkg/nope.js",
        ] {
            let res = request(Method::GET, uri, None).await;
            assert_eq!(res.status(), StatusCode::NOT_FOUND, "{uri}");
            assert_eq!(body(res).await, b"not found", "{uri}");
        }
    }

    #[tokio::test]
    async fn serves_every_embedded_file_with_etag_and_revalidation() {
        for name in names() {
            let uri = format!("/pkg/{name}");
            let expected = file(&name).expect("embedded");
            let res = request(Method::GET, &uri, None).await;
            assert_eq!(res.status(), StatusCode::OK, "{uri}");
            let h = res.headers().clone();
            assert_eq!(h[header::CONTENT_TYPE], expected.content_type);
            assert_eq!(h[header::CACHE_CONTROL], "no-cache");
            assert_eq!(h[header::ETAG], expected.etag.as_str());
            assert_eq!(h[header::CONTENT_LENGTH], expected.data.len().to_string());
            assert_eq!(body(res).await, expected.data.as_ref());

            let head = request(Method::HEAD, &uri, None).await;
            assert_eq!(head.status(), StatusCode::OK);
            assert_eq!(
                head.headers()[header::CONTENT_LENGTH],
                expected.data.len().to_string()
            );
            assert!(body(head).await.is_empty());

            let cached = request(Method::GET, &uri, Some(&expected.etag)).await;
            assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
            assert_eq!(cached.headers()[header::ETAG], expected.etag.as_str());
            assert!(body(cached).await.is_empty());

            let stale = request(Method::GET, &uri, Some("\"old\"")).await;
            assert_eq!(stale.status(), StatusCode::OK);
        }
    }

    #[test]
    fn etag_is_the_content_hash() {
        for name in names() {
            use sha2::Digest as _;
            let f = file(&name).expect("embedded");
            let digest = hex::encode(sha2::Sha256::digest(&f.data));
            assert_eq!(f.etag, format!("\"{digest}\""));
        }
    }
}
