//! `remoteRef.property` paths: parsing and selecting over arbitrary JSON (including JSON inside
//! strings, which a path continues into). The input is the path, a NUL byte, then the JSON
//! document (seeds are readable, and mutations reach both parts).
#![no_main]

use kuvert_core::engine::property;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let (path, json) = match input.iter().position(|&b| b == 0) {
        Some(nul) => (&input[..nul], &input[nul + 1..]),
        None => (input, &b"{}"[..]),
    };
    let path = String::from_utf8_lossy(path);
    let parsed = property::parse(&path);
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(json) else {
        return;
    };
    match property::select(&value, &path) {
        Ok(Some(selected)) => {
            let _ = property::leaf_bytes(&selected);
        }
        Ok(None) => {}
        Err(_) => assert!(parsed.is_err(), "select failed on a path that parses"),
    }
});
