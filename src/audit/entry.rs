//! One log entry, its canonical bytes and its hash (format versions 1 and 2).
//!
//! ```text
//! entry_bytes = version:u8 (=1, or 2 for an entry with a sealed part)
//!               seq:u64be
//!               timestamp_ms:i64be
//!               actor:str  tenant:str  kind:str
//!               n_details:u32be  (key:str value:str) * n   keys strictly ascending
//!               [version 2 only: nonce:[u8;12] ciphertext:bytes]
//!               prev_hash:[u8;32]
//! str         = len:u32be utf8-bytes
//! bytes       = len:u32be bytes
//! hash        = SHA-256(entry_bytes)
//! ```
//!
//! The first entry has seq 0 and a prev_hash of 32 zero bytes. Decoding is
//! strict: exactly one encoding is accepted for any entry, so the hash of an
//! entry is a function of its fields.
//!
//! Version 2 ([`Sealed`]) carries a tenant's personal details (reasons,
//! tickets, resources, notes: [`crate::domain::detail::PERSONAL`]) as
//! AES-256-GCM ciphertext under that tenant's key, so destroying the key
//! erases them while the hash, covering the ciphertext, stays valid
//! (crypto-shredding; [`crate::ledger::keys`] seals and opens). The
//! plaintext of the sealed part is itself encoded as `n:u32be (key:str
//! value:str) * n`, keys strictly ascending. An entry opened with its key
//! shows every detail in [`Entry::details`]; [`Sealed::opened`] names the
//! ones that came from the ciphertext, which [`Entry::encode`] leaves out.

use std::collections::BTreeMap;

use ring::digest::{SHA256, digest};
use thiserror::Error;

use crate::clock::Timestamp;

pub const FORMAT_VERSION: u8 = 1;

/// The format of an entry with a sealed part.
pub const SEALED_FORMAT_VERSION: u8 = 2;

/// Length of an AES-GCM nonce.
pub const NONCE_LEN: usize = 12;

/// Length of an AES-GCM tag, the shortest ciphertext.
pub const TAG_LEN: usize = 16;

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// The hash before the first entry.
pub const GENESIS_PREV_HASH: Hash = [0u8; 32];

/// Largest accepted encoded entry; larger input is rejected, not allocated.
pub const MAX_ENTRY_BYTES: usize = 1 << 20;

/// A log entry: every field here is covered by the hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    pub timestamp: Timestamp,
    /// `staff/alice`, `tenant/acme`, `auditor/eve`, `system` or `unauthenticated`.
    pub actor: String,
    /// The tenant the entry is about, or empty.
    pub tenant: String,
    /// What happened, e.g. `grant.activated` (see docs/log-format.md).
    pub kind: String,
    /// Every detail readable here: the plain ones and, if the entry was
    /// opened with its tenant's key, the sealed ones ([`Sealed::opened`]).
    pub details: BTreeMap<String, String>,
    /// The sealed part (format version 2), or None (version 1).
    pub sealed: Option<Sealed>,
    pub prev_hash: Hash,
}

/// A tenant's personal details, encrypted with the tenant's key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sealed {
    pub nonce: [u8; NONCE_LEN],
    /// AES-256-GCM of the encoded details, tag included.
    pub ciphertext: Vec<u8>,
    /// The keys of [`Entry::details`] that were opened from the ciphertext
    /// (empty until opened, and for good once the key is destroyed). Not
    /// encoded: the bytes carry only the ciphertext.
    pub opened: std::collections::BTreeSet<String>,
}

/// An entry together with its hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedEntry {
    pub entry: Entry,
    pub hash: Hash,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("entry is truncated")]
    Truncated,
    #[error("unsupported format version {0}")]
    Version(u8),
    #[error("a string field is not UTF-8")]
    Utf8,
    #[error("detail keys are not strictly ascending")]
    KeyOrder,
    #[error("{0} trailing bytes after the entry")]
    Trailing(usize),
    #[error("entry is larger than {MAX_ENTRY_BYTES} bytes")]
    TooLarge,
    #[error("a sealed part is shorter than its 16-byte tag")]
    SealedTooShort,
}

impl Entry {
    /// The canonical bytes: version 1, or 2 with a sealed part.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            1 + 8 + 8 + 4 * 4 + self.actor.len() + self.tenant.len() + self.kind.len() + 64 + 32,
        );
        out.push(match self.sealed {
            None => FORMAT_VERSION,
            Some(_) => SEALED_FORMAT_VERSION,
        });
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.timestamp.millis().to_be_bytes());
        put_str(&mut out, &self.actor);
        put_str(&mut out, &self.tenant);
        put_str(&mut out, &self.kind);
        let plain = self.plain_details();
        out.extend_from_slice(&(plain.clone().count() as u32).to_be_bytes());
        for (k, v) in plain {
            put_str(&mut out, k);
            put_str(&mut out, v);
        }
        if let Some(s) = &self.sealed {
            out.extend_from_slice(&s.nonce);
            out.extend_from_slice(&(s.ciphertext.len() as u32).to_be_bytes());
            out.extend_from_slice(&s.ciphertext);
        }
        out.extend_from_slice(&self.prev_hash);
        out
    }

    /// The details the bytes carry in the clear.
    pub fn plain_details(&self) -> impl Iterator<Item = (&String, &String)> + Clone {
        let opened = self.sealed.as_ref().map(|s| &s.opened);
        self.details
            .iter()
            .filter(move |(k, _)| !opened.is_some_and(|o| o.contains(*k)))
    }

    pub fn hash(&self) -> Hash {
        hash_bytes(&self.encode())
    }

    pub fn seal(self) -> SealedEntry {
        let hash = self.hash();
        SealedEntry { entry: self, hash }
    }

    /// Strict inverse of [`Entry::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Entry, DecodeError> {
        if bytes.len() > MAX_ENTRY_BYTES {
            return Err(DecodeError::TooLarge);
        }
        let mut r = Reader { buf: bytes };
        let version = r.u8()?;
        if version != FORMAT_VERSION && version != SEALED_FORMAT_VERSION {
            return Err(DecodeError::Version(version));
        }
        let seq = u64::from_be_bytes(r.array()?);
        let timestamp = Timestamp(i64::from_be_bytes(r.array()?));
        let actor = r.string()?;
        let tenant = r.string()?;
        let kind = r.string()?;
        let n = u32::from_be_bytes(r.array()?);
        let mut details = BTreeMap::new();
        let mut last: Option<String> = None;
        for _ in 0..n {
            let k = r.string()?;
            let v = r.string()?;
            if last.as_ref().is_some_and(|l| *l >= k) {
                return Err(DecodeError::KeyOrder);
            }
            last = Some(k.clone());
            details.insert(k, v);
        }
        let sealed = if version == SEALED_FORMAT_VERSION {
            let nonce = r.array()?;
            let len = u32::from_be_bytes(r.array()?) as usize;
            if len < TAG_LEN {
                return Err(DecodeError::SealedTooShort);
            }
            Some(Sealed {
                nonce,
                ciphertext: r.take(len)?.to_vec(),
                opened: Default::default(),
            })
        } else {
            None
        };
        let prev_hash = r.array()?;
        if !r.buf.is_empty() {
            return Err(DecodeError::Trailing(r.buf.len()));
        }
        Ok(Entry {
            seq,
            timestamp,
            actor,
            tenant,
            kind,
            details,
            sealed,
            prev_hash,
        })
    }
}

/// The plaintext of a sealed part: `n:u32be (key:str value:str) * n`.
pub fn encode_details<'a>(
    details: impl ExactSizeIterator<Item = (&'a String, &'a String)>,
) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(details.len() as u32).to_be_bytes());
    for (k, v) in details {
        put_str(&mut out, k);
        put_str(&mut out, v);
    }
    out
}

/// Strict inverse of [`encode_details`].
pub fn decode_details(bytes: &[u8]) -> Result<BTreeMap<String, String>, DecodeError> {
    let mut r = Reader { buf: bytes };
    let n = u32::from_be_bytes(r.array()?);
    let mut details = BTreeMap::new();
    let mut last: Option<String> = None;
    for _ in 0..n {
        let k = r.string()?;
        let v = r.string()?;
        if last.as_ref().is_some_and(|l| *l >= k) {
            return Err(DecodeError::KeyOrder);
        }
        last = Some(k.clone());
        details.insert(k, v);
    }
    if !r.buf.is_empty() {
        return Err(DecodeError::Trailing(r.buf.len()));
    }
    Ok(details)
}

pub fn hash_bytes(bytes: &[u8]) -> Hash {
    let d = digest(&SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let len = u32::from_be_bytes(self.array()?) as usize;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::Utf8)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The worked example of docs/log-format.md.
    pub(crate) fn example() -> Entry {
        Entry {
            seq: 1,
            timestamp: Timestamp(1_764_064_800_000),
            actor: "staff/alice".into(),
            tenant: "acme".into(),
            kind: "grant.requested".into(),
            details: BTreeMap::from([
                ("grant".into(), "g-0123456789abcdef01234567".into()),
                ("reason".into(), "INC-42 login fails".into()),
            ]),
            sealed: None,
            prev_hash: [0x11; 32],
        }
    }

    #[test]
    fn round_trip() {
        let e = example();
        assert_eq!(Entry::decode(&e.encode()), Ok(e));
    }

    #[test]
    fn worked_example_matches_the_doc() {
        // Field by field, as laid out in docs/log-format.md.
        let expected = [
            "01",                                                          // version
            "0000000000000001",                                            // seq 1
            "0000019aba74ad00",                                            // 1764064800000 ms
            "0000000b73746166662f616c696365",                              // "staff/alice"
            "0000000461636d65",                                            // "acme"
            "0000000f6772616e742e726571756573746564",                      // "grant.requested"
            "00000002",                                                    // 2 details
            "000000056772616e74",                                          // "grant"
            "0000001a672d30313233343536373839616263646566303132333435363", // "g-0123…"
            "7",
            "00000006726561736f6e",                         // "reason"
            "00000012494e432d3432206c6f67696e206661696c73", // "INC-42 login fails"
            "1111111111111111111111111111111111111111111111111111111111111111", // prev_hash
        ]
        .concat();
        assert_eq!(hex::encode(example().encode()), expected);
        let hash = "4d3903d7333032e4971bde9ec800614f7afcc9167ba0132a8f342590f4827de5";
        assert_eq!(hex::encode(example().hash()), hash);
        // The doc's one-string form, its length and its hash are these.
        let doc = include_str!("../../docs/log-format.md");
        let one_string = format!(
            "As one string ({} bytes):\n\n```text\n{expected}\n```\n\nIts hash:\n\n```text\n{hash}\n```",
            expected.len() / 2
        );
        assert!(
            doc.contains(&one_string),
            "docs/log-format.md §2 should hold:\n{one_string}"
        );
    }

    #[test]
    fn strict_decoding() {
        let bytes = example().encode();
        assert_eq!(
            Entry::decode(&bytes[..bytes.len() - 1]),
            Err(DecodeError::Truncated)
        );
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(Entry::decode(&longer), Err(DecodeError::Trailing(1)));
        let mut v3 = bytes.clone();
        v3[0] = 3;
        assert_eq!(Entry::decode(&v3), Err(DecodeError::Version(3)));
        // A version-1 body read as version 2 lacks its sealed part.
        let mut v2 = bytes.clone();
        v2[0] = 2;
        assert!(Entry::decode(&v2).is_err());
    }

    #[test]
    fn sealed_round_trip_hashes_the_ciphertext_not_the_opened_details() {
        let mut e = example();
        e.details.remove("reason");
        e.sealed = Some(Sealed {
            nonce: [7; NONCE_LEN],
            ciphertext: vec![1; TAG_LEN],
            opened: Default::default(),
        });
        let bytes = e.encode();
        assert_eq!(bytes[0], 2);
        assert_eq!(Entry::decode(&bytes), Ok(e.clone()));
        // Opened: the detail is shown, the bytes (and so the hash) unchanged.
        let mut opened = e.clone();
        opened.details.insert("reason".into(), "INC-42".into());
        opened
            .sealed
            .as_mut()
            .unwrap()
            .opened
            .insert("reason".into());
        assert_eq!(opened.encode(), bytes);
        // A ciphertext shorter than a tag, or cut short, is refused.
        let mut short = e.clone();
        short
            .sealed
            .as_mut()
            .unwrap()
            .ciphertext
            .truncate(TAG_LEN - 1);
        assert_eq!(
            Entry::decode(&short.encode()),
            Err(DecodeError::SealedTooShort)
        );
        assert_eq!(
            Entry::decode(&bytes[..bytes.len() - 33]),
            Err(DecodeError::Truncated)
        );
    }

    #[test]
    fn sealed_details_round_trip_strictly() {
        let d = BTreeMap::from([("a".to_string(), "1".to_string()), ("b".into(), "2".into())]);
        let bytes = encode_details(d.iter());
        assert_eq!(decode_details(&bytes), Ok(d));
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode_details(&longer), Err(DecodeError::Trailing(1)));
    }
}
