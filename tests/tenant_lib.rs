//! The tenant library (`daypass-tenant`) against a real broker over real
//! mutual TLS: the [`Feed`] carries revocations to the verifier and the
//! verifier fails closed once the broker is gone for longer than the
//! staleness limit; the [`Reporter`] gets every access into the log, across
//! a broker restart, and says so when its buffer is full.
//!
//! The broker restarts on a new port; a small TCP relay in front of it
//! gives the tenant one address throughout, as a load balancer would.

mod common;

use std::{
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use common::*;
use daypass::clock::Clock;
use daypass::{
    identity::PrincipalKind,
    pb::{self, ApprovalPolicy, Role},
};
use daypass_tenant::{
    Admission, Credential, Feed, FeedHandle, FeedStatus, KeySet, Refusal, Reporter, Verifier,
    claims::{RevocationClaims, key_id},
    gateway::{BrokerIdentity, connect_broker},
    report::{ReportError, ReporterOptions},
};
use ring::signature::{Ed25519KeyPair, KeyPair};
use tokio::{
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};
use tokio_stream::Stream;
use tonic::{Status, transport::Channel};

/// Generous bound on event-driven waits (nothing here waits for time).
const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_revocation_reaches_the_verifier_through_the_feed() {
    let s = TestServer::start().await;
    let mut alice = s.enrol("alice", Role::Support).await;
    let mut bob = s.enrol("bob", Role::Support).await;
    let mut acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let g1 = request(&mut alice, "acme", "INC-1").await;
    let g2 = request(&mut bob, "acme", "INC-2").await;
    let (verifier, feed) = follow(&s, "acme", &s.server_url()).await;

    let admitted = verifier.verify_token(&g1.token).expect("g1 admitted");
    assert_eq!(
        admitted,
        Admission {
            grant_id: g1.id.clone(),
            holder: format!("spiffe://{TRUST_DOMAIN}/staff/alice"),
            tenant: "acme".into(),
            expires_at: daypass::clock::Timestamp(g1.expires_at_ms),
            credential: Credential::Token,
            // Enrolled without a country, working for the company.
            country: None,
            organisation: Some("company".into()),
            scopes: daypass_tenant::Scopes::whole_tenant(),
        }
    );
    assert!(verifier.verify_token(&g2.token).is_ok(), "g2 admitted");

    // The tenant revokes g1, an admin g2: both reach the verifier.
    revoke(&mut acme, &g1.id, "done").await;
    refused_in_time(
        &feed,
        &verifier,
        &g1.token,
        &Refusal::Revoked(g1.id.clone()),
    )
    .await;
    assert!(
        verifier.verify_token(&g2.token).is_ok(),
        "g2 still admitted"
    );
    revoke(&mut s.admin().await, &g2.id, "offboarding").await;
    refused_in_time(
        &feed,
        &verifier,
        &g2.token,
        &Refusal::Revoked(g2.id.clone()),
    )
    .await;

    let status = feed.status();
    assert!(status.streaming, "{status:?}");
    assert_eq!(
        status.streams_opened, 1,
        "one stream did it all: {status:?}"
    );
    assert_eq!((status.errors, status.lists_refused), (0, 0), "{status:?}");
}

#[tokio::test]
async fn without_the_broker_the_verifier_refuses_everything_once_the_list_is_stale() {
    let mut s = TestServer::start().await;
    let mut alice = s.enrol("alice", Role::Support).await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let g = request(&mut alice, "acme", "INC-1").await;
    let (verifier, feed) = follow(&s, "acme", &s.server_url()).await;
    assert!(verifier.verify_token(&g.token).is_ok());
    let held = verifier.revocation_list().expect("a list is held");

    s.stop().await;
    let status = wait(&feed, |st| !st.streaming && st.errors > 0).await;
    assert!(status.last_error.is_some(), "{status:?}");

    // The broker's last list is exactly as old as the clock has moved since.
    let limit = verifier.max_staleness();
    s.clock.advance_millis(limit.as_millis() as i64);
    assert!(
        verifier.verify_token(&g.token).is_ok(),
        "admitted at the limit"
    );
    s.clock.advance_millis(1);
    let limit_ms = limit.as_millis() as i64;
    assert_eq!(
        verifier.verify_token(&g.token),
        Err(Refusal::Stale {
            age_ms: limit_ms + 1,
            limit_ms
        })
    );
    // The feed goes on trying, and never touched what the verifier holds.
    let errors = feed.status().errors;
    wait(&feed, |st| st.errors > errors).await;
    assert_eq!(verifier.revocation_list(), Some(held));
}

#[tokio::test]
async fn the_feed_reconnects_after_a_broker_restart() {
    let mut s = TestServer::start().await;
    let mut alice = s.enrol("alice", Role::Support).await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let g = request(&mut alice, "acme", "INC-1").await;
    let relay = Relay::start(s.addr).await;
    let (verifier, feed) = follow(&s, "acme", &relay.url()).await;
    let (seq, _) = verifier.revocation_list().expect("a list is held");

    s.stop().await;
    wait(&feed, |st| !st.streaming).await;
    s.start_again().await;
    relay.point_to(s.addr);
    let status = wait(&feed, |st| st.streaming && st.last_seq > Some(seq)).await;
    assert_eq!(status.streams_opened, 2, "{status:?}");
    assert_eq!(
        status.lists_refused, 0,
        "the new lists follow the old: {status:?}"
    );

    // Revocations made after the restart arrive on the new stream.
    revoke(&mut s.admin().await, &g.id, "").await;
    refused_in_time(&feed, &verifier, &g.token, &Refusal::Revoked(g.id.clone())).await;
}

#[tokio::test]
async fn reports_are_recorded_in_the_log_and_refused_ones_are_not_retried() {
    let s = TestServer::start().await;
    let mut alice = s.enrol("alice", Role::Support).await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let g = request(&mut alice, "acme", "INC-1").await;
    let reporter = Reporter::new(tenant_channel(&s, "acme", &s.server_url()));

    for (action, resource) in [("ssh", "db-1"), ("db.query", "invoices"), ("ssh", "")] {
        reporter.report(&g.id, action, resource).expect("queued");
    }
    // An empty action is INVALID_ARGUMENT: logged, counted, not retried.
    reporter.report(&g.id, "", "db-1").expect("queued");
    let stats = tokio::time::timeout(WAIT, reporter.flush())
        .await
        .expect("flushed in time");
    assert_eq!(
        (
            stats.queued,
            stats.acknowledged,
            stats.failed,
            stats.retries
        ),
        (4, 3, 1, 0),
        "{stats:?}"
    );
    assert!(
        stats
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("action")),
        "{stats:?}"
    );

    let recorded = accesses(&s, &g.id).await;
    assert_eq!(
        recorded,
        [("ssh", "db-1"), ("db.query", "invoices"), ("ssh", "")].map(|(a, r)| (a.into(), r.into()))
    );
}

#[tokio::test]
async fn reports_are_retried_across_a_broker_restart() {
    let mut s = TestServer::start().await;
    let mut alice = s.enrol("alice", Role::Support).await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let g = request(&mut alice, "acme", "INC-1").await;
    let relay = Relay::start(s.addr).await;
    let reporter = Reporter::with_options(
        tenant_channel(&s, "acme", &relay.url()),
        fast_retries(ReporterOptions::default()),
    );
    reporter.report(&g.id, "before", "").expect("queued");
    assert_eq!(reporter.flush().await.acknowledged, 1);

    s.stop().await;
    for action in ["during-1", "during-2", "during-3"] {
        reporter.report(&g.id, action, "").expect("queued");
    }
    let stats = tokio::time::timeout(WAIT, reporter.wait_for(|st| st.retries >= 3))
        .await
        .expect("retrying while the broker is down");
    assert_eq!(stats.acknowledged, 1, "{stats:?}");

    s.start_again().await;
    relay.point_to(s.addr);
    let stats = tokio::time::timeout(WAIT, reporter.flush())
        .await
        .expect("flushed after the restart");
    assert_eq!((stats.acknowledged, stats.failed), (4, 0), "{stats:?}");

    // Every report is recorded (a retry whose first answer was lost is
    // recorded once: the report id; tests/gate.rs checks the broker side).
    let recorded = accesses(&s, &g.id).await;
    for action in ["before", "during-1", "during-2", "during-3"] {
        assert!(
            recorded.iter().any(|(a, _)| a == action),
            "{action} recorded: {recorded:?}"
        );
    }
}

#[tokio::test]
async fn a_full_buffer_is_an_error_and_what_was_queued_is_still_delivered() {
    let mut s = TestServer::start().await;
    let mut alice = s.enrol("alice", Role::Support).await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let g = request(&mut alice, "acme", "INC-1").await;
    let relay = Relay::start(s.addr).await;
    let reporter = Reporter::with_options(
        tenant_channel(&s, "acme", &relay.url()),
        fast_retries(ReporterOptions {
            capacity: 2,
            max_in_flight: 1,
            ..ReporterOptions::default()
        }),
    );
    s.stop().await;

    // This test's runtime has one thread: nothing leaves the buffer until
    // it yields, so the third report finds it full.
    reporter.report(&g.id, "a1", "").expect("queued");
    reporter.report(&g.id, "a2", "").expect("queued");
    assert_eq!(reporter.report(&g.id, "a3", ""), Err(ReportError::Full(2)));
    assert_eq!(reporter.stats().rejected, 1);

    // Nothing queued is lost: it waits for the broker.
    tokio::time::timeout(WAIT, reporter.wait_for(|st| st.retries >= 1))
        .await
        .expect("retrying while the broker is down");
    s.start_again().await;
    relay.point_to(s.addr);
    let stats = tokio::time::timeout(WAIT, reporter.flush())
        .await
        .expect("flushed after the restart");
    assert_eq!((stats.queued, stats.acknowledged), (2, 2), "{stats:?}");
    let recorded = accesses(&s, &g.id).await;
    assert!(recorded.iter().any(|(a, _)| a == "a1"), "{recorded:?}");
    assert!(recorded.iter().any(|(a, _)| a == "a2"), "{recorded:?}");
    assert!(!recorded.iter().any(|(a, _)| a == "a3"), "{recorded:?}");
}

/// The paths a real broker does not take: a broker (or a proxy) that
/// cannot stream, and a list signed with a key the verifier has not seen.
/// A stand-in GateService (plain h2c, no TLS: the feed takes any channel).
#[tokio::test]
async fn the_feed_polls_when_streaming_fails_and_fetches_keys_for_an_unknown_key() {
    let clock = daypass::clock::ManualClock::new(daypass::clock::Timestamp(1_764_064_800_000));
    let gate = FakeGate::new(clock.clone());
    let url = gate.clone().serve().await;
    let verifier = Arc::new(Verifier::new(
        "acme",
        KeySet::default(),
        Arc::new(clock.clone()),
    ));
    let channel = tonic::transport::Endpoint::from_shared(url)
        .expect("url")
        .connect_lazy();
    let options = daypass_tenant::feed::FeedOptions {
        reconnect_min: Duration::from_millis(5),
        reconnect_max: Duration::from_millis(20),
        poll_every: Duration::from_millis(5),
        ..Default::default()
    };
    let feed = Feed::follow_with(verifier.clone(), channel, options);
    let status = wait(&feed, |st| st.lists_applied >= 3).await;
    assert_eq!(status.streams_opened, 0, "{status:?}");
    assert_eq!(status.key_refreshes, 1, "{status:?}");
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("WatchRevocations") && e.contains("cannot stream")),
        "{status:?}"
    );

    // The broker moves to a new key: the next list names it, the feed
    // fetches the keys at once and the list is taken.
    gate.rotate();
    let applied = status.lists_applied;
    let status = wait(&feed, |st| st.lists_applied >= applied + 3).await;
    assert_eq!(status.key_refreshes, 2, "{status:?}");
    assert_eq!(status.lists_refused, 0, "{status:?}");
    assert_eq!(verifier.keys().token_keys.len(), 2);
}

// ------------------------------------------------------------- helpers ---

/// A mutual-TLS channel to `url` as tenant `name`, trusting the test CA.
fn tenant_channel(s: &TestServer, name: &str, url: &str) -> Channel {
    let issued = s.issue(PrincipalKind::Tenant, name);
    let id = BrokerIdentity {
        ca_pem: s.ca.cert_pem().as_bytes().to_vec(),
        cert_pem: issued.cert_pem.into_bytes(),
        key_pem: issued.key_pem.into_bytes(),
    };
    connect_broker(url, &id).expect("channel")
}

/// A verifier for `tenant` on the test clock (knowing no keys yet) and a
/// feed following the broker at `url`, ready: keys and a first list in.
async fn follow(s: &TestServer, tenant: &str, url: &str) -> (Arc<Verifier>, FeedHandle) {
    let verifier = Arc::new(Verifier::new(
        tenant,
        KeySet::default(),
        Arc::new(s.clock.clone()),
    ));
    let feed = Feed::follow(verifier.clone(), tenant_channel(s, tenant, url));
    wait(&feed, |st| st.key_refreshes > 0 && st.lists_applied > 0).await;
    (verifier, feed)
}

async fn wait(feed: &FeedHandle, pred: impl FnMut(&FeedStatus) -> bool) -> FeedStatus {
    tokio::time::timeout(WAIT, feed.wait_for(pred))
        .await
        .unwrap_or_else(|_| panic!("feed status not reached in time: {:?}", feed.status()))
        .expect("feed running")
}

/// Waits (on feed progress) until `token` is refused with `refusal`.
async fn refused_in_time(feed: &FeedHandle, verifier: &Verifier, token: &str, refusal: &Refusal) {
    wait(feed, |_| {
        verifier.verify_token(token).as_ref() == Err(refusal)
    })
    .await;
}

fn fast_retries(options: ReporterOptions) -> ReporterOptions {
    ReporterOptions {
        retry_min: Duration::from_millis(20),
        retry_max: Duration::from_millis(200),
        ..options
    }
}

/// (action, resource) of every `access.recorded` entry for `grant`, in order.
async fn accesses(s: &TestServer, grant: &str) -> Vec<(String, String)> {
    s.entries()
        .await
        .iter()
        .filter(|e| e.entry.kind == "access.recorded" && e.entry.details["grant"] == grant)
        .map(|e| {
            (
                e.entry.details["action"].clone(),
                e.entry.details["resource"].clone(),
            )
        })
        .collect()
}

/// A TCP relay on a fixed local port to wherever the broker is now.
struct Relay {
    addr: SocketAddr,
    target: Arc<Mutex<SocketAddr>>,
    task: JoinHandle<()>,
}

impl Relay {
    async fn start(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let target = Arc::new(Mutex::new(target));
        let to = target.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let upstream = *to.lock().expect("relay target");
                tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Relay { addr, target, task }
    }

    fn point_to(&self, target: SocketAddr) {
        *self.target.lock().expect("relay target") = target;
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A GateService that cannot stream, signs every polled list, and can
/// rotate its token key.
#[derive(Clone)]
struct FakeGate {
    clock: daypass::clock::ManualClock,
    keys: Arc<[Ed25519KeyPair; 2]>,
    rotated: Arc<AtomicBool>,
    seq: Arc<AtomicU64>,
}

impl FakeGate {
    fn new(clock: daypass::clock::ManualClock) -> FakeGate {
        let rng = ring::rand::SystemRandom::new();
        let key = || {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("key");
            Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("key")
        };
        FakeGate {
            clock,
            keys: Arc::new([key(), key()]),
            rotated: Arc::new(AtomicBool::new(false)),
            seq: Arc::new(AtomicU64::new(1)),
        }
    }

    fn rotate(&self) {
        self.rotated.store(true, Ordering::SeqCst);
    }

    /// Serves on 127.0.0.1 and returns the URL.
    async fn serve(self) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(pb::gate_service_server::GateServiceServer::new(self))
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        url
    }

    fn current(&self) -> &Ed25519KeyPair {
        &self.keys[usize::from(self.rotated.load(Ordering::SeqCst))]
    }
}

#[tonic::async_trait]
impl pb::gate_service_server::GateService for FakeGate {
    type WatchRevocationsStream =
        Pin<Box<dyn Stream<Item = Result<pb::RevocationList, Status>> + Send>>;

    async fn get_verification_keys(
        &self,
        _: tonic::Request<pb::GetVerificationKeysRequest>,
    ) -> Result<tonic::Response<pb::VerificationKeys>, Status> {
        let rotated = self.rotated.load(Ordering::SeqCst);
        let published = if rotated {
            &self.keys[..]
        } else {
            &self.keys[..1]
        };
        let token_keys = published
            .iter()
            .map(|k| {
                let public = k.public_key().as_ref().to_vec();
                pb::TokenKey {
                    key_id: key_id(&public),
                    public_key: public,
                    retired_at_ms: 0,
                    verify_until_ms: 0,
                }
            })
            .collect();
        Ok(tonic::Response::new(pb::VerificationKeys {
            token_keys,
            grant_cas: vec![],
            trust_domain: TRUST_DOMAIN.into(),
        }))
    }

    async fn get_revocations(
        &self,
        _: tonic::Request<pb::GetRevocationsRequest>,
    ) -> Result<tonic::Response<pb::RevocationList>, Status> {
        let claims = RevocationClaims {
            iss: format!("spiffe://{TRUST_DOMAIN}"),
            aud: "acme".into(),
            seq: self.seq.fetch_add(1, Ordering::SeqCst),
            epoch: 0,
            iat: self.clock.now(),
            revoked: vec![],
        };
        Ok(tonic::Response::new(pb::RevocationList {
            token: claims.sign(self.current()),
            seq: claims.seq,
            issued_at_ms: claims.iat.millis(),
            revoked_grant_ids: vec![],
        }))
    }

    async fn watch_revocations(
        &self,
        _: tonic::Request<pb::WatchRevocationsRequest>,
    ) -> Result<tonic::Response<Self::WatchRevocationsStream>, Status> {
        Err(Status::unimplemented("this gate cannot stream"))
    }
}
