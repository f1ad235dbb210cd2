//! What the command line tells about itself, through the real binary:
//! `--help` (connection flags only on commands that connect, examples,
//! the hints a newcomer needs), the connection environment variables, and
//! the generated shell completions and manual pages. That every argument
//! has a description is checked on the clap definition itself
//! (`cli::tests::every_argument_is_described`).

mod common;

use common::cli::{self, assert_ok, text};

/// `daypass args --help`, which must succeed; its text.
fn help(args: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut all = args.to_vec();
    all.push("--help");
    assert_ok(&cli::run(dir.path(), &all), &all.join(" "))
}

/// Does the help text offer the flag `--name` (an option line, not a
/// mention in prose)?
fn offers(help: &str, flag: &str) -> bool {
    help.lines().any(|l| {
        let l = l.trim_start();
        // `-o, --out <OUT>`: past the short form.
        let l = match l.as_bytes() {
            [b'-', c, b',', b' ', ..] if c.is_ascii_alphabetic() => &l[4..],
            _ => l,
        };
        l.strip_prefix(flag)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '[', '=']))
    })
}

#[test]
fn connection_flags_are_offered_only_where_they_are_used() {
    for offline in [
        vec!["serve"],
        vec!["certs"],
        vec!["certs", "init"],
        vec!["certs", "issue"],
        vec!["bench", "tree"],
        vec!["bench", "backup"],
        vec!["audit", "verify"],
        vec!["completions"],
        vec!["man"],
        vec!["restore"],
        vec!["logout"],
        vec![],
    ] {
        let h = help(&offline);
        for flag in ["--server", "--cert", "--key", "--ca", "--as"] {
            assert!(
                !offers(&h, flag),
                "`daypass {} --help` offers {flag}:\n{h}",
                offline.join(" ")
            );
        }
    }
    for online in [
        vec!["grant", "list"],
        vec!["grant", "request"],
        vec!["grant"],
        vec!["whoami"],
        vec!["validate"],
        vec!["audit", "export"],
        vec!["audit", "replay"],
        vec!["audit", "check"],
        vec!["staff", "add"],
        vec!["tenant", "update"],
        vec!["alerts", "list"],
        vec!["screen", "pair"],
        vec!["webhooks", "dead"],
        vec!["access", "record"],
        vec!["backup"],
        vec!["audit", "witness"],
        vec!["status"],
    ] {
        let h = help(&online);
        for flag in ["--server", "--cert", "--key", "--ca", "--as", "--profile"] {
            assert!(
                offers(&h, flag),
                "`daypass {} --help` lacks {flag}:\n{h}",
                online.join(" ")
            );
        }
        assert!(h.contains("[env: DAYPASS_SERVER"), "{h}");
        assert!(h.contains("[env: DAYPASS_PROFILE"), "{h}");
    }
}

#[test]
fn login_help_says_where_profiles_live_and_how_they_are_used() {
    let h = help(&["login"]);
    for want in [
        "profiles.toml",
        "0600",
        "never a copy",
        "--dev",
        "--list",
        "WhoAmI",
        "daypass login --dev ./daypass-dev",
        "the default profile",
    ] {
        assert!(h.contains(want), "{want:?} in `daypass login --help`:\n{h}");
    }
    assert!(help(&[]).contains("login"));
}

#[test]
fn help_gives_examples_and_the_hints_a_newcomer_needs() {
    for cmd in [
        vec!["grant", "request"],
        vec!["grant", "approve"],
        vec!["validate"],
        vec!["audit", "export"],
        vec!["audit", "verify"],
        vec!["serve"],
        vec!["backup"],
        vec!["restore"],
        vec!["tenant", "processing", "set"],
        vec!["tenant", "processing", "document"],
    ] {
        let h = help(&cmd);
        assert!(
            h.contains("Example") && h.contains(&format!("daypass {}", cmd.join(" "))),
            "`daypass {} --help` has no example:\n{h}",
            cmd.join(" ")
        );
    }
    let validate = help(&["validate"]);
    assert!(offers(&validate, "--staff"), "{validate}");
    assert!(validate.contains("--staff NAME"), "{validate}");
    let as_help = help(&["grant", "list"]);
    for name in [
        "alice", "bob", "rory", "ada", "eve", "pat", "acme", "globex",
    ] {
        assert!(as_help.contains(name), "--as help lacks {name}:\n{as_help}");
    }
    assert!(as_help.contains("any of them works"), "{as_help}");
    assert!(help(&["serve"]).contains("--dev"));
    let top = help(&[]);
    assert!(top.contains("daypass serve --dev"), "{top}");
    assert!(top.contains("completions") && top.contains("man"), "{top}");
    // No empty defaults anywhere we look.
    for cmd in [
        vec!["grant", "request"],
        vec!["grant", "list"],
        vec!["access", "record"],
        vec!["backup"],
        vec!["audit", "witness"],
    ] {
        let h = help(&cmd);
        assert!(!h.contains("[default: ]"), "{h}");
    }
}

#[test]
fn require_ticket_has_one_shape_on_add_and_update() {
    let line = |cmd: &str| {
        let h = help(&["tenant", cmd]);
        h.lines()
            .find(|l| l.trim_start().starts_with("--require-ticket"))
            .map(|l| l.split_whitespace().next().unwrap_or_default().to_owned())
            .unwrap_or_else(|| panic!("no --require-ticket in tenant {cmd}:\n{h}"))
    };
    assert_eq!(line("add"), "--require-ticket[=<BOOL>]");
    assert_eq!(line("update"), line("add"));
}

#[test]
fn a_bare_serve_names_both_ways_to_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = cli::run(dir.path(), ["serve"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--config") && err.contains("--dev"), "{err}");
}

#[test]
fn connection_environment_variables_still_apply() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::create_dir_all(d.join("daypass-dev/certs")).expect("dev dir");
    // DAYPASS_AS picks the dev identity, as --as would.
    let out = cli::command(d)
        .env("DAYPASS_AS", "nobody")
        .args(["whoami"])
        .output()
        .expect("run");
    let err = cli::one_line_error(&out, "DAYPASS_AS");
    assert!(err.contains("no dev identity \"nobody\""), "{err}");
    // DAYPASS_CERT without DAYPASS_KEY is the same mistake as the flags.
    let out = cli::command(d)
        .env("DAYPASS_CERT", "me.pem")
        .env_remove("DAYPASS_KEY")
        .args(["grant", "list"])
        .output()
        .expect("run");
    let err = cli::one_line_error(&out, "DAYPASS_CERT");
    assert!(err.contains("give both --cert and --key"), "{err}");
}

#[test]
fn bash_completions_know_the_commands() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = assert_ok(
        &cli::run(dir.path(), ["completions", "bash"]),
        "completions bash",
    );
    assert!(script.contains("complete -F"), "not a bash script");
    for name in [
        "serve",
        "certs",
        "grant",
        "validate",
        "audit",
        "whoami",
        "request",
        "approve",
        "replay",
        "--require-ticket",
        "--server",
    ] {
        assert!(script.contains(name), "no {name} in the bash completions");
    }
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let s = assert_ok(&cli::run(dir.path(), ["completions", shell]), shell);
        assert!(s.contains("grant"), "{shell}: {s}");
    }
    let out = cli::run(dir.path(), ["completions", "tcsh"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

#[test]
fn man_writes_one_page_per_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = assert_ok(&cli::run(dir.path(), ["man", "pages"]), "man");
    let pages = dir.path().join("pages");
    for page in [
        "daypass.1",
        "daypass-grant.1",
        "daypass-grant-request.1",
        "daypass-audit-verify.1",
        "daypass-serve.1",
    ] {
        let path = pages.join(page);
        assert!(out.contains(&format!("wrote pages/{page}\n")), "{out}");
        let roff = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(
            roff.starts_with(".TH ") || roff.contains("\n.TH "),
            "{page}: no .TH header"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
            assert_eq!(mode & 0o777, 0o644, "{page}");
        }
    }
    let request = std::fs::read_to_string(pages.join("daypass-grant-request.1")).expect("page");
    assert!(
        request.contains(&format!(
            ".TH daypass-grant-request 1  \"daypass {}\"",
            env!("CARGO_PKG_VERSION")
        )),
        "{request}"
    );
    assert!(request.contains("reason"), "{request}");
    assert!(request.contains("server"), "the inherited connection flags");
    let verify = std::fs::read_to_string(pages.join("daypass-audit-verify.1")).expect("page");
    assert!(!verify.contains("DAYPASS_SERVER"), "{verify}");
    // A path that cannot be a directory: one clear line, exit 1.
    std::fs::write(dir.path().join("file"), "x").expect("write");
    let out = cli::run(dir.path(), ["man", "file"]);
    cli::assert_one_line_error(&out, "daypass: cannot create file");
}
