//! PASETO v4.public: Ed25519-signed tokens, exactly as the PASETO
//! specification defines them (paseto-standard/paseto-spec,
//! `docs/01-Protocol-Versions/Version4.md` and `Common.md`).
//!
//! A token is `v4.public.<base64url(m || sig)>[.<base64url(f)>]`, where `sig`
//! is the Ed25519 signature over [`pae`]`(["v4.public.", m, f, i])`: `m` the
//! message, `f` the optional footer (in the token, in the clear) and `i` the
//! optional implicit assertion (never in the token; signer and verifier must
//! both supply it).
//!
//! This module owns the token encoding, signing and verification, and is
//! strict about it: only the header `v4.public.` is accepted, base64url must be
//! canonical (no `=` padding, no set trailing bits), a footer part may not be
//! empty, there are no extra parts, and the body must hold the 64-byte
//! signature. Every input is treated as hostile: no input makes it panic.
//!
//! It does not own what the message means (claims, expiry) nor which key to
//! use: the caller picks the key (possibly by a key id read with
//! [`untrusted_footer`]) and must make sure that key is meant for v4.public
//! only (the spec's "algorithm lucidity"); the key types here, an Ed25519 key
//! pair and a 32-byte Ed25519 public key, cannot be confused with anything
//! else PASETO defines.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use ring::signature::{ED25519, Ed25519KeyPair, UnparsedPublicKey};

/// Builds PASETO's Pre-Authentication Encoding of `pieces`: the piece count,
/// then for each piece its length followed by its bytes; counts and lengths
/// are little-endian 64-bit integers with the most significant bit cleared
/// (`LE64` in the spec). This is what a v4.public signature covers.
pub fn pae(pieces: &[&[u8]]) -> Vec<u8> {
    let capacity = 8 + pieces.iter().map(|piece| 8 + piece.len()).sum::<usize>();
    let mut out = Vec::with_capacity(capacity);
    out.extend_from_slice(&le64(pieces.len()));
    for piece in pieces {
        out.extend_from_slice(&le64(piece.len()));
        out.extend_from_slice(piece);
    }
    out
}

/// Signs `message` into a v4.public token with `key`, binding the `footer`
/// (stored in the token in the clear) and the `implicit` assertion (not
/// stored; the verifier must supply the same bytes). An empty footer adds no
/// footer part. Ed25519 is deterministic: the same inputs give the same token.
///
/// `key` must be a key pair meant for v4.public tokens and nothing else.
pub fn sign(key: &Ed25519KeyPair, message: &[u8], footer: &[u8], implicit: &[u8]) -> String {
    let signature = key.sign(&pae(&[HEADER.as_bytes(), message, footer, implicit]));

    let mut body = Vec::with_capacity(message.len() + SIGNATURE_LEN);
    body.extend_from_slice(message);
    body.extend_from_slice(signature.as_ref());

    let mut token = String::from(HEADER);
    BASE64URL.encode_string(&body, &mut token);
    if !footer.is_empty() {
        token.push('.');
        BASE64URL.encode_string(footer, &mut token);
    }
    token
}

/// Verifies a v4.public `token` against the Ed25519 `public_key` and the
/// `implicit` assertion, and returns the signed message.
///
/// With `footer: Some(expected)` the token's footer must equal `expected`
/// (`Some(b"")` means "no footer"). With `None` any footer is accepted; it is
/// still covered by the signature, and [`untrusted_footer`] reads it. The
/// footer comparison is not constant-time: the token carries its footer in
/// the clear and the expected footer (such as a key id) is public too.
///
/// `public_key` must be a key meant for v4.public tokens and nothing else.
pub fn verify(
    public_key: &[u8; 32],
    token: &str,
    footer: Option<&[u8]>,
    implicit: &[u8],
) -> Result<Vec<u8>, Error> {
    let parsed = Parsed::from_token(token)?;
    if let Some(expected) = footer {
        if parsed.footer != expected {
            return Err(Error::FooterMismatch);
        }
    }

    let (message, signature) = parsed.body.split_at(parsed.message_len);
    let signed = pae(&[HEADER.as_bytes(), message, &parsed.footer, implicit]);
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(&signed, signature)
        .map_err(|_| Error::BadSignature)?;

    let mut body = parsed.body;
    body.truncate(parsed.message_len);
    Ok(body)
}

/// Reads the footer of a v4.public `token` WITHOUT verifying anything: the
/// result is UNTRUSTED, attacker-controlled data. Use it only to choose how
/// to verify (for example to pick the public key by its key id), then call
/// [`verify`], which checks the footer under the signature. A token without
/// a footer gives an empty footer. The token must be well formed (same
/// strictness as [`verify`]), so garbage is refused here already.
pub fn untrusted_footer(token: &str) -> Result<Vec<u8>, Error> {
    Parsed::from_token(token).map(|parsed| parsed.footer)
}

/// Why a v4.public token was refused. Messages may quote a short, escaped
/// excerpt of the token's version or purpose, never keys or payload bytes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The token's first part is not `v4`.
    #[error(
        "token is not PASETO version 4 (version part {found:?}); \
         only `v4.public.` tokens are accepted"
    )]
    WrongVersion {
        /// The version part found: its first 16 characters, `…` appended if cut.
        found: String,
    },
    /// The token is version 4 but its purpose is not `public`.
    #[error(
        "token is not a signed PASETO token (purpose part {found:?}); \
         only `v4.public.` tokens are accepted"
    )]
    WrongPurpose {
        /// The purpose part found: its first 16 characters, `…` appended if cut.
        found: String,
    },
    /// The token ends before its complete header `v4.public.`.
    #[error("token is truncated: it ends before its header `v4.public.` is complete")]
    IncompleteHeader,
    /// There is more than one `.` after the header.
    #[error(
        "token has too many `.`-separated parts; a v4.public token is \
         `v4.public.<body>` or `v4.public.<body>.<footer>`"
    )]
    TooManyParts,
    /// The token has a footer separator but an empty footer part.
    #[error(
        "token ends with an empty footer part; a token without footer must \
         not end with `.`"
    )]
    EmptyFooter,
    /// The body part is not canonical unpadded base64url.
    #[error("token body is not canonical unpadded base64url: {0}")]
    BodyBase64(base64::DecodeError),
    /// The footer part is not canonical unpadded base64url.
    #[error("token footer is not canonical unpadded base64url: {0}")]
    FooterBase64(base64::DecodeError),
    /// The decoded body cannot even hold the 64-byte signature.
    #[error(
        "token body is {len} bytes, shorter than the 64-byte signature it must \
         end with; the token is truncated or not a v4.public token"
    )]
    TooShort {
        /// Length of the decoded body in bytes.
        len: usize,
    },
    /// The token's footer differs from the footer the caller expects.
    #[error("token footer is not the expected footer (wrong key id or token for another use)")]
    FooterMismatch,
    /// The signature does not verify.
    #[error(
        "token signature is invalid for this public key and implicit \
         assertion: the token was altered, forged, or signed with another key"
    )]
    BadSignature,
}

/// The header of every token this module signs or accepts, trailing `.` included.
const HEADER: &str = "v4.public.";

/// Length of an Ed25519 signature, the last bytes of the decoded body.
const SIGNATURE_LEN: usize = 64;

/// How many characters of an unexpected version or purpose an error quotes.
const EXCERPT_CHARS: usize = 16;

/// RFC 4648 base64url without padding, strict as PASETO requires: encoding
/// adds no `=`, decoding refuses `=` and non-zero trailing bits. Spelled out
/// rather than relying on `URL_SAFE_NO_PAD`'s defaults so the strictness is
/// visible (and tested) here.
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);

/// A structurally valid token, not yet verified.
struct Parsed {
    /// Decoded body: message then signature.
    body: Vec<u8>,
    /// Where the signature starts in `body`.
    message_len: usize,
    /// Decoded footer, empty when the token has none.
    footer: Vec<u8>,
}

impl Parsed {
    fn from_token(token: &str) -> Result<Self, Error> {
        let Some(rest) = token.strip_prefix(HEADER) else {
            return Err(header_error(token));
        };
        let mut parts = rest.split('.');
        let body_part = parts.next().unwrap_or_default();
        let footer_part = parts.next();
        if parts.next().is_some() {
            return Err(Error::TooManyParts);
        }

        let footer = match footer_part {
            None => Vec::new(),
            Some("") => return Err(Error::EmptyFooter),
            Some(part) => BASE64URL.decode(part).map_err(Error::FooterBase64)?,
        };
        let body = BASE64URL.decode(body_part).map_err(Error::BodyBase64)?;
        let message_len = body
            .len()
            .checked_sub(SIGNATURE_LEN)
            .ok_or(Error::TooShort { len: body.len() })?;
        Ok(Self {
            body,
            message_len,
            footer,
        })
    }
}

/// Says what is wrong with a token that does not start with [`HEADER`].
fn header_error(token: &str) -> Error {
    if HEADER.starts_with(token) {
        return Error::IncompleteHeader;
    }
    let mut parts = token.splitn(3, '.');
    let version = parts.next().unwrap_or_default();
    match parts.next() {
        _ if version != "v4" => Error::WrongVersion {
            found: excerpt(version),
        },
        Some(purpose) if purpose != "public" => Error::WrongPurpose {
            found: excerpt(purpose),
        },
        // Unreachable: "v4" then "public" is a prefix of the header or the
        // header itself; kept total rather than panicking.
        _ => Error::IncompleteHeader,
    }
}

/// `LE64` from the spec: `n` as 8 little-endian bytes, top bit cleared.
fn le64(n: usize) -> [u8; 8] {
    // usize is at most 64 bits wide on every target Rust supports.
    (n as u64 & !(1 << 63)).to_le_bytes()
}

/// A short excerpt of attacker-supplied text for error messages, which
/// print it escaped (`{:?}`).
fn excerpt(text: &str) -> String {
    let mut short: String = text.chars().take(EXCERPT_CHARS).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed key pair: tests stay deterministic and need no randomness.
    fn key_pair() -> Ed25519KeyPair {
        Ed25519KeyPair::from_seed_unchecked(&[7; 32]).expect("a 32-byte seed is a valid seed")
    }

    fn public_key(key: &Ed25519KeyPair) -> [u8; 32] {
        use ring::signature::KeyPair as _;
        key.public_key()
            .as_ref()
            .try_into()
            .expect("an Ed25519 public key is 32 bytes")
    }

    #[test]
    fn pae_matches_the_spec_examples() {
        assert_eq!(pae(&[]), b"\x00\x00\x00\x00\x00\x00\x00\x00");
        assert_eq!(
            pae(&[b""]),
            b"\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
        );
        assert_eq!(
            pae(&[b"test"]),
            b"\x01\x00\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00test"
        );
    }

    #[test]
    fn pae_separates_pieces_that_concatenate_alike() {
        assert_ne!(pae(&[b"ab", b"c"]), pae(&[b"a", b"bc"]));
        assert_ne!(pae(&[b"abc"]), pae(&[b"abc", b""]));
    }

    #[test]
    fn le64_is_little_endian_with_the_top_bit_cleared() {
        assert_eq!(le64(0x0102), [0x02, 0x01, 0, 0, 0, 0, 0, 0]);
        assert_eq!(le64(usize::MAX)[7], 0x7f);
    }

    #[test]
    fn base64url_is_strict() {
        assert_eq!(BASE64URL.encode([0xfb, 0xff]), "-_8");
        assert_eq!(BASE64URL.decode("-_8").expect("canonical"), [0xfb, 0xff]);
        // Padding is forbidden.
        assert!(BASE64URL.decode("-_8=").is_err());
        // "-_9" differs from "-_8" only in trailing bits that must be zero.
        assert!(BASE64URL.decode("-_9").is_err());
        // Standard-alphabet characters are not base64url.
        assert!(BASE64URL.decode("+/8").is_err());
        // A single leftover character cannot encode a byte.
        assert!(BASE64URL.decode("AAAAA").is_err());
    }

    #[test]
    fn sign_then_verify_round_trips_with_and_without_footer() {
        let key = key_pair();
        let public = public_key(&key);

        let bare = sign(&key, b"hello", b"", b"");
        assert!(bare.starts_with(HEADER));
        assert_eq!(bare.matches('.').count(), 2, "no footer part: {bare}");
        assert_eq!(verify(&public, &bare, None, b"").expect("valid"), b"hello");
        assert_eq!(
            verify(&public, &bare, Some(b""), b"").expect("valid"),
            b"hello"
        );

        let token = sign(&key, b"", b"kid", b"ctx");
        assert_eq!(token.matches('.').count(), 3, "footer part: {token}");
        assert_eq!(
            verify(&public, &token, Some(b"kid"), b"ctx").expect("valid"),
            b""
        );
        assert_eq!(untrusted_footer(&token).expect("well formed"), b"kid");
    }

    #[test]
    fn header_errors_say_what_is_wrong() {
        let public = public_key(&key_pair());
        let refuse = |token: &str| verify(&public, token, None, b"").expect_err(token);

        assert!(matches!(refuse(""), Error::IncompleteHeader));
        assert!(matches!(refuse("v4.public"), Error::IncompleteHeader));
        assert!(matches!(refuse("v3.public.AAAA"), Error::WrongVersion { found } if found == "v3"));
        assert!(matches!(
            refuse("V4.public.AAAA"),
            Error::WrongVersion { .. }
        ));
        assert!(
            matches!(refuse("v4.local.AAAA"), Error::WrongPurpose { found } if found == "local")
        );
        assert!(matches!(
            refuse("v4.Public.AAAA"),
            Error::WrongPurpose { .. }
        ));
        assert!(matches!(
            refuse(" v4.public.AAAA"),
            Error::WrongVersion { .. }
        ));
    }

    #[test]
    fn structure_errors_say_what_is_wrong() {
        let key = key_pair();
        let public = public_key(&key);
        let token = sign(&key, b"m", b"f", b"");
        let refuse = |token: &str| verify(&public, token, None, b"").expect_err(token);

        assert!(matches!(refuse(&format!("{token}.")), Error::TooManyParts));
        assert!(matches!(
            refuse(&format!("{token}.Zg")),
            Error::TooManyParts
        ));
        let bare = sign(&key, b"m", b"", b"");
        assert!(matches!(refuse(&format!("{bare}.")), Error::EmptyFooter));
        assert!(matches!(refuse(&format!("{bare}=")), Error::BodyBase64(_)));
        assert!(matches!(
            refuse(&format!("{token}=")),
            Error::FooterBase64(_)
        ));
        assert!(matches!(refuse("v4.public."), Error::TooShort { len: 0 }));
        assert!(matches!(
            refuse("v4.public.AAAA"),
            Error::TooShort { len: 3 }
        ));
    }

    #[test]
    fn verify_refuses_other_keys_footers_and_assertions() {
        let key = key_pair();
        let public = public_key(&key);
        let token = sign(&key, b"m", b"kid-1", b"tenant-a");
        let other = public_key(
            &Ed25519KeyPair::from_seed_unchecked(&[8; 32]).expect("a 32-byte seed is valid"),
        );

        assert!(matches!(
            verify(&other, &token, None, b"tenant-a"),
            Err(Error::BadSignature)
        ));
        assert!(matches!(
            verify(&public, &token, None, b"tenant-b"),
            Err(Error::BadSignature)
        ));
        assert!(matches!(
            verify(&public, &token, Some(b"kid-2"), b"tenant-a"),
            Err(Error::FooterMismatch)
        ));
        assert!(matches!(
            verify(&public, &token, Some(b""), b"tenant-a"),
            Err(Error::FooterMismatch)
        ));
        // Not a curve point at all: refused, not a panic.
        assert!(matches!(
            verify(&[0xff; 32], &token, None, b"tenant-a"),
            Err(Error::BadSignature)
        ));
    }

    #[test]
    fn error_excerpts_are_short_and_escaped() {
        let long = format!("{}.public.AAAA", "x\n".repeat(100));
        let error = verify(&[0; 32], &long, None, b"").expect_err("wrong version");
        let message = error.to_string();
        assert!(message.len() < 200, "{message}");
        assert!(!message.contains('\n'), "{message}");
        // Non-ASCII input is cut on a character boundary, not mid-character.
        let error = verify(&[0; 32], "vé€€€€€€€€€€€€€€€€€€€.public.A", None, b"")
            .expect_err("wrong version");
        assert!(matches!(error, Error::WrongVersion { found } if found.chars().count() == 17));
    }
}
