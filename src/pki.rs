//! The project's own PKI, made with rcgen: a CA, the server certificate and
//! client certificates whose URI SAN names a principal
//! (`spiffe://<trust-domain>/<kind>/<name>`). Private keys are written with
//! mode 0600 and never logged.
//!
//! Layout written by `daypass certs init` / `certs issue` (see certs/README.md):
//! `ca.pem`, `ca.key`, `server.pem`, `server.key`, `<kind>-<name>.pem|.key`,
//! the log key (`log.key`, `log.pub`) and the gate keys tenants verify
//! against: the token key (`token.key`, `token.pub`) and the grant CA
//! (`grant-ca.pem`, `grant-ca.key`), which signs nothing but short-lived
//! grant certificates.

use std::{
    fs,
    io::Write,
    net::IpAddr,
    path::{Path, PathBuf},
};

use base64::Engine as _;
use daypass_tenant::pem;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use thiserror::Error;
use time::{Duration, OffsetDateTime};
use x509_parser::{
    certification_request::X509CertificationRequest,
    oid_registry::{
        OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_PKCS1_RSAENCRYPTION,
        OID_PKCS1_RSASSAPSS, OID_SIG_ED25519,
    },
    prelude::FromDer,
    x509::SubjectPublicKeyInfo,
};

use crate::{
    audit::note::LogKey,
    identity::{Name, Principal, PrincipalKind},
};

#[derive(Debug, Error)]
pub enum PkiError {
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} already exists; pass --force to replace it")]
    Exists(PathBuf),
    #[error("{0}")]
    Invalid(String),
}

/// A certificate and its private key, PEM-encoded.
#[derive(Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Issued { cert_pem, key_pem: <redacted> }")
    }
}

/// What to put in a certificate. Tests use the odd combinations.
#[derive(Clone, Debug)]
pub struct CertSpec {
    pub common_name: String,
    pub uris: Vec<String>,
    pub dns_names: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub server_auth: bool,
    pub client_auth: bool,
}

impl CertSpec {
    /// A client certificate for `principal`, valid from now for `days`.
    pub fn client(principal_uri: &str, days: i64) -> CertSpec {
        let now = wall_now();
        CertSpec {
            common_name: principal_uri
                .rsplit('/')
                .next()
                .unwrap_or("client")
                .to_owned(),
            uris: vec![principal_uri.to_owned()],
            dns_names: Vec::new(),
            ips: Vec::new(),
            not_before: now - Duration::minutes(5),
            not_after: now + Duration::days(days),
            server_auth: false,
            client_auth: true,
        }
    }

    /// A server certificate for the given host names and IP addresses.
    pub fn server(hosts: &[String], days: i64) -> CertSpec {
        let now = wall_now();
        let (ips, dns): (Vec<_>, Vec<_>) = hosts.iter().partition(|h| h.parse::<IpAddr>().is_ok());
        CertSpec {
            common_name: hosts.first().cloned().unwrap_or_else(|| "daypass".into()),
            uris: Vec::new(),
            dns_names: dns.into_iter().cloned().collect(),
            ips: ips.iter().filter_map(|h| h.parse().ok()).collect(),
            not_before: now - Duration::minutes(5),
            not_after: now + Duration::days(days),
            server_auth: true,
            client_auth: false,
        }
    }
}

/// A certificate authority that can sign.
pub struct CertificateAuthority {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    key_pem: String,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CertificateAuthority { .. }")
    }
}

impl CertificateAuthority {
    /// A new self-signed CA valid for ten years.
    pub fn generate(common_name: &str) -> Result<Self, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = wall_now();
        params.not_before = now - Duration::minutes(5);
        params.not_after = now + Duration::days(3650);
        let cert = params.self_signed(&key)?;
        let key_pem = key.serialize_pem();
        Ok(CertificateAuthority {
            cert_pem: cert.pem(),
            key_pem,
            issuer: Issuer::new(params, key),
        })
    }

    pub fn load(cert_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        let key = KeyPair::from_pem(key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key)?;
        Ok(CertificateAuthority {
            issuer,
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA's private key, for writing to a 0600 file. Never log it.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// Issues a certificate as `spec` says, with a fresh key.
    pub fn issue(&self, spec: &CertSpec) -> Result<Issued, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, spec.common_name.as_str());
        for uri in &spec.uris {
            params
                .subject_alt_names
                .push(SanType::URI(uri.as_str().try_into()?));
        }
        for dns in &spec.dns_names {
            params
                .subject_alt_names
                .push(SanType::DnsName(dns.as_str().try_into()?));
        }
        for ip in &spec.ips {
            params.subject_alt_names.push(SanType::IpAddress(*ip));
        }
        params.not_before = spec.not_before;
        params.not_after = spec.not_after;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if spec.server_auth {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ServerAuth);
        }
        if spec.client_auth {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ClientAuth);
        }
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Signs a certificate for the key in a PEM PKCS#10 request (whose
    /// signature proves the requester holds the key). Only the key is taken
    /// from the request: names, lifetime and usage are ours. Client
    /// authentication only. Returns the PEM and the hex serial number.
    ///
    /// The key must be one of [`ACCEPTED_CSR_KEYS`], decided from the
    /// request's SubjectPublicKeyInfo itself (algorithm, curve, length),
    /// never from the hash it was signed with: rcgen labels a request's key
    /// by its signature algorithm, so a P-384 key in a SHA-256 request
    /// would be certified as a "P-256" key holding a 97-byte point.
    pub fn issue_for_csr(
        &self,
        csr_pem: &str,
        common_name: &str,
        uris: &[String],
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<(String, String), PkiError> {
        let not_a_request = |e: &dyn std::fmt::Display| {
            PkiError::Invalid(format!("not a valid PEM certificate request: {e}"))
        };
        let der = pem::decode(csr_pem, "CERTIFICATE REQUEST")
            .ok_or_else(|| not_a_request(&"no CERTIFICATE REQUEST block"))?;
        let (rest, request) =
            X509CertificationRequest::from_der(&der).map_err(|e| not_a_request(&e))?;
        if !rest.is_empty() {
            return Err(not_a_request(&"bytes after the request"));
        }
        let key = RequestedKey::from_spki(&request.certification_request_info.subject_pki)?;
        request.verify_signature().map_err(|_| {
            PkiError::Invalid(
                "the certificate request's signature does not verify with its own key".into(),
            )
        })?;
        // Parsed again by rcgen only for its checks of the requested
        // extensions (it verifies the signature too); its idea of the key
        // is not used.
        rcgen::CertificateSigningRequestParams::from_der(&der.as_slice().into())
            .map_err(|e| not_a_request(&e))?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        for uri in uris {
            params
                .subject_alt_names
                .push(SanType::URI(uri.as_str().try_into()?));
        }
        params.not_before = not_before;
        params.not_after = not_after;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let mut serial = [0u8; 16];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut serial)
            .map_err(|_| PkiError::Invalid("no randomness for a serial number".into()))?;
        serial[0] &= 0x7f; // a positive INTEGER
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok((cert.pem(), hex::encode(serial)))
    }

    /// A client certificate for `kind/name` under `trust_domain`.
    pub fn issue_client(
        &self,
        kind: PrincipalKind,
        name: &Name,
        trust_domain: &str,
        days: i64,
    ) -> Result<Issued, PkiError> {
        let uri = Principal::new(kind, name.clone()).uri(trust_domain);
        self.issue(&CertSpec::client(&uri, days))
    }
}

/// The keys grant certificates are issued for, as said in refusals and in
/// docs/integration.md §5.
pub const ACCEPTED_CSR_KEYS: &str = "P-256 (prime256v1, uncompressed point) and Ed25519 keys";

/// A requested key that we certify: the public key bits and the rcgen
/// algorithm that writes its SubjectPublicKeyInfo back unchanged.
struct RequestedKey {
    alg: &'static rcgen::SignatureAlgorithm,
    key: Vec<u8>,
}

impl RequestedKey {
    /// Accepts P-256 (id-ecPublicKey, named curve prime256v1, a 65-byte
    /// uncompressed point) and Ed25519 (id-Ed25519, no parameters, 32
    /// bytes); refuses everything else, saying what it was.
    fn from_spki(spki: &SubjectPublicKeyInfo<'_>) -> Result<RequestedKey, PkiError> {
        let alg = &spki.algorithm.algorithm;
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        let key = spki.subject_public_key.data.to_vec();
        let found = if *alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
            match curve {
                Some(c) if c == OID_EC_P256 => {
                    if key.len() == 65 && key[0] == 0x04 {
                        return Ok(RequestedKey {
                            alg: &rcgen::PKCS_ECDSA_P256_SHA256,
                            key,
                        });
                    }
                    format!(
                        "a P-256 key of {} bytes (an uncompressed point has 65, starting 04)",
                        key.len()
                    )
                }
                Some(c) if c == OID_NIST_EC_P384 => "a P-384 key".to_owned(),
                Some(c) => format!("an EC key on curve {c}"),
                None => "an EC key without a named curve".to_owned(),
            }
        } else if *alg == OID_SIG_ED25519 {
            if spki.algorithm.parameters.is_none() && key.len() == 32 {
                return Ok(RequestedKey {
                    alg: &rcgen::PKCS_ED25519,
                    key,
                });
            }
            format!(
                "a malformed Ed25519 key ({} bytes{})",
                key.len(),
                if spki.algorithm.parameters.is_some() {
                    ", with parameters"
                } else {
                    ""
                }
            )
        } else if *alg == OID_PKCS1_RSAENCRYPTION || *alg == OID_PKCS1_RSASSAPSS {
            "an RSA key".to_owned()
        } else {
            format!("a key of algorithm {alg}")
        };
        Err(PkiError::Invalid(format!(
            "the certificate request holds {found}; grant certificates are issued for \
             {ACCEPTED_CSR_KEYS} only"
        )))
    }
}

impl rcgen::PublicKeyData for RequestedKey {
    fn der_bytes(&self) -> &[u8] {
        &self.key
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.alg
    }
}

/// File names inside a certificate directory.
pub fn client_file_stem(kind: PrincipalKind, name: &Name) -> String {
    format!("{}-{}", kind.as_str(), name)
}

/// The log signing key's file name in a certificate directory.
pub const LOG_KEY_FILE: &str = "log.key";
/// Its verifier key (public), in the note verifier-key format.
pub const LOG_PUB_FILE: &str = "log.pub";

/// The default name of a log (its checkpoint origin and key name).
pub fn default_log_origin(trust_domain: &str) -> String {
    format!("{trust_domain}/log")
}

/// Creates a log signing key in `dir`: `log.key` (mode 0600) and `log.pub`.
pub fn create_log_key(dir: &Path, origin: &str, force: bool) -> Result<Vec<PathBuf>, PkiError> {
    let key_path = dir.join(LOG_KEY_FILE);
    if key_path.exists() && !force {
        return Err(PkiError::Exists(key_path));
    }
    create_dir(dir)?;
    let key = LogKey::generate(origin).map_err(|e| PkiError::Invalid(e.to_string()))?;
    Ok(vec![
        write_secret(&key_path, &format!("{}\n", key.to_private()))?,
        write_public(&dir.join(LOG_PUB_FILE), &format!("{}\n", key.verifier()))?,
    ])
}

/// Reads a log signing key file.
pub fn load_log_key(path: &Path) -> Result<LogKey, PkiError> {
    let text = read(path)?;
    LogKey::parse(&text).map_err(|e| PkiError::Invalid(format!("{}: {e}", path.display())))
}

/// `daypass certs init`: a new CA, a server certificate and a log signing
/// key in `dir`.
pub fn init_dir(
    dir: &Path,
    hosts: &[String],
    origin: &str,
    force: bool,
) -> Result<Vec<PathBuf>, PkiError> {
    if hosts.is_empty() {
        return Err(PkiError::Invalid(
            "give at least one --host for the server certificate".into(),
        ));
    }
    let ca_key = dir.join("ca.key");
    if ca_key.exists() && !force {
        return Err(PkiError::Exists(ca_key));
    }
    create_dir(dir)?;
    let ca = CertificateAuthority::generate("daypass CA")?;
    let server = ca.issue(&CertSpec::server(hosts, 825))?;
    let mut written = vec![
        write_public(&dir.join("ca.pem"), ca.cert_pem())?,
        write_secret(&ca_key, ca.key_pem())?,
        write_public(&dir.join("server.pem"), &server.cert_pem)?,
        write_secret(&dir.join("server.key"), &server.key_pem)?,
    ];
    written.extend(create_log_key(dir, origin, force)?);
    written.extend(create_gate_keys(dir, force)?);
    Ok(written)
}

/// The token-signing key's file name in a certificate directory (PKCS#8
/// PEM, mode 0600).
pub const TOKEN_KEY_FILE: &str = "token.key";
/// Its public key: the raw 32 bytes, base64, one line.
pub const TOKEN_PUB_FILE: &str = "token.pub";
/// The grant CA's certificate and key.
pub const GRANT_CA_FILE: &str = "grant-ca.pem";
pub const GRANT_CA_KEY_FILE: &str = "grant-ca.key";

/// Creates the gate keys in `dir`: a token-signing key (`token.key`,
/// `token.pub`) and a grant CA (`grant-ca.pem`, `grant-ca.key`).
pub fn create_gate_keys(dir: &Path, force: bool) -> Result<Vec<PathBuf>, PkiError> {
    let key_path = dir.join(TOKEN_KEY_FILE);
    if !force {
        for file in [
            TOKEN_KEY_FILE,
            TOKEN_PUB_FILE,
            GRANT_CA_FILE,
            GRANT_CA_KEY_FILE,
        ] {
            let path = dir.join(file);
            if path.exists() {
                return Err(PkiError::Exists(path));
            }
        }
    }
    create_dir(dir)?;
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng)
        .map_err(|_| PkiError::Invalid("cannot generate an Ed25519 key".into()))?;
    let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .map_err(|_| PkiError::Invalid("cannot generate an Ed25519 key".into()))?;
    let pem = pem::encode("PRIVATE KEY", pkcs8.as_ref());
    let public = base64::engine::general_purpose::STANDARD
        .encode(ring::signature::KeyPair::public_key(&pair).as_ref());
    let ca = CertificateAuthority::generate("daypass grant CA")?;
    Ok(vec![
        write_secret(&key_path, &pem)?,
        write_public(&dir.join(TOKEN_PUB_FILE), &format!("{public}\n"))?,
        write_public(&dir.join(GRANT_CA_FILE), ca.cert_pem())?,
        write_secret(&dir.join(GRANT_CA_KEY_FILE), ca.key_pem())?,
    ])
}

/// Reads a token-signing key (`token.key`).
pub fn load_token_key(path: &Path) -> Result<ring::signature::Ed25519KeyPair, PkiError> {
    let text = read(path)?;
    let der = pem::decode(&text, "PRIVATE KEY")
        .ok_or_else(|| PkiError::Invalid(format!("{}: not a PEM PRIVATE KEY", path.display())))?;
    ring::signature::Ed25519KeyPair::from_pkcs8(&der).map_err(|_| {
        PkiError::Invalid(format!(
            "{}: not an Ed25519 PKCS#8 key (make one with `daypass certs gate-keys`)",
            path.display()
        ))
    })
}

/// Reads a token public key file (`token.pub`: base64 of 32 bytes).
pub fn load_token_public(path: &Path) -> Result<[u8; 32], PkiError> {
    let text = read(path)?;
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| {
            PkiError::Invalid(format!(
                "{}: not a token public key (base64 of 32 bytes)",
                path.display()
            ))
        })
}

/// Loads a CA (certificate and key PEM files), e.g. the grant CA.
pub fn load_ca_files(cert: &Path, key: &Path) -> Result<CertificateAuthority, PkiError> {
    CertificateAuthority::load(&read(cert)?, &read(key)?)
}

/// Reads a PEM certificate file and returns its DER.
pub fn load_cert_der(path: &Path) -> Result<Vec<u8>, PkiError> {
    let text = read(path)?;
    pem::decode(&text, "CERTIFICATE")
        .ok_or_else(|| PkiError::Invalid(format!("{}: not a PEM certificate", path.display())))
}

/// `daypass certs issue`: a client certificate signed by the CA in `dir`.
pub fn issue_to_dir(
    dir: &Path,
    kind: PrincipalKind,
    name: &Name,
    trust_domain: &str,
    days: i64,
    force: bool,
) -> Result<(PathBuf, PathBuf), PkiError> {
    let ca = load_ca(dir)?;
    let stem = client_file_stem(kind, name);
    let (cert_path, key_path) = (
        dir.join(format!("{stem}.pem")),
        dir.join(format!("{stem}.key")),
    );
    if key_path.exists() && !force {
        return Err(PkiError::Exists(key_path));
    }
    let issued = ca.issue_client(kind, name, trust_domain, days)?;
    Ok((
        write_public(&cert_path, &issued.cert_pem)?,
        write_secret(&key_path, &issued.key_pem)?,
    ))
}

pub fn load_ca(dir: &Path) -> Result<CertificateAuthority, PkiError> {
    let cert = read(&dir.join("ca.pem"))?;
    let key = read(&dir.join("ca.key"))?;
    CertificateAuthority::load(&cert, &key)
}

fn read(path: &Path) -> Result<String, PkiError> {
    fs::read_to_string(path).map_err(|source| PkiError::Io {
        path: path.to_owned(),
        source,
    })
}

pub fn create_dir(dir: &Path) -> Result<(), PkiError> {
    fs::create_dir_all(dir).map_err(|source| PkiError::Io {
        path: dir.to_owned(),
        source,
    })
}

pub fn write_public(path: &Path, pem: &str) -> Result<PathBuf, PkiError> {
    fs::write(path, pem).map_err(|source| PkiError::Io {
        path: path.to_owned(),
        source,
    })?;
    Ok(path.to_owned())
}

/// Writes a private key readable by its owner only (mode 0600 from the
/// moment the file exists).
pub fn write_secret(path: &Path, pem: &str) -> Result<PathBuf, PkiError> {
    let io = |source| PkiError::Io {
        path: path.to_owned(),
        source,
    };
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        opts.mode(0o600);
        let mut f = opts.open(path).map_err(io)?;
        // An existing file keeps its old mode on open; tighten it.
        f.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(io)?;
        f.write_all(pem.as_bytes()).map_err(io)?;
    }
    #[cfg(not(unix))]
    {
        let mut f = opts.open(path).map_err(io)?;
        f.write_all(pem.as_bytes()).map_err(io)?;
    }
    Ok(path.to_owned())
}

/// Now, for certificate validity: read through the clock module (the one
/// wall-clock read, clippy.toml), at second precision.
fn wall_now() -> OffsetDateTime {
    use crate::clock::{Clock, SystemClock};
    OffsetDateTime::from_unix_timestamp(SystemClock.now().millis().div_euclid(1000))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csr_der(key: &KeyPair) -> Vec<u8> {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, "csr-0");
        params
            .serialize_request(key)
            .expect("CSR")
            .der()
            .as_ref()
            .to_vec()
    }

    fn issue(ca: &CertificateAuthority, der: &[u8]) -> Result<(String, String), PkiError> {
        let now = wall_now();
        ca.issue_for_csr(
            &pem::encode("CERTIFICATE REQUEST", der),
            "holder",
            &["spiffe://test.daypass/staff/holder".into()],
            now,
            now + Duration::hours(1),
        )
    }

    #[test]
    fn a_csr_whose_signature_does_not_verify_is_refused() {
        let ca = CertificateAuthority::generate("grant CA").expect("CA");
        let key = KeyPair::generate().expect("key");
        let good = csr_der(&key);
        assert!(issue(&ca, &good).is_ok(), "control");
        // The same request with its subject changed after signing.
        let at = good
            .windows(5)
            .position(|w| w == b"csr-0")
            .expect("CN in the DER");
        let mut tampered = good.clone();
        tampered[at + 4] = b'1';
        match issue(&ca, &tampered) {
            Err(PkiError::Invalid(m)) => assert!(m.contains("signature"), "{m}"),
            other => panic!("tampered request: {other:?}"),
        }
    }
}
