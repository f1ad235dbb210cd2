//! The monitor end to end: real server, real mutual TLS, scripted activity
//! on the injected clock. Each rule fires on what it is for; an ordinary
//! day of 200 grants raises nothing; alerts are listed by who may see
//! them and acknowledged and resolved by a named person, all in the log;
//! a store that refused writes raises one system-health alert once it
//! writes again; and after a SIGKILL of the real `daypass serve` in a burst, the monitor
//! resumes from its cursor with no alert lost and none raised twice.

mod common;

use std::{collections::HashMap, time::Duration};

use chrono::{Datelike as _, TimeZone as _};
use common::*;
use daypass::{
    clock::{Clock as _, SystemClock, Timestamp},
    identity::PrincipalKind,
    monitor,
    pb::{self, ApprovalPolicy},
};
use tonic::Code;

/// 10:00 UTC (11:00 at the default +01:00) on the next weekday at least a
/// day ahead: inside the default office hours.
fn next_weekday_10() -> Timestamp {
    let now = chrono::Utc
        .timestamp_millis_opt(SystemClock.now().millis())
        .single()
        .expect("now");
    let mut day = now.date_naive() + chrono::Days::new(1);
    while day.weekday().num_days_from_monday() >= 5 {
        day = day + chrono::Days::new(1);
    }
    let t = day.and_hms_opt(10, 0, 0).expect("10:00").and_utc();
    Timestamp(t.timestamp_millis())
}

async fn monitored() -> TestServer {
    let s = TestServer::start_with(|c| c.alerts.enabled = true).await;
    s.clock.set(next_weekday_10());
    s
}

/// Alerts as `clients` see them, once `want` holds (the monitor follows the
/// log asynchronously; real time, bounded).
#[allow(clippy::disallowed_methods)]
async fn alerts_until(
    clients: &mut daypass::client::Clients,
    want: impl Fn(&[pb::Alert]) -> bool,
) -> Vec<pb::Alert> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let got = clients
            .alerts
            .list_alerts(pb::ListAlertsRequest {
                include_resolved: true,
                ..Default::default()
            })
            .await
            .expect("list alerts")
            .into_inner()
            .alerts;
        if want(&got) {
            return got;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "alerts never became what the test expects: {got:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn rule_count(a: &[pb::Alert], rule: &str) -> usize {
    a.iter().filter(|a| a.rule == rule).count()
}

#[tokio::test]
async fn every_rule_fires_on_the_activity_it_is_for() {
    let s = monitored().await;
    let mut admin = s.admin().await;
    for t in ["acme", "t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8"] {
        s.add_tenant(t, ApprovalPolicy::Auto, false).await;
    }
    let mut alice = s.enrol("alice", pb::Role::Support).await;
    let mut rita = s.enrol("rita", pb::Role::Root).await;
    let mut pat = s.enrol("pat", pb::Role::Partnerships).await;
    let mut olga = s.enrol("olga", pb::Role::Support).await;
    let mut acme = s.tenant("acme").await;

    // many-tenants: grants in eight tenants within two hours.
    for t in ["t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8"] {
        request_lasting(&mut alice, t, "customer ticket", 600).await;
    }
    // root-activity.
    request_lasting(&mut rita, "acme", "incident", 600).await;
    // no-access-role: a partnerships advisor tries to get in.
    let e = alice_like_request(&mut pat).await;
    assert_eq!(e, Code::PermissionDenied);
    // offboarded-use: offboarded, then the old certificate is used.
    admin
        .staff
        .offboard_staff(pb::OffboardStaffRequest {
            name: "olga".into(),
        })
        .await
        .expect("offboard");
    assert_eq!(alice_like_request(&mut olga).await, Code::PermissionDenied);
    // denied-burst: ten denied validations of the tenant within minutes.
    for _ in 0..10 {
        let v = validate(&mut acme, "g-000000000000000000000000").await;
        assert!(!v.allowed);
        s.clock.advance_secs(5);
    }
    // off-hours: a grant activated at 22:00 local.
    s.clock.advance_secs(11 * 3600);
    let mut bob = s.enrol("bob", pb::Role::Support).await;
    request_lasting(&mut bob, "acme", "night shift", 600).await;

    let all = alerts_until(&mut admin, |a| {
        [
            "many-tenants",
            "root-activity",
            "no-access-role",
            "offboarded-use",
            "denied-burst",
            "off-hours",
        ]
        .iter()
        .all(|r| rule_count(a, r) >= 1)
    })
    .await;
    let by_rule: HashMap<&str, &pb::Alert> = all.iter().map(|a| (a.rule.as_str(), a)).collect();
    assert_eq!(by_rule["many-tenants"].subject, "staff/alice");
    assert_eq!(by_rule["many-tenants"].trigger_seqs.len(), 8);
    assert_eq!(by_rule["offboarded-use"].severity, "critical");
    assert_eq!(by_rule["offboarded-use"].subject, "staff/olga");
    assert_eq!(by_rule["no-access-role"].subject, "staff/pat");
    assert_eq!(by_rule["denied-burst"].subject, "tenant/acme");
    assert_eq!(by_rule["denied-burst"].tenant, "acme");
    assert_eq!(by_rule["off-hours"].subject, "staff/bob");
    assert_eq!(by_rule["root-activity"].subject, "staff/rita");
    // The day-time grants of alice raised no off-hours alert.
    assert_eq!(rule_count(&all, "off-hours"), 1, "{all:#?}");

    // Every alert is an entry whose seqs point at what triggered it.
    let entries = s.entries().await;
    let burst = by_rule["denied-burst"];
    for seq in &burst.trigger_seqs {
        assert_eq!(entries[*seq as usize].entry.kind, "validation.denied");
    }
    let raised: Vec<_> = entries
        .iter()
        .filter(|e| e.entry.kind == "alert.raised")
        .collect();
    assert_eq!(raised.len(), all.len());
    assert!(raised.iter().any(|e| e.entry.details["alert"] == burst.id
        && e.entry.tenant == "acme"
        && e.entry.details["rule"] == "denied-burst"));
}

/// A grant request that policy refuses; its code.
async fn alice_like_request(c: &mut daypass::client::Clients) -> Code {
    c.grants
        .request_grant(grant_request("acme", "let me in", 600))
        .await
        .expect_err("refused")
        .code()
}

#[tokio::test]
async fn alerts_are_acknowledged_and_resolved_by_name_and_tenants_see_only_their_own() {
    let s = monitored().await;
    let mut admin = s.admin().await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    s.add_tenant("globex", ApprovalPolicy::Auto, false).await;
    let mut acme = s.tenant("acme").await;
    let mut globex = s.tenant("globex").await;
    for _ in 0..10 {
        validate(&mut acme, "g-000000000000000000000000").await;
    }
    let all = alerts_until(&mut admin, |a| rule_count(a, "denied-burst") == 1).await;
    let id = all[0].id.clone();

    // Tenants see alerts about themselves only; auditors read.
    let theirs = |c: &mut daypass::client::Clients| {
        let mut c = c.clone();
        async move {
            c.alerts
                .list_alerts(pb::ListAlertsRequest::default())
                .await
                .expect("list")
                .into_inner()
                .alerts
        }
    };
    assert_eq!(theirs(&mut acme).await.len(), 1);
    assert!(theirs(&mut globex).await.is_empty());
    let mut eve = s.enrol("eve", pb::Role::Auditor).await;
    assert_eq!(theirs(&mut eve).await.len(), 1);
    // A tenant asking for another tenant's alerts gets none.
    let other = acme
        .alerts
        .list_alerts(pb::ListAlertsRequest {
            tenant: "globex".into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert!(other.alerts.is_empty());

    // Acknowledge needs a note, happens once, and is logged by name.
    let no_note = admin
        .alerts
        .acknowledge_alert(pb::DecideAlertRequest {
            id: id.clone(),
            note: String::new(),
        })
        .await
        .expect_err("no note");
    assert_eq!(no_note.code(), Code::InvalidArgument);
    let acked = admin
        .alerts
        .acknowledge_alert(pb::DecideAlertRequest {
            id: id.clone(),
            note: "looking into acme's integration".into(),
        })
        .await
        .expect("ack")
        .into_inner();
    let a = acked.alert.expect("alert");
    assert_eq!(a.state, "acknowledged");
    assert_eq!(a.acknowledged_by, format!("staff/{ADMIN}"));
    assert!(acked.receipt.is_some());
    let again = admin
        .alerts
        .acknowledge_alert(pb::DecideAlertRequest {
            id: id.clone(),
            note: "again".into(),
        })
        .await
        .expect_err("twice");
    assert_eq!(again.code(), Code::FailedPrecondition);
    let resolved = admin
        .alerts
        .resolve_alert(pb::DecideAlertRequest {
            id: id.clone(),
            note: "their deploy used a stale grant id; fixed".into(),
        })
        .await
        .expect("resolve")
        .into_inner()
        .alert
        .expect("alert");
    assert_eq!(resolved.state, "resolved");
    // Resolved alerts leave the default list.
    let open = admin
        .alerts
        .list_alerts(pb::ListAlertsRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert!(open.alerts.is_empty());
    let kinds: Vec<String> = s
        .entries()
        .await
        .into_iter()
        .filter(|e| e.entry.details.get("alert") == Some(&id))
        .map(|e| format!("{} {}", e.entry.kind, e.entry.actor))
        .collect();
    assert_eq!(
        kinds,
        [
            "alert.raised system".to_owned(),
            format!("alert.acknowledged staff/{ADMIN}"),
            format!("alert.resolved staff/{ADMIN}"),
        ]
    );
    // Unknown and malformed ids say so.
    let unknown = admin
        .alerts
        .resolve_alert(pb::DecideAlertRequest {
            id: "a-000000000000000000000000".into(),
            note: "x".into(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(unknown.code(), Code::NotFound);
    let bad = admin
        .alerts
        .resolve_alert(pb::DecideAlertRequest {
            id: "alert-1".into(),
            note: "x".into(),
        })
        .await
        .expect_err("malformed");
    assert_eq!(bad.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn an_ordinary_day_of_200_grants_raises_nothing() {
    let mut s = monitored().await;
    let tenants: Vec<String> = (0..20).map(|i| format!("cust{i}")).collect();
    for t in &tenants {
        s.add_tenant(t, ApprovalPolicy::Auto, false).await;
    }
    let mut engineers = Vec::new();
    for i in 0..10 {
        engineers.push(s.enrol(&format!("eng{i}"), pb::Role::Support).await);
    }
    let mut tenant_clients = Vec::new();
    for t in &tenants {
        tenant_clients.push(s.tenant(t).await);
    }
    // 200 grants over an office day (11:00–17:40 local), each used a few
    // times and released, a typo'd validation now and then.
    for n in 0..200usize {
        let e = n % 10;
        let t = (n * 7 + n / 10) % 20;
        let g = request_lasting(&mut engineers[e], &tenants[t], "customer ticket", 1800).await;
        for _ in 0..3 {
            assert!(validate(&mut tenant_clients[t], &g.id).await.allowed);
            record_access(&mut tenant_clients[t], &g.id, "ssh", "web-1").await;
        }
        if n % 25 == 0 {
            validate(&mut tenant_clients[t], "g-000000000000000000000000").await;
        }
        release(&mut engineers[e], &g.id).await;
        s.clock.advance_secs(120);
    }
    let head = s.entries().await.len() as u64;
    s.stop().await;
    let ledger = s.open_ledger();
    // The monitor judged everything (its cursor is saved at the stop)...
    let cursor = ledger
        .cursor(monitor::CURSOR)
        .expect("read")
        .expect("saved");
    assert!(cursor >= head, "cursor {cursor}, log {head}");
    // ...and found nothing to say.
    let alerts = ledger.all_alerts().expect("alerts");
    assert!(alerts.is_empty(), "an ordinary day raised {alerts:#?}");
}

#[tokio::test]
async fn a_restart_resumes_from_the_cursor_without_raising_again() {
    let mut s = monitored().await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let mut acme = s.tenant("acme").await;
    for _ in 0..10 {
        validate(&mut acme, "g-000000000000000000000000").await;
    }
    let mut admin = s.admin().await;
    alerts_until(&mut admin, |a| a.len() == 1).await;
    s.restart().await;
    // Five more denials within the cool-down: the restarted monitor knows
    // it raised already (rebuilt from the log) and stays silent; after the
    // cool-down a new burst raises again.
    let mut acme = s.tenant("acme").await;
    for _ in 0..15 {
        validate(&mut acme, "g-000000000000000000000000").await;
    }
    s.clock.advance_secs(3601);
    for _ in 0..10 {
        validate(&mut acme, "g-000000000000000000000000").await;
    }
    let mut admin = s.admin().await;
    let got = alerts_until(&mut admin, |a| a.len() == 2).await;
    assert_eq!(rule_count(&got, "denied-burst"), 2);
    s.stop().await;
    assert_eq!(s.open_ledger().all_alerts().expect("alerts").len(), 2);
}

#[tokio::test]
async fn the_monitor_is_off_when_configured_off() {
    let mut s = TestServer::start_with(|c| c.alerts.enabled = false).await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let mut acme = s.client(PrincipalKind::Tenant, "acme").await;
    for _ in 0..20 {
        validate(&mut acme, "g-000000000000000000000000").await;
    }
    s.stop().await;
    let ledger = s.open_ledger();
    assert!(ledger.all_alerts().expect("alerts").is_empty());
    assert_eq!(ledger.cursor(monitor::CURSOR).expect("read"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_lists_acknowledges_and_resolves() {
    let s = monitored().await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let mut acme = s.tenant("acme").await;
    for _ in 0..10 {
        validate(&mut acme, "g-000000000000000000000000").await;
    }
    let mut admin = s.admin().await;
    let id = alerts_until(&mut admin, |a| a.len() == 1).await[0]
        .id
        .clone();
    let work = tempfile::tempdir().expect("dir");
    let flags = s.cli_flags(work.path(), PrincipalKind::Staff, ADMIN);
    let run = |extra: &[&str]| {
        // The connection flags go after the command.
        let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        args.extend(flags.iter().cloned());
        cli::run_async(work.path().to_owned(), args)
    };
    assert_eq!(open_alerts_metric(&s, "warning").await, "1");
    let out = run(&["alerts", "list"]).await;
    let listed = cli::assert_ok(&out, "alerts list");
    assert!(
        listed.lines().next().unwrap_or("").starts_with("id"),
        "{listed}"
    );
    assert!(
        listed.contains(&id) && listed.contains("denied-burst") && listed.contains("warning"),
        "{listed}"
    );
    let out = run(&["alerts", "list", "--severity", "critical"]).await;
    assert_eq!(
        cli::assert_ok(&out, "critical only"),
        "no open or acknowledged alerts\n"
    );
    let out = run(&["alerts", "ack", &id, "--note", "on it"]).await;
    assert!(cli::assert_ok(&out, "ack").starts_with(&format!("acknowledged {id}")));
    let out = run(&["alerts", "ack", &id, "--note", "again"]).await;
    cli::one_line_error(&out, "second ack");
    let out = run(&["--json", "alerts", "resolve", &id, "--note", "fixed"]).await;
    let v: serde_json::Value =
        serde_json::from_str(&cli::assert_ok(&out, "resolve")).expect("json");
    assert_eq!(v["alert"]["state"], "resolved");
    assert_eq!(v["alert"]["resolved_by"], format!("staff/{ADMIN}"));
    let out = run(&["alerts", "list"]).await;
    assert_eq!(
        cli::assert_ok(&out, "after"),
        "no open or acknowledged alerts\n"
    );
    let out = run(&["alerts", "list", "--all"]).await;
    assert!(cli::assert_ok(&out, "all").contains("resolved"));

    // `audit replay` tells the alert's story too.
    let out = run(&["audit", "replay", "--tenant", "acme"]).await;
    let replay = cli::assert_ok(&out, "replay");
    assert!(replay.contains("alerts:"), "{replay}");
    assert!(
        replay.contains("warning denied-burst [resolved]"),
        "{replay}"
    );
    assert!(
        replay.contains(&format!("acknowledged by staff/{ADMIN}")),
        "{replay}"
    );
    assert!(replay.contains(": fixed"), "{replay}");
    // Another tenant has no alerts; a tenant the log never names is said
    // to be unknown rather than shown as having none.
    s.add_tenant("globex", ApprovalPolicy::Auto, false).await;
    let out = run(&["--json", "audit", "replay", "--tenant", "globex"]).await;
    let v: serde_json::Value =
        serde_json::from_str(&cli::assert_ok(&out, "replay json")).expect("json");
    assert_eq!(v["alerts"].as_array().map(Vec::len), Some(0));
    let out = run(&["audit", "replay", "--tenant", "globexx"]).await;
    cli::assert_one_line_error(
        &out,
        "daypass: no tenant named \"globexx\" appears in the log",
    );
}

#[tokio::test]
async fn renewal_chains_access_outside_grants_floods_and_failed_checks() {
    let s = TestServer::start_with(|c| {
        c.alerts.enabled = true;
        c.limits.requests_per_minute = 1.0;
        c.limits.request_burst = 1.0;
    })
    .await;
    s.clock.set(next_weekday_10());
    let mut admin = s.admin().await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let mut acme = s.tenant("acme").await;
    let mut alice = s.enrol("alice", pb::Role::Support).await;

    // renewal-chain: 20 h, then again an hour after it ended (29 h in a row).
    let g = request_lasting(&mut alice, "acme", "migration", 20 * 3600).await;
    s.clock.advance_secs(20 * 3600 + 1);
    // outside-grant: the tenant reports an access at a time the grant was over.
    let late = acme
        .grants
        .record_access(pb::RecordAccessRequest {
            grant_id: g.id.clone(),
            action: "ssh".into(),
            resource: "db-1".into(),
            accessed_at_ms: s.clock.now().millis(),
            report_id: "r-1".into(),
        })
        .await;
    s.clock.advance_secs(3600);
    request_lasting(&mut alice, "acme", "migration, part two", 9 * 3600).await;
    // rate-flood: requests beyond the per-minute limit. One refusal a
    // minute is logged, with the count of those that were not.
    for i in 0..27 {
        if i == 25 {
            s.clock.advance_secs(60);
        }
        let _ = alice
            .grants
            .request_grant(grant_request("acme", "again", 600))
            .await;
    }
    // chain-check-failed is raised from a failed check's entry; a real
    // check of an intact log passes and raises nothing.
    s.verify_chain().await;

    let want = ["renewal-chain", "rate-flood", "outside-grant"];
    let all = alerts_until(&mut admin, |a| want.iter().all(|r| rule_count(a, r) == 1)).await;
    let late = late.expect("a late report is recorded").into_inner();
    assert!(!late.within_grant);
    assert_eq!(rule_count(&all, "chain-check-failed"), 0);
    let chain = all
        .iter()
        .find(|a| a.rule == "renewal-chain")
        .expect("chain");
    assert_eq!(chain.subject, "staff/alice");
    assert_eq!(chain.trigger_seqs.len(), 2);
}

#[tokio::test]
async fn an_alert_record_edited_on_disk_makes_the_server_fail_closed() {
    let mut s = monitored().await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let mut acme = s.tenant("acme").await;
    for _ in 0..10 {
        validate(&mut acme, "g-000000000000000000000000").await;
    }
    let mut admin = s.admin().await;
    let id = alerts_until(&mut admin, |a| a.len() == 1).await[0]
        .id
        .clone();
    drop((acme, admin));
    s.stop().await;
    // An operator hides the alert by marking it resolved in the store.
    {
        let db = sled_open(&s.data_dir());
        let t = db.open_tree("alerts").expect("tree");
        let mut v: serde_json::Value =
            serde_json::from_slice(&t.get(&id).expect("read").expect("stored")).expect("json");
        v["state"] = "resolved".into();
        t.insert(id.as_bytes(), serde_json::to_vec(&v).expect("json"))
            .expect("write");
        db.flush().expect("flush");
    }
    s.start_again().await;
    let mut acme = s.tenant("acme").await;
    let st = acme
        .grants
        .validate_grant(validate_request("g-000000000000000000000000"))
        .await
        .expect_err("fail-closed");
    assert_eq!(st.code(), Code::FailedPrecondition, "{st:?}");
    assert!(
        st.message().contains(&format!("alert/{id}")),
        "{}",
        st.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::disallowed_methods)]
async fn a_store_that_refused_writes_raises_one_alert_once_it_writes_again() {
    let mut s = TestServer::start_with(|c| {
        c.alerts.enabled = true;
        c.alerts.health_interval_ms = 20;
    })
    .await;
    s.clock.set(next_weekday_10());
    let mut admin = s.admin().await;
    let mut acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    // A flush fails: the store refuses writes (fail closed) until one
    // succeeds. No alert can be written meanwhile.
    s.faults.fail_flushes(true);
    let st = validate_err(&mut acme, "g-000000000000000000000000").await;
    assert_eq!(st.code(), Code::Unavailable);
    // The disk works again. No call arrives: the monitor's own retry
    // brings writes back, and the episode is raised once, after it.
    s.faults.fail_flushes(false);
    let all = alerts_until(&mut admin, |a| rule_count(a, "store-unwritable") >= 1).await;
    let a = all
        .iter()
        .find(|a| a.rule == "store-unwritable")
        .expect("the alert");
    assert_eq!(a.severity, "critical");
    assert_eq!(a.subject, "store");
    assert_eq!(a.tenant, "");
    assert!(a.trigger_seqs.is_empty(), "{a:?}");
    assert!(
        a.summary.starts_with("the store refused writes from ")
            && a.summary.contains("a flush failed"),
        "{}",
        a.summary
    );
    // The episode is over: many more samples raise nothing more (a bounded
    // look, as absence cannot be waited for).
    let until = std::time::Instant::now() + Duration::from_millis(500);
    while std::time::Instant::now() < until {
        let got = alerts_until(&mut admin, |_| true).await;
        assert_eq!(rule_count(&got, "store-unwritable"), 1, "{got:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !validate(&mut acme, "g-000000000000000000000000")
            .await
            .allowed
    );
    // The log vouches for the alert: the chain and its semantics check out,
    // and a restart's comparison of records and log finds nothing.
    let report = s.verify_chain().await;
    assert!(report.ok, "{}", report.problem);
    drop((admin, acme));
    s.restart().await;
    let mut acme = s.tenant("acme").await;
    assert!(
        !validate(&mut acme, "g-000000000000000000000000")
            .await
            .allowed
    );
    let mut admin = s.admin().await;
    let got = alerts_until(&mut admin, |_| true).await;
    assert_eq!(rule_count(&got, "store-unwritable"), 1, "{got:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::disallowed_methods)]
async fn a_log_that_stalls_while_calls_wait_raises_one_alert() {
    let s = TestServer::start_with(|c| {
        c.alerts.enabled = true;
        c.alerts.health_interval_ms = 20;
        c.alerts.log_stalled.stall_secs = 60;
    })
    .await;
    s.clock.set(next_weekday_10());
    let mut admin = s.admin().await;
    let mut acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    // The disk hangs: a call's commit waits for its flush, which does not
    // come; the log does not move.
    s.faults.hang_flushes(true);
    let waiting = tokio::spawn(async move {
        acme.grants
            .validate_grant(validate_request("g-000000000000000000000000"))
            .await
    });
    // The sampler sees the waiting commit and the still log over more than
    // stall_secs of the injected clock (each step is a few of its ticks).
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(60)).await;
        s.clock.advance_secs(61);
    }
    assert!(
        !waiting.is_finished(),
        "the call waits for the hanging disk"
    );
    // The disk comes back: the call finishes and the alert, which could
    // not be written while the log stood still, is written once.
    s.faults.hang_flushes(false);
    let answered = waiting
        .await
        .expect("task")
        .expect("the call succeeds late");
    assert!(!answered.into_inner().allowed);
    let all = alerts_until(&mut admin, |a| rule_count(a, "log-stalled") >= 1).await;
    let a = all.iter().find(|a| a.rule == "log-stalled").expect("alert");
    assert_eq!(
        (a.severity.as_str(), a.subject.as_str()),
        ("critical", "log")
    );
    assert!(a.summary.contains("commits waited"), "{}", a.summary);
    let until = std::time::Instant::now() + Duration::from_millis(300);
    while std::time::Instant::now() < until {
        let got = alerts_until(&mut admin, |_| true).await;
        assert_eq!(rule_count(&got, "log-stalled"), 1, "{got:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `daypass_alerts_open{severity}` as the metrics endpoint shows it.
async fn open_alerts_metric(s: &TestServer, severity: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let addr = s.metrics_addr.expect("a metrics listener");
    let mut c = tokio::net::TcpStream::connect(addr).await.expect("connect");
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut raw = String::new();
    c.read_to_string(&mut raw).await.expect("read");
    let prefix = format!("daypass_alerts_open{{severity=\"{severity}\"}} ");
    raw.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no {prefix} in {raw}"))
        .to_owned()
}
