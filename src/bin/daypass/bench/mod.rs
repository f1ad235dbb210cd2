//! `daypass bench`: measurements reported in docs/performance.md, each
//! figure beside the limit that bounds it, measured in the same run.
//!
//! * [`tree`]: the log's Merkle tree in a real store, at growing sizes;
//! * [`backup`]: an online backup of a real store (rate, the write pause it
//!   causes) and a verified restore of it, at growing sizes;
//! * [`service`]: the real server over real mutual TLS under concurrent
//!   load, with its baselines (an empty RPC, raw sled, SHA-256, Ed25519);
//! * [`scale`]: the server process at 10^4 … 10^7 log entries and 10^5
//!   active grants: start-up, memory, disk, append and verify rates;
//! * [`timing`]: ValidateGrant for another tenant's grant against an
//!   unknown id, interleaved (they must look the same);
//! * [`tiles`]: a tile export of a synthetic log and its offline
//!   verification beside SHA-256 over the same bytes;
//! * [`verify`]: a tenant's offline decision (grant token, grant
//!   certificate) beside raw Ed25519 verification.
//!
//! This lives in the binary, not the library: it drives the library from
//! outside, as a user would, and [`scale`] starts this very executable as
//! the server. The flags are `daypass::cli::BenchCommand`.

// Benchmarks time real work: they read the wall clock on purpose (clippy.toml).
#![allow(clippy::disallowed_methods)]

mod backup;
mod scale;
mod service;
mod tiles;
mod timing;
mod tree;
mod verify;

use daypass::cli::{BenchCommand, CliError};

use self::{
    backup::{BackupOptions, backup},
    scale::{ScaleOptions, scale},
    service::{ServiceOptions, service},
    tiles::{TilesOptions, tiles},
    timing::{TimingOptions, timing},
    tree::{TreeOptions, tree},
    verify::{VerifyOptions, verify},
};

/// `daypass bench …`: runs one benchmark and prints its report.
pub async fn run(command: BenchCommand) -> Result<(), CliError> {
    let report = match command {
        BenchCommand::Tree { sizes, proofs, dir } => {
            tree(&TreeOptions { sizes, proofs, dir }).await
        }
        BenchCommand::Backup {
            sizes,
            writers,
            dir,
        } => {
            backup(&BackupOptions {
                sizes,
                writers,
                dir,
            })
            .await
        }
        BenchCommand::Service {
            seconds,
            concurrency,
            connections,
            dir,
            no_monitor,
        } => {
            service(&ServiceOptions {
                seconds,
                concurrency,
                connections,
                dir,
                monitor: !no_monitor,
            })
            .await
        }
        BenchCommand::Scale { sizes, grants, dir } => {
            scale(&ScaleOptions { sizes, grants, dir }).await
        }
        BenchCommand::Verify { seconds, revoked } => {
            verify(&VerifyOptions { seconds, revoked }).await
        }
        BenchCommand::Timing { pairs, dir } => timing(&TimingOptions { pairs, dir }).await,
        BenchCommand::Tiles {
            entries,
            rounds,
            dir,
        } => {
            tiles(&TilesOptions {
                entries,
                rounds,
                dir,
            })
            .await
        }
    };
    print!(
        "{}",
        report.map_err(|e| CliError(format!("bench failed: {e}")))?
    );
    Ok(())
}
