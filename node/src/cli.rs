//! Command line of `arch-node`: flags, their `ARCH_NODE_*` environment variables, and validation
//! before any port is bound.

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
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
    /// Bearer token the manager must send. Prefer --token-file or the environment.
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
    /// Where the applied config and the counters journal live.
    #[arg(long, env = "ARCH_NODE_DATA_DIR", default_value = "/var/lib/arch-node")]
    pub data_dir: PathBuf,
    /// Address the data-plane inbounds listen on in place of the pushed wildcard (`0.0.0.0` or
    /// `::`), for hosts with several addresses. The pushed config (and its version) is unchanged.
    #[arg(long, env = "ARCH_NODE_BIND")]
    pub bind: Option<IpAddr>,
    #[command(flatten)]
    pub http: HttpArgs,
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
    pub token: String,
    pub token_generated: bool,
    pub token_file_hint: String,
    pub data_dir: PathBuf,
    pub bind: Option<IpAddr>,
    pub http: daemon::http::Limits,
}

/// The token, trimmed, by the rule the manager applies to node tokens.
fn check_token(token: &str, source: &str) -> anyhow::Result<String> {
    rules::input::node_token(token)
        .map_err(|e| anyhow::anyhow!("the token from {source} {}", e.message))
}

impl ServeArgs {
    /// Reads the token (flag, file, or the one generated earlier in the data dir; else generates
    /// and stores one) and prepares the data dir.
    pub fn resolve(self) -> anyhow::Result<Settings> {
        daemon::fs::create_private_dir(&self.data_dir)?;
        let stored = self.data_dir.join("token");
        let (token, generated) = if let Some(t) = self.token {
            (check_token(&t, "--token")?, false)
        } else if let Some(path) = &self.token_file {
            let t = read_first_line(path)?;
            (check_token(&t, &path.display().to_string())?, false)
        } else if stored.exists() {
            daemon::fs::restrict(&stored, 0o600)?;
            let t = read_first_line(&stored)?;
            (check_token(&t, &stored.display().to_string())?, false)
        } else {
            let t = random_token();
            write_private(&stored, &t)?;
            (t, true)
        };
        Ok(Settings {
            listen: self.listen,
            token,
            token_generated: generated,
            token_file_hint: stored.display().to_string(),
            data_dir: self.data_dir,
            bind: self.bind,
            http: self.http.limits(),
        })
    }
}

fn read_first_line(path: &std::path::Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text.lines().next().unwrap_or_default().trim().to_owned())
}

fn random_token() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// Writes a secret readable by the owner only.
fn write_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    writeln!(f, "{text}")?;
    Ok(())
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
            Command::CheckConfig(_) => unreachable!("serve was parsed"),
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

    #[cfg(unix)]
    #[tokio::test]
    async fn the_data_dir_and_the_files_in_it_are_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &std::path::Path| {
            std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
        };
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("node");
        let settings = ServeArgs {
            listen: "127.0.0.1:0".parse().expect("addr"),
            token: None,
            token_file: None,
            data_dir: dir.clone(),
            bind: None,
            http: default_http(),
        }
        .resolve()
        .expect("resolve");
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("token")), 0o600);
        let state = crate::state::NodeState::open(&settings.data_dir, None)
            .await
            .expect("open");
        state.shutdown().await.expect("shutdown");
        let mut files = 0;
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("entry").path();
            assert_eq!(mode(&path), 0o600, "{}", path.display());
            files += 1;
        }
        assert!(files >= 2, "token and counters journal at least");
    }

    #[test]
    fn short_tokens_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let args = ServeArgs {
            listen: "127.0.0.1:0".parse().expect("addr"),
            token: Some("short".into()),
            token_file: None,
            data_dir: dir.path().to_owned(),
            bind: None,
            http: default_http(),
        };
        assert!(args.resolve().is_err());
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
    fn a_generated_token_is_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mk = || ServeArgs {
            listen: "127.0.0.1:0".parse().expect("addr"),
            token: None,
            token_file: None,
            data_dir: dir.path().to_owned(),
            bind: None,
            http: default_http(),
        };
        let first = mk().resolve().expect("first");
        assert!(first.token_generated);
        let second = mk().resolve().expect("second");
        assert!(!second.token_generated);
        assert_eq!(first.token, second.token);
    }
}
