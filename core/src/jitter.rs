//! Deterministic spread: factors derived from an identity instead of a random source, so many
//! objects still land apart and a test can predict where each one lands.

use std::hash::{DefaultHasher, Hash, Hasher};

/// A factor in `[low, high)` derived from `key` and `salt`, evenly spread over keys.
pub fn jitter(key: &str, salt: u64, low: f64, high: f64) -> f64 {
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    salt.hash(&mut hasher);
    let unit = (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64;
    low + (high - low) * unit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_spreads_objects_apart() {
        let factors: Vec<f64> = (0..1000)
            .map(|i| jitter(&format!("ns/es-{i}"), 0, 0.0, 1.0))
            .collect();
        assert!(factors.iter().all(|f| (0.0..1.0).contains(f)));
        let low_half = factors.iter().filter(|f| **f < 0.5).count();
        assert!(
            (400..600).contains(&low_half),
            "{low_half} of 1000 in the low half"
        );
    }
}
