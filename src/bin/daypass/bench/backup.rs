//! `daypass bench backup`: an online backup of a real sled store, the write
//! pause it causes, and a restore of it.
//!
//! Method. A fresh store (fresh log key) is created in a new directory
//! under `--dir` (or the system temp dir) and removed at the end. The log
//! is grown to each requested size in turn (ascending) exactly as `bench
//! tree` grows it ([`tree::grow_to`]: realistic `access.recorded` entries,
//! [`tree::BATCH`] per commit). The store holds no staff, tenants or grants,
//! so the trees a backup copies under the flush lock are nearly empty. At
//! each size:
//!
//! - **backup** (quiet, nothing else running): [`Ledger::backup`] then
//!   every chunk of [`Snapshot::chunks`] written to a file in the temp dir
//!   and `fsync`ed; total wall time, MB/s (10^6 bytes) and entries/s, file
//!   bytes per entry. "snapshot ms" is the time `Ledger::backup` takes to
//!   return: it holds the flush lock for most of it (reading the head, the
//!   newest checkpoint and the state trees), so it bounds the pause;
//! - **pause**: `--writers` tasks each run [`Ledger::append`] with one
//!   entry in a loop (group commit gathers them). After a warm-up, their
//!   commit latencies are recorded for [`BASELINE`] with no backup
//!   ("before"), then backups to the same file are taken one after another
//!   until at least [`BASELINE`] of backup time has passed ("during": every
//!   commit whose interval overlaps a backup). p50, p99 and max commit
//!   latency before and during, and their ratios, are from the same run, so
//!   machine noise hits both sides alike;
//! - **restore**: [`restore`] of the last backup taken under load into a
//!   new directory (it verifies digest, chain, tree, checkpoint signature
//!   and records), timed in entries/s. The copy must hold the `size`
//!   entries plus at least those appended before the backup started, and
//!   at most those appended by the time `Ledger::backup` returned plus one
//!   in flight per writer; restore must report that size and
//!   the head hash of the snapshot, and the restored store, opened, must
//!   hold exactly that many durable entries.
//!
//! Tested as a user runs it, at a tiny size, in tests/bench.rs.

use std::{
    fmt::Write as _,
    io::Write as _,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use daypass::{
    audit::note::LogKey,
    clock::{Clock, SystemClock},
    ledger::{
        Ledger,
        backup::{Snapshot, restore},
    },
};

use super::tree::{self, Rng, err, header, join, scratch_dir};

/// What `daypass bench backup` measures.
#[derive(Clone, Debug)]
pub struct BackupOptions {
    pub sizes: Vec<u64>,
    pub writers: usize,
    pub dir: Option<PathBuf>,
}

/// Commit latencies recorded without a backup, and at least as much backup
/// time with one.
pub const BASELINE: Duration = Duration::from_secs(2);
/// Writers run this long before anything is recorded.
const WARM_UP: Duration = Duration::from_millis(500);
/// The bench log's key name.
const KEY_NAME: &str = "bench.daypass/log";

/// Runs the backup benchmark and returns the report (Markdown).
pub async fn backup(opts: &BackupOptions) -> Result<String, String> {
    let mut sizes = opts.sizes.clone();
    sizes.sort_unstable();
    sizes.dedup();
    if sizes.is_empty() || sizes[0] == 0 {
        return Err("--sizes needs at least one size, all above 0".into());
    }
    if opts.writers == 0 {
        return Err("--writers must be above 0".into());
    }
    let dir = scratch_dir(opts.dir.as_deref())?;
    let rows = measure(&dir, &sizes, opts.writers).await;
    let removed = std::fs::remove_dir_all(&dir);
    let rows = rows?;

    let mut out = header(
        "Backup benchmark",
        format!(
            "daypass bench backup --sizes {} --writers {}",
            join(&sizes),
            opts.writers
        ),
        opts.dir.as_deref(),
    );
    let _ = writeln!(
        out,
        "Backup: `Ledger::backup` and every chunk written to a file and fsynced, nothing else \
         running; MB = 10^6 bytes. Snapshot ms: until `Ledger::backup` returns (the flush lock \
         is held for most of it). Restore: the last backup taken under load, into a new \
         directory, verified (digest, chain, tree, checkpoint signature, records); restored = \
         entries + the writers' entries durable when its head was read.\n"
    );
    let _ = writeln!(
        out,
        "| entries | file MB | file B/entry | backup ms | backup MB/s | backup entries/s \
         | snapshot ms | restored | restore ms | restore entries/s |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        let _ = writeln!(
            out,
            "| {} | {:.1} | {:.0} | {:.1} | {:.0} | {:.0} | {:.2} | {} = {} + {} | {:.0} | {:.0} |",
            r.size,
            r.file_bytes as f64 / 1e6,
            r.file_bytes as f64 / r.size as f64,
            r.backup_s * 1000.0,
            r.file_bytes as f64 / 1e6 / r.backup_s,
            r.size as f64 / r.backup_s,
            r.snapshot_ms,
            r.restored,
            r.size,
            r.restored - r.size,
            r.restore_s * 1000.0,
            r.restored as f64 / r.restore_s,
        );
    }
    let _ = writeln!(
        out,
        "\nWrite pause: {} writers, each `Ledger::append` of one entry in a loop; commit latency \
         in ms, {:.0} s without a backup (before) against commits overlapping backups taken one \
         after another for at least as long (during); × is during / before.\n",
        opts.writers,
        BASELINE.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "| entries | backups | backup ms under load (mean) | snapshot ms under load (max) \
         | commits/s before / during | p50 before / during (×) | p99 before / during (×) \
         | max before / during (×) |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        let (b, d) = (&r.before, &r.during);
        let _ = writeln!(
            out,
            "| {} | {} | {:.1} | {:.2} | {:.0} / {:.0} | {} | {} | {} |",
            r.size,
            r.loaded_backups,
            r.loaded_backup_s * 1000.0,
            r.loaded_snapshot_ms,
            b.rate,
            d.rate,
            ratio(b.p50, d.p50),
            ratio(b.p99, d.p99),
            ratio(b.max, d.max),
        );
    }
    let _ = writeln!(
        out,
        "\nRestored and verified: {} of {}",
        rows.len(),
        rows.len()
    );
    if let Err(e) = removed {
        let _ = writeln!(out, "\nCould not remove {}: {e}", dir.display());
    }
    Ok(out)
}

fn ratio(before: f64, during: f64) -> String {
    format!(
        "{before:.2} / {during:.2} ({:.1}×)",
        during / before.max(1e-9)
    )
}

/// One size's figures.
struct Row {
    size: u64,
    file_bytes: u64,
    backup_s: f64,
    snapshot_ms: f64,
    loaded_backups: usize,
    loaded_backup_s: f64,
    loaded_snapshot_ms: f64,
    before: Latency,
    during: Latency,
    restored: u64,
    restore_s: f64,
}

/// Commit latencies over one window (ms).
struct Latency {
    rate: f64,
    p50: f64,
    p99: f64,
    max: f64,
}

impl Latency {
    fn of(mut ms: Vec<f64>, window: Duration) -> Latency {
        ms.sort_by(f64::total_cmp);
        let at = |q: usize| {
            ms.get((ms.len() * q).div_ceil(100).saturating_sub(1))
                .copied()
                .unwrap_or(f64::NAN)
        };
        Latency {
            rate: ms.len() as f64 / window.as_secs_f64().max(1e-9),
            p50: at(50),
            p99: at(99),
            max: ms.last().copied().unwrap_or(f64::NAN),
        }
    }
}

/// One commit: when it started and when its append returned.
type Sample = (Instant, Instant);

/// What a backup to a file took.
struct Taken {
    size: u64,
    head_hash: String,
    bytes: u64,
    snapshot_ms: f64,
    /// `appended` read right after `Ledger::backup` returned.
    appended_by_snapshot: u64,
    started: Instant,
    ended: Instant,
}

/// Grows the log through `sizes` and measures at each (see the module docs).
async fn measure(dir: &Path, sizes: &[u64], writers: usize) -> Result<Vec<Row>, String> {
    let key = Arc::new(LogKey::generate(KEY_NAME).map_err(|e| e.to_string())?);
    let store_dir = dir.join("store");
    let ledger = Arc::new(Ledger::open(&store_dir, key.clone()).map_err(err)?);
    let file = dir.join("backup.bin");
    let mut rng = Rng(0x5eed_da95_0000_00bc);
    let mut rows = Vec::with_capacity(sizes.len());
    for &size in sizes {
        tree::grow_to(&ledger, size, &mut rng).await?;
        let size = ledger.head().next_seq;

        // Quiet: nothing else runs.
        let quiet = take(&ledger, &file, &AtomicU64::new(0)).await?;
        if quiet.size != size {
            return Err(format!(
                "a quiet backup holds {} entries, the log {size}",
                quiet.size
            ));
        }

        // Under load: before, then backups one after another.
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let tasks: Vec<_> = (0..writers)
            .map(|i| {
                let (ledger, stop, done) = (ledger.clone(), stop.clone(), done.clone());
                let mut rng = Rng(0x00c0_ffee_0000_0000 + i as u64);
                tokio::spawn(async move {
                    let mut samples: Vec<Sample> = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let started = Instant::now();
                        ledger
                            .append(&SystemClock, vec![tree::access_entry(&mut rng)])
                            .await
                            .map_err(err)?;
                        samples.push((started, Instant::now()));
                        done.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok::<_, String>(samples)
                })
            })
            .collect();
        tokio::time::sleep(WARM_UP).await;
        let before_from = Instant::now();
        tokio::time::sleep(BASELINE).await;
        let before_to = Instant::now();
        let mut loaded = Vec::new();
        let mut spent = Duration::ZERO;
        let mut last = None;
        while spent < BASELINE || loaded.is_empty() {
            let appended = done.load(Ordering::SeqCst);
            let t = take(&ledger, &file, &done).await;
            let t = match t {
                Ok(t) => t,
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    return Err(e);
                }
            };
            spent += t.ended - t.started;
            last = Some((
                appended,
                t.appended_by_snapshot,
                t.size,
                t.head_hash.clone(),
            ));
            loaded.push((t.started, t.ended, t.snapshot_ms));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop.store(true, Ordering::Relaxed);
        let mut samples = Vec::new();
        for task in tasks {
            samples.extend(task.await.map_err(err)??);
        }
        let before: Vec<f64> = samples
            .iter()
            .filter(|(s, e)| *s >= before_from && *e <= before_to)
            .map(|(s, e)| ms(*e - *s))
            .collect();
        let during: Vec<f64> = samples
            .iter()
            .filter(|(s, e)| loaded.iter().any(|(from, to, _)| s < to && e > from))
            .map(|(s, e)| ms(*e - *s))
            .collect();

        // Restore the last backup taken under load.
        let (appended, appended_by_snapshot, copy, head_hash) =
            last.ok_or("no backup was taken under load")?;
        let (lowest, highest) = (
            size + appended,
            size + appended_by_snapshot + writers as u64,
        );
        if !(lowest..=highest).contains(&copy) {
            return Err(format!(
                "a backup taken under load holds {copy} entries, not {lowest} to {highest} \
                 (durable when it started, to durable or in flight when it returned)"
            ));
        }
        let target = dir.join(format!("restored-{size}"));
        let (file2, target2, verifier) = (file.clone(), target.clone(), key.verifier());
        let started = Instant::now();
        let restored =
            tokio::task::spawn_blocking(move || restore(&file2, &target2, vec![verifier]))
                .await
                .map_err(err)?
                .map_err(|e| format!("the backup did not restore: {e}"))?;
        let restore_s = started.elapsed().as_secs_f64();
        if restored.header.size != copy
            || restored.declaration.restored_size != copy
            || restored.header.head_hash != head_hash
        {
            return Err(format!(
                "restore reports {} entries (head {}), the backup {copy} (head {head_hash})",
                restored.header.size, restored.header.head_hash
            ));
        }
        let reopened = Ledger::open(&target, key.clone()).map_err(err)?;
        if reopened.durable_size() != copy {
            return Err(format!(
                "the restored store holds {} entries, the backup {copy}",
                reopened.durable_size()
            ));
        }
        drop(reopened);
        std::fs::remove_dir_all(&target).map_err(|e| format!("{}: {e}", target.display()))?;

        rows.push(Row {
            size,
            file_bytes: quiet.bytes,
            backup_s: (quiet.ended - quiet.started).as_secs_f64(),
            snapshot_ms: quiet.snapshot_ms,
            loaded_backups: loaded.len(),
            loaded_backup_s: spent.as_secs_f64() / loaded.len() as f64,
            loaded_snapshot_ms: loaded.iter().map(|l| l.2).fold(0.0, f64::max),
            before: Latency::of(before, before_to - before_from),
            during: Latency::of(during, spent),
            restored: copy,
            restore_s,
        });
    }
    let _ = std::fs::remove_file(&file);
    Ok(rows)
}

/// One backup of `ledger` to `file` (replaced), fsynced; `appended`
/// counts the writers' commits.
async fn take(ledger: &Ledger, file: &Path, appended: &AtomicU64) -> Result<Taken, String> {
    let started = Instant::now();
    let snapshot: Snapshot = ledger.backup(SystemClock.now()).await.map_err(err)?;
    let snapshot_ms = ms(started.elapsed());
    let appended_by_snapshot = appended.load(Ordering::SeqCst);
    let (size, head_hash) = (snapshot.header.size, snapshot.header.head_hash.clone());
    let path = file.to_owned();
    let bytes = tokio::task::spawn_blocking(move || -> Result<u64, String> {
        let f = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut w = std::io::BufWriter::new(f);
        let mut bytes = 0u64;
        for chunk in snapshot.chunks() {
            let chunk = chunk.map_err(err)?;
            w.write_all(&chunk).map_err(err)?;
            bytes += chunk.len() as u64;
        }
        w.into_inner().map_err(err)?.sync_all().map_err(err)?;
        Ok(bytes)
    })
    .await
    .map_err(err)??;
    Ok(Taken {
        size,
        head_hash,
        bytes,
        snapshot_ms,
        appended_by_snapshot,
        started,
        ended: Instant::now(),
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
