//! Domain types into their protobuf messages (and log entries back, for
//! clients). Requests into commands are [`super::commands`].

use crate::{
    audit::SealedEntry,
    domain::{
        Approval, ApproverGroup, DenyReason, Grant, GrantState, GroupRule, Principal,
        PrincipalKind, Role, StaffRecord, TenantRecord,
    },
    ledger::Receipt,
    pb,
};

pub fn role_to_pb(r: Role) -> pb::Role {
    match r {
        Role::Support => pb::Role::Support,
        Role::Root => pb::Role::Root,
        Role::Admin => pb::Role::Admin,
        Role::Auditor => pb::Role::Auditor,
        Role::Partnerships => pb::Role::Partnerships,
        Role::DataEntry => pb::Role::DataEntry,
        Role::Administration => pb::Role::Administration,
    }
}

pub fn approval_to_pb(a: Approval) -> pb::ApprovalPolicy {
    match a {
        Approval::Auto => pb::ApprovalPolicy::Auto,
        Approval::TenantOrPeer => pb::ApprovalPolicy::Approval,
        Approval::Tenant => pb::ApprovalPolicy::Tenant,
        Approval::Peer => pb::ApprovalPolicy::Peer,
        Approval::TenantAndPeer => pb::ApprovalPolicy::TenantAndPeer,
        Approval::Group => pb::ApprovalPolicy::Group,
    }
}

/// The group and threshold fields of a group policy (empty and 0 else).
fn group_fields(rule: Option<&GroupRule>) -> (String, u32) {
    rule.map_or((String::new(), 0), |r| (r.group.to_string(), r.threshold))
}

pub fn approver_group_to_pb(g: &ApproverGroup) -> pb::ApproverGroup {
    pb::ApproverGroup {
        name: g.name.to_string(),
        members: g.members.iter().map(|m| m.to_string()).collect(),
        set_at_ms: g.set_at.millis(),
        receipt: None,
    }
}

pub fn staff_to_pb(r: &StaffRecord, trust_domain: &str) -> pb::Staff {
    let kind = if r.role == Role::Auditor {
        PrincipalKind::Auditor
    } else {
        PrincipalKind::Staff
    };
    pb::Staff {
        name: r.name.to_string(),
        role: role_to_pb(r.role) as i32,
        principal: Principal::new(kind, r.name.clone()).uri(trust_domain),
        active: r.is_active(),
        enrolled_at_ms: r.enrolled_at.millis(),
        offboarded_at_ms: r.offboarded_at.map(|t| t.millis()).unwrap_or(0),
        declaration: r
            .declaration
            .as_ref()
            .map(|d| pb::ConfidentialityDeclaration {
                version: d.version.clone(),
                signed_on: d.signed_on.clone(),
                document_sha256: d.document_sha256.clone(),
            }),
        country: String::new(),
        organisation: String::new(),
        last_certified_at_ms: r.last_certified().millis(),
        recertify_due_at_ms: 0,
        receipt: None,
    }
}

pub fn tenant_to_pb(t: &TenantRecord) -> pb::Tenant {
    let (approver_group, approval_threshold) = group_fields(t.approver_group.as_ref());
    pb::Tenant {
        approver_group,
        approval_threshold,
        name: t.name.to_string(),
        approval: approval_to_pb(t.approval) as i32,
        require_ticket: t.require_ticket,
        require_declaration: t.require_declaration,
        created_at_ms: t.created_at.millis(),
        terminated_at_ms: t.terminated_at.map(|t| t.millis()).unwrap_or(0),
        shredded_at_ms: t.shredded_at.map(|t| t.millis()).unwrap_or(0),
        allowed_countries: Vec::new(),
        own_countries: false,
        objections: Vec::new(),
        receipt: None,
        ticket_pattern: t
            .justification
            .ticket_pattern
            .as_ref()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        require_reason_code: t.justification.require_reason_code,
        break_glass_support: t.break_glass_support,
        access_limit_seconds: t.access_limit.map_or(0, |l| l.limit_secs),
        access_window_seconds: t.access_limit.map_or(0, |l| l.window_secs),
    }
}

pub fn grant_to_pb(g: &Grant) -> pb::Grant {
    let ms = |t: Option<crate::clock::Timestamp>| t.map(|t| t.millis()).unwrap_or(0);
    let (approver_group, approval_threshold) = group_fields(g.approver_group.as_ref());
    pb::Grant {
        approver_group,
        approval_threshold,
        id: g.id.to_string(),
        tenant: g.tenant.to_string(),
        holder: g.holder.to_string(),
        reason: g.reason.clone(),
        ticket: g.ticket.clone(),
        state: state_to_pb(g.state) as i32,
        duration_seconds: g.duration_secs,
        requested_at_ms: g.requested_at.millis(),
        pending_until_ms: ms(g.pending_until),
        activated_at_ms: ms(g.activated_at),
        expires_at_ms: ms(g.expires_at),
        ended_at_ms: ms(g.ended_at),
        decided_by: g.decided_by.clone(),
        decision_note: g.decision_note.clone(),
        receipt: None,
        token: String::new(),
        approval: approval_to_pb(g.policy()) as i32,
        approvals: g
            .approvals
            .iter()
            .map(|a| pb::GrantApproval {
                by: a.by.clone(),
                at_ms: a.at.millis(),
            })
            .collect(),
        reason_code: g
            .reason_code
            .map(|c| c.as_str().to_string())
            .unwrap_or_default(),
        break_glass: g.break_glass,
        review: g.review.as_ref().map(|r| pb::GrantReview {
            by: r.by.clone(),
            at_ms: r.at.millis(),
            verdict: r.verdict.as_str().to_owned(),
            note: r.note.clone(),
        }),
        scopes: g.scopes.strings(),
        starts_at_ms: ms(g.starts_at),
    }
}

pub fn receipt_to_pb(r: Option<Receipt>) -> Option<pb::Receipt> {
    r.map(|r| pb::Receipt {
        seq: r.seq,
        leaf_hash: r.leaf_hash.to_vec(),
        checkpoint: r.checkpoint.to_string(),
    })
}

/// A grant as the response of the call that wrote it.
pub fn receipted_grant(g: &Grant, r: Option<Receipt>) -> pb::Grant {
    pb::Grant {
        receipt: receipt_to_pb(r),
        ..grant_to_pb(g)
    }
}

fn state_to_pb(s: GrantState) -> pb::GrantState {
    match s {
        GrantState::Pending => pb::GrantState::Pending,
        GrantState::Active => pb::GrantState::Active,
        GrantState::Denied => pb::GrantState::Denied,
        GrantState::RequestExpired => pb::GrantState::RequestExpired,
        GrantState::Expired => pb::GrantState::Expired,
        GrantState::Revoked => pb::GrantState::Revoked,
        GrantState::Released => pb::GrantState::Released,
        GrantState::Scheduled => pb::GrantState::Scheduled,
    }
}

pub fn deny_to_pb(r: DenyReason) -> pb::DenyReason {
    match r {
        DenyReason::Unknown => pb::DenyReason::Unknown,
        DenyReason::Pending => pb::DenyReason::Pending,
        DenyReason::Expired => pb::DenyReason::Expired,
        DenyReason::Revoked => pb::DenyReason::Revoked,
        DenyReason::Offboarded => pb::DenyReason::Offboarded,
        DenyReason::Denied => pb::DenyReason::Denied,
        DenyReason::Released => pb::DenyReason::Released,
        DenyReason::OutOfScope => pb::DenyReason::OutOfScope,
        DenyReason::NotYetActive => pb::DenyReason::NotYetActive,
    }
}

pub fn entry_to_pb(s: &SealedEntry) -> pb::LogEntry {
    let e = &s.entry;
    pb::LogEntry {
        seq: e.seq,
        timestamp_ms: e.timestamp.millis(),
        actor: e.actor.clone(),
        tenant: e.tenant.clone(),
        kind: e.kind.clone(),
        details: e.details.clone(),
        prev_hash: e.prev_hash.to_vec(),
        hash: s.hash.to_vec(),
        sealed_nonce: e
            .sealed
            .as_ref()
            .map(|s| s.nonce.to_vec())
            .unwrap_or_default(),
        sealed_ciphertext: e
            .sealed
            .as_ref()
            .map(|s| s.ciphertext.clone())
            .unwrap_or_default(),
        opened: e
            .sealed
            .as_ref()
            .map(|s| s.opened.iter().cloned().collect())
            .unwrap_or_default(),
    }
}

fn sealed_from_pb(e: &pb::LogEntry) -> Result<Option<crate::audit::entry::Sealed>, String> {
    if e.sealed_nonce.is_empty() {
        if !e.sealed_ciphertext.is_empty() || !e.opened.is_empty() {
            return Err(format!("entry {} has a ciphertext but no nonce", e.seq));
        }
        return Ok(None);
    }
    let nonce = e
        .sealed_nonce
        .as_slice()
        .try_into()
        .map_err(|_| format!("entry {} has a malformed nonce", e.seq))?;
    let opened: std::collections::BTreeSet<String> = e.opened.iter().cloned().collect();
    if let Some(k) = opened.iter().find(|k| !e.details.contains_key(*k)) {
        return Err(format!(
            "entry {} names an opened detail {k} it lacks",
            e.seq
        ));
    }
    Ok(Some(crate::audit::entry::Sealed {
        nonce,
        ciphertext: e.sealed_ciphertext.clone(),
        opened,
    }))
}

/// A log entry received over gRPC, back into the domain type. Fails when a
/// hash is not 32 bytes.
pub fn entry_from_pb(e: &pb::LogEntry) -> Result<SealedEntry, String> {
    let hash = |b: &[u8], what: &str| -> Result<crate::audit::Hash, String> {
        b.try_into()
            .map_err(|_| format!("entry {} has a malformed {what}", e.seq))
    };
    Ok(SealedEntry {
        entry: crate::audit::Entry {
            seq: e.seq,
            timestamp: crate::clock::Timestamp(e.timestamp_ms),
            actor: e.actor.clone(),
            tenant: e.tenant.clone(),
            kind: e.kind.clone(),
            details: e.details.clone(),
            sealed: sealed_from_pb(e)?,
            prev_hash: hash(&e.prev_hash, "prev_hash")?,
        },
        hash: hash(&e.hash, "hash")?,
    })
}
