//! `UUID`: a random (version 4) UUID, RFC 9562 section 5.4.

use kuvert_core::generator::RandomSource;

/// A version 4 UUID in its canonical lower-case form (`xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx`).
pub fn v4(random: &dyn RandomSource) -> String {
    let mut bytes = [0u8; 16];
    random.fill(&mut bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // variant 10xx (RFC 9562)
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}
