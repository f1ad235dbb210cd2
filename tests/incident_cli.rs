//! `daypass incident` end to end against a real server: record, notify,
//! list, the notification document to a file, the Art 33(5) documentation,
//! and one clear line for an unknown incident.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use daypass::{clock::Clock as _, pb::ApprovalPolicy};

const HOUR_MS: i64 = 3_600_000;

#[tokio::test]
async fn the_cli_records_notifies_shows_lists_and_writes_the_documents() {
    let s = TestServer::start().await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let dir = s.dir.path();
    let conn = |args: &[&str]| {
        let mut v: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        v.extend(s.cli_flags(dir, daypass::identity::PrincipalKind::Staff, ADMIN));
        v
    };
    let known = daypass::clock::Timestamp(s.clock.now().millis() - HOUR_MS).to_string();
    let out = cli::run_async(
        dir.to_owned(),
        conn(&[
            "incident",
            "record",
            "--nature",
            "Backup tape lost in transit",
            "--subjects",
            "end customers",
            "--data",
            "postal addresses",
            "--approx-subjects",
            "300",
            "--approx-records",
            "900",
            "--dpo-name",
            "Dana Datenschutz",
            "--dpo-email",
            "dpo@daypass.example",
            "--consequences",
            "Unwanted mail",
            "--measures",
            "Courier changed",
            "--known-at",
            &known,
            "--tenant",
            "acme",
        ]),
    )
    .await;
    let said = cli::assert_ok(&out, "incident record");
    assert!(said.contains("recorded i-"), "{said}");
    assert!(said.contains("pending"), "{said}");
    let id = said
        .split_whitespace()
        .find(|w| w.starts_with("i-"))
        .unwrap()
        .to_owned();

    let out = cli::run_async(
        dir.to_owned(),
        conn(&[
            "incident",
            "notify",
            &id,
            "--tenant",
            "acme",
            "--channel",
            "phone",
        ]),
    )
    .await;
    let said = cli::assert_ok(&out, "incident notify");
    assert!(said.contains("notified"), "{said}");
    assert!(said.contains("via phone by ada"), "{said}");

    let out = cli::run_async(dir.to_owned(), conn(&["incident", "list"])).await;
    let said = cli::assert_ok(&out, "incident list");
    assert!(
        said.contains(&id) && said.contains("acme notified"),
        "{said}"
    );

    let file = dir.join("notice.html");
    let out = cli::run_async(
        dir.to_owned(),
        conn(&[
            "incident",
            "document",
            &id,
            "--tenant",
            "acme",
            "--format",
            "html",
            "-o",
            &file.display().to_string(),
        ]),
    )
    .await;
    cli::assert_ok(&out, "incident document");
    let html = std::fs::read_to_string(&file).unwrap();
    assert!(html.contains("Backup tape lost in transit"), "{html}");
    assert!(html.contains("dpo@daypass.example"), "{html}");

    let out = cli::run_async(
        dir.to_owned(),
        conn(&["incident", "document", &id, "--art-33"]),
    )
    .await;
    let said = cli::assert_ok(&out, "incident document --art-33");
    assert!(said.contains("## Timeline"), "{said}");
    assert!(said.contains("tenant acme notified at"), "{said}");

    let out = cli::run_async(
        dir.to_owned(),
        conn(&["incident", "show", "i-000000000000000000000000"]),
    )
    .await;
    let err = cli::one_line_error(&out, "incident show unknown");
    assert!(err.contains("no incident"), "{err}");
}
