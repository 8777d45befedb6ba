//! `arch-node`: the node agent binary. It parses the command line and hands it to the `node`
//! library (see `src/lib.rs`), which owns the API, the state and the start-up.

use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = node::cli::Cli::parse();
    daemon::init_tracing("arch-node", &cli.log);
    let result = node::run(cli.command).await;
    daemon::exit_code("arch-node", result)
}
