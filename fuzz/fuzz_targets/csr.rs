//! Certificate signing requests sent to IssueGrantCertificate: any input is
//! refused or signed, never a panic.
#![no_main]

use std::sync::LazyLock;

use daypass::pki::CertificateAuthority;
use libfuzzer_sys::fuzz_target;

static CA: LazyLock<CertificateAuthority> =
    LazyLock::new(|| CertificateAuthority::generate("fuzz grant CA").expect("CA"));

fuzz_target!(|data: &[u8]| {
    let Ok(pem) = std::str::from_utf8(data) else {
        return;
    };
    let now = time::OffsetDateTime::from_unix_timestamp(1_795_000_000).expect("time");
    let _ = CA.issue_for_csr(
        pem,
        "alice grant g-0",
        &["spiffe://fuzz.daypass/grant/acme/g-0".into()],
        now,
        now + time::Duration::hours(1),
    );
});
