//! Properties of the log's formats over random inputs (proptest): the entry
//! encoding round-trips and is the only encoding accepted; the export line
//! round-trips; a random chain verifies, and any single changed entry,
//! dropped entry or swapped pair is found at the right place; any single
//! flipped bit in an entry's bytes changes its hash or is refused.

use std::collections::BTreeMap;

use daypass::{
    audit::{
        Entry, SealedEntry,
        entry::GENESIS_PREV_HASH,
        export,
        verify::{ChainVerifier, ProblemKind},
    },
    clock::Timestamp,
};
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    // Any Unicode, including control characters and empty strings.
    proptest::string::string_regex("(?s).{0,40}").expect("regex")
}

fn entry() -> impl Strategy<Value = Entry> {
    (
        any::<u64>(),
        any::<i64>(),
        text(),
        text(),
        text(),
        proptest::collection::btree_map(text(), text(), 0..6),
        any::<[u8; 32]>(),
    )
        .prop_map(|(seq, ts, actor, tenant, kind, details, prev_hash)| Entry {
            seq,
            timestamp: Timestamp(ts),
            actor,
            tenant,
            kind,
            details,
            sealed: None,
            prev_hash,
        })
}

/// A valid chain of `n` random entries with realistic timestamps.
fn chain(n: usize) -> impl Strategy<Value = Vec<SealedEntry>> {
    proptest::collection::vec(
        (
            text(),
            text(),
            proptest::collection::btree_map(text(), text(), 0..4),
        ),
        n,
    )
    .prop_map(|rows| {
        let mut prev = GENESIS_PREV_HASH;
        rows.into_iter()
            .enumerate()
            .map(|(i, (actor, kind, details))| {
                let s = Entry {
                    seq: i as u64,
                    timestamp: Timestamp(1_764_064_800_000 + i as i64),
                    actor,
                    tenant: "acme".into(),
                    kind,
                    details,
                    sealed: None,
                    prev_hash: prev,
                }
                .seal();
                prev = s.hash;
                s
            })
            .collect()
    })
}

fn verify(entries: &[SealedEntry]) -> Result<u64, daypass::audit::Problem> {
    let mut v = ChainVerifier::new();
    for (i, e) in entries.iter().enumerate() {
        v.push(e, entries.get(i + 1))?;
    }
    Ok(v.checked())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 128,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn entries_round_trip_and_have_one_encoding(e in entry()) {
        let bytes = e.encode();
        prop_assert_eq!(Entry::decode(&bytes).expect("decodes"), e.clone());
        // Truncated or extended input is refused, never misread.
        prop_assert!(Entry::decode(&bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        prop_assert!(Entry::decode(&longer).is_err());
    }

    #[test]
    fn a_flipped_bit_changes_the_hash_or_is_refused(e in entry(), bit in any::<prop::sample::Index>()) {
        let bytes = e.encode();
        let i = bit.index(bytes.len() * 8);
        let mut flipped = bytes.clone();
        flipped[i / 8] ^= 1 << (i % 8);
        match Entry::decode(&flipped) {
            Err(_) => {}
            Ok(other) => {
                prop_assert_ne!(other.hash(), e.hash());
                prop_assert_ne!(other, e);
            }
        }
    }

    #[test]
    fn export_lines_round_trip(e in entry()) {
        let sealed = e.seal();
        let mut out = Vec::new();
        export::write_line(&mut out, &sealed).expect("write");
        let line = String::from_utf8(out).expect("UTF-8");
        prop_assert_eq!(export::parse_line(line.trim_end()).expect("parse"), sealed);
    }

    #[test]
    fn chains_verify_and_tampering_is_found_where_it_is(
        entries in chain(12),
        at in 1usize..11,
        actor in text(),
    ) {
        prop_assert_eq!(verify(&entries).expect("a valid chain"), 12);

        let mut modified = entries.clone();
        prop_assume!(modified[at].entry.actor != actor);
        modified[at].entry.actor = actor;
        let p = verify(&modified).expect_err("modified");
        prop_assert_eq!((p.seq, p.kind), (at as u64, ProblemKind::Modified));

        let mut deleted = entries.clone();
        deleted.remove(at);
        let p = verify(&deleted).expect_err("deleted");
        prop_assert_eq!((p.seq, p.kind), (at as u64, ProblemKind::Deleted));

        let mut swapped = entries.clone();
        swapped.swap(at, at + 1);
        let p = verify(&swapped).expect_err("swapped");
        prop_assert_eq!((p.seq, p.kind), (at as u64, ProblemKind::Reordered));
    }
}

#[test]
fn detail_maps_are_canonical() {
    // The same details in any insertion order encode identically.
    let mut a = BTreeMap::new();
    a.insert("b".to_owned(), "2".to_owned());
    a.insert("a".to_owned(), "1".to_owned());
    let mut b = BTreeMap::new();
    b.insert("a".to_owned(), "1".to_owned());
    b.insert("b".to_owned(), "2".to_owned());
    let e = |details| Entry {
        seq: 1,
        timestamp: Timestamp(0),
        actor: String::new(),
        tenant: String::new(),
        kind: String::new(),
        details,
        sealed: None,
        prev_hash: [0; 32],
    };
    assert_eq!(e(a).encode(), e(b).encode());
}
