//! The data directory holds every tenant's reasons: a new one is created
//! readable by its owner only, and the server refuses to start on one its
//! group or others can read, unless told to (`store.allow_shared_data_dir`).

#![cfg(unix)]

mod common;

use std::os::unix::fs::PermissionsExt as _;

use common::*;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

fn shared_dir(path: &std::path::Path) {
    std::fs::create_dir_all(path).expect("mkdir");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[tokio::test]
async fn a_data_directory_others_can_read_is_refused_and_a_new_one_is_private() {
    // A new data directory is the owner's alone.
    let mut fresh = TestServer::start().await;
    fresh.admin().await;
    assert_eq!(mode(&fresh.config.data_dir), 0o700);
    fresh.stop().await;

    // One its group and others can read: refused, with what to do.
    let mut shared = TestServer::start_with(|c| shared_dir(&c.data_dir)).await;
    let err = shared
        .stop_reporting()
        .await
        .expect_err("a world-readable data directory is refused");
    let msg = err.to_string();
    assert!(msg.contains("mode 0755"), "{msg}");
    assert!(msg.contains("chmod 700"), "{msg}");
    assert!(
        !shared.config.data_dir.join("db").exists(),
        "nothing was opened in the refused directory"
    );

    // Unless the operator says so.
    let mut allowed = TestServer::start_with(|c| {
        shared_dir(&c.data_dir);
        c.store.allow_shared_data_dir = true;
    })
    .await;
    allowed.admin().await;
    allowed.stop().await;
}
