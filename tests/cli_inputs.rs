//! Hostile input to the `daypass` binary: malformed export files for
//! `audit verify` and `audit replay`, corrupt witness state, bad config
//! files and key files for `serve`, bad client identities, and bad flags.
//! Each must fail with a nonzero exit status and exactly one line on stderr
//! that names the problem; never a panic or a backtrace hint.

mod common;

use std::{collections::BTreeMap, path::Path};

use common::cli::{self, assert_ok};
use daypass::{
    audit::{Entry, export},
    clock::Timestamp,
};

/// One bad invocation: what it is, its arguments, and a phrase its one
/// line of error must contain.
struct Case {
    what: &'static str,
    args: Vec<String>,
    says: String,
}

fn case(what: &'static str, args: &[&str], says: &str) -> Case {
    Case {
        what,
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        says: says.to_owned(),
    }
}

/// Runs every case in `dir`; fails listing every case that did not fail
/// cleanly. Returns the number of cases.
fn assert_each_fails_clearly(dir: &Path, cases: &[Case]) -> usize {
    let mut wrong = Vec::new();
    for c in cases {
        let out = cli::run(dir, &c.args);
        let err = String::from_utf8_lossy(&out.stderr);
        let all = format!("{err}{}", String::from_utf8_lossy(&out.stdout));
        let problem = if out.status.success() {
            Some("succeeded".to_owned())
        } else if all.contains("panicked") || all.contains("RUST_BACKTRACE") {
            Some("panicked".to_owned())
        } else if err.lines().count() != 1 || !err.starts_with("daypass: ") {
            Some("not one \"daypass: \" line".to_owned())
        } else if !err.contains(&c.says) {
            Some(format!("does not say {:?}", c.says))
        } else {
            None
        };
        if let Some(p) = problem {
            wrong.push(format!(
                "{}: {p} (exit {:?}): {}",
                c.what,
                out.status.code(),
                all.chars().take(600).collect::<String>()
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cases wrong:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
    cases.len()
}

/// `n` chained entries as export lines.
fn export_lines(n: u64) -> Vec<String> {
    let mut prev = [0u8; 32];
    (0..n)
        .map(|seq| {
            let e = Entry {
                seq,
                timestamp: Timestamp(1_790_000_000_000 + seq as i64),
                actor: "system".into(),
                tenant: String::new(),
                kind: "server.started".into(),
                details: BTreeMap::from([("detail".to_owned(), "test".to_owned())]),
                sealed: None,
                prev_hash: prev,
            }
            .seal();
            prev = e.hash;
            export::to_json(&e).to_string()
        })
        .collect()
}

#[test]
fn malformed_exports_and_witness_state_fail_with_one_clear_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let write = |name: &str, bytes: &[u8]| std::fs::write(d.join(name), bytes).expect("write");
    assert_ok(
        &cli::run(d, ["certs", "log-key", "--dir", "keys"]),
        "log key",
    );
    let good = export_lines(3);
    write("good.jsonl", (good.join("\n") + "\n").as_bytes());
    assert_ok(
        &cli::run(d, ["audit", "verify", "good.jsonl"]),
        "the control verifies",
    );

    write("empty.jsonl", b"");
    write("blank.jsonl", b"\n  \n\n");
    let cut = &good[2][..good[2].len() / 2];
    write(
        "truncated.jsonl",
        format!("{}\n{}\n{cut}", good[0], good[1]).as_bytes(),
    );
    write("not-json.jsonl", b"this is not json\n");
    write("json-array.jsonl", b"[1, 2, 3]\n");
    write(
        "wrong-types.jsonl",
        br#"{"seq":"zero","timestamp_ms":"x","actor":1,"tenant":"","kind":"k","details":{},"prev_hash":"00","hash":"00"}"#,
    );
    write(
        "short-hash.jsonl",
        good[0].replace("\"hash\":\"", "\"hash\":\"ab").as_bytes(),
    );
    let binary: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
    write("binary.jsonl", &binary);
    let mut latin1 = format!("{}\n", good[0]).into_bytes();
    latin1.extend(b"caf\xe9\n");
    write("latin1.jsonl", &latin1);
    let mut huge = b"{\"seq\":\"".to_vec();
    huge.extend(std::iter::repeat_n(b'x', 10 << 20));
    huge.extend(b"\"}\n");
    write("huge-line.jsonl", &huge);
    std::fs::create_dir(d.join("a-directory.jsonl")).expect("dir");
    write("checkpoint.txt", b"not a signed note\n");
    write("witness-garbage.jsonl", b"\nnot json at all\n");
    write("witness-binary.jsonl", &binary);
    write("witness-types.jsonl", b"{\"size\":\"x\"}\n");
    write("witness-emptied.jsonl", b"");
    std::fs::create_dir(d.join("witness-dir")).expect("dir");
    write("log.pub", b"this is not a verifier key\n");

    let cases = [
        case(
            "verify: empty file",
            &["audit", "verify", "empty.jsonl"],
            "empty.jsonl: no log entries",
        ),
        case(
            "verify: blank lines only",
            &["audit", "verify", "blank.jsonl"],
            "blank.jsonl",
        ),
        case(
            "verify: truncated last line",
            &["audit", "verify", "truncated.jsonl"],
            "truncated.jsonl: line 3",
        ),
        case(
            "verify: not JSON",
            &["audit", "verify", "not-json.jsonl"],
            "not-json.jsonl: line 1",
        ),
        case(
            "verify: a JSON array",
            &["audit", "verify", "json-array.jsonl"],
            "json-array.jsonl: line 1",
        ),
        case(
            "verify: wrong field types",
            &["audit", "verify", "wrong-types.jsonl"],
            "invalid type",
        ),
        case(
            "verify: a hash of the wrong length",
            &["audit", "verify", "short-hash.jsonl"],
            "short-hash.jsonl: line 1",
        ),
        case(
            "verify: binary file",
            &["audit", "verify", "binary.jsonl"],
            "valid UTF-8",
        ),
        case(
            "verify: non-UTF-8 second line",
            &["audit", "verify", "latin1.jsonl"],
            "line 2",
        ),
        case(
            "verify: a 10 MB line",
            &["audit", "verify", "huge-line.jsonl"],
            "longer than 4 MiB",
        ),
        case(
            "verify: missing file",
            &["audit", "verify", "no-such.jsonl"],
            "cannot open no-such.jsonl",
        ),
        case(
            "verify: a directory",
            &["audit", "verify", "a-directory.jsonl"],
            "a-directory.jsonl: it is a directory",
        ),
        case(
            "verify: missing checkpoint file",
            &[
                "audit",
                "verify",
                "good.jsonl",
                "--checkpoint",
                "no-such.txt",
                "--log-key",
                "keys/log.pub",
            ],
            "cannot read no-such.txt",
        ),
        case(
            "verify: checkpoint that is not a note",
            &[
                "audit",
                "verify",
                "good.jsonl",
                "--checkpoint",
                "checkpoint.txt",
                "--log-key",
                "keys/log.pub",
            ],
            "checkpoint.txt: malformed note",
        ),
        case(
            "verify: --checkpoint without --log-key",
            &[
                "audit",
                "verify",
                "good.jsonl",
                "--checkpoint",
                "checkpoint.txt",
            ],
            "--log-key",
        ),
        case(
            "replay: not JSON",
            &["audit", "replay", "--file", "not-json.jsonl"],
            "not-json.jsonl: line 1",
        ),
        case(
            "replay: a directory",
            &["audit", "replay", "--file", "a-directory.jsonl"],
            "it is a directory",
        ),
        case(
            "replay: a bad --since",
            &[
                "audit",
                "replay",
                "--file",
                "good.jsonl",
                "--since",
                "yesterday",
            ],
            "--since \"yesterday\" is not a time: give an RFC 3339 time",
        ),
        case(
            "replay: a bad --until",
            &[
                "audit",
                "replay",
                "--file",
                "good.jsonl",
                "--until",
                "2026-13-45T99:00:00Z",
            ],
            "--until",
        ),
        case(
            "witness: a verifier key file that is not one",
            &[
                "audit",
                "witness",
                "--state",
                "w.jsonl",
                "--log-key",
                "log.pub",
            ],
            "--log-key: malformed key",
        ),
        case(
            "verify: a --log-key file that does not exist is named as missing",
            &[
                "audit",
                "verify",
                "good.jsonl",
                "--checkpoint",
                "checkpoint.txt",
                "--log-key",
                "keys/no-such.pub",
            ],
            "--log-key keys/no-such.pub: no such file",
        ),
        case(
            "witness: a --log-key that is a directory",
            &[
                "audit",
                "witness",
                "--state",
                "w.jsonl",
                "--log-key",
                "keys",
            ],
            "--log-key keys is a directory",
        ),
    ];
    let mut n = assert_each_fails_clearly(d, &cases);

    // The witness reads its state before it connects anywhere, and says
    // what is wrong with it.
    let witness = |state: &'static str| {
        [
            "audit",
            "witness",
            "--state",
            state,
            "--log-key",
            "keys/log.pub",
            "--server",
            "https://127.0.0.1:1",
        ]
    };
    let cases = [
        case(
            "witness: corrupt state",
            &witness("witness-garbage.jsonl"),
            "witness state witness-garbage.jsonl: line 2",
        ),
        case(
            "witness: binary state",
            &witness("witness-binary.jsonl"),
            "witness state witness-binary.jsonl",
        ),
        case(
            "witness: state of the wrong types",
            &witness("witness-types.jsonl"),
            "witness state witness-types.jsonl: line 1: invalid type",
        ),
        case(
            "witness: an emptied state file (not a first run)",
            &witness("witness-emptied.jsonl"),
            "holds no accepted checkpoint",
        ),
        case(
            "witness: state is a directory",
            &witness("witness-dir"),
            "witness state witness-dir",
        ),
    ];
    n += assert_each_fails_clearly(d, &cases);
    eprintln!("CLI hostile input (exports, witness state): {n} cases, all one clear line");
}

#[test]
fn bad_config_and_key_files_stop_serve_with_one_clear_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    assert_ok(
        &cli::run(d, ["certs", "init", "--dir", "certs"]),
        "certs init",
    );
    // A port that is taken for as long as the test runs.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = listener.local_addr().expect("addr").port();
    let base = "listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\n\
                [tls]\nca = \"certs/ca.pem\"\ncert = \"certs/server.pem\"\nkey = \"certs/server.key\"\n\
                [log]\nsigning_key = \"certs/log.key\"\n";
    let configs: [(&str, String); 20] = [
        ("invalid.toml", "listen = \"127.0.0.1:0\n".into()),
        ("unknown-key.toml", base.replace("listen =", "lisen =")),
        ("unknown-section.toml", format!("{base}[grnats]\nx = 1\n")),
        ("wrong-type.toml", base.replace("\"127.0.0.1:0\"", "8080")),
        (
            "bad-address.toml",
            base.replace("127.0.0.1:0", "not an address"),
        ),
        ("empty.toml", String::new()),
        ("negative.toml", format!("{base}[store]\ncache_mib = -5\n")),
        (
            "out-of-range.toml",
            format!("{base}[store]\ncache_mib = 99999999999999\n"),
        ),
        (
            "over-24h.toml",
            format!("{base}[grants]\nmax_duration_secs = 90000\n"),
        ),
        (
            "bad-trust-domain.toml",
            format!("trust_domain = \"Bad Domain/x\"\n{base}"),
        ),
        (
            "bad-admin.toml",
            format!("bootstrap_admin = \"Ada Lovelace\"\n{base}"),
        ),
        ("no-ca.toml", base.replace("certs/ca.pem", "nowhere/ca.pem")),
        (
            "no-cert.toml",
            base.replace("certs/server.pem", "nowhere/server.pem"),
        ),
        (
            "key-is-a-cert.toml",
            base.replace("certs/server.key", "certs/ca.pem"),
        ),
        (
            "cert-is-a-key.toml",
            base.replace("certs/server.pem", "certs/server.key"),
        ),
        (
            "no-log-key.toml",
            base.replace("certs/log.key", "nowhere/log.key"),
        ),
        (
            "log-key-is-a-cert.toml",
            base.replace("certs/log.key", "certs/ca.pem"),
        ),
        (
            "data-dir-is-a-file.toml",
            base.replace("data_dir = \"data\"", "data_dir = \"certs/ca.pem\""),
        ),
        (
            "port-taken.toml",
            base.replace("127.0.0.1:0", &format!("127.0.0.1:{taken}")),
        ),
        (
            "no-token-key.toml",
            format!("{base}[gate]\ntoken_key = \"nowhere/token.key\"\n"),
        ),
    ];
    for (name, text) in &configs {
        std::fs::write(d.join(name), text).expect("write");
    }
    std::fs::write(d.join("binary.toml"), [0xff, 0xfe, 0x00, 0x41]).expect("write");
    std::fs::create_dir(d.join("a-directory.toml")).expect("dir");

    let serve = |config: &str| ["serve", "--config", config].map(str::to_owned).to_vec();
    let cases = [
        (
            "missing file",
            "no-such.toml",
            "cannot read config file no-such.toml",
        ),
        (
            "a directory",
            "a-directory.toml",
            "cannot read config file a-directory.toml",
        ),
        ("binary file", "binary.toml", "binary.toml"),
        ("invalid TOML", "invalid.toml", "config file invalid.toml"),
        (
            "unknown key",
            "unknown-key.toml",
            "line 1: unknown field `lisen`",
        ),
        (
            "unknown section",
            "unknown-section.toml",
            "line 9: unknown field `grnats`",
        ),
        ("wrong type", "wrong-type.toml", "expected socket address"),
        ("bad address", "bad-address.toml", "invalid socket address"),
        ("empty file", "empty.toml", "missing field `listen`"),
        ("negative size", "negative.toml", "expected u64"),
        (
            "out-of-range size",
            "out-of-range.toml",
            "store.cache_mib must be between",
        ),
        (
            "grants over 24 h",
            "over-24h.toml",
            "grants.max_duration_secs must be between 1 and 86400",
        ),
        ("bad trust domain", "bad-trust-domain.toml", "trust_domain"),
        (
            "bad bootstrap admin",
            "bad-admin.toml",
            "bootstrap_admin: invalid name",
        ),
        (
            "CA file missing",
            "no-ca.toml",
            "cannot read CA certificate nowhere/ca.pem",
        ),
        (
            "certificate missing",
            "no-cert.toml",
            "cannot read server certificate nowhere/server.pem",
        ),
        (
            "key is a certificate",
            "key-is-a-cert.toml",
            "TLS setup failed: tls.cert certs/server.pem, tls.key certs/ca.pem",
        ),
        (
            "certificate is a key",
            "cert-is-a-key.toml",
            "TLS setup failed: tls.cert certs/server.key",
        ),
        (
            "log key missing",
            "no-log-key.toml",
            "cannot load the log signing key",
        ),
        (
            "log key is a certificate",
            "log-key-is-a-cert.toml",
            "cannot load the log signing key",
        ),
        (
            "data dir is a file",
            "data-dir-is-a-file.toml",
            "cannot open the data directory certs/ca.pem",
        ),
        (
            "port taken",
            "port-taken.toml",
            "cannot listen on 127.0.0.1:",
        ),
        ("token key missing", "no-token-key.toml", "gate"),
    ]
    .map(|(what, config, says)| Case {
        what,
        args: serve(config),
        says: says.to_owned(),
    });
    let mut n = assert_each_fails_clearly(d, &cases);
    assert!(
        !d.join("data").exists(),
        "no failed start opened or logged anything"
    );

    // Flags of serve itself.
    let cases = [
        case(
            "no config and no --dev",
            &["serve"],
            "--config <CONFIG>|--dev",
        ),
        case(
            "--config with --dev",
            &["serve", "--dev", "--config", "no-such.toml"],
            "cannot be used with",
        ),
        case(
            "a listen flag that is not an address",
            &[
                "serve",
                "--config",
                "unknown-key.toml",
                "--listen",
                "localhost",
            ],
            "invalid value 'localhost' for '--listen",
        ),
        case(
            "an unknown log format",
            &[
                "serve",
                "--config",
                "unknown-key.toml",
                "--log-format",
                "xml",
            ],
            "possible values: text, json",
        ),
    ];
    n += assert_each_fails_clearly(d, &cases);
    eprintln!("CLI hostile input (serve, config and key files): {n} cases, all one clear line");
    drop(listener);
}

#[test]
fn bad_flags_and_identities_fail_with_one_clear_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    assert_ok(
        &cli::run(d, ["certs", "init", "--dir", "certs"]),
        "certs init",
    );
    let out = cli::run(
        d,
        [
            "certs", "issue", "--kind", "staff", "--name", "alice", "--dir", "certs",
        ],
    );
    assert_ok(&out, "certs issue");
    let id = |ca: &str, cert: &str, key: &str| -> Vec<String> {
        [
            "whoami",
            "--server",
            "https://127.0.0.1:1",
            "--ca",
            ca,
            "--cert",
            cert,
            "--key",
            key,
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let request = |duration: &str| -> Vec<String> {
        [
            "grant",
            "request",
            "acme",
            "--reason",
            "x",
            &format!("--duration={duration}"),
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let issue = |days: &str| -> Vec<String> {
        [
            "certs",
            "issue",
            "--kind",
            "staff",
            "--name",
            "bob",
            "--dir",
            "certs",
            &format!("--days={days}"),
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let mut cases = vec![
        case(
            "an unknown command",
            &["frobnicate"],
            "unrecognized subcommand 'frobnicate'",
        ),
        case(
            "a misspelt command",
            &["grant", "lsit"],
            "a similar subcommand exists: 'list'",
        ),
        case(
            "an unknown flag",
            &["grant", "list", "--tenat", "acme"],
            "unexpected argument '--tenat'",
        ),
        case(
            "missing arguments",
            &["grant", "request"],
            "the following required arguments were not provided: --reason <REASON>",
        ),
        case(
            "a number that is not one",
            &["audit", "tail", "--from", "ten"],
            "invalid value 'ten' for '--from",
        ),
        case(
            "a negative sequence number",
            &["audit", "export", "--from=-1"],
            "invalid value '-1'",
        ),
        case(
            "an unknown role",
            &["staff", "add", "carol", "--role", "god"],
            "possible values",
        ),
        case(
            "an unknown kind",
            &[
                "certs", "issue", "--kind", "robot", "--name", "r2", "--dir", "certs",
            ],
            "possible values: staff, tenant, auditor",
        ),
        case(
            "a bad name",
            &[
                "certs", "issue", "--kind", "staff", "--name", "Bad/Name", "--dir", "certs",
            ],
            "--name: invalid name \"Bad/Name\"",
        ),
        case(
            "certs into a missing directory",
            &[
                "certs",
                "issue",
                "--kind",
                "staff",
                "--name",
                "carol",
                "--dir",
                "no-such-dir",
            ],
            "no-such-dir",
        ),
        case(
            "init over a file",
            &["certs", "init", "--dir", "certs/ca.pem"],
            "certs/ca.pem",
        ),
        case(
            "a validate with both subjects",
            &["validate", "--grant", "g-1", "--staff", "alice"],
            "cannot be used with",
        ),
        case(
            "no identity at all",
            &["grant", "list"],
            "give --ca, --cert and --key",
        ),
        case(
            "a connection flag before the command",
            &["--as", "eve", "audit", "replay"],
            "connection flags go after the command",
        ),
        case(
            "a connection flag on a command that works offline",
            &[
                "audit",
                "verify",
                "log.jsonl",
                "--server",
                "https://127.0.0.1:1",
            ],
            "does not connect to a server, so it takes no --server",
        ),
    ];
    for (what, duration, says) in [
        (
            "a duration with a bad unit",
            "25x",
            "invalid value '25x' for '--duration <DURATION>': not a duration like 4h",
        ),
        (
            "a zero duration",
            "0",
            "'0' for '--duration <DURATION>': a duration must be at least 1s",
        ),
        (
            "a negative duration",
            "-5m",
            "'-5m' for '--duration <DURATION>': a duration cannot be negative",
        ),
        ("-1h", "-1h", "a duration cannot be negative"),
        ("an empty duration", "", "not a duration like"),
        (
            "a duration that overflows",
            "99999999999999999999h",
            "not a duration like",
        ),
        (
            "a duration of only a unit",
            "h",
            "'h' for '--duration <DURATION>': not a duration",
        ),
        ("a duration with spaces", "1 h", "not a duration like"),
    ] {
        cases.push(Case {
            what,
            args: request(duration),
            says: says.to_owned(),
        });
    }
    for (what, days, says) in [
        ("zero days", "0", "0 is not in 1..=3650"),
        ("negative days", "-5", "-5 is not in 1..=3650"),
        ("a century of days", "36500", "36500 is not in 1..=3650"),
        (
            "days past the calendar",
            "99999999999999",
            "is not in 1..=3650",
        ),
        (
            "days that are not a number",
            "ninety",
            "invalid value 'ninety' for '--days",
        ),
    ] {
        cases.push(Case {
            what,
            args: issue(days),
            says: says.to_owned(),
        });
    }
    for (what, args, says) in [
        (
            "a server address that is not a URL",
            {
                let mut a = id(
                    "certs/ca.pem",
                    "certs/staff-alice.pem",
                    "certs/staff-alice.key",
                );
                a[2] = "not a url".into();
                a
            },
            "invalid server address \"not a url\"",
        ),
        (
            "a plain-text server address",
            {
                let mut a = id(
                    "certs/ca.pem",
                    "certs/staff-alice.pem",
                    "certs/staff-alice.key",
                );
                a[2] = "http://127.0.0.1:1".into();
                a
            },
            "use https://HOST:PORT",
        ),
        (
            "a missing certificate",
            id("certs/ca.pem", "no-such.pem", "certs/staff-alice.key"),
            "cannot read client certificate no-such.pem",
        ),
        (
            "a key given as the certificate",
            id(
                "certs/ca.pem",
                "certs/staff-alice.key",
                "certs/staff-alice.key",
            ),
            "cannot use the client certificate, key or CA",
        ),
        (
            "a certificate given as the key",
            id(
                "certs/ca.pem",
                "certs/staff-alice.pem",
                "certs/staff-alice.pem",
            ),
            "cannot use the client certificate, key or CA",
        ),
        (
            "a missing CA",
            id(
                "no-such-ca.pem",
                "certs/staff-alice.pem",
                "certs/staff-alice.key",
            ),
            "no-such-ca.pem",
        ),
        (
            "a server that is not there",
            id(
                "certs/ca.pem",
                "certs/staff-alice.pem",
                "certs/staff-alice.key",
            ),
            "is the server running?",
        ),
    ] {
        cases.push(Case {
            what,
            args,
            says: says.to_owned(),
        });
    }
    let n = assert_each_fails_clearly(d, &cases);
    assert!(
        !d.join("certs/staff-bob.pem").exists(),
        "no refused --days wrote a certificate"
    );
    eprintln!("CLI hostile input (flags, identities): {n} cases, all one clear line");
}

/// A value that does not parse is a usage error: exit 2, before anything
/// connects; `1d` is a day and parses (the command then fails only to
/// connect).
#[test]
fn durations_that_do_not_parse_exit_2_and_a_day_parses() {
    let dir = tempfile::tempdir().expect("dir");
    let run = |d: &str| {
        cli::run(
            dir.path(),
            [
                "grant",
                "request",
                "acme",
                "--reason",
                "x",
                "--duration",
                d,
                "--server",
                "https://127.0.0.1:1",
            ],
        )
    };
    for bad in ["0", "-1h", "25x", ""] {
        let out = run(bad);
        assert_eq!(out.status.code(), Some(2), "{bad}: {out:?}");
    }
    let out = run("1d");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("duration"), "1d parsed: {err}");
    let out = cli::run(
        dir.path(),
        [
            "screen",
            "pair",
            "wall",
            "--ttl",
            "0",
            "--server",
            "https://127.0.0.1:1",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

/// `serve --check-config`: 0 and a line for a config the server would
/// start with; 1 and the problem for one it would not; either way nothing
/// is opened or written (no data directory appears).
#[test]
fn check_config_loads_everything_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    assert_ok(
        &cli::run(d, ["certs", "init", "--dir", "certs"]),
        "certs init",
    );
    let base = "listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\n\
                [tls]\nca = \"certs/ca.pem\"\ncert = \"certs/server.pem\"\nkey = \"certs/server.key\"\n\
                [log]\nsigning_key = \"certs/log.key\"\n";
    std::fs::write(d.join("good.toml"), base).expect("write");
    std::fs::write(
        d.join("no-log-key.toml"),
        base.replace("certs/log.key", "nowhere/log.key"),
    )
    .expect("write");
    let out = cli::run(d, ["serve", "--config", "good.toml", "--check-config"]);
    let said = assert_ok(&out, "check-config");
    assert!(said.contains("config OK"), "{said}");
    let out = cli::run(
        d,
        ["serve", "--config", "no-log-key.toml", "--check-config"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("nowhere/log.key"), "{err}");
    assert!(!d.join("data").exists(), "nothing was opened or written");
}
