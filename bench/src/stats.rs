//! Percentiles of latency samples.

use std::time::Duration;

/// The `p`-th percentile (0–100) by the nearest-rank method; `None` without samples.
pub fn percentile(samples: &[Duration], p: f64) -> Option<Duration> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    // Nearest rank: the smallest sample with at least p% of the samples at or below it.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Milliseconds with a fraction, as reported.
pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms_list(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|v| Duration::from_millis(*v)).collect()
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let samples = ms_list(&(1..=100).rev().collect::<Vec<_>>());
        assert_eq!(percentile(&samples, 50.0), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&samples, 99.0), Some(Duration::from_millis(99)));
        assert_eq!(
            percentile(&samples, 100.0),
            Some(Duration::from_millis(100))
        );
        assert_eq!(
            percentile(&ms_list(&[7]), 99.0),
            Some(Duration::from_millis(7))
        );
    }

    #[test]
    fn no_samples_have_no_percentile() {
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn milliseconds_keep_one_decimal() {
        assert_eq!(ms(Duration::from_micros(12_345)), 12.3);
    }
}
