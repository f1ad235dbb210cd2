//! Offline verification end to end (issue 7): a real server signs grant
//! tokens and revocation lists; the tenant library's [`Verifier`] checks
//! them with the keys the server publishes, on the same injected clock.

mod common;

use std::{sync::Arc, time::Duration};

use common::*;
use daypass::{
    clock::{Clock, SharedClock, Timestamp},
    config::RetiredKey,
    pb::{self, ApprovalPolicy, Role},
    pki,
};
use daypass_tenant::{
    FeedError, KeySet, Refusal, Verifier,
    claims::{GrantClaims, reason_sha256},
};

/// The server's published keys, as a tenant reads them (the tenant
/// library's own conversion, over the same wire bytes).
async fn published(c: &mut daypass::client::Clients) -> KeySet {
    use prost::Message as _;
    let k = c
        .gate
        .get_verification_keys(pb::GetVerificationKeysRequest {})
        .await
        .expect("keys")
        .into_inner();
    let wire = daypass_tenant::pb::VerificationKeys::decode(k.encode_to_vec().as_slice())
        .expect("same proto");
    daypass_tenant::keys_from_pb(&wire).expect("valid keys")
}

/// Fetches the tenant's revocation list and applies it.
async fn refresh(v: &Verifier, tenant: &mut daypass::client::Clients) -> Result<u64, FeedError> {
    let list = revocations(tenant).await;
    v.apply_revocations(&list.token)
}

fn clock_of(s: &TestServer) -> SharedClock {
    Arc::new(s.clock.clone())
}

#[tokio::test]
async fn a_token_admits_until_expiry_and_not_after() {
    let s = TestServer::start().await;
    let mut alice = s.enrol("alice", Role::Support).await;
    let mut acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let g = request_lasting(&mut alice, "acme", "INC-9 replication lag", 3600).await;
    assert!(g.token.starts_with("v4.public."), "{}", g.token);
    // Only the holder gets the token.
    let seen_by_tenant = get_grant(&mut acme, &g.id).await;
    assert!(seen_by_tenant.token.is_empty());
    let again = get_grant(&mut alice, &g.id).await;
    assert_eq!(again.token, g.token, "the same token every time");

    let v = Verifier::new("acme", published(&mut acme).await, clock_of(&s));
    // No revocation list yet: nothing is admitted.
    assert_eq!(v.verify_token(&g.token), Err(Refusal::NoRevocationList));
    refresh(&v, &mut acme).await.expect("list");
    let a = v.verify_token(&g.token).expect("admitted");
    assert_eq!(a.grant_id, g.id);
    assert_eq!(a.holder, format!("spiffe://{TRUST_DOMAIN}/staff/alice"));
    assert_eq!(a.expires_at, Timestamp(g.expires_at_ms));

    // The reason is bound by its hash.
    let payload = token_payload(&g.token);
    assert_eq!(
        payload.reason_sha256,
        reason_sha256("INC-9 replication lag")
    );

    // One second before expiry: admitted (with a fresh list).
    s.clock.set(Timestamp(g.expires_at_ms - 1000));
    refresh(&v, &mut acme).await.expect("list");
    assert!(v.verify_token(&g.token).is_ok());
    // At expiry: refused.
    s.clock.set(Timestamp(g.expires_at_ms));
    refresh(&v, &mut acme).await.expect("list");
    assert_eq!(
        v.verify_token(&g.token),
        Err(Refusal::Expired(Timestamp(g.expires_at_ms)))
    );
    // And the broker no longer hands it out.
    let after = get_grant(&mut alice, &g.id).await;
    assert!(after.token.is_empty());
}

/// The claims of a token, read without verifying (tests only).
fn token_payload(token: &str) -> GrantClaims {
    use base64::Engine as _;
    let body = token.trim_start_matches("v4.public.");
    let body = body.split('.').next().expect("body");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body)
        .expect("base64");
    serde_json::from_slice(&bytes[..bytes.len() - 64]).expect("claims")
}

#[tokio::test]
async fn revocations_reach_the_verifier_and_a_stale_feed_fails_closed() {
    let s = TestServer::start().await;
    let mut alice = s.enrol("alice", Role::Support).await;
    let mut bob = s.enrol("bob", Role::Support).await;
    let mut acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let mut globex = s.add_tenant("globex", ApprovalPolicy::Auto, false).await;
    let ga = request(&mut alice, "acme", "INC-1").await;
    let gb = request(&mut bob, "acme", "INC-2").await;
    let gx = request(&mut alice, "globex", "INC-3").await;

    let v = Verifier::new("acme", published(&mut acme).await, clock_of(&s));
    let first = refresh(&v, &mut acme).await.expect("list");
    assert!(v.verify_token(&ga.token).is_ok());
    assert!(v.verify_token(&gb.token).is_ok());

    // A token for another tenant is refused.
    assert_eq!(
        v.verify_token(&gx.token),
        Err(Refusal::WrongTenant("globex".into()))
    );

    // The tenant revokes alice's grant: refused offline once the list
    // arrives (until then the old list still admits it: the window).
    revoke(&mut acme, &ga.id, "done").await;
    assert!(
        v.verify_token(&ga.token).is_ok(),
        "the old list is still fresh"
    );
    let second = refresh(&v, &mut acme).await.expect("list");
    assert!(second > first, "the sequence number grows");
    assert_eq!(
        v.verify_token(&ga.token),
        Err(Refusal::Revoked(ga.id.clone()))
    );
    assert!(
        v.verify_token(&gb.token).is_ok(),
        "bob's grant is untouched"
    );

    // A released grant is listed too; globex's list does not show acme's.
    release(&mut bob, &gb.id).await;
    refresh(&v, &mut acme).await.expect("list");
    assert_eq!(
        v.verify_token(&gb.token),
        Err(Refusal::Revoked(gb.id.clone()))
    );
    let gl = revocations(&mut globex).await;
    assert!(
        gl.revoked_grant_ids.is_empty(),
        "{:?}",
        gl.revoked_grant_ids
    );
    // ... and acme's verifier refuses globex's list.
    assert_eq!(
        v.apply_revocations(&gl.token),
        Err(FeedError::WrongTenant("globex".into()))
    );

    // An older list is refused (replay).
    let old = revocations(&mut acme).await;
    s.clock.advance_secs(1);
    refresh(&v, &mut acme).await.expect("list");
    assert!(matches!(
        v.apply_revocations(&old.token),
        Err(FeedError::Older { .. })
    ));

    // Staleness: a fresh grant, then no list for longer than the limit.
    let mut carol = s.enrol("carol", Role::Support).await;
    let gc = request(&mut carol, "acme", "INC-4").await;
    refresh(&v, &mut acme).await.expect("list");
    assert!(v.verify_token(&gc.token).is_ok());
    s.clock.advance_secs(30);
    assert!(v.verify_token(&gc.token).is_ok(), "exactly at the limit");
    s.clock.advance_millis(1);
    assert_eq!(
        v.verify_token(&gc.token),
        Err(Refusal::Stale {
            age_ms: 30_001,
            limit_ms: 30_000
        })
    );
    // A fresh list admits again.
    refresh(&v, &mut acme).await.expect("list");
    assert!(v.verify_token(&gc.token).is_ok());

    // The list survives a restart (rebuilt from the grants).
    let mut s = s;
    s.restart().await;
    let mut acme = s.tenant("acme").await;
    refresh(&v, &mut acme).await.expect("list");
    assert_eq!(v.verify_token(&ga.token), Err(Refusal::Revoked(ga.id)));
    assert!(v.verify_token(&gc.token).is_ok());
}

#[tokio::test]
async fn the_stream_delivers_changes_and_heartbeats() {
    let s = TestServer::start().await;
    let mut alice = s.enrol("alice", Role::Support).await;
    let mut acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let g = request(&mut alice, "acme", "INC-5").await;
    let v = Verifier::new("acme", published(&mut acme).await, clock_of(&s));
    let mut stream = acme
        .gate
        .watch_revocations(pb::WatchRevocationsRequest {})
        .await
        .expect("watch")
        .into_inner();
    let first = next_list(&mut stream).await;
    v.apply_revocations(&first.token).expect("first");
    assert!(v.verify_token(&g.token).is_ok());
    // A change is pushed at once.
    revoke(&mut acme, &g.id, "").await;
    let pushed = next_list(&mut stream).await;
    assert_eq!(pushed.revoked_grant_ids, vec![g.id.clone()]);
    v.apply_revocations(&pushed.token).expect("pushed");
    assert_eq!(
        v.verify_token(&g.token),
        Err(Refusal::Revoked(g.id.clone()))
    );
    // Nothing changes: a heartbeat comes once the (injected) clock passes
    // the heartbeat interval, with a newer issue time.
    s.clock.advance_secs(10);
    let beat = next_list(&mut stream).await;
    assert!(beat.issued_at_ms > pushed.issued_at_ms);
    v.apply_revocations(&beat.token).expect("heartbeat");
    // Five minutes past the grant's expiry the list drops it (the token
    // expired anyway, even on a tenant clock somewhat behind).
    s.clock.set(Timestamp(g.expires_at_ms + 299_000));
    let still = next_list(&mut stream).await;
    assert_eq!(still.revoked_grant_ids, vec![g.id.clone()], "kept a while");
    s.clock.set(Timestamp(g.expires_at_ms + 310_000)); // past the margin, and a heartbeat later
    let later = next_list(&mut stream).await;
    assert!(later.revoked_grant_ids.is_empty(), "{later:?}");
}

#[tokio::test]
async fn unknown_and_rotated_out_keys_are_refused() {
    // An old token key, rotated out an hour before the server starts.
    let old_dir = tempfile::tempdir().expect("dir");
    pki::create_gate_keys(old_dir.path(), false).expect("old keys");
    let old_key = pki::load_token_key(&old_dir.path().join(pki::TOKEN_KEY_FILE)).expect("key");
    let start = daypass::clock::SystemClock.now();
    let retired = Timestamp(start.millis() - 3_600_000);
    let s = TestServer::start_with(|c| {
        c.gate.retired_token_keys = vec![RetiredKey {
            public: old_dir.path().join(pki::TOKEN_PUB_FILE),
            retired_at: retired.to_rfc3339(),
        }];
    })
    .await;
    let mut alice = s.enrol("alice", Role::Support).await;
    let mut acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let g = request(&mut alice, "acme", "INC-6").await;
    let keys = published(&mut acme).await;
    assert_eq!(keys.token_keys.len(), 2, "current and rotated out");
    let v = Verifier::new("acme", keys, clock_of(&s));
    refresh(&v, &mut acme).await.expect("list");
    let mut claims = token_payload(&g.token);

    // Signed by the old key before it was retired: still verifiable (until
    // it expires, at most 24 h after retirement).
    claims.iat = Timestamp(retired.millis() - 60_000);
    claims.nbf = claims.iat;
    claims.exp = Timestamp(start.millis() + 3_600_000);
    assert!(v.verify_token(&claims.sign(&old_key)).is_ok());
    // Signed by the old key after its retirement: refused.
    let mut late = claims.clone();
    late.iat = Timestamp(retired.millis() + 1);
    late.nbf = late.iat;
    assert!(matches!(
        v.verify_token(&late.sign(&old_key)),
        Err(Refusal::KeyRetired(_))
    ));
    // Whoever holds the old key chooses iat, so "signed before retirement"
    // is not a defence against a stolen key; a lifetime no grant has is
    // refused all the same.
    let mut long = claims.clone();
    long.exp = Timestamp(long.iat.millis() + 25 * 3_600_000);
    assert!(matches!(
        v.verify_token(&long.sign(&old_key)),
        Err(Refusal::Malformed(_))
    ));
    // A key the broker never published: refused.
    let stranger_dir = tempfile::tempdir().expect("dir");
    pki::create_gate_keys(stranger_dir.path(), false).expect("keys");
    let stranger =
        pki::load_token_key(&stranger_dir.path().join(pki::TOKEN_KEY_FILE)).expect("key");
    assert!(matches!(
        v.verify_token(&claims.sign(&stranger)),
        Err(Refusal::UnknownKey(_))
    ));
    // A token altered after signing: refused.
    let mut forged = token_payload(&g.token);
    forged.aud = "globex".into();
    let tampered = splice_payload(&g.token, &forged);
    assert_eq!(v.verify_token(&tampered), Err(Refusal::BadSignature));

    // 24 h after retirement the old key leaves the published set.
    s.clock.set(Timestamp(retired.millis() + 24 * 3_600_000));
    let keys = published(&mut acme).await;
    assert_eq!(keys.token_keys.len(), 1, "only the current key");
    // A verifier that still holds the old set refuses by the window too.
    refresh(&v, &mut acme).await.expect("list");
    assert!(matches!(
        v.verify_token(&claims.sign(&old_key)),
        Err(Refusal::KeyRetired(_))
    ));
}

/// The next list on a revocation stream (within 10 s).
async fn next_list(stream: &mut tonic::Streaming<pb::RevocationList>) -> pb::RevocationList {
    tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("a list within 10 s")
        .expect("stream")
        .expect("open")
}

/// `token` with its payload replaced by `claims` and the old signature kept.
fn splice_payload(token: &str, claims: &GrantClaims) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let rest = token.trim_start_matches("v4.public.");
    let (body, footer) = rest.split_once('.').expect("footer");
    let bytes = b64.decode(body).expect("base64");
    let sig = &bytes[bytes.len() - 64..];
    let mut m = serde_json::to_vec(claims).expect("json");
    m.extend_from_slice(sig);
    format!("v4.public.{}.{footer}", b64.encode(m))
}

/// A report sent later says when the access happened and is logged even if
/// the grant has ended since (an offline admission must not vanish from the
/// log); a report id makes a retried report count once, across restarts.
#[tokio::test]
async fn late_and_repeated_access_reports_are_logged_once_as_what_happened() {
    let mut s = TestServer::start().await;
    let mut alice = s.enrol("alice", Role::Support).await;
    let mut acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let g = request(&mut alice, "acme", "INC-8").await;
    let admitted_at = s.clock.now();
    let report = |at: Timestamp, id: &str| pb::RecordAccessRequest {
        grant_id: g.id.clone(),
        action: "ssh".into(),
        resource: "web-1".into(),
        accessed_at_ms: at.millis(),
        report_id: id.into(),
    };

    // Admitted offline while active; the grant is revoked; the report
    // arrives afterwards: logged, within the grant.
    s.clock.advance_secs(5);
    revoke(&mut acme, &g.id, "").await;
    let revoked_at = s.clock.now();
    s.clock.advance_secs(20);
    let first = acme
        .grants
        .record_access(report(admitted_at, "r-1"))
        .await
        .expect("late report")
        .into_inner();
    assert!(first.within_grant && !first.duplicate, "{first:?}");
    assert!(first.receipt.is_some());
    // The same report again (a retry after a lost answer): the first entry.
    let again = acme
        .grants
        .record_access(report(admitted_at, "r-1"))
        .await
        .expect("retry")
        .into_inner();
    assert!(again.duplicate, "{again:?}");
    assert_eq!(
        (again.log_seq, &again.entry_hash),
        (first.log_seq, &first.entry_hash)
    );
    assert!(again.receipt.is_none(), "nothing new was written");
    // An id names one report: reused for another access, it is refused.
    let mut other = report(admitted_at, "r-1");
    other.action = "scp".into();
    let st = acme
        .grants
        .record_access(other)
        .await
        .expect_err("a reused id");
    assert_eq!(st.code(), tonic::Code::AlreadyExists, "{}", st.message());
    assert!(st.message().contains("already used for another access"));

    // Admitted offline in the window after the revocation (the tenant's
    // list was still fresh): logged too, marked outside the grant.
    let in_window = Timestamp(revoked_at.millis() + 3_000);
    let late = acme
        .grants
        .record_access(report(in_window, "r-2"))
        .await
        .expect("window report")
        .into_inner();
    assert!(!late.within_grant && !late.duplicate, "{late:?}");
    // Its retry answers as the first did.
    let late_again = acme
        .grants
        .record_access(report(in_window, "r-2"))
        .await
        .expect("window report again")
        .into_inner();
    assert!(
        late_again.duplicate && !late_again.within_grant,
        "{late_again:?}"
    );
    assert_eq!(late_again.log_seq, late.log_seq);
    // Without a time the access is about to happen: refused now.
    let st = acme
        .grants
        .record_access(report(Timestamp(0), ""))
        .await
        .expect_err("the grant has ended");
    assert_eq!(st.code(), tonic::Code::FailedPrecondition);

    // Times and ids a report may not have.
    let now = s.clock.now();
    for (what, req, says) in [
        (
            "an access in the future",
            report(Timestamp(now.millis() + 6 * 60_000), "r-3"),
            "more than 5 minutes in the future",
        ),
        (
            "an access 8 days ago",
            report(Timestamp(now.millis() - 8 * 86_400_000), "r-4"),
            "more than 7 days in the past",
        ),
        (
            "a report id with a space",
            report(admitted_at, "r 5"),
            "report_id must be 1 to 64 characters",
        ),
        (
            "a 65-character report id",
            report(admitted_at, &"r".repeat(65)),
            "report_id must be 1 to 64 characters",
        ),
    ] {
        let st = acme.grants.record_access(req).await.expect_err(what);
        assert_eq!(st.code(), tonic::Code::InvalidArgument, "{what}");
        assert!(st.message().contains(says), "{what}: {}", st.message());
    }

    // The log says what happened, once each.
    let entries = s.entries().await;
    let accesses: Vec<_> = entries
        .iter()
        .filter(|e| e.entry.kind == "access.recorded")
        .collect();
    assert_eq!(accesses.len(), 2, "{accesses:?}");
    let d = &accesses[0].entry.details;
    assert_eq!(d.get("accessed_at"), Some(&admitted_at.to_rfc3339()));
    assert_eq!(d.get("within_grant").map(String::as_str), Some("true"));
    assert_eq!(d.get("report_id").map(String::as_str), Some("r-1"));
    let d = &accesses[1].entry.details;
    assert_eq!(d.get("within_grant").map(String::as_str), Some("false"));

    // The index survives a restart: the retry is still a duplicate.
    s.restart().await;
    let mut acme = s.tenant("acme").await;
    let after = acme
        .grants
        .record_access(report(admitted_at, "r-1"))
        .await
        .expect("retry after restart")
        .into_inner();
    assert!(after.duplicate);
    assert_eq!(after.log_seq, first.log_seq);
    // Another tenant's report ids are its own: globex may use "r-1" too
    // (for its own grant).
    let mut globex = s.add_tenant("globex", ApprovalPolicy::Auto, false).await;
    let mut alice = s.staff("alice").await;
    let gg = request(&mut alice, "globex", "INC-9").await;
    let theirs = globex
        .grants
        .record_access(pb::RecordAccessRequest {
            grant_id: gg.id,
            action: "ssh".into(),
            resource: String::new(),
            accessed_at_ms: s.clock.now().millis(),
            report_id: "r-1".into(),
        })
        .await
        .expect("globex report")
        .into_inner();
    assert!(!theirs.duplicate && theirs.within_grant);
}

/// A tenant may hold a bounded number of revocation streams; a closed one
/// frees its slot.
#[tokio::test]
async fn revocation_streams_per_tenant_are_bounded() {
    let s = TestServer::start().await;
    let mut acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let mut open = Vec::new();
    for _ in 0..daypass::gate::MAX_WATCHERS_PER_TENANT {
        let mut stream = acme
            .gate
            .watch_revocations(pb::WatchRevocationsRequest {})
            .await
            .expect("watch")
            .into_inner();
        next_list(&mut stream).await;
        open.push(stream);
    }
    let st = acme
        .gate
        .watch_revocations(pb::WatchRevocationsRequest {})
        .await
        .expect_err("one too many");
    assert_eq!(
        st.code(),
        tonic::Code::ResourceExhausted,
        "{}",
        st.message()
    );
    assert!(st.message().contains("one per gateway is enough"));
    // Another tenant is not affected.
    let mut globex = s.add_tenant("globex", ApprovalPolicy::Auto, false).await;
    let mut theirs = globex
        .gate
        .watch_revocations(pb::WatchRevocationsRequest {})
        .await
        .expect("globex watches")
        .into_inner();
    next_list(&mut theirs).await;
    // Closing one frees a slot (once the server notices).
    drop(open.pop());
    let mut reopened = None;
    for _ in 0..100 {
        match acme
            .gate
            .watch_revocations(pb::WatchRevocationsRequest {})
            .await
        {
            Ok(r) => {
                reopened = Some(r.into_inner());
                break;
            }
            Err(st) => {
                assert_eq!(st.code(), tonic::Code::ResourceExhausted);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    let mut reopened = reopened.expect("a slot was freed");
    next_list(&mut reopened).await;
}
