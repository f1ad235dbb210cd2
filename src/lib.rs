//! daypass: time-limited (at most 24 h), fully logged support access to
//! customer (tenant) environments, with a hash-chained audit log.
//!
//! The binary (`src/bin/daypass/`) wires the CLI and runs `daypass bench`;
//! everything else lives here.
//! Layers: [`domain`] ← [`service`] ← [`rpc`]; [`service`] → [`ledger`] →
//! a storage driver (docs/architecture.md).

#![forbid(unsafe_code)]

pub mod audit; // the log as a format: entries, chain, Merkle tree, notes, export, replay, witness, check
pub mod cli; // command-line front end (clap) and its output
pub mod client; // mutual-TLS gRPC client connection
pub mod clock; // Clock trait: system clock, manual clock for tests
pub mod config; // Config: plain data, from TOML
pub mod dev; // `serve --dev`: throw-away PKI, enrolment, walkthrough
pub mod domain; // ids, free text, staff, tenants, grants (state machine), event kinds: no IO
#[cfg(any(test, feature = "fault-injection"))]
pub mod faults; // per-instance fault switches for tests (never in a release build)
pub mod gate; // grant tokens, grant certificates, published keys, revocation lists
pub mod identity; // peer certificate -> Principal
pub mod ledger; // the commit contract, group commit, checkpoints; storage drivers (sled)
pub mod limits; // per-caller rate limits (token buckets)
pub mod metrics; // Prometheus metrics, the per-call layer and request log, /healthz and /readyz
pub mod monitor; // detection rules over the committed log; alerts with a cursor kept in the store
pub mod notify; // webhooks: follows the durable log (the outbox) and delivers, signed
pub mod pki; // rcgen CA, server and client certificates
pub mod policy; // role x action decisions, in one place
pub mod rpc; // gRPC face: typed commands from requests, the one Status mapping
pub mod screen; // the office warning screen: HTTPS page and live view for a paired kiosk
pub mod server; // listener, TLS, services, shutdown
pub mod service; // the use cases: admission, staff, tenants, grants, access, expiry, log reads
pub mod siem; // SIEM shapes of the log (CSV, OCSF, RFC 5424) and the syslog-over-TLS forwarder
pub mod tile_api; // the log as C2SP tlog-tiles over HTTPS: checkpoint, hash tiles, entry bundles
pub mod tls; // rustls config; accept loop with a handshake timeout and a cap on pending handshakes

/// Generated protobuf and gRPC code for `daypass.v1` (clients, servers and
/// the reflection descriptor set), from the `daypass-proto` crate.
pub use daypass_proto as pb;
