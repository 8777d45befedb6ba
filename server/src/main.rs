//! `arch-manager`: the control plane binary. It parses the command line and hands it to the
//! `server` library (see `src/lib.rs`), which owns the router and the start-up.

use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = server::cli::Cli::parse();
    daemon::init_tracing("arch-manager", &cli.log);
    let result = server::run(cli.command).await;
    daemon::exit_code("arch-manager", result)
}
