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
}
