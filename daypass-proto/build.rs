//! Generates the `daypass.v1` messages, the gRPC clients and servers (each
//! compiled only under its feature, `client` or `server`) and the descriptor
//! set for reflection from the workspace's `proto/`, with a vendored
//! `protoc`, so a fresh machine needs nothing beyond the Rust toolchain.

use std::{env, error::Error, path::PathBuf};

fn main() -> Result<(), Box<dyn Error>> {
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .client_mod_attribute(".", r#"#[cfg(feature = "client")]"#)
        .server_mod_attribute(".", r#"#[cfg(feature = "server")]"#)
        .file_descriptor_set_path(out_dir.join("daypass_descriptor.bin"))
        .btree_map(".daypass.v1.LogEntry.details")
        .compile_with_config(
            config,
            &[
                "../proto/daypass/v1/daypass.proto",
                "../proto/daypass/v1/alerts.proto",
                "../proto/daypass/v1/notify.proto",
                "../proto/daypass/v1/screens.proto",
                "../proto/daypass/v1/incidents.proto",
                "../proto/daypass/v1/processing.proto",
            ],
            &["../proto"],
        )?;
    Ok(())
}
