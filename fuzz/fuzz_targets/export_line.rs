//! One line of a JSON Lines export (`daypass audit verify` reads files
//! anyone can hand it): parsing never panics; a parsed entry written back
//! parses to the same entry.
#![no_main]

use daypass::audit::export;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok((entry, _proof)) = export::parse_proven_line(line) {
        let mut out = Vec::new();
        export::write_line(&mut out, &entry).expect("write to a Vec");
        let again = export::parse_line(std::str::from_utf8(&out).expect("UTF-8").trim_end())
            .expect("our own line parses");
        assert_eq!(again.entry, entry.entry);
    }
    // The streaming verifier over the same bytes never panics either.
    let _ = export::verify(data);
});
