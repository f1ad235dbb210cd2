//! Tile exports end to end: `daypass audit export --tiles DIR` against a
//! real server (over 512 entries, so there are full and partial tiles on
//! levels 0 and 1), then `daypass audit verify --tiles` and the independent
//! docs/verify_tiles.py (written from the C2SP specifications) on the tree,
//! and on copies with a flipped bundle byte, a flipped hash tile byte, a
//! missing tile, a wrong checkpoint signature, a consistently re-hashed
//! forgery and a missing checkpoint: each must fail in both, naming what is
//! wrong. Without python3 the Python half says SKIPPED loudly and passes,
//! except under CI (`CI` set), where it fails.

mod common;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use common::{
    cli::{assert_ok, one_line_error, text},
    *,
};
use daypass::{
    audit::{
        Entry,
        merkle::MemoryTree,
        note::{Checkpoint, LogKey},
        tiles::{self, TileWriter},
    },
    identity::PrincipalKind,
    pb::{ApprovalPolicy, Role},
};

const VERIFY_TILES_PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/verify_tiles.py");

/// Validations to make: with the other entries, the log passes 512.
const VALIDATIONS: usize = 560;

struct Export {
    work: tempfile::TempDir,
    dir: PathBuf,
    key: PathBuf,
    cp: Checkpoint,
    python: bool,
}

impl Export {
    /// `daypass audit verify --tiles DIR --log-key KEY`.
    fn rust(&self, dir: &Path) -> Output {
        cli::run(
            self.work.path(),
            [
                "audit".into(),
                "verify".into(),
                "--tiles".into(),
                dir.display().to_string(),
                "--log-key".into(),
                self.key.display().to_string(),
            ],
        )
    }

    /// `python3 docs/verify_tiles.py DIR --log-key KEY`, if python3 runs.
    fn python(&self, dir: &Path) -> Option<Output> {
        self.python.then(|| {
            Command::new("python3")
                .arg(VERIFY_TILES_PY)
                .arg(dir)
                .arg("--log-key")
                .arg(&self.key)
                .output()
                .expect("python3")
        })
    }

    /// A copy of the tree to tamper with.
    fn copy(&self, name: &str) -> PathBuf {
        let to = self.work.path().join(name);
        copy_dir(&self.dir, &to);
        to
    }

    /// Both verifiers refuse `dir` with one line on stderr containing
    /// `rust_says` (Rust) and `python_says` (Python).
    fn both_refuse(&self, dir: &Path, rust_says: &str, python_says: &str) {
        let out = self.rust(dir);
        let err = one_line_error(&out, rust_says);
        assert!(
            err.contains(rust_says),
            "rust: {err:?} should say {rust_says:?}"
        );
        if let Some(out) = self.python(dir) {
            assert_eq!(out.status.code(), Some(1), "python: {}", text(&out.stderr));
            let err = text(&out.stderr);
            assert!(
                err.contains(python_says) && err.lines().count() == 1,
                "python: {err:?} should say {python_says:?}"
            );
        }
    }
}

fn flip(path: &Path, at: usize) {
    let mut b = std::fs::read(path).expect("read");
    b[at] ^= 0x01;
    std::fs::write(path, b).expect("write");
}

/// Makes a log of more than 512 entries and exports it as tiles.
async fn make() -> (TestServer, Export) {
    let python = python::python3_version(
        "tests/tiles.rs",
        "The independent Python tile verifier (docs/verify_tiles.py)",
        "Python 3",
    )
    .is_some();
    let s = TestServer::start().await;
    s.enrol("eve", Role::Auditor).await;
    let mut alice = s.enrol("alice", Role::Support).await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let g = request(&mut alice, "acme", "INC-9 tiles: ünïcödé reason").await;
    // Four tenant connections at once, so the entries come quickly.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let mut acme = s.tenant("acme").await;
        let id = g.id.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..VALIDATIONS / 4 {
                validate(&mut acme, &id).await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("validations");
    }
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path().join("tiles");
    let mut args: Vec<String> = ["audit", "export", "--tiles"].map(String::from).into();
    args.push(dir.display().to_string());
    args.extend(s.cli_flags(work.path(), PrincipalKind::Auditor, "eve"));
    let out = cli::run_async(work.path().to_owned(), args.clone()).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("as tiles to"),
        "{}",
        text(&out.stderr)
    );
    // A second export into the same directory is refused, not mixed in.
    let again = cli::run_async(work.path().to_owned(), args).await;
    assert!(one_line_error(&again, "reuse").contains("is not empty"));

    let note = std::fs::read_to_string(dir.join("checkpoint")).expect("checkpoint");
    let cp = Checkpoint::open(&note, &s.log_verifier()).expect("a signed checkpoint");
    assert!(cp.size > 2 * 256 && cp.size % 256 != 0, "size {}", cp.size);
    let key = s.config.log_key_path().with_file_name("log.pub");
    (
        s,
        Export {
            work,
            dir,
            key,
            cp,
            python,
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tile_export_verifies_in_rust_and_in_python() {
    let (s, x) = make().await;
    let size = x.cp.size;
    let rest = (size % 256) as usize;
    // Exactly the tiles of the checkpoint's size.
    let mut files = Vec::new();
    walk(&x.dir, &x.dir, &mut files);
    files.sort();
    let mut want = vec![
        "checkpoint".to_owned(),
        "tile/0/000".into(),
        "tile/0/001".into(),
        format!("tile/0/002.p/{rest}"),
        "tile/1/000.p/2".into(),
        "tile/entries/000".into(),
        "tile/entries/001".into(),
        format!("tile/entries/002.p/{rest}"),
    ];
    want.sort();
    assert_eq!(files, want);

    // The bundles hold the log's canonical bytes, in order.
    let log = s.entries().await;
    let bundle = std::fs::read(x.dir.join("tile/entries/001")).expect("bundle");
    let (mut at, mut seq) = (0usize, 256usize);
    while at < bundle.len() {
        let len = usize::from(u16::from_be_bytes([bundle[at], bundle[at + 1]]));
        let bytes = &bundle[at + 2..at + 2 + len];
        assert_eq!(Entry::decode(bytes).expect("an entry").seq, seq as u64);
        assert_eq!(bytes, log[seq].entry.encode());
        at += 2 + len;
        seq += 1;
    }
    assert_eq!(seq, 512);

    let out = x.rust(&x.dir);
    let said = assert_ok(&out, "audit verify --tiles");
    let root = hex::encode(x.cp.root);
    assert_eq!(
        said.trim(),
        format!(
            "OK: {size} entries in 3 bundles and 4 tiles, chain intact, root {root} signed by {}",
            x.cp.origin
        )
    );
    let json = cli::run(
        x.work.path(),
        [
            "--json",
            "audit",
            "verify",
            "--tiles",
            &x.dir.display().to_string(),
            "--log-key",
            &x.key.display().to_string(),
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(v["head_hash"], hex::encode(log[size as usize - 1].hash));
    if let Some(out) = x.python(&x.dir) {
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(
            text(&out.stdout).trim(),
            format!(
                "OK: {size} entries in 3 bundles and 4 tiles, root {root} signed by {}",
                x.cp.origin
            )
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_verifiers_refuse_a_changed_tile_tree() {
    let (_s, x) = make().await;
    let size = x.cp.size;

    // A flipped byte inside an entry of the second bundle (past its length).
    let d = x.copy("bundle");
    flip(&d.join("tile/entries/001"), 10);
    x.both_refuse(
        &d,
        "tile/0/001: hash 0: not the leaf hash of entry 256 in tile/entries/001",
        "tile/0/001: hash 0: not the leaf hash of entry 256 in tile/entries/001",
    );

    // A flipped byte in a hash tile: level 0, and level 1 (its second hash).
    let d = x.copy("tile0");
    flip(&d.join("tile/0/000"), 32 * 7 + 3);
    x.both_refuse(&d, "tile/0/000: hash 7: ", "tile/0/000: hash 7: ");
    let d = x.copy("tile1");
    flip(&d.join("tile/1/000.p/2"), 32 + 31);
    x.both_refuse(
        &d,
        "tile/1/000.p/2: hash 1: not the root",
        "tile/1/000.p/2: hash 1: not the root",
    );

    // A missing tile.
    let d = x.copy("missing");
    std::fs::remove_file(d.join("tile/0/001")).expect("rm");
    let missing = format!("tile/0/001: missing: a tree of {size} entries has it");
    x.both_refuse(&d, &missing, &missing);

    // A wrong checkpoint signature (one bit of it flipped).
    let d = x.copy("signature");
    let note = std::fs::read_to_string(d.join("checkpoint")).expect("read");
    let sig_at = note.rfind(' ').expect("a signature line") + 10;
    let mut bytes = note.into_bytes();
    bytes[sig_at] = if bytes[sig_at] == b'A' { b'B' } else { b'A' };
    std::fs::write(d.join("checkpoint"), bytes).expect("write");
    x.both_refuse(
        &d,
        "checkpoint: the note carries no valid signature",
        "checkpoint: no valid signature",
    );

    // A forgery: entry 3 changed and every tile recomputed, so the tree is
    // consistent in itself, under the log's real checkpoint.
    let d = x.work.path().join("forged");
    let mut w = TileWriter::create(&d).expect("writer");
    let mut tree = MemoryTree::new();
    let mut n = 0u64;
    for b in 0..size.div_ceil(256) {
        let width = (size - b * 256).min(256) as usize;
        let bundle = std::fs::read(x.dir.join(tiles::bundle_path(b, width))).expect("bundle");
        let mut at = 0;
        while at < bundle.len() {
            let len = usize::from(u16::from_be_bytes([bundle[at], bundle[at + 1]]));
            let mut bytes = bundle[at + 2..at + 2 + len].to_vec();
            if n == 3 {
                *bytes.last_mut().expect("bytes") ^= 1;
            }
            w.push(&bytes).expect("push");
            tree.push_entry(&bytes);
            at += 2 + len;
            n += 1;
        }
    }
    let other = LogKey::from_seed(&x.cp.origin, [9; 32]).expect("key");
    let cp = Checkpoint {
        origin: x.cp.origin.clone(),
        size,
        root: tree.root(),
    };
    w.finish(&other.sign(&cp.to_text()).expect("sign"))
        .expect("finish");
    std::fs::copy(x.dir.join("checkpoint"), d.join("checkpoint")).expect("copy");
    x.both_refuse(&d, "the tiles' root ", "the tiles' root ");

    // An interrupted export: everything but the checkpoint.
    let d = x.copy("interrupted");
    std::fs::remove_file(d.join("checkpoint")).expect("rm");
    x.both_refuse(&d, "no `checkpoint` file", "no checkpoint");
}

#[test]
fn the_tile_flags_are_checked() {
    let work = tempfile::tempdir().expect("tempdir");
    let w = work.path();
    std::fs::write(w.join("file"), "x").expect("write");
    let key = LogKey::from_seed("test.daypass/log", [3; 32]).expect("key");
    let vkey = key.verifier().to_string();
    let out = cli::run(
        w,
        ["audit", "verify", "--tiles", "file", "--log-key", &vkey],
    );
    assert!(one_line_error(&out, "a file").contains("--tiles file: not a directory"));
    let out = cli::run(w, ["audit", "verify", "--tiles", "."]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "no --log-key: {}",
        text(&out.stderr)
    );
    let out = cli::run(w, ["audit", "verify", "file", "--log-key", &vkey]);
    assert!(one_line_error(&out, "no checkpoint").contains("give --checkpoint FILE"));
    // An empty directory is no export.
    std::fs::create_dir(w.join("empty")).expect("mkdir");
    let out = cli::run(
        w,
        ["audit", "verify", "--tiles", "empty", "--log-key", &vkey],
    );
    assert!(one_line_error(&out, "empty").contains("no `checkpoint` file"));
    let out = cli::run(
        w,
        [
            "audit",
            "export",
            "--tiles",
            "t",
            "--format",
            "csv",
            "--server",
            "https://127.0.0.1:1",
        ],
    );
    assert!(one_line_error(&out, "csv").contains("drop --format csv"));
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).expect("read_dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            walk(root, &p, out);
        } else {
            out.push(p.strip_prefix(root).expect("inside").display().to_string());
        }
    }
}
