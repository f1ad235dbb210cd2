//! The `daypass` binary: parses the command line and hands it to the
//! library. Errors are printed as one line; the exit status is 1.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = daypass::cli::Cli::parse();
    match daypass::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("daypass: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
