//! The `daypass` binary: parses the command line, runs `daypass bench`
//! itself (the benchmarks live here, not in the library) and hands every
//! other command to the library. Errors are printed as one line; the exit
//! status is 1 (2 for a command line clap cannot parse).

mod bench;

use daypass::cli::{self, Command};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    quiet_on_closed_stdout();
    let cli = match cli::parse() {
        Ok(cli) => cli,
        Err(status) => return status,
    };
    let outcome = match cli.command {
        Command::Bench(command) => bench::run(command).await,
        _ => cli::run(cli).await,
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("daypass: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `daypass audit replay | head` closes our stdout early; `println!` then
/// panics. Exit quietly instead, as Unix tools do (128 + SIGPIPE).
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}
