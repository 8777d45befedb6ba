//! Command line of `arch-node`: flags, their `ARCH_NODE_*` environment variables, and validation
//! before any port is bound.

use crate::auth::{Auth, Opened};
use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use daemon::tls::{Fingerprint, NodeIdentity};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "arch-node",
    version,
    about = "Arch node agent: config API, stats and the data plane"
)]
pub struct Cli {
    /// Log filter (tracing env-filter syntax).
    #[arg(long, env = "ARCH_NODE_LOG", default_value = "info", global = true)]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the node API and run the pushed config.
    Serve(ServeArgs),
    /// Validate a config file as `POST /v1/configs` would, without applying it.
    CheckConfig(CheckConfigArgs),
    /// Print the SHA-256 fingerprint of the node API's certificate (64 hex digits), the value
    /// to give the manager as `tls_fingerprint` when registering this node.
    Fingerprint(FingerprintArgs),
}

/// Which certificate `arch-node fingerprint` reads: the one `serve` generated in the data dir,
/// or an operator's own.
#[derive(Debug, Args)]
pub struct FingerprintArgs {
    /// The node's data dir (the certificate is its `tls-cert.pem`).
    #[arg(long, env = "ARCH_NODE_DATA_DIR", default_value = "/var/lib/arch-node")]
    pub data_dir: PathBuf,
    /// A certificate file (PEM, leaf first) in place of the data dir's, as given to `serve
    /// --tls-cert`.
    #[arg(long, env = "ARCH_NODE_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
}

impl FingerprintArgs {
    /// The fingerprint of the certificate these flags name.
    pub fn fingerprint(&self) -> anyhow::Result<Fingerprint> {
        let path = match &self.tls_cert {
            Some(cert) => cert.clone(),
            None => self.data_dir.join(daemon::tls::CERT_FILE),
        };
        Fingerprint::of_pem_file(&path).with_context(|| {
            format!(
                "reading the node certificate {} (arch-node serve creates it on first start)",
                path.display()
            )
        })
    }
}

#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address of the node API.
    #[arg(long, env = "ARCH_NODE_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Bearer token the manager must send at first (a seed: a rotation replaces it, and the node
    /// keeps only hashes). Prefer --token-file or the environment. Without it, a token is
    /// generated on first start and shown once.
    #[arg(
        long,
        env = "ARCH_NODE_TOKEN",
        hide_env_values = true,
        conflicts_with = "token_file"
    )]
    pub token: Option<String>,
    /// File holding the token (first line).
    #[arg(long, env = "ARCH_NODE_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Where the applied config, the counters journal, the token hashes and the TLS
    /// certificate live.
    #[arg(long, env = "ARCH_NODE_DATA_DIR", default_value = "/var/lib/arch-node")]
    pub data_dir: PathBuf,
    /// Address the data-plane inbounds listen on in place of the pushed wildcard (`0.0.0.0` or
    /// `::`), for hosts with several addresses. The pushed config (and its version) is unchanged.
    #[arg(long, env = "ARCH_NODE_BIND")]
    pub bind: Option<IpAddr>,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub http: HttpArgs,
}

/// Transport of the node API: HTTPS with a certificate generated in the data dir (default) or
/// the operator's own, or plain HTTP on explicit request.
#[derive(Debug, Clone, Default, Args)]
pub struct TlsArgs {
    /// Subject alternative name (DNS name or IP address) of the certificate generated on first
    /// start; repeatable (comma separated in the environment). Default: the listen address
    /// unless a wildcard, the --bind address, `localhost` and the host name.
    #[arg(
        long = "tls-san",
        env = "ARCH_NODE_TLS_SAN",
        value_name = "NAME",
        value_delimiter = ',',
        conflicts_with = "tls_cert"
    )]
    pub tls_san: Vec<String>,
    /// The operator's own certificate (PEM, leaf first) in place of the generated one.
    #[arg(
        long,
        env = "ARCH_NODE_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(
        long,
        env = "ARCH_NODE_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// Serve plain HTTP: the token and every user's key then cross the network in clear text.
    /// Only for a node reached over a trusted network or a tunnel.
    #[arg(
        long,
        env = "ARCH_NODE_INSECURE_HTTP",
        conflicts_with_all = ["tls_san", "tls_cert", "tls_key"]
    )]
    pub insecure_http: bool,
}

/// Limits of the node API's HTTP server (see `daemon::http`); the data plane's connections are
/// not counted against them.
#[derive(Debug, Clone, Args)]
pub struct HttpArgs {
    /// Node API connections served at once; further ones wait in the accept backlog.
    #[arg(long, env = "ARCH_NODE_HTTP_MAX_CONNECTIONS", default_value = "256",
          value_parser = daemon::http::parse_max_connections)]
    pub http_max_connections: usize,
    /// Time a client has to send a request's line and headers (e.g. 10s, 500ms).
    #[arg(long, env = "ARCH_NODE_HTTP_HEADER_TIMEOUT", default_value = "20s",
          value_parser = daemon::http::parse_duration)]
    pub http_header_timeout: Duration,
    /// Time from a request to its response head, reading the body included; 408 after it.
    #[arg(long, env = "ARCH_NODE_HTTP_REQUEST_TIMEOUT", default_value = "30s",
          value_parser = daemon::http::parse_duration)]
    pub http_request_timeout: Duration,
}

impl HttpArgs {
    /// The server limits: these flags and the defaults of `daemon::http` for the rest.
    pub fn limits(&self) -> daemon::http::Limits {
        daemon::http::Limits {
            header_timeout: self.http_header_timeout,
            request_timeout: self.http_request_timeout,
            ..daemon::http::Limits::with_max_connections(self.http_max_connections)
        }
    }
}

/// Validated settings of `serve`.
pub struct Settings {
    pub listen: SocketAddr,
    /// The token store, opened from the data dir.
    pub auth: Arc<Auth>,
    /// What opening it did (a generated token is to be shown once).
    pub token: Opened,
    pub data_dir: PathBuf,
    pub bind: Option<IpAddr>,
    /// `None` with --insecure-http.
    pub tls: Option<TlsSettings>,
    pub http: daemon::http::Limits,
}

/// The node API's TLS server side.
pub struct TlsSettings {
    pub config: Arc<rustls::ServerConfig>,
    /// What the manager pins.
    pub fingerprint: Fingerprint,
    /// True when the certificate was generated by this start (its fingerprint is shown once).
    pub created: bool,
}

/// The token, trimmed, by the rule the manager applies to node tokens.
fn check_token(token: &str, source: &str) -> anyhow::Result<String> {
    rules::input::node_token(token)
        .map_err(|e| anyhow::anyhow!("the token from {source} {}", e.message))
}

impl ServeArgs {
    /// Checks every flag, prepares the data dir, loads or creates the TLS certificate and opens
    /// the token store (see [`Auth::open`]). Nothing is bound yet.
    pub fn resolve(self) -> anyhow::Result<Settings> {
        self.tls.check()?;
        let seed = if let Some(t) = &self.token {
            Some(check_token(t, "--token")?)
        } else if let Some(path) = &self.token_file {
            let t = read_first_line(path)?;
            Some(check_token(&t, &path.display().to_string())?)
        } else {
            None
        };
        daemon::fs::create_private_dir(&self.data_dir)?;
        let tls = if self.tls.insecure_http {
            None
        } else {
            Some(self.tls.load(&self.data_dir, self.listen, self.bind)?)
        };
        // Last: a token generated here is shown only if start-up gets past this point.
        let (auth, token) = Auth::open(&self.data_dir, seed.as_deref())
            .context("opening the node's token state")?;
        Ok(Settings {
            listen: self.listen,
            auth: Arc::new(auth),
            token,
            data_dir: self.data_dir,
            bind: self.bind,
            tls,
            http: self.http.limits(),
        })
    }
}

impl TlsArgs {
    /// The combinations clap refuses, checked again for settings built in code.
    fn check(&self) -> anyhow::Result<()> {
        if self.insecure_http
            && (self.tls_cert.is_some() || self.tls_key.is_some() || !self.tls_san.is_empty())
        {
            anyhow::bail!("--insecure-http cannot be used with --tls-cert, --tls-key or --tls-san");
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => anyhow::bail!("--tls-cert needs --tls-key"),
            (None, Some(_)) => anyhow::bail!("--tls-key needs --tls-cert"),
            (Some(_), Some(_)) if !self.tls_san.is_empty() => anyhow::bail!(
                "--tls-san applies only to the generated certificate, not with --tls-cert"
            ),
            _ => Ok(()),
        }
    }

    /// The operator's certificate, or the one kept in (or generated into) `data_dir`.
    fn load(
        &self,
        data_dir: &Path,
        listen: SocketAddr,
        bind: Option<IpAddr>,
    ) -> anyhow::Result<TlsSettings> {
        let (identity, created) = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => (
                NodeIdentity::from_files(cert, key)
                    .context("loading the certificate of --tls-cert/--tls-key")?,
                false,
            ),
            _ => {
                let sans = if self.tls_san.is_empty() {
                    default_sans(listen, bind)
                } else {
                    self.tls_san.clone()
                };
                NodeIdentity::load_or_create(data_dir, &sans)
                    .context("loading or creating the node's TLS certificate")?
            }
        };
        Ok(TlsSettings {
            config: daemon::tls::server_config(&identity)?,
            fingerprint: identity.fingerprint(),
            created,
        })
    }
}

/// The generated certificate's names when no --tls-san is given: the listen address unless a
/// wildcard, the --bind address, `localhost` and the host name.
pub fn default_sans(listen: SocketAddr, bind: Option<IpAddr>) -> Vec<String> {
    let mut sans = Vec::new();
    let mut add = |name: String| {
        if !name.is_empty() && !sans.contains(&name) {
            sans.push(name);
        }
    };
    if !listen.ip().is_unspecified() {
        add(listen.ip().to_string());
    }
    if let Some(ip) = bind {
        add(ip.to_string());
    }
    add("localhost".to_owned());
    if let Some(host) = hostname() {
        add(host);
    }
    sans
}

/// The machine's host name, from the kernel or `/etc/hostname`.
fn hostname() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|t| t.trim().to_owned())
        .find(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_graphic()))
}

fn read_first_line(path: &Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text.lines().next().unwrap_or_default().trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_valid() {
        Cli::command().debug_assert();
    }

    fn default_http() -> HttpArgs {
        match Cli::try_parse_from(["arch-node", "serve"])
            .expect("defaults")
            .command
        {
            Command::Serve(a) => a.http,
            _ => unreachable!("serve was parsed"),
        }
    }

    #[test]
    fn http_limits_have_defaults_and_flags() {
        assert_eq!(
            default_http().limits(),
            daemon::http::Limits::with_max_connections(256)
        );
        let parsed = Cli::try_parse_from([
            "arch-node",
            "serve",
            "--http-max-connections",
            "8",
            "--http-header-timeout",
            "500ms",
            "--http-request-timeout",
            "2m",
        ])
        .expect("flags");
        let Command::Serve(a) = parsed.command else {
            unreachable!("serve was parsed")
        };
        let l = a.http.limits();
        assert_eq!(l.max_connections, 8);
        assert_eq!(l.header_timeout, Duration::from_millis(500));
        assert_eq!(l.request_timeout, Duration::from_secs(120));
        for bad in [
            ["--http-max-connections", "0"],
            ["--http-header-timeout", "0s"],
        ] {
            assert!(Cli::try_parse_from(["arch-node", "serve", bad[0], bad[1]]).is_err());
        }
    }

    fn args(dir: &Path) -> ServeArgs {
        ServeArgs {
            listen: "127.0.0.1:0".parse().expect("addr"),
            token: None,
            token_file: None,
            data_dir: dir.to_owned(),
            bind: None,
            tls: TlsArgs::default(),
            http: default_http(),
        }
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_data_dir_and_the_files_in_it_are_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &std::path::Path| {
            std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
        };
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("node");
        let settings = args(&dir).resolve().expect("resolve");
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(crate::auth::TOKEN_STATE_FILE)), 0o600);
        let state = crate::state::NodeState::open(&settings.data_dir, None)
            .await
            .expect("open");
        state.shutdown().await.expect("shutdown");
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("entry").path();
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            // The certificate is public: the manager is shown it on every connection.
            let expected = if name == daemon::tls::CERT_FILE {
                0o644
            } else {
                0o600
            };
            assert_eq!(mode(&path), expected, "{}", path.display());
            files.push(name);
        }
        files.sort();
        assert_eq!(
            files,
            ["counters.json", "tls-cert.pem", "tls-key.pem", "token.json"]
        );
    }

    #[test]
    fn short_tokens_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut a = args(dir.path());
        a.token = Some("short".into());
        let err = a.resolve().err().expect("refused");
        assert_eq!(
            err.to_string(),
            "the token from --token must be 16–256 printable characters without spaces"
        );
        assert!(
            !dir.path().join(crate::auth::TOKEN_STATE_FILE).exists(),
            "nothing is stored for a refused token"
        );
    }

    #[test]
    fn bind_must_be_an_ip_address() {
        let parse = |v: &str| Cli::try_parse_from(["arch-node", "serve", "--bind", v]);
        assert!(parse("127.0.0.2").is_ok());
        assert!(parse("::1").is_ok());
        let err = parse("localhost:80").expect_err("not an IP");
        assert!(err.to_string().contains("--bind"), "{err}");
    }

    #[test]
    fn a_generated_token_is_shown_once_and_its_hash_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = args(dir.path()).resolve().expect("first");
        let Opened::Generated(token) = &first.token else {
            panic!("expected a generated token, got {:?}", first.token)
        };
        assert_eq!(token.expose().len(), 64);
        assert!(token.expose().chars().all(|c| c.is_ascii_hexdigit()));
        let tls = first.tls.as_ref().expect("TLS by default");
        assert!(tls.created);
        let second = args(dir.path()).resolve().expect("second");
        assert_eq!(second.token, Opened::Kept);
        let tls2 = second.tls.as_ref().expect("TLS by default");
        assert!(!tls2.created);
        assert_eq!(tls2.fingerprint, tls.fingerprint);
    }

    fn serve_args(extra: &[&str]) -> Result<ServeArgs, clap::Error> {
        let mut argv = vec!["arch-node", "serve"];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv).map(|c| match c.command {
            Command::Serve(a) => a,
            _ => unreachable!("serve was parsed"),
        })
    }

    #[test]
    fn tls_flags_combine_only_sensibly() {
        use clap::error::ErrorKind;
        let kind = |extra: &[&str]| serve_args(extra).err().map(|e| e.kind());
        assert_eq!(
            kind(&[
                "--insecure-http",
                "--tls-cert",
                "c.pem",
                "--tls-key",
                "k.pem"
            ]),
            Some(ErrorKind::ArgumentConflict)
        );
        assert_eq!(
            kind(&["--insecure-http", "--tls-san", "node.example"]),
            Some(ErrorKind::ArgumentConflict)
        );
        assert_eq!(
            kind(&["--tls-cert", "c.pem"]),
            Some(ErrorKind::MissingRequiredArgument)
        );
        assert_eq!(
            kind(&["--tls-key", "k.pem"]),
            Some(ErrorKind::MissingRequiredArgument)
        );
        assert_eq!(
            kind(&[
                "--tls-san",
                "a",
                "--tls-cert",
                "c.pem",
                "--tls-key",
                "k.pem"
            ]),
            Some(ErrorKind::ArgumentConflict)
        );
        let a = serve_args(&["--tls-san", "a.example,10.0.0.1", "--tls-san", "b"]).expect("sans");
        assert_eq!(a.tls.tls_san, ["a.example", "10.0.0.1", "b"]);
        assert!(!a.tls.insecure_http);
        assert!(
            serve_args(&["--insecure-http"])
                .expect("plain")
                .tls
                .insecure_http
        );
    }

    #[test]
    fn tls_flags_built_in_code_are_checked_before_anything_is_written() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("node");
        let mut a = args(&dir);
        a.tls.insecure_http = true;
        a.tls.tls_cert = Some("c.pem".into());
        a.tls.tls_key = Some("k.pem".into());
        let err = a.resolve().err().expect("refused");
        assert_eq!(
            err.to_string(),
            "--insecure-http cannot be used with --tls-cert, --tls-key or --tls-san"
        );
        let mut a = args(&dir);
        a.tls.tls_cert = Some("c.pem".into());
        let err = a.resolve().err().expect("refused");
        assert_eq!(err.to_string(), "--tls-cert needs --tls-key");
        assert!(!dir.exists(), "nothing was created");
    }

    #[test]
    fn insecure_http_has_no_certificate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut a = args(dir.path());
        a.tls.insecure_http = true;
        let settings = a.resolve().expect("resolve");
        assert!(settings.tls.is_none());
        assert!(!dir.path().join(daemon::tls::CERT_FILE).exists());
    }

    #[test]
    fn the_operators_certificate_is_used_as_given() {
        let own = tempfile::tempdir().expect("tempdir");
        let (identity, _) =
            NodeIdentity::load_or_create(own.path(), &["node.example".into()]).expect("cert");
        let dir = tempfile::tempdir().expect("tempdir");
        let mut a = args(dir.path());
        a.tls.tls_cert = Some(own.path().join(daemon::tls::CERT_FILE));
        a.tls.tls_key = Some(own.path().join(daemon::tls::KEY_FILE));
        let settings = a.resolve().expect("resolve");
        let tls = settings.tls.expect("TLS");
        assert_eq!(tls.fingerprint, identity.fingerprint());
        assert!(!tls.created);
        assert!(!dir.path().join(daemon::tls::CERT_FILE).exists());

        let mut a = args(dir.path());
        a.tls.tls_cert = Some(own.path().join("missing.pem"));
        a.tls.tls_key = Some(own.path().join(daemon::tls::KEY_FILE));
        let err = a.resolve().err().expect("refused");
        assert!(
            format!("{err:#}").starts_with(&format!(
                "loading the certificate of --tls-cert/--tls-key: reading {}",
                own.path().join("missing.pem").display()
            )),
            "{err:#}"
        );
    }

    #[test]
    fn fingerprint_prints_the_pin_of_the_data_dirs_or_a_given_certificate() {
        let parse = |argv: &[&str]| match Cli::try_parse_from(argv).expect("parse").command {
            Command::Fingerprint(a) => a,
            _ => unreachable!("fingerprint was parsed"),
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().to_str().expect("utf-8 path");
        let err = parse(&["arch-node", "fingerprint", "--data-dir", data])
            .fingerprint()
            .expect_err("no certificate yet");
        let cert = dir.path().join(daemon::tls::CERT_FILE);
        assert!(
            format!("{err:#}").starts_with(&format!(
                "reading the node certificate {} (arch-node serve creates it on first start): reading {}",
                cert.display(),
                cert.display()
            )),
            "{err:#}"
        );

        let (identity, _) = NodeIdentity::load_or_create(dir.path(), &[]).expect("cert");
        let printed = parse(&["arch-node", "fingerprint", "--data-dir", data])
            .fingerprint()
            .expect("fingerprint");
        assert_eq!(printed, identity.fingerprint());
        assert_eq!(printed.to_string().len(), 64);

        let other = tempfile::tempdir().expect("tempdir");
        let (own, _) = NodeIdentity::load_or_create(other.path(), &[]).expect("cert");
        let own_cert = other.path().join(daemon::tls::CERT_FILE);
        let given = parse(&[
            "arch-node",
            "fingerprint",
            "--data-dir",
            data,
            "--tls-cert",
            own_cert.to_str().expect("utf-8 path"),
        ]);
        assert_eq!(given.fingerprint().expect("fingerprint"), own.fingerprint());
        assert_ne!(own.fingerprint(), identity.fingerprint());
    }

    #[test]
    fn default_names_are_the_addresses_localhost_and_the_host_name() {
        let host = hostname();
        let with_host = |v: Vec<&str>| {
            let mut v: Vec<String> = v.into_iter().map(str::to_owned).collect();
            if let Some(h) = &host {
                if !v.contains(h) {
                    v.push(h.clone());
                }
            }
            v
        };
        assert_eq!(
            default_sans("0.0.0.0:8080".parse().expect("addr"), None),
            with_host(vec!["localhost"])
        );
        assert_eq!(
            default_sans(
                "[::]:8080".parse().expect("addr"),
                Some("192.0.2.7".parse().expect("ip"))
            ),
            with_host(vec!["192.0.2.7", "localhost"])
        );
        assert_eq!(
            default_sans(
                "10.1.2.3:8080".parse().expect("addr"),
                Some("10.1.2.3".parse().expect("ip"))
            ),
            with_host(vec!["10.1.2.3", "localhost"])
        );
    }
}
