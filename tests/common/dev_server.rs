//! A `daypass serve --dev` child process for the CLI tests
//! (`tests/cli.rs`, `tests/cli_dev.rs`): started in a directory of the
//! test's, its address learnt from the walkthrough it prints.

// Waits for a real process: wall time on purpose.
#![allow(clippy::disallowed_methods)]

use std::{
    fs::File,
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Output, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use super::cli;

/// A `daypass serve --dev` child process, killed when dropped.
pub struct DevServer {
    pub child: Child,
    pub url: String,
    /// Everything it printed on stdout so far (the walkthrough).
    pub printed: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl DevServer {
    /// Starts `serve --dev` in `dir` and learns its address from the
    /// walkthrough it prints. Its log goes to `dir/server-N.log`.
    pub fn start(dir: &Path, n: u32) -> DevServer {
        let log = dir.join(format!("server-{n}.log"));
        let child = cli::command(dir)
            .args([
                "serve",
                "--dev",
                "--listen",
                "127.0.0.1:0",
                "--metrics-listen",
                "127.0.0.1:0",
                "--screen-listen",
                "127.0.0.1:0",
            ])
            .stdout(Stdio::piped())
            .stderr(File::create(&log).expect("server log"))
            .spawn()
            .expect("spawn server");
        // Killed on every path from here on, including a failed start.
        let mut server = DevServer {
            child,
            url: String::new(),
            printed: Default::default(),
        };
        let stdout = server.child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        let printed = server.printed.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                printed.lock().expect("lock").push(line.clone());
                if let Some(i) = line.find("https://127.0.0.1:") {
                    let url: String = line[i..]
                        .chars()
                        .take_while(|c| !c.is_whitespace())
                        .collect();
                    let _ = tx.send(url);
                }
            }
        });
        server.url = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!(
                    "the walkthrough did not name the server address; server log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            });
        server
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .expect("kill")
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not stop within 15 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `daypass args --server URL` in `dir`, against `server` (the connection
/// flags go after the command).
pub fn run(dir: &Path, server: &DevServer, args: &[&str]) -> Output {
    cli::run(dir, args.iter().chain(&["--server", server.url.as_str()]))
}
