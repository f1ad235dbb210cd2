//! Log entry bytes (from sled files or anyone's export): decoding never
//! panics, and whatever decodes re-encodes to exactly the same bytes (one
//! encoding per entry).
#![no_main]

use daypass::audit::Entry;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = Entry::decode(data) {
        assert_eq!(e.encode(), data);
    }
});
