//! Signed checkpoints and keys handed to auditors and witnesses: opening a
//! note, parsing a checkpoint or a key never panics, and no note verifies
//! under a key that did not sign it.
#![no_main]

use daypass::audit::note::{Checkpoint, LogKey, NoteVerifier};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let key = LogKey::from_seed("fuzz.daypass/log", [7u8; 32]).expect("key");
    assert!(key.verifier().open(text).is_err());
    let _ = Checkpoint::parse(text);
    let _ = NoteVerifier::parse(text);
    let _ = LogKey::parse(text);
});
