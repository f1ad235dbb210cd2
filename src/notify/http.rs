//! One webhook attempt: a POST over HTTP/1.1 (hyper's client connection,
//! a fresh connection per attempt), over TLS (tokio-rustls, ring) for
//! `https://`, verified against the webpki roots or the hook's `ca_file`.
//! Decides which failures are worth retrying; knows nothing of the log.

use std::{path::Path, sync::Arc};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, StatusCode, Uri, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::{
    TlsConnector,
    rustls::{
        ClientConfig, RootCertStore,
        pki_types::{CertificateDer, ServerName, pem::PemObject as _},
    },
};

use super::{ATTEMPT_TIMEOUT, DELIVERY_HEADER, NotifyError, SIGNATURE_HEADER};

/// Where a hook posts to.
#[derive(Clone)]
pub struct Endpoint {
    host: String,
    port: u16,
    /// `host[:port]`, for the Host header.
    authority: String,
    path: String,
    /// `Some` for https.
    tls: Option<TlsConnector>,
    https: bool,
}

/// Why an attempt failed, and whether another may succeed.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub retryable: bool,
}

impl Endpoint {
    /// Checks the URL's form (scheme http or https, a host, no user info).
    pub fn parse(url: &str) -> Result<Endpoint, NotifyError> {
        let uri: Uri = url
            .parse()
            .map_err(|e| NotifyError::Url(format!("{url:?}: {e}")))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(NotifyError::Url(format!("{url:?} is not http or https"))),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| NotifyError::Url(format!("{url:?} has no host")))?;
        if authority.as_str().contains('@') {
            return Err(NotifyError::Url(format!(
                "{url:?}: put no credentials in the url; the signature authenticates"
            )));
        }
        let host = authority.host().trim_matches(['[', ']']).to_owned();
        if host.is_empty() {
            return Err(NotifyError::Url(format!("{url:?} has no host")));
        }
        Ok(Endpoint {
            port: authority.port_u16().unwrap_or(if https { 443 } else { 80 }),
            authority: authority.as_str().to_owned(),
            host,
            path: uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
            tls: None,
            https,
        })
    }

    /// For https: the TLS client, trusting `ca_file` or the webpki roots.
    pub(super) fn with_roots(
        mut self,
        hook: &str,
        ca_file: Option<&Path>,
    ) -> Result<Endpoint, NotifyError> {
        if !self.https {
            return Ok(self);
        }
        let mut roots = RootCertStore::empty();
        match ca_file {
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            Some(path) => {
                let err = |message: String| NotifyError::CaFile {
                    hook: hook.to_owned(),
                    path: path.to_owned(),
                    message,
                };
                let pem = std::fs::read(path).map_err(|e| err(format!("cannot read it: {e}")))?;
                for cert in CertificateDer::pem_slice_iter(&pem) {
                    let cert = cert.map_err(|e| err(format!("not PEM: {e}")))?;
                    roots
                        .add(cert)
                        .map_err(|e| err(format!("not a usable CA certificate: {e}")))?;
                }
                if roots.is_empty() {
                    return Err(err("holds no PEM certificate".into()));
                }
            }
        }
        let config = ClientConfig::builder_with_provider(Arc::new(
            tokio_rustls::rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| NotifyError::Url(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        self.tls = Some(TlsConnector::from(Arc::new(config)));
        Ok(self)
    }

    /// One POST of `body`; `Ok` on a 2xx answer.
    pub async fn post(&self, body: Bytes, id: &str, signature: &str) -> Result<(), Failure> {
        let request = Request::post(self.path.as_str())
            .header(header::HOST, self.authority.as_str())
            .header(header::CONTENT_TYPE, "application/json")
            .header(
                header::USER_AGENT,
                concat!("daypass/", env!("CARGO_PKG_VERSION")),
            )
            .header(DELIVERY_HEADER, id)
            .header(SIGNATURE_HEADER, signature)
            .body(Full::new(body))
            .map_err(|e| Failure {
                message: format!("cannot build the request: {e}"),
                retryable: false,
            })?;
        let status = tokio::time::timeout(ATTEMPT_TIMEOUT, self.exchange(request))
            .await
            .map_err(|_| Failure {
                message: format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs()),
                retryable: true,
            })??;
        if status.is_success() {
            Ok(())
        } else {
            Err(Failure {
                message: format!("the receiver answered {status}"),
                retryable: status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS,
            })
        }
    }

    async fn exchange(&self, request: Request<Full<Bytes>>) -> Result<StatusCode, Failure> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| retry(format!("cannot connect to {}: {e}", self.authority)))?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => send(TokioIo::new(tcp), request).await,
            Some(tls) => {
                let name = ServerName::try_from(self.host.clone()).map_err(|e| Failure {
                    message: format!("{} is not a TLS server name: {e}", self.host),
                    retryable: false,
                })?;
                let stream = tls
                    .connect(name, tcp)
                    .await
                    .map_err(|e| retry(format!("TLS with {} failed: {e}", self.authority)))?;
                send(TokioIo::new(stream), request).await
            }
        }
    }
}

async fn send<T>(io: T, request: Request<Full<Bytes>>) -> Result<StatusCode, Failure>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| retry(format!("HTTP handshake failed: {e}")))?;
    // The connection is driven beside the request and dropped with it.
    let conn = tokio::spawn(conn);
    let answer = sender.send_request(request).await;
    conn.abort();
    answer
        .map(|r| r.status())
        .map_err(|e| retry(format!("the request failed: {e}")))
}

fn retry(message: String) -> Failure {
    Failure {
        message,
        retryable: true,
    }
}
