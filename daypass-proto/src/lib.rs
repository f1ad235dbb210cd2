//! The generated protobuf messages and gRPC stubs of the `daypass.v1` API
//! (`proto/daypass/v1/daypass.proto`), compiled once for the whole workspace.
//!
//! It owns no hand-written types: conversions to domain types live with
//! their users (`daypass::rpc`, `daypass_tenant::feed`). Feature `client`
//! adds the `*_client` modules; feature `server` adds the `*_server` modules
//! and [`FILE_DESCRIPTOR_SET`] for gRPC reflection. Both crates re-export
//! this one as `pb`.

// Generated code: it follows prost's and tonic's conventions, not ours.
#![allow(clippy::all, missing_docs, unreachable_pub, rustdoc::all)]

tonic::include_proto!("daypass.v1");

/// Encoded descriptor set for gRPC server reflection.
#[cfg(feature = "server")]
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("daypass_descriptor");
