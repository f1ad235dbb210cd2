//! The tile read API (C2SP tlog-tiles over HTTPS) against a real server:
//! the tiles it serves rebuild the signed checkpoint's root, the entry
//! bundles hash to the level-0 tiles and hold the log's entries, tiles
//! stay the same bytes across growth and restarts, and who may read what
//! (anonymous, tenant, support, auditor; `tiles.public_hashes`) with the
//! reads and refusals logged.

mod common;

use std::time::Duration;

use common::{https, *};
use daypass::{
    audit::{
        Hash,
        merkle::{leaf_hash, node_hash},
        note::Checkpoint,
    },
    identity::PrincipalKind,
    pb::{self, Role},
};

/// RFC 6962 MTH over leaf hashes, written out (not the server's code).
fn mth(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => panic!("no empty trees here"),
        1 => leaves[0],
        n => {
            let k = n.next_power_of_two() / 2;
            let k = if k == n { n / 2 } else { k };
            node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

fn hashes_of(bytes: &[u8]) -> Vec<Hash> {
    assert_eq!(bytes.len() % 32, 0, "a tile is whole hashes");
    bytes
        .chunks(32)
        .map(|c| c.try_into().expect("32 bytes"))
        .collect()
}

/// Splits an entry bundle into its entries (u16 big-endian lengths).
fn bundle_entries(mut bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let len = usize::from(u16::from_be_bytes([bytes[0], bytes[1]]));
        out.push(bytes[2..2 + len].to_vec());
        bytes = &bytes[2 + len..];
    }
    out
}

/// The spec's tile name for level `l`, index `n`, width `w`.
fn tile_path(l: &str, n: u64, w: u64) -> String {
    let mut groups = vec![format!("{:03}", n % 1000)];
    let mut rest = n / 1000;
    while rest > 0 {
        groups.push(format!("x{:03}", rest % 1000));
        rest /= 1000;
    }
    groups.reverse();
    let mut p = format!("/tile/{l}/{}", groups.join("/"));
    if w < 256 {
        p.push_str(&format!(".p/{w}"));
    }
    p
}

struct Reader {
    cert: String,
    key: String,
}

impl Reader {
    fn new(s: &TestServer, kind: PrincipalKind, name: &str) -> Reader {
        let issued = s.issue(kind, name);
        Reader {
            cert: issued.cert_pem,
            key: issued.key_pem,
        }
    }
}

async fn get(s: &TestServer, who: Option<&Reader>, path: &str) -> https::Response {
    let addr = s.tiles_addr.expect("the tile API is on");
    https::request_as(
        s.ca.cert_pem(),
        who.map(|r| (r.cert.as_str(), r.key.as_str())),
        addr,
        "GET",
        path,
        None,
        Duration::from_secs(10),
    )
    .await
}

/// At least `n` entries in the log, quickly: concurrent validations.
async fn grow_to(s: &TestServer, n: usize) {
    while s.entries().await.len() < n {
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let mut acme = s.tenant("acme").await;
            tasks.push(tokio::spawn(async move {
                for _ in 0..40 {
                    let _ = validate(&mut acme, "g-000000000000000000000000").await;
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
    }
}

async fn start(public_hashes: bool) -> TestServer {
    let s = TestServer::start_with(|c| {
        c.tiles.enabled = true;
        c.tiles.public_hashes = public_hashes;
    })
    .await;
    s.add_tenant("acme", pb::ApprovalPolicy::Auto, false).await;
    s.enrol("eve", Role::Auditor).await;
    s
}

/// Everything a verifier fetches for `cp`, checked as a tlog-tiles client
/// would: level-0 tiles, the level-1 tile over them, the root, and the
/// entry bundles against the level-0 tiles. Returns the entries.
async fn fetch_and_check(s: &TestServer, who: &Reader, cp: &Checkpoint) -> Vec<Vec<u8>> {
    let size = cp.size;
    let mut leaves = Vec::new();
    let mut entries = Vec::new();
    for n in 0..size.div_ceil(256) {
        let w = (size - n * 256).min(256);
        let tile = get(s, Some(who), &tile_path("0", n, w)).await;
        assert_eq!(tile.status, 200, "{}", tile.body);
        assert_eq!(
            tile.header("content-type"),
            Some("application/octet-stream")
        );
        assert_eq!(
            tile.header("cache-control"),
            Some("private, max-age=31536000, immutable")
        );
        let hashes = hashes_of(&tile.bytes);
        assert_eq!(hashes.len() as u64, w);
        let bundle = get(s, Some(who), &tile_path("entries", n, w)).await;
        assert_eq!(bundle.status, 200, "{}", bundle.body);
        let got = bundle_entries(&bundle.bytes);
        assert_eq!(got.len() as u64, w);
        for (e, h) in got.iter().zip(&hashes) {
            assert_eq!(leaf_hash(e), *h, "each entry hashes to its level-0 hash");
        }
        leaves.extend(hashes);
        entries.extend(got);
    }
    // The level-1 tile holds the roots of the full level-0 tiles.
    let full = size / 256;
    if full > 0 {
        let tile = get(s, Some(who), &tile_path("1", 0, full)).await;
        assert_eq!(tile.status, 200, "{}", tile.body);
        let level1 = hashes_of(&tile.bytes);
        for (i, h) in level1.iter().enumerate() {
            assert_eq!(*h, mth(&leaves[i * 256..(i + 1) * 256]));
        }
    }
    assert_eq!(
        mth(&leaves),
        cp.root,
        "the tiles rebuild the checkpoint's root"
    );
    entries
}

#[tokio::test]
async fn served_tiles_rebuild_the_signed_root_and_hold_the_log() {
    let mut s = start(false).await;
    grow_to(&s, 600).await;
    let eve = Reader::new(&s, PrincipalKind::Auditor, "eve");

    let r = get(&s, Some(&eve), "/checkpoint").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.header("cache-control"), Some("private, max-age=2"));
    let cp = Checkpoint::open(&r.body, &s.log_verifier()).expect("a signed checkpoint");
    assert!(cp.size >= 600 && cp.size % 256 != 0, "partial tiles exist");

    let entries = fetch_and_check(&s, &eve, &cp).await;
    let logged = s.entries().await;
    for (i, bytes) in entries.iter().enumerate() {
        assert_eq!(*bytes, logged[i].entry.encode(), "entry {i} as logged");
    }

    // A full tile is the same bytes later, after growth and a restart; a
    // tile the log has not reached yet is not there.
    let first = get(&s, Some(&eve), "/tile/0/000").await.bytes;
    let beyond = tile_path("0", cp.size / 256, 255);
    assert_eq!(get(&s, Some(&eve), &beyond).await.status, 404);
    assert_eq!(
        get(&s, Some(&eve), &tile_path("entries", 40, 256))
            .await
            .status,
        404
    );
    s.restart().await;
    grow_to(&s, cp.size as usize + 300).await;
    assert_eq!(get(&s, Some(&eve), "/tile/0/000").await.bytes, first);
    let r = get(&s, Some(&eve), "/checkpoint").await;
    let later = Checkpoint::open(&r.body, &s.log_verifier()).expect("signed");
    fetch_and_check(&s, &eve, &later).await;

    // Names outside the spec's one form are not tiles.
    for bad in [
        "/tile/0/0",
        "/tile/0/x000/000",
        "/tile/00/000",
        "/tile/0/000.p/0",
        "/nope",
    ] {
        let r = get(&s, Some(&eve), bad).await;
        assert_eq!(r.status, 404, "{bad}");
        assert_eq!(r.header("cache-control"), Some("no-store"), "{bad}");
    }
}

/// Mirrors what the read API serves for `cp` into `dir`, as a static
/// tlog-tiles tree: the checkpoint, every hash tile a client needs for it
/// (every level), and the entry bundles.
async fn mirror(s: &TestServer, who: &Reader, cp_note: &str, size: u64, dir: &std::path::Path) {
    let mut paths = Vec::new();
    let mut level = 0u32;
    let mut nodes = size;
    while nodes > 0 {
        for n in 0..nodes.div_ceil(256) {
            let w = (nodes - n * 256).min(256);
            paths.push(tile_path(&level.to_string(), n, w));
            if level == 0 {
                paths.push(tile_path("entries", n, w));
            }
        }
        nodes /= 256;
        level += 1;
    }
    for p in paths {
        let r = get(s, Some(who), &p).await;
        assert_eq!(r.status, 200, "{p}: {}", r.body);
        let file = dir.join(p.trim_start_matches('/'));
        std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
        std::fs::write(file, &r.bytes).expect("write");
    }
    std::fs::write(dir.join("checkpoint"), cp_note).expect("write");
}

#[tokio::test]
async fn served_tiles_verify_with_the_independent_python_verifier() {
    let python = common::python::python3_version(
        "tests/tile_api.rs",
        "The independent Python tile verifier (docs/verify_tiles.py) on served tiles",
        "Python 3",
    );
    let s = start(false).await;
    grow_to(&s, 600).await;
    let eve = Reader::new(&s, PrincipalKind::Auditor, "eve");
    let note = get(&s, Some(&eve), "/checkpoint").await.body;
    let cp = Checkpoint::open(&note, &s.log_verifier()).expect("signed");
    let dir = tempfile::tempdir().expect("tmp");
    mirror(&s, &eve, &note, cp.size, dir.path()).await;
    let key = s.config.log_key_path().with_file_name("log.pub");

    // Rust's verifier of tile trees...
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_daypass"))
        .args(["audit", "verify", "--tiles"])
        .arg(dir.path())
        .arg("--log-key")
        .arg(&key)
        .output()
        .expect("daypass");
    let say = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    assert!(out.status.success(), "{}", say(&out));
    assert!(
        say(&out).contains(&format!("{} entries", cp.size)),
        "{}",
        say(&out)
    );
    // ... and the one written from the C2SP specs alone.
    if python.is_some() {
        let verifier = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/verify_tiles.py");
        let out = std::process::Command::new("python3")
            .arg(verifier)
            .arg(dir.path())
            .arg("--log-key")
            .arg(&key)
            .output()
            .expect("python3");
        assert!(out.status.success(), "{}", say(&out));
        assert!(
            say(&out).contains(&format!("{} entries", cp.size)),
            "{}",
            say(&out)
        );
        // A served tile changed in transit is caught.
        let tile = dir.path().join("tile/0/000");
        let mut bytes = std::fs::read(&tile).expect("read");
        bytes[100] ^= 1;
        std::fs::write(&tile, bytes).expect("write");
        let out = std::process::Command::new("python3")
            .arg(verifier)
            .arg(dir.path())
            .arg("--log-key")
            .arg(&key)
            .output()
            .expect("python3");
        assert_eq!(out.status.code(), Some(1), "{}", say(&out));
    }
}

#[tokio::test]
async fn who_reads_what_and_the_reads_are_logged() {
    let s = start(false).await;
    grow_to(&s, 300).await;
    s.enrol("bob", Role::Support).await;
    let bob = Reader::new(&s, PrincipalKind::Staff, "bob");
    let acme = Reader::new(&s, PrincipalKind::Tenant, "acme");
    let eve = Reader::new(&s, PrincipalKind::Auditor, "eve");
    let mallory = Reader::new(&s, PrincipalKind::Staff, "mallory"); // not enrolled

    // Anonymous: nothing, and told what to present.
    for path in ["/checkpoint", "/tile/0/000", "/tile/entries/000"] {
        let r = get(&s, None, path).await;
        assert_eq!(r.status, 403, "{path}");
        assert!(r.body.contains("client certificate"), "{}", r.body);
    }
    // Support and tenants: the checkpoint and hash tiles, not the entries.
    for who in [&bob, &acme] {
        assert_eq!(get(&s, Some(who), "/checkpoint").await.status, 200);
        assert_eq!(get(&s, Some(who), "/tile/0/000").await.status, 200);
        let r = get(&s, Some(who), "/tile/entries/000").await;
        assert_eq!(r.status, 403, "{}", r.body);
        assert!(r.body.contains("ReadEntryBundles"), "{}", r.body);
    }
    // Someone not enrolled: nothing.
    assert_eq!(get(&s, Some(&mallory), "/tile/0/000").await.status, 403);

    let entries = s.entries().await;
    let refused: Vec<_> = entries
        .iter()
        .filter(|e| e.entry.kind == "call.refused")
        .map(|e| {
            (
                e.entry.actor.clone(),
                e.entry.details.get("call").cloned().unwrap_or_default(),
            )
        })
        .collect();
    for (actor, action) in [
        ("staff/bob", "ReadEntryBundles"),
        ("tenant/acme", "ReadEntryBundles"),
        ("staff/mallory", "ReadTiles"),
    ] {
        assert!(
            refused.iter().any(|(a, x)| a == actor && x == action),
            "{actor} {action} refused and logged: {refused:?}"
        );
    }

    // The auditor reads bundles; one audit.read per minute, naming where.
    let tiles_reads = |entries: &[daypass::audit::SealedEntry]| {
        entries
            .iter()
            .filter(|e| {
                e.entry.kind == "audit.read"
                    && e.entry.details.get("purpose").map(String::as_str) == Some("tiles")
            })
            .map(|e| {
                (
                    e.entry.actor.clone(),
                    e.entry.details.get("from_seq").cloned().unwrap_or_default(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(get(&s, Some(&eve), "/tile/entries/000").await.status, 200);
    assert_eq!(
        get(&s, Some(&eve), "/tile/entries/000.p/5").await.status,
        200
    );
    assert_eq!(
        tiles_reads(&s.entries().await),
        vec![("auditor/eve".to_owned(), "0".to_owned())]
    );
    s.clock.advance_secs(61);
    assert_eq!(
        get(&s, Some(&eve), "/tile/entries/000.p/7").await.status,
        200
    );
    assert_eq!(tiles_reads(&s.entries().await).len(), 2);
}

#[tokio::test]
async fn public_hashes_serve_the_checkpoint_and_hash_tiles_to_anyone() {
    let s = start(true).await;
    grow_to(&s, 10).await;
    let r = get(&s, None, "/checkpoint").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("public, max-age=2"));
    let cp = Checkpoint::open(&r.body, &s.log_verifier()).expect("signed");
    let w = cp.size.min(255);
    let r = get(&s, None, &tile_path("0", 0, w)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(r.bytes.len() as u64, w * 32);
    // Entry bundles stay private, even to a client that asks nicely.
    let r = get(&s, None, &tile_path("entries", 0, w)).await;
    assert_eq!(r.status, 403, "{}", r.body);
    let eve = Reader::new(&s, PrincipalKind::Auditor, "eve");
    let r = get(&s, Some(&eve), &tile_path("entries", 0, w)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.header("cache-control"),
        Some("private, max-age=31536000, immutable")
    );
}
