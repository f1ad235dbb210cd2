//! The server as a child process: started, timed, measured (memory, the
//! grants it loaded) and stopped; and opening the store in process.

use super::*;

/// Opens the store, retrying while a previous handle still holds the
/// database's file lock.
pub(super) async fn open_store(dir: &Path, key: Arc<LogKey>) -> Result<Ledger, String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match Ledger::open(dir, key.clone()) {
            Ok(s) => return Ok(s),
            Err(e) if e.is_locked() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Waits until no process holds sled's lock on `dir/db` (our own handle
/// lets go shortly after it is dropped), so the server's start-up does not
/// include waiting for it. Reads /proc/locks; elsewhere it returns at once.
#[cfg(not(unix))]
pub(super) async fn wait_unlocked(_dir: &Path) -> Result<(), String> {
    Ok(())
}

/// See above.
#[cfg(unix)]
pub(super) async fn wait_unlocked(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(meta) = std::fs::metadata(dir.join("db")) else {
        return Ok(());
    };
    let inode = meta.ino().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let Ok(locks) = std::fs::read_to_string("/proc/locks") else {
            return Ok(());
        };
        // "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF": major:minor:inode.
        let held = locks.lines().any(|l| {
            l.split_whitespace()
                .nth(5)
                .and_then(|dev| dev.rsplit(':').next())
                == Some(inode.as_str())
        });
        if !held {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{} is still locked after 30 s", dir.display()));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A child server, killed if dropped while still running (error paths).
pub(super) struct Server {
    child: Child,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Server {
    /// The end of the server's log, for error messages.
    pub(super) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    }
}

/// Starts the server once: times it until it serves, reads its memory,
/// stops it and times that (see the module docs).
pub(super) async fn start_server(
    bin: &Path,
    layout: &Layout,
    admin: &ClientIdentity,
) -> Result<Start, String> {
    // A free port: bind, read it, let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(err)?
        .port();
    let config = layout.root.join("daypass.toml");
    let toml_path = |p: &Path| format!("{:?}", p.display().to_string());
    let text = format!(
        "listen = \"127.0.0.1:{port}\"\ndata_dir = {}\ntrust_domain = \"{TRUST}\"\n\
         bootstrap_admin = \"{ADMIN}\"\n\n[tls]\nca = {}\ncert = {}\nkey = {}\n",
        toml_path(&layout.data),
        toml_path(&layout.pki.join("ca.pem")),
        toml_path(&layout.pki.join("server.pem")),
        toml_path(&layout.pki.join("server.key")),
    );
    std::fs::write(&config, text).map_err(|e| format!("{}: {e}", config.display()))?;
    let log = layout.root.join(format!("server-{port}.log"));
    let out = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let out2 = out.try_clone().map_err(err)?;
    let url = format!("https://127.0.0.1:{port}");

    let started = Instant::now();
    let child = Command::new(bin)
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .args(["--log-format", "json"])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(out2)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let mut server = Server { child, log };

    // Until the health check over mutual TLS answers.
    let deadline = started + PATIENCE;
    let mut clients: Clients = loop {
        if let Some(status) = server.child.try_wait().map_err(err)? {
            return Err(format!(
                "the server exited ({status}) before serving:\n{}",
                server.log_tail()
            ));
        }
        let attempt = async {
            let mut c = client::connect(&url, admin).await.map_err(err)?;
            c.health
                .check(tonic_health::pb::HealthCheckRequest::default())
                .await
                .map_err(err)?;
            Ok::<_, String>(c)
        };
        if let Ok(Ok(c)) = tokio::time::timeout(Duration::from_secs(10), attempt).await {
            break c;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the server did not serve within {PATIENCE:?}:\n{}",
                server.log_tail()
            ));
        }
        tokio::time::sleep(POLL).await;
    };
    let ready_ms = started.elapsed().as_secs_f64() * 1000.0;

    // An admitted call, then its memory.
    clients
        .staff
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .map_err(|e| format!("the bench admin was not admitted: {e}"))?;
    let (rss_kib, hwm_kib) = memory(server.child.id())?;
    drop(clients);

    // SIGTERM, then wait for it to exit.
    let stopping = Instant::now();
    let pid = server.child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .map_err(|e| format!("kill -TERM {pid}: {e}"))?;
    if !killed.success() {
        return Err(format!("kill -TERM {pid} failed ({killed})"));
    }
    let status = loop {
        if let Some(status) = server.child.try_wait().map_err(err)? {
            break status;
        }
        if stopping.elapsed() > PATIENCE {
            return Err(format!(
                "the server did not exit within {PATIENCE:?} of SIGTERM"
            ));
        }
        tokio::time::sleep(POLL).await;
    };
    let stop_ms = stopping.elapsed().as_secs_f64() * 1000.0;
    if !status.success() {
        return Err(format!(
            "the server exited with {status}:\n{}",
            server.log_tail()
        ));
    }
    let loaded = loaded_grants(&server.log);
    Ok(Start {
        ready_ms,
        rss_kib,
        hwm_kib,
        stop_ms,
        loaded,
    })
}

/// `VmRSS` and `VmHWM` of a process, in KiB.
pub(super) fn memory(pid: u32) -> Result<(u64, u64), String> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .ok_or_else(|| format!("{path} has no {name}"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// `live_grants` from the server's "daypass serving" log line (JSON).
pub(super) fn loaded_grants(log: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines().find_map(|l| {
        let v: serde_json::Value = serde_json::from_str(l).ok()?;
        let fields = v.get("fields")?;
        (fields.get("message")?.as_str()? == "daypass serving")
            .then(|| fields.get("live_grants")?.as_u64())
            .flatten()
    })
}

pub(super) fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
