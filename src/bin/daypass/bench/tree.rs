//! `daypass bench tree`: the log's Merkle tree in a real sled store.
//!
//! Method. A fresh store is created in a new directory under `--dir` (or
//! the system temp dir) with a fresh log key, and removed at the end. The
//! log is grown to each requested size in turn (ascending) with realistic
//! `access.recorded` entries (tenant `acme`, actor `tenant/acme`, details
//! `grant`, `holder`, `action`, `resource` of the lengths the service
//! writes), [`BATCH`] entries per [`Ledger::commit`]; every commit is one
//! sled transaction that also stores the closed tree nodes and a signed
//! checkpoint, and is flushed to disk before it returns. The last commit
//! of a segment is cut short so each size ends exactly on a commit (and so
//! has a signed checkpoint). Then, at that size:
//!
//! - **append**: entries per second and milliseconds per commit over the
//!   segment that reached the size (from the previous size);
//! - **open**: the store is dropped and [`Ledger::open`] timed, first
//!   right after the appends (sled 0.34 writes its snapshot only when it
//!   opens, so it first reads back everything written since the last
//!   open), then once more with nothing written in between, then sled
//!   alone opening the same directory for comparison: the difference is
//!   the store's own start-up, which reads popcount(n) nodes and the
//!   newest entry, never the log. Appends continue on the reopened store;
//! - **disk**: the sum of the file sizes in the directory (after the
//!   flush), divided by the number of entries;
//! - **root**: [`Ledger::root_at`]`(size)`, averaged over [`ROOT_CALLS`]
//!   calls, and checked against the signed checkpoint at that size;
//! - **inclusion**: [`Ledger::inclusion_proof`] for `--proofs` random
//!   sequence numbers, timed on their own as "first after open" (sled
//!   pages the tree in from the files), then for `--proofs` other random
//!   sequence numbers, each verified with [`merkle::verify_inclusion`]
//!   against `root_at(size)` and the leaf hash of the stored entry;
//! - **consistency**: [`Ledger::consistency_proof`] from `--proofs` random
//!   older sizes, each verified with [`merkle::verify_consistency`]
//!   against `root_at(old)` and `root_at(size)`.
//!
//! Proof times are the wall time of the store call alone (mean and 99th
//! percentile, microseconds); verification is not timed. Proof length is
//! in hashes; node reads are counted by running the same proof once more
//! through [`merkle`] with a [`Nodes`] wrapper that counts calls (untimed).
//! Random positions come from a fixed-seed generator, so runs are
//! repeatable. Everything runs on one task: no concurrent writers.

use std::{
    cell::Cell,
    fmt::Write as _,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use daypass::{
    audit::{
        Hash,
        merkle::{self, NodeId, Nodes},
        note::LogKey,
    },
    clock::SystemClock,
    domain::{Actor, Draft, EventKind, Name, Principal, PrincipalKind, detail},
    ledger::{Ledger, LedgerError},
};

/// What `daypass bench tree` measures.
#[derive(Clone, Debug)]
pub struct TreeOptions {
    pub sizes: Vec<u64>,
    pub proofs: usize,
    pub dir: Option<PathBuf>,
}

/// Entries per commit while growing the log.
pub const BATCH: u64 = 1000;
/// `root_at` calls averaged at each size.
pub const ROOT_CALLS: usize = 1000;
/// The bench log's key name.
const KEY_NAME: &str = "bench.daypass/log";

/// Runs the tree benchmark and returns the report (Markdown).
pub async fn tree(opts: &TreeOptions) -> Result<String, String> {
    let mut sizes = opts.sizes.clone();
    sizes.sort_unstable();
    sizes.dedup();
    if sizes.is_empty() || sizes[0] == 0 {
        return Err("--sizes needs at least one size, all above 0".into());
    }
    let dir = scratch_dir(opts.dir.as_deref())?;

    let rows = measure(&dir, &sizes, opts.proofs).await;
    let removed = std::fs::remove_dir_all(&dir);
    let rows = rows?;

    let mut out = header(
        "Tree benchmark",
        format!(
            "daypass bench tree --sizes {} --proofs {}",
            join(&sizes),
            opts.proofs
        ),
        opts.dir.as_deref(),
    );
    let _ = writeln!(
        out,
        "Appends: {BATCH} entries per commit (one sled transaction, one flush, one signed \
         checkpoint); figures for the segment from the previous size. `root_at`: mean of \
         {ROOT_CALLS} calls. Proofs: {} random positions per size; time in µs (mean / p99), \
         length in hashes and stored node reads (mean / max). Open: the first open after the \
         appends, the next open (nothing written in between), sled alone. \"First after \
         open\": mean of as many inclusion proofs run right after the open, before the timed \
         ones, while sled still reads the tree's pages from the files.\n",
        opts.proofs
    );
    let _ = writeln!(
        out,
        "| entries | append entries/s | ms/commit | open ms: after appends / again / sled alone \
         | disk B/entry \
         | root_at µs | incl. µs mean / p99 (first after open) | incl. hashes | incl. reads \
         | cons. µs mean / p99 | cons. hashes | cons. reads | failed |"
    );
    let _ = writeln!(
        out,
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in &rows {
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.1} | {:.1} / {:.1} / {:.1} | {:.0} | {:.1} | {} ({:.1}) | {} | {} | {} | {} | {} | {} |",
            r.size,
            r.append_rate,
            r.ms_per_commit,
            r.open_ms,
            r.reopen_ms,
            r.sled_open_ms,
            r.disk_per_entry,
            r.root_us,
            r.incl.times(),
            r.first_incl_us,
            r.incl.hashes(),
            r.incl.reads(),
            r.cons.times(),
            r.cons.hashes(),
            r.cons.reads(),
            r.incl.failed + r.cons.failed + r.root_failed,
        );
    }
    let failed: usize = rows
        .iter()
        .map(|r| r.incl.failed + r.cons.failed + r.root_failed)
        .sum();
    let _ = writeln!(out, "\nFailed verifications: {failed}");
    if let Err(e) = removed {
        let _ = writeln!(out, "\nCould not remove {}: {e}", dir.display());
    }
    Ok(out)
}

/// One row of the table.
struct Row {
    size: u64,
    append_rate: f64,
    ms_per_commit: f64,
    open_ms: f64,
    reopen_ms: f64,
    sled_open_ms: f64,
    first_incl_us: f64,
    disk_per_entry: f64,
    root_us: f64,
    root_failed: usize,
    incl: Proofs,
    cons: Proofs,
}

/// Timings and sizes of one kind of proof at one size.
#[derive(Default)]
struct Proofs {
    micros: Vec<f64>,
    hashes: Vec<usize>,
    reads: Vec<u64>,
    failed: usize,
}

impl Proofs {
    fn times(&self) -> String {
        if self.micros.is_empty() {
            return "–".into();
        }
        let mut t = self.micros.clone();
        t.sort_by(f64::total_cmp);
        let mean = t.iter().sum::<f64>() / t.len() as f64;
        let p99 = t[(t.len() * 99).div_ceil(100).saturating_sub(1)];
        format!("{mean:.1} / {p99:.1}")
    }

    fn hashes(&self) -> String {
        mean_max(self.hashes.iter().map(|&h| h as u64))
    }

    fn reads(&self) -> String {
        mean_max(self.reads.iter().copied())
    }
}

fn mean_max(values: impl Iterator<Item = u64>) -> String {
    let (mut n, mut sum, mut max) = (0u64, 0u64, 0u64);
    for v in values {
        n += 1;
        sum += v;
        max = max.max(v);
    }
    if n == 0 {
        return "–".into();
    }
    format!("{:.1} / {max}", sum as f64 / n as f64)
}

/// Grows the log through `sizes` and measures at each (see the module docs).
async fn measure(dir: &Path, sizes: &[u64], proofs: usize) -> Result<Vec<Row>, String> {
    let key = Arc::new(LogKey::generate(KEY_NAME).map_err(|e| e.to_string())?);
    let mut store = Some(Ledger::open(dir, key.clone()).map_err(err)?);
    let mut rng = Rng(0x5eed_da95_0000_0001);
    let mut rows = Vec::with_capacity(sizes.len());
    for &size in sizes {
        let s = store.as_ref().ok_or("no store")?;

        // Append up to `size`, BATCH entries per commit.
        let from = s.head().next_seq;
        let started = Instant::now();
        let commits = grow_to(s, size, &mut rng).await?;
        let grow = started.elapsed().as_secs_f64();
        if s.durable_size() != size {
            return Err(format!(
                "the log should hold {size} durable entries but holds {}",
                s.durable_size()
            ));
        }
        let disk_per_entry = dir_bytes(dir)? as f64 / size as f64;

        // Reopen after the appends, again with nothing written in between,
        // then sled alone (each handle dropped before the next opens).
        drop(store.take());
        let (open_ms, reopened) = time_open(|| Ledger::open(dir, key.clone())).await?;
        drop(reopened);
        let (reopen_ms, reopened) = time_open(|| Ledger::open(dir, key.clone())).await?;
        drop(reopened);
        let (sled_open_ms, db) = time_open(|| {
            sled::Config::new()
                .path(dir)
                .flush_every_ms(None)
                .open()
                .map_err(LedgerError::from)
        })
        .await?;
        drop(db);
        let (_, reopened) = time_open(|| Ledger::open(dir, key.clone())).await?;
        let s = &*store.insert(reopened);

        // The first proofs after an open read sled pages from the files;
        // time them apart, then measure at other random positions.
        let started = Instant::now();
        for _ in 0..proofs {
            let seq = rng.below(size);
            s.inclusion_proof(seq, size).map_err(err)?.map_err(err)?;
        }
        let first_incl_us = micros(started.elapsed()) / proofs.max(1) as f64;

        // Root at this size, checked against the signed checkpoint.
        let started = Instant::now();
        let mut root = merkle::empty_root();
        for _ in 0..ROOT_CALLS {
            root = s.root_at(size).map_err(err)?.map_err(err)?;
        }
        let root_us = micros(started.elapsed()) / ROOT_CALLS as f64;
        let root_failed = match s.checkpoint_at(size).map_err(err)? {
            Some(cp) if cp.size == size && cp.root == root => 0,
            _ => 1,
        };

        // Inclusion proofs.
        let mut incl = Proofs::default();
        for _ in 0..proofs {
            let seq = rng.below(size);
            let started = Instant::now();
            let proof = s.inclusion_proof(seq, size).map_err(err)?;
            incl.micros.push(micros(started.elapsed()));
            let counter = Counting::new(s);
            let again = merkle::inclusion_proof(seq, size, &counter).map_err(err)?;
            incl.reads.push(counter.reads.get());
            let ok = match (proof, s.entry(seq).map_err(err)?) {
                (Ok(p), Some(e)) => {
                    incl.hashes.push(p.len());
                    let leaf = merkle::leaf_hash(&e.entry.encode());
                    again.as_ref() == Ok(&p)
                        && merkle::verify_inclusion(&leaf, seq, size, &p, &root).is_ok()
                }
                _ => false,
            };
            incl.failed += usize::from(!ok);
        }

        // Consistency proofs from a random older size (1 ≤ old < size).
        let mut cons = Proofs::default();
        for _ in 0..proofs {
            if size < 2 {
                break;
            }
            let old = 1 + rng.below(size - 1);
            let started = Instant::now();
            let proof = s.consistency_proof(old, size).map_err(err)?;
            cons.micros.push(micros(started.elapsed()));
            let counter = Counting::new(s);
            let again = merkle::consistency_proof(old, size, &counter).map_err(err)?;
            cons.reads.push(counter.reads.get());
            let old_root = s.root_at(old).map_err(err)?;
            let ok = match (proof, old_root) {
                (Ok(p), Ok(old_root)) => {
                    cons.hashes.push(p.len());
                    again.as_ref() == Ok(&p)
                        && merkle::verify_consistency(old, size, &old_root, &root, &p).is_ok()
                }
                _ => false,
            };
            cons.failed += usize::from(!ok);
        }

        let appended = size - from;
        rows.push(Row {
            size,
            append_rate: if grow > 0.0 {
                appended as f64 / grow
            } else {
                0.0
            },
            ms_per_commit: if commits > 0 {
                grow * 1000.0 / commits as f64
            } else {
                0.0
            },
            open_ms,
            reopen_ms,
            sled_open_ms,
            first_incl_us,
            disk_per_entry,
            root_us,
            root_failed,
            incl,
            cons,
        });
    }
    Ok(rows)
}

/// Opens the directory, retrying while the previous handle still holds its
/// file lock; returns the milliseconds the successful open took.
async fn time_open<T>(open: impl Fn() -> Result<T, LedgerError>) -> Result<(f64, T), String> {
    let mut tries = 0;
    loop {
        let started = Instant::now();
        match open() {
            Ok(v) => return Ok((started.elapsed().as_secs_f64() * 1000.0, v)),
            Err(e) if e.is_locked() && tries < 100 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Appends [`access_entry`]s until the log holds `size` entries, [`BATCH`]
/// per commit (the last one cut short); returns the number of commits.
pub(super) async fn grow_to(s: &Ledger, size: u64, rng: &mut Rng) -> Result<u64, String> {
    let mut commits = 0u64;
    while s.head().next_seq < size {
        let n = BATCH.min(size - s.head().next_seq);
        s.commit(&SystemClock, |_, b, _| {
            for _ in 0..n {
                b.log(access_entry(rng));
            }
            Ok::<_, LedgerError>(())
        })
        .await
        .map_err(err)?;
        commits += 1;
    }
    Ok(commits)
}

/// An `access.recorded` entry like the service writes (see
/// `Broker::record_access`): a grant id, a holder, an action and a resource.
pub(super) fn access_entry(rng: &mut Rng) -> Draft {
    const HOLDERS: [&str; 6] = ["alice", "bob", "carol", "dmitri", "eve-oncall", "frank"];
    const ACTIONS: [&str; 5] = [
        "kubectl exec -n payments deploy/api -- sh",
        "kubectl logs -n payments deploy/api --since=1h",
        "psql -c 'select * from invoices where id = $1'",
        "ssh root@db-2.prod.acme.internal",
        "aws s3 cp s3://acme-exports/2025-06-01.csv .",
    ];
    const RESOURCES: [&str; 5] = [
        "k8s://prod-eu-1/payments/deploy/api",
        "k8s://prod-eu-1/payments/deploy/api/logs",
        "postgres://db-2.prod.acme.internal/billing",
        "host://db-2.prod.acme.internal",
        "s3://acme-exports/2025-06-01.csv",
    ];
    let pick = |r: &mut Rng, n: usize| r.below(n as u64) as usize;
    let a = pick(rng, ACTIONS.len());
    let acme = Name::parse("acme").unwrap_or_else(|_| unreachable!("a valid name"));
    Draft::new(
        Actor::Principal(Principal::new(PrincipalKind::Tenant, acme)),
        "acme",
        EventKind::AccessRecorded,
    )
    .with(
        detail::GRANT,
        format!("g-{:016x}{:08x}", rng.next(), rng.next() >> 32),
    )
    .with(detail::HOLDER, HOLDERS[pick(rng, HOLDERS.len())])
    .with(detail::ACTION, ACTIONS[a])
    .with(detail::RESOURCE, RESOURCES[a])
}

/// Counts the stored nodes a proof reads.
struct Counting<'s> {
    store: &'s Ledger,
    reads: Cell<u64>,
}

impl<'s> Counting<'s> {
    fn new(store: &'s Ledger) -> Self {
        Counting {
            store,
            reads: Cell::new(0),
        }
    }
}

impl Nodes for Counting<'_> {
    type Error = LedgerError;
    fn node(&self, id: NodeId) -> Result<Hash, LedgerError> {
        self.reads.set(self.reads.get() + 1);
        Nodes::node(self.store, id)
    }
}

/// SplitMix64: repeatable positions without a dependency.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub(super) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// A new, empty directory for one run (under `base`, or the system temp
/// dir); the caller removes it.
pub(super) fn scratch_dir(base: Option<&Path>) -> Result<PathBuf, String> {
    let base = base.map(Path::to_owned).unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&base).map_err(|e| format!("{}: {e}", base.display()))?;
    let dir = base.join(format!(
        "daypass-bench-{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

/// The start of every bench report: title, machine, the command that
/// reproduces it, and a warning for debug builds.
pub(super) fn header(title: &str, mut cmd: String, dir: Option<&Path>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## {title}\n");
    let _ = writeln!(out, "Machine: {}\n", machine());
    if let Some(d) = dir {
        let _ = write!(cmd, " --dir {}", d.display());
    }
    let _ = writeln!(out, "Command: `{cmd}`\n");
    if cfg!(debug_assertions) {
        let _ = writeln!(out, "**Debug build: these figures mean nothing.**\n");
    }
    out
}

/// `1000,100000`: sizes as the command line takes them.
pub(super) fn join(sizes: &[u64]) -> String {
    sizes
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

pub(super) fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Total size of the files under `dir`.
pub(super) fn dir_bytes(dir: &Path) -> Result<u64, String> {
    let mut total = 0;
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        let meta = entry
            .metadata()
            .map_err(|e| format!("{}: {e}", entry.path().display()))?;
        total += if meta.is_dir() {
            dir_bytes(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

/// CPU model, cores and memory, from /proc (Linux); "unknown" elsewhere.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kb| format!("{:.1} GiB", kb as f64 / (1024.0 * 1024.0)))
        .unwrap_or_else(|| "unknown memory".into());
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into());
    format!(
        "{model}, {cores} cores, {memory} RAM, {} {} (load average at start {load})",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_tree_bench_runs_and_every_proof_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let report = tree(&TreeOptions {
            sizes: vec![300, 10],
            proofs: 20,
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
        assert_eq!(rows[0][0], "10");
        assert_eq!(rows[1][0], "300");
        for r in &rows {
            assert_eq!(r.last(), Some(&"0"), "{report}");
        }
        assert!(report.contains("Failed verifications: 0"), "{report}");
        // The bench store is gone; only the temp dir itself is left.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
