//! `conversionStrategy`: every converted name is made of the characters a Secret key allows,
//! and converting a map either succeeds with one key per name or names a collision. The input
//! is one byte choosing the strategy (odd: Unicode), then names separated by NUL bytes.
#![no_main]

use std::collections::BTreeMap;

use kuvert_core::api::ConversionStrategy;
use kuvert_core::engine::keys;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&selector, rest)) = input.split_first() else {
        return;
    };
    let strategy = if selector % 2 == 1 {
        ConversionStrategy::Unicode
    } else {
        ConversionStrategy::Default
    };
    let text = String::from_utf8_lossy(rest);
    let names: Vec<&str> = text.split('\0').collect();
    for name in &names {
        let key = keys::convert(strategy, name);
        assert!(
            key.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')),
            "{key:?} has a character a Secret key does not allow"
        );
        if !key.is_empty() && key.len() <= 253 && key != "." && key != ".." {
            assert_eq!(keys::validate(&key), Ok(()), "{key:?}");
        }
    }
    let map: BTreeMap<String, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| ((*n).to_owned(), i))
        .collect();
    if let Ok(converted) = keys::convert_all(strategy, "spec.dataFrom[0]", map.clone()) {
        assert_eq!(converted.len(), map.len());
    }
});
