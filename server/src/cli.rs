//! Command line of `arch-manager`: subcommands, flags with their `ARCH_*` environment variables,
//! and validation before anything is bound or opened. Layering: defaults → environment → flags.

use anyhow::{bail, Context as _};
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "arch-manager",
    version,
    about = "Arch control plane and admin panel"
)]
pub struct Cli {
    /// Log filter (tracing env-filter syntax).
    #[arg(long, env = "ARCH_LOG", default_value = "info", global = true)]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the panel, the REST API, the coordinator and the local data plane.
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate(DbArgs),
    /// Manage administrators and API tokens.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Validate the configuration (flags, environment, database) and print it, secrets hidden.
    CheckConfig(ServeArgs),
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an administrator. The password is read from --password-file or standard input.
    Create(AdminArgs),
    /// Set a new password for an administrator and end their sessions.
    ResetPassword(AdminArgs),
    /// Create a named API token for the REST API; it is printed once.
    CreateToken {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[arg(long)]
    pub username: String,
    /// File whose first line is the password (otherwise standard input is read).
    #[arg(long)]
    pub password_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// Database URL: `sqlite://path?mode=rwc` or `postgres://user:pass@host/db`.
    /// Default: SQLite file `arch.db` in the data dir.
    #[arg(long, env = "ARCH_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Directory for the SQLite database and other state.
    #[arg(long, env = "ARCH_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Address of the panel and the REST API.
    #[arg(long, env = "ARCH_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Bearer token accepted on /v1 for automation. Prefer --admin-token-file or the environment.
    #[arg(
        long,
        env = "ARCH_ADMIN_TOKEN",
        hide_env_values = true,
        conflicts_with = "admin_token_file"
    )]
    pub admin_token: Option<String>,
    /// File whose first line is the admin token.
    #[arg(long, env = "ARCH_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// How often node counters are pulled (e.g. 10s, 500ms, 1m).
    #[arg(long, env = "ARCH_PULL_INTERVAL", default_value = "10s", value_parser = daemon::http::parse_duration)]
    pub pull_interval: Duration,
    /// A node without a successful pull for this long is `unavailable`.
    #[arg(long, env = "ARCH_PULL_TIMEOUT", default_value = "60s", value_parser = daemon::http::parse_duration)]
    pub pull_timeout: Duration,
    /// Timeout of each call to a node.
    #[arg(long, env = "ARCH_NODE_TIMEOUT", default_value = "5s", value_parser = daemon::http::parse_duration)]
    pub node_timeout: Duration,
    /// Serve the panel's static files (`pkg/`) from this directory instead of the bundle built
    /// into the binary (for development: `target/site` after scripts/build-site.sh).
    #[arg(long, env = "ARCH_SITE_ROOT")]
    pub site_root: Option<PathBuf>,
    /// Serve the panel, the REST API and /events over HTTPS with this certificate (PEM: the leaf
    /// first, then its chain). Needs --tls-key.
    #[arg(long, env = "ARCH_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM). Keep it readable by the manager only.
    #[arg(long, env = "ARCH_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// A reverse proxy in front of the manager (IP or CIDR; repeatable, comma-separated in the
    /// environment). Only from these peers are `X-Forwarded-For` (client address for sign-in
    /// limits) and `X-Forwarded-Proto` (HSTS) believed.
    #[arg(
        long = "trusted-proxy",
        env = "ARCH_TRUSTED_PROXY",
        value_delimiter = ','
    )]
    pub trusted_proxy: Vec<manager::Cidr>,
    #[command(flatten)]
    pub http: HttpArgs,
}

// ---- HTTP server limits (daemon::http) -------------------------------------------------------

/// Limits of the panel / REST / SSE server (see `daemon::http`).
#[derive(Debug, Clone, Args)]
pub struct HttpArgs {
    /// Connections served at once (SSE streams included); further ones wait in the accept backlog.
    #[arg(long, env = "ARCH_HTTP_MAX_CONNECTIONS", default_value = "1024",
          value_parser = daemon::http::parse_max_connections)]
    pub http_max_connections: usize,
    /// Time a client has to send a request's line and headers (e.g. 10s, 500ms).
    #[arg(long, env = "ARCH_HTTP_HEADER_TIMEOUT", default_value = "20s",
          value_parser = daemon::http::parse_duration)]
    pub http_header_timeout: Duration,
    /// Time from a request to its response head, reading the body included; 408 after it.
    /// Streams (`/events`) run on after their head is sent.
    #[arg(long, env = "ARCH_HTTP_REQUEST_TIMEOUT", default_value = "30s",
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

// ---- end of the HTTP server limits -----------------------------------------------------------

impl DbArgs {
    /// The database URL, creating the data dir when SQLite is used there.
    pub fn url(&self) -> anyhow::Result<String> {
        if let Some(url) = &self.database_url {
            if !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
            {
                bail!("--database-url must start with sqlite:, postgres:// or postgresql://");
            }
            return Ok(url.clone());
        }
        daemon::fs::create_private_dir(&self.data_dir)?;
        Ok(manager::db::default_sqlite_url(&self.data_dir))
    }
}

impl ServeArgs {
    /// Checks values that clap cannot, and reads the admin token file.
    pub fn admin_token(&self) -> anyhow::Result<Option<String>> {
        let token = match (&self.admin_token, &self.admin_token_file) {
            (Some(t), _) => Some(t.clone()),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                Some(text.lines().next().unwrap_or_default().trim().to_owned())
            }
            (None, None) => None,
        };
        if let Some(t) = &token {
            if t.len() < 16 || !t.chars().all(|c| c.is_ascii_graphic()) {
                bail!("the admin token must be at least 16 printable characters without spaces");
            }
        }
        Ok(token)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if self.pull_timeout <= self.pull_interval {
            bail!(
                "--pull-timeout ({:?}) must be longer than --pull-interval ({:?})",
                self.pull_timeout,
                self.pull_interval
            );
        }
        self.admin_token()?;
        self.tls()?;
        self.db.url()?;
        Ok(())
    }

    /// The panel's HTTPS identity from --tls-cert / --tls-key: `None` without both flags, an
    /// error when only one is given or the files do not hold a certificate and its key.
    pub fn tls(&self) -> anyhow::Result<Option<daemon::tls::NodeIdentity>> {
        match (&self.tls_cert, &self.tls_key) {
            (None, None) => Ok(None),
            (Some(_), None) => {
                bail!("--tls-cert (ARCH_TLS_CERT) needs --tls-key (ARCH_TLS_KEY): the certificate's private key")
            }
            (None, Some(_)) => {
                bail!("--tls-key (ARCH_TLS_KEY) needs --tls-cert (ARCH_TLS_CERT): the certificate it belongs to")
            }
            (Some(cert), Some(key)) => daemon::tls::NodeIdentity::from_files(cert, key)
                .map(Some)
                .context("loading the panel's TLS certificate (--tls-cert, --tls-key)"),
        }
    }

    /// The panel's rustls configuration, when --tls-cert / --tls-key are given.
    pub fn tls_config(&self) -> anyhow::Result<Option<std::sync::Arc<rustls::ServerConfig>>> {
        self.tls()?
            .map(|identity| {
                daemon::tls::server_config(&identity).context("configuring the panel's TLS")
            })
            .transpose()
    }

    /// Where the panel's `/pkg` files come from: --site-root, or the bundle in the binary.
    pub fn bundle(&self) -> crate::Bundle {
        match &self.site_root {
            Some(dir) => crate::Bundle::Dir(dir.clone()),
            None => crate::Bundle::Embedded,
        }
    }
}

/// Reads a password from a file's first line or from standard input.
pub fn read_password(file: Option<&PathBuf>) -> anyhow::Result<String> {
    let text = match file {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        }
        None => {
            eprintln!("password (one line on standard input):");
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("reading the password")?;
            line
        }
    };
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use daemon::http::parse_duration;

    #[test]
    fn cli_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5d").is_err());
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        // Once `n * 3600` overflowed (a panic on input); now it saturates.
        assert!(parse_duration("18446744073709551615h").is_ok());
    }

    #[test]
    fn trusted_proxies_parse_and_repeat() {
        let cli = Cli::try_parse_from([
            "arch-manager",
            "serve",
            "--trusted-proxy",
            "127.0.0.1",
            "--trusted-proxy",
            "10.0.0.0/8,fd00::/8",
        ])
        .expect("parses");
        let Command::Serve(args) = cli.command else {
            panic!("serve")
        };
        let shown: Vec<String> = args.trusted_proxy.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["127.0.0.1/32", "10.0.0.0/8", "fd00::/8"]);
        assert!(
            Cli::try_parse_from(["arch-manager", "serve", "--trusted-proxy", "proxy.local"])
                .is_err()
        );
    }

    #[test]
    fn timeout_must_exceed_interval() {
        let cli = Cli::try_parse_from([
            "arch-manager",
            "serve",
            "--pull-interval",
            "10s",
            "--pull-timeout",
            "5s",
        ])
        .expect("parses");
        let Command::Serve(args) = cli.command else {
            panic!("serve")
        };
        assert!(args.validate().is_err());
    }

    fn serve_args(extra: &[&str]) -> ServeArgs {
        let cli =
            Cli::try_parse_from(["arch-manager", "serve"].iter().chain(extra)).expect("parses");
        let Command::Serve(args) = cli.command else {
            panic!("serve")
        };
        args
    }

    #[test]
    fn tls_needs_both_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(serve_args(&[]).tls().expect("no tls").is_none());
        let only_cert = serve_args(&["--tls-cert", "c.pem"]).tls();
        assert_eq!(
            only_cert.map(|_| ()).map_err(|e| format!("{e:#}")),
            Err("--tls-cert (ARCH_TLS_CERT) needs --tls-key (ARCH_TLS_KEY): the certificate's private key".to_owned())
        );
        let only_key = serve_args(&["--tls-key", "k.pem"]).tls();
        assert_eq!(
            only_key.map(|_| ()).map_err(|e| format!("{e:#}")),
            Err("--tls-key (ARCH_TLS_KEY) needs --tls-cert (ARCH_TLS_CERT): the certificate it belongs to".to_owned())
        );
        // Missing files are named; validation fails before anything is bound.
        let missing = dir.path().join("missing.pem");
        let missing = missing.to_str().expect("utf-8");
        let args = serve_args(&["--tls-cert", missing, "--tls-key", missing]);
        let err = format!("{:#}", args.validate().expect_err("missing files"));
        assert!(
            err.starts_with("loading the panel's TLS certificate (--tls-cert, --tls-key): "),
            "{err}"
        );
        assert!(err.contains(missing), "{err}");
        // A generated certificate and key load; a key of another certificate does not.
        let (identity, _) =
            daemon::tls::NodeIdentity::load_or_create(dir.path(), &["127.0.0.1".into()])
                .expect("identity");
        let other = dir.path().join("other");
        std::fs::create_dir(&other).expect("mkdir");
        daemon::tls::NodeIdentity::load_or_create(&other, &["127.0.0.1".into()])
            .expect("other identity");
        let cert = dir.path().join(daemon::tls::CERT_FILE);
        let key = dir.path().join(daemon::tls::KEY_FILE);
        let args = serve_args(&[
            "--tls-cert",
            cert.to_str().expect("utf-8"),
            "--tls-key",
            key.to_str().expect("utf-8"),
        ]);
        let loaded = args.tls().expect("loads").expect("configured");
        assert_eq!(loaded.fingerprint(), identity.fingerprint());
        assert!(args.tls_config().expect("config").is_some());
        let wrong_key = other.join(daemon::tls::KEY_FILE);
        let args = serve_args(&[
            "--tls-cert",
            cert.to_str().expect("utf-8"),
            "--tls-key",
            wrong_key.to_str().expect("utf-8"),
        ]);
        assert!(args.tls().is_err());
    }

    #[test]
    fn bundle_is_embedded_unless_a_site_root_is_given() {
        assert!(matches!(serve_args(&[]).bundle(), crate::Bundle::Embedded));
        match serve_args(&["--site-root", "target/site"]).bundle() {
            crate::Bundle::Dir(dir) => assert_eq!(dir, PathBuf::from("target/site")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn http_limits_have_defaults_and_flags() {
        let serve = |extra: &[&str]| {
            let cli = Cli::try_parse_from(["arch-manager", "serve"].iter().chain(extra))
                .map_err(|e| e.to_string())?;
            let Command::Serve(args) = cli.command else {
                panic!("serve")
            };
            Ok::<_, String>(args.http.limits())
        };
        assert_eq!(
            serve(&[]),
            Ok(daemon::http::Limits::with_max_connections(1024))
        );
        let l = serve(&[
            "--http-max-connections",
            "64",
            "--http-header-timeout",
            "5s",
            "--http-request-timeout",
            "1m",
        ])
        .expect("flags");
        assert_eq!(l.max_connections, 64);
        assert_eq!(l.header_timeout, Duration::from_secs(5));
        assert_eq!(l.request_timeout, Duration::from_secs(60));
        assert!(serve(&["--http-max-connections", "0"]).is_err());
        assert!(serve(&["--http-request-timeout", "0"]).is_err());
    }
}
