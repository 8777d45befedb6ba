//! Command line of `arch-node`: flags, their `ARCH_NODE_*` environment variables, and validation
//! before any port is bound.

use anyhow::{bail, Context as _};
use clap::{Args, Parser, Subcommand};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

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
}

/// Validated settings of `serve`.
pub struct Settings {
    pub listen: SocketAddr,
    pub token: String,
    pub token_generated: bool,
    pub token_file_hint: String,
    pub data_dir: PathBuf,
    pub bind: Option<IpAddr>,
}

fn check_token(token: &str, source: &str) -> anyhow::Result<()> {
    if token.len() < 16 || token.len() > 256 || !token.chars().all(|c| c.is_ascii_graphic()) {
        bail!("the token from {source} must be 16–256 printable characters without spaces");
    }
    Ok(())
}

impl ServeArgs {
    /// Reads the token (flag, file, or the one generated earlier in the data dir; else generates
    /// and stores one) and prepares the data dir.
    pub fn resolve(self) -> anyhow::Result<Settings> {
        std::fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("creating the data dir {}", self.data_dir.display()))?;
        let stored = self.data_dir.join("token");
        let (token, generated) = if let Some(t) = self.token {
            check_token(&t, "--token")?;
            (t, false)
        } else if let Some(path) = &self.token_file {
            let t = read_first_line(path)?;
            check_token(&t, &path.display().to_string())?;
            (t, false)
        } else if stored.exists() {
            let t = read_first_line(&stored)?;
            check_token(&t, &stored.display().to_string())?;
            (t, false)
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

    #[test]
    fn short_tokens_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let args = ServeArgs {
            listen: "127.0.0.1:0".parse().expect("addr"),
            token: Some("short".into()),
            token_file: None,
            data_dir: dir.path().to_owned(),
            bind: None,
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
        };
        let first = mk().resolve().expect("first");
        assert!(first.token_generated);
        let second = mk().resolve().expect("second");
        assert!(!second.token_generated);
        assert_eq!(first.token, second.token);
    }
}
