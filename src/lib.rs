//! daypass: time-limited (at most 24 h), fully logged support access to
//! customer (tenant) environments, with a hash-chained audit log.
//!
//! The binary (`src/bin/daypass/`) wires the CLI and runs `daypass bench`;
//! everything else lives here.

#![forbid(unsafe_code)]

pub mod audit; // log entry format, chain verification, export and replay
pub mod broker; // the service logic: staff, tenants, grants, decisions
pub mod cli; // command-line front end (clap) and its output
pub mod client; // mutual-TLS gRPC client connection
pub mod clock; // Clock trait: system clock, manual clock for tests
pub mod config; // Config: plain data, from TOML
pub mod dev; // `serve --dev`: throw-away PKI, enrolment, walkthrough
pub mod expiry; // ExpirySweeper: writes `grant.expired` at each deadline
pub mod gate; // grant tokens, grant certificates, published keys, revocation lists
pub mod grant; // grant records and their lifecycle states
pub mod identity; // peer certificate -> Principal
pub mod limits; // per-caller rate limits (token buckets)
pub mod pki; // rcgen CA, server and client certificates
pub mod policy; // role x action decisions, in one place
pub mod rpc; // tonic service impls and the one Status mapping
pub mod server; // listener, TLS, services, shutdown
pub mod store; // sled trees, transactions, durable log appends

/// Generated protobuf and gRPC code for `daypass.v1`.
pub mod pb {
    #![allow(clippy::all, missing_docs, unreachable_pub)]
    tonic::include_proto!("daypass.v1");

    /// Encoded descriptor set for gRPC server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("daypass_descriptor");
}
