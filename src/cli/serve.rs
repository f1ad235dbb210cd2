//! `daypass serve`: loads the configuration (or prepares `--dev`), binds
//! the listener, sets up logging and runs the server until Ctrl-C or
//! SIGTERM. The server itself lives in `crate::server`; this file only
//! turns flags into its arguments.

use std::{
    io,
    path::{Path, PathBuf},
    sync::Arc,
};

use clap::{Args, ValueEnum};

use super::{CliResult, DEV_DIR};
use crate::{clock::SystemClock, config::Config, dev, server};

// One of --config and --dev is required: the group makes clap's error for
// a bare `daypass serve` name both.
#[derive(Debug, Args)]
#[command(
    group(clap::ArgGroup::new("mode").args(["config", "dev"]).required(true)),
    after_help = "Examples:\n  \
        daypass serve --dev                              # try it: a local server and a walkthrough\n  \
        daypass serve --dev --listen 127.0.0.1:50999\n  \
        daypass serve --config /etc/daypass/daypass.toml --check-config\n  \
        daypass serve --config /etc/daypass/daypass.toml --log-format json\n\n\
        The configuration is described in docs/operations.md."
)]
pub struct ServeArgs {
    /// Configuration file (TOML); or --dev to try daypass locally.
    #[arg(long, env = "DAYPASS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Create ./daypass-dev/ (CA, certificates, enrolled identities) and serve on 127.0.0.1:50051.
    #[arg(long, conflicts_with = "config")]
    pub dev: bool,
    /// Override the listen address.
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// Override the metrics and health listener's address (`metrics.listen`).
    #[arg(long)]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Override the warning screen's HTTPS address (`screen.listen`).
    #[arg(long)]
    pub screen_listen: Option<std::net::SocketAddr>,
    /// Load and check the config and everything it names (TLS files,
    /// keys, webhook secrets, the data directory's mode), open nothing,
    /// write nothing; exit 0 if the server would start, 1 with the problem.
    #[arg(long, requires = "config")]
    pub check_config: bool,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Runs `daypass serve` until a shutdown signal.
pub(super) async fn serve(args: ServeArgs) -> CliResult {
    init_tracing(args.log_format);
    // A dev server checks its port before it writes a dev directory.
    let early = if args.dev {
        let at = match args.listen {
            Some(a) => a,
            None => dev::DEV_LISTEN.parse().map_err(|e| cli_err!("{e}"))?,
        };
        Some(
            tokio::net::TcpListener::bind(at)
                .await
                .map_err(|e| cli_err!("cannot listen on {at}: {e} (another server there? pick a port with --listen 127.0.0.1:PORT)"))?,
        )
    } else {
        None
    };
    let mut config = if args.dev {
        dev::prepare(Path::new(DEV_DIR))
            .await
            .map_err(|e| cli_err!("dev setup failed: {e}"))?
    } else {
        let path = args
            .config
            .ok_or_else(|| cli_err!("give --config FILE or --dev"))?;
        Config::load(&path).map_err(|e| cli_err!("{e}"))?
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if args.check_config {
        server::check_config(&config).map_err(|e| cli_err!("{e}"))?;
        println!("config OK: the server would start with it");
        return Ok(());
    }
    if let Some(listen) = args.metrics_listen {
        config.metrics.listen = listen;
    }
    if let Some(listen) = args.screen_listen {
        config.screen.listen = listen;
    }
    let listener = match early {
        Some(l) => l,
        None => tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| cli_err!("cannot listen on {}: {e}", config.listen))?,
    };
    let screen = if config.screen.enabled {
        Some(
            tokio::net::TcpListener::bind(config.screen.listen)
                .await
                .map_err(|e| {
                    cli_err!(
                        "cannot listen on {} (screen.listen): {e}",
                        config.screen.listen
                    )
                })?,
        )
    } else {
        None
    };
    if args.dev {
        let addr = listener.local_addr().map_err(|e| cli_err!("{e}"))?;
        dev::record_address(Path::new(DEV_DIR), addr)
            .map_err(|e| cli_err!("cannot record the dev server's address in {DEV_DIR}: {e}"))?;
        let screen_addr = screen.as_ref().and_then(|l| l.local_addr().ok());
        println!(
            "{}",
            dev::walkthrough(Path::new(DEV_DIR), addr, screen_addr)
        );
    }
    let metrics = if config.metrics.enabled {
        Some(
            tokio::net::TcpListener::bind(config.metrics.listen)
                .await
                .map_err(|e| {
                    cli_err!(
                        "cannot listen on {} (metrics.listen): {e}",
                        config.metrics.listen
                    )
                })?,
        )
    } else {
        None
    };
    let tiles = if config.tiles.enabled {
        Some(
            tokio::net::TcpListener::bind(config.tiles.listen)
                .await
                .map_err(|e| {
                    cli_err!(
                        "cannot listen on {} (tiles.listen): {e}",
                        config.tiles.listen
                    )
                })?,
        )
    } else {
        None
    };
    let listeners = server::Listeners {
        grpc: listener,
        metrics,
        screen,
        tiles,
    };
    server::run(config, Arc::new(SystemClock), listeners, shutdown_signal())
        .await
        .map_err(|e| cli_err!("{e}"))
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a person at a terminal, not in files or journald.
    let ansi = std::io::IsTerminal::is_terminal(&io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
