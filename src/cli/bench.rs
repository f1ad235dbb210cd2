//! The `daypass bench` command line: plain data, parsed with the rest of
//! the CLI. The benchmarks are not in the library: the daypass binary runs
//! them (src/bin/daypass/bench/), and `daypass::cli::run` refuses this
//! command.

use std::path::PathBuf;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// The log's Merkle tree in a real store: append rate, root and proof
    /// cost at growing log sizes.
    Tree {
        /// Log sizes to measure at, comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = [1_000u64, 100_000, 1_000_000])]
        sizes: Vec<u64>,
        /// Proofs timed at each size.
        #[arg(long, default_value_t = 1000)]
        proofs: usize,
        /// Where to put the temporary store (default: the system temp dir).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// An online backup of a real store at growing log sizes: its rate, the
    /// commit pause it causes under steady writes, and a verified restore.
    Backup {
        /// Log sizes to measure at, comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = [10_000u64, 100_000])]
        sizes: Vec<u64>,
        /// Tasks appending one entry at a time while the pause is measured.
        #[arg(long, default_value_t = 4)]
        writers: usize,
        /// Where to put the temporary store (default: the system temp dir).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// The real server over real mutual TLS under concurrent load, with its
    /// baselines (empty RPC, raw sled, SHA-256, Ed25519).
    Service {
        /// Measured seconds per workload.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Calls in flight.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Mutual-TLS connections the calls share.
        #[arg(long, default_value_t = 4)]
        connections: usize,
        /// Where to put the temporary server files (default: the system temp dir).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Run the server without the monitor (to measure what it costs).
        #[arg(long)]
        no_monitor: bool,
    },
    /// The server process at growing log sizes with many active grants:
    /// start-up time, resident memory, disk per entry, append and verify rates.
    Scale {
        /// Log sizes to measure at, comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = [10_000u64, 100_000, 1_000_000, 10_000_000])]
        sizes: Vec<u64>,
        /// Simultaneously active grants (created first, expiry task running).
        #[arg(long, default_value_t = 100_000)]
        grants: u64,
        /// Where to put the temporary data (default: the system temp dir).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// A tenant's offline decision: grant token and grant certificate
    /// verification beside raw Ed25519 verification.
    Verify {
        /// Measured seconds per workload.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Grants on the tenant's revocation list.
        #[arg(long, default_value_t = 1000)]
        revoked: usize,
    },
    /// ValidateGrant's answer time for another tenant's real grant id
    /// against an unknown id, one call at a time, interleaved: the two must
    /// not be told apart (tenant isolation).
    Timing {
        /// Interleaved pairs of calls.
        #[arg(long, default_value_t = 2000)]
        pairs: usize,
        /// Where to put the temporary server files (default: the system temp dir).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// A tile export (C2SP tlog-tiles) of a synthetic log and its offline
    /// verification, beside raw SHA-256 over the same bytes.
    Tiles {
        /// Entries in the synthetic log.
        #[arg(long, default_value_t = 1_000_000)]
        entries: u64,
        /// Interleaved rounds of SHA-256 and verification.
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        /// Where to put the temporary tiles (default: the system temp dir).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}
