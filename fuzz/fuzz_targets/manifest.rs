//! The manifest reader of `kuvert render` and `kuvert dev`: any text is read or refused with
//! an error, never a panic, hang or unbounded allocation (YAML aliases, deep nesting).
#![no_main]

use kuvert_core::manifest::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let _ = Manifest::parse_all("fuzz.yaml", text);
});
