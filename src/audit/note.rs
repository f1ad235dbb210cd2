//! Signed checkpoints: the C2SP `signed-note` format with Ed25519
//! signatures, carrying a C2SP `tlog-checkpoint` body.
//!
//! ```text
//! note      = text "\n" sig-line+          text ends in "\n", no blank line inside
//! sig-line  = "— " key-name " " base64(key-id[4] ‖ signature[64]) "\n"
//! key-id    = SHA-256(key-name ‖ "\n" ‖ 0x01 ‖ public-key[32])[0..4]
//! vkey      = key-name "+" hex(key-id) "+" base64(0x01 ‖ public-key)
//! skey      = "PRIVATE+KEY+" key-name "+" hex(key-id) "+" base64(0x01 ‖ seed[32])
//! checkpoint text = origin "\n" decimal(tree-size) "\n" base64(root-hash) "\n"
//! ```
//!
//! The key and verifier-key encodings are those of the reference
//! implementation (golang.org/x/mod/sumdb/note), so its tools and every
//! other tlog client can check our checkpoints. The log's key name is its
//! checkpoint origin.

use std::fmt;

use base64::{Engine, engine::general_purpose::STANDARD as B64};
use ring::{
    digest::{Context, SHA256},
    signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey},
};
use thiserror::Error;

use super::Hash;

/// The signature-type byte for Ed25519 in key encodings and key ids.
const ALG_ED25519: u8 = 0x01;
const SIG_PREFIX: &str = "\u{2014} ";
/// A note bigger than this is refused before any parsing.
pub const MAX_NOTE_BYTES: usize = 64 * 1024;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum NoteError {
    #[error("malformed key: {0}")]
    Key(&'static str),
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    #[error("the note carries no valid signature by {0}")]
    Unverified(String),
    #[error("malformed checkpoint: {0}")]
    Checkpoint(&'static str),
}

fn key_id(name: &str, public: &[u8]) -> [u8; 4] {
    let mut c = Context::new(&SHA256);
    c.update(name.as_bytes());
    c.update(b"\n");
    c.update(&[ALG_ED25519]);
    c.update(public);
    let mut id = [0u8; 4];
    id.copy_from_slice(&c.finish().as_ref()[..4]);
    id
}

/// A key name must be non-empty with no space, `+` or control character.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c == '+' || c.is_whitespace() || c.is_control())
}

/// Splits `name+hexid+base64` and checks the id against the key.
fn parse_key(s: &str) -> Result<(String, [u8; 4], Vec<u8>), NoteError> {
    let mut parts = s.splitn(3, '+');
    let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(NoteError::Key("expected name+keyid+key"));
    };
    if !valid_name(name) {
        return Err(NoteError::Key("bad key name"));
    }
    let id: [u8; 4] = hex::decode(id_hex)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or(NoteError::Key("key id is not 8 hex digits"))?;
    let key = B64
        .decode(key_b64)
        .map_err(|_| NoteError::Key("key is not base64"))?;
    match key.split_first() {
        Some((&ALG_ED25519, rest)) if rest.len() == 32 => Ok((name.to_owned(), id, rest.to_vec())),
        Some((&ALG_ED25519, _)) => Err(NoteError::Key("Ed25519 key is not 32 bytes")),
        _ => Err(NoteError::Key("not an Ed25519 key")),
    }
}

/// The log's signing key.
pub struct LogKey {
    name: String,
    seed: [u8; 32],
    pair: Ed25519KeyPair,
    id: [u8; 4],
}

impl fmt::Debug for LogKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the seed.
        f.debug_struct("LogKey")
            .field("name", &self.name)
            .field("id", &hex::encode(self.id))
            .finish_non_exhaustive()
    }
}

impl LogKey {
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<LogKey, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::Key("bad key name"));
        }
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed)
            .map_err(|_| NoteError::Key("bad Ed25519 seed"))?;
        let id = key_id(name, pair.public_key().as_ref());
        Ok(LogKey {
            name: name.to_owned(),
            seed,
            pair,
            id,
        })
    }

    pub fn generate(name: &str) -> Result<LogKey, NoteError> {
        let mut seed = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed)
            .map_err(|_| NoteError::Key("no randomness"))?;
        LogKey::from_seed(name, seed)
    }

    /// Parses `PRIVATE+KEY+name+keyid+base64(0x01 ‖ seed)`.
    pub fn parse(skey: &str) -> Result<LogKey, NoteError> {
        let rest = skey
            .trim()
            .strip_prefix("PRIVATE+KEY+")
            .ok_or(NoteError::Key("a private key starts with PRIVATE+KEY+"))?;
        let (name, id, seed) = parse_key(rest)?;
        let seed: [u8; 32] = seed
            .try_into()
            .map_err(|_| NoteError::Key("seed is not 32 bytes"))?;
        let key = LogKey::from_seed(&name, seed)?;
        if key.id != id {
            return Err(NoteError::Key("key id does not match the key"));
        }
        Ok(key)
    }

    /// The private key encoding (a secret: write it with mode 0600).
    pub fn to_private(&self) -> String {
        let mut k = vec![ALG_ED25519];
        k.extend_from_slice(&self.seed);
        format!(
            "PRIVATE+KEY+{}+{}+{}",
            self.name,
            hex::encode(self.id),
            B64.encode(k)
        )
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn verifier(&self) -> NoteVerifier {
        let mut public = [0u8; 32];
        public.copy_from_slice(self.pair.public_key().as_ref());
        NoteVerifier {
            name: self.name.clone(),
            id: self.id,
            public,
        }
    }

    /// Signs `text` (which must end in a newline and hold no blank line)
    /// into a note with one signature line.
    pub fn sign(&self, text: &str) -> Result<String, NoteError> {
        sign_all(&[self], text)
    }

    /// `— name base64(id ‖ signature)\n` over `text`.
    fn signature_line(&self, text: &str) -> String {
        let sig = self.pair.sign(text.as_bytes());
        let mut blob = self.id.to_vec();
        blob.extend_from_slice(sig.as_ref());
        format!("{SIG_PREFIX}{} {}\n", self.name, B64.encode(blob))
    }
}

/// Signs `text` into a note with one signature line per key, in the order
/// given (a signed note may carry several: C2SP signed-note). A log whose
/// key is being rotated signs with the old and the new key.
pub fn sign_all(keys: &[&LogKey], text: &str) -> Result<String, NoteError> {
    check_text(text)?;
    if keys.is_empty() {
        return Err(NoteError::Key("no key to sign with"));
    }
    let mut note = format!("{text}\n");
    for k in keys {
        note.push_str(&k.signature_line(text));
    }
    Ok(note)
}

fn check_text(text: &str) -> Result<(), NoteError> {
    if !text.ends_with('\n') {
        return Err(NoteError::Malformed("text must end in a newline"));
    }
    if text.contains("\n\n") {
        return Err(NoteError::Malformed("text must not contain a blank line"));
    }
    Ok(())
}

/// A verifier key: the public half, with its name and id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    id: [u8; 4],
    public: [u8; 32],
}

impl NoteVerifier {
    /// Parses `name+keyid+base64(0x01 ‖ public-key)`.
    pub fn parse(vkey: &str) -> Result<NoteVerifier, NoteError> {
        let (name, id, public) = parse_key(vkey.trim())?;
        if key_id(&name, &public) != id {
            return Err(NoteError::Key("key id does not match the key"));
        }
        let mut p = [0u8; 32];
        p.copy_from_slice(&public);
        Ok(NoteVerifier {
            name,
            id,
            public: p,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_id(&self) -> [u8; 4] {
        self.id
    }

    /// Checks a note and returns its text. At least one signature line
    /// must be ours and valid; lines by other keys are ignored (they may be
    /// witnesses' cosignatures), but every line must be well-formed.
    pub fn open<'n>(&self, note: &'n str) -> Result<&'n str, NoteError> {
        if note.len() > MAX_NOTE_BYTES {
            return Err(NoteError::Malformed("note is too large"));
        }
        let split = note
            .rfind("\n\n")
            .ok_or(NoteError::Malformed("no blank line before the signatures"))?;
        let (text, sigs) = (&note[..=split], &note[split + 2..]);
        check_text(text)?;
        if sigs.is_empty() || !sigs.ends_with('\n') {
            return Err(NoteError::Malformed(
                "signature lines must end in a newline",
            ));
        }
        let mut verified = false;
        for line in sigs[..sigs.len() - 1].split('\n') {
            let rest = line.strip_prefix(SIG_PREFIX).ok_or(NoteError::Malformed(
                "a signature line starts with an em dash",
            ))?;
            let (name, b64) = rest
                .split_once(' ')
                .ok_or(NoteError::Malformed("a signature line is name and base64"))?;
            if !valid_name(name) {
                return Err(NoteError::Malformed("bad signer name"));
            }
            let blob = B64
                .decode(b64)
                .map_err(|_| NoteError::Malformed("signature is not base64"))?;
            if blob.len() < 5 {
                return Err(NoteError::Malformed("signature is too short"));
            }
            if name != self.name || blob[..4] != self.id {
                continue;
            }
            if UnparsedPublicKey::new(&ED25519, &self.public)
                .verify(text.as_bytes(), &blob[4..])
                .is_ok()
            {
                verified = true;
            }
        }
        if verified {
            Ok(text)
        } else {
            Err(NoteError::Unverified(self.name.clone()))
        }
    }
}

impl fmt::Display for NoteVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut k = vec![ALG_ED25519];
        k.extend_from_slice(&self.public);
        write!(
            f,
            "{}+{}+{}",
            self.name,
            hex::encode(self.id),
            B64.encode(k)
        )
    }
}

/// The body of a checkpoint: which log, how many entries, what root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    pub fn to_text(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }

    /// Parses a checkpoint text; extension lines after the root are
    /// allowed and ignored.
    pub fn parse(text: &str) -> Result<Checkpoint, NoteError> {
        let mut lines = text.split('\n');
        let origin = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(NoteError::Checkpoint("origin line is empty"));
        }
        let size_line = lines
            .next()
            .ok_or(NoteError::Checkpoint("missing tree size"))?;
        if size_line.is_empty()
            || !size_line.bytes().all(|b| b.is_ascii_digit())
            || (size_line.len() > 1 && size_line.starts_with('0'))
        {
            return Err(NoteError::Checkpoint("tree size is not a decimal number"));
        }
        let size = size_line
            .parse()
            .map_err(|_| NoteError::Checkpoint("tree size is too large"))?;
        let root: Hash = lines
            .next()
            .and_then(|l| B64.decode(l).ok())
            .and_then(|v| v.try_into().ok())
            .ok_or(NoteError::Checkpoint("root is not a base64 SHA-256 hash"))?;
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
        })
    }

    /// Verifies a signed checkpoint note and parses its body. The origin
    /// must be the key's name.
    pub fn open(note: &str, verifier: &NoteVerifier) -> Result<Checkpoint, NoteError> {
        let cp = Checkpoint::parse(verifier.open(note)?)?;
        if cp.origin != verifier.name() {
            return Err(NoteError::Checkpoint("origin is not the log's key name"));
        }
        Ok(cp)
    }

    /// Verifies a signed checkpoint note with whichever of `verifiers`
    /// signed it (a log's current, next and retired keys during and after
    /// a rotation) and parses its body.
    pub fn open_any(note: &str, verifiers: &[NoteVerifier]) -> Result<Checkpoint, NoteError> {
        let mut last = NoteError::Key("no verifier key given");
        for v in verifiers {
            match Checkpoint::open(note, v) {
                Ok(cp) => return Ok(cp),
                Err(e) => last = e,
            }
        }
        if verifiers.len() > 1 {
            if let NoteError::Unverified(_) = last {
                let names: Vec<String> = verifiers
                    .iter()
                    .map(|v| format!("{}+{}", v.name(), hex::encode(v.key_id())))
                    .collect();
                return Err(NoteError::Unverified(names.join(" or ")));
            }
        }
        Err(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Known answers from the reference implementation,
    // golang.org/x/mod/sumdb/note (note_test.go, TestSign / TestOpen):
    const GO_SKEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const GO_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const GO_NOTE: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
    // The example in the C2SP signed-note specification (c2sp.org/signed-note).
    const SPEC_VKEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
    const SPEC_NOTE: &str = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

    #[test]
    fn signs_exactly_like_the_go_reference() {
        let key = LogKey::parse(GO_SKEY).unwrap();
        assert_eq!(key.to_private(), GO_SKEY);
        assert_eq!(key.verifier().to_string(), GO_VKEY);
        assert_eq!(key.sign(GO_TEXT).unwrap(), GO_NOTE);
    }

    #[test]
    fn opens_the_reference_and_spec_notes() {
        let v = NoteVerifier::parse(GO_VKEY).unwrap();
        assert_eq!(v.open(GO_NOTE).unwrap(), GO_TEXT);
        let spec = NoteVerifier::parse(SPEC_VKEY).unwrap();
        assert_eq!(
            spec.open(SPEC_NOTE).unwrap(),
            "This is an example message.\n"
        );
        // Wrong key: refused.
        assert!(matches!(spec.open(GO_NOTE), Err(NoteError::Unverified(_))));
    }

    #[test]
    fn any_changed_byte_is_refused() {
        let v = NoteVerifier::parse(GO_VKEY).unwrap();
        let bytes = GO_NOTE.as_bytes();
        for i in 0..bytes.len() {
            let mut b = bytes.to_vec();
            b[i] ^= 0x01;
            if let Ok(s) = std::str::from_utf8(&b) {
                assert!(v.open(s).is_err(), "flip at byte {i} accepted");
            }
        }
    }

    #[test]
    fn other_signers_lines_are_ignored_but_must_be_well_formed() {
        let v = NoteVerifier::parse(GO_VKEY).unwrap();
        let cosigned = format!("{GO_NOTE}\u{2014} witness.example AAAAAAB0ZXN0\n");
        assert_eq!(v.open(&cosigned).unwrap(), GO_TEXT);
        let junk = format!("{GO_NOTE}not a signature\n");
        assert!(matches!(v.open(&junk), Err(NoteError::Malformed(_))));
    }

    #[test]
    fn checkpoints_round_trip_and_bind_the_origin() {
        let key = LogKey::generate("daypass.test/log").unwrap();
        let cp = Checkpoint {
            origin: "daypass.test/log".into(),
            size: 12,
            root: [7u8; 32],
        };
        let note = key.sign(&cp.to_text()).unwrap();
        assert_eq!(Checkpoint::open(&note, &key.verifier()).unwrap(), cp);
        let other = Checkpoint {
            origin: "elsewhere/log".into(),
            ..cp
        };
        let note = key.sign(&other.to_text()).unwrap();
        assert!(Checkpoint::open(&note, &key.verifier()).is_err());
        for bad in ["", "o\n012\nAAAA\n", "o\n1\n", "o\nx\nAAAA\n"] {
            assert!(Checkpoint::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn keys_round_trip_and_ids_are_checked() {
        let key = LogKey::generate("a.example/log").unwrap();
        let again = LogKey::parse(&key.to_private()).unwrap();
        assert_eq!(again.verifier(), key.verifier());
        let vkey = key.verifier().to_string();
        assert_eq!(NoteVerifier::parse(&vkey).unwrap(), key.verifier());
        let wrong_id = vkey.replacen('+', "+0", 1);
        assert!(NoteVerifier::parse(&wrong_id).is_err());
        assert!(format!("{key:?}").find(&hex::encode(key.seed)).is_none());
    }
}

#[cfg(test)]
mod rotation {
    use super::*;

    /// During a key rotation a checkpoint carries the old and the new
    /// key's signatures: a verifier holding either accepts it, one holding
    /// neither does not, and a single-signature note is still refused by
    /// the key that did not sign it.
    #[test]
    fn a_note_signed_by_two_keys_opens_with_either() {
        let old = LogKey::generate("r.test/log").unwrap();
        let new = LogKey::generate("r.test/log").unwrap();
        let other = LogKey::generate("r.test/log").unwrap();
        let text = Checkpoint {
            origin: "r.test/log".into(),
            size: 3,
            root: [9; 32],
        }
        .to_text();
        let both = sign_all(&[&old, &new], &text).unwrap();
        assert_eq!(both.matches('\u{2014}').count(), 2);
        assert!(both.starts_with(&old.sign(&text).unwrap()[..text.len() + 1]));
        for v in [old.verifier(), new.verifier()] {
            assert_eq!(Checkpoint::open(&both, &v).unwrap().size, 3);
        }
        assert!(matches!(
            Checkpoint::open(&both, &other.verifier()),
            Err(NoteError::Unverified(_))
        ));
        let only_old = old.sign(&text).unwrap();
        assert!(Checkpoint::open(&only_old, &new.verifier()).is_err());
        let any = [other.verifier(), new.verifier()];
        assert!(Checkpoint::open_any(&both, &any).is_ok());
        let e = Checkpoint::open_any(&only_old, &any).unwrap_err();
        assert!(e.to_string().contains(" or "), "{e}");
        assert!(sign_all(&[], &text).is_err());
    }
}

#[cfg(test)]
mod worked_example {
    use super::*;
    use crate::audit::{entry::tests::example, merkle};

    /// The tree and checkpoint example in docs/log-format.md, section 6-7.
    #[test]
    fn tree_and_checkpoint_example_matches_the_doc() {
        let leaf0 = merkle::leaf_hash(b"");
        let leaf1 = merkle::leaf_hash(&example().encode());
        let root = merkle::node_hash(&leaf0, &leaf1);
        let key = LogKey::from_seed("example.daypass/log", [7u8; 32]).unwrap();
        let cp = Checkpoint {
            origin: key.name().into(),
            size: 2,
            root,
        };
        let note = key.sign(&cp.to_text()).unwrap();
        assert_eq!(
            hex::encode(leaf1),
            "011c84eb22d3921aba92050e1ab64f3adcb01f82ae3616a818e36ac7aff69821"
        );
        assert_eq!(
            hex::encode(root),
            "4433a52fdcfe813b813116bf37eb24974718cdfa45cc8ce1cd498d3509c67a96"
        );
        assert_eq!(
            key.verifier().to_string(),
            "example.daypass/log+7ad48628+AepKbGPinFIKvvVQexMuxfmVR3auvr57kkIe6mkURtIs"
        );
        assert_eq!(
            key.to_private(),
            "PRIVATE+KEY+example.daypass/log+7ad48628+AQcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcH"
        );
        assert_eq!(
            note,
            "example.daypass/log\n2\nRDOlL9z+gTuBMRa/N+skl0cYzfpFzIzhzUmNNQnGepY=\n\n\u{2014} \
             example.daypass/log etSGKDF6izdehvUgS4IkGQ1WWQ5N0gBEWUs1aQBQrqT1nmC6Sz8UDOZVGkd+NUY+\
             x2eg5hlaAZe9dRPyRdn+uGG//Qs=\n"
        );
    }
}
