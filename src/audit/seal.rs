//! Opening a sealed entry (format version 2) offline, with a tenant's key:
//! what `audit verify --tenant-key` and the tenant who received its export
//! at termination do. Sealing, and where the keys live, is
//! [`crate::ledger::keys`]; the format is docs/log-format.md §2.1.
//!
//! AES-256-GCM; the nonce is the entry's; the AAD is `entry ‖ seq:u64be ‖
//! tenant`; the plaintext is the sealed details, `n:u32be (key:str
//! value:str) * n` ([`super::entry::encode_details`]).

use std::collections::{BTreeMap, BTreeSet};

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use super::{
    Entry,
    entry::{Sealed, decode_details, encode_details},
};
use crate::domain::detail;

/// Length of a tenant key.
pub const KEY_LEN: usize = 32;

/// A tenant's key, as the termination export hands it over.
pub type KeyBytes = [u8; KEY_LEN];

/// Opens an entry's sealed part with a key (a tenant's, from its export):
/// fails if the key is not the one it was sealed with or the bytes were
/// changed.
pub fn open_entry_with(key: &KeyBytes, e: &mut Entry) -> Result<(), String> {
    open_with(&less_safe(key), e)
}

pub(crate) fn open_with(key: &LessSafeKey, e: &mut Entry) -> Result<(), String> {
    let aad = entry_aad(e);
    let Some(s) = e.sealed.as_mut() else {
        return Ok(());
    };
    let mut buf = s.ciphertext.clone();
    let plain = key
        .open_in_place(
            Nonce::assume_unique_for_key(s.nonce),
            Aad::from(aad),
            &mut buf,
        )
        .map_err(|_| format!("entry {} does not open with this key", e.seq))?;
    let opened = decode_details(plain)
        .map_err(|why| format!("entry {}: its sealed details are malformed: {why}", e.seq))?;
    s.opened = opened.keys().cloned().collect::<BTreeSet<_>>();
    for (k, v) in opened {
        if e.details.contains_key(&k) {
            return Err(format!(
                "entry {}: detail {k} is both plain and sealed",
                e.seq
            ));
        }
        e.details.insert(k, v);
    }
    Ok(())
}

pub(crate) fn entry_aad(e: &Entry) -> Vec<u8> {
    let mut aad = b"entry".to_vec();
    aad.extend_from_slice(&e.seq.to_be_bytes());
    aad.extend_from_slice(e.tenant.as_bytes());
    aad
}

/// Parses a key file: 64 hex digits.
pub fn parse_key(b: &[u8]) -> std::io::Result<KeyBytes> {
    let text = std::str::from_utf8(b).unwrap_or("").trim();
    let mut key = [0u8; KEY_LEN];
    hex::decode_to_slice(text, &mut key).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "a tenant key is 64 hex digits",
        )
    })?;
    Ok(key)
}

pub(crate) fn less_safe(key: &KeyBytes) -> LessSafeKey {
    #[allow(clippy::expect_used)]
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte AES-256 key"))
}

/// Seals the personal details ([`detail::PERSONAL`]) of an entry (its seq
/// and tenant set) with `key` and `nonce`, which must never be used twice
/// with the same key ([`crate::ledger::keys`] draws it at random). The
/// entry keeps showing them ([`Sealed::opened`]).
pub(crate) fn seal_with(
    key: &LessSafeKey,
    nonce: [u8; NONCE_LEN],
    e: &mut Entry,
) -> Result<(), ring::error::Unspecified> {
    let personal: BTreeMap<&String, &String> = e
        .details
        .iter()
        .filter(|(k, _)| detail::is_personal(k))
        .collect();
    let mut ciphertext = encode_details(personal.iter().map(|(k, v)| (*k, *v)));
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(entry_aad(e)),
        &mut ciphertext,
    )?;
    let opened = personal.keys().map(|k| (*k).clone()).collect();
    e.sealed = Some(Sealed {
        nonce,
        ciphertext,
        opened,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::audit::entry::tests::example;

    /// The worked example of docs/log-format.md §2.1: the §2 entry sealed
    /// with key 42×32 and nonce 07×12.
    #[test]
    fn worked_example_matches_the_doc() {
        let key = [0x42; KEY_LEN];
        let mut e = example();
        seal_with(&less_safe(&key), [0x07; NONCE_LEN], &mut e).unwrap();
        let s = e.sealed.clone().unwrap();
        let plaintext = encode_details(
            [("reason".to_string(), "INC-42 login fails".to_string())]
                .iter()
                .map(|(k, v)| (k, v)),
        );
        let bytes = e.encode();
        let doc = include_str!("../../docs/log-format.md");
        let mut lines = Vec::new();
        for line in [
            ("plaintext", hex::encode(&plaintext)),
            ("aad", hex::encode(entry_aad(&e))),
            ("ciphertext", hex::encode(&s.ciphertext)),
            ("entry_bytes", hex::encode(&bytes)),
            ("hash", hex::encode(e.hash())),
        ]
        .map(|(what, value)| format!("{what:<12}{value}"))
        {
            lines.push(line);
        }
        assert!(
            lines.iter().all(|l| doc.contains(l.as_str())),
            "docs/log-format.md §2.1 should hold:\n{}",
            lines.join("\n")
        );
        // And it opens again.
        let mut read = Entry::decode(&bytes).unwrap();
        open_entry_with(&key, &mut read).unwrap();
        assert_eq!(read.details, example().details);
    }
}
