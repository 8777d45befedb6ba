//! Tests of the node channel's TLS: fingerprints, identities on disk, SANs, and pinning through
//! reqwest against a tokio-rustls server on 127.0.0.1.

use super::*;
use std::error::Error as _;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// SHA-256 of "abc" (FIPS 180-2, appendix B.1).
const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
const ABC_COLONS: &str = "BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD";

fn sans(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
}

#[test]
fn fingerprints_format_as_lowercase_hex_and_parse_both_forms() {
    let abc = Fingerprint::of(b"abc");
    assert_eq!(abc.to_string(), ABC);
    assert_eq!(format!("{abc:?}"), format!("Fingerprint({ABC})"));
    let accepted = [
        ABC.to_owned(),
        ABC.to_uppercase(),
        ABC_COLONS.to_owned(),
        ABC_COLONS.to_lowercase(),
    ];
    for input in &accepted {
        assert_eq!(input.parse::<Fingerprint>().expect(input), abc, "{input}");
    }
    let refused = [
        "".to_owned(),
        ABC[..63].to_owned(),
        format!("{ABC}0"),
        format!("{}g", &ABC[..63]),
        format!(" {ABC}"),
        format!("{ABC}\n"),
        format!("sha256:{ABC}"),
        format!("+{}", &ABC[1..]),
        ABC_COLONS[..ABC_COLONS.len() - 3].to_owned(),
        format!("{ABC_COLONS}:"),
        ABC_COLONS.replacen(':', "", 1),
        ABC_COLONS.replace(':', "-"),
        ABC_COLONS.replacen(":", "::", 1),
    ];
    for input in &refused {
        let err = input.parse::<Fingerprint>().expect_err(input);
        assert_eq!(
            err.to_string(),
            format!("{input:?} is not a SHA-256 certificate fingerprint: expected 64 hex digits, optionally as 32 colon-separated pairs")
        );
    }
}

#[test]
fn fingerprints_serialize_as_their_string() {
    let abc = Fingerprint::of(b"abc");
    let json = serde_json::to_string(&abc).expect("serialize");
    assert_eq!(json, format!("\"{ABC}\""));
    let back: Fingerprint = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(back, abc);
    let colons: Fingerprint =
        serde_json::from_str(&format!("\"{ABC_COLONS}\"")).expect("deserialize colons");
    assert_eq!(colons, abc);
    let err = serde_json::from_str::<Fingerprint>("\"abc\"").expect_err("short");
    assert_eq!(
        err.to_string(),
        "\"abc\" is not a SHA-256 certificate fingerprint: expected 64 hex digits, optionally as 32 colon-separated pairs"
    );
}

#[test]
fn the_identity_is_created_once_then_loaded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let names = sans(&["127.0.0.1", "node.example"]);
    let (first, created) = NodeIdentity::load_or_create(dir.path(), &names).expect("create");
    assert!(created);
    let cert = dir.path().join(CERT_FILE);
    let key = dir.path().join(KEY_FILE);
    assert_eq!(mode(&key), 0o600);
    assert_eq!(mode(&cert) & 0o600, 0o600);
    let mut files: Vec<String> = std::fs::read_dir(dir.path())
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, [CERT_FILE, KEY_FILE]);
    let pem = std::fs::read_to_string(&key).expect("key");
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");

    let (second, created) = NodeIdentity::load_or_create(dir.path(), &names).expect("load");
    assert!(!created);
    assert_eq!(second.fingerprint(), first.fingerprint());
    let der = CertificateDer::from_pem_file(&cert).expect("cert pem");
    assert_eq!(Fingerprint::of(&der), first.fingerprint());
    assert_eq!(
        Fingerprint::of_pem_file(&cert).expect("fingerprint of the file"),
        first.fingerprint()
    );
    assert!(matches!(
        Fingerprint::of_pem_file(&key),
        Err(TlsError::NoCertificate { .. })
    ));

    // A key opened to others is narrowed back on load.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    NodeIdentity::load_or_create(dir.path(), &names).expect("load again");
    assert_eq!(mode(&key), 0o600);
}

#[test]
fn a_missing_key_is_refused_and_a_lone_key_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (first, _) = NodeIdentity::load_or_create(dir.path(), &[]).expect("create");
    let cert = dir.path().join(CERT_FILE);
    let key = dir.path().join(KEY_FILE);

    std::fs::remove_file(&cert).expect("remove cert");
    let (second, created) = NodeIdentity::load_or_create(dir.path(), &[]).expect("replace");
    assert!(created);
    assert_ne!(second.fingerprint(), first.fingerprint());

    std::fs::remove_file(&key).expect("remove key");
    let err = NodeIdentity::load_or_create(dir.path(), &[]).expect_err("no key");
    assert_eq!(
        err.to_string(),
        format!(
            "{} exists but {} is missing: restore the key, or remove the certificate to generate a new one (the manager must then re-pin this node)",
            cert.display(),
            key.display()
        )
    );
    assert!(cert.exists(), "the certificate is left alone");
}

#[test]
fn operator_files_need_a_matching_key() {
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    let (ident_a, _) = NodeIdentity::load_or_create(a.path(), &[]).expect("a");
    NodeIdentity::load_or_create(b.path(), &[]).expect("b");
    let cert_a = a.path().join(CERT_FILE);
    let key_a = a.path().join(KEY_FILE);
    let key_b = b.path().join(KEY_FILE);

    let own = NodeIdentity::from_files(&cert_a, &key_a).expect("own pair");
    assert_eq!(own.fingerprint(), ident_a.fingerprint());

    let err = NodeIdentity::from_files(&cert_a, &key_b).expect_err("mismatch");
    assert_eq!(
        err.to_string(),
        format!(
            "the private key in {} does not belong to the certificate in {}",
            key_b.display(),
            cert_a.display()
        )
    );

    // A chain: the leaf comes first and is the one fingerprinted.
    let chain = a.path().join("chain.pem");
    let pem_a = std::fs::read_to_string(&cert_a).expect("a");
    let pem_b = std::fs::read_to_string(b.path().join(CERT_FILE)).expect("b");
    std::fs::write(&chain, format!("{pem_a}{pem_b}")).expect("write chain");
    let chained = NodeIdentity::from_files(&chain, &key_a).expect("chain");
    assert_eq!(chained.fingerprint(), ident_a.fingerprint());

    let empty = a.path().join("empty.pem");
    std::fs::write(&empty, "not pem\n").expect("write");
    let err = NodeIdentity::from_files(&empty, &key_a).expect_err("empty");
    assert_eq!(
        err.to_string(),
        format!("{}: no PEM certificate in the file", empty.display())
    );
    let err = NodeIdentity::from_files(&cert_a, &empty).expect_err("no key");
    assert_eq!(
        err.to_string(),
        format!(
            "{}: no usable PEM private key (PKCS#8, SEC1 or PKCS#1)",
            empty.display()
        )
    );
    assert_eq!(
        err.source().map(|e| e.to_string()),
        Some("no items found".to_owned())
    );
    let missing = a.path().join("missing.pem");
    let err = NodeIdentity::from_files(&missing, &key_a).expect_err("missing");
    assert_eq!(err.to_string(), format!("reading {}", missing.display()));
}

#[test]
fn the_generated_certificate_names_its_sans() {
    let dir = tempfile::tempdir().expect("tempdir");
    let names = sans(&["127.0.0.1", "[::1]", "node.example", "node.example", ""]);
    NodeIdentity::load_or_create(dir.path(), &names).expect("create");
    let der = CertificateDer::from_pem_file(dir.path().join(CERT_FILE)).expect("cert");
    // The certificate as its own root: a WebPKI check then tests the names only.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der.clone()).expect("root");
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .expect("verifier");
    let check = |name: &str| {
        let name = ServerName::try_from(name.to_owned()).expect("name");
        verifier
            .verify_server_cert(&der, &[], &name, &[], UnixTime::now())
            .map(|_| ())
    };
    for good in ["127.0.0.1", "::1", "node.example"] {
        assert_eq!(check(good), Ok(()), "{good}");
    }
    for bad in ["other.example", "127.0.0.2"] {
        assert!(
            matches!(
                check(bad),
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                        | CertificateError::NotValidForNameContext { .. }
                ))
            ),
            "{bad}: {:?}",
            check(bad)
        );
    }
}

/// A tokio-rustls server on 127.0.0.1 answering every request with `200` and the negotiated
/// ALPN protocol as the body.
async fn serve(config: Arc<ServerConfig>) -> SocketAddr {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let alpn = tls.get_ref().1.alpn_protocol().unwrap_or(b"none").to_vec();
                let mut response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    alpn.len()
                )
                .into_bytes();
                response.extend_from_slice(&alpn);
                let _ = tls.write_all(&response).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

fn client(config: ClientConfig) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .no_proxy()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .expect("client")
}

/// The error and its sources, outermost first, joined by " / ".
fn chain(err: &dyn std::error::Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(e) = source {
        parts.push(e.to_string());
        source = e.source();
    }
    parts.join(" / ")
}

#[tokio::test]
async fn reqwest_reaches_a_node_only_through_its_pin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (identity, _) =
        NodeIdentity::load_or_create(dir.path(), &sans(&["127.0.0.1"])).expect("identity");
    let addr = serve(server_config(&identity).expect("server config")).await;
    let url = format!("https://{addr}/v1/info");
    let served = identity.fingerprint();

    for expected in [Some(served), None] {
        let (config, presented) = pinned_client_config(expected).expect("client config");
        let response = client(config).get(&url).send().await.expect("pinned call");
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        assert_eq!(response.text().await.expect("body"), "http/1.1");
        assert_eq!(presented.get(), Some(served), "{expected:?}");
        assert!(presented.mismatch().is_none());
    }

    let other = Fingerprint::of(b"another certificate");
    let (config, presented) = pinned_client_config(Some(other)).expect("client config");
    let err = client(config)
        .get(&url)
        .send()
        .await
        .expect_err("wrong pin");
    let text = chain(&err);
    assert!(
        text.contains(&format!(
            "invalid peer certificate: Other(OtherError(CertificateChanged {{ pinned: Fingerprint({other}), presented: Fingerprint({served}) }}))"
        )),
        "{text}"
    );
    assert_eq!(presented.get(), Some(served));
    assert_eq!(
        presented.mismatch().map(|e| e.to_string()),
        Some(format!(
            "certificate changed: pinned {other}, presented {served}"
        ))
    );

    let (tls12, presented) =
        client_config(Some(served), &[&rustls::version::TLS12]).expect("tls 1.2 config");
    let err = client(tls12).get(&url).send().await.expect_err("tls 1.2");
    assert!(err.is_connect(), "{}", chain(&err));
    assert_eq!(presented.get(), None, "no certificate reached the client");
    assert!(presented.mismatch().is_none());
}

#[tokio::test]
async fn the_pinned_certificate_without_its_key_is_refused() {
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    let (pinned, _) = NodeIdentity::load_or_create(a.path(), &[]).expect("a");
    NodeIdentity::load_or_create(b.path(), &[]).expect("b");
    // An impostor that copied the pinned certificate but signs with another key.
    let cert = CertificateDer::from_pem_file(a.path().join(CERT_FILE)).expect("cert");
    let key = PrivateKeyDer::from_pem_file(b.path().join(KEY_FILE)).expect("key");
    let signer = provider()
        .key_provider
        .load_private_key(key)
        .expect("signer");
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("versions")
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(CertifiedKey::new(
            vec![cert],
            signer,
        ))));
    config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
    let addr = serve(Arc::new(config)).await;

    let (config, presented) = pinned_client_config(Some(pinned.fingerprint())).expect("client");
    let err = client(config)
        .get(format!("https://{addr}/v1/info"))
        .send()
        .await
        .expect_err("impostor");
    let text = chain(&err);
    assert!(
        text.contains("invalid peer certificate: BadSignature"),
        "{text}"
    );
    assert_eq!(presented.get(), Some(pinned.fingerprint()));
    assert!(presented.mismatch().is_none());
}
