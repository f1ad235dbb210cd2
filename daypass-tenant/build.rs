//! Generates the broker's gRPC client stubs (client side only) from the
//! workspace's `proto/`, with a vendored `protoc`, so a fresh machine needs
//! nothing beyond the Rust toolchain.

use std::error::Error;

fn main() -> Result<(), Box<dyn Error>> {
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .build_server(false)
        .btree_map(".daypass.v1.LogEntry.details")
        .compile_with_config(
            config,
            &["../proto/daypass/v1/daypass.proto"],
            &["../proto"],
        )?;
    Ok(())
}
