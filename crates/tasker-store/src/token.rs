//! Event ids. A claim is named by a UUID (version 8, RFC 9562 variant) that carries the claimed step's id and
//! the claim's 62-bit random token: a completion finds its step by primary key and proves it still holds the
//! claim by the token, so no index on tokens exists. Layout of the 128 bits, most significant first:
//! step id (48) | version `8` (4) | zero (12) | variant `10` (2) | token (62).

use uuid::Uuid;

/// The bits of a token (what the database stores in `claim_token`).
pub(crate) const TOKEN_BITS: i64 = (1 << 62) - 1;
/// Largest step id an event id can carry.
pub(crate) const MAX_STEP_ID: i64 = (1 << 48) - 1;

/// The event id of the claim `token` on step `step_id` (`0 <= step_id <= MAX_STEP_ID`).
pub(crate) fn event_id(step_id: i64, token: i64) -> Uuid {
    debug_assert!((0..=MAX_STEP_ID).contains(&step_id));
    let high = ((step_id as u128 & MAX_STEP_ID as u128) << 80) | (0x8u128 << 76);
    let low = (1u128 << 63) | (token & TOKEN_BITS) as u128;
    Uuid::from_u128(high | low)
}

/// A fresh claim token: SplitMix64 over a per-thread state seeded from std's random hasher keys, masked to
/// 62 bits. Tokens only have to differ between successive claims of one step (a stale completion must not
/// match), which 62 bits of a well-mixed sequence give; no syscall per claim.
pub(crate) fn fresh() -> i64 {
    use std::cell::Cell;
    use std::hash::{BuildHasher, Hasher};
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
            h.finish()
        });
    }
    STATE.with(|state| {
        let next = state.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        state.set(next);
        let mut z = next;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) as i64) & TOKEN_BITS
    })
}

/// `(step id, token)` of an event id this store made, or `None` for any other UUID.
pub(crate) fn decode(id: Uuid) -> Option<(i64, i64)> {
    let v = id.as_u128();
    let version = (v >> 76) & 0xf;
    let reserved = (v >> 64) & 0xfff;
    let variant = (v >> 62) & 0b11;
    if version != 8 || reserved != 0 || variant != 0b10 {
        return None;
    }
    Some(((v >> 80) as i64, (v as i64) & TOKEN_BITS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_foreign_uuids() {
        for (step, token) in [(1, 0), (42, TOKEN_BITS), (MAX_STEP_ID, 12345), (7, 1 << 61)] {
            let id = event_id(step, token);
            assert_eq!(id.get_version_num(), 8);
            assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
            assert_eq!(decode(id), Some((step, token)));
        }
        assert_eq!(decode(Uuid::new_v4()), None);
        assert_eq!(decode(Uuid::now_v7()), None);
        assert_eq!(decode(Uuid::nil()), None);
    }

    #[test]
    fn fresh_tokens_fit_62_bits_and_differ() {
        let tokens: std::collections::HashSet<i64> = (0..10_000).map(|_| fresh()).collect();
        assert_eq!(tokens.len(), 10_000);
        assert!(tokens.iter().all(|t| (0..=TOKEN_BITS).contains(t)));
        assert!(tokens.iter().any(|t| *t > TOKEN_BITS / 2), "the high bits are used");
    }
}
