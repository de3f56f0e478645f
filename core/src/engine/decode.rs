//! `decodingStrategy`: how a remote value is decoded before it is written.
//!
//! Decoding is strict: invalid base64 is an error, never silently garbled output. As Go's
//! decoder (and so ESO) does, line breaks (`\r`, `\n`) inside the encoded text are ignored, so
//! wrapped base64 decodes. Both alphabets need their `=` padding, as Go's `base64.StdEncoding`
//! and `base64.URLEncoding` (ESO's decoders) do. `Auto` tries standard, then URL-safe, then
//! passes the value through unchanged: a value that is not valid *padded* base64 is kept, so a
//! plain word such as `example` (which unpadded decoding would turn into garbage) survives.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig, general_purpose};

use crate::api::DecodingStrategy;

const URL_SAFE: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// The strategy's name as written in YAML.
pub fn name(strategy: DecodingStrategy) -> &'static str {
    match strategy {
        DecodingStrategy::None => "None",
        DecodingStrategy::Base64 => "Base64",
        DecodingStrategy::Base64Url => "Base64URL",
        DecodingStrategy::Auto => "Auto",
    }
}

/// Decodes `value`; `Err(())` when it is not valid for the strategy (the caller names the key).
#[allow(clippy::result_unit_err)]
pub fn decode(strategy: DecodingStrategy, value: &[u8]) -> Result<Vec<u8>, ()> {
    match strategy {
        DecodingStrategy::None => Ok(value.to_vec()),
        DecodingStrategy::Base64 => general_purpose::STANDARD
            .decode(unwrapped(value))
            .map_err(drop),
        DecodingStrategy::Base64Url => URL_SAFE.decode(unwrapped(value)).map_err(drop),
        DecodingStrategy::Auto => {
            let text = unwrapped(value);
            Ok(general_purpose::STANDARD
                .decode(&text)
                .or_else(|_| URL_SAFE.decode(&text))
                .unwrap_or_else(|_| value.to_vec()))
        }
    }
}

/// The value without line breaks.
fn unwrapped(value: &[u8]) -> Vec<u8> {
    value
        .iter()
        .copied()
        .filter(|b| *b != b'\n' && *b != b'\r')
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use DecodingStrategy::*;

    #[test]
    fn none_passes_the_value_through() {
        assert_eq!(decode(None, b"aGk=").unwrap(), b"aGk=");
    }

    #[test]
    fn base64_is_strict() {
        assert_eq!(decode(Base64, b"aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode(Base64, b"aGVs\nbG8=\n").unwrap(), b"hello");
        assert!(decode(Base64, b"aGVsbG8").is_err(), "padding is required");
        assert!(decode(Base64, b"not base64!").is_err());
        assert!(
            decode(Base64, b"-_8=").is_err(),
            "URL-safe alphabet is not standard"
        );
    }

    #[test]
    fn base64url_takes_the_url_alphabet_with_padding_as_eso() {
        assert_eq!(decode(Base64Url, b"-_8=").unwrap(), [0xfb, 0xff]);
        assert!(decode(Base64Url, b"-_8").is_err(), "padding is required");
        assert!(decode(Base64Url, b"+/8=").is_err());
    }

    #[test]
    fn auto_tries_standard_then_url_safe_then_passes_through() {
        assert_eq!(decode(Auto, b"aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode(Auto, b"-_8=").unwrap(), [0xfb, 0xff]);
        assert_eq!(decode(Auto, b"plain text!").unwrap(), b"plain text!");
        // Seven letters are valid *unpadded* base64; ESO keeps them, and so does kuvert.
        assert_eq!(decode(Auto, b"example").unwrap(), b"example");
        assert_eq!(decode(Auto, b"-_8").unwrap(), b"-_8");
    }

    proptest::proptest! {
        #[test]
        fn decoding_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            for s in [None, Base64, Base64Url, Auto] {
                let _ = decode(s, &bytes);
            }
        }

        #[test]
        fn base64_round_trips(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let encoded = general_purpose::STANDARD.encode(&bytes);
            proptest::prop_assert_eq!(decode(Base64, encoded.as_bytes()).unwrap(), bytes.clone());
            proptest::prop_assert_eq!(decode(Auto, encoded.as_bytes()).unwrap(), bytes);
        }
    }
}
