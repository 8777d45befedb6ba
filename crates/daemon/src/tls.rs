//! TLS for the manager ↔ node channel: the node's certificate and key ([`NodeIdentity`]), the
//! node's server configuration ([`server_config`]) and the manager's client configuration that
//! pins a node's certificate by its SHA-256 fingerprint ([`pinned_client_config`]).
//!
//! Trust model: a node generates a self-signed certificate on first start (or uses an operator's
//! own); the manager stores the SHA-256 [`Fingerprint`] of the node's leaf certificate, given by
//! the operator or taken on first use, and from then on accepts exactly that certificate. Names,
//! CA chains and validity dates are not consulted: the pin is the trust. The handshake signature
//! is always verified with the provider's algorithms, so a server must hold the pinned
//! certificate's private key, not merely present the certificate.
//!
//! Both sides speak TLS 1.3 only, on rustls' `ring` provider (the one reqwest is built with, so
//! a [`rustls::ClientConfig`] from here can be handed to `reqwest::ClientBuilder::use_preconfigured_tls`).
//! Errors: [`TlsError`]; binaries add context with anyhow.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, OtherError, ServerConfig,
    SignatureScheme, SupportedProtocolVersion,
};
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};

/// The certificate file [`NodeIdentity::load_or_create`] keeps in the data dir (PEM, `0644`).
pub const CERT_FILE: &str = "tls-cert.pem";
/// The private key file next to it (PEM, PKCS#8, `0600`).
pub const KEY_FILE: &str = "tls-key.pem";
/// The only application protocol either side offers: the node API is HTTP/1.1.
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// Everything that can go wrong with the node channel's certificates and configurations.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{input:?} is not a SHA-256 certificate fingerprint: expected 64 hex digits, optionally as 32 colon-separated pairs")]
    BadFingerprint { input: String },
    #[error("reading {}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("writing {}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("setting the permissions of {}: {reason}", path.display())]
    Permissions { path: PathBuf, reason: String },
    #[error("{}: no PEM certificate in the file", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{}: not a PEM file of X.509 certificates", path.display())]
    BadCertificate { path: PathBuf, source: FileError },
    #[error("{}: no usable PEM private key (PKCS#8, SEC1 or PKCS#1)", path.display())]
    BadKey { path: PathBuf, source: FileError },
    #[error("the private key in {} does not belong to the certificate in {}", key.display(), cert.display())]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("{} exists but {} is missing: restore the key, or remove the certificate to generate a new one (the manager must then re-pin this node)", cert.display(), key.display())]
    MissingKey { cert: PathBuf, key: PathBuf },
    #[error("generating the node certificate")]
    Generate(#[from] rcgen::Error),
    #[error("certificate changed: pinned {pinned}, presented {presented}")]
    CertificateChanged {
        pinned: Fingerprint,
        presented: Fingerprint,
    },
    #[error("building the TLS configuration")]
    Config(#[from] rustls::Error),
}

/// Why a certificate or key file was refused: its PEM does not parse, or rustls refuses what
/// it holds (a malformed certificate, a key type the provider cannot sign with).
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error(transparent)]
    Pem(#[from] rustls::pki_types::pem::Error),
    #[error(transparent)]
    Rustls(#[from] rustls::Error),
}

/// The SHA-256 digest of a certificate's DER encoding.
///
/// Displayed (and serialized) as 64 lowercase hex digits without separators: one word that a
/// double click selects whole in a terminal or a browser. Parsing also takes the colon-separated
/// pairs `openssl x509 -noout -fingerprint -sha256` prints, in either case; nothing else (no
/// whitespace, prefixes or other separators).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER-encoded certificate.
    pub fn of(cert_der: &[u8]) -> Self {
        Self(Sha256::digest(cert_der).into())
    }

    /// The 32 digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The fingerprint of the first (leaf) certificate in a PEM file such as a node's
    /// [`CERT_FILE`]: what the manager pins for a node serving that certificate.
    pub fn of_pem_file(path: &Path) -> Result<Self, TlsError> {
        let pem = std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })?;
        match CertificateDer::pem_slice_iter(&pem).next() {
            Some(Ok(leaf)) => Ok(Self::of(&leaf)),
            Some(Err(e)) => Err(TlsError::BadCertificate {
                path: path.to_owned(),
                source: e.into(),
            }),
            None => Err(TlsError::NoCertificate {
                path: path.to_owned(),
            }),
        }
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl FromStr for Fingerprint {
    type Err = TlsError;

    fn from_str(s: &str) -> Result<Self, TlsError> {
        let bad = || TlsError::BadFingerprint {
            input: s.to_owned(),
        };
        let digits: Vec<u8> = if s.contains(':') {
            let pairs: Vec<&str> = s.split(':').collect();
            if pairs.len() != 32 || pairs.iter().any(|p| p.len() != 2) {
                return Err(bad());
            }
            pairs.concat().into_bytes()
        } else {
            s.as_bytes().to_vec()
        };
        if digits.len() != 64 {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
            let hi = hex_value(pair[0]).ok_or_else(bad)?;
            let lo = hex_value(pair[1]).ok_or_else(bad)?;
            *byte = (hi << 4) | lo;
        }
        Ok(Self(out))
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl serde::Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Fingerprint {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A node's certificate chain and private key, ready for [`server_config`].
#[derive(Clone)]
pub struct NodeIdentity {
    key: Arc<CertifiedKey>,
    fingerprint: Fingerprint,
}

impl fmt::Debug for NodeIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeIdentity")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl NodeIdentity {
    /// The identity kept in `dir` (the node's data dir, which must exist): [`CERT_FILE`] and
    /// [`KEY_FILE`] are loaded when present; on first start a self-signed ECDSA P-256 certificate
    /// is generated for `sans` (IP addresses, `[v6]` included, become IP SANs, anything else a
    /// DNS SAN) and written, the key with mode `0600` from its creation on. The flag says
    /// whether it was created now, so the caller can print the fingerprint once.
    ///
    /// A key left without its certificate (a first start interrupted between the two writes)
    /// is replaced; a certificate without its key is an error, since the manager may have
    /// pinned it.
    pub fn load_or_create(dir: &Path, sans: &[String]) -> Result<(Self, bool), TlsError> {
        let cert_path = dir.join(CERT_FILE);
        let key_path = dir.join(KEY_FILE);
        let exists = |p: &Path| {
            p.try_exists().map_err(|source| TlsError::Read {
                path: p.to_owned(),
                source,
            })
        };
        match (exists(&cert_path)?, exists(&key_path)?) {
            (true, true) => {
                crate::fs::restrict(&key_path, 0o600).map_err(|e| TlsError::Permissions {
                    path: key_path.clone(),
                    reason: format!("{e:#}"),
                })?;
                Ok((Self::from_files(&cert_path, &key_path)?, false))
            }
            (true, false) => Err(TlsError::MissingKey {
                cert: cert_path,
                key: key_path,
            }),
            (false, _) => {
                let (cert_pem, key_pem, identity) = generate(sans, &cert_path, &key_path)?;
                write_atomically(&key_path, key_pem.as_bytes(), 0o600)?;
                write_atomically(&cert_path, cert_pem.as_bytes(), 0o644)?;
                Ok((identity, true))
            }
        }
    }

    /// An operator's own certificate: `cert` holds the leaf first and optionally its chain,
    /// `key` the leaf's private key. Refused when the key does not belong to the leaf.
    pub fn from_files(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|source| TlsError::Read {
                path: p.to_owned(),
                source,
            })
        };
        let chain = CertificateDer::pem_slice_iter(&read(cert)?)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::BadCertificate {
                path: cert.to_owned(),
                source: e.into(),
            })?;
        let key_der = PrivateKeyDer::from_pem_slice(&read(key)?).map_err(|e| TlsError::BadKey {
            path: key.to_owned(),
            source: e.into(),
        })?;
        Self::new(chain, key_der, cert, key)
    }

    fn new(
        chain: Vec<CertificateDer<'static>>,
        key_der: PrivateKeyDer<'static>,
        cert_path: &Path,
        key_path: &Path,
    ) -> Result<Self, TlsError> {
        let Some(leaf) = chain.first() else {
            return Err(TlsError::NoCertificate {
                path: cert_path.to_owned(),
            });
        };
        let fingerprint = Fingerprint::of(leaf);
        let signing_key = provider()
            .key_provider
            .load_private_key(key_der)
            .map_err(|e| TlsError::BadKey {
                path: key_path.to_owned(),
                source: e.into(),
            })?;
        let key = CertifiedKey::new(chain, signing_key);
        match key.keys_match() {
            Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
                return Err(TlsError::KeyMismatch {
                    cert: cert_path.to_owned(),
                    key: key_path.to_owned(),
                })
            }
            // `Unknown`: the key cannot tell its public half; the handshake will tell.
            Ok(()) | Err(rustls::Error::InconsistentKeys(_)) => {}
            Err(e) => {
                return Err(TlsError::BadCertificate {
                    path: cert_path.to_owned(),
                    source: e.into(),
                })
            }
        }
        Ok(Self {
            key: Arc::new(key),
            fingerprint,
        })
    }

    /// The fingerprint of the leaf certificate: what the manager pins.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }
}

/// A new self-signed certificate for `sans`: (certificate PEM, key PEM, identity).
fn generate(
    sans: &[String],
    cert_path: &Path,
    key_path: &Path,
) -> Result<(String, String, NodeIdentity), TlsError> {
    let mut names: Vec<String> = Vec::new();
    for san in sans {
        let bare = san
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .unwrap_or(san);
        if !bare.is_empty() && !names.iter().any(|n| n == bare) {
            names.push(bare.to_owned());
        }
    }
    let mut params = rcgen::CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "arch-node");
    let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let cert = params.self_signed(&key_pair)?;
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
    let identity = NodeIdentity::new(vec![cert.der().clone()], key_der, cert_path, key_path)?;
    Ok((cert.pem(), key_pair.serialize_pem(), identity))
}

/// Writes `contents` to a temporary file created with `mode`, then renames it over `path`: a
/// reader never sees a partial file, and the bytes are never readable under a wider mode.
fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> Result<(), TlsError> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let write = || -> io::Result<()> {
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
        #[cfg(not(unix))]
        let _ = mode;
        let mut file = options.open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // The rename itself survives a crash once the directory is synced.
        match path.parent().filter(|d| !d.as_os_str().is_empty()) {
            Some(dir) => std::fs::File::open(dir)?.sync_all(),
            None => Ok(()),
        }
    };
    write().map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        TlsError::Write {
            path: path.to_owned(),
            source,
        }
    })
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The node API's server configuration: TLS 1.3 only, no client certificates, ALPN `http/1.1`.
pub fn server_config(identity: &NodeIdentity) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(
            identity.key.as_ref().clone(),
        )));
    config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
    Ok(Arc::new(config))
}

/// What servers presented to a configuration from [`pinned_client_config`]: the fingerprint of
/// the most recent certificate, accepted or not (`None` before any handshake reached that point),
/// next to the pin. Shared by every connection made with that configuration.
#[derive(Clone, Debug)]
pub struct PresentedFingerprint {
    pinned: Option<Fingerprint>,
    last: Arc<Mutex<Option<Fingerprint>>>,
}

impl PresentedFingerprint {
    /// The last fingerprint presented, recorded before the handshake signature is checked. For
    /// trust on first use, store it as the pin only after a call made with this configuration
    /// (and no other call at the same time) succeeded: a server may present a certificate whose
    /// key it does not hold.
    pub fn get(&self) -> Option<Fingerprint> {
        *self.last.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// [`TlsError::CertificateChanged`] when the last certificate presented is not the pinned
    /// one: what a caller reports when a call failed (reqwest's error shows it only in debug
    /// form, deep in its source chain).
    pub fn mismatch(&self) -> Option<TlsError> {
        match (self.pinned, self.get()) {
            (Some(pinned), Some(presented)) if pinned != presented => {
                Some(TlsError::CertificateChanged { pinned, presented })
            }
            _ => None,
        }
    }

    fn set(&self, fingerprint: Fingerprint) {
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(fingerprint);
    }
}

/// A client configuration that accepts a server iff its leaf certificate's SHA-256 equals
/// `expected` (with `None`, trust on first use: any certificate, and the handle tells which).
/// TLS 1.3 only, ALPN `http/1.1`, no session resumption (every connection shows its certificate
/// again). A refused certificate fails the handshake with a `CertificateChanged` error inside
/// rustls' [`rustls::Error::InvalidCertificate`]; [`PresentedFingerprint::mismatch`] gives it
/// back typed. Returned by value because reqwest's `use_preconfigured_tls` takes
/// the value; wrap it in an `Arc` for tokio-rustls.
pub fn pinned_client_config(
    expected: Option<Fingerprint>,
) -> Result<(ClientConfig, PresentedFingerprint), TlsError> {
    client_config(expected, &[&rustls::version::TLS13])
}

fn client_config(
    expected: Option<Fingerprint>,
    versions: &[&'static SupportedProtocolVersion],
) -> Result<(ClientConfig, PresentedFingerprint), TlsError> {
    let provider = provider();
    let presented = PresentedFingerprint {
        pinned: expected,
        last: Arc::default(),
    };
    let verifier = Arc::new(PinnedVerifier {
        presented: presented.clone(),
        algorithms: provider.signature_verification_algorithms,
    });
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
    config.resumption = Resumption::disabled();
    Ok((config, presented))
}

/// Accepts the pinned leaf certificate, whatever its names, issuer or dates; checks the
/// handshake signatures against that certificate's key with the provider's algorithms.
#[derive(Debug)]
struct PinnedVerifier {
    presented: PresentedFingerprint,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = Fingerprint::of(end_entity);
        self.presented.set(presented);
        match self.presented.pinned {
            Some(pinned) if pinned != presented => {
                Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                    OtherError(Arc::new(TlsError::CertificateChanged { pinned, presented })),
                )))
            }
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(all(test, unix))]
mod tests;
