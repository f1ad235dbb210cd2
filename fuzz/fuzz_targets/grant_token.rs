//! What a tenant parses from engineers and from the broker: grant tokens,
//! revocation lists, grant certificates, published key sets and PEM never
//! panic, and nothing but the genuine token is admitted. The fixture has a
//! grant CA and a retired key too, so those paths are reached.
#![no_main]

use std::sync::{Arc, LazyLock};

use daypass::clock::{ManualClock, Timestamp};
use daypass_tenant::{
    KeySet, Verifier,
    claims::{GrantClaims, RevocationClaims, key_id},
    keys::{GrantCa, TokenKey},
};
use prost::Message as _;
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
    let retired = Ed25519KeyPair::from_seed_unchecked(&[8u8; 32]).expect("key");
    let retired_public = retired.public_key().as_ref().to_vec();
    let ca = daypass::pki::CertificateAuthority::generate("fuzz grant CA").expect("CA");
    let ca_der = daypass_tenant::pem::decode(ca.cert_pem(), "CERTIFICATE").expect("CA DER");
    let keys = KeySet {
        trust_domain: "fuzz.daypass".into(),
        token_keys: vec![
            TokenKey::new(&key_id(&public), &public, None, None).expect("key"),
            TokenKey::new(
                &key_id(&retired_public),
                &retired_public,
                Some(Timestamp(now.millis() - 3_600_000)),
                Some(Timestamp(now.millis() + 20 * 3_600_000)),
            )
            .expect("retired key"),
        ],
        grant_cas: vec![GrantCa::new(&key_id(&ca_der), ca_der, None, None).expect("CA")],
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
        country: None,
        organisation: None,
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
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = daypass_tenant::pem::decode(text, "CERTIFICATE");
    }
    if let Ok(keys) = daypass_tenant::pb::VerificationKeys::decode(data) {
        let _ = daypass_tenant::keys_from_pb(&keys);
    }
});
