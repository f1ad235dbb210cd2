//! The sled driver's key layout, in one place. Trees:
//!
//! | tree | key | value |
//! |---|---|---|
//! | `meta` | `head` | next seq (8 bytes BE) ‖ last entry hash (32) |
//! | `meta` | `tree` | entries the Merkle tree covers (8 bytes BE) |
//! | `meta` | `cursor/` name | a log follower's next seq (8 bytes BE), e.g. the monitor's |
//! | `meta` | `screen/` name | JSON record of a warning screen (hashes of its pairing code and session secret, never the secrets) |
//! | `log` | seq (8 bytes BE) | entry hash (32) ‖ entry bytes |
//! | `staff`, `tenants` | name | JSON record |
//! | `grants` | grant id | JSON record |
//! | `live` | grant id | empty: the grant is pending or active |
//! | `latest` | holder `\0` tenant | newest grant id |
//! | `merkle` | `n` ‖ level (1) ‖ index (8 BE) | node hash (32) |
//! | `merkle` | `c` ‖ tree size (8 BE) | signed checkpoint note |
//! | `scope` | tenant `\0` seq (8 BE) | empty: the entry is in the tenant's scope |
//! | `reports` | tenant `\0` report id | seq (8 BE) ‖ entry hash (32) ‖ report fingerprint (32) |
//! | `alerts` | alert id | JSON record |
//! | `tenant_grants` | tenant `\0` grant id | empty: the grant is this tenant's (so that another tenant's grant id costs a lookup what an unknown one does) |
//! | `notify` | webhook name | JSON state of that hook's delivery (`crate::notify`): cursor, dead letters, retries; written outside the log's groups |

use crate::{
    audit::{Hash, merkle::NodeId},
    domain::{GrantId, Name},
    ledger::{
        LedgerError,
        batch::{ReportKey, ReportRef},
    },
};

pub const TREES: [&str; 12] = [
    "meta",
    "log",
    "staff",
    "tenants",
    "grants",
    "live",
    "latest",
    "merkle",
    "scope",
    "reports",
    "tenant_grants",
    "alerts",
];

pub const HEAD_KEY: &[u8] = b"head";

/// The `meta` key of a log follower's cursor.
pub fn cursor_key(name: &str) -> Vec<u8> {
    let mut k = b"cursor/".to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}

/// The `meta` key prefix of warning screens' records.
pub const SCREEN_PREFIX: &[u8] = b"screen/";

/// The `meta` key of a warning screen's record.
pub fn screen_key(name: &str) -> Vec<u8> {
    let mut k = SCREEN_PREFIX.to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}

/// An 8-byte big-endian number.
pub fn parse_u64(v: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(v.try_into().ok()?))
}
pub const TREE_KEY: &[u8] = b"tree";

pub fn node_key(id: NodeId) -> [u8; 10] {
    let mut k = [0u8; 10];
    k[0] = b'n';
    k[1..].copy_from_slice(&id.key());
    k
}

pub fn checkpoint_key(size: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = b'c';
    k[1..].copy_from_slice(&size.to_be_bytes());
    k
}

/// The prefix of every checkpoint key.
pub const CHECKPOINT_PREFIX: &[u8] = b"c";

pub fn report_key(key: &ReportKey) -> Vec<u8> {
    joined(key.tenant.as_str(), key.id.as_str().as_bytes())
}

pub fn report_value(r: &ReportRef) -> [u8; 72] {
    let mut v = [0u8; 72];
    v[..8].copy_from_slice(&r.seq.to_be_bytes());
    v[8..40].copy_from_slice(&r.hash);
    v[40..].copy_from_slice(&r.fingerprint);
    v
}

pub fn parse_report_value(v: &[u8]) -> Result<ReportRef, LedgerError> {
    if v.len() != 72 {
        return Err(LedgerError::Corrupt(
            "a report index value is malformed".into(),
        ));
    }
    Ok(ReportRef {
        seq: be_u64(&v[..8]).unwrap_or_default(),
        hash: hash32(&v[8..40]),
        fingerprint: hash32(&v[40..]),
    })
}

pub fn scope_key(tenant: &str, seq: u64) -> Vec<u8> {
    joined(tenant, &seq.to_be_bytes())
}

/// Just past every scope key of `tenant`.
pub fn scope_key_end(tenant: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(tenant.len() + 1);
    k.extend_from_slice(tenant.as_bytes());
    k.push(1);
    k
}

pub fn tenant_grant_key(tenant: &Name, id: &GrantId) -> Vec<u8> {
    joined(tenant.as_str(), id.as_str().as_bytes())
}

pub fn latest_key(holder: &Name, tenant: &Name) -> Vec<u8> {
    joined(holder.as_str(), tenant.as_str().as_bytes())
}

pub fn head_value(next_seq: u64, prev_hash: &Hash) -> [u8; 40] {
    let mut v = [0u8; 40];
    v[..8].copy_from_slice(&next_seq.to_be_bytes());
    v[8..].copy_from_slice(prev_hash);
    v
}

/// `a \0 b`.
fn joined(a: &str, b: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(a.len() + 1 + b.len());
    k.extend_from_slice(a.as_bytes());
    k.push(0);
    k.extend_from_slice(b);
    k
}

/// An 8-byte big-endian number.
pub fn be_u64(b: &[u8]) -> Option<u64> {
    b.try_into().ok().map(u64::from_be_bytes)
}

/// The first 32 bytes of a slice known to hold at least 32.
fn hash32(b: &[u8]) -> Hash {
    let mut h = [0u8; 32];
    h.copy_from_slice(&b[..32]);
    h
}

/// A stored log value: hash ‖ entry bytes.
pub fn split_log_value(v: &[u8]) -> Result<(Hash, &[u8]), String> {
    if v.len() < 32 {
        return Err("stored value shorter than its hash".into());
    }
    Ok((hash32(v), &v[32..]))
}
