//! Benchmarks run as a user runs them: `daypass bench scale`, with the real
//! `daypass` binary as the server process (the benchmark's own unit test
//! cannot start one), so the start-up and memory measurements never rot;
//! `daypass bench backup` at a tiny size, so its restore check never rots.

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

/// `daypass bench backup` as a user runs it, at a tiny size: the copy
/// taken under load restores to the entries grown plus those appended
/// before it started, and both tables name their columns.
#[test]
fn the_backup_bench_restores_the_store_it_backed_up() {
    let dir = tempfile::tempdir().expect("temp dir");
    let run = Command::new(env!("CARGO_BIN_EXE_daypass"))
        .args([
            "bench",
            "backup",
            "--sizes",
            "200",
            "--writers",
            "2",
            "--dir",
        ])
        .arg(dir.path())
        .output()
        .expect("daypass runs");
    let report = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{}\n{report}\n{}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    for column in [
        "file B/entry",
        "backup MB/s",
        "snapshot ms",
        "restore entries/s",
        "p99 before / during (×)",
        "max before / during (×)",
    ] {
        assert!(report.contains(column), "no column {column}:\n{report}");
    }
    let restored: Vec<u64> = report
        .lines()
        .find(|l| l.starts_with("| 200 "))
        .unwrap_or_else(|| panic!("no row for 200 entries:\n{report}"))
        .trim_matches('|')
        .split('|')
        .map(str::trim)
        .nth(7)
        .expect("a restored column")
        .split(['=', '+'])
        .map(|v| v.trim().parse().expect("a count"))
        .collect();
    assert_eq!(restored.len(), 3, "{report}");
    assert_eq!(restored[1], 200, "{report}");
    assert_eq!(restored[0], restored[1] + restored[2], "{report}");
    // Taken after seconds of writes, the copy holds some of them.
    assert!(restored[2] > 0, "no appended entry in the copy:\n{report}");
    assert!(report.contains("Restored and verified: 1 of 1"), "{report}");
    // The bench store is gone; only the temp dir itself is left.
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
}
