//! `--shard K/N` (§13): which bots one of N agents owns, by Lamping–Veach jump
//! consistent hashing of the slug, so N agents with the same registry cover every
//! bot exactly once without talking to each other. Pure.

use sha2::{Digest, Sha256};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// 1-based.
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// The whole fleet.
    pub const ALL: Shard = Shard { index: 1, count: 1 };

    /// Parses `K/N` with 1 ≤ K ≤ N.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let bad = || format!("--shard `{text}` is not K/N with 1 ≤ K ≤ N (e.g. 2/3)");
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let index: u32 = k.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if index == 0 || count == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// Whether this shard owns `slug`.
    pub fn owns(&self, slug: &str) -> bool {
        shard_of(slug, self.count) == self.index
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The 1-based shard of `slug` among `count`: `jump(u64 BE of SHA-256(slug)[..8], count) + 1`.
pub fn shard_of(slug: &str, count: u32) -> u32 {
    let digest = Sha256::digest(slug.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    jump_consistent_hash(u64::from_be_bytes(first), count) + 1
}

/// Lamping & Veach, "A Fast, Minimal Memory, Consistent Hash Algorithm" (2014).
pub fn jump_consistent_hash(mut key: u64, buckets: u32) -> u32 {
    let buckets = i64::from(buckets.max(1));
    let mut b: i64 = -1;
    let mut j: i64 = 0;
    while j < buckets {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    b as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jump_hash_matches_the_papers_reference_values() {
        // Values from the reference implementation (Guava's consistentHash agrees).
        assert_eq!(jump_consistent_hash(0, 1), 0);
        assert_eq!(jump_consistent_hash(1, 1), 0);
        assert_eq!(jump_consistent_hash(0, 100), 0);
        let mut seen = [0u32; 10];
        for k in 0..10_000u64 {
            seen[jump_consistent_hash(k.wrapping_mul(0x9E37_79B9_7F4A_7C15), 10) as usize] += 1;
        }
        assert!(seen.iter().all(|&c| (800..1200).contains(&c)), "{seen:?}");
    }

    #[test]
    fn slugs_land_on_the_contracts_shards() {
        // §13's function exactly, pinned to values computed outside this code
        // (Python: hashlib.sha256, the paper's jump hash in 64-bit arithmetic),
        // so a change to the hash, the byte order or the +1 fails here.
        assert_eq!(jump_consistent_hash(1, 10), 6);
        assert_eq!(jump_consistent_hash(42, 100), 43);
        assert_eq!(jump_consistent_hash(0xdead_beef, 1000), 285);
        assert_eq!(jump_consistent_hash(u64::MAX, 7), 2);
        for (slug, expected) in [
            ("risk.killswitch", [1, 3, 5, 7]),
            ("mm.eu", [2, 2, 2, 2]),
            ("arb.us", [1, 1, 4, 8]),
            ("alpha", [1, 3, 3, 3]),
            ("beta", [1, 1, 4, 4]),
        ] {
            let got = [2, 3, 5, 16].map(|n| shard_of(slug, n));
            assert_eq!(got, expected, "{slug} among 2, 3, 5 and 16 shards");
        }
    }

    #[test]
    fn shards_cover_every_bot_exactly_once() {
        for n in 1..=7 {
            for i in 0..500 {
                let slug = format!("bot-{i}");
                let owners = (1..=n)
                    .filter(|&k| Shard { index: k, count: n }.owns(&slug))
                    .count();
                assert_eq!(owners, 1, "{slug} with {n} shards");
            }
        }
    }

    #[test]
    fn growing_the_shard_count_moves_few_bots() {
        let moved = (0..1000)
            .filter(|i| {
                shard_of(&format!("b{i}"), 4) != shard_of(&format!("b{i}"), 5)
                    && shard_of(&format!("b{i}"), 5) != 5
            })
            .count();
        assert_eq!(moved, 0, "jump hashing only moves bots to the new shard");
    }

    #[test]
    fn parse_refuses_bad_shards() {
        assert_eq!(Shard::parse("2/3").unwrap(), Shard { index: 2, count: 3 });
        for bad in ["0/3", "4/3", "1", "a/b", "1/0", ""] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
    }
}
