//! Whether the Python-side tests can run: finds `python3`, and when it
//! cannot be run says so loudly (a SKIP banner past the test harness's
//! capture) or, under CI (`CI` set), fails. It does not set up virtualenvs;
//! `tests/python.rs` owns its own.

use std::{io::Write, process::Command};

/// The version `python3 --version` reports, or `None` after a loud SKIP
/// banner when python3 cannot be run and `CI` is not set. `test` names the
/// test file, `what` what goes untested, `needs` what to install.
pub fn python3_version(test: &str, what: &str, needs: &str) -> Option<String> {
    match Command::new("python3").arg("--version").output() {
        Ok(out) if out.status.success() => {
            Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        }
        Ok(out) => panic!(
            "python3 --version failed: exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but python3 cannot be run ({e}): CI must run {test}"
            );
            // Straight to the stderr stream, past the test harness's capture,
            // so the skip shows in a plain `cargo test` too.
            let banner = format!(
                "\n{bar}\n!! SKIPPED {test}: python3 cannot be run ({e}).\n\
                 !! {what} was NOT tested. Install {needs}\n\
                 !! to run it; under CI (CI set) this is a failure, not a skip.\n{bar}\n",
                bar = "!".repeat(76)
            );
            let _ = std::io::stderr().lock().write_all(banner.as_bytes());
            None
        }
    }
}
