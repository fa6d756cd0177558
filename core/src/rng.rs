//! Seeded randomness that does not depend on the order in which it is drawn.
//!
//! One `u64` seed drives every random choice of a run. Subsystems draw from streams
//! labelled by what they are for (`"faults"`, `"rollout"`, …), so drawing one more
//! number in one subsystem never shifts the numbers another sees. Where a decision must
//! not depend on arrival order at all (a fault's probability on a server that serves
//! concurrent requests), [`unit`] hashes the seed with the decision's identity instead
//! of drawing from a sequence.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// FNV-1a, 64 bit: a fixed, documented hash (the same on every platform and build),
/// used where a value must be a pure function of its inputs.
pub fn fnv1a64(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            // A separator keeps ("ab","c") and ("a","bc") apart.
            hash ^= 0xff;
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        for byte in *part {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// SplitMix64's finaliser: spreads FNV's weak low bits over the whole word.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A random stream for one subsystem, derived from the run's seed and a label.
pub fn stream(seed: u64, label: &str) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(mix(fnv1a64(&[&seed.to_le_bytes(), label.as_bytes()])))
}

/// A number in `[0, 1)` that is a pure function of the seed and the labels.
pub fn unit(seed: u64, labels: &[&str]) -> f64 {
    let mut parts: Vec<&[u8]> = Vec::with_capacity(labels.len() + 1);
    let seed_bytes = seed.to_le_bytes();
    parts.push(&seed_bytes);
    parts.extend(labels.iter().map(|l| l.as_bytes()));
    // 53 random bits make every representable value in [0, 1) equally likely.
    (mix(fnv1a64(&parts)) >> 11) as f64 / (1u64 << 53) as f64
}

/// A deterministic 128-bit identifier in UUID text form (version 4 layout), for
/// request ids that must be the same on every run of the same scenario.
pub fn uuid(seed: u64, labels: &[&str]) -> String {
    let a = mix(fnv1a64(&[
        &seed.to_le_bytes(),
        labels.join("\u{1f}").as_bytes(),
    ]));
    let b = mix(a ^ 0x9e37_79b9_7f4a_7c15);
    let (a, b) = ((a & !0xf000) | 0x4000, (b & !(0xc << 60)) | (0x8 << 60));
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn streams_are_independent_of_each_other_and_reproducible() {
        let a1: u64 = stream(7, "faults").random();
        let a2: u64 = stream(7, "faults").random();
        let b: u64 = stream(7, "rollout").random();
        assert_eq!(a1, a2);
        assert_ne!(a1, b);
    }

    #[test]
    fn unit_is_in_range_and_pure() {
        for i in 0..1000 {
            let label = i.to_string();
            let x = unit(1, &["p", &label]);
            assert!((0.0..1.0).contains(&x));
            assert_eq!(x, unit(1, &["p", &label]));
        }
        assert_ne!(unit(1, &["ab", "c"]), unit(1, &["a", "bc"]));
    }

    #[test]
    fn unit_is_roughly_uniform() {
        let below: usize = (0..10_000)
            .filter(|i| unit(3, &["u", &i.to_string()]) < 0.25)
            .count();
        // Binomial(10000, 0.25): sd ≈ 43; 5 sd either side.
        assert!((2285..=2715).contains(&below), "{below}");
    }

    #[test]
    fn uuid_has_the_v4_shape() {
        let id = uuid(9, &["req", "1"]);
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"));
        assert_eq!(id, uuid(9, &["req", "1"]));
        assert_ne!(id, uuid(9, &["req", "2"]));
    }
}
