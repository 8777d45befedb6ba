//! The admin panel's browser bundle, embedded in the `arch-manager` binary at build time, and the
//! HTTP handler that serves it under `/pkg`.
//!
//! `scripts/build-site.sh` writes the bundles to `target/site/pkg`: `arch-{group}.js` and `.wasm` per group of pages, and
//! `arch.css`, each with a brotli (`.br`) and a gzip (`.gz`) twin compressed ahead of time.
//! Compiling this crate copies whatever is there into the binary, so a deployed manager needs no
//! files next to it. Build the bundle first, then the manager. Without a bundle the crate
//! compiles with no files ([`is_empty`]): the manager then warns at start and the panel's pages
//! render but cannot hydrate.
//!
//! Serving ([`router`], nested at `/pkg`):
//!
//! - **Names.** `/pkg/{version}/{name}`, where [`version`] is a short hash of every embedded
//!   file, is what the pages link to: a new bundle means new URLs, so these answers carry
//!   `Cache-Control: public, max-age=31536000, immutable`. Any other version (a page rendered by
//!   an older manager) is 404: the bundle it wants is gone, and the old page and a new bundle
//!   would not hydrate together; reloading the page fetches the current names. The plain
//!   `/pkg/{name}` still answers, with `Cache-Control: no-cache` (revalidate every time).
//! - **Encodings.** When the request's `Accept-Encoding` allows it, the `.br` twin (preferred) or
//!   the `.gz` twin is sent with `Content-Encoding`, the original's `Content-Type` and its own
//!   `ETag`; otherwise the original bytes. Every file answer carries `Vary: Accept-Encoding`.
//!   The twins are never served under their own names (`/pkg/arch.wasm.br` is 404), so nothing
//!   can fetch compressed bytes labelled as something else.
//! - **Validators.** `ETag` is the SHA-256 of the bytes sent (computed at build time), and a
//!   matching `If-None-Match` gets `304 Not Modified`. `GET` and `HEAD` only.
//! - **Confinement.** Names are looked up in the embedded table only: nothing is ever read from
//!   the file system, so no request path (`..`, encoded or not) can reach a file outside the
//!   bundle. Unknown names are 404.
//!
//! Knows nothing of the manager, Leptos or the database.

use std::borrow::Cow;
use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use rust_embed::RustEmbed;
use sha2::{Digest as _, Sha256};

/// The bundle directory, relative to this crate (where `scripts/build-site.sh` writes it).
#[derive(RustEmbed)]
#[folder = "../../target/site/pkg"]
#[allow_missing = true]
struct Bundle;

/// `Cache-Control` of a versioned name: its bytes never change.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of a plain name: revalidate with the `ETag` before every use.
pub const REVALIDATE: &str = "no-cache";

/// A content coding the bundle is stored in ahead of time, besides the original bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Brotli, the `.br` twin.
    Brotli,
    /// Gzip, the `.gz` twin.
    Gzip,
}

impl Encoding {
    /// Every stored encoding, most preferred first.
    pub const ALL: [Encoding; 2] = [Encoding::Brotli, Encoding::Gzip];

    /// The `Content-Encoding` / `Accept-Encoding` token.
    pub fn token(self) -> &'static str {
        match self {
            Encoding::Brotli => "br",
            Encoding::Gzip => "gzip",
        }
    }

    /// The file-name suffix of the twin, with its dot.
    pub fn suffix(self) -> &'static str {
        match self {
            Encoding::Brotli => ".br",
            Encoding::Gzip => ".gz",
        }
    }
}

/// One embedded file (in one encoding), ready to be served.
#[derive(Debug, Clone)]
pub struct File {
    /// The bytes to send.
    pub data: Cow<'static, [u8]>,
    /// Strong entity tag, quoted: the hex SHA-256 of [`File::data`].
    pub etag: String,
    /// MIME type derived from the original name's extension.
    pub content_type: &'static str,
    /// `Some` when [`File::data`] is a compressed twin of the original.
    pub encoding: Option<Encoding>,
}

/// Whether the binary was built without a bundle (no file embedded).
pub fn is_empty() -> bool {
    Bundle::iter().next().is_none()
}

/// Whether `name` is a compressed twin (`.br`, `.gz`), which is never served by its own name.
fn is_twin(name: &str) -> bool {
    Encoding::ALL.iter().any(|e| name.ends_with(e.suffix()))
}

/// Names of the files served, relative to `pkg/`, e.g. `arch.wasm` (the compressed twins are
/// not among them; see [`embedded_names`]).
pub fn names() -> Vec<String> {
    Bundle::iter()
        .filter(|name| !is_twin(name))
        .map(Cow::into_owned)
        .collect()
}

/// Names of every embedded file, twins included, e.g. `arch.wasm.br`.
pub fn embedded_names() -> Vec<String> {
    Bundle::iter().map(Cow::into_owned).collect()
}

/// The bundle's version: the first 16 hex digits of a SHA-256 over every embedded file's name
/// and content hash. The pages link to `/pkg/{version}/…`, so any change to the bundle changes
/// every URL.
pub fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut names = embedded_names();
        names.sort();
        let mut hasher = Sha256::new();
        for name in &names {
            if let Some(file) = Bundle::get(name) {
                hasher.update(name.as_bytes());
                hasher.update([0]);
                hasher.update(file.metadata.sha256_hash());
            }
        }
        let mut hex = hex::encode(hasher.finalize());
        hex.truncate(16);
        hex
    })
}

/// The embedded file `name` (relative to `pkg/`) in its original bytes, if there is one. Only
/// exact names of embedded files match; a name with an empty, `.` or `..` segment never does,
/// nor does the name of a compressed twin.
pub fn file(name: &str) -> Option<File> {
    encoded(name, None)
}

/// The file `name` stored in `encoding` (`None`: the original bytes), if both exist.
pub fn encoded(name: &str, encoding: Option<Encoding>) -> Option<File> {
    if is_twin(name)
        || name
            .split('/')
            .any(|segment| matches!(segment, "" | "." | ".."))
    {
        return None;
    }
    let stored = match encoding {
        Some(e) => {
            // The original must exist too: a twin alone is never served.
            Bundle::get(name)?;
            Bundle::get(&format!("{name}{}", e.suffix()))?
        }
        None => Bundle::get(name)?,
    };
    Some(File {
        etag: format!("\"{}\"", hex::encode(stored.metadata.sha256_hash())),
        content_type: content_type(name),
        data: stored.data,
        encoding,
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

/// The stored encodings `Accept-Encoding` allows, most preferred first: by the client's q-value,
/// brotli before gzip on a tie. A coding with `q=0` is refused; `*` stands for every coding not
/// named; no header means none (the original bytes).
pub fn acceptable(headers: &HeaderMap) -> Vec<Encoding> {
    let mut named: Vec<(String, f32)> = Vec::new();
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            if coding.is_empty() {
                continue;
            }
            let mut q = 1.0_f32;
            for param in parts {
                if let Some((key, val)) = param.split_once('=') {
                    if key.trim().eq_ignore_ascii_case("q") {
                        q = val.trim().parse().unwrap_or(0.0);
                    }
                }
            }
            named.push((coding, q));
        }
    }
    let q_of = |tokens: &[&str]| -> f32 {
        named
            .iter()
            .filter(|(c, _)| tokens.contains(&c.as_str()))
            .map(|(_, q)| *q)
            .reduce(f32::max)
            .or_else(|| {
                named
                    .iter()
                    .filter(|(c, _)| c == "*")
                    .map(|(_, q)| *q)
                    .reduce(f32::max)
            })
            .unwrap_or(0.0)
    };
    let mut ranked: Vec<(Encoding, f32)> = Encoding::ALL
        .iter()
        .map(|&e| {
            let q = match e {
                Encoding::Brotli => q_of(&["br"]),
                Encoding::Gzip => q_of(&["gzip", "x-gzip"]),
            };
            (e, q)
        })
        .filter(|(_, q)| *q > 0.0)
        .collect();
    // Stable: equal q-values keep brotli first.
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    ranked.into_iter().map(|(e, _)| e).collect()
}

/// Routes serving the embedded files at `/{version}/{name}` and `/{name}`; nest it where the
/// pages expect the bundle (`/pkg`).
pub fn router() -> Router {
    Router::new().route("/{*name}", get(serve).head(serve))
}

/// `GET`/`HEAD` of one embedded file.
async fn serve(method: Method, Path(path): Path<String>, headers: HeaderMap) -> Response {
    let (name, cache) = match path.split_once('/') {
        Some((v, rest)) if v == version() => (rest, IMMUTABLE),
        _ => (path.as_str(), REVALIDATE),
    };
    let chosen = acceptable(&headers)
        .into_iter()
        .find_map(|e| encoded(name, Some(e)))
        .or_else(|| file(name));
    let Some(file) = chosen else {
        tracing::debug!(file = %path, embedded = !is_empty(), "no such file in the panel bundle");
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
        if let Some(e) = file.encoding {
            h.insert(
                header::CONTENT_ENCODING,
                HeaderValue::from_static(e.token()),
            );
        }
        res
    };
    let h = res.headers_mut();
    if let Ok(etag) = etag {
        h.insert(header::ETAG, etag);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
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
mod tests;
