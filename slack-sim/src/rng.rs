//! Deterministic hashing and identifier encoding: every "random" fact in the simulator is a pure
//! function of the seed and a few coordinates, so it can be recomputed instead of stored.

/// splitmix64's finaliser: a cheap bijective scrambler with good avalanche.
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A hash of (seed, a, b); chaining it gives more coordinates.
pub fn mix(seed: u64, a: u64, b: u64) -> u64 {
    mix64(mix64(mix64(seed) ^ a).wrapping_add(b))
}

/// A hash of (seed, a, b, c).
pub(crate) fn mix4(seed: u64, a: u64, b: u64, c: u64) -> u64 {
    mix(mix(seed, a, b), c, 0x5EED)
}

/// A hash of an account's own key, a day and a small tag (< 2^16): one scramble per decision,
/// which matters because activity is re-derived for every account-day on each clock change.
pub(crate) fn day_hash(key: u64, day: i32, tag: u64) -> u64 {
    mix64(key ^ (u64::from(day as u32) << 16) ^ tag)
}

/// Uniform in [0, 1).
pub fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Uniform in [0, n); n must be positive. The modulo bias is irrelevant at these sizes.
pub fn below(h: u64, n: u64) -> u64 {
    h % n
}

const ALNUM: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// Fixed-width uppercase base-36, most significant digit first.
pub(crate) fn base36(mut v: u64, width: usize) -> String {
    let mut out = vec![b'0'; width];
    for slot in out.iter_mut().rev() {
        *slot = ALNUM[(v % 36) as usize];
        v /= 36;
    }
    String::from_utf8(out).unwrap_or_default()
}

pub(crate) fn parse_base36(s: &str) -> Option<u64> {
    let mut v: u64 = 0;
    for c in s.bytes() {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'A'..=b'Z' => c - b'A' + 10,
            _ => return None,
        };
        v = v.checked_mul(36)?.checked_add(u64::from(d))?;
    }
    Some(v)
}

/// 36^10 > 2^51, so a permutation of 51-bit values renders as 10 base-36 digits.
const BITS: u32 = 51;
const MASK: u64 = (1 << BITS) - 1;
const C1: u64 = 0x5DEE_CE66_D1CE_4E5B | 1;
const C2: u64 = 0x2545_F491_4F6C_DD1D | 1;
const S1: u32 = 23;
const S2: u32 = 29;

/// A keyed bijection on 51-bit integers. Identifiers are built from it so that they look random
/// yet are unique by construction and can be mapped back to a generation index (cursors use that).
pub(crate) fn permute(key: u64, x: u64) -> u64 {
    let mut x = (x ^ key) & MASK;
    x = x.wrapping_mul(C1) & MASK;
    x ^= x >> S1;
    x = x.wrapping_mul(C2) & MASK;
    x ^= x >> S2;
    x
}

pub(crate) fn unpermute(key: u64, y: u64) -> u64 {
    let mut x = unshift(y & MASK, S2);
    x = x.wrapping_mul(inverse(C2)) & MASK;
    x = unshift(x, S1);
    x = x.wrapping_mul(inverse(C1)) & MASK;
    (x ^ key) & MASK
}

fn unshift(y: u64, s: u32) -> u64 {
    let mut x = y;
    let mut k = s;
    while k < BITS {
        x = y ^ (x >> s);
        k += s;
    }
    x & MASK
}

/// Multiplicative inverse modulo 2^64 (Newton's iteration), hence also modulo 2^51.
fn inverse(c: u64) -> u64 {
    let mut inv = c;
    for _ in 0..6 {
        inv = inv.wrapping_mul(2u64.wrapping_sub(c.wrapping_mul(inv)));
    }
    inv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutation_round_trips() {
        for key in [0u64, 1, 0xDEAD_BEEF, MASK] {
            for x in (0..5000u64).chain([MASK - 1, MASK, 1 << 40]) {
                let y = permute(key, x);
                assert!(y <= MASK);
                assert_eq!(unpermute(key, y), x, "key {key} x {x}");
            }
        }
    }

    #[test]
    fn base36_round_trips() {
        for v in [0u64, 35, 36, 123_456_789, MASK] {
            let s = base36(v, 10);
            assert_eq!(s.len(), 10);
            assert_eq!(parse_base36(&s), Some(v));
        }
        assert_eq!(parse_base36("ab"), None);
    }

    #[test]
    fn unit_is_in_range() {
        for i in 0..1000 {
            let u = unit(mix(7, i, 3));
            assert!((0.0..1.0).contains(&u));
        }
    }
}
