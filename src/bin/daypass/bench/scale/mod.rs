//! `daypass bench scale`: the real server process at growing log sizes
//! with many active grants: start-up time, resident memory, disk per entry,
//! append and verify rates.
//!
//! Method. A new directory under `--dir` (or the system temp dir) gets a
//! fresh PKI (a CA, a server certificate, a client certificate for the
//! bootstrap admin, a log signing key) and one data directory that grows
//! through every size; all of it is removed at the end.
//!
//! - **Build.** The store is opened in this process and filled with
//!   [`BATCH`] log entries per [`Ledger::commit`] (one sled transaction and
//!   one flush each), in this order: the bootstrap admin, then
//!   ⌈√grants⌉ support engineers (`staff.enrolled`) and enough
//!   auto-approved tenants (`tenant.added`) that every grant is a distinct
//!   (holder, tenant) pair, then `--grants` grant records, active, activated
//!   at the commit's time and expiring 24 h later, each with its
//!   `grant.activated` entry (so they are in the `live` index the server
//!   loads), then realistic `access.recorded` entries (as in `bench tree`)
//!   up to each size. A size too small for the whole build holds the part
//!   that fits: the table says how many grants were active. The append
//!   rate is over the segment that reached the size (from the previous
//!   one); the last commit of a segment is cut short so each size ends
//!   exactly on a commit.
//! - **Disk**: the sum of the file sizes in the data directory after the
//!   segment's last flush, divided by the number of entries.
//! - **Start-up.** The store is closed and the daypass binary started as a
//!   child process (`daypass serve --config F --log-format json`, the
//!   binary from `DAYPASS_BIN` or else this executable if it is named
//!   `daypass`) on a free port of 127.0.0.1. Start-up is the time from
//!   spawning it until a gRPC health check over mutual TLS, with the
//!   bootstrap admin's certificate, first succeeds (polled every
//!   [`POLL`]); the server serves only after it has opened the store,
//!   loaded every live grant's deadline into its expiry index, closed
//!   overdue grants and logged `server.started`. An admitted call
//!   (`WhoAmI`) then checks the identity, and `VmRSS` and `VmHWM` (peak)
//!   are read from `/proc/<pid>/status`. The server is stopped with SIGTERM
//!   (it drains, logs `server.stopped` and exits) and the stop timed. This
//!   runs twice: first right after the appends (sled 0.34 reads back
//!   everything written since the database was last opened), then again
//!   with nothing but the server's own two entries written in between.
//!   Each start adds two entries, so the next segment starts four entries
//!   past the size.
//! - **Verify.** With the server stopped, the store is opened in this
//!   process and [`check_chain`] timed: the server-side full verification
//!   (every entry decoded and its hash recomputed, every link and sequence
//!   number, the head, and every stored Merkle node recomputed from the
//!   entries). MB/s is over the encoded entries (what is hashed), summed
//!   afterwards in an untimed pass over the log. Appends then continue on
//!   this handle.
//!
//! Without a daypass binary (this module's unit tests, whose harness is
//! not named `daypass`, with `DAYPASS_BIN` unset) the start-up and memory
//! columns say "not measured"; everything else runs. tests/bench.rs runs
//! `daypass bench scale` itself, so both are measured there.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

mod child;
mod plan;

use self::{
    child::{mib, open_store, start_server, wait_unlocked},
    plan::Plan,
};
use super::tree::{Rng, access_entry, dir_bytes, err, header, join, scratch_dir};
use daypass::{
    audit::{check::check_chain, note::LogKey},
    client::{self, ClientIdentity, Clients},
    clock::{SystemClock, Timestamp},
    domain::{
        Actor, Approval, Draft, EventKind, Grant, GrantId, MAX_GRANT_SECS, Name, Principal,
        PrincipalKind, Reason, Role, StaffRecord, TenantRecord, Ticket, detail,
    },
    ledger::{Batch, Ledger, LedgerError},
    pb,
    pki::{self, CertSpec, CertificateAuthority},
};

/// What `daypass bench scale` runs.
#[derive(Clone, Debug)]
pub struct ScaleOptions {
    /// Log sizes to measure at.
    pub sizes: Vec<u64>,
    /// Simultaneously active grants.
    pub grants: u64,
    pub dir: Option<PathBuf>,
}

/// Entries per commit while growing the log.
pub const BATCH: u64 = 1000;
/// How often start-up polls the health check.
pub const POLL: Duration = Duration::from_millis(5);
/// Longest wait for a server to answer, or to exit after SIGTERM.
const PATIENCE: Duration = Duration::from_secs(300);
/// The bench PKI's trust domain.
const TRUST: &str = "bench.daypass";
/// The bootstrap admin (enrolled by the build, so the server finds staff).
const ADMIN: &str = "bench-admin";

/// Runs the scale benchmark and returns the report (Markdown). The server
/// binary is `DAYPASS_BIN`, else this executable if it is `daypass`.
pub async fn scale(opts: &ScaleOptions) -> Result<String, String> {
    scale_with_server(opts, server_binary().as_deref()).await
}

/// [`scale`] with the daypass binary to start given; `None` skips the
/// start-up and memory measurements.
async fn scale_with_server(opts: &ScaleOptions, bin: Option<&Path>) -> Result<String, String> {
    let mut sizes = opts.sizes.clone();
    sizes.sort_unstable();
    sizes.dedup();
    if sizes.is_empty() || sizes[0] == 0 {
        return Err("--sizes needs at least one size, all above 0".into());
    }
    let dir = scratch_dir(opts.dir.as_deref())?;
    let rows = measure(&dir, &sizes, opts.grants, bin).await;
    let removed = std::fs::remove_dir_all(&dir);
    let rows = rows?;
    let mut out = report(opts, &sizes, &rows, bin);
    if let Err(e) = removed {
        let _ = writeln!(out, "\nCould not remove {}: {e}", dir.display());
    }
    Ok(out)
}

/// The daypass binary to start: `DAYPASS_BIN`, else this executable if it
/// is `daypass` (the CLI), else none (a test harness).
fn server_binary() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("DAYPASS_BIN") {
        return Some(PathBuf::from(bin));
    }
    let exe = std::env::current_exe().ok()?;
    (exe.file_stem()? == "daypass").then_some(exe)
}

/// One row of the table.
struct Row {
    size: u64,
    grants: u64,
    append_rate: f64,
    disk_per_entry: f64,
    /// The two starts, if a binary was found.
    starts: Option<[Start; 2]>,
    /// In-process `Ledger::open` before verifying (nothing written since the
    /// server's second start but its `server.stopped`).
    open_ms: f64,
    /// In-process `Ledger::live_grants` (what the server's expiry index
    /// loads at start-up), right after that open.
    live_ms: f64,
    verify_secs: f64,
    checked: u64,
    log_bytes: u64,
    problem: Option<String>,
}

/// One start of the server process.
struct Start {
    ready_ms: f64,
    rss_kib: u64,
    hwm_kib: u64,
    stop_ms: f64,
    /// Live grants the server said it loaded (from its log).
    loaded: Option<u64>,
}

/// Files of the run, all under the scratch dir.
struct Layout {
    root: PathBuf,
    data: PathBuf,
    pki: PathBuf,
}

impl Layout {
    fn new(root: &Path) -> Layout {
        Layout {
            root: root.to_owned(),
            data: root.join("data"),
            pki: root.join("pki"),
        }
    }
}

/// A fresh CA, server certificate and log key in `layout.pki`; returns the
/// bootstrap admin's client identity.
fn make_pki(layout: &Layout) -> Result<ClientIdentity, String> {
    let ca = CertificateAuthority::generate("daypass scale bench CA").map_err(err)?;
    let server = ca
        .issue(&CertSpec::server(
            &["localhost".into(), "127.0.0.1".into()],
            2,
        ))
        .map_err(err)?;
    let p = |n: &str| layout.pki.join(n);
    pki::create_dir(&layout.pki).map_err(err)?;
    pki::write_public(&p("ca.pem"), ca.cert_pem()).map_err(err)?;
    pki::write_public(&p("server.pem"), &server.cert_pem).map_err(err)?;
    pki::write_secret(&p("server.key"), &server.key_pem).map_err(err)?;
    pki::create_log_key(&layout.pki, &pki::default_log_origin(TRUST), false).map_err(err)?;
    pki::create_gate_keys(&layout.pki, false).map_err(err)?;
    let admin = ca
        .issue_client(
            PrincipalKind::Staff,
            &Name::parse(ADMIN).map_err(err)?,
            TRUST,
            2,
        )
        .map_err(err)?;
    Ok(ClientIdentity {
        ca_pem: ca.cert_pem().as_bytes().to_vec(),
        cert_pem: admin.cert_pem.into_bytes(),
        key_pem: admin.key_pem.into_bytes(),
    })
}

/// Grows the log through `sizes` and measures at each (see the module docs).
async fn measure(
    dir: &Path,
    sizes: &[u64],
    grants: u64,
    bin: Option<&Path>,
) -> Result<Vec<Row>, String> {
    let layout = Layout::new(dir);
    let admin = make_pki(&layout)?;
    let key = Arc::new(pki::load_log_key(&layout.pki.join(pki::LOG_KEY_FILE)).map_err(err)?);
    let mut store = Some(Ledger::open(&layout.data, key.clone()).map_err(err)?);
    let mut plan = Plan::new(grants)?;
    let mut rows = Vec::with_capacity(sizes.len());
    for &size in sizes {
        let s = store.as_ref().ok_or("no store")?;

        // Append up to `size`, BATCH entries per commit.
        let from = s.head().next_seq;
        let started = Instant::now();
        while s.head().next_seq < size {
            let n = BATCH.min(size - s.head().next_seq);
            s.commit(&SystemClock, |_, b, now| {
                for _ in 0..n {
                    plan.next(b, now);
                }
                Ok::<_, LedgerError>(())
            })
            .await
            .map_err(err)?;
        }
        let grow = started.elapsed().as_secs_f64();
        if s.durable_size() != size.max(from) {
            return Err(format!(
                "the log should hold {size} durable entries but holds {}",
                s.durable_size()
            ));
        }
        // Normally `size`; more if the previous size's server starts
        // already went past it.
        let entries = s.head().next_seq;
        let appended = entries - from;
        let disk_per_entry = dir_bytes(&layout.data)? as f64 / entries as f64;

        // Two starts of the real server, the store closed in between.
        drop(store.take());
        let starts = match bin {
            None => None,
            Some(bin) => {
                wait_unlocked(&layout.data).await?;
                let first = start_server(bin, &layout, &admin).await?;
                let second = start_server(bin, &layout, &admin).await?;
                Some([first, second])
            }
        };

        // The server-side full verification, in this process.
        let opening = Instant::now();
        let s = &*store.insert(open_store(&layout.data, key.clone()).await?);
        let open_ms = opening.elapsed().as_secs_f64() * 1000.0;
        let loading = Instant::now();
        let live = s.live_grants().map_err(err)?.len();
        let live_ms = loading.elapsed().as_secs_f64() * 1000.0;
        if live as u64 != plan.grants_made() {
            return Err(format!(
                "the store has {live} live grants, the build made {}",
                plan.grants_made()
            ));
        }
        let started = Instant::now();
        let chain = check_chain(s).map_err(err)?;
        let verify_secs = started.elapsed().as_secs_f64();
        let mut log_bytes = 0u64;
        for e in s.entries_from(0) {
            log_bytes += e.map_err(err)?.entry.encode().len() as u64;
        }
        let head = s.head().next_seq;
        let problem = match chain.problem {
            Some(p) => Some(format!("entry {}: {:?}: {}", p.seq, p.kind, p.detail)),
            None if chain.checked != head => {
                Some(format!("checked {} entries of {head}", chain.checked))
            }
            None => None,
        };

        rows.push(Row {
            size: entries,
            grants: plan.grants_made(),
            append_rate: if grow > 0.0 {
                appended as f64 / grow
            } else {
                0.0
            },
            disk_per_entry,
            starts,
            open_ms,
            live_ms,
            verify_secs,
            checked: chain.checked,
            log_bytes,
            problem,
        });
    }
    Ok(rows)
}

/// What the build writes, one log entry at a time, in order: the admin,
/// the engineers, the tenants, the grants, then access entries forever.
/// The Markdown report.
fn report(opts: &ScaleOptions, sizes: &[u64], rows: &[Row], bin: Option<&Path>) -> String {
    let mut out = header(
        "Scale benchmark",
        format!(
            "daypass bench scale --sizes {} --grants {}",
            join(sizes),
            opts.grants
        ),
        opts.dir.as_deref(),
    );
    match bin {
        Some(b) => {
            let _ = writeln!(out, "Server binary: `{}`\n", b.display());
        }
        None => {
            let _ = writeln!(
                out,
                "No daypass binary (set DAYPASS_BIN): start-up and memory not measured.\n"
            );
        }
    }
    let _ = writeln!(
        out,
        "Appends: {BATCH} entries per commit, in-process, figures for the segment from the \
         previous size (the first segment also enrols the staff and tenants and creates the \
         grants). Start-up: spawn of `daypass serve` until a health check over mutual TLS \
         answers (polled every {} ms), first start right after the appends / second start; \
         memory read from /proc right after (VmRSS / VmHWM, MiB); stop: SIGTERM until exit. \
         In-process: `Ledger::open` then `Ledger::live_grants` (what the server reads into its \
         expiry index) timed on their own, just before verifying. Verify: `broker::check_chain` \
         on the closed store, in-process. Disk: files in the data directory per entry.\n",
        POLL.as_millis()
    );
    let _ = writeln!(
        out,
        "| entries | active grants (loaded) | append entries/s | start-up ms: first / second \
         | RSS MiB first start: VmRSS / VmHWM | RSS MiB second start | stop ms \
         | in-process ms: open / live grants | verify entries/s | verify MB/s | disk B/entry \
         | chain |"
    );
    let _ = writeln!(
        out,
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    for r in rows {
        let (startup, rss1, rss2, stop, loaded) = match &r.starts {
            Some([a, b]) => (
                format!("{:.0} / {:.0}", a.ready_ms, b.ready_ms),
                format!("{:.0} / {:.0}", mib(a.rss_kib), mib(a.hwm_kib)),
                format!("{:.0} / {:.0}", mib(b.rss_kib), mib(b.hwm_kib)),
                format!("{:.0} / {:.0}", a.stop_ms, b.stop_ms),
                a.loaded
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| "?".into()),
            ),
            None => (
                "not measured".into(),
                "not measured".into(),
                "not measured".into(),
                "–".into(),
                "–".into(),
            ),
        };
        let secs = r.verify_secs.max(1e-9);
        let _ = writeln!(
            out,
            "| {} | {} ({loaded}) | {:.0} | {startup} | {rss1} | {rss2} | {stop} | {:.0} / {:.0} \
             | {:.0} | {:.1} | {:.0} | {} |",
            r.size,
            r.grants,
            r.append_rate,
            r.open_ms,
            r.live_ms,
            r.checked as f64 / secs,
            r.log_bytes as f64 / 1e6 / secs,
            r.disk_per_entry,
            match &r.problem {
                None => format!("verified ({} entries)", r.checked),
                Some(p) => format!("PROBLEM: {p}"),
            },
        );
    }
    let failed = rows.iter().filter(|r| r.problem.is_some()).count();
    let _ = writeln!(
        out,
        "\nChain verified at every size: {}",
        if failed == 0 { "yes" } else { "no" }
    );

    let check = |ok: bool| if ok { "met" } else { "missed" };
    let _ = writeln!(out, "\nTargets (issue 6):\n");
    let big = rows.iter().rev().find(|r| r.size >= 10_000_000);
    match big.and_then(|r| Some((r, r.starts.as_ref()?))) {
        Some((r, [a, b])) => {
            let worst = a.ready_ms.max(b.ready_ms);
            let _ = writeln!(
                out,
                "- start-up ≤ 1 s with 10^7 entries: {:.0} ms first, {:.0} ms second at {} \
                 entries ({})",
                a.ready_ms,
                b.ready_ms,
                r.size,
                check(worst <= 1000.0)
            );
            let peak = a.hwm_kib.max(b.hwm_kib);
            let _ = writeln!(
                out,
                "- RSS ≤ 256 MiB with 10^7 entries and 10^5 active grants: peak {:.0} MiB \
                 (VmHWM), {:.0} MiB resident after start-up, with {} active grants ({})",
                mib(peak),
                mib(a.rss_kib.max(b.rss_kib)),
                r.grants,
                if r.grants >= 100_000 {
                    check(mib(peak) <= 256.0)
                } else {
                    "fewer grants than the target's"
                }
            );
        }
        None => {
            let _ = writeln!(
                out,
                "- start-up ≤ 1 s and RSS ≤ 256 MiB with 10^7 entries: not measured (largest \
                 size {}{})",
                sizes.last().copied().unwrap_or(0),
                if bin.is_none() {
                    ", no server binary"
                } else {
                    ""
                }
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Smoke mode: tiny sizes, so the benchmark never rots. The server
    /// process is started only if `DAYPASS_BIN` names a daypass binary.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_scale_bench_runs_and_the_chain_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let report = scale(&ScaleOptions {
            sizes: vec![500, 200],
            grants: 50,
            dir: Some(dir.path().to_owned()),
        })
        .await
        .unwrap();
        let rows: Vec<Vec<&str>> = report
            .lines()
            .filter(|l| l.starts_with("| "))
            .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
            .filter(|cells: &Vec<&str>| cells[0].parse::<u64>().is_ok())
            .collect();
        assert_eq!(rows.len(), 2, "{report}");
        assert_eq!(rows[0][0], "200");
        assert_eq!(rows[1][0], "500");
        // 1 admin + 8 engineers + 7 tenants + 50 grants (two entries each)
        // fit in 200 entries.
        assert!(rows[0][1].starts_with("50 "), "{report}");
        for r in &rows {
            assert!(r[11].starts_with("verified"), "{report}");
            let measured = server_binary().is_some();
            assert_eq!(r[3] != "not measured", measured, "{report}");
        }
        assert!(
            report.contains("Chain verified at every size: yes"),
            "{report}"
        );
        // Everything the bench wrote is gone.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
