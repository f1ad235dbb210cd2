//! Server configuration files: parsing and checking never panic.
#![no_main]

use daypass::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = toml::from_str::<Config>(text) {
        let _ = c.check();
        let _ = c.log_key_path();
    }
});
