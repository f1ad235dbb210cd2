//! The tenant side of daypass.
//!
//! A tenant environment must say no to anyone without a live grant. This
//! crate lets it decide offline, in microseconds: it verifies the broker's
//! signed grant tokens ([`paseto`] v4.public) and grant certificates against
//! the broker's published keys, follows the signed revocation feed (failing
//! closed once the feed is staler than a limit) and reports every access
//! back. [`layer::RequireGrant`] puts all of it in front of a tonic server;
//! [`gateway::Gateway`] wires it up in one call.

mod backoff;
pub mod claims;
pub mod clock;
pub mod feed; // follows the broker: revocation lists and keys into the verifier
pub mod gateway; // broker channel + verifier + feed + reporter, wired
pub mod holder; // the tenant's own rule on holders' country and organisation
pub mod keys;
pub mod layer; // tower layer for tonic servers: admit grant holders only
pub mod paseto;
pub mod pem;
pub mod remembered; // the newest list and every revocation seen, across restarts
pub mod report; // RecordAccess for every admitted access, buffered and retried
pub mod scope; // scoped grants: the grammar of scopes and resources, the matcher
pub mod verifier;

/// Generated gRPC client stubs for the broker's `daypass.v1` API, from the
/// `daypass-proto` crate (feature `client`).
pub use daypass_proto as pb;

pub use feed::{Feed, FeedHandle, FeedStatus, keys_from_pb};
pub use gateway::Gateway;
pub use keys::KeySet;
pub use layer::RequireGrant;
pub use report::Reporter;
pub use scope::{Resource, Scope, ScopeError, Scopes};
pub use verifier::{Admission, Credential, FeedError, HolderRule, Refusal, Verifier};
