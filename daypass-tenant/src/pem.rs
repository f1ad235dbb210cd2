//! PEM, the little of it daypass needs: one labelled block of DER, written
//! with 64-character lines and read back. Shared by the broker (keys and
//! certificates on disk, published grant CAs) and tenants.

use base64::Engine as _;

/// `der` as a PEM block labelled `label` (e.g. `CERTIFICATE`).
pub fn encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The DER inside the first PEM block labelled `label` in `text`, if there
/// is one and its base64 is valid.
pub fn decode(text: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    let b64: String = text[start..stop].split_whitespace().collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_round_trip_and_parse_as_pem() {
        let der: Vec<u8> = (0..=255u8).collect();
        let pem = encode("CERTIFICATE", &der);
        assert!(pem.lines().all(|l| l.len() <= 64));
        assert_eq!(decode(&pem, "CERTIFICATE"), Some(der.clone()));
        assert_eq!(decode(&pem, "PRIVATE KEY"), None);
        let (_, parsed) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("pem");
        assert_eq!(parsed.label, "CERTIFICATE");
        assert_eq!(parsed.contents, der);
    }

    #[test]
    fn broken_blocks_are_none() {
        assert_eq!(
            decode("-----BEGIN X-----\n!!!\n-----END X-----\n", "X"),
            None
        );
        assert_eq!(decode("-----BEGIN X-----\nAAAA\n", "X"), None);
        assert_eq!(decode("", "X"), None);
    }
}
