//! The streaming decision: who streams.
//!
//! As written, `shouldUseStreaming()` draws `Math.random() * 100 < percentage` for every
//! message, so one session flips between modes (§B.6 #11). Corrected (§B.7), the session
//! is bucketed once: `bucket = FNV-1a-64(tenant ":" session) mod 10_000`, and it streams
//! iff `bucket < round(p × 100)` with p clamped to [0, 100] and NaN as 0. Raising p never
//! moves a session off streaming (monotone), and p = 0 / 100 mean none / all.

use picasso_core::rng::fnv1a64;
use picasso_core::wire::TenantConfig;

/// Buckets per 100 %: a resolution of 0.01 %.
pub const BUCKETS: u64 = 10_000;

/// The session's sticky bucket in `0..BUCKETS`.
pub fn bucket(tenant: &str, session_id: &str) -> u64 {
    let key = format!("{tenant}:{session_id}");
    fnv1a64(&[key.as_bytes()]) % BUCKETS
}

/// The number of buckets admitted by a percentage (clamped, NaN as 0).
pub fn admitted(percentage: f64) -> u64 {
    if percentage.is_nan() {
        return 0;
    }
    (percentage.clamp(0.0, 100.0) * 100.0).round() as u64
}

/// Whether the config allows streaming at all for this browser (before the rollout):
/// `streaming_enabled`, an `endpoints.streaming` URL, and `EventSource`.
pub fn eligible(config: &TenantConfig, event_source: bool) -> Option<String> {
    let url = config.endpoints.streaming.as_ref()?;
    (config.features.streaming_enabled && event_source && !url.trim().is_empty())
        .then(|| url.clone())
}

/// The corrected, sticky decision.
pub fn sticky(tenant: &str, session_id: &str, percentage: f64) -> bool {
    bucket(tenant, session_id) < admitted(percentage)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn extremes() {
        assert_eq!(admitted(0.0), 0);
        assert_eq!(admitted(100.0), BUCKETS);
        assert_eq!(admitted(150.0), BUCKETS);
        assert_eq!(admitted(-3.0), 0);
        assert_eq!(admitted(f64::NAN), 0);
        assert!(sticky("t", "s", 100.0));
        assert!(!sticky("t", "s", 0.0));
    }

    proptest! {
        // Cases: proptest's usual 256 (cheap), or PICASSO_PROPTEST_CASES.
        #![proptest_config(ProptestConfig::with_cases(picasso_core::testing::proptest_cases(256)))]

        /// §B.7 invariant 8: raising the percentage never moves a session off streaming.
        #[test]
        fn monotone(t in "[a-z0-9]{1,8}", s in "[a-z0-9-]{1,12}", p in 0.0f64..100.0, q in 0.0f64..100.0) {
            let (lo, hi) = if p <= q { (p, q) } else { (q, p) };
            prop_assert!(!sticky(&t, &s, lo) || sticky(&t, &s, hi));
        }
    }

    /// §B.7 invariant 9: the streaming share is within ±4σ of p.
    #[test]
    fn rollout_fraction() {
        let n = 20_000u32;
        for p in [1.0, 10.0, 50.0, 99.0] {
            let hits = (0..n)
                .filter(|i| sticky("fo85e6a06dcdf4", &format!("s{i}"), p))
                .count() as f64;
            let mean = f64::from(n) * p / 100.0;
            let sd = (mean * (1.0 - p / 100.0)).sqrt();
            assert!(
                (hits - mean).abs() <= 4.0 * sd,
                "p={p}: {hits} vs {mean}±{sd}"
            );
        }
    }
}
