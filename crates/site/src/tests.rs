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
    let mut embedded = embedded_names();
    embedded.sort();
    assert_eq!(embedded, on_disk);
    for name in &on_disk {
        let bytes = std::fs::read(dir.join(name)).expect("read");
        let stored = Bundle::get(name).expect("embedded");
        assert_eq!(stored.data.as_ref(), bytes.as_slice(), "{name}");
    }
}

/// `scripts/build-site.sh` writes a brotli and a gzip twin of every file it serves.
#[test]
fn every_served_file_has_both_twins() {
    for name in names() {
        for e in Encoding::ALL {
            let twin = encoded(&name, Some(e)).unwrap_or_else(|| panic!("{name} has no {e:?}"));
            assert!(
                twin.data.len() < file(&name).expect("original").data.len(),
                "{name} {e:?} is not smaller"
            );
        }
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
        "arch.wasm.br",
        "arch.js.gz",
    ] {
        assert!(file(name).is_none(), "{name}");
        for e in Encoding::ALL {
            assert!(encoded(name, Some(e)).is_none(), "{name} {e:?}");
        }
    }
}

#[test]
fn version_is_short_hex_and_stable() {
    let v = version();
    assert_eq!(v.len(), 16);
    assert!(v.bytes().all(|b| b.is_ascii_hexdigit()), "{v}");
    assert_eq!(version(), v);
}

fn accept(value: Option<&'static str>) -> Vec<Encoding> {
    let mut h = HeaderMap::new();
    if let Some(v) = value {
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static(v));
    }
    acceptable(&h)
}

#[test]
fn accept_encoding_forms() {
    use Encoding::{Brotli, Gzip};
    assert_eq!(accept(None), vec![]);
    assert_eq!(accept(Some("")), vec![]);
    assert_eq!(accept(Some("identity")), vec![]);
    assert_eq!(accept(Some("gzip, deflate, br, zstd")), vec![Brotli, Gzip]);
    assert_eq!(accept(Some("gzip")), vec![Gzip]);
    assert_eq!(accept(Some("x-gzip")), vec![Gzip]);
    assert_eq!(accept(Some("BR")), vec![Brotli]);
    assert_eq!(accept(Some("br;q=0, gzip")), vec![Gzip]);
    assert_eq!(accept(Some("br;q=0.0, gzip;q=0")), vec![]);
    assert_eq!(accept(Some("br;q=0.5, gzip;q=0.8")), vec![Gzip, Brotli]);
    assert_eq!(accept(Some("br;q=oops, gzip")), vec![Gzip]);
    assert_eq!(accept(Some("*")), vec![Brotli, Gzip]);
    assert_eq!(accept(Some("*;q=0")), vec![]);
    assert_eq!(accept(Some("gzip;q=0, *")), vec![Brotli]);
    assert_eq!(accept(Some("br ; q=1 , gzip ; q=0.1")), vec![Brotli, Gzip]);
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

async fn request(method: Method, uri: &str, headers: &[(header::HeaderName, &str)]) -> Response {
    let mut req = axum::http::Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        req = req.header(name, *value);
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
    let v = version();
    for uri in [
        "/pkg/../Cargo.toml".to_owned(),
        "/pkg/%2e%2e/Cargo.toml".to_owned(),
        "/pkg/%2E%2E%2FCargo.toml".to_owned(),
        "/pkg/..%2f..%2fCargo.toml".to_owned(),
        "/pkg/../../crates/site/Cargo.toml".to_owned(),
        "/pkg/nope.js".to_owned(),
        format!("/pkg/{v}/../Cargo.toml"),
        format!("/pkg/{v}/%2e%2e/Cargo.toml"),
        format!("/pkg/{v}/nope.js"),
        format!("/pkg/{v}/{v}/arch.js"),
        format!("/pkg/{v}"),
        format!("/pkg/{v}/"),
    ] {
        let res = request(Method::GET, &uri, &[]).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(body(res).await, b"not found", "{uri}");
    }
}

/// A page rendered by an older manager asks for a version that is gone: 404, whichever name.
#[tokio::test]
async fn other_versions_are_404() {
    for name in names() {
        for old in ["0000000000000000", "0123456789abcdef", "v1", "pkg"] {
            if old == version() {
                continue;
            }
            let uri = format!("/pkg/{old}/{name}");
            let res = request(Method::GET, &uri, &[(header::ACCEPT_ENCODING, "br")]).await;
            assert_eq!(res.status(), StatusCode::NOT_FOUND, "{uri}");
        }
    }
}

/// The twins are not files of their own: 404 by name, with or without a version.
#[tokio::test]
async fn twins_are_not_served_by_name() {
    for name in names() {
        for e in Encoding::ALL {
            for uri in [
                format!("/pkg/{name}{}", e.suffix()),
                format!("/pkg/{}/{name}{}", version(), e.suffix()),
            ] {
                let res =
                    request(Method::GET, &uri, &[(header::ACCEPT_ENCODING, "br, gzip")]).await;
                assert_eq!(res.status(), StatusCode::NOT_FOUND, "{uri}");
            }
        }
    }
}

/// Every file under the plain and the versioned name, in every encoding: type, encoding, length,
/// validators, `Vary`, the cache policy of the name, `HEAD`, and `304` per encoding.
#[tokio::test]
async fn serves_every_file_in_every_encoding() {
    let cases: [(Option<&str>, Option<Encoding>); 6] = [
        (None, None),
        (Some("identity"), None),
        (Some("gzip, deflate, br, zstd"), Some(Encoding::Brotli)),
        (Some("gzip"), Some(Encoding::Gzip)),
        (Some("br;q=0, gzip;q=0.5"), Some(Encoding::Gzip)),
        (Some("br;q=0, gzip;q=0"), None),
    ];
    for name in names() {
        let original = file(&name).expect("embedded");
        for (uri, cache) in [
            (format!("/pkg/{name}"), REVALIDATE),
            (format!("/pkg/{}/{name}", version()), IMMUTABLE),
        ] {
            for (accept, want) in cases {
                let case = format!("{uri} Accept-Encoding {accept:?}");
                let mut headers = Vec::new();
                if let Some(a) = accept {
                    headers.push((header::ACCEPT_ENCODING, a));
                }
                let expected = encoded(&name, want).expect("stored");
                let res = request(Method::GET, &uri, &headers).await;
                assert_eq!(res.status(), StatusCode::OK, "{case}");
                let h = res.headers().clone();
                assert_eq!(h[header::CONTENT_TYPE], original.content_type, "{case}");
                assert_eq!(
                    h.get(header::CONTENT_ENCODING)
                        .map(|v| v.to_str().expect("ascii")),
                    want.map(Encoding::token),
                    "{case}"
                );
                assert_eq!(h[header::VARY], "accept-encoding", "{case}");
                assert_eq!(h[header::CACHE_CONTROL], cache, "{case}");
                assert_eq!(h[header::ETAG], expected.etag.as_str(), "{case}");
                assert_eq!(
                    h[header::CONTENT_LENGTH],
                    expected.data.len().to_string(),
                    "{case}"
                );
                assert_eq!(body(res).await, expected.data.as_ref(), "{case}");

                let head = request(Method::HEAD, &uri, &headers).await;
                assert_eq!(head.status(), StatusCode::OK, "{case}");
                assert_eq!(
                    head.headers()[header::CONTENT_LENGTH],
                    expected.data.len().to_string()
                );
                assert!(body(head).await.is_empty());

                // 304 for this encoding's tag; another encoding's tag is a different entity.
                let mut revalidate = headers.clone();
                revalidate.push((header::IF_NONE_MATCH, expected.etag.as_str()));
                let cached = request(Method::GET, &uri, &revalidate).await;
                assert_eq!(cached.status(), StatusCode::NOT_MODIFIED, "{case}");
                assert_eq!(cached.headers()[header::ETAG], expected.etag.as_str());
                assert_eq!(cached.headers()[header::VARY], "accept-encoding");
                assert_eq!(cached.headers()[header::CACHE_CONTROL], cache);
                assert!(body(cached).await.is_empty());
                for other in [None, Some(Encoding::Brotli), Some(Encoding::Gzip)] {
                    if other == want {
                        continue;
                    }
                    let tag = encoded(&name, other).expect("stored").etag;
                    let mut stale = headers.clone();
                    stale.push((header::IF_NONE_MATCH, tag.as_str()));
                    let res = request(Method::GET, &uri, &stale).await;
                    assert_eq!(res.status(), StatusCode::OK, "{case} with {other:?}'s tag");
                }
            }
        }
    }
}

#[test]
fn etags_are_the_content_hash() {
    for name in names() {
        for e in [None, Some(Encoding::Brotli), Some(Encoding::Gzip)] {
            let f = encoded(&name, e).expect("embedded");
            let digest = hex::encode(Sha256::digest(&f.data));
            assert_eq!(f.etag, format!("\"{digest}\""), "{name} {e:?}");
        }
    }
}

/// The gzip twins are gzip streams (the browser test checks that both twins decode to a page that
/// hydrates).
#[test]
fn gzip_twins_are_gzip() {
    for name in names() {
        let gz = encoded(&name, Some(Encoding::Gzip)).expect("gz");
        assert_eq!(gz.data.get(..2), Some(&[0x1f, 0x8b][..]), "{name}");
    }
}
