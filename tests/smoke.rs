mod common;

use common::*;
use daypass::pb;

#[tokio::test]
async fn harness_starts_a_server_and_grants_flow() {
    let mut s = TestServer::start().await;
    let mut alice = s.enrol("alice", pb::Role::Support).await;
    let mut acme = s.add_tenant("acme", pb::ApprovalPolicy::Auto, false).await;
    let g = request(&mut alice, "acme", "INC-1").await;
    assert!(validate(&mut acme, &g.id).await.allowed);
    s.restart().await;
    let mut acme = s.tenant("acme").await;
    assert!(validate(&mut acme, &g.id).await.allowed);
    let entries = s.entries().await;
    assert_eq!(kinds(&entries)[0], "staff.bootstrapped");
}
