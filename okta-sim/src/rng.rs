//! Deterministic hashing: every "random" fact of the organisation is a pure function of the seed
//! and a few coordinates (slack-sim's splitmix64 helpers), so equal specs give equal orgs.

// The scheme is slack-sim's, so both simulators draw alike from the same seed.
pub(crate) use lastseen_slack_sim::rng::{below, mix, mix64, unit};

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `width` base-62 characters drawn from `h` (and its re-hashes when 64 bits run out).
pub(crate) fn base62(mut h: u64, width: usize) -> String {
    let mut out = String::with_capacity(width);
    for i in 0..width {
        if i > 0 && i % 10 == 0 {
            h = mix64(h);
        }
        out.push(char::from(BASE62[(h % 62) as usize]));
        h /= 62;
    }
    out
}

/// An RFC 4122-shaped identifier (version 4 nibble set) from two hashes: what LogEvent `uuid`
/// values look like (`dc9fd3c0-598c-11ef-8478-2b7584bf8d5a` in the spec's ListLogs example).
pub(crate) fn uuid_like(a: u64, b: u64) -> String {
    let b = (b & 0x0FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
    let a = (a & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xFFFF,
        a & 0xFFFF,
        b >> 48,
        b & 0xFFFF_FFFF_FFFF
    )
}
