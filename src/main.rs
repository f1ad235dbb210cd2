//! The `daypass` binary: parses the command line and hands it to the
//! library. Errors are printed as one line; the exit status is 1 (2 for a
//! command line clap cannot parse).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    quiet_on_closed_stdout();
    let cli = match daypass::cli::parse() {
        Ok(cli) => cli,
        Err(status) => return status,
    };
    match daypass::cli::run(cli).await {
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
