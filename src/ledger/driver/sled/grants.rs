//! Grant records as the sled driver stores them: JSON, with the reason,
//! ticket and a person's decision note sealed under the tenant's key
//! ([`crate::ledger::keys`]), so they are gone with the key.

use super::{LedgerError, encode};
use crate::{
    domain::{
        Grant, GrantId,
        grant::{CAUSE_OFFBOARDED, CAUSE_TERMINATED},
    },
    ledger::keys::TenantKeys,
};

/// A grant record as stored: its JSON, with the reason, ticket and
/// decision note sealed under the tenant's key (`sealed`, hex) when any is
/// set, so they are gone with the key ([`crate::ledger::keys`]).
///
/// A decision note daypass wrote itself (the cause of a revocation by
/// offboarding or termination) is structure, not personal: it stays plain,
/// as the log's `cause` does, so the record still matches the log after
/// the key is gone.
pub(super) fn encode_grant(keys: &TenantKeys, g: &Grant) -> Result<Vec<u8>, LedgerError> {
    let system_note = [CAUSE_OFFBOARDED, CAUSE_TERMINATED].contains(&g.decision_note.as_str());
    let note = if system_note {
        ""
    } else {
        g.decision_note.as_str()
    };
    if g.reason.is_empty() && g.ticket.is_empty() && note.is_empty() {
        return Ok(encode(g));
    }
    let secret = encode(&(&g.reason, &g.ticket, note));
    let aad = grant_aad(&g.id);
    let sealed = keys
        .seal_value(g.tenant.as_str(), &aad, &secret)
        .map_err(|e| LedgerError::Unavailable(format!("sealing a grant record: {e}")))?;
    let Some(sealed) = sealed else {
        // The tenant's key was destroyed: what is left is not kept.
        let mut plain = g.clone();
        plain.reason.clear();
        plain.ticket.clear();
        if !system_note {
            plain.decision_note.clear();
        }
        return Ok(encode(&plain));
    };
    let mut plain = g.clone();
    plain.reason.clear();
    plain.ticket.clear();
    if !system_note {
        plain.decision_note.clear();
    }
    let mut v = serde_json::to_value(&plain).unwrap_or_default();
    v["sealed"] = serde_json::Value::String(hex::encode(sealed));
    Ok(encode(&v))
}

fn grant_aad(id: &GrantId) -> Vec<u8> {
    let mut aad = b"grant".to_vec();
    aad.extend_from_slice(id.as_str().as_bytes());
    aad
}

/// Inverse of [`encode_grant`]; without the key the sealed fields read empty.
pub(super) fn decode_grant(keys: &TenantKeys, v: &[u8]) -> Result<Grant, String> {
    let mut value: serde_json::Value = serde_json::from_slice(v).map_err(|e| e.to_string())?;
    let sealed = value
        .as_object_mut()
        .and_then(|o| o.remove("sealed"))
        .and_then(|s| s.as_str().and_then(|s| hex::decode(s).ok()));
    let mut g: Grant = serde_json::from_value(value).map_err(|e| e.to_string())?;
    if let Some(sealed) = sealed {
        if let Some(plain) = keys.open_value(g.tenant.as_str(), &grant_aad(&g.id), &sealed) {
            let (reason, ticket, note): (String, String, String) =
                serde_json::from_slice(&plain).map_err(|e| e.to_string())?;
            g.reason = reason;
            g.ticket = ticket;
            if !note.is_empty() {
                g.decision_note = note;
            }
        }
    }
    Ok(g)
}

pub(super) fn get_grant(
    keys: &TenantKeys,
    tree: &sled::Tree,
    key: &[u8],
) -> Result<Option<Grant>, LedgerError> {
    match tree.get(key)? {
        None => Ok(None),
        Some(v) => decode_grant(keys, &v).map(Some).map_err(|e| {
            LedgerError::Corrupt(format!("grant {:?}: {e}", String::from_utf8_lossy(key)))
        }),
    }
}
