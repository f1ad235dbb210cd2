//! Protecting a tenant's own gRPC service: [`RequireGrant`] is a tower
//! layer for tonic servers that lets a call through only for the holder of
//! a live grant for this tenant, and reports every call it lets through.
//!
//! A call is admitted when it carries a grant token that the [`Verifier`]
//! accepts (`authorization: Bearer v4.public.…` metadata), or when the TLS
//! peer certificate is a grant certificate it accepts. The [`Admission`] is
//! then put in the request's extensions (handlers read it with
//! `request.extensions().get::<Admission>()`), and the access is reported
//! (action: the gRPC method path, e.g. `/pkg.Service/Method`), every call
//! by default. A busy service may report each grant's use of each method at
//! most once per interval instead ([`RequireGrant::with_report_every`]): the
//! log then says who used what to within the interval, not every call, and
//! calls in the interval after a revocation may go unreported. Otherwise the
//! call is answered without reaching the service: UNAUTHENTICATED when it
//! carries neither credential, PERMISSION_DENIED with the [`Refusal`] when
//! they were refused, UNAVAILABLE when the access could not be queued for
//! reporting (an access that cannot be recorded does not happen).
//!
//! ```ignore
//! // The whole program: examples/tenant_service.rs in the workspace root.
//! Server::builder()
//!     .tls_config(tls)?
//!     .layer(RequireGrant::new(verifier, reporter))
//!     .add_service(my_service)
//!     .serve(addr)
//!     .await?;
//! ```
//!
//! **Scoped grants.** A grant may cover only some resources of the tenant
//! (docs/integration.md §2.1). The layer refuses a scoped grant's calls
//! offline unless it is told which resource each call is for
//! ([`RequireGrant::for_resources`]: a function from the request's path and
//! metadata to a [`Resource`]) and that resource is inside the grant's
//! scopes; the resource is then reported with the access. A call the
//! function names no resource for is refused to scoped grants (they cover
//! named resources only) and let through for grants of the whole tenant,
//! as is every call when no function is set. [`grpc_method_resource`]
//! names each call by its gRPC method.
//!
//! The peer certificate is read from tonic's connection info
//! ([`TlsConnectInfo`]), which tonic's server puts in every request's
//! extensions when it terminates TLS itself.
//!
//! [`Refusal`]: crate::Refusal

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use http::{HeaderMap, Request, Response, Uri, header::AUTHORIZATION};
use tonic::{
    Status,
    server::NamedService,
    transport::{
        CertificateDer,
        server::{TcpConnectInfo, TlsConnectInfo},
    },
};
use tower::{Layer, Service};

use crate::{
    clock::Timestamp,
    report::{ReportError, Reporter},
    scope::Resource,
    verifier::{Admission, Refusal, Verifier},
};

/// How often the same grant's use of the same method is reported by
/// default: every call.
pub const DEFAULT_REPORT_EVERY: Duration = Duration::ZERO;

/// The layer: wraps services in [`RequireGrantService`].
#[derive(Clone, Debug)]
pub struct RequireGrant {
    verifier: Arc<Verifier>,
    reporter: Reporter,
    report_every_ms: i64,
    reported: Arc<Mutex<Reported>>,
    resource_of: Option<ResourceOf>,
}

/// Which resource a call is for: see [`RequireGrant::for_resources`].
#[derive(Clone)]
struct ResourceOf(Arc<ResourceFn>);

/// The function behind [`ResourceOf`].
type ResourceFn = dyn Fn(&Uri, &HeaderMap) -> Option<Resource> + Send + Sync;

impl std::fmt::Debug for ResourceOf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResourceOf(..)")
    }
}

/// A call's gRPC method as a resource: `/acme.Billing/Refund` becomes
/// `acme.billing:refund` (lower case; `None` for a path that is not
/// `/<service>/<method>` or does not fit the grammar, e.g. a segment over
/// 32 characters). For [`RequireGrant::for_resources`], when scopes name
/// methods (`acme.billing:*`).
pub fn grpc_method_resource(uri: &Uri, _metadata: &HeaderMap) -> Option<Resource> {
    let (service, method) = uri.path().strip_prefix('/')?.split_once('/')?;
    Resource::parse(&format!(
        "{}:{}",
        service.to_ascii_lowercase(),
        method.to_ascii_lowercase()
    ))
    .ok()
}

/// When each (grant id, method) was last reported, for throttled reports.
#[derive(Debug, Default)]
struct Reported {
    last: HashMap<(String, String), Timestamp>,
    /// When old pairs were last swept out (at most once per interval).
    swept_at: Timestamp,
}

/// Reported pairs kept at most (each a grant id and a method path): when
/// full of recent pairs, new ones are simply reported every time.
const REPORTED_MAX: usize = 16_384;

/// A service that admits only grant holders (see the module documentation).
#[derive(Clone, Debug)]
pub struct RequireGrantService<S> {
    inner: S,
    gate: RequireGrant,
}

impl RequireGrant {
    pub fn new(verifier: Arc<Verifier>, reporter: Reporter) -> RequireGrant {
        RequireGrant {
            verifier,
            reporter,
            report_every_ms: DEFAULT_REPORT_EVERY.as_millis() as i64,
            reported: Arc::default(),
            resource_of: None,
        }
    }

    /// Checks scoped grants: `resource_of` names the resource each call is
    /// for (from its path, e.g. `/pkg.Service/Method`, and its metadata),
    /// and a scoped grant is admitted only when it names one inside the
    /// grant's scopes (module documentation). Without it, scoped grants are
    /// refused.
    pub fn for_resources(
        mut self,
        resource_of: impl Fn(&Uri, &HeaderMap) -> Option<Resource> + Send + Sync + 'static,
    ) -> RequireGrant {
        self.resource_of = Some(ResourceOf(Arc::new(resource_of)));
        self
    }

    /// Reports the same grant's use of the same method at most this often
    /// (zero, the default: every call). Fewer log entries and reports for a
    /// busy service, at the price of exactness: calls within the interval,
    /// including any admitted after a revocation the feed had not yet
    /// delivered, are not reported one by one.
    pub fn with_report_every(mut self, every: Duration) -> RequireGrant {
        self.report_every_ms = i64::try_from(every.as_millis()).unwrap_or(i64::MAX);
        self
    }

    /// The decision for one request, without calling anything: the
    /// admission, reported, or the status to answer with.
    pub fn admit<B>(&self, req: &Request<B>) -> Result<Admission, Status> {
        let token = bearer_token(req.headers());
        let certificates = peer_certificates(req);
        let certificate = certificates.as_ref().and_then(|c| c.first());
        if token.is_none() && certificate.is_none() {
            return Err(Status::unauthenticated(
                "no grant: send `authorization: Bearer <grant token>` or connect with a grant certificate",
            ));
        }
        let mut refusal = None;
        // Computed once, and only if a credential is scoped.
        let mut resource = None;
        if let Some(token) = token {
            match self
                .verifier
                .verify_token(token)
                .and_then(|a| self.in_scope(req, a, &mut resource))
            {
                Ok((a, r)) => return self.report(req, a, r.as_ref()),
                Err(r) => refusal = Some(r),
            }
        }
        if let Some(der) = certificate {
            match self
                .verifier
                .verify_certificate(der)
                .and_then(|a| self.in_scope(req, a, &mut resource))
            {
                Ok((a, r)) => return self.report(req, a, r.as_ref()),
                Err(r) => {
                    refusal.get_or_insert(r);
                }
            }
        }
        let message = refusal.map(|r| r.to_string()).unwrap_or_default();
        tracing::info!(
            tenant = self.verifier.tenant(),
            method = req.uri().path(),
            refusal = message,
            "call refused"
        );
        Err(Status::permission_denied(message))
    }

    /// The admission if the call's resource is inside its scopes, with the
    /// resource (`None`: not asked, or named none).
    fn in_scope<B>(
        &self,
        req: &Request<B>,
        a: Admission,
        resource: &mut Option<Option<Resource>>,
    ) -> Result<(Admission, Option<Resource>), Refusal> {
        let named = resource
            .get_or_insert_with(|| {
                self.resource_of
                    .as_ref()
                    .and_then(|f| (f.0)(req.uri(), req.headers()))
            })
            .clone();
        if a.scopes.is_whole_tenant() {
            return Ok((a, named));
        }
        match named {
            Some(r) => {
                a.require(&r)?;
                Ok((a, Some(r)))
            }
            None => Err(Refusal::OutOfScope {
                resource: if self.resource_of.is_some() {
                    "a call that names no resource".into()
                } else {
                    "calls of a service that names no resources".into()
                },
                scopes: a.scopes.to_string(),
            }),
        }
    }

    fn report<B>(
        &self,
        req: &Request<B>,
        a: Admission,
        resource: Option<&Resource>,
    ) -> Result<Admission, Status> {
        let method = req.uri().path();
        let now = self.verifier.clock().now();
        let resource = resource.map(Resource::as_str).unwrap_or_default();
        // Throttled per grant, method and resource.
        let key = (a.grant_id.clone(), format!("{method} {resource}"));
        // Throttled only when an interval is set.
        let mut reported = (self.report_every_ms > 0)
            .then(|| self.reported.lock().unwrap_or_else(|e| e.into_inner()));
        if let Some(reported) = &reported {
            let elapsed = |last: &Timestamp| now.millis().saturating_sub(last.millis());
            if reported
                .last
                .get(&key)
                .is_some_and(|last| elapsed(last) < self.report_every_ms)
            {
                return Ok(a);
            }
        }
        self.reporter
            .report(&a.grant_id, method, resource)
            .map_err(|e| match e {
                ReportError::TooLong { .. } => Status::invalid_argument(e.to_string()),
                _ => Status::unavailable(format!("{e}; try again later")),
            })?;
        if let Some(reported) = reported.as_mut() {
            let every = self.report_every_ms;
            let since = |t: Timestamp| now.millis().saturating_sub(t.millis());
            if reported.last.len() >= REPORTED_MAX && since(reported.swept_at) >= every {
                reported.last.retain(|_, last| since(*last) < every);
                reported.swept_at = now;
            }
            // Bounded whatever paths callers invent.
            if reported.last.len() < REPORTED_MAX {
                reported.last.insert(key, now);
            }
        }
        Ok(a)
    }
}

impl<S> Layer<S> for RequireGrant {
    type Service = RequireGrantService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireGrantService {
            inner,
            gate: self.clone(),
        }
    }
}

impl<S, B, ResBody> Service<Request<B>> for RequireGrantService<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        match self.gate.admit(&req) {
            Ok(admission) => {
                req.extensions_mut().insert(admission);
                ResponseFuture::Admitted {
                    inner: self.inner.call(req),
                }
            }
            Err(status) => ResponseFuture::Refused {
                response: Some(status.into_http()),
            },
        }
    }
}

/// Served under the wrapped service's name, so a single service can be
/// protected: `Server::builder().add_service(RequireGrant::new(..).layer(svc))`.
impl<S: NamedService> NamedService for RequireGrantService<S> {
    const NAME: &'static str = S::NAME;
}

pin_project_lite::pin_project! {
    /// The response of a [`RequireGrantService`]: the wrapped service's, or
    /// the refusal.
    #[project = ResponseFutureProj]
    pub enum ResponseFuture<F, B> {
        Admitted { #[pin] inner: F },
        Refused { response: Option<Response<B>> },
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Default,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            ResponseFutureProj::Admitted { inner } => inner.poll(cx),
            // Polled again after completion (a contract violation): an
            // empty response rather than a panic.
            ResponseFutureProj::Refused { response } => {
                Poll::Ready(Ok(response.take().unwrap_or_default()))
            }
        }
    }
}

/// The token of an `authorization: Bearer <token>` header, if any.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The TLS peer's certificates, leaf first, if tonic terminated TLS and the
/// peer sent any.
fn peer_certificates<B>(req: &Request<B>) -> Option<Arc<Vec<CertificateDer<'static>>>> {
    let certs = req
        .extensions()
        .get::<TlsConnectInfo<TcpConnectInfo>>()
        .and_then(|info| info.peer_certs());
    #[cfg(unix)]
    let certs = certs.or_else(|| {
        req.extensions()
            .get::<TlsConnectInfo<tonic::transport::server::UdsConnectInfo>>()
            .and_then(|info| info.peer_certs())
    });
    certs.filter(|certs| !certs.is_empty())
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use ring::signature::{Ed25519KeyPair, KeyPair};
    use tonic::Code;
    use tower::ServiceExt;

    use super::*;
    use crate::{
        claims::{GrantClaims, RevocationClaims, key_id, reason_sha256},
        clock::{ManualClock, Timestamp},
        keys::{KeySet, TokenKey},
        report::ReporterOptions,
    };

    const T0: Timestamp = Timestamp(1_764_064_800_000);

    /// A verifier for tenant acme holding a fresh, empty revocation list,
    /// the key that signs for it, and a token for grant g1.
    fn verifier() -> (Arc<Verifier>, String) {
        verifier_on(ManualClock::new(T0))
    }

    /// The same, on a clock the test moves.
    fn verifier_on(clock: ManualClock) -> (Arc<Verifier>, String) {
        scoped_verifier_on(clock, None)
    }

    /// The same, the token's grant with `scopes`.
    fn scoped_verifier_on(
        clock: ManualClock,
        scopes: Option<Vec<String>>,
    ) -> (Arc<Verifier>, String) {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("key");
        let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("key");
        let public = key.public_key().as_ref();
        let keys = KeySet {
            trust_domain: "test.daypass".into(),
            token_keys: vec![TokenKey::new(&key_id(public), public, None, None).expect("key")],
            grant_cas: vec![],
        };
        let verifier = Verifier::new("acme", keys, Arc::new(clock));
        let list = RevocationClaims {
            iss: "spiffe://test.daypass".into(),
            aud: "acme".into(),
            seq: 1,
            epoch: 0,
            iat: T0,
            revoked: vec![],
        };
        verifier
            .apply_revocations(&list.sign(&key))
            .expect("fresh list");
        let token = GrantClaims {
            iss: "spiffe://test.daypass".into(),
            sub: "spiffe://test.daypass/staff/alice".into(),
            aud: "acme".into(),
            jti: "g1".into(),
            iat: T0,
            nbf: T0,
            exp: T0.plus_secs(600),
            reason_sha256: reason_sha256("incident 7"),
            country: None,
            organisation: None,
            scopes,
        }
        .sign(&key);
        (Arc::new(verifier), token)
    }

    /// A reporter whose broker never answers, holding at most one report.
    fn stuck_reporter() -> Reporter {
        let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:1").connect_lazy();
        Reporter::with_options(
            channel,
            ReporterOptions {
                capacity: 1,
                max_in_flight: 1,
                ..ReporterOptions::default()
            },
        )
    }

    /// The protected service answers with the admitted grant's id.
    fn protected(
        gate: RequireGrant,
    ) -> impl Service<Request<()>, Response = Response<String>, Error = Infallible> + Clone {
        gate.layer(tower::service_fn(|req: Request<()>| async move {
            let admitted = req.extensions().get::<Admission>().cloned();
            Ok::<_, Infallible>(Response::new(
                admitted.map(|a| a.grant_id).unwrap_or_default(),
            ))
        }))
    }

    fn call(token: Option<&str>) -> Request<()> {
        let mut req = Request::builder().uri("/acme.Billing/Refund");
        if let Some(token) = token {
            req = req.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        req.body(()).expect("request")
    }

    fn status(resp: &Response<String>) -> Option<Status> {
        Status::from_header_map(resp.headers())
    }

    #[tokio::test]
    async fn admits_tokens_refuses_the_rest_and_puts_the_admission_in_extensions() {
        let (verifier, token) = verifier();
        let svc = protected(RequireGrant::new(verifier, stuck_reporter()));

        let resp = svc.clone().oneshot(call(Some(&token))).await.expect("call");
        assert!(status(&resp).is_none(), "admitted");
        assert_eq!(resp.body(), "g1");

        let resp = svc.clone().oneshot(call(None)).await.expect("call");
        let s = status(&resp).expect("refused");
        assert_eq!(s.code(), Code::Unauthenticated);
        assert!(s.message().contains("Bearer"), "{}", s.message());

        let resp = svc
            .oneshot(call(Some("v4.public.bogus")))
            .await
            .expect("call");
        let s = status(&resp).expect("refused");
        assert_eq!(s.code(), Code::PermissionDenied);
        assert!(
            s.message().starts_with("malformed credential"),
            "{}",
            s.message()
        );
        assert_eq!(resp.body(), "", "the service was not called");
    }

    #[tokio::test]
    async fn each_grants_use_of_a_method_is_reported_once_per_interval() {
        let clock = ManualClock::new(T0);
        let (verifier, token) = verifier_on(clock.clone());
        let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:1").connect_lazy();
        let reporter = Reporter::new(channel);
        let gate = RequireGrant::new(verifier, reporter.clone())
            .with_report_every(Duration::from_secs(10));
        let svc = protected(gate);
        let other = || {
            let mut req = call(Some(&token));
            *req.uri_mut() = "/acme.Billing/Invoice".parse().expect("uri");
            req
        };
        for _ in 0..3 {
            svc.clone().oneshot(call(Some(&token))).await.expect("call");
        }
        assert_eq!(reporter.stats().queued, 1, "three calls, one report");
        svc.clone().oneshot(other()).await.expect("call");
        assert_eq!(reporter.stats().queued, 2, "another method is reported");
        clock.advance_millis(9_999);
        svc.clone().oneshot(call(Some(&token))).await.expect("call");
        assert_eq!(reporter.stats().queued, 2, "still within the interval");
        clock.advance_millis(1);
        svc.clone().oneshot(call(Some(&token))).await.expect("call");
        assert_eq!(reporter.stats().queued, 3, "reported again after it");
    }

    #[tokio::test]
    async fn a_method_path_the_broker_cannot_record_is_refused() {
        let (verifier, token) = verifier();
        let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:1").connect_lazy();
        let reporter = Reporter::new(channel);
        let svc = protected(RequireGrant::new(verifier, reporter.clone()));
        let mut req = call(Some(&token));
        *req.uri_mut() = format!("/acme.Billing/{}", "x".repeat(200))
            .parse()
            .expect("uri");
        let resp = svc.oneshot(req).await.expect("call");
        let s = status(&resp).expect("refused");
        assert_eq!(s.code(), Code::InvalidArgument, "{}", s.message());
        assert!(s.message().contains("longer than the broker takes"));
        assert_eq!(resp.body(), "", "the service was not called");
        assert_eq!(reporter.stats().queued, 0);
    }

    #[tokio::test]
    async fn an_access_that_cannot_be_queued_for_reporting_is_refused() {
        let (verifier, token) = verifier();
        let reporter = stuck_reporter();
        let svc = protected(
            RequireGrant::new(verifier, reporter.clone()).with_report_every(Duration::ZERO),
        );
        // One report in flight, one waiting: the third (at the latest)
        // finds the buffer full.
        let mut codes = Vec::new();
        for _ in 0..3 {
            let resp = svc.clone().oneshot(call(Some(&token))).await.expect("call");
            codes.push(status(&resp).map(|s| s.code()));
            tokio::task::yield_now().await;
        }
        assert_eq!(codes[0], None);
        assert!(codes.contains(&Some(Code::Unavailable)), "{codes:?}");
        assert!(reporter.stats().rejected >= 1);
    }

    /// A scoped grant is admitted offline only for a resource inside its
    /// scopes, which is reported with the access; without a way to name
    /// resources, the layer refuses it.
    #[tokio::test]
    async fn scoped_grants_are_admitted_only_inside_their_scopes() {
        let (scoped, token) = scoped_verifier_on(
            ManualClock::new(T0),
            Some(vec!["acme.billing:refund".into(), "db:read".into()]),
        );
        let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:1").connect_lazy();
        let reporter = Reporter::new(channel);
        // Without resources: refused, not taken as the whole tenant.
        let svc = protected(RequireGrant::new(scoped.clone(), reporter.clone()));
        let resp = svc.oneshot(call(Some(&token))).await.expect("call");
        let s = status(&resp).expect("refused");
        assert_eq!(s.code(), Code::PermissionDenied);
        assert!(s.message().starts_with("out of scope"), "{}", s.message());

        let svc = protected(
            RequireGrant::new(scoped.clone(), reporter.clone()).for_resources(grpc_method_resource),
        );
        let resp = svc.clone().oneshot(call(Some(&token))).await.expect("call");
        assert!(status(&resp).is_none(), "acme.billing:refund is in scope");
        assert_eq!(resp.body(), "g1");
        assert_eq!(reporter.stats().queued, 1);
        let mut other = call(Some(&token));
        *other.uri_mut() = "/acme.Billing/Invoice".parse().expect("uri");
        let resp = svc.oneshot(other).await.expect("call");
        let s = status(&resp).expect("refused");
        assert_eq!(s.code(), Code::PermissionDenied);
        assert_eq!(
            s.message(),
            "out of scope: the grant covers acme.billing:refund db:read, not acme.billing:invoice"
        );
        assert_eq!(resp.body(), "", "the service was not called");
        assert_eq!(reporter.stats().queued, 1, "a refusal is not an access");

        // A resolver naming no resource: scoped grants refused, whole-tenant
        // grants let through.
        let none = |_: &Uri, _: &HeaderMap| None;
        let svc = protected(RequireGrant::new(scoped, reporter.clone()).for_resources(none));
        let resp = svc.oneshot(call(Some(&token))).await.expect("call");
        assert!(
            status(&resp)
                .expect("refused")
                .message()
                .contains("names no resource")
        );
        let (whole, token) = verifier();
        let svc = protected(RequireGrant::new(whole, reporter).for_resources(none));
        let resp = svc.oneshot(call(Some(&token))).await.expect("call");
        assert!(status(&resp).is_none(), "a grant of the whole tenant");
    }

    #[test]
    fn grpc_methods_name_resources() {
        let r = |p: &str| grpc_method_resource(&p.parse().expect("uri"), &HeaderMap::new());
        assert_eq!(
            r("/acme.Billing/Refund").expect("named").as_str(),
            "acme.billing:refund"
        );
        assert_eq!(r("/nomethod"), None);
        assert_eq!(r(&format!("/a/{}", "x".repeat(40))), None);
    }

    #[test]
    fn bearer_tokens_are_read_case_insensitively() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer_token(&h), None);
        h.insert(
            AUTHORIZATION,
            "Bearer v4.public.abc".parse().expect("ascii"),
        );
        assert_eq!(bearer_token(&h), Some("v4.public.abc"));
        h.insert(
            AUTHORIZATION,
            "bearer  v4.public.abc ".parse().expect("ascii"),
        );
        assert_eq!(bearer_token(&h), Some("v4.public.abc"));
        h.insert(AUTHORIZATION, "Basic dXNlcjpwdw==".parse().expect("ascii"));
        assert_eq!(bearer_token(&h), None);
        h.insert(AUTHORIZATION, "Bearer ".parse().expect("ascii"));
        assert_eq!(bearer_token(&h), None);
    }
}
