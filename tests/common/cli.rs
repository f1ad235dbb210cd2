//! The `daypass` binary as the tests run it: one way to build its command
//! (in a given directory, untouched by the caller's `DAYPASS_CONFIG`,
//! `DAYPASS_SERVER`, `DAYPASS_PROFILE`, `RUST_LOG` and `RUST_BACKTRACE`, and
//! with `HOME` and `XDG_CONFIG_HOME` of its own, so that no test reads or
//! writes the developer's saved profiles), a runner that waits
//! for it (and an async one for tests that serve from the same runtime), and
//! the assertions on its output every CLI test shares. It does not start
//! servers; `tests/cli.rs` owns the `serve --dev` child.

use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
    process::{Command, Output},
};

/// The binary under test; cargo builds it for every test binary of this
/// package, so this holds in each of them.
pub const BIN: &str = env!("CARGO_BIN_EXE_daypass");

/// `daypass` in `dir`, with the environment variables that would change
/// what it does (or how it reports a failure) removed, and `HOME` (and
/// `XDG_CONFIG_HOME`, below it) set to `dir/.test-home`, which nothing
/// creates unless the command logs in. A test that shares profiles between
/// directories sets its own with [`with_home`].
pub fn command(dir: &Path) -> Command {
    let dir = std::path::absolute(dir).expect("an absolute directory");
    let mut cmd = Command::new(BIN);
    cmd.current_dir(&dir)
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LOG")
        .env_remove("DAYPASS_CONFIG")
        .env_remove("DAYPASS_SERVER")
        .env_remove("DAYPASS_PROFILE");
    with_home(&mut cmd, &dir.join(".test-home"));
    cmd
}

/// Points `cmd`'s `HOME` at `home` and `XDG_CONFIG_HOME` at `home/.config`.
pub fn with_home<'c>(cmd: &'c mut Command, home: &Path) -> &'c mut Command {
    cmd.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
}

/// Runs `daypass args` in `dir` and waits for it to exit.
pub fn run<I, S>(dir: &Path, args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    command(dir).args(args).output().expect("run daypass")
}

/// [`run`] on tokio's blocking pool, so the async workers (which serve a
/// `TestServer` in the same runtime) stay free while the process runs.
pub async fn run_async(dir: PathBuf, args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || run(&dir, args))
        .await
        .expect("the daypass task did not panic")
}

/// Bytes of output as text, invalid UTF-8 replaced.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Failed with exit status 1 and exactly one line on stderr, no panic;
/// returns stderr. `what` names the run in a failure.
pub fn one_line_error(out: &Output, what: &str) -> String {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{what}: exit status: {err}");
    assert_eq!(err.lines().count(), 1, "{what}: one line: {err}");
    assert!(!err.contains("panicked"), "{what}: {err}");
    err
}

/// Fails with one line starting with `starts` (e.g. "daypass: ...") and
/// exit status 1, no panic.
pub fn assert_one_line_error(out: &Output, starts: &str) {
    let err = one_line_error(out, starts);
    assert!(
        err.starts_with(starts),
        "{err:?} should start with {starts:?}"
    );
}

/// Succeeded with exit status 0; returns stdout.
pub fn assert_ok(out: &Output, what: &str) -> String {
    assert_eq!(out.status.code(), Some(0), "{what}: {}", text(&out.stderr));
    text(&out.stdout)
}
