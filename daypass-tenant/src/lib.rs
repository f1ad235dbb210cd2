//! The tenant side of daypass.
//!
//! A tenant environment must say no to anyone without a live grant. This
//! crate lets it decide offline, in microseconds: it verifies the broker's
//! signed grant tokens ([`paseto`] v4.public) against the broker's
//! published keys, follows the signed revocation feed (failing closed once
//! the feed is staler than a limit) and reports every access back.

pub mod claims;
pub mod clock;
pub mod keys;
pub mod paseto;
pub mod verifier;

pub use keys::KeySet;
pub use verifier::{Admission, Credential, FeedError, Refusal, Verifier};
