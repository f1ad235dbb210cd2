//! Tenant termination and crypto-shredding (the agreement's Art 12.3:
//! return, then delete): `daypass tenant terminate` revokes the tenant's
//! grants, refuses new ones, exports its slice with proofs and its key,
//! and with `--confirm` destroys the key. Afterwards the export verifies
//! offline (and opens with the key), the log, tree and checkpoints still
//! verify, no byte of the data directory holds the tenant's reasons,
//! tickets, notes, resources or actions (the names of who had access stay,
//! as evidence), and other tenants are untouched.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{cli, *};
use daypass::{identity::PrincipalKind, pb};
use tonic::Code;

/// What acme's people typed and did: none of it may survive the shred.
const ACME_SECRETS: [&str; 6] = [
    "ACME-REASON-kestrel-disk",
    "ACME-TICKET-8812",
    "ACME-NOTE-revoked-osprey",
    "acme-resource-payroll-db",
    "acme-action-dump-table",
    "ACME-REASON-second-heron",
];
/// Globex's: kept, and still readable.
const GLOBEX_REASON: &str = "GLOBEX-REASON-lynx-cache";
const GLOBEX_RESOURCE: &str = "globex-resource-orders";

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read(&p)
                .unwrap()
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
            {
                hits.push(p.display().to_string());
            }
        }
    }
    hits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_exports_then_shreds_and_everything_still_verifies() {
    let mut s = TestServer::start().await;
    let mut acme = s.add_tenant("acme", pb::ApprovalPolicy::Auto, false).await;
    let mut globex = s
        .add_tenant("globex", pb::ApprovalPolicy::Auto, false)
        .await;
    let mut alice = s.enrol("alice", pb::Role::Support).await;
    let mut bob = s.enrol("bob", pb::Role::Support).await;
    let mut admin = s.admin().await;

    // acme: a grant with a ticket, revoked with a note; a live one with
    // access recorded.
    let mut req = grant_request("acme", ACME_SECRETS[0], 3600);
    req.ticket = ACME_SECRETS[1].into();
    let first = alice.grants.request_grant(req).await.unwrap().into_inner();
    revoke(&mut admin, &first.id, ACME_SECRETS[2]).await;
    let live = request(&mut alice, "acme", ACME_SECRETS[5]).await;
    record_access(&mut acme, &live.id, ACME_SECRETS[4], ACME_SECRETS[3]).await;
    // globex: a live grant with access recorded.
    let g = request(&mut bob, "globex", GLOBEX_REASON).await;
    record_access(&mut globex, &g.id, "read", GLOBEX_RESOURCE).await;
    let before = s.verify_chain().await;
    assert!(before.ok);

    // acme's record of processing, returned with the export.
    let record = daypass::domain::ProcessingRecord::from_toml(include_str!(
        "../examples/processing-record.toml"
    ))
    .unwrap();
    admin
        .processing
        .set_processing_record(pb::SetProcessingRecordRequest {
            tenant: "acme".into(),
            record: Some(daypass::rpc::record_to_pb(&record.to_raw())),
        })
        .await
        .unwrap();

    // Terminate, export and check, but no --confirm: nothing destroyed.
    let work = tempfile::tempdir().unwrap();
    let flags = s.cli_flags(work.path(), PrincipalKind::Staff, ADMIN);
    let out_dir = work.path().join("acme-return");
    let mut args: Vec<String> = ["tenant", "terminate", "acme", "--export"]
        .map(String::from)
        .to_vec();
    args.push(out_dir.display().to_string());
    args.extend(flags.iter().cloned());
    let out = cli::run_async(work.path().to_owned(), args.clone()).await;
    let err = cli::assert_ok(&out, "tenant terminate");
    let stderr = cli::text(&out.stderr);
    assert!(stderr.contains("1 grants revoked"), "{stderr}{err}");
    assert!(stderr.contains("not shredded yet"), "{stderr}");
    assert!(stderr.contains("--confirm acme"), "{stderr}");

    // The live grant is revoked (cause: tenant terminated), no new ones.
    let ended = get_grant(&mut alice, &live.id).await;
    assert_eq!(ended.state(), pb::GrantState::Revoked);
    let e = alice
        .grants
        .request_grant(grant_request("acme", "INC-9 after the end", 600))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(
        e.message().contains("tenant acme was terminated"),
        "{}",
        e.message()
    );
    assert_eq!(
        deny_reason(&validate(&mut acme, &live.id).await),
        pb::DenyReason::Revoked
    );

    // The export holds the slice, the checkpoint and the key (0600), and
    // verifies offline: proofs, signature, and every sealed entry opens.
    let log = out_dir.join("log.jsonl");
    let key = out_dir.join("tenant.key");
    let exported = std::fs::read_to_string(&log).unwrap();
    for secret in ACME_SECRETS {
        assert!(
            exported.contains(secret),
            "{secret} is returned in the export"
        );
    }
    assert!(!exported.contains(GLOBEX_REASON));
    // The register of processing document, JSON and Markdown, beside it.
    let register: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.join("processing-register.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(register["tenants"][0]["tenant"], "acme");
    assert_eq!(
        register["tenants"][0]["declared"]["sha256"],
        record.sha256()
    );
    assert_eq!(register["tenants"].as_array().unwrap().len(), 1);
    let md = std::fs::read_to_string(out_dir.join("processing-register.md")).unwrap();
    assert!(
        md.contains("Acme GmbH") && md.contains(&record.sha256()),
        "{md}"
    );
    assert!(md.contains("Terminated:"), "{md}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let log_pub = s.config.log_key_path().with_file_name("log.pub");
    let verify_args = |log: &Path, key: Option<&Path>| {
        let mut a = vec![
            "audit".to_string(),
            "verify".into(),
            log.display().to_string(),
            "--checkpoint".into(),
            out_dir.join("checkpoint").display().to_string(),
            "--log-key".into(),
            log_pub.display().to_string(),
        ];
        if let Some(k) = key {
            a.extend(["--tenant-key".into(), k.display().to_string()]);
        }
        a
    };
    let v = cli::run_async(work.path().to_owned(), verify_args(&log, Some(&key))).await;
    let said = cli::assert_ok(&v, "audit verify --tenant-key");
    assert!(said.contains("each proven included"), "{said}");
    assert!(cli::text(&v.stderr).contains("sealed entries open with it"));
    // An edited `opened` detail (not hashed) is caught by the key.
    let forged = work.path().join("forged.jsonl");
    std::fs::write(
        &forged,
        exported.replacen(ACME_SECRETS[0], "routine check", 1),
    )
    .unwrap();
    let v = cli::run_async(work.path().to_owned(), verify_args(&forged, Some(&key))).await;
    assert!(!v.status.success());
    assert!(
        cli::text(&v.stderr).contains("not what its ciphertext holds"),
        "{}",
        cli::text(&v.stderr)
    );
    // Another tenant's key does not open acme's entries: globex has one
    // only on the server, so a made-up key stands in.
    let wrong = work.path().join("wrong.key");
    std::fs::write(&wrong, "ab".repeat(32)).unwrap();
    let v = cli::run_async(work.path().to_owned(), verify_args(&log, Some(&wrong))).await;
    assert!(!v.status.success());

    // Now with --confirm: the key is destroyed.
    let mut confirmed = args.clone();
    confirmed.extend(["--confirm".into(), "acme".into()]);
    let out = cli::run_async(work.path().to_owned(), confirmed.clone()).await;
    cli::assert_ok(&out, "tenant terminate --confirm");
    assert!(
        cli::text(&out.stderr).contains("shredded"),
        "{}",
        cli::text(&out.stderr)
    );
    // A wrong --confirm is refused before anything happens.
    let mut wrong_confirm = args.clone();
    wrong_confirm.extend(["--confirm".into(), "globex".into()]);
    let out = cli::run_async(work.path().to_owned(), wrong_confirm).await;
    assert!(!out.status.success());

    let entries = s.entries().await;
    let k = kinds(&entries);
    assert!(
        k.contains(&"tenant.terminated") && k.contains(&"tenant.shredded"),
        "{k:?}"
    );
    let after = s.verify_chain().await;
    assert!(after.ok, "{after:?}");
    assert!(after.entries_checked > before.entries_checked);

    // Stopped (flushed), the data directory holds none of acme's
    // personal details; who had access stays; globex's are sealed too.
    s.stop().await;
    let data = s.data_dir();
    for secret in ACME_SECRETS {
        let hits = files_containing(&data, secret);
        assert!(hits.is_empty(), "{secret} is still in {hits:?}");
    }
    assert!(!files_containing(&data, "staff/alice").is_empty());
    assert!(files_containing(&data, GLOBEX_REASON).is_empty());
    assert!(data.join("tenant-keys/globex.key").exists());
    assert!(!data.join("tenant-keys/acme.key").exists());

    // After a restart (its records still match the log): the chain and
    // every stored checkpoint verify, acme's details are gone, globex's
    // are there.
    s.start_again().await;
    let mut alice = s.staff("alice").await;
    let mut bob = s.staff("bob").await;
    assert!(s.verify_chain().await.ok);
    let first_now = get_grant(&mut alice, &first.id).await;
    assert_eq!(first_now.reason, "");
    assert_eq!(first_now.ticket, "");
    assert_eq!(first_now.holder, "alice");
    assert_eq!(get_grant(&mut bob, &g.id).await.reason, GLOBEX_REASON);
    let entries = s.entries().await;
    for e in entries.iter().filter(|e| e.entry.tenant == "acme") {
        for secret in ACME_SECRETS {
            assert!(
                !e.entry.details.values().any(|v| v.contains(secret)),
                "{secret} in {e:?}"
            );
        }
    }
    let globex_access = entries
        .iter()
        .find(|e| e.entry.tenant == "globex" && e.entry.kind == "access.recorded")
        .unwrap();
    assert_eq!(globex_access.entry.details["resource"], GLOBEX_RESOURCE);

    // A new export of acme (nothing to open now) still verifies with its
    // proofs against a checkpoint signed after the shred.
    let again = work.path().join("again");
    // (the restarted server listens on a new port)
    let mut a: Vec<String> = ["tenant", "terminate", "acme", "--export"]
        .map(String::from)
        .to_vec();
    a.push(again.display().to_string());
    a.extend(s.cli_flags(work.path(), PrincipalKind::Staff, ADMIN));
    a.extend(["--confirm".into(), "acme".into()]);
    let out = cli::run_async(work.path().to_owned(), a).await;
    cli::assert_ok(&out, "terminate again");
    assert!(
        cli::text(&out.stderr).contains("already shredded"),
        "{}",
        cli::text(&out.stderr)
    );
    assert!(!again.join("tenant.key").exists());
    let mut v = verify_args(&again.join("log.jsonl"), None);
    v[4] = again.join("checkpoint").display().to_string();
    let said = cli::assert_ok(
        &cli::run_async(work.path().to_owned(), v).await,
        "verify again",
    );
    assert!(said.contains("each proven included"), "{said}");
    let text = std::fs::read_to_string(again.join("log.jsonl")).unwrap();
    for secret in ACME_SECRETS {
        assert!(!text.contains(secret));
    }

    // Shredding is only for a terminated tenant, once.
    let mut admin = s.admin().await;
    let e = admin
        .tenants
        .shred_tenant(pb::ShredTenantRequest {
            name: "globex".into(),
            confirm: "globex".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("not terminated"), "{}", e.message());
    let e = admin
        .tenants
        .shred_tenant(pb::ShredTenantRequest {
            name: "globex".into(),
            confirm: "acme".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = admin
        .tenants
        .update_tenant(pb::UpdateTenantRequest {
            name: "acme".into(),
            require_ticket: Some(true),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
}
