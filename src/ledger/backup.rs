//! Online backup and declared restore of a store.
//!
//! [`Ledger::backup`] takes a consistent copy of a running store without
//! stopping it: holding the flush lock (commits go on being applied in
//! memory; only their group write waits) it reads the stored head, the
//! newest checkpoint and every row of the trees that change in place, then
//! lets go and streams the append-only rows of the first `size` entries
//! while later groups are written ([`super::driver::Driver::backup_log`]).
//! The copy is the store exactly as it was at that head, which the signed
//! checkpoint it carries covers.
//!
//! [`restore`] writes a backup into a new directory and refuses it unless
//! its digest, the log's chain, every stored tree node, the checkpoint's
//! signature (with the log's verifier keys; no private key is needed) and
//! the records against the log all verify. It then leaves a declaration
//! ([`DECLARATION_FILE`]) that the server reads at its next start to log
//! `store.restored` (docs/operations.md, "Backup and restore").
//!
//! ```text
//! backup  = magic header record* 0x00 digest
//! magic   = "daypass-backup-v1\n"
//! header  = u32-BE length ‖ JSON {"taken_at", "size", "head_hash", "checkpoint"}
//! record  = 0x01 ‖ u8 length ‖ tree name ‖ u32-BE length ‖ key ‖ u32-BE length ‖ value
//! digest  = SHA-256 of every byte before it
//! ```

use std::{
    io::{self, Read},
    path::Path,
    sync::{Arc, atomic::Ordering},
};

use ring::digest::{Context, SHA256};
use serde::{Deserialize, Serialize};

use super::{
    CheckpointSigner, Ledger, LedgerError,
    driver::{BackupRecord, Rows, sled::SledDriver},
};
use crate::{
    audit::note::{NoteError, NoteVerifier},
    clock::Timestamp,
};

pub const MAGIC: &[u8] = b"daypass-backup-v1\n";
/// Left in a restored data directory for the server's next start.
pub const DECLARATION_FILE: &str = "RESTORED.json";
/// Bytes per chunk of an encoded backup.
const CHUNK: usize = 256 << 10;
/// Longest tree name, key or value a backup may carry.
const MAX_FIELD: usize = 64 << 20;

/// What a backup says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupHeader {
    /// RFC 3339, when the copy was taken (the server's clock).
    pub taken_at: String,
    /// Entries in the copy (the log's next sequence number).
    pub size: u64,
    /// The last entry's hash, hex.
    pub head_hash: String,
    /// The signed checkpoint of the copy's tree (size `size`).
    pub checkpoint: String,
}

/// The declaration a restore leaves for the server's next start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Declaration {
    pub restored_size: u64,
    pub snapshot_taken_at: String,
    /// Hex SHA-256 of the backup file.
    pub backup_sha256: String,
}

/// A consistent copy being taken.
pub struct Snapshot {
    pub header: BackupHeader,
    state: Vec<BackupRecord>,
    log: Rows<BackupRecord>,
}

impl Ledger {
    /// Starts an online backup (see the module docs). Refused while the
    /// store is failing: the stored head may then be ahead of what is
    /// durable.
    pub async fn backup(&self, taken_at: Timestamp) -> Result<Snapshot, LedgerError> {
        let held = self.flush_lock.lock().await;
        if self.poisoned.load(Ordering::Relaxed) || self.diverged.get().is_some() {
            return Err(LedgerError::Unavailable(
                "the store is failing right now (see the server log): no backup can be taken"
                    .into(),
            ));
        }
        let driver = self.driver.clone();
        let (head, state, note) = tokio::task::spawn_blocking(move || {
            Ok::<_, LedgerError>((
                driver.stored_head()?,
                driver.backup_state()?,
                driver.newest_checkpoint()?,
            ))
        })
        .await
        .map_err(|e| LedgerError::Unavailable(format!("the backup did not finish: {e}")))??;
        drop(held);
        let (Some(head), Some(note)) = (head, note) else {
            return Err(LedgerError::Unavailable(
                "the log is empty: there is nothing to back up".into(),
            ));
        };
        let cp = self.open_checkpoint(&note)?;
        if cp.size != head.next_seq || head.tree_size != head.next_seq {
            return Err(LedgerError::Corrupt(format!(
                "the newest checkpoint covers {} of {} entries: run `audit check`",
                cp.size, head.next_seq
            )));
        }
        Ok(Snapshot {
            header: BackupHeader {
                taken_at: taken_at.to_rfc3339(),
                size: head.next_seq,
                head_hash: hex::encode(head.prev_hash),
                checkpoint: note,
            },
            state,
            log: self.driver.backup_log(head.next_seq),
        })
    }
}

impl Snapshot {
    /// The encoded backup, in chunks of about [`CHUNK`] bytes (blocking
    /// reads of the store between chunks).
    pub fn chunks(self) -> impl Iterator<Item = Result<Vec<u8>, LedgerError>> + Send {
        let header = serde_json::to_vec(&self.header).unwrap_or_default();
        let mut start = MAGIC.to_vec();
        start.extend_from_slice(&(header.len() as u32).to_be_bytes());
        start.extend_from_slice(&header);
        let rows = self.state.into_iter().map(Ok).chain(self.log);
        Encoder {
            rows: Box::new(rows),
            digest: Context::new(&SHA256),
            buf: start,
            done: false,
        }
    }
}

struct Encoder {
    rows: Box<dyn Iterator<Item = Result<BackupRecord, LedgerError>> + Send>,
    digest: Context,
    buf: Vec<u8>,
    done: bool,
}

impl Iterator for Encoder {
    type Item = Result<Vec<u8>, LedgerError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        while self.buf.len() < CHUNK {
            match self.rows.next() {
                Some(Ok(r)) => {
                    self.buf.push(1);
                    self.buf.push(r.tree.len() as u8);
                    self.buf.extend_from_slice(r.tree.as_bytes());
                    for field in [&r.key, &r.value] {
                        self.buf
                            .extend_from_slice(&(field.len() as u32).to_be_bytes());
                        self.buf.extend_from_slice(field);
                    }
                }
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(e));
                }
                None => {
                    self.buf.push(0);
                    self.digest.update(&self.buf);
                    let digest = std::mem::replace(&mut self.digest, Context::new(&SHA256));
                    let mut last = std::mem::take(&mut self.buf);
                    last.extend_from_slice(digest.finish().as_ref());
                    self.done = true;
                    return Some(Ok(last));
                }
            }
        }
        self.digest.update(&self.buf);
        Some(Ok(std::mem::take(&mut self.buf)))
    }
}

/// Why a restore was refused.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("not a daypass backup: {0}")]
    Format(String),
    #[error("the backup does not verify: {0}")]
    Verify(String),
    #[error("{0}")]
    Store(#[from] LedgerError),
}

/// Reads a backup: the header, then the rows; the digest is checked after
/// the last row (a row iterator that ends without error has checked it).
pub struct BackupReader<R> {
    inner: R,
    digest: Context,
    finished: bool,
}

impl<R: Read> BackupReader<R> {
    pub fn open(mut inner: R) -> Result<(BackupHeader, BackupReader<R>), RestoreError> {
        let mut digest = Context::new(&SHA256);
        let mut magic = vec![0u8; MAGIC.len()];
        inner
            .read_exact(&mut magic)
            .map_err(|_| RestoreError::Format("the file is too short".into()))?;
        if magic != MAGIC {
            return Err(RestoreError::Format(
                "it does not start with daypass-backup-v1 (made by `daypass backup`?)".into(),
            ));
        }
        digest.update(&magic);
        let mut r = BackupReader {
            inner,
            digest,
            finished: false,
        };
        let header = r.field()?;
        let header: BackupHeader = serde_json::from_slice(&header)
            .map_err(|e| RestoreError::Format(format!("its header: {e}")))?;
        Ok((header, r))
    }

    fn bytes(&mut self, n: usize) -> Result<Vec<u8>, RestoreError> {
        let mut v = vec![0u8; n];
        self.inner
            .read_exact(&mut v)
            .map_err(|_| RestoreError::Format("the file ends early (cut off?)".into()))?;
        self.digest.update(&v);
        Ok(v)
    }

    fn field(&mut self) -> Result<Vec<u8>, RestoreError> {
        let len = self.bytes(4)?;
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        if len > MAX_FIELD {
            return Err(RestoreError::Format("a field is implausibly long".into()));
        }
        self.bytes(len)
    }

    fn row(&mut self) -> Result<Option<BackupRecord>, RestoreError> {
        match self.bytes(1)?[0] {
            0 => {
                let expected = std::mem::replace(&mut self.digest, Context::new(&SHA256)).finish();
                let mut got = [0u8; 32];
                self.inner
                    .read_exact(&mut got)
                    .map_err(|_| RestoreError::Format("the file ends before its digest".into()))?;
                if got != expected.as_ref() {
                    return Err(RestoreError::Verify(
                        "its SHA-256 digest does not match its contents: the file was changed or damaged"
                            .into(),
                    ));
                }
                if self.inner.read(&mut [0u8; 1])? != 0 {
                    return Err(RestoreError::Format("bytes follow its digest".into()));
                }
                Ok(None)
            }
            1 => {
                let n = self.bytes(1)?[0] as usize;
                let tree = String::from_utf8(self.bytes(n)?)
                    .map_err(|_| RestoreError::Format("a tree name is not UTF-8".into()))?;
                let key = self.field()?;
                let value = self.field()?;
                Ok(Some(BackupRecord { tree, key, value }))
            }
            _ => Err(RestoreError::Format(
                "a row starts with an unknown tag".into(),
            )),
        }
    }
}

impl<R: Read> Iterator for BackupReader<R> {
    type Item = Result<BackupRecord, RestoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        match self.row() {
            Ok(Some(r)) => Some(Ok(r)),
            Ok(None) => {
                self.finished = true;
                None
            }
            Err(e) => {
                self.finished = true;
                Some(Err(e))
            }
        }
    }
}

/// A signer that signs nothing: a restored store is opened only to be
/// verified, with the log's public keys.
struct VerifyOnly(Vec<NoteVerifier>);

impl CheckpointSigner for VerifyOnly {
    fn origin(&self) -> &str {
        self.0.first().map(NoteVerifier::name).unwrap_or_default()
    }
    fn sign(&self, _: &str) -> Result<String, NoteError> {
        Err(NoteError::Key("a store being restored signs nothing"))
    }
    fn verifier(&self) -> NoteVerifier {
        self.0[0].clone()
    }
    fn verifiers(&self) -> Vec<NoteVerifier> {
        self.0.clone()
    }
}

/// What a restore wrote.
#[derive(Clone, Debug)]
pub struct Restored {
    pub header: BackupHeader,
    pub rows: u64,
    pub declaration: Declaration,
}

/// Restores the backup `file` into `dir` (new or empty), verifying it
/// with `keys` (see the module docs); on any failure `dir` is removed
/// again, so nothing half-restored is left.
pub fn restore(file: &Path, dir: &Path, keys: Vec<NoteVerifier>) -> Result<Restored, RestoreError> {
    if keys.is_empty() {
        return Err(RestoreError::Verify("no log verifier key given".into()));
    }
    if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
        return Err(RestoreError::Format(format!(
            "{} is not empty: restore into a new directory, then point data_dir at it (or move the old one aside)",
            dir.display()
        )));
    }
    let result = restore_into(file, dir, keys);
    if result.is_err() {
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

fn restore_into(
    file: &Path,
    dir: &Path,
    keys: Vec<NoteVerifier>,
) -> Result<Restored, RestoreError> {
    let f = std::fs::File::open(file)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot read {}: {e}", file.display())))?;
    let hashing = HashingReader {
        inner: io::BufReader::new(f),
        digest: Context::new(&SHA256),
    };
    let (header, mut reader) = BackupReader::open(hashing)?;
    let mut rows = 0u64;
    let mut failure = None;
    SledDriver::import(
        dir,
        (&mut reader).map_while(|r| match r {
            Ok(r) => {
                rows += 1;
                Some(Ok(r))
            }
            Err(e) => {
                failure = Some(e);
                None
            }
        }),
    )?;
    if let Some(e) = failure {
        return Err(e);
    }
    if !reader.finished {
        return Err(RestoreError::Format(
            "the file ends early (cut off?)".into(),
        ));
    }
    let file_digest = hex::encode(reader.inner.digest.clone().finish());
    let ledger = Ledger::with_driver(
        Arc::new(SledDriver::open(dir, super::DEFAULT_CACHE_MIB << 20)?),
        Arc::new(VerifyOnly(keys)),
    )
    .map_err(|e| RestoreError::Verify(e.to_string()))?;
    verify_restored(&ledger, &header)?;
    drop(ledger);
    let declaration = Declaration {
        restored_size: header.size,
        snapshot_taken_at: header.taken_at.clone(),
        backup_sha256: file_digest,
    };
    let text = serde_json::to_string_pretty(&declaration).unwrap_or_default();
    crate::pki::write_secret(&dir.join(DECLARATION_FILE), &format!("{text}\n"))
        .map_err(|e| io::Error::other(e.to_string()))?;
    Ok(Restored {
        header,
        rows,
        declaration,
    })
}

/// The restored store against its header, its checkpoint and itself.
fn verify_restored(ledger: &Ledger, header: &BackupHeader) -> Result<(), RestoreError> {
    let bad = |s: String| RestoreError::Verify(s);
    let head = ledger.head();
    if head.next_seq != header.size || hex::encode(head.prev_hash) != header.head_hash {
        return Err(bad(format!(
            "its log ends at {} entries, its header says {}",
            head.next_seq, header.size
        )));
    }
    let cp = ledger
        .latest_checkpoint()
        .ok_or_else(|| bad("it holds no signed checkpoint".into()))?;
    if *cp.note != *header.checkpoint || cp.size != header.size {
        return Err(bad(
            "its newest stored checkpoint is not the one its header names".into(),
        ));
    }
    let report = crate::audit::check::check_chain(ledger)?;
    if let Some(p) = report.problem {
        return Err(bad(format!("entry {}: {}", p.seq, p.detail)));
    }
    match ledger.root_at(cp.size)? {
        Ok(root) if root == cp.root => {}
        _ => return Err(bad("its tree does not hash to the signed root".into())),
    }
    let mismatches =
        crate::audit::check::verify_state(ledger, crate::audit::state::Rules::default())?;
    if let Some(m) = mismatches.first() {
        return Err(bad(format!(
            "its records disagree with its log ({} in all), first: {m}",
            mismatches.len()
        )));
    }
    Ok(())
}

/// Hashes every byte read (the whole file's digest, for the declaration).
struct HashingReader<R> {
    inner: R,
    digest: Context,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.digest.update(&buf[..n]);
        Ok(n)
    }
}
