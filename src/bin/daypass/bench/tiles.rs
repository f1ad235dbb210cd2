//! `daypass bench tiles`: a tile export of a synthetic log (entries of the
//! kinds and sizes the service writes most: `validation.denied`,
//! `audit.read`, `call.refused`, chained and replayable), written with
//! `TileWriter` and verified offline with `verify_dir` (signature, every
//! tile and bundle, the root, the chain and the log's semantics) and with
//! `verify_tree_dir` (the tree alone), each beside raw SHA-256 (ring) over
//! the same bundle bytes, interleaved in rounds so machine noise hits both
//! alike. The bundles are read from the page cache in every round.

use std::{collections::BTreeMap, fmt::Write as _, path::PathBuf, time::Instant};

use ring::digest::{SHA256, digest};

use super::tree::{Rng, err, header, scratch_dir};
use daypass::{
    audit::{
        Entry,
        entry::GENESIS_PREV_HASH,
        merkle::MemoryTree,
        note::{Checkpoint, LogKey},
        tiles::{self, TileWriter},
    },
    clock::Timestamp,
};

#[derive(Debug, Clone)]
pub struct TilesOptions {
    /// Entries in the synthetic log.
    pub entries: u64,
    /// Rounds of (SHA-256, full verify, tree verify).
    pub rounds: u32,
    pub dir: Option<PathBuf>,
}

/// Runs the benchmark and returns its report (Markdown).
pub async fn tiles(opts: &TilesOptions) -> Result<String, String> {
    let opts = opts.clone();
    tokio::task::spawn_blocking(move || run(&opts))
        .await
        .map_err(err)?
}

fn run(opts: &TilesOptions) -> Result<String, String> {
    let base = scratch_dir(opts.dir.as_deref())?;
    let result = measure(opts, &base.join("tiles"));
    let _ = std::fs::remove_dir_all(&base);
    result
}

fn measure(opts: &TilesOptions, dir: &std::path::Path) -> Result<String, String> {
    let key = LogKey::from_seed("bench.daypass/log", [7; 32]).map_err(err)?;
    let mut rng = Rng(17);
    let mut writer = TileWriter::create(dir).map_err(err)?;
    let mut tree = MemoryTree::new();
    let mut prev = GENESIS_PREV_HASH;
    let mut entry_bytes = 0u64;
    let started = Instant::now();
    let mut hashing = 0f64;
    for seq in 0..opts.entries {
        let e = synthetic(seq, prev, &mut rng);
        let bytes = e.encode();
        prev = e.hash();
        entry_bytes += bytes.len() as u64;
        writer.push(&bytes).map_err(err)?;
        let t = Instant::now();
        tree.push_entry(&bytes);
        hashing += t.elapsed().as_secs_f64();
    }
    let cp = Checkpoint {
        origin: key.name().into(),
        size: opts.entries,
        root: tree.root(),
    };
    drop(tree);
    writer
        .finish(&key.sign(&cp.to_text()).map_err(err)?)
        .map_err(err)?;
    let export_secs = started.elapsed().as_secs_f64() - hashing;

    // The same bytes, for the baseline: every bundle file.
    let bundles: Vec<PathBuf> = (0..opts.entries.div_ceil(256))
        .map(|n| {
            let w = (opts.entries - n * 256).min(256) as usize;
            dir.join(tiles::bundle_path(n, w))
        })
        .collect();
    let verifiers = [key.verifier()];
    let (mut sha_t, mut full_t, mut tree_t, mut bundle_bytes) = (0f64, 0f64, 0f64, 0u64);
    for _ in 0..opts.rounds {
        let t = Instant::now();
        bundle_bytes = 0;
        for p in &bundles {
            let b = std::fs::read(p).map_err(err)?;
            bundle_bytes += b.len() as u64;
            std::hint::black_box(digest(&SHA256, &b));
        }
        sha_t += t.elapsed().as_secs_f64();
        let t = Instant::now();
        tiles::verify_dir(dir, &verifiers).map_err(err)?;
        full_t += t.elapsed().as_secs_f64();
        let t = Instant::now();
        tiles::verify_tree_dir(dir, &verifiers).map_err(err)?;
        tree_t += t.elapsed().as_secs_f64();
    }
    let rounds = f64::from(opts.rounds);
    let mib = |secs: f64| bundle_bytes as f64 * rounds / secs / (1024.0 * 1024.0);
    let per_s = |secs: f64| opts.entries as f64 * rounds / secs;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());

    let mut out = header(
        "Tile export and offline verification",
        format!(
            "daypass bench tiles --entries {} --rounds {}",
            opts.entries, opts.rounds
        ),
        None,
    );
    let _ = writeln!(
        out,
        "{} entries, {:.0} bytes each on average; {} bundle bytes ({:.1} MiB); {threads} cores.\n",
        opts.entries,
        entry_bytes as f64 / opts.entries.max(1) as f64,
        bundle_bytes,
        bundle_bytes as f64 / (1024.0 * 1024.0)
    );
    let _ = writeln!(out, "| what | entries/s | MiB/s of bundles | vs SHA-256 |");
    let _ = writeln!(out, "|---|---:|---:|---:|");
    let sha = mib(sha_t);
    let mut row = |what: &str, secs: f64| {
        let _ = writeln!(
            out,
            "| {what} | {:.0} | {:.0} | {:.0} % |",
            per_s(secs),
            mib(secs),
            100.0 * mib(secs) / sha
        );
    };
    row(
        "raw SHA-256 (ring) over the bundle files, one thread",
        sha_t,
    );
    row(
        "`verify_dir`: tiles, root, signature, chain and semantics (2 threads)",
        full_t,
    );
    row(
        "`verify_tree_dir`: tiles, root and signature only (1 thread)",
        tree_t,
    );
    let _ = writeln!(
        out,
        "| `TileWriter` export from entries in memory (1 thread) | {:.0} | | |",
        opts.entries as f64 / export_secs.max(1e-9)
    );
    let _ = writeln!(
        out,
        "\nFull offline verification of the tile export runs at {:.0} % of SHA-256 over the same \
         bytes (target: at least 50 %); the tree alone at {:.0} %.",
        100.0 * mib(full_t) / sha,
        100.0 * mib(tree_t) / sha
    );
    Ok(out)
}

/// A chained entry like the service writes: a refused ValidateGrant of an
/// unknown grant, an `audit.read`, or a `call.refused`.
fn synthetic(seq: u64, prev_hash: [u8; 32], rng: &mut Rng) -> Entry {
    let mut details = BTreeMap::new();
    let (actor, tenant, kind) = match rng.below(4) {
        0 => {
            details.insert("call".into(), "GetGrant".into());
            details.insert("code".into(), "not-found".into());
            details.insert(
                "message".into(),
                format!("no grant g-{:024x}: check the id", rng.next()),
            );
            ("staff/alice", "", "call.refused")
        }
        1 => {
            details.insert("from_seq".into(), seq.saturating_sub(1000).to_string());
            details.insert("follow".into(), "false".into());
            details.insert("purpose".into(), "export".into());
            ("auditor/eve", "", "audit.read")
        }
        _ => {
            details.insert(
                "asked".into(),
                format!("g-{:016x}{:08x}", rng.next(), rng.next() >> 32),
            );
            details.insert("deny_reason".into(), "unknown".into());
            ("tenant/acme", "acme", "validation.denied")
        }
    };
    Entry {
        seq,
        timestamp: Timestamp(1_795_580_437_066 + seq as i64),
        actor: actor.into(),
        tenant: tenant.into(),
        kind: kind.into(),
        details,
        sealed: None,
        prev_hash,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Smoke mode: the benchmark runs and reports every row.
    #[tokio::test]
    async fn the_tiles_bench_runs() {
        let report = tiles(&TilesOptions {
            entries: 600,
            rounds: 1,
            dir: None,
        })
        .await
        .expect("bench");
        assert!(report.contains("`verify_dir`"), "{report}");
        assert!(report.contains("% of SHA-256"), "{report}");
    }
}
