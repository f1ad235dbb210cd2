//! The register of processing (GDPR Art 30(2), the agreement's Art 2.6),
//! end to end over mutual TLS: versions kept in the tenant's slice with the
//! sha256 of their canonical JSON, the same content a no-op, who reads
//! which tenant's record, unknown and terminated tenants, the document in
//! every format with every declared field and the facts daypass adds itself,
//! the register after a restart, the CLI's `set` with a bad TOML file, and
//! hostile input.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use daypass::{
    client::Clients,
    domain::ProcessingRecord,
    identity::PrincipalKind,
    pb::{self, ApprovalPolicy, Role},
};
use serde_json::Value;
use tonic::Code;

const EXAMPLE: &str = include_str!("../examples/processing-record.toml");

fn example() -> ProcessingRecord {
    ProcessingRecord::from_toml(EXAMPLE).unwrap()
}

fn record_pb(r: &ProcessingRecord) -> pb::ProcessingRecord {
    daypass::rpc::record_to_pb(&r.to_raw())
}

async fn set(
    c: &mut Clients,
    tenant: &str,
    r: pb::ProcessingRecord,
) -> Result<pb::SetProcessingRecordResponse, tonic::Status> {
    c.processing
        .set_processing_record(pb::SetProcessingRecordRequest {
            tenant: tenant.into(),
            record: Some(r),
        })
        .await
        .map(|r| r.into_inner())
}

async fn get(
    c: &mut Clients,
    tenant: &str,
    version: u32,
) -> Result<pb::ProcessingRecordResponse, tonic::Status> {
    c.processing
        .get_processing_record(pb::GetProcessingRecordRequest {
            tenant: tenant.into(),
            version,
        })
        .await
        .map(|r| r.into_inner())
}

async fn history(
    c: &mut Clients,
    tenant: &str,
) -> Result<pb::ListProcessingRecordsResponse, tonic::Status> {
    c.processing
        .list_processing_records(pb::ListProcessingRecordsRequest {
            tenant: tenant.into(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn document(
    c: &mut Clients,
    tenant: &str,
    all: bool,
    format: &str,
) -> Result<String, tonic::Status> {
    c.processing
        .processing_register_document(pb::ProcessingRegisterDocumentRequest {
            tenant: tenant.into(),
            all,
            format: format.into(),
            version: 0,
        })
        .await
        .map(|r| r.into_inner().content)
}

fn sha256_hex(s: &str) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, s.as_bytes()))
}

fn recorded(entries: &[daypass::audit::SealedEntry]) -> Vec<&daypass::audit::SealedEntry> {
    entries
        .iter()
        .filter(|e| e.entry.kind == "processing.recorded")
        .collect()
}

#[tokio::test]
async fn versions_are_kept_in_the_tenants_slice_and_the_same_content_is_a_no_op() {
    let mut s = TestServer::start().await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let mut admin = s.admin().await;

    let v1 = example();
    let mut v2 = example();
    v2.retention = "Support access logs: 10 years.".into();
    v2.purposes.push("security monitoring".into());

    let r1 = set(&mut admin, "acme", record_pb(&v1)).await.unwrap();
    assert!(!r1.unchanged);
    assert!(r1.receipt.is_some());
    let ver1 = r1.version.unwrap();
    assert_eq!(ver1.version, 1);
    assert_eq!(ver1.recorded_by, format!("staff/{ADMIN}"));
    let r2 = set(&mut admin, "acme", record_pb(&v2)).await.unwrap();
    let ver2 = r2.version.unwrap();
    assert_eq!((ver2.version, r2.unchanged), (2, false));
    assert_ne!(ver1.sha256, ver2.sha256);

    // v2 is current; v1 is still there, as it was.
    let cur = get(&mut admin, "acme", 0).await.unwrap();
    assert_eq!(cur.version.clone().unwrap().version, 2);
    assert_eq!(cur.record.clone().unwrap().retention, v2.retention);
    let old = get(&mut admin, "acme", 1).await.unwrap();
    assert_eq!(old.version.clone().unwrap(), ver1);
    assert_eq!(
        ProcessingRecord::parse(&daypass::rpc::record_from_pb(&old.record.unwrap())).unwrap(),
        v1
    );
    assert_eq!(old.canonical_json, v1.canonical_json());
    let e = get(&mut admin, "acme", 3).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");

    // The same content again: nothing written, and the answer says so.
    let before = recorded(&s.entries().await).len();
    let again = set(&mut admin, "acme", record_pb(&v2)).await.unwrap();
    assert!(again.unchanged);
    assert!(again.receipt.is_none());
    assert_eq!(again.version.unwrap(), ver2);
    let entries = s.entries().await;
    let mine = recorded(&entries);
    assert_eq!(mine.len(), before);
    assert_eq!(mine.len(), 2);

    // In the tenant's slice, with the sha256 of the canonical JSON.
    for (e, (v, rec)) in mine.iter().zip([(&ver1, &v1), (&ver2, &v2)]) {
        assert_eq!(e.entry.tenant, "acme");
        assert_eq!(e.entry.seq, v.seq);
        let d = &e.entry.details;
        assert_eq!(d["version"], v.version.to_string());
        assert_eq!(d["record"], rec.canonical_json());
        assert_eq!(d["sha256"], sha256_hex(&d["record"]));
        assert_eq!(d["sha256"], v.sha256);
    }
    let mut acme = s.tenant("acme").await;
    let slice = acme
        .audit
        .get_tenant_entries(pb::GetTenantEntriesRequest {
            tenant: "acme".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let seqs: Vec<u64> = slice
        .entries
        .iter()
        .filter(|e| {
            e.entry
                .as_ref()
                .is_some_and(|e| e.kind == "processing.recorded")
        })
        .map(|e| e.entry.as_ref().unwrap().seq)
        .collect();
    assert_eq!(seqs, [ver1.seq, ver2.seq]);

    let h = history(&mut admin, "acme").await.unwrap();
    assert_eq!(h.versions, [ver1.clone(), ver2.clone()]);

    // After a restart the register is the same, and versions go on.
    s.restart().await;
    let mut admin = s.admin().await;
    assert_eq!(
        history(&mut admin, "acme").await.unwrap().versions,
        [ver1, ver2.clone()]
    );
    assert_eq!(
        get(&mut admin, "acme", 0).await.unwrap().canonical_json,
        v2.canonical_json()
    );
    assert!(
        set(&mut admin, "acme", record_pb(&v2))
            .await
            .unwrap()
            .unchanged
    );
    let v3 = set(&mut admin, "acme", record_pb(&v1)).await.unwrap();
    assert_eq!(v3.version.unwrap().version, 3);
    // The log's rules hold (versions without gaps, hashes match).
    assert!(s.verify_chain().await.ok);
}

#[tokio::test]
async fn a_tenant_reads_its_own_others_are_not_found_support_is_refused() {
    let s = TestServer::start().await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    s.add_tenant("globex", ApprovalPolicy::Auto, false).await;
    let mut admin = s.admin().await;
    set(&mut admin, "acme", record_pb(&example()))
        .await
        .unwrap();

    let mut acme = s.tenant("acme").await;
    let own = get(&mut acme, "acme", 0).await.unwrap();
    assert_eq!(own.canonical_json, example().canonical_json());
    assert_eq!(history(&mut acme, "acme").await.unwrap().versions.len(), 1);
    let doc = document(&mut acme, "", false, "markdown").await.unwrap();
    assert!(doc.contains("Acme GmbH"), "{doc}");

    // Another tenant: exactly as for a tenant that does not exist.
    let mut globex = s.tenant("globex").await;
    for e in [
        get(&mut globex, "acme", 0).await.unwrap_err(),
        history(&mut globex, "acme").await.unwrap_err(),
        document(&mut globex, "acme", false, "json")
            .await
            .unwrap_err(),
    ] {
        assert_eq!(e.code(), Code::NotFound, "{e:?}");
        assert_eq!(
            e.message(),
            "tenant acme does not exist; `daypass tenant list` shows the tenants"
        );
    }
    let e = document(&mut globex, "", true, "json").await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let e = set(&mut globex, "globex", record_pb(&example()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    // globex has none yet.
    let e = get(&mut globex, "globex", 0).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    assert!(e.message().contains("no record of processing yet"), "{e:?}");

    // Support: refused, with the usual message.
    let mut sam = s.enrol("sam", Role::Support).await;
    let e = get(&mut sam, "acme", 0).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(
        e.message()
            .contains("staff/sam may not call GetProcessingRecord: not permitted for this role"),
        "{e:?}"
    );
    // An auditor reads any.
    let mut eve = s.enrol("eve", Role::Auditor).await;
    assert_eq!(history(&mut eve, "acme").await.unwrap().versions.len(), 1);

    // Unknown tenant.
    let e = set(&mut admin, "nowhere", record_pb(&example()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    assert_eq!(
        get(&mut admin, "nowhere", 0).await.unwrap_err().code(),
        Code::NotFound
    );

    // Terminated tenant: refused, saying why; what was recorded is kept.
    admin
        .tenants
        .terminate_tenant(pb::TerminateTenantRequest {
            name: "acme".into(),
        })
        .await
        .unwrap();
    let mut changed = example();
    changed.retention = "changed".into();
    let e = set(&mut admin, "acme", record_pb(&changed))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(
        e.message().contains("tenant acme was terminated on"),
        "{e:?}"
    );
    assert_eq!(
        get(&mut admin, "acme", 1)
            .await
            .unwrap()
            .version
            .unwrap()
            .version,
        1
    );
}

#[tokio::test]
async fn the_document_holds_every_field_and_what_daypass_knows_itself() {
    let s = TestServer::start_with(|c| {
        c.location.subprocessor_notice_days = 0;
        c.grants.max_duration_secs = 7200;
    })
    .await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    s.add_tenant("globex", ApprovalPolicy::Auto, false).await;
    let mut admin = s.admin().await;
    for (name, country) in [("nightdesk", "PT"), ("farshore", "IE")] {
        admin
            .tenants
            .add_subprocessor(pb::AddSubprocessorRequest {
                name: name.into(),
                country: country.into(),
                purpose: format!("{name} second-line support"),
            })
            .await
            .unwrap();
    }
    let mut acme = s.tenant("acme").await;
    acme.tenants
        .object_to_subprocessor(pb::ObjectToSubprocessorRequest {
            tenant: "acme".into(),
            subprocessor: "farshore".into(),
        })
        .await
        .unwrap();
    // A holder in Germany held a grant for acme.
    admin
        .staff
        .add_staff(pb::AddStaffRequest {
            name: "emma".into(),
            role: Role::Support as i32,
            country: "DE".into(),
            organisation: "company".into(),
        })
        .await
        .unwrap();
    let mut emma = s.staff("emma").await;
    request(&mut emma, "acme", "INC-4 queue stuck").await;

    let mut rec = example();
    rec.purposes.push("R&D <support> \"tests\"".into());
    set(&mut admin, "acme", record_pb(&rec)).await.unwrap();
    let version = history(&mut admin, "acme").await.unwrap().versions[0].clone();

    let declared: Vec<String> = {
        let r = &rec;
        let rep = r.representative.clone().unwrap();
        let mut v = vec![
            r.controller.name.clone(),
            r.controller.contact.clone(),
            rep.name,
            rep.contact,
            r.processor_contact.name.clone(),
            r.processor_contact.contact.clone(),
            r.retention.clone(),
        ];
        for list in [
            &r.categories,
            &r.purposes,
            &r.data_subjects,
            &r.personal_data,
            &r.recipients,
            &r.security_measures,
        ] {
            v.extend(list.iter().cloned());
        }
        for t in &r.transfers {
            v.push(format!("{}: {}", t.country, t.safeguard));
        }
        v
    };
    let html_escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&#39;")
    };
    let checkpoint = admin
        .audit
        .get_checkpoint(pb::GetCheckpointRequest::default())
        .await
        .unwrap()
        .into_inner();

    for format in ["markdown", "html"] {
        let doc = document(&mut admin, "acme", false, format).await.unwrap();
        let shown = |s: &str| {
            if format == "html" {
                html_escape(s)
            } else {
                s.to_owned()
            }
        };
        for field in &declared {
            assert!(
                doc.contains(&shown(field)),
                "{format}: lacks {field:?}:\n{doc}"
            );
        }
        if format == "html" {
            assert!(!doc.contains("<support>"), "unescaped:\n{doc}");
        }
        assert!(doc.contains(&version.sha256), "{format}");
        assert!(
            doc.contains(&format!("version {}", version.version)),
            "{format}"
        );
        assert!(doc.contains("nightdesk (PT)"), "{format}:\n{doc}");
        assert!(
            !doc.contains("farshore"),
            "{format}: an objected sub-processor:\n{doc}"
        );
        assert!(
            doc.contains("7200 s"),
            "{format}: the max grant duration:\n{doc}"
        );
        assert!(doc.contains("DE (1 person)"), "{format}:\n{doc}");
        assert!(doc.contains("known to daypass"), "{format}");
        assert!(
            doc.contains(&format!("tree size {}", checkpoint.tree_size)),
            "{format}:\n{doc}"
        );
        assert!(
            doc.contains(&hex::encode(&checkpoint.root_hash)),
            "{format}"
        );
    }

    let json: Value =
        serde_json::from_str(&document(&mut admin, "acme", false, "json").await.unwrap()).unwrap();
    assert_eq!(json["schema"], "daypass.processing-register.v1");
    assert_eq!(json["log"]["tree_size"], checkpoint.tree_size);
    assert_eq!(json["log"]["checkpoint"], checkpoint.note);
    let t = &json["tenants"][0];
    assert_eq!(t["tenant"], "acme");
    let d = &t["declared"];
    assert_eq!(d["sha256"], version.sha256);
    assert_eq!(d["version"], 1);
    // The declared record is exactly the entry's.
    assert_eq!(
        d["record"].to_string(),
        rec.canonical_json(),
        "the record in the JSON document is its canonical JSON"
    );
    let k = &t["known_to_daypass"];
    let sps: Vec<&str> = k["subprocessors_in_effect"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(sps, ["nightdesk"]);
    assert_eq!(k["grant_holder_countries"][0]["country"], "DE");
    assert!(
        k["allowed_countries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "DE")
    );
    let measures = k["security_measures"].as_array().unwrap();
    let duration = measures
        .iter()
        .find(|m| m["measure"] == "maximum grant duration")
        .unwrap();
    assert!(duration["value"].as_str().unwrap().contains("7200 s"));
    assert!(measures.iter().any(|m| m["measure"] == "mutual TLS"));
    assert!(
        measures
            .iter()
            .any(|m| m["measure"] == "maximum root holders" && m["value"] == "2")
    );

    // The whole register lists every tenant, a tenant without a record too.
    let all: Value =
        serde_json::from_str(&document(&mut admin, "", true, "json").await.unwrap()).unwrap();
    assert_eq!(all["scope"], "all");
    let names: Vec<&str> = all["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tenant"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["acme", "globex"]);
    assert!(all["tenants"][1]["declared"].is_null());
    let md = document(&mut admin, "", true, "markdown").await.unwrap();
    assert!(md.contains("globex: no record declared yet"), "{md}");
    assert!(md.contains("acme: version 1"), "{md}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_sets_from_toml_and_a_bad_file_names_the_line_and_field() {
    let s = TestServer::start().await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let work = tempfile::tempdir().unwrap();
    let flags = s.cli_flags(work.path(), PrincipalKind::Staff, ADMIN);
    let run = |args: &[&str]| {
        let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        a.extend(flags.iter().cloned());
        common::cli::run_async(work.path().to_owned(), a)
    };

    let bad = work.path().join("bad.toml");
    std::fs::write(
        &bad,
        EXAMPLE.replace("country = \"CH\"", "country = \"ZZ\""),
    )
    .unwrap();
    let out = run(&[
        "tenant",
        "processing",
        "set",
        "acme",
        "--file",
        bad.to_str().unwrap(),
    ])
    .await;
    let err = common::cli::one_line_error(&out, "set bad.toml");
    let line = EXAMPLE
        .lines()
        .position(|l| l.contains("country = \"CH\""))
        .unwrap()
        + 1;
    assert!(
        err.contains(&format!("bad.toml: line {line}: transfers[1].country")),
        "{err}"
    );
    let typo = work.path().join("typo.toml");
    std::fs::write(&typo, EXAMPLE.replace("purposes =", "purpose =")).unwrap();
    let out = run(&[
        "tenant",
        "processing",
        "set",
        "acme",
        "--file",
        typo.to_str().unwrap(),
    ])
    .await;
    let err = common::cli::one_line_error(&out, "set typo.toml");
    assert!(err.contains("line ") && err.contains("purpose"), "{err}");
    assert!(recorded(&s.entries().await).is_empty());

    let good = work.path().join("record.toml");
    std::fs::write(&good, EXAMPLE).unwrap();
    let out = run(&[
        "tenant",
        "processing",
        "set",
        "acme",
        "--file",
        good.to_str().unwrap(),
    ])
    .await;
    let text = common::cli::assert_ok(&out, "set record.toml");
    assert!(text.contains("recorded version 1 of tenant acme"), "{text}");
    let out = run(&[
        "tenant",
        "processing",
        "set",
        "acme",
        "--file",
        good.to_str().unwrap(),
    ])
    .await;
    let text = common::cli::assert_ok(&out, "set again");
    assert!(text.starts_with("unchanged"), "{text}");

    let out = run(&["tenant", "processing", "history", "acme"]).await;
    let text = common::cli::assert_ok(&out, "history");
    assert!(text.contains(&example().sha256()), "{text}");
    let out = run(&["tenant", "processing", "show", "acme", "--version", "1"]).await;
    let text = common::cli::assert_ok(&out, "show");
    assert!(text.contains("controller: Acme GmbH"), "{text}");

    let file = work.path().join("register.json");
    let out = run(&[
        "tenant",
        "processing",
        "document",
        "--all",
        "--format",
        "json",
        "--out",
        file.to_str().unwrap(),
    ])
    .await;
    common::cli::assert_ok(&out, "document --all");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(v["tenants"][0]["declared"]["version"], 1);
}

#[tokio::test]
async fn hostile_records_are_refused_naming_the_field_and_write_nothing() {
    let s = TestServer::start().await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let mut admin = s.admin().await;
    let base = record_pb(&example());
    type Change = Box<dyn Fn(&mut pb::ProcessingRecord)>;
    let cases: Vec<(&str, Change)> = vec![
        (
            "categories[0] is longer than 300 characters",
            Box::new(|r| r.categories[0] = "x".repeat(301)),
        ),
        (
            "retention is longer than 2000 characters",
            Box::new(|r| r.retention = "y".repeat(2001)),
        ),
        (
            "purposes: at most 50 items",
            Box::new(|r| r.purposes = vec!["p".into(); 51]),
        ),
        (
            "transfers: at most 50 items",
            Box::new(|r| {
                r.transfers = vec![
                    pb::ProcessingTransfer {
                        country: "GB".into(),
                        safeguard: "adequacy decision".into(),
                    };
                    51
                ]
            }),
        ),
        (
            "controller.name must not contain control characters",
            Box::new(|r| r.controller.as_mut().unwrap().name = "Acme\u{1b}[31m".into()),
        ),
        (
            "recipients[0] must not contain invisible or direction-changing characters",
            Box::new(|r| r.recipients = vec!["evil\u{202E}txt".into()]),
        ),
        (
            "transfers[0].country: \"XX\" is not an ISO 3166-1 alpha-2 country code",
            Box::new(|r| r.transfers[0].country = "XX".into()),
        ),
        (
            "data_subjects: name at least one item",
            Box::new(|r| r.data_subjects.clear()),
        ),
        (
            "processor_contact.name is required",
            Box::new(|r| r.processor_contact = None),
        ),
    ];
    for (says, change) in &cases {
        let mut r = base.clone();
        change(&mut r);
        let e = set(&mut admin, "acme", r).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{says}: {e:?}");
        assert!(
            e.message().starts_with(says),
            "{:?} should start with {says:?}",
            e.message()
        );
    }
    let e = admin
        .processing
        .set_processing_record(pb::SetProcessingRecordRequest {
            tenant: "acme".into(),
            record: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let entries = s.entries().await;
    assert!(recorded(&entries).is_empty());
    let refused = entries
        .iter()
        .filter(|e| {
            e.entry.kind == "call.refused"
                && e.entry.details.get("call").map(String::as_str) == Some("SetProcessingRecord")
                && e.entry.details.get("code").map(String::as_str) == Some("invalid-argument")
        })
        .count();
    assert_eq!(refused, cases.len() + 1);
    // A document format that is not one.
    let e = document(&mut admin, "acme", false, "pdf")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
}

#[test]
fn audit_check_holds_versions_without_gaps_and_hashes_that_match() {
    use daypass::audit::{
        Entry,
        state::{LogState, Rules},
    };
    let entry = |seq: u64, tenant: &str, kind: &str, details: &[(&str, String)]| Entry {
        seq,
        timestamp: daypass::clock::Timestamp(1_764_000_000_000 + seq as i64),
        actor: format!("staff/{ADMIN}"),
        tenant: tenant.into(),
        kind: kind.into(),
        details: details
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
        sealed: None,
        prev_hash: [0; 32],
    };
    let rec = example();
    let recorded = |seq: u64, tenant: &str, version: &str, json: &str, sha: &str| {
        entry(
            seq,
            tenant,
            "processing.recorded",
            &[
                ("version", version.to_owned()),
                ("record", json.to_owned()),
                ("sha256", sha.to_owned()),
            ],
        )
    };
    let json = rec.canonical_json();
    let sha = sha256_hex(&json);
    let mut state = LogState::new(Rules::default());
    state
        .apply(&entry(
            0,
            "acme",
            "tenant.added",
            &[
                ("approval", "auto".into()),
                ("require_ticket", "false".into()),
            ],
        ))
        .unwrap();
    state.apply(&recorded(1, "acme", "1", &json, &sha)).unwrap();
    let gap = state
        .apply(&recorded(2, "acme", "3", &json, &sha))
        .unwrap_err();
    assert_eq!(gap.seq, 2);
    assert!(gap.why.contains("the next is 2"), "{}", gap.why);
    let bad_hash = state
        .apply(&recorded(3, "acme", "2", &json, &"ab".repeat(32)))
        .unwrap_err();
    assert!(bad_hash.why.contains("sha256"), "{}", bad_hash.why);
    let pretty =
        serde_json::to_string_pretty(&serde_json::from_str::<Value>(&json).unwrap()).unwrap();
    let not_canonical = state
        .apply(&recorded(4, "acme", "2", &pretty, &sha256_hex(&pretty)))
        .unwrap_err();
    assert!(
        not_canonical.why.contains("canonical"),
        "{}",
        not_canonical.why
    );
    let unknown = state
        .apply(&recorded(5, "globex", "1", &json, &sha))
        .unwrap_err();
    assert!(unknown.why.contains("never added"), "{}", unknown.why);
    // The refused entries changed nothing: 2 is next.
    state.apply(&recorded(6, "acme", "2", &json, &sha)).unwrap();
}
