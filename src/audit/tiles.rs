//! Tile exports: the log as a static C2SP tlog-tiles tree
//! (<https://c2sp.org/tlog-tiles>), written from a stream of entries
//! ([`TileWriter`]) and verified offline ([`verify_dir`]).
//!
//! ```text
//! checkpoint                      the signed note (C2SP tlog-checkpoint), written last
//! tile/<L>/<N>[.p/<W>]            hash tiles: 256 (or W) hashes of 32 bytes; level 0 holds
//!                                 leaf(i) = SHA-256(0x00 ‖ entry_bytes(i)), level L+1 the
//!                                 Merkle Tree Hash of each full tile of level L
//! tile/entries/<N>[.p/<W>]        entry bundles: per entry len:u16be ‖ entry_bytes
//! <N>                             3-digit groups, all but the last prefixed with x:
//!                                 1234067 → x001/x234/067
//! ```
//!
//! Only the tiles of the checkpoint's size exist: every full tile, and at
//! each level `l` a partial tile of width `floor(size / 256^l) mod 256`
//! when that is not 0. The entries are their canonical bytes (format
//! versions 1 and 2, `docs/log-format.md` §2), so a version-2 entry's
//! personal details are in the bundle as ciphertext only. An entry bundle
//! frames each entry with a 16-bit length: an entry of more than 65 535
//! bytes cannot be exported as tiles ([`TileError::TooLarge`] names it).
//!
//! This module owns the layout, the writer and the verifier; it does not
//! fetch entries (the CLI streams them from the server) and does not serve
//! tiles over HTTP (that is `crate::tile_api` on main). The format is
//! specified in `docs/log-format.md` §14.

use std::{
    fmt::Write as _,
    fs,
    io::{self, Read as _, Write as _},
    path::{Path, PathBuf},
    sync::{Arc, mpsc},
};

use ring::digest::{SHA256, digest};
use thiserror::Error;

use super::{
    entry::{Entry, GENESIS_PREV_HASH, Hash},
    merkle::empty_root,
    note::{Checkpoint, MAX_NOTE_BYTES, NoteError, NoteVerifier},
    state::{LogState, Rules},
};

/// Hashes per full tile (tile height 8).
pub const TILE_WIDTH: usize = 256;

/// Largest entry an entry bundle can frame (its length is a `u16`).
pub const MAX_BUNDLE_ENTRY_BYTES: usize = u16::MAX as usize;

/// The checkpoint's file name at the root of the tree.
pub const CHECKPOINT_FILE: &str = "checkpoint";

const HASH_LEN: usize = 32;

/// What is wrong with a tile tree, or why one could not be written. Every
/// message names the file (its path inside the tree) and, where there is
/// one, the hash or entry index.
#[derive(Debug, Error)]
pub enum TileError {
    #[error("{path}: {why}")]
    Io { path: String, why: String },
    #[error(
        "no `checkpoint` file in {dir}: not a tile export, or its export was interrupted (the \
         checkpoint is written last)"
    )]
    NoCheckpoint { dir: String },
    #[error("checkpoint: {0}")]
    Checkpoint(NoteError),
    #[error("{path}: missing: a tree of {size} entries has it")]
    Missing { path: String, size: u64 },
    #[error("{path}: {why}")]
    Malformed { path: String, why: String },
    #[error("{path}: hash {index}: {why}")]
    Mismatch {
        path: String,
        index: usize,
        why: String,
    },
    #[error("the tiles' root {computed} is not the checkpoint's root {signed}")]
    Root { computed: String, signed: String },
    #[error("{path}: entry {seq}: {why}")]
    Entry { path: String, seq: u64, why: String },
    #[error(
        "entry {seq} is {len} bytes: an entry bundle frames each entry with a 16-bit length (at \
         most {MAX_BUNDLE_ENTRY_BYTES} bytes), so this log cannot be exported as tiles; use the \
         JSON Lines export (`audit export --checkpoint`)"
    )]
    TooLarge { seq: u64, len: usize },
    #[error("{0}")]
    Export(String),
}

/// `<N>` of a tile path: zero-padded 3-digit groups, all but the last
/// prefixed with `x` (1234067 → `x001/x234/067`, 5 → `005`).
pub fn index_path(n: u64) -> String {
    let mut groups = Vec::with_capacity(7);
    let mut rest = n;
    loop {
        groups.push(rest % 1000);
        rest /= 1000;
        if rest == 0 {
            break;
        }
    }
    let mut out = String::with_capacity(groups.len() * 5);
    let (last, upper) = groups.split_first().unwrap_or((&0, &[]));
    for g in upper.iter().rev() {
        let _ = write!(out, "x{g:03}/");
    }
    let _ = write!(out, "{last:03}");
    out
}

/// `tile/<level>/<N>` for a full tile (`width` 256), else with `.p/<width>`.
pub fn tile_path(level: u8, index: u64, width: usize) -> String {
    with_width(format!("tile/{level}/{}", index_path(index)), width)
}

/// `tile/entries/<N>` for a full bundle (`width` 256), else with `.p/<width>`.
pub fn bundle_path(index: u64, width: usize) -> String {
    with_width(format!("tile/entries/{}", index_path(index)), width)
}

fn with_width(mut path: String, width: usize) -> String {
    debug_assert!((1..=TILE_WIDTH).contains(&width));
    if width < TILE_WIDTH {
        let _ = write!(path, ".p/{width}");
    }
    path
}

/// `SHA-256(0x00 ‖ bytes)`, without allocating.
fn leaf(bytes: &[u8]) -> Hash {
    let mut c = ring::digest::Context::new(&SHA256);
    c.update(&[0x00]);
    c.update(bytes);
    to_hash(c.finish().as_ref())
}

/// `SHA-256(0x01 ‖ left ‖ right)` in one call over a stack buffer.
fn node(left: &Hash, right: &Hash) -> Hash {
    let mut buf = [0u8; 1 + 2 * HASH_LEN];
    buf[0] = 0x01;
    buf[1..33].copy_from_slice(left);
    buf[33..].copy_from_slice(right);
    to_hash(digest(&SHA256, &buf).as_ref())
}

fn to_hash(b: &[u8]) -> Hash {
    let mut h = [0u8; HASH_LEN];
    h.copy_from_slice(b);
    h
}

/// The Merkle Tree Hash of a full tile's 256 hashes (8 levels, 255 nodes).
fn tile_root(hashes: &[Hash]) -> Hash {
    debug_assert_eq!(hashes.len(), TILE_WIDTH);
    let mut buf = [[0u8; HASH_LEN]; TILE_WIDTH];
    buf.copy_from_slice(hashes);
    let mut width = TILE_WIDTH;
    while width > 1 {
        for i in 0..width / 2 {
            buf[i] = node(&buf[2 * i], &buf[2 * i + 1]);
        }
        width /= 2;
    }
    buf[0]
}

/// The tree's root from its right edge: `edge[l]` holds the hashes of the
/// partial tile at level `l` (each the root of a complete subtree of
/// `256^l` leaves). They are the tree's complete subtrees left to right,
/// highest level first; the root folds them as RFC 6962 does.
fn root_of_edge(edge: &[Vec<Hash>]) -> Hash {
    // (height, hash) of the maximal complete subtrees: a binary counter.
    let mut peaks: Vec<(u32, Hash)> = Vec::new();
    for (level, hashes) in edge.iter().enumerate().rev() {
        for h in hashes {
            let (mut height, mut h) = (8 * level as u32, *h);
            while let Some(&(top, left)) = peaks.last() {
                if top != height {
                    break;
                }
                peaks.pop();
                h = node(&left, &h);
                height += 1;
            }
            peaks.push((height, h));
        }
    }
    let mut it = peaks.iter().rev();
    match it.next() {
        None => empty_root(),
        Some(&(_, last)) => it.fold(last, |acc, (_, left)| node(left, &acc)),
    }
}

/// Writes a tile tree from entries given in seq order, keeping only the
/// right edge in memory (one bundle and one tile per level). Nothing is a
/// complete export until [`TileWriter::finish`] writes the checkpoint.
pub struct TileWriter {
    dir: PathBuf,
    size: u64,
    bundle: Vec<u8>,
    /// The right-edge tile of each level, being filled.
    edge: Vec<Vec<Hash>>,
    /// Full tiles written per level.
    full: Vec<u64>,
}

impl TileWriter {
    /// Starts an export into `dir`, which must not exist or be empty (so
    /// no tile of an earlier export can be mistaken for one of this one).
    pub fn create(dir: &Path) -> Result<TileWriter, TileError> {
        let io = |e: io::Error| TileError::Io {
            path: dir.display().to_string(),
            why: e.to_string(),
        };
        match fs::read_dir(dir) {
            Ok(mut it) => {
                if it.next().is_some() {
                    return Err(TileError::Export(format!(
                        "{} is not empty: export tiles into a new or empty directory",
                        dir.display()
                    )));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => create_private_dir(dir).map_err(io)?,
            Err(e) => return Err(io(e)),
        }
        Ok(TileWriter {
            dir: dir.to_owned(),
            size: 0,
            bundle: Vec::with_capacity(TILE_WIDTH * 512),
            edge: vec![Vec::with_capacity(TILE_WIDTH)],
            full: vec![0],
        })
    }

    /// Entries written so far (the next entry's seq).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends the canonical bytes of entry `size()`.
    pub fn push(&mut self, entry_bytes: &[u8]) -> Result<(), TileError> {
        let len = u16::try_from(entry_bytes.len()).map_err(|_| TileError::TooLarge {
            seq: self.size,
            len: entry_bytes.len(),
        })?;
        self.bundle.extend_from_slice(&len.to_be_bytes());
        self.bundle.extend_from_slice(entry_bytes);
        self.size += 1;
        if self.size % TILE_WIDTH as u64 == 0 {
            let path = bundle_path(self.size / TILE_WIDTH as u64 - 1, TILE_WIDTH);
            write_file(&self.dir, &path, &self.bundle)?;
            self.bundle.clear();
        }
        self.add(0, leaf(entry_bytes))
    }

    /// Adds a hash to the right-edge tile of `level`; a tile that fills is
    /// written and its root added to the level above.
    fn add(&mut self, level: usize, hash: Hash) -> Result<(), TileError> {
        if self.edge.len() == level {
            self.edge.push(Vec::with_capacity(TILE_WIDTH));
            self.full.push(0);
        }
        self.edge[level].push(hash);
        if self.edge[level].len() < TILE_WIDTH {
            return Ok(());
        }
        let path = tile_path(level as u8, self.full[level], TILE_WIDTH);
        write_file(&self.dir, &path, self.edge[level].as_flattened())?;
        self.full[level] += 1;
        let root = tile_root(&self.edge[level]);
        self.edge[level].clear();
        self.add(level + 1, root)
    }

    /// Writes the partial tiles and bundle of the right edge, checks that
    /// the tree is the one `note` (the log's signed checkpoint) describes,
    /// and only then writes `note` as `checkpoint`. Returns its body.
    pub fn finish(self, note: &str) -> Result<Checkpoint, TileError> {
        let cp = Checkpoint::parse(note).map_err(TileError::Checkpoint)?;
        if cp.size != self.size {
            return Err(TileError::Export(format!(
                "the checkpoint covers {} entries but {} were written",
                cp.size, self.size
            )));
        }
        let rest = (self.size % TILE_WIDTH as u64) as usize;
        if rest > 0 {
            let path = bundle_path(self.size / TILE_WIDTH as u64, rest);
            write_file(&self.dir, &path, &self.bundle)?;
        }
        for (level, hashes) in self.edge.iter().enumerate() {
            if !hashes.is_empty() {
                let path = tile_path(level as u8, self.full[level], hashes.len());
                write_file(&self.dir, &path, hashes.as_flattened())?;
            }
        }
        let root = root_of_edge(&self.edge);
        if root != cp.root {
            return Err(TileError::Root {
                computed: hex::encode(root),
                signed: hex::encode(cp.root),
            });
        }
        // Written aside and renamed: a reader sees the whole note or none.
        let tmp = format!("{CHECKPOINT_FILE}.tmp");
        write_file(&self.dir, &tmp, note.as_bytes())?;
        fs::rename(self.dir.join(&tmp), self.dir.join(CHECKPOINT_FILE)).map_err(|e| {
            TileError::Io {
                path: CHECKPOINT_FILE.into(),
                why: e.to_string(),
            }
        })?;
        Ok(cp)
    }
}

/// Creates the export's directory readable by its owner only: the bundles
/// are the whole log (names, kinds, plain details), and publishing them is
/// a deliberate step. Parents are created as usual.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)?;
    }
    let mut b = fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

/// Writes `rel` (a path inside the tree) under `dir`, creating its parents.
fn write_file(dir: &Path, rel: &str, bytes: &[u8]) -> Result<(), TileError> {
    let io = |e: io::Error| TileError::Io {
        path: rel.to_owned(),
        why: e.to_string(),
    };
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io)?;
    }
    let mut f = fs::File::create(&path).map_err(io)?;
    f.write_all(bytes).map_err(io)
}

/// What [`verify_dir`] established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TileSummary {
    /// The checkpoint's body (origin, size, root), its signature checked.
    pub checkpoint: Checkpoint,
    /// Entry bundles and hash tiles read.
    pub bundles: u64,
    pub tiles: u64,
    /// The hash of the last entry (the chain's head).
    pub head: Hash,
}

/// Verifies a tile tree offline: the checkpoint's signature by one of
/// `verifiers` (its origin their name); every entry bundle the size needs,
/// its framing and that each entry's leaf hash is the level-0 tile's hash;
/// every hash tile above against the roots of the tiles below; the root
/// of the whole tree against the checkpoint's. And over the entries, as
/// for a JSON Lines export: each decodes, its seq is its index, its
/// `prev_hash` is the hash of the entry before, and the log's semantics
/// ([`super::state`]) hold. The entries are checked on a second thread
/// while the tree is; the first problem is returned.
pub fn verify_dir(dir: &Path, verifiers: &[NoteVerifier]) -> Result<TileSummary, TileError> {
    let cp = open_checkpoint(dir, verifiers)?;
    let (tx, rx) = mpsc::sync_channel::<Bundle>(8);
    std::thread::scope(|s| {
        let entries = s.spawn(move || check_entries(rx));
        let tree = verify_tree(dir, &cp, tx);
        let entries = entries
            .join()
            .unwrap_or_else(|_| Err(TileError::Export("the entry checker panicked".into())));
        // The tree's problem first: it names the file that was changed.
        match (tree, entries) {
            (Err(e), _) | (Ok(_), Err(e)) => Err(e),
            (Ok((bundles, tiles)), Ok(head)) => Ok(TileSummary {
                checkpoint: cp.clone(),
                bundles,
                tiles,
                head,
            }),
        }
    })
}

/// The tree half of [`verify_dir`] alone: the checkpoint's signature, every
/// tile and bundle and the root, without the chain and the log's semantics
/// (for measuring; `audit verify --tiles` runs [`verify_dir`]). Returns
/// (bundles, tiles) read.
pub fn verify_tree_dir(dir: &Path, verifiers: &[NoteVerifier]) -> Result<(u64, u64), TileError> {
    let cp = open_checkpoint(dir, verifiers)?;
    let (tx, rx) = mpsc::sync_channel::<Bundle>(1);
    // Nothing checks the entries: the receiver drops each bundle.
    std::thread::scope(|s| {
        s.spawn(move || rx.into_iter().for_each(drop));
        verify_tree(dir, &cp, tx)
    })
}

/// Reads `dir/checkpoint` and checks its signature and origin.
fn open_checkpoint(dir: &Path, verifiers: &[NoteVerifier]) -> Result<Checkpoint, TileError> {
    let cp_path = dir.join(CHECKPOINT_FILE);
    let note = match fs::metadata(&cp_path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(TileError::NoCheckpoint {
                dir: dir.display().to_string(),
            });
        }
        Ok(m) if m.len() > MAX_NOTE_BYTES as u64 => {
            return Err(TileError::Checkpoint(NoteError::Malformed(
                "note is too large",
            )));
        }
        _ => fs::read_to_string(&cp_path).map_err(|e| TileError::Io {
            path: CHECKPOINT_FILE.into(),
            why: e.to_string(),
        })?,
    };
    Checkpoint::open_any(&note, verifiers).map_err(TileError::Checkpoint)
}

/// A bundle on its way to the entry checker: its path, index and bytes.
type Bundle = (String, u64, Arc<Vec<u8>>);

/// The tree half of [`verify_dir`]: returns (bundles, tiles) read. Each
/// bundle, once its framing is checked, goes to `entries`.
fn verify_tree(
    dir: &Path,
    cp: &Checkpoint,
    entries: mpsc::SyncSender<Bundle>,
) -> Result<(u64, u64), TileError> {
    let size = cp.size;
    let width = TILE_WIDTH as u64;
    let bundles = size.div_ceil(width);
    // The right edge recomputed, per level: the hashes of the tile being
    // checked (level 0: leaves of the current bundle).
    let mut edge: Vec<Vec<Hash>> = vec![Vec::with_capacity(TILE_WIDTH)];
    let mut full: Vec<u64> = vec![0];
    let mut tile_buf = Vec::with_capacity(TILE_WIDTH * HASH_LEN);
    let mut tiles = 0u64;
    for n in 0..bundles {
        let w = (size - n * width).min(width) as usize;
        let path = bundle_path(n, w);
        let bytes = read(dir, &path, size)?;
        let leaves = &mut edge[0];
        leaves.clear();
        let mut at = 0usize;
        while at < bytes.len() {
            let seq = n * width + leaves.len() as u64;
            let Some(len) = bytes.get(at..at + 2) else {
                return Err(malformed(
                    &path,
                    format!("entry {seq}: its length is cut off"),
                ));
            };
            let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
            let Some(entry) = bytes.get(at + 2..at + 2 + len) else {
                return Err(malformed(
                    &path,
                    format!("entry {seq}: {len} bytes announced, fewer follow"),
                ));
            };
            if leaves.len() == w {
                return Err(malformed(
                    &path,
                    format!("more than the {w} entries a tree of {size} puts in this bundle"),
                ));
            }
            leaves.push(leaf(entry));
            at += 2 + len;
        }
        if leaves.len() != w {
            return Err(malformed(
                &path,
                format!(
                    "{} entries, but a tree of {size} puts {w} in this bundle",
                    leaves.len()
                ),
            ));
        }
        let tpath = tile_path(0, n, w);
        read_tile(dir, &tpath, w, size, &mut tile_buf)?;
        tiles += 1;
        for (i, (got, want)) in tile_buf
            .chunks_exact(HASH_LEN)
            .zip(leaves.iter())
            .enumerate()
        {
            if got != want {
                return Err(TileError::Mismatch {
                    path: tpath,
                    index: i,
                    why: format!(
                        "not the leaf hash of entry {} in {path} (the bundle or the tile was \
                         changed)",
                        n * width + i as u64
                    ),
                });
            }
        }
        // An entry checker that stopped at a problem no longer listens; the
        // tree is still checked to the end, as its problem is reported first.
        let _ = entries.send((path, n, Arc::new(bytes)));
        if w == TILE_WIDTH {
            full[0] += 1;
            let root = tile_root(&edge[0]);
            push_upper(
                dir,
                size,
                1,
                root,
                &mut edge,
                &mut full,
                &mut tile_buf,
                &mut tiles,
            )?;
        }
    }
    if size % width == 0 {
        edge[0].clear();
    }
    // The partial tiles above level 0.
    for level in 1..edge.len() {
        let w = edge[level].len();
        if w > 0 {
            let path = tile_path(level as u8, full[level], w);
            check_upper(dir, &path, level, size, &edge[level], &mut tile_buf)?;
            tiles += 1;
        }
    }
    // A partial tile on the level above the highest one is an error only
    // if the size needs it; the loop above covered every such level.
    let root = root_of_edge(&edge);
    if root != cp.root {
        return Err(TileError::Root {
            computed: hex::encode(root),
            signed: hex::encode(cp.root),
        });
    }
    Ok((bundles, tiles))
}

/// Adds the root of a full tile of `level - 1` to `level`; a tile that
/// fills is read and compared, and its root goes one level up.
#[allow(clippy::too_many_arguments)]
fn push_upper(
    dir: &Path,
    size: u64,
    level: usize,
    hash: Hash,
    edge: &mut Vec<Vec<Hash>>,
    full: &mut Vec<u64>,
    buf: &mut Vec<u8>,
    tiles: &mut u64,
) -> Result<(), TileError> {
    if edge.len() == level {
        edge.push(Vec::with_capacity(TILE_WIDTH));
        full.push(0);
    }
    edge[level].push(hash);
    if edge[level].len() < TILE_WIDTH {
        return Ok(());
    }
    let path = tile_path(level as u8, full[level], TILE_WIDTH);
    check_upper(dir, &path, level, size, &edge[level], buf)?;
    *tiles += 1;
    full[level] += 1;
    let root = tile_root(&edge[level]);
    edge[level].clear();
    push_upper(dir, size, level + 1, root, edge, full, buf, tiles)
}

/// Reads the tile at `path` (level ≥ 1) and compares it with `want`.
fn check_upper(
    dir: &Path,
    path: &str,
    level: usize,
    size: u64,
    want: &[Hash],
    buf: &mut Vec<u8>,
) -> Result<(), TileError> {
    read_tile(dir, path, want.len(), size, buf)?;
    for (i, (got, want)) in buf.chunks_exact(HASH_LEN).zip(want).enumerate() {
        if got != want {
            return Err(TileError::Mismatch {
                path: path.to_owned(),
                index: i,
                why: format!(
                    "not the root of the level-{} tile below it (the tile was changed)",
                    level - 1
                ),
            });
        }
    }
    Ok(())
}

/// Reads a hash tile of `width` hashes into `buf`.
fn read_tile(
    dir: &Path,
    path: &str,
    width: usize,
    size: u64,
    buf: &mut Vec<u8>,
) -> Result<(), TileError> {
    let mut f = open(dir, path, size)?;
    buf.clear();
    io::Read::by_ref(&mut f)
        .take((width * HASH_LEN + 1) as u64)
        .read_to_end(buf)
        .map_err(|e| TileError::Io {
            path: path.to_owned(),
            why: e.to_string(),
        })?;
    if buf.len() != width * HASH_LEN {
        return Err(malformed(
            path,
            format!(
                "{} bytes, but a tile of {width} hashes has {}",
                buf.len(),
                width * HASH_LEN
            ),
        ));
    }
    Ok(())
}

fn open(dir: &Path, path: &str, size: u64) -> Result<fs::File, TileError> {
    fs::File::open(dir.join(path)).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => TileError::Missing {
            path: path.to_owned(),
            size,
        },
        _ => TileError::Io {
            path: path.to_owned(),
            why: e.to_string(),
        },
    })
}

/// Reads a bundle whole (at most 256 × 65 537 bytes).
fn read(dir: &Path, path: &str, size: u64) -> Result<Vec<u8>, TileError> {
    let mut f = open(dir, path, size)?;
    let mut bytes = Vec::new();
    io::Read::by_ref(&mut f)
        .take((TILE_WIDTH * (2 + MAX_BUNDLE_ENTRY_BYTES) + 1) as u64)
        .read_to_end(&mut bytes)
        .map_err(|e| TileError::Io {
            path: path.to_owned(),
            why: e.to_string(),
        })?;
    Ok(bytes)
}

fn malformed(path: &str, why: String) -> TileError {
    TileError::Malformed {
        path: path.to_owned(),
        why,
    }
}

/// The entry half of [`verify_dir`]: the chain and the log's semantics
/// over the bundles, in order (their framing already checked). Returns the
/// head.
fn check_entries(bundles: mpsc::Receiver<Bundle>) -> Result<Hash, TileError> {
    let mut state = LogState::new(Rules::default());
    let mut prev = GENESIS_PREV_HASH;
    for (path, n, bytes) in bundles {
        let mut at = 0usize;
        let mut seq = n * TILE_WIDTH as u64;
        while at + 2 <= bytes.len() {
            let len = usize::from(u16::from_be_bytes([bytes[at], bytes[at + 1]]));
            let Some(raw) = bytes.get(at + 2..at + 2 + len) else {
                break;
            };
            let fail = |why: String| TileError::Entry {
                path: path.clone(),
                seq,
                why,
            };
            let e = Entry::decode(raw).map_err(|why| fail(format!("malformed: {why}")))?;
            if e.seq != seq {
                return Err(fail(format!(
                    "the entry at index {seq} says it is seq {}",
                    e.seq
                )));
            }
            if e.prev_hash != prev {
                return Err(fail(
                    "broken: its prev_hash is not the hash of the entry before it".into(),
                ));
            }
            state
                .apply(&e)
                .map_err(|c| fail(format!("contradicted: {}", c.why)))?;
            prev = to_hash(digest(&SHA256, raw).as_ref());
            at += 2 + len;
            seq += 1;
        }
    }
    Ok(prev)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{merkle::MemoryTree, note::LogKey};

    #[test]
    fn index_paths_follow_the_spec() {
        // The examples of c2sp.org/tlog-tiles.
        assert_eq!(index_path(1_234_067), "x001/x234/067");
        assert_eq!(index_path(0), "000");
        assert_eq!(index_path(5), "005");
        assert_eq!(index_path(999), "999");
        assert_eq!(index_path(1000), "x001/000");
        assert_eq!(index_path(u64::MAX), "x018/x446/x744/x073/x709/x551/615");
        assert_eq!(tile_path(0, 1_234_067, 256), "tile/0/x001/x234/067");
        assert_eq!(tile_path(1, 272, 17), "tile/1/272.p/17");
        assert_eq!(bundle_path(273, 112), "tile/entries/273.p/112");
        assert_eq!(bundle_path(3, 256), "tile/entries/003");
    }

    fn entry_bytes(i: u64) -> Vec<u8> {
        format!("entry {i}").into_bytes()
    }

    /// Writes a tree of `size` synthetic entries signed by `key`.
    fn export(dir: &Path, size: u64, key: &LogKey) -> Vec<String> {
        let mut w = TileWriter::create(dir).unwrap();
        let mut tree = MemoryTree::new();
        for i in 0..size {
            w.push(&entry_bytes(i)).unwrap();
            tree.push_entry(&entry_bytes(i));
        }
        let cp = Checkpoint {
            origin: key.name().into(),
            size,
            root: tree.root(),
        };
        w.finish(&key.sign(&cp.to_text()).unwrap()).unwrap();
        let mut files = Vec::new();
        walk(dir, dir, &mut files);
        files.sort();
        files
    }

    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }

    #[test]
    fn the_tiles_of_a_size_are_those_the_spec_lists() {
        let key = LogKey::from_seed("example.daypass/log", [7; 32]).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        // "a tree of size 256 will be represented by a full level 0 tile
        // and a partial level 1 tile of width 1"
        let files = export(&tmp.path().join("256"), 256, &key);
        assert_eq!(
            files,
            [
                "checkpoint",
                "tile/0/000",
                "tile/1/000.p/1",
                "tile/entries/000"
            ]
        );
        let files = export(&tmp.path().join("515"), 515, &key);
        assert_eq!(
            files,
            [
                "checkpoint",
                "tile/0/000",
                "tile/0/001",
                "tile/0/002.p/3",
                "tile/1/000.p/2",
                "tile/entries/000",
                "tile/entries/001",
                "tile/entries/002.p/3"
            ]
        );
        assert_eq!(export(&tmp.path().join("0"), 0, &key), ["checkpoint"]);
    }

    #[test]
    fn the_root_of_the_edge_is_the_tree_root_at_every_size() {
        // Sizes around tile boundaries at levels 0 and 1 (and 2: 65 536).
        let mut tree = MemoryTree::new();
        let mut edge: Vec<Vec<Hash>> = vec![Vec::new()];
        let check = |edge: &Vec<Vec<Hash>>, tree: &MemoryTree| {
            assert_eq!(root_of_edge(edge), tree.root(), "size {}", tree.size());
        };
        check(&edge, &tree);
        for i in 0..(65_536 + 300u64) {
            let b = entry_bytes(i);
            tree.push_entry(&b);
            let mut level = 0;
            let mut h = leaf(&b);
            loop {
                if edge.len() == level {
                    edge.push(Vec::new());
                }
                edge[level].push(h);
                if edge[level].len() < TILE_WIDTH {
                    break;
                }
                h = tile_root(&edge[level]);
                edge[level].clear();
                level += 1;
            }
            if i < 600 || i % 997 == 0 || (65_530..65_545).contains(&i) {
                check(&edge, &tree);
            }
        }
        check(&edge, &tree);
    }

    #[test]
    fn a_written_tree_verifies_and_a_changed_one_does_not() {
        // Non-entries fail decoding: check the tree half alone.
        let key = LogKey::from_seed("example.daypass/log", [7; 32]).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("t");
        export(&dir, 600, &key);
        let note = fs::read_to_string(dir.join(CHECKPOINT_FILE)).unwrap();
        let cp = Checkpoint::open(&note, &key.verifier()).unwrap();
        let tree = |dir: &Path| {
            let (tx, rx) = mpsc::sync_channel(1000);
            let r = verify_tree(dir, &cp, tx);
            drop(rx);
            r
        };
        assert_eq!(tree(&dir).unwrap(), (3, 4));
        let flip = |rel: &str, at: usize| {
            let p = dir.join(rel);
            let mut b = fs::read(&p).unwrap();
            b[at] ^= 1;
            fs::write(&p, b).unwrap();
        };
        flip("tile/1/000.p/2", 40);
        let e = tree(&dir).unwrap_err().to_string();
        assert!(e.starts_with("tile/1/000.p/2: hash 1: not the root"), "{e}");
        flip("tile/1/000.p/2", 40);
        flip("tile/entries/001", 5);
        let e = tree(&dir).unwrap_err().to_string();
        assert!(
            e.starts_with("tile/0/001: hash 0: not the leaf hash of entry 256"),
            "{e}"
        );
        flip("tile/entries/001", 5);
        fs::remove_file(dir.join("tile/0/002.p/88")).unwrap();
        let e = tree(&dir).unwrap_err().to_string();
        assert_eq!(e, "tile/0/002.p/88: missing: a tree of 600 entries has it");
    }

    #[test]
    fn an_entry_too_large_for_a_bundle_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let mut w = TileWriter::create(tmp.path()).unwrap();
        w.push(&[0; MAX_BUNDLE_ENTRY_BYTES]).unwrap();
        let e = w.push(&[0; MAX_BUNDLE_ENTRY_BYTES + 1]).unwrap_err();
        assert!(e.to_string().starts_with("entry 1 is 65536 bytes"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn a_new_export_directory_is_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        TileWriter::create(&dir).unwrap();
        let mode = fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn a_non_empty_directory_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("x"), b"").unwrap();
        assert!(
            TileWriter::create(tmp.path())
                .err()
                .unwrap()
                .to_string()
                .contains("is not empty")
        );
    }
}
