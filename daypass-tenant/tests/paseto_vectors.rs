//! `daypass_tenant::paseto` against the official PASETO v4 test vectors
//! (vendored verbatim in `tests/vectors/v4.json`; source and commit in
//! `tests/vectors/README.md`), plus tampering and truncation of those tokens.
//!
//! It covers v4.public only: the `4-S-*` vectors must sign and verify byte
//! for byte, every `4-F-*` vector must be refused. The `4-E-*` (v4.local)
//! vectors are not for this crate.

use daypass_tenant::paseto::{self, Error};
use ring::signature::Ed25519KeyPair;
use serde::Deserialize;

/// The vendored file, verbatim.
const V4_JSON: &str = include_str!("vectors/v4.json");

/// The base64url alphabet, the separator, and characters a sloppy encoder
/// might produce (padding, the standard alphabet's `+` and `/`).
const REPLACEMENTS: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/";

#[derive(Deserialize)]
struct VectorFile {
    tests: Vec<Vector>,
}

/// One test vector; fields this file does not use (PEM keys, nonces) are
/// ignored.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Vector {
    name: String,
    expect_fail: bool,
    public_key: Option<String>,
    secret_key: Option<String>,
    secret_key_seed: Option<String>,
    /// A symmetric key; only the v4.local and some failure vectors have it.
    key: Option<String>,
    token: String,
    payload: Option<String>,
    footer: String,
    implicit_assertion: String,
}

impl Vector {
    fn public_key(&self) -> [u8; 32] {
        let hex = self.public_key.as_deref().expect("vector has a public key");
        decode_32(hex)
    }

    fn payload(&self) -> &[u8] {
        self.payload
            .as_deref()
            .expect("a passing vector has a payload")
            .as_bytes()
    }

    fn footer(&self) -> &[u8] {
        self.footer.as_bytes()
    }

    fn implicit(&self) -> &[u8] {
        self.implicit_assertion.as_bytes()
    }
}

fn vectors() -> Vec<Vector> {
    let file: VectorFile = serde_json::from_str(V4_JSON).expect("v4.json is valid JSON");
    file.tests
}

/// The v4.public vectors that must pass (`4-S-*`).
fn signing_vectors() -> Vec<Vector> {
    vectors()
        .into_iter()
        .filter(|vector| vector.name.starts_with("4-S-"))
        .collect()
}

/// The v4 vectors that must be refused (`4-F-*`).
fn failure_vectors() -> Vec<Vector> {
    vectors()
        .into_iter()
        .filter(|vector| vector.name.starts_with("4-F-"))
        .collect()
}

fn decode_32(hex: &str) -> [u8; 32] {
    hex::decode(hex)
        .expect("vector keys are hex")
        .try_into()
        .expect("vector keys here are 32 bytes")
}

#[test]
fn the_vendored_file_holds_the_expected_vectors() {
    let names = |vectors: Vec<Vector>| -> Vec<String> {
        vectors.into_iter().map(|vector| vector.name).collect()
    };
    assert_eq!(names(signing_vectors()), ["4-S-1", "4-S-2", "4-S-3"]);
    assert_eq!(
        names(failure_vectors()),
        ["4-F-1", "4-F-2", "4-F-3", "4-F-4", "4-F-5"]
    );
    assert!(signing_vectors().iter().all(|vector| !vector.expect_fail));
    assert!(failure_vectors().iter().all(|vector| vector.expect_fail));
}

#[test]
fn signing_reproduces_every_v4_public_vector() {
    for vector in signing_vectors() {
        let secret = hex::decode(vector.secret_key.as_deref().expect("4-S has a secret key"))
            .expect("hex secret key");
        assert_eq!(secret.len(), 64, "{}", vector.name);
        // The 64-byte secret key is seed || public key.
        let (seed, public) = secret.split_at(32);
        assert_eq!(public, vector.public_key(), "{}", vector.name);
        let listed_seed = vector.secret_key_seed.as_deref().expect("4-S has a seed");
        assert_eq!(
            seed,
            hex::decode(listed_seed).expect("hex seed"),
            "{}",
            vector.name
        );

        let key = Ed25519KeyPair::from_seed_and_public_key(seed, public)
            .expect("the vector's seed and public key belong together");
        let token = paseto::sign(&key, vector.payload(), vector.footer(), vector.implicit());
        assert_eq!(token, vector.token, "{}", vector.name);
    }
}

#[test]
fn verify_accepts_every_v4_public_vector() {
    for vector in signing_vectors() {
        let public = vector.public_key();
        for footer in [Some(vector.footer()), None] {
            let message = paseto::verify(&public, &vector.token, footer, vector.implicit())
                .unwrap_or_else(|error| panic!("{} (footer {footer:?}): {error}", vector.name));
            assert_eq!(message, vector.payload(), "{}", vector.name);
        }
    }
}

#[test]
fn untrusted_footer_reads_every_vector_footer() {
    for vector in signing_vectors() {
        let footer = paseto::untrusted_footer(&vector.token)
            .unwrap_or_else(|error| panic!("{}: {error}", vector.name));
        assert_eq!(footer, vector.footer(), "{}", vector.name);
    }
}

#[test]
fn every_failure_vector_is_refused() {
    // Vectors aimed at v4.local list a symmetric key and no public key: try
    // the 4-S public key and those key bytes as a public key; both must fail.
    let known_public = signing_vectors()[0].public_key();
    for vector in failure_vectors() {
        let mut keys = vec![known_public];
        keys.extend(vector.public_key.as_deref().map(decode_32));
        keys.extend(vector.key.as_deref().map(decode_32));
        for public in keys {
            for footer in [Some(vector.footer()), None] {
                let result = paseto::verify(&public, &vector.token, footer, vector.implicit());
                assert!(
                    result.is_err(),
                    "{} was accepted (footer {footer:?})",
                    vector.name
                );
            }
        }
    }
}

#[test]
fn failure_vectors_are_refused_for_the_right_reason() {
    let known_public = signing_vectors()[0].public_key();
    for vector in failure_vectors() {
        let error = paseto::verify(&known_public, &vector.token, None, vector.implicit())
            .expect_err(&vector.name);
        let right = match vector.name.as_str() {
            // v4.local tokens, one of them with `=` padding.
            "4-F-1" | "4-F-4" | "4-F-5" => matches!(error, Error::WrongPurpose { .. }),
            // A v4.public token whose signature is not the key's.
            "4-F-2" => matches!(error, Error::BadSignature),
            // A v3.local token.
            "4-F-3" => matches!(error, Error::WrongVersion { .. }),
            other => panic!("no expectation for {other}"),
        };
        assert!(right, "{}: unexpected error {error:?}", vector.name);
    }
}

#[test]
fn every_single_character_change_is_refused() {
    // Strict base64url means no two strings decode to the same bytes, so
    // every change must be refused outright, not merely "not accepted with
    // a different payload".
    let mut tried = 0;
    for vector in signing_vectors() {
        let public = vector.public_key();
        for (index, original) in vector.token.char_indices() {
            for replacement in REPLACEMENTS.chars().filter(|&c| c != original) {
                let mut token = vector.token.clone();
                token.replace_range(index..index + original.len_utf8(), &replacement.to_string());
                for footer in [Some(vector.footer()), None] {
                    let result = paseto::verify(&public, &token, footer, vector.implicit());
                    assert!(
                        result.is_err(),
                        "{}: {original:?} -> {replacement:?} at {index} accepted: {token}",
                        vector.name
                    );
                    tried += 1;
                }
            }
        }
    }
    assert!(tried > 10_000, "only {tried} variants tried");
}

#[test]
fn padded_tokens_are_refused() {
    // 4-F-5 pads a v4.local token; the same must hold for v4.public, in the
    // body and in the footer, whatever padding would be "correct".
    for vector in signing_vectors() {
        let public = vector.public_key();
        let parts: Vec<&str> = vector.token.split('.').collect();
        let body_end = "v4.public.".len() + parts[2].len();
        let has_footer = parts.len() == 4;
        for padding in ["=", "=="] {
            let mut padded_body = vector.token.clone();
            padded_body.insert_str(body_end, padding);
            let mut variants = vec![padded_body];
            if has_footer {
                variants.push(format!("{}{padding}", vector.token));
            }
            for token in variants {
                let result = paseto::verify(&public, &token, None, vector.implicit());
                assert!(
                    matches!(result, Err(Error::BodyBase64(_) | Error::FooterBase64(_))),
                    "{}: {token}: {result:?}",
                    vector.name
                );
            }
        }
    }
}

#[test]
fn a_wrong_implicit_assertion_is_refused() {
    for vector in signing_vectors() {
        let public = vector.public_key();
        let mut other = vector.implicit().to_vec();
        other.push(b'x');
        let wrong: [&[u8]; 2] = [
            &other,
            if vector.implicit().is_empty() {
                b"{}"
            } else {
                b""
            },
        ];
        for implicit in wrong {
            let result = paseto::verify(&public, &vector.token, None, implicit);
            assert!(
                matches!(result, Err(Error::BadSignature)),
                "{} with implicit {implicit:?}: {result:?}",
                vector.name
            );
        }
    }
}

#[test]
fn a_wrong_footer_is_refused() {
    for vector in signing_vectors() {
        let public = vector.public_key();
        let mut other = vector.footer().to_vec();
        other.push(b'x');
        let wrong: [&[u8]; 2] = [
            &other,
            if vector.footer().is_empty() {
                b"{}"
            } else {
                b""
            },
        ];
        for footer in wrong {
            let result = paseto::verify(&public, &vector.token, Some(footer), vector.implicit());
            assert!(
                matches!(result, Err(Error::FooterMismatch)),
                "{} with footer {footer:?}: {result:?}",
                vector.name
            );
        }
    }
}

#[test]
fn a_footer_moved_to_another_token_is_refused() {
    // 4-S-2 and 4-S-3 share their footer; 4-S-1 has none. Grafting 4-S-2's
    // footer onto 4-S-1's body must break the signature.
    let vectors = signing_vectors();
    let (bare, with_footer) = (&vectors[0], &vectors[1]);
    let footer_part = with_footer
        .token
        .rsplit_once('.')
        .expect("4-S-2 has a footer part")
        .1;
    let grafted = format!("{}.{footer_part}", bare.token);
    let result = paseto::verify(&bare.public_key(), &grafted, None, b"");
    assert!(matches!(result, Err(Error::BadSignature)), "{result:?}");
}

#[test]
fn no_panic_and_no_acceptance_on_truncated_tokens() {
    for vector in signing_vectors() {
        let public = vector.public_key();
        for end in 0..vector.token.len() {
            let prefix = &vector.token[..end];
            for footer in [Some(vector.footer()), None] {
                let result = paseto::verify(&public, prefix, footer, vector.implicit());
                assert!(
                    result.is_err(),
                    "{}: prefix {prefix:?} accepted",
                    vector.name
                );
            }
            // May succeed (a cut footer can still be base64url); must not panic.
            let _ = paseto::untrusted_footer(prefix);
        }
    }
}
