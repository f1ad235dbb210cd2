//! Generates the gRPC code from `proto/` with a vendored `protoc`, so a fresh
//! machine needs nothing beyond the Rust toolchain.

use std::{env, error::Error, path::PathBuf};

fn main() -> Result<(), Box<dyn Error>> {
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("daypass_descriptor.bin"))
        .btree_map(".daypass.v1.LogEntry.details")
        .compile_with_config(config, &["proto/daypass/v1/daypass.proto"], &["proto"])?;
    Ok(())
}
