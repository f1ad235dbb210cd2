//! Principals from certificates: the URI SAN parser and the whole DER
//! certificate path never panic, and an accepted URI prints back to itself.
#![no_main]

use daypass::identity::Principal;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(uri) = std::str::from_utf8(data) {
        if let Ok(p) = Principal::parse_uri(uri, "daypass.local") {
            assert_eq!(p.uri("daypass.local"), uri);
        }
    }
    let _ = Principal::from_certificate(data, "daypass.local");
});
