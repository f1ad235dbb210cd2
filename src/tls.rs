//! TLS termination for the server: the rustls configuration (mutual TLS
//! against `tls.ca`, HTTP/2 only) and the accept loop that hands tonic
//! finished TLS streams. A handshake not done within
//! [`HandshakeLimits::timeout`] is closed, and at most
//! [`HandshakeLimits::max_pending`] connections are in their handshake at
//! once: beyond that a new connection is closed at once, so idle or
//! half-sent ClientHellos cannot pile up. tonic's own TLS has a timeout but
//! no such cap, which is why the handshake is done here.
//!
//! tonic reads the peer certificates of a
//! `tokio_rustls::server::TlsStream<TcpStream>` itself (its `Connected`
//! impl), so `Request::peer_certs` works as with tonic's TLS. What a client
//! certificate must say beyond what rustls checks is [`crate::identity`]'s.

use std::{io, sync::Arc, time::Duration};

use tokio::{
    net::TcpStream,
    sync::{Semaphore, mpsc},
};
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        self, RootCertStore, ServerConfig,
        pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject as _},
        server::WebPkiClientVerifier,
    },
    server::TlsStream,
};
use tokio_stream::{Stream, StreamExt as _, wrappers::ReceiverStream};
use tonic::transport::server::TcpIncoming;

use crate::config::Config;

/// How long a handshake may take, and how many may be under way.
#[derive(Clone, Copy, Debug)]
pub struct HandshakeLimits {
    pub timeout: Duration,
    pub max_pending: usize,
}

impl From<&Config> for HandshakeLimits {
    fn from(c: &Config) -> Self {
        HandshakeLimits {
            timeout: Duration::from_millis(c.limits.handshake_timeout_ms),
            max_pending: c.limits.max_pending_handshakes,
        }
    }
}

/// The server's rustls configuration: the certificate chain and key in
/// `cert_pem` and `key_pem`, client certificates required and verified
/// against the CAs in `ca_pem`, ALPN `h2`. The error says what is wrong.
pub fn server_config(
    ca_pem: &[u8],
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<Arc<ServerConfig>, String> {
    build(ClientCerts::Required(ca_pem), cert_pem, key_pem, b"h2")
}

/// The warning screen's rustls configuration ([`crate::screen`]): the
/// same certificate and key as the gRPC listener, no client certificate
/// (a wall display authenticates with its session cookie), ALPN
/// `http/1.1`.
pub fn web_server_config(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<ServerConfig>, String> {
    build(ClientCerts::None, cert_pem, key_pem, b"http/1.1")
}

/// The tile read API's rustls configuration ([`crate::tile_api`]): the
/// same certificate and key, a client certificate optional but, when
/// presented, verified against the CAs in `ca_pem` (a certificate that
/// does not verify fails the handshake), ALPN `http/1.1`.
pub fn tile_server_config(
    ca_pem: &[u8],
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<Arc<ServerConfig>, String> {
    build(
        ClientCerts::Optional(ca_pem),
        cert_pem,
        key_pem,
        b"http/1.1",
    )
}

enum ClientCerts<'a> {
    None,
    Optional(&'a [u8]),
    Required(&'a [u8]),
}

fn build(
    client: ClientCerts<'_>,
    cert_pem: &[u8],
    key_pem: &[u8],
    alpn: &[u8],
) -> Result<Arc<ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = match client {
        ClientCerts::None => None,
        ClientCerts::Optional(ca_pem) | ClientCerts::Required(ca_pem) => {
            let mut roots = RootCertStore::empty();
            for ca in CertificateDer::pem_slice_iter(ca_pem) {
                let ca = ca.map_err(|e| format!("CA certificate: {e}"))?;
                roots.add(ca).map_err(|e| format!("CA certificate: {e}"))?;
            }
            let builder =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let builder = match client {
                ClientCerts::Optional(_) => builder.allow_unauthenticated(),
                _ => builder,
            };
            Some(
                builder
                    .build()
                    .map_err(|e| format!("CA certificate: {e}"))?,
            )
        }
    };
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("server certificate: {e}"))?;
    if chain.is_empty() {
        return Err("server certificate: no PEM certificate".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| format!("server key: {e}"))?;
    let builder = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("server certificate and key: {e}"))?;
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(Arc::new(config))
}

/// The connections of `tcp` once their TLS handshake has finished, within
/// `limits`. Accept errors are passed on as they come (tonic decides which
/// end the server). The accept loop, and with it the listener, ends when
/// the returned stream is dropped.
pub fn incoming(
    tcp: TcpIncoming,
    config: Arc<ServerConfig>,
    limits: HandshakeLimits,
) -> impl Stream<Item = io::Result<TlsStream<TcpStream>>> {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(accept_loop(tcp, TlsAcceptor::from(config), limits, tx));
    ReceiverStream::new(rx)
}

async fn accept_loop(
    mut tcp: TcpIncoming,
    acceptor: TlsAcceptor,
    limits: HandshakeLimits,
    tx: mpsc::Sender<io::Result<TlsStream<TcpStream>>>,
) {
    let pending = Arc::new(Semaphore::new(limits.max_pending));
    loop {
        let accepted = tokio::select! {
            () = tx.closed() => return,
            next = tcp.next() => next,
        };
        let stream = match accepted {
            None => return,
            Some(Err(e)) => {
                if tx.send(Err(e)).await.is_err() {
                    return;
                }
                continue;
            }
            Some(Ok(stream)) => stream,
        };
        let Ok(permit) = pending.clone().try_acquire_owned() else {
            tracing::debug!(
                max = limits.max_pending,
                "too many TLS handshakes under way; a new connection was closed"
            );
            continue; // `stream` is dropped: closed at once
        };
        let (acceptor, tx) = (acceptor.clone(), tx.clone());
        tokio::spawn(async move {
            let done = tokio::time::timeout(limits.timeout, acceptor.accept(stream)).await;
            drop(permit);
            match done {
                Ok(Ok(tls)) => {
                    let _ = tx.send(Ok(tls)).await;
                }
                Ok(Err(e)) => handshake_failed(&e),
                Err(_) => tracing::debug!(
                    timeout = ?limits.timeout,
                    "TLS handshake not done in time; connection closed"
                ),
            }
        });
    }
}

/// A failed handshake, logged at info (why: an unknown CA, an expired
/// certificate, no certificate…, never more of what the peer sent) at
/// most once a second; the ones in between are counted into the next.
fn handshake_failed(e: &io::Error) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static START: std::sync::OnceLock<tokio::time::Instant> = std::sync::OnceLock::new();
    static LAST_SECOND: AtomicU64 = AtomicU64::new(u64::MAX);
    static SKIPPED: AtomicU64 = AtomicU64::new(0);
    let now = START
        .get_or_init(tokio::time::Instant::now)
        .elapsed()
        .as_secs();
    if LAST_SECOND.swap(now, Ordering::Relaxed) == now {
        SKIPPED.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let skipped = SKIPPED.swap(0, Ordering::Relaxed);
    tracing::info!(error = %e, unlogged_before = skipped, "a TLS handshake failed (the client's certificate was refused, or it spoke no TLS)");
}

/// Finished TLS connections as axum's listener, for the HTTPS faces (the
/// warning screen, the tile read API): the handshake runs under
/// `limits` in [`incoming`]; a failed accept is logged at debug level and
/// skipped.
pub struct HttpsListener {
    incoming: std::pin::Pin<Box<dyn Stream<Item = io::Result<TlsStream<TcpStream>>> + Send>>,
    local: std::net::SocketAddr,
    what: &'static str,
}

impl HttpsListener {
    /// Serves TLS with `tls` on `listener`; `what` names it in logs.
    pub fn new(
        listener: tokio::net::TcpListener,
        tls: Arc<ServerConfig>,
        limits: HandshakeLimits,
        what: &'static str,
    ) -> io::Result<HttpsListener> {
        let local = listener.local_addr()?;
        let incoming = incoming(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            tls,
            limits,
        );
        Ok(HttpsListener {
            incoming: Box::pin(incoming),
            local,
            what,
        })
    }
}

impl axum::serve::Listener for HttpsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.incoming.next().await {
                Some(Ok(tls)) => {
                    let peer = tls
                        .get_ref()
                        .0
                        .peer_addr()
                        .unwrap_or_else(|_| std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
                    return (tls, peer);
                }
                Some(Err(e)) => {
                    tracing::debug!(error = %e, listener = self.what, "could not accept");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                // The accept loop ended; serve nothing more.
                None => std::future::pending().await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}
