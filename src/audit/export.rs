//! The JSON Lines export: one entry per line with every hashed field, its
//! `prev_hash` and `hash` (lowercase hex), plus a readable `time` that must
//! agree with `timestamp_ms`. A tenant-scoped export adds `inclusion` to
//! each line: the entry's inclusion proof (hex hashes) in the tree of a
//! signed checkpoint kept beside the export. Reading and verifying stream in
//! constant memory.

use std::{
    collections::BTreeMap,
    io::{self, BufRead, Write},
};

use serde::{
    Deserialize, Deserializer, Serialize,
    de::{Error as _, MapAccess, Visitor},
};

use super::{
    entry::{Entry, Hash, NONCE_LEN, Sealed, SealedEntry},
    merkle::{self, Frontier},
    note::Checkpoint,
    state::{LogState, Rules},
    verify::{ChainVerifier, Problem, ProblemKind},
};
use crate::clock::Timestamp;

/// Longest export line accepted (an entry is at most 1 MiB, hex and JSON
/// escaping can double it).
pub const MAX_LINE_BYTES: usize = 4 << 20;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    seq: u64,
    time: String,
    timestamp_ms: i64,
    actor: String,
    tenant: String,
    kind: String,
    #[serde(deserialize_with = "unique_details")]
    details: BTreeMap<String, String>,
    prev_hash: String,
    hash: String,
    #[serde(default)]
    inclusion: Option<Vec<String>>,
    #[serde(default)]
    sealed: Option<SealedLine>,
    #[serde(default, deserialize_with = "unique_opened")]
    opened: Option<BTreeMap<String, String>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SealedLine {
    nonce: String,
    ciphertext: String,
}

fn unique_opened<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    unique_details(d).map(Some)
}

/// `details` with each key once: a repeated key is refused, not resolved
/// (serde keeps the last, another reader may keep the first), so every
/// reader of a line sees the entry that was hashed.
fn unique_details<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    struct Unique;
    impl<'de> Visitor<'de> for Unique {
        type Value = BTreeMap<String, String>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object of strings")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut details = BTreeMap::new();
            while let Some((k, v)) = map.next_entry::<String, String>()? {
                if details.contains_key(&k) {
                    return Err(A::Error::custom(format_args!(
                        "details key {k:?} appears twice"
                    )));
                }
                details.insert(k, v);
            }
            Ok(details)
        }
    }
    d.deserialize_map(Unique)
}

/// The JSON object for one entry, as written to an export.
///
/// A sealed entry (format version 2) adds `sealed` (`nonce` and
/// `ciphertext`, hex; hashed) and, when it was read with its tenant's key,
/// `opened`: the sealed details in the clear. `opened` is NOT covered by
/// the hash; `audit verify --tenant-key` checks it against the ciphertext.
pub fn to_json(e: &SealedEntry) -> serde_json::Value {
    let entry = &e.entry;
    let plain: BTreeMap<&String, &String> = entry.plain_details().collect();
    let mut v = serde_json::json!({
        "seq": entry.seq,
        "time": entry.timestamp.to_rfc3339(),
        "timestamp_ms": entry.timestamp.millis(),
        "actor": entry.actor,
        "tenant": entry.tenant,
        "kind": entry.kind,
        "details": plain,
        "prev_hash": hex::encode(entry.prev_hash),
        "hash": hex::encode(e.hash),
    });
    if let Some(s) = &entry.sealed {
        v["sealed"] = serde_json::json!({
            "nonce": hex::encode(s.nonce),
            "ciphertext": hex::encode(&s.ciphertext),
        });
        if !s.opened.is_empty() {
            let opened: BTreeMap<&String, &String> = entry
                .details
                .iter()
                .filter(|(k, _)| s.opened.contains(*k))
                .collect();
            v["opened"] = serde_json::json!(opened);
        }
    }
    v
}

pub fn write_line(w: &mut impl Write, e: &SealedEntry) -> io::Result<()> {
    serde_json::to_writer(&mut *w, &to_json(e))?;
    w.write_all(b"\n")
}

/// Writes an entry with its inclusion proof (a tenant-scoped export).
pub fn write_proven_line(w: &mut impl Write, e: &SealedEntry, proof: &[Hash]) -> io::Result<()> {
    let mut v = to_json(e);
    v["inclusion"] = proof.iter().map(hex::encode).collect();
    serde_json::to_writer(&mut *w, &v)?;
    w.write_all(b"\n")
}

/// Parses one export line. The stated `hash` is kept as stated, so the
/// verifier can tell a modified entry from a well-formed one.
pub fn parse_line(line: &str) -> Result<SealedEntry, String> {
    parse_proven_line(line).map(|(e, _)| e)
}

/// Parses one export line and its inclusion proof, if it has one.
pub fn parse_proven_line(line: &str) -> Result<(SealedEntry, Option<Vec<Hash>>), String> {
    let l: Line = serde_json::from_str(line).map_err(|e| format!("not a log entry: {e}"))?;
    let inclusion = match &l.inclusion {
        None => None,
        Some(hs) => Some(
            hs.iter()
                .map(|h| parse_hash(h, "inclusion"))
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let mut details = l.details;
    let sealed = match l.sealed {
        None if l.opened.is_some() => return Err("opened without sealed".into()),
        None => None,
        Some(s) => {
            let mut nonce = [0u8; NONCE_LEN];
            lower_hex(&s.nonce)
                .and_then(|_| hex::decode_to_slice(&s.nonce, &mut nonce).ok())
                .ok_or_else(|| "sealed.nonce: 24 lowercase hex digits".to_owned())?;
            let ciphertext = lower_hex(&s.ciphertext)
                .and_then(|_| hex::decode(&s.ciphertext).ok())
                .ok_or_else(|| "sealed.ciphertext: lowercase hex".to_owned())?;
            let mut opened = std::collections::BTreeSet::new();
            for (k, v) in l.opened.unwrap_or_default() {
                if details.contains_key(&k) {
                    return Err(format!("detail {k} is both plain and opened"));
                }
                opened.insert(k.clone());
                details.insert(k, v);
            }
            Some(Sealed {
                nonce,
                ciphertext,
                opened,
            })
        }
    };
    let entry = Entry {
        seq: l.seq,
        timestamp: Timestamp(l.timestamp_ms),
        actor: l.actor,
        tenant: l.tenant,
        kind: l.kind,
        details,
        sealed,
        prev_hash: parse_hash(&l.prev_hash, "prev_hash")?,
    };
    let hash = parse_hash(&l.hash, "hash")?;
    let mut sealed = SealedEntry { entry, hash };
    if l.time != sealed.entry.timestamp.to_rfc3339() {
        // The readable time is not hashed; a mismatch means someone edited it.
        sealed.hash = [0; 32];
    }
    Ok((sealed, inclusion))
}

fn parse_hash(s: &str, field: &str) -> Result<Hash, String> {
    let bytes = lower_hex(s)
        .and_then(|_| hex::decode(s).ok())
        .ok_or_else(|| format!("{field} is not lowercase hex"))?;
    bytes
        .try_into()
        .map_err(|_| format!("{field} is not 32 bytes"))
}

/// The format's hex is lowercase only (one spelling per value, as the
/// reference verifier insists too); `None` for any other character.
fn lower_hex(s: &str) -> Option<()> {
    s.bytes()
        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        .then_some(())
}

/// Outcome of a successful verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    pub entries: u64,
    pub first_seq: Option<u64>,
    pub head: Hash,
}

/// Verifies an export read from `r`, streaming. The first problem found is
/// returned with its line number (1-based).
pub fn verify(r: impl BufRead) -> Result<Summary, (usize, Problem)> {
    let mut lines = Lines::new(r);
    let mut verifier = ChainVerifier::new();
    let mut first_seq = None;
    let with_seq = |(line, mut p): (usize, Problem), seq: u64| {
        p.seq = seq;
        (line, p)
    };
    let mut current = lines.next_entry().map_err(|e| with_seq(e, 0))?;
    while let Some((lineno, entry)) = current {
        // An unreadable next line must not hide a problem in this entry.
        let next = lines.next_entry();
        first_seq.get_or_insert(entry.entry.seq);
        let lookahead = next.as_ref().ok().and_then(|n| n.as_ref().map(|(_, e)| e));
        verifier.push(&entry, lookahead).map_err(|p| (lineno, p))?;
        current = next.map_err(|e| with_seq(e, verifier.expected_seq()))?;
    }
    Ok(Summary {
        entries: verifier.checked(),
        first_seq,
        head: verifier.head(),
    })
}

/// What [`open_sealed`] found: sealed entries, and how many of them showed
/// their details in `opened` (each checked against the ciphertext).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opened {
    pub sealed: u64,
    pub shown: u64,
}

/// Opens every sealed entry of an export with a tenant's key (the one its
/// termination export carries): each must open, and details an `opened`
/// member shows must be exactly what the ciphertext holds. Returns the
/// 1-based line and what is wrong otherwise.
pub fn open_sealed(
    r: impl BufRead,
    key: &super::seal::KeyBytes,
) -> Result<Opened, (usize, String)> {
    let mut out = Opened {
        sealed: 0,
        shown: 0,
    };
    for (i, line) in r.lines().enumerate() {
        let lineno = i + 1;
        let line = line.map_err(|e| (lineno, format!("unreadable: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let mut e = parse_line(&line).map_err(|why| (lineno, why))?.entry;
        let Some(s) = e.sealed.as_mut() else {
            continue;
        };
        out.sealed += 1;
        let claimed: BTreeMap<String, String> = std::mem::take(&mut s.opened)
            .into_iter()
            .filter_map(|k| e.details.remove_entry(&k))
            .collect();
        super::seal::open_entry_with(key, &mut e).map_err(|why| (lineno, why))?;
        if !claimed.is_empty() {
            out.shown += 1;
            let opened: BTreeMap<String, String> = e
                .details
                .iter()
                .filter(|(k, _)| e.sealed.as_ref().is_some_and(|s| s.opened.contains(*k)))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if opened != claimed {
                return Err((
                    lineno,
                    format!(
                        "entry {}: its opened details are not what its ciphertext holds",
                        e.seq
                    ),
                ));
            }
        }
    }
    Ok(out)
}

/// Replays the log's semantics ([`super::state`]) over an export whose
/// chain has been verified: every entry must agree with the entries before
/// it. Only an export from seq 0 has the history to judge it by; for one
/// from a later seq (or a tenant's slice) this returns `Ok(None)`.
pub fn check_semantics(r: impl BufRead) -> Result<Option<u64>, (usize, Problem)> {
    let mut lines = Lines::new(r);
    let mut state = LogState::new(Rules::default());
    let mut replayed = 0;
    while let Some(item) = lines.next_item()? {
        if replayed == 0 && (item.entry.entry.seq != 0 || item.inclusion.is_some()) {
            return Ok(None);
        }
        state.apply(&item.entry.entry).map_err(|c| {
            (
                item.lineno,
                Problem {
                    seq: c.seq,
                    kind: ProblemKind::Contradicted,
                    detail: c.why,
                },
            )
        })?;
        replayed += 1;
    }
    Ok(Some(replayed))
}

/// One export line, read.
#[derive(Clone, Debug)]
pub struct Item {
    pub lineno: usize,
    pub entry: SealedEntry,
    pub inclusion: Option<Vec<Hash>>,
}

/// What verifying an export against a signed checkpoint established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeSummary {
    /// Entries read.
    pub entries: u64,
    /// True for a tenant-scoped export (entries with inclusion proofs).
    pub proven: bool,
    /// The checkpoint's tree size.
    pub tree_size: u64,
    /// Entries after the checkpoint (chain-checked only).
    pub beyond: u64,
}

/// Verifies an export against a checkpoint whose signature the caller has
/// already checked, streaming:
///
/// * a full export (from seq 0, no line with `inclusion`): the chain as in
///   [`verify`], and the RFC 6962 root of its first `cp.size` entries must
///   be the checkpoint's root;
/// * a tenant-scoped export (`inclusion` on every line): each entry's own
///   hash, strictly increasing sequence numbers, and each inclusion proof
///   against the checkpoint's root.
///
/// The first line decides which; a later line that differs is malformed.
pub fn verify_against(r: impl BufRead, cp: &Checkpoint) -> Result<TreeSummary, (usize, Problem)> {
    let mut lines = Lines::new(r);
    let first = lines.next_item()?;
    match first {
        Some(item) if item.inclusion.is_some() => verify_proven(lines, item, cp),
        first => verify_full(lines, first, cp),
    }
}

fn verify_full<R: BufRead>(
    mut lines: Lines<R>,
    first: Option<Item>,
    cp: &Checkpoint,
) -> Result<TreeSummary, (usize, Problem)> {
    let mut verifier = ChainVerifier::new();
    let mut frontier = Frontier::new();
    let mut beyond = 0;
    let mut lineno = 0;
    let mut current = first;
    while let Some(Item {
        lineno: n,
        entry,
        inclusion,
    }) = current
    {
        lineno = n;
        if inclusion.is_some() {
            // A proven line must not lend its proof to the lines around it.
            return Err((
                n,
                Problem {
                    seq: entry.entry.seq,
                    kind: ProblemKind::Malformed,
                    detail: "this line has an inclusion proof but the export's first line does \
                             not: an export is either full or tenant-scoped"
                        .into(),
                },
            ));
        }
        let next = lines.next_item();
        let lookahead = next
            .as_ref()
            .ok()
            .and_then(|n| n.as_ref().map(|i| &i.entry));
        verifier.push(&entry, lookahead).map_err(|p| (n, p))?;
        if entry.entry.seq < cp.size {
            frontier.push(merkle::leaf_hash(&entry.entry.encode()));
        } else {
            beyond += 1;
        }
        current = next.map_err(|(l, mut p)| {
            p.seq = verifier.expected_seq();
            (l, p)
        })?;
    }
    if frontier.size() < cp.size {
        return Err((
            lineno + 1,
            Problem {
                seq: frontier.size(),
                kind: ProblemKind::Deleted,
                detail: format!(
                    "the export ends at seq {} but the checkpoint covers {} entries",
                    frontier.size(),
                    cp.size
                ),
            },
        ));
    }
    if frontier.root() != cp.root {
        return Err((
            lineno,
            Problem {
                seq: 0,
                kind: ProblemKind::Unproven,
                detail: format!(
                    "the first {} entries do not hash to the checkpoint's root: this is not \
                     the log the checkpoint signed",
                    cp.size
                ),
            },
        ));
    }
    Ok(TreeSummary {
        entries: verifier.checked(),
        proven: false,
        tree_size: cp.size,
        beyond,
    })
}

fn verify_proven<R: BufRead>(
    mut lines: Lines<R>,
    first: Item,
    cp: &Checkpoint,
) -> Result<TreeSummary, (usize, Problem)> {
    let mut entries = 0u64;
    let mut last_seq: Option<u64> = None;
    let mut current = Some(first);
    while let Some(item) = current {
        let (n, e) = (item.lineno, &item.entry);
        let seq = e.entry.seq;
        let problem = |kind, detail: String| (n, Problem { seq, kind, detail });
        let Some(proof) = &item.inclusion else {
            return Err(problem(
                ProblemKind::Malformed,
                "this line has no inclusion proof but the export's first line does".into(),
            ));
        };
        if last_seq.is_some_and(|l| seq <= l) {
            return Err(problem(
                ProblemKind::Reordered,
                format!(
                    "seq {seq} follows seq {}: entries must ascend",
                    last_seq.unwrap_or_default()
                ),
            ));
        }
        if e.entry.hash() != e.hash {
            return Err(problem(
                ProblemKind::Modified,
                "the entry's content does not match its hash".into(),
            ));
        }
        if seq >= cp.size {
            return Err(problem(
                ProblemKind::Unproven,
                format!("seq {seq} is beyond the checkpoint's {} entries", cp.size),
            ));
        }
        let leaf = merkle::leaf_hash(&e.entry.encode());
        if let Err(why) = merkle::verify_inclusion(&leaf, seq, cp.size, proof, &cp.root) {
            return Err(problem(
                ProblemKind::Unproven,
                format!("its inclusion proof fails ({why}): the log did not sign this entry"),
            ));
        }
        entries += 1;
        last_seq = Some(seq);
        current = lines.next_item()?;
    }
    Ok(TreeSummary {
        entries,
        proven: true,
        tree_size: cp.size,
        beyond: 0,
    })
}

/// Reads entries from an export one line at a time, skipping blank lines.
pub struct Lines<R> {
    reader: R,
    lineno: usize,
    buf: String,
}

impl<R: BufRead> Lines<R> {
    pub fn new(reader: R) -> Self {
        Lines {
            reader,
            lineno: 0,
            buf: String::new(),
        }
    }

    pub fn next_entry(&mut self) -> Result<Option<(usize, SealedEntry)>, (usize, Problem)> {
        Ok(self.next_item()?.map(|i| (i.lineno, i.entry)))
    }

    /// The next entry with its inclusion proof, if the line has one.
    pub fn next_item(&mut self) -> Result<Option<Item>, (usize, Problem)> {
        loop {
            self.buf.clear();
            self.lineno += 1;
            let malformed = |lineno: usize, detail: String| {
                (
                    lineno,
                    Problem {
                        seq: 0,
                        kind: ProblemKind::Malformed,
                        detail: format!("line {lineno}: {detail}"),
                    },
                )
            };
            let n = io::Read::take(&mut self.reader, MAX_LINE_BYTES as u64 + 1)
                .read_line(&mut self.buf)
                .map_err(|e| malformed(self.lineno, format!("cannot read: {e}")))?;
            if n == 0 {
                return Ok(None);
            }
            if n > MAX_LINE_BYTES {
                return Err(malformed(self.lineno, "line is longer than 4 MiB".into()));
            }
            let line = self.buf.trim();
            if line.is_empty() {
                continue;
            }
            return parse_proven_line(line)
                .map(|(entry, inclusion)| {
                    Some(Item {
                        lineno: self.lineno,
                        entry,
                        inclusion,
                    })
                })
                .map_err(|d| malformed(self.lineno, d));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::entry::tests::example;

    #[test]
    fn line_round_trip() {
        let e = example().seal();
        let mut out = Vec::new();
        write_line(&mut out, &e).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(parse_line(text.trim()).unwrap(), e);
    }

    #[test]
    fn a_bad_line_names_the_expected_seq_and_does_not_hide_an_earlier_problem() {
        let mut prev = crate::audit::entry::GENESIS_PREV_HASH;
        let mut lines = Vec::new();
        for seq in 0..4u64 {
            let mut e = example();
            e.seq = seq;
            e.prev_hash = prev;
            let s = e.seal();
            prev = s.hash;
            lines.push(to_json(&s).to_string());
        }
        let garbage = format!("{}\n{}\nnot json\n", lines[0], lines[1]);
        let (line, p) = verify(garbage.as_bytes()).unwrap_err();
        assert_eq!((line, p.seq, p.kind), (3, 2, ProblemKind::Malformed));
        let modified = format!(
            "{}\n{}\nnot json\n",
            lines[0],
            lines[1].replace("acme", "acmf")
        );
        let (line, p) = verify(modified.as_bytes()).unwrap_err();
        assert_eq!((line, p.seq, p.kind), (2, 1, ProblemKind::Modified));
    }

    #[test]
    fn a_full_export_with_a_proven_line_is_refused() {
        let mut prev = crate::audit::entry::GENESIS_PREV_HASH;
        let mut frontier = Frontier::new();
        let mut lines = Vec::new();
        for seq in 0..2u64 {
            let mut e = example();
            e.seq = seq;
            e.prev_hash = prev;
            let s = e.seal();
            prev = s.hash;
            frontier.push(merkle::leaf_hash(&s.entry.encode()));
            lines.push(to_json(&s));
        }
        let cp = Checkpoint {
            origin: "example.daypass/log".into(),
            size: 2,
            root: frontier.root(),
        };
        let text = |lines: &[serde_json::Value]| {
            lines.iter().map(|l| format!("{l}\n")).collect::<String>()
        };
        assert!(verify_against(text(&lines).as_bytes(), &cp).is_ok());
        lines[1]["inclusion"] = serde_json::json!([]);
        let (line, p) = verify_against(text(&lines).as_bytes(), &cp).unwrap_err();
        assert_eq!((line, p.seq, p.kind), (2, 1, ProblemKind::Malformed));
    }

    #[test]
    fn a_member_or_detail_given_twice_is_refused() {
        let line = to_json(&example().seal()).to_string();
        assert!(parse_line(&line).is_ok());
        let twice = line.replacen("\"kind\":", "\"kind\":\"x\",\"kind\":", 1);
        assert!(parse_line(&twice).unwrap_err().contains("duplicate field"));
        let twice = line.replacen("\"grant\":", "\"grant\":\"g-x\",\"grant\":", 1);
        assert!(parse_line(&twice).unwrap_err().contains("appears twice"));
    }

    #[test]
    fn hex_is_lowercase_only() {
        let e = example().seal();
        let line = to_json(&e).to_string();
        assert!(parse_line(&line).is_ok());
        let hash = hex::encode(e.hash);
        let upper = line.replace(&hash, &hash.to_uppercase());
        assert_ne!(upper, line, "the example's hash has letters");
        assert!(parse_line(&upper).unwrap_err().contains("lowercase hex"));
        assert!(lower_hex("0123456789abcdef").is_some());
        for bad in ["A", "0x", " 0", "g"] {
            assert!(lower_hex(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn edited_readable_time_counts_as_modified() {
        let e = example().seal();
        let line = to_json(&e)
            .to_string()
            .replace("2025-11-25T10:00:00.000Z", "2025-11-25T11:00:00.000Z");
        let parsed = parse_line(&line).unwrap();
        assert_ne!(parsed.hash, parsed.entry.hash());
    }
}
