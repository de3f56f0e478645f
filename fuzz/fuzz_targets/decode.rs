//! `decodingStrategy`: None passes through, Auto never fails, and what Base64 or Base64URL
//! decode round-trips back to the (unwrapped) input.
#![no_main]

use kuvert_core::api::DecodingStrategy;
use kuvert_core::engine::decode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    assert_eq!(
        decode::decode(DecodingStrategy::None, input).unwrap(),
        input
    );
    let auto = decode::decode(DecodingStrategy::Auto, input).expect("Auto never fails");
    let standard = decode::decode(DecodingStrategy::Base64, input);
    let url = decode::decode(DecodingStrategy::Base64Url, input);
    match (&standard, &url) {
        (Ok(bytes), _) | (Err(()), Ok(bytes)) => assert_eq!(&auto, bytes),
        (Err(()), Err(())) => assert_eq!(auto, input),
    }
    if let Ok(bytes) = standard {
        assert!(bytes.len() <= input.len());
    }
});
