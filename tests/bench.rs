//! The scale benchmark with the real `daypass` binary as the server process
//! (the library's own smoke test cannot start one), so the start-up and
//! memory measurements never rot.

use std::path::Path;

use daypass::bench::scale::{ScaleOptions, scale_with_server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scale_bench_starts_the_real_server_and_measures_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let report = scale_with_server(
        &ScaleOptions {
            sizes: vec![300],
            grants: 40,
            dir: Some(dir.path().to_owned()),
        },
        Some(Path::new(env!("CARGO_BIN_EXE_daypass"))),
    )
    .await
    .expect("bench runs");
    let row: Vec<&str> = report
        .lines()
        .find(|l| l.starts_with("| 300 "))
        .unwrap_or_else(|| panic!("no row for 300 entries:\n{report}"))
        .trim_matches('|')
        .split('|')
        .map(str::trim)
        .collect();
    // Start-up ("first / second" in ms) and memory were measured.
    let startup: Vec<f64> = row[3]
        .split('/')
        .map(|v| v.trim().parse().expect("a start-up time in ms"))
        .collect();
    assert_eq!(startup.len(), 2, "{report}");
    assert!(startup.iter().all(|&ms| ms > 0.0), "{report}");
    assert_ne!(row[4], "not measured", "{report}");
    assert!(row[11].starts_with("verified"), "{report}");
}
