//! Break-glass grants (docs/security.md, "Break-glass"): a root holder
//! opens one at once on a tenant whose policy needs approval; support only
//! where the tenant allows it (an admin's `SetTenantBreakGlass`, logged and
//! replayed); the break-glass default and maximum length; expiry at the
//! TTL, to the millisecond, on the injected clock; the tenant's other rules
//! still apply; an alert on every opening and on an unjustified verdict;
//! the review by a second person, once (never the holder); the review
//! queue (`grant pending --reviews`); all of it through a restart, `audit
//! check` and the log's rules.

#![allow(clippy::unwrap_used)]

mod common;

use common::{cli, https, *};
use daypass::{audit::SealedEntry, clock::Clock as _, identity::PrincipalKind, pb};
use tonic::Code;

fn break_glass(tenant: &str, reason: &str, seconds: i64) -> pb::RequestGrantRequest {
    pb::RequestGrantRequest {
        break_glass: true,
        ..grant_request(tenant, reason, seconds)
    }
}

async fn open(
    c: &mut daypass::client::Clients,
    tenant: &str,
    seconds: i64,
) -> Result<pb::Grant, tonic::Status> {
    c.grants
        .request_grant(break_glass(tenant, "INC-77: production down", seconds))
        .await
        .map(|r| r.into_inner())
}

async fn review(
    c: &mut daypass::client::Clients,
    id: &str,
    verdict: &str,
) -> Result<pb::Grant, tonic::Status> {
    c.grants
        .review_grant(pb::ReviewGrantRequest {
            grant_id: id.into(),
            verdict: verdict.into(),
            note: format!("checked INC-77: {verdict}"),
        })
        .await
        .map(|r| r.into_inner())
}

async fn allow_support(s: &TestServer, tenant: &str, on: bool) -> pb::Tenant {
    s.admin()
        .await
        .tenants
        .set_tenant_break_glass(pb::SetTenantBreakGlassRequest {
            tenant: tenant.into(),
            allow_support: on,
        })
        .await
        .unwrap()
        .into_inner()
}

async fn reviews(c: &mut daypass::client::Clients) -> Vec<String> {
    c.grants
        .list_grants(pb::ListGrantsRequest {
            awaiting_review: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .grants
        .into_iter()
        .map(|g| g.id)
        .collect()
}

fn refused(r: Result<pb::Grant, tonic::Status>, code: Code, says: &str) {
    let e = r.expect_err("refused");
    assert_eq!(e.code(), code, "{e:?}");
    assert!(
        e.message().contains(says),
        "{:?} should say {says:?}",
        e.message()
    );
}

fn about<'e>(entries: &'e [SealedEntry], kind: &str, grant: &str) -> Vec<&'e SealedEntry> {
    entries
        .iter()
        .filter(|e| {
            e.entry.kind == kind && e.entry.details.get("grant").map(String::as_str) == Some(grant)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_opens_at_once_and_support_only_where_the_tenant_allows_it() {
    let s = TestServer::start().await;
    let mut acme = s
        .add_tenant("acme", pb::ApprovalPolicy::Tenant, false)
        .await;
    s.add_tenant("globex", pb::ApprovalPolicy::TenantAndPeer, false)
        .await;
    s.add_tenant("ticketco", pb::ApprovalPolicy::Tenant, true)
        .await;
    let mut root = s.enrol("rory", pb::Role::Root).await;
    let mut alice = s.enrol("alice", pb::Role::Support).await;
    let mut eve = s.enrol("eve", pb::Role::Auditor).await;

    // Root, on a tenant-approval tenant: active at once, for the default 1 h.
    let t0 = s.clock.now();
    let g = open(&mut root, "acme", 0).await.unwrap();
    assert_eq!(g.state(), pb::GrantState::Active);
    assert!(g.break_glass);
    assert!(g.review.is_none());
    assert!(g.approvals.is_empty());
    assert_eq!(g.approval(), pb::ApprovalPolicy::Tenant);
    assert_eq!(g.duration_seconds, 3600);
    assert_eq!(g.activated_at_ms, t0.millis());
    assert_eq!(g.expires_at_ms, t0.millis() + 3_600_000);
    assert!(!g.token.is_empty(), "the holder gets its token at once");

    // Support: refused until the tenant allows it, then allowed.
    refused(
        open(&mut alice, "acme", 0).await,
        Code::PermissionDenied,
        "lets only root holders",
    );
    // Neither an auditor (no grants at all) nor the tenant itself.
    refused(open(&mut eve, "acme", 0).await, Code::PermissionDenied, "");
    refused(open(&mut acme, "acme", 0).await, Code::PermissionDenied, "");
    let t = allow_support(&s, "acme", true).await;
    assert!(t.break_glass_support);
    let a = open(&mut alice, "acme", 30 * 60).await.unwrap();
    assert_eq!(a.state(), pb::GrantState::Active);
    assert_eq!(a.expires_at_ms, s.clock.now().millis() + 1_800_000);
    // Only that tenant: globex still takes root holders only.
    refused(
        open(&mut alice, "globex", 0).await,
        Code::PermissionDenied,
        "tenant globex lets only root holders",
    );
    // The setting can be taken back; then support is refused again.
    allow_support(&s, "acme", false).await;
    release(&mut alice, &a.id).await;
    refused(
        open(&mut alice, "acme", 0).await,
        Code::PermissionDenied,
        "lets only root holders",
    );

    // The break-glass maximum (4 h by default), whatever the grant maximum.
    refused(
        open(&mut root, "globex", 4 * 3600 + 1).await,
        Code::InvalidArgument,
        "exceeds the break-glass maximum of 14400 s",
    );
    let long = open(&mut root, "globex", 4 * 3600).await.unwrap();
    assert_eq!(long.duration_seconds, 4 * 3600);

    // An emergency skips approval, not the tenant's other rules.
    refused(
        open(&mut root, "ticketco", 0).await,
        Code::InvalidArgument,
        "requires a ticket",
    );

    // No stacking either: root holds acme already.
    refused(
        open(&mut root, "acme", 0).await,
        Code::AlreadyExists,
        "already hold",
    );

    // It expires at its TTL, to the millisecond, like any grant.
    s.clock.set(daypass::clock::Timestamp(g.expires_at_ms - 1));
    assert!(validate(&mut acme, &g.id).await.allowed);
    s.clock.set(daypass::clock::Timestamp(g.expires_at_ms));
    let r = validate(&mut acme, &g.id).await;
    assert!(!r.allowed);
    assert_eq!(deny_reason(&r), pb::DenyReason::Expired);

    // The log: both entries of a break-glass grant say so, the activation
    // is the holder's own (no approval), the request names the policy it
    // skipped and waits for nothing; an ordinary grant's say nothing.
    let entries = s.entries().await;
    let requested = about(&entries, "grant.requested", &g.id);
    let activated = about(&entries, "grant.activated", &g.id);
    assert_eq!((requested.len(), activated.len()), (1, 1));
    let (rq, ac) = (&requested[0].entry, &activated[0].entry);
    assert_eq!(rq.details["break_glass"], "true");
    assert_eq!(rq.details["approval"], "tenant");
    assert_eq!(rq.details["duration_secs"], "3600");
    assert!(!rq.details.contains_key("pending_until"));
    assert_eq!(ac.details["break_glass"], "true");
    assert_eq!(ac.actor, "staff/rory");
    assert_eq!(ac.seq, rq.seq + 1);
    assert!(about(&entries, "grant.approved", &g.id).is_empty());
    let set: Vec<_> = entries
        .iter()
        .filter(|e| e.entry.kind == "tenant.break_glass_set")
        .map(|e| {
            (
                e.entry.tenant.as_str(),
                e.entry.details["allow_support"].as_str(),
            )
        })
        .collect();
    assert_eq!(set, [("acme", "true"), ("acme", "false")]);
    let ordinary = request(&mut alice, "globex", "INC-78 routine").await;
    let entries = s.entries().await;
    let plain = about(&entries, "grant.requested", &ordinary.id);
    assert_eq!(plain.len(), 1);
    assert!(!plain[0].entry.details.contains_key("break_glass"));
    assert!(s.verify_chain().await.ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_person_reviews_it_once_and_the_queue_empties() {
    let mut s = TestServer::start().await;
    let mut acme = s
        .add_tenant("acme", pb::ApprovalPolicy::Tenant, false)
        .await;
    let mut globex = s
        .add_tenant("globex", pb::ApprovalPolicy::Auto, false)
        .await;
    let mut rory = s.enrol("rory", pb::Role::Root).await;
    let mut rita = s.enrol("rita", pb::Role::Root).await;
    let mut alice = s.enrol("alice", pb::Role::Support).await;
    let mut eve = s.enrol("eve", pb::Role::Auditor).await;
    let mut admin = s.admin().await;

    let ordinary = request(&mut alice, "globex", "INC-1 routine").await;
    let g = open(&mut rory, "acme", 0).await.unwrap();
    s.clock.advance_secs(600);
    let h = open(&mut rita, "globex", 0).await.unwrap();

    // The queue: oldest first, for everyone who may review, never the holder.
    assert_eq!(reviews(&mut admin).await, [g.id.clone(), h.id.clone()]);
    assert_eq!(reviews(&mut eve).await, [g.id.clone(), h.id.clone()]);
    assert_eq!(reviews(&mut rory).await, vec![h.id.clone()]);
    assert_eq!(reviews(&mut rita).await, vec![g.id.clone()]);
    assert_eq!(reviews(&mut acme).await, vec![g.id.clone()]);
    assert_eq!(reviews(&mut globex).await, vec![h.id.clone()]);
    let e = alice
        .grants
        .list_grants(pb::ListGrantsRequest {
            awaiting_review: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(e.into_inner().grants.is_empty(), "support reviews nothing");

    // Who may not: the holder, support, another tenant; nor an ordinary grant.
    refused(
        review(&mut rory, &g.id, "justified").await,
        Code::PermissionDenied,
        "holder cannot review their own",
    );
    refused(
        review(&mut alice, &g.id, "justified").await,
        Code::PermissionDenied,
        "ReviewGrant",
    );
    refused(
        review(&mut globex, &g.id, "justified").await,
        Code::NotFound,
        "not found",
    );
    refused(
        review(&mut admin, &ordinary.id, "justified").await,
        Code::FailedPrecondition,
        "not a break-glass grant",
    );

    // Another root holder reviews it: kept on the grant, logged.
    let t = s.clock.now();
    let done = review(&mut rita, &g.id, "justified").await.unwrap();
    let r = done.review.clone().expect("review");
    assert_eq!(
        (r.by.as_str(), r.verdict.as_str(), r.at_ms),
        ("staff/rita", "justified", t.millis())
    );
    assert_eq!(r.note, "checked INC-77: justified");
    assert_eq!(
        done.state(),
        pb::GrantState::Active,
        "a review changes no state"
    );
    // Once: a second review, by anyone, is refused.
    refused(
        review(&mut eve, &g.id, "unjustified").await,
        Code::FailedPrecondition,
        "already reviewed by staff/rita",
    );
    refused(
        review(&mut acme, &g.id, "justified").await,
        Code::FailedPrecondition,
        "reviewed once",
    );
    assert_eq!(reviews(&mut admin).await, vec![h.id.clone()]);
    assert_eq!(reviews(&mut acme).await, Vec::<String>::new());

    // After it ended, it can still be reviewed (and still waits until then).
    release(&mut rita, &h.id).await;
    assert_eq!(reviews(&mut eve).await, vec![h.id.clone()]);

    let entries = s.entries().await;
    let logged = about(&entries, "grant.reviewed", &g.id);
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0].entry.actor, "staff/rita");
    assert_eq!(logged[0].entry.details["verdict"], "justified");
    assert_eq!(logged[0].entry.details["holder"], "rory");

    // A restart keeps the review and the queue (the store agrees with the
    // log, or the server would be fail-closed and refuse these calls).
    s.restart().await;
    let mut admin = s.admin().await;
    let mut eve = s.auditor("eve").await;
    let shown = get_grant(&mut admin, &g.id).await;
    assert_eq!(shown.review.expect("kept").by, "staff/rita");
    assert!(shown.break_glass);
    assert_eq!(reviews(&mut admin).await, vec![h.id.clone()]);
    let done = review(&mut eve, &h.id, "unjustified").await.unwrap();
    assert_eq!(done.review.expect("review").by, "auditor/eve");
    assert_eq!(reviews(&mut admin).await, Vec::<String>::new());
    let mut acme = s.tenant("acme").await;
    refused(
        review(&mut acme, &g.id, "justified").await,
        Code::FailedPrecondition,
        "already reviewed",
    );
    assert!(s.verify_chain().await.ok);

    // The tenant setting is replayed too.
    allow_support(&s, "globex", true).await;
    s.restart().await;
    let mut alice = s.staff("alice").await;
    release(&mut alice, &ordinary.id).await;
    assert!(open(&mut alice, "globex", 0).await.unwrap().break_glass);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_opening_and_every_unjustified_verdict_raises_an_alert() {
    let s = TestServer::start_with(|c| c.alerts.enabled = true).await;
    s.add_tenant("acme", pb::ApprovalPolicy::Tenant, false)
        .await;
    let mut rory = s.enrol("rory", pb::Role::Root).await;
    let mut admin = s.admin().await;
    let g = open(&mut rory, "acme", 0).await.unwrap();
    let rule_is = |rule: &'static str, grant: String| {
        move |e: &SealedEntry| {
            e.entry.kind == "alert.raised"
                && e.entry.details.get("rule").map(String::as_str) == Some(rule)
                && e.entry
                    .details
                    .get("summary")
                    .is_some_and(|s| s.contains(&grant))
        }
    };
    let raised = s
        .wait_for("a break-glass alert", rule_is("break-glass", g.id.clone()))
        .await;
    assert_eq!(raised.entry.details["severity"], "critical");
    assert_eq!(raised.entry.tenant, "acme");
    assert_eq!(raised.entry.details["subject"], "staff/rory");
    assert!(raised.entry.details["summary"].contains("BREAK-GLASS"));

    // A second opening raises again: no cool-down.
    release(&mut rory, &g.id).await;
    let g2 = open(&mut rory, "acme", 0).await.unwrap();
    s.wait_for(
        "a second break-glass alert",
        rule_is("break-glass", g2.id.clone()),
    )
    .await;

    // A justified verdict raises nothing; an unjustified one does.
    review(&mut admin, &g.id, "justified").await.unwrap();
    review(&mut admin, &g2.id, "unjustified").await.unwrap();
    let bad = s
        .wait_for(
            "an unjustified alert",
            rule_is("break-glass-unjustified", g2.id.clone()),
        )
        .await;
    assert_eq!(bad.entry.details["severity"], "critical");
    let entries = s.entries().await;
    let unjustified: Vec<_> = entries
        .iter()
        .filter(|e| {
            e.entry.kind == "alert.raised"
                && e.entry.details.get("rule").map(String::as_str)
                    == Some("break-glass-unjustified")
        })
        .collect();
    assert_eq!(unjustified.len(), 1, "only the unjustified verdict raised");
    assert!(s.verify_chain().await.ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_glass_on_the_command_line() {
    let s = TestServer::start().await;
    s.add_tenant("acme", pb::ApprovalPolicy::TenantAndPeer, false)
        .await;
    s.enrol("rory", pb::Role::Root).await;
    s.enrol("alice", pb::Role::Support).await;
    let work = tempfile::tempdir().unwrap();
    let run = |who: (PrincipalKind, &str), args: &[&str]| {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.extend(s.cli_flags(work.path(), who.0, who.1));
        cli::run_async(work.path().to_owned(), all)
    };
    let admin = (PrincipalKind::Staff, ADMIN);
    let rory = (PrincipalKind::Staff, "rory");
    let alice = (PrincipalKind::Staff, "alice");

    let out = run(
        alice,
        &[
            "grant",
            "request",
            "acme",
            "--break-glass",
            "--reason",
            "INC-5 outage",
        ],
    )
    .await;
    let err = cli::one_line_error(&out, "support refused");
    assert!(err.contains("lets only root holders"), "{err}");
    let out = run(
        admin,
        &["tenant", "break-glass", "acme", "--allow-support", "on"],
    )
    .await;
    let said = cli::assert_ok(&out, "tenant break-glass");
    assert!(said.contains("root holders and support may"), "{said}");

    let out = run(
        rory,
        &[
            "grant",
            "request",
            "acme",
            "--break-glass",
            "--reason",
            "INC-5 outage",
            "--duration",
            "30m",
            "--json",
        ],
    )
    .await;
    let json: serde_json::Value = serde_json::from_str(&cli::assert_ok(&out, "request")).unwrap();
    assert_eq!(json["break_glass"], true);
    assert_eq!(json["state"], "active");
    assert_eq!(json["duration_seconds"], 1800);
    let id = json["id"].as_str().unwrap().to_owned();

    let q = cli::assert_ok(
        &run(admin, &["grant", "pending", "--reviews"]).await,
        "queue",
    );
    assert!(
        q.contains(&id) && q.contains("OPENED") && q.contains("AGE"),
        "{q}"
    );
    let shown = cli::assert_ok(&run(admin, &["grant", "show", &id]).await, "show");
    assert!(
        shown.contains("BREAK-GLASS") && shown.contains("UNREVIEWED"),
        "{shown}"
    );
    let listed = cli::assert_ok(&run(rory, &["grant", "list"]).await, "list");
    assert!(listed.contains("active BREAK-GLASS"), "{listed}");

    let out = run(
        rory,
        &[
            "grant",
            "review",
            &id,
            "--verdict",
            "justified",
            "--note",
            "mine",
        ],
    )
    .await;
    let err = cli::one_line_error(&out, "holder refused");
    assert!(err.contains("holder cannot review"), "{err}");
    let out = run(
        admin,
        &["grant", "review", &id, "--verdict", "maybe", "--note", "x"],
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "clap refuses an unknown verdict"
    );
    let out = run(
        admin,
        &[
            "grant",
            "review",
            &id,
            "--verdict",
            "justified",
            "--note",
            "INC-5 confirmed",
        ],
    )
    .await;
    let said = cli::assert_ok(&out, "review");
    assert!(said.contains("reviewed break-glass grant"), "{said}");
    assert!(
        said.contains(&format!("justified by staff/{ADMIN}")),
        "{said}"
    );
    let q = cli::assert_ok(
        &run(admin, &["grant", "pending", "--reviews"]).await,
        "queue",
    );
    assert!(
        q.contains("no break-glass grant waits for your review"),
        "{q}"
    );
}

/// The log's rules (`audit check`, `audit verify`): a break-glass grant
/// needs its holder's right at the time and a length within the maximum;
/// its activation is the holder's, at the request; a review is by someone
/// allowed, never the holder, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_logs_rules_hold_break_glass_to_its_conditions() {
    use daypass::audit::state::{LogState, Rules};
    let s = TestServer::start().await;
    s.add_tenant("acme", pb::ApprovalPolicy::Tenant, false)
        .await;
    let mut rory = s.enrol("rory", pb::Role::Root).await;
    let mut alice = s.enrol("alice", pb::Role::Support).await;
    let mut admin = s.admin().await;
    allow_support(&s, "acme", true).await;
    let a = open(&mut alice, "acme", 2 * 3600).await.unwrap();
    let g = open(&mut rory, "acme", 0).await.unwrap();
    review(&mut admin, &g.id, "justified").await.unwrap();
    let entries: Vec<daypass::audit::Entry> =
        s.entries().await.into_iter().map(|e| e.entry).collect();
    let replay = |rules: Rules, entries: &[daypass::audit::Entry]| {
        let mut state = LogState::new(rules);
        entries.iter().try_for_each(|e| state.apply(e))
    };
    replay(Rules::default(), &entries).unwrap();
    let at = |entries: &[daypass::audit::Entry], kind: &str, grant: &str| {
        entries
            .iter()
            .position(|e| {
                e.kind == kind && e.details.get("grant").map(String::as_str) == Some(grant)
            })
            .unwrap()
    };

    // The tenant's setting gone: support had no right to break glass.
    let mut edited = entries.clone();
    let set = edited
        .iter()
        .position(|e| e.kind == "tenant.break_glass_set")
        .unwrap();
    edited[set].kind = "tenant.not_a_kind".into();
    let c = replay(Rules::default(), &edited).unwrap_err();
    assert_eq!(c.seq, edited[at(&edited, "grant.requested", &a.id)].seq);
    assert!(c.why.contains("lets only root holders"), "{}", c.why);

    // Longer than the break-glass maximum the log is held to.
    let c = replay(
        Rules {
            max_break_glass_secs: 3600,
            ..Rules::default()
        },
        &entries,
    )
    .unwrap_err();
    assert!(c.why.contains("at most 3600 s"), "{}", c.why);

    // The break_glass mark taken off the activation: then it is activated
    // without the tenant's approval.
    let mut edited = entries.clone();
    let i = at(&edited, "grant.activated", &g.id);
    edited[i].details.remove("break_glass");
    let c = replay(Rules::default(), &edited).unwrap_err();
    assert_eq!(c.seq, edited[i].seq);
    assert!(c.why.contains("without break_glass"), "{}", c.why);

    // Activated by someone else than the holder.
    let mut edited = entries.clone();
    edited[i].actor = "staff/alice".into();
    let c = replay(Rules::default(), &edited).unwrap_err();
    assert!(c.why.contains("only by its holder"), "{}", c.why);

    // Reviewed by its holder, or by support.
    let j = at(&entries, "grant.reviewed", &g.id);
    for (actor, says) in [
        ("staff/rory", "holder cannot review"),
        ("staff/alice", "not permitted for this role"),
    ] {
        let mut edited = entries.clone();
        edited[j].actor = actor.into();
        let c = replay(Rules::default(), &edited).unwrap_err();
        assert_eq!(c.seq, edited[j].seq);
        assert!(c.why.contains(says), "{actor}: {}", c.why);
    }
    // Reviewed twice.
    let mut edited = entries.clone();
    let mut again = edited[j].clone();
    // Linked into acme's scope right after the first review.
    again
        .details
        .insert("scope_prev".into(), format!("acme:{}", edited[j].seq));
    again.seq += 1;
    edited.insert(j + 1, again);
    let c = replay(Rules::default(), &edited).unwrap_err();
    assert!(c.why.contains("already reviewed"), "{}", c.why);
    // An unknown verdict.
    let mut edited = entries.clone();
    edited[j].details.insert("verdict".into(), "fine".into());
    let c = replay(Rules::default(), &edited).unwrap_err();
    assert!(c.why.contains("verdict must be"), "{}", c.why);
}

/// The break-glass lengths are checked at start-up: never above 24 h, the
/// default within the maximum.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_break_glass_lengths_are_validated_at_config_load() {
    let s = TestServer::start().await;
    let mut c = s.config.clone();
    c.grants.break_glass_max_secs = 86_401;
    let e = c.check().unwrap_err().to_string();
    assert!(e.contains("grants.break_glass_max_secs"), "{e}");
    let mut c = s.config.clone();
    c.grants.break_glass_default_secs = c.grants.break_glass_max_secs + 1;
    let e = c.check().unwrap_err().to_string();
    assert!(e.contains("grants.break_glass_default_secs"), "{e}");
    let mut c = s.config.clone();
    c.grants.break_glass_max_secs = 86_400;
    c.grants.break_glass_default_secs = 86_400;
    c.check().unwrap();

    // A configured default and maximum are what requests get.
    let s = TestServer::start_with(|c| {
        c.grants.break_glass_default_secs = 900;
        c.grants.break_glass_max_secs = 1800;
    })
    .await;
    s.add_tenant("acme", pb::ApprovalPolicy::Tenant, false)
        .await;
    let mut rory = s.enrol("rory", pb::Role::Root).await;
    refused(
        open(&mut rory, "acme", 1801).await,
        Code::InvalidArgument,
        "break-glass maximum of 1800 s",
    );
    let g = open(&mut rory, "acme", 0).await.unwrap();
    assert_eq!(g.duration_seconds, 900);
}

/// The warning screen shows a break-glass grant marked as such, and its
/// alert among the open ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_warning_screen_shows_it_loudly() {
    let s = TestServer::start_with(|c| {
        c.screen.enabled = true;
        c.alerts.enabled = true;
    })
    .await;
    let (ca, at) = (s.ca.cert_pem().to_owned(), s.screen_addr.expect("screen"));
    let code = s
        .admin()
        .await
        .screens
        .pair_screen(pb::PairScreenRequest {
            name: "office-wall".into(),
            ttl_secs: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .code;
    let paired = https::get(&ca, at, &format!("/pair?code={code}"), None).await;
    let cookie = paired
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned();
    s.add_tenant("acme", pb::ApprovalPolicy::Tenant, false)
        .await;
    let mut alice = s.enrol("alice", pb::Role::Support).await;
    let mut rory = s.enrol("rory", pb::Role::Root).await;
    let g = open(&mut rory, "acme", 0).await.unwrap();
    s.wait_for("the break-glass alert", |e| {
        e.entry.kind == "alert.raised"
            && e.entry.details.get("rule").map(String::as_str) == Some("break-glass")
    })
    .await;
    // An ordinary grant beside it, not marked.
    s.admin()
        .await
        .tenants
        .update_tenant(pb::UpdateTenantRequest {
            name: "acme".into(),
            approval: pb::ApprovalPolicy::Auto as i32,
            ..Default::default()
        })
        .await
        .unwrap();
    let o = request(&mut alice, "acme", "INC-8 routine").await;
    let view = https::get(&ca, at, "/api/view", Some(&cookie)).await;
    assert_eq!(view.status, 200);
    let v: serde_json::Value = serde_json::from_str(&view.body).unwrap();
    let row = |id: &str| {
        v["grants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} not on the screen: {v}"))
    };
    assert_eq!(row(&g.id)["break_glass"], true);
    assert_eq!(row(&o.id)["break_glass"], false);
    let alerts = v["alerts"].as_array().unwrap();
    assert!(
        alerts
            .iter()
            .any(|a| a["rule"] == "break-glass" && a["severity"] == "critical"),
        "{v}"
    );
    // The page marks the row.
    let page = https::get(&ca, at, "/screen.js", Some(&cookie)).await;
    assert!(page.body.contains("BREAK-GLASS"), "{}", page.body);
}

/// Access reports mark break-glass grants with their review state, list the
/// unreviewed ones first, and still verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_reports_mark_break_glass_grants_and_list_the_unreviewed() {
    let s = TestServer::start().await;
    s.add_tenant("acme", pb::ApprovalPolicy::Auto, false).await;
    let mut rory = s.enrol("rory", pb::Role::Root).await;
    let mut alice = s.enrol("alice", pb::Role::Support).await;
    let mut admin = s.admin().await;
    let t0 = s.clock.now();
    let reviewed = open(&mut rory, "acme", 0).await.unwrap();
    review(&mut admin, &reviewed.id, "unjustified")
        .await
        .unwrap();
    release(&mut rory, &reviewed.id).await;
    let unreviewed = open(&mut rory, "acme", 0).await.unwrap();
    let plain = request(&mut alice, "acme", "INC-9 routine").await;

    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("report");
    let (from, to) = (
        t0.plus_secs(-3600).to_rfc3339(),
        t0.plus_secs(3600).to_rfc3339(),
    );
    let mut args: Vec<String> = [
        "report",
        "access",
        "acme",
        "--from",
        &from,
        "--to",
        &to,
        "--out",
        dir.to_str().unwrap(),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    args.extend(s.cli_flags(work.path(), PrincipalKind::Staff, ADMIN));
    cli::assert_ok(
        &cli::run_async(work.path().to_owned(), args).await,
        "report access",
    );
    let csv = std::fs::read_to_string(dir.join("grants.csv")).unwrap();
    let header = csv.split("\r\n").next().unwrap();
    assert!(
        header.ends_with(",requested_seq,break_glass,review"),
        "{header}"
    );
    let row = |id: &str| {
        csv.split("\r\n")
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("{id} not in {csv}"))
            .to_owned()
    };
    assert!(
        row(&reviewed.id).contains(&format!(",true,unjustified by staff/{ADMIN} at ")),
        "{csv}"
    );
    assert!(row(&unreviewed.id).ends_with(",true,unreviewed"), "{csv}");
    assert!(row(&plain.id).ends_with(",false,"), "{csv}");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    let loud = html
        .find("UNREVIEWED BREAK-GLASS GRANTS (1)")
        .unwrap_or_else(|| panic!("{html}"));
    let table = &html[loud..html.find("<h2>Grants (").unwrap()];
    assert!(
        table.contains(&unreviewed.id) && !table.contains(&reviewed.id),
        "{table}"
    );

    let key = s.log_verifier().to_string();
    let out = cli::run_async(
        work.path().to_owned(),
        ["report", "verify", dir.to_str().unwrap(), "--log-key", &key]
            .iter()
            .map(|a| a.to_string())
            .collect(),
    )
    .await;
    cli::assert_ok(&out, "report verify");
}
