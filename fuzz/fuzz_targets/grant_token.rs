//! What a tenant parses from engineers and from the feed: grant tokens,
//! revocation lists and grant certificates never panic the verifier, and
//! nothing but the genuine token is admitted.
#![no_main]

use std::sync::{Arc, LazyLock};

use daypass::clock::{ManualClock, Timestamp};
use daypass_tenant::{
    KeySet, Verifier,
    claims::{GrantClaims, RevocationClaims, key_id},
    keys::TokenKey,
};
use libfuzzer_sys::fuzz_target;
use ring::signature::{Ed25519KeyPair, KeyPair};

struct Fixture {
    verifier: Verifier,
    token: String,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let key = Ed25519KeyPair::from_seed_unchecked(&[7u8; 32]).expect("key");
    let public = key.public_key().as_ref().to_vec();
    let now = Timestamp(1_795_000_000_000);
    let keys = KeySet {
        trust_domain: "fuzz.daypass".into(),
        token_keys: vec![TokenKey::new(&key_id(&public), &public, None, None).expect("key")],
        grant_cas: vec![],
    };
    let verifier = Verifier::new("acme", keys, Arc::new(ManualClock::new(now)));
    let list = RevocationClaims {
        iss: "spiffe://fuzz.daypass".into(),
        aud: "acme".into(),
        seq: 1,
        iat: now,
        revoked: vec![],
    };
    verifier.apply_revocations(&list.sign(&key)).expect("list");
    let token = GrantClaims {
        iss: "spiffe://fuzz.daypass".into(),
        sub: "spiffe://fuzz.daypass/staff/alice".into(),
        aud: "acme".into(),
        jti: "g-0123456789abcdef01234567".into(),
        iat: now,
        nbf: now,
        exp: now.plus_secs(3600),
        reason_sha256: String::new(),
    }
    .sign(&key);
    Fixture { verifier, token }
});

fuzz_target!(|data: &[u8]| {
    let f = &*FIXTURE;
    if let Ok(s) = std::str::from_utf8(data) {
        if f.verifier.verify_token(s).is_ok() {
            assert_eq!(s, f.token, "only the genuine token is admitted");
        }
        // A list that is not the broker's never replaces the held one.
        let before = f.verifier.revocation_list();
        if f.verifier.apply_revocations(s).is_err() {
            assert_eq!(f.verifier.revocation_list(), before);
        }
    }
    let _ = f.verifier.verify_certificate(data);
});
