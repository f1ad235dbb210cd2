//! The scale benchmark run as a user runs it, `daypass bench scale`, with
//! the real `daypass` binary as the server process (the benchmark's own
//! unit test cannot start one), so the start-up and memory measurements
//! never rot.

use std::process::Command;

#[test]
fn the_scale_bench_starts_the_real_server_and_measures_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bin = env!("CARGO_BIN_EXE_daypass");
    let run = Command::new(bin)
        .args([
            "bench", "scale", "--sizes", "300", "--grants", "40", "--dir",
        ])
        .arg(dir.path())
        // Without DAYPASS_BIN the bench starts its own executable as the
        // server: the path a user's `daypass bench scale` takes.
        .env_remove("DAYPASS_BIN")
        .output()
        .expect("daypass runs");
    let report = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{}\n{report}\n{}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
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
