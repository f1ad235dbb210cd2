//! A minimal HTTPS/1.1 client for the warning screen's tests: one request
//! per connection (`Connection: close`), the test CA as the only root.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};
use tokio_rustls::{
    TlsConnector,
    rustls::{self, RootCertStore, pki_types::CertificateDer, pki_types::pem::PemObject as _},
};

/// A response: status, headers (lowercase names) and body (as text, and
/// as the bytes it came as).
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub bytes: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn connector(ca_pem: &str) -> TlsConnector {
    connector_as(ca_pem, None)
}

/// Trusting `ca_pem`, presenting `client` (certificate and key PEM) if given.
fn connector_as(ca_pem: &str, client: Option<(&str, &str)>) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.expect("CA PEM")).expect("CA");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots);
    let config = match client {
        None => config.with_no_client_auth(),
        Some((cert, key)) => config
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(cert.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .expect("client cert PEM"),
                rustls::pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes())
                    .expect("client key PEM"),
            )
            .expect("client identity"),
    };
    TlsConnector::from(Arc::new(config))
}

/// Sends `method path` with `cookie` (if any) and reads the whole answer
/// (or, for an event stream, what came within `wait`).
pub async fn request(
    ca_pem: &str,
    addr: SocketAddr,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    wait: Duration,
) -> Response {
    request_as(ca_pem, None, addr, method, path, cookie, wait).await
}

/// [`request`], presenting `client` (certificate and key PEM) if given.
pub async fn request_as(
    ca_pem: &str,
    client: Option<(&str, &str)>,
    addr: SocketAddr,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    wait: Duration,
) -> Response {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let mut tls = connector_as(ca_pem, client)
        .connect(name, tcp)
        .await
        .expect("TLS with the server's certificate");
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{cookie}Connection: close\r\nContent-Length: 0\r\n\r\n"
    );
    tls.write_all(req.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(wait, tls.read_to_end(&mut raw)).await;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let text = String::from_utf8_lossy(&raw[..split]).into_owned();
    let bytes = raw.get(split + 4..).unwrap_or_default().to_vec();
    let head = text.as_str();
    let body = String::from_utf8_lossy(&bytes).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Response {
        status,
        headers,
        body,
        bytes,
    }
}

/// GET, answered within 10 s.
pub async fn get(ca_pem: &str, addr: SocketAddr, path: &str, cookie: Option<&str>) -> Response {
    request(ca_pem, addr, "GET", path, cookie, Duration::from_secs(10)).await
}
