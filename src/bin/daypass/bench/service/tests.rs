use super::*;

/// Smoke mode: the whole benchmark runs for a moment, so it never rots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_bench_runs_every_workload() {
    let dir = tempfile::tempdir().unwrap();
    // A lost wake-up in group commit once hung this run: fail instead.
    let report = tokio::time::timeout(
        Duration::from_secs(120),
        service(&ServiceOptions {
            monitor: true,
            seconds: 0.2,
            concurrency: 4,
            connections: 2,
            dir: Some(dir.path().to_owned()),
        }),
    )
    .await
    .expect("the bench finishes")
    .unwrap();
    for row in [
        "| empty RPC (health check) |",
        "| ValidateGrant |",
        "| RecordAccess |",
        "| RequestGrant (auto, 2 entries) |",
    ] {
        let line = report
            .lines()
            .find(|l| l.starts_with(row))
            .unwrap_or_else(|| panic!("no {row} row:\n{report}"));
        let calls: u64 = line.split('|').nth(2).unwrap().trim().parse().unwrap();
        assert!(calls > 0, "{line}");
    }
    assert!(report.contains("offline verify of that export"), "{report}");
    assert!(report.contains("Targets (issue 6)"), "{report}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
