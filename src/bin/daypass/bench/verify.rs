//! `daypass bench verify`: how fast a tenant decides offline. A grant token
//! checked by the tenant library's `Verifier` (footer, key lookup, PASETO
//! v4.public signature, claims, tenant, time, revocation list) against the
//! raw Ed25519 verification of the same signed bytes, interleaved in
//! rounds so machine noise hits both alike; and a grant certificate
//! (X.509 parse, ECDSA P-256 signature by the grant CA, SANs).

use std::{
    fmt::Write as _,
    sync::Arc,
    time::{Duration, Instant},
};

use daypass_tenant::{
    KeySet, Verifier,
    claims::{GrantClaims, RevocationClaims, Revoked, key_id, reason_sha256},
    keys::{GrantCa, TokenKey},
    paseto,
};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

use super::tree::{err, header};
use daypass::{
    clock::{Clock, SystemClock, Timestamp},
    pki::CertificateAuthority,
};

#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Measured seconds per workload (split into rounds).
    pub seconds: f64,
    /// Grants on the tenant's revocation list.
    pub revoked: usize,
}

/// Runs the benchmark and returns its report (Markdown).
pub async fn verify(opts: &VerifyOptions) -> Result<String, String> {
    let opts = opts.clone();
    tokio::task::spawn_blocking(move || run(&opts))
        .await
        .map_err(err)?
}

fn run(opts: &VerifyOptions) -> Result<String, String> {
    let clock = Arc::new(SystemClock);
    let now = clock.now();
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(err)?;
    let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(err)?;
    let public = key.public_key().as_ref().to_vec();
    let ca = CertificateAuthority::generate("bench grant CA").map_err(err)?;
    let ca_der = daypass_tenant::pem::decode(ca.cert_pem(), "CERTIFICATE").ok_or("CA PEM")?;
    let keys = KeySet {
        trust_domain: "bench.daypass".into(),
        token_keys: vec![TokenKey::new(&key_id(&public), &public, None, None).map_err(err)?],
        grant_cas: vec![GrantCa::new(&key_id(&ca_der), ca_der, None, None).map_err(err)?],
    };
    let verifier = Verifier::new("acme", keys, clock.clone());
    let revoked = (0..opts.revoked)
        .map(|i| Revoked {
            jti: format!("g-{i:024x}"),
            exp: now.plus_secs(3600),
        })
        .collect();
    let list = RevocationClaims {
        iss: "spiffe://bench.daypass".into(),
        aud: "acme".into(),
        seq: 1,
        epoch: 0,
        iat: now,
        revoked,
    };
    // The list stays fresh for the whole run.
    let verifier = verifier.with_max_staleness(Duration::from_secs(3600));
    verifier.apply_revocations(&list.sign(&key)).map_err(err)?;

    let claims = GrantClaims {
        iss: "spiffe://bench.daypass".into(),
        sub: "spiffe://bench.daypass/staff/alice".into(),
        aud: "acme".into(),
        jti: "g-0123456789abcdef01234567".into(),
        iat: now,
        nbf: now,
        exp: now.plus_secs(3600),
        reason_sha256: reason_sha256("INC-42 replication lag"),
        country: None,
        organisation: None,
        scopes: None,
    };
    let token = claims.sign(&key);
    verifier.verify_token(&token).map_err(err)?;

    // The exact bytes the token's signature covers, for the raw baseline.
    let (signed, sig) = signed_bytes(&token)?;
    let raw = UnparsedPublicKey::new(&ED25519, public.clone());
    raw.verify(&signed, &sig).map_err(|_| "raw verify failed")?;

    // A grant certificate for the same grant.
    let holder_key = rcgen::KeyPair::generate().map_err(err)?;
    let csr = rcgen::CertificateParams::new(Vec::<String>::new())
        .and_then(|p| p.serialize_request(&holder_key))
        .and_then(|r| r.pem())
        .map_err(err)?;
    let to_time =
        |t: Timestamp| time::OffsetDateTime::from_unix_timestamp(t.millis() / 1000).map_err(err);
    let (cert_pem, _) = ca
        .issue_for_csr(
            &csr,
            "alice grant",
            &[
                "spiffe://bench.daypass/grant/acme/g-0123456789abcdef01234567".into(),
                "spiffe://bench.daypass/staff/alice".into(),
            ],
            to_time(now)?,
            to_time(now.plus_secs(3600))?,
        )
        .map_err(err)?;
    let cert_der = daypass_tenant::pem::decode(&cert_pem, "CERTIFICATE").ok_or("cert PEM")?;
    verifier.verify_certificate(&cert_der).map_err(err)?;

    // Interleaved rounds: raw, token, raw, token, ...
    let rounds = 10u32;
    let slice = Duration::from_secs_f64((opts.seconds / f64::from(rounds)).max(0.01));
    let (mut raw_n, mut raw_t, mut tok_n, mut tok_t) = (0u64, 0f64, 0u64, 0f64);
    for _ in 0..rounds {
        let (n, t) = timed(slice, || raw.verify(&signed, &sig).is_ok());
        raw_n += n;
        raw_t += t;
        let (n, t) = timed(slice, || verifier.verify_token(&token).is_ok());
        tok_n += n;
        tok_t += t;
    }
    let raw_rate = raw_n as f64 / raw_t;
    let tok_rate = tok_n as f64 / tok_t;
    let (cert_n, cert_t) = timed(
        Duration::from_secs_f64(opts.seconds.max(0.01) / 2.0),
        || verifier.verify_certificate(&cert_der).is_ok(),
    );
    let cert_rate = cert_n as f64 / cert_t;
    // Both cores on tokens, one Verifier shared (the lock is read-only).
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let par = Duration::from_secs_f64(opts.seconds.max(0.01) / 2.0);
    let started = Instant::now();
    let counts: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| s.spawn(|| timed(par, || verifier.verify_token(&token).is_ok()).0))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).collect()
    });
    let par_rate = counts.iter().sum::<u64>() as f64 / started.elapsed().as_secs_f64();

    let mut out = header(
        "Offline verification (tenant library)",
        format!(
            "daypass bench verify --seconds {} --revoked {}",
            opts.seconds, opts.revoked
        ),
        None,
    );
    let _ = writeln!(
        out,
        "Token: {} bytes; revocation list: {} grants; one thread unless noted.\n",
        token.len(),
        opts.revoked
    );
    let _ = writeln!(out, "| what | per second | µs each | vs raw Ed25519 |");
    let _ = writeln!(out, "|---|---:|---:|---:|");
    let row = |out: &mut String, what: &str, rate: f64| {
        let _ = writeln!(
            out,
            "| {what} | {rate:.0} | {:.1} | {:.0} % |",
            1e6 / rate,
            100.0 * rate / raw_rate
        );
    };
    row(
        &mut out,
        "raw Ed25519 verify (ring), same signed bytes",
        raw_rate,
    );
    row(&mut out, "`Verifier::verify_token`", tok_rate);
    row(
        &mut out,
        &format!("`Verifier::verify_token`, {threads} threads, one verifier"),
        par_rate,
    );
    row(
        &mut out,
        "`Verifier::verify_certificate` (ECDSA P-256)",
        cert_rate,
    );
    let _ = writeln!(
        out,
        "\nToken verification runs at {:.0} % of raw Ed25519 verification (target: at least 80 %).",
        100.0 * tok_rate / raw_rate
    );
    Ok(out)
}

/// Calls `f` for `slice`; returns (calls, seconds). Panics never: a failed
/// call is counted as done but `f` returns false, which the setup rules out.
fn timed(slice: Duration, mut f: impl FnMut() -> bool) -> (u64, f64) {
    let t = Instant::now();
    let mut n = 0u64;
    let mut ok = 0u64;
    while n % 64 != 0 || t.elapsed() < slice {
        ok += u64::from(std::hint::black_box(f()));
        n += 1;
    }
    std::hint::black_box(ok);
    (n, t.elapsed().as_secs_f64())
}

/// PAE(header, message, footer, implicit) and the signature of a grant
/// token: what Ed25519 verifies inside it.
fn signed_bytes(token: &str) -> Result<(Vec<u8>, Vec<u8>), String> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let rest = token.strip_prefix("v4.public.").ok_or("not a token")?;
    let (body, footer) = rest.split_once('.').unwrap_or((rest, ""));
    let body = b64.decode(body).map_err(err)?;
    let footer = b64.decode(footer).map_err(err)?;
    let (m, sig) = body.split_at(body.len().checked_sub(64).ok_or("short")?);
    let signed = paseto::pae(&[
        b"v4.public.",
        m,
        &footer,
        daypass_tenant::claims::GRANT_ASSERTION,
    ]);
    Ok((signed, sig.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Smoke mode: the benchmark runs and reports every row.
    #[tokio::test]
    async fn the_verify_bench_runs() {
        let report = verify(&VerifyOptions {
            seconds: 0.05,
            revoked: 10,
        })
        .await
        .expect("bench");
        assert!(report.contains("`Verifier::verify_token`"), "{report}");
        assert!(report.contains("verify_certificate"), "{report}");
        assert!(report.contains("% of raw Ed25519"), "{report}");
    }
}
