//! Event and step ids as 128-bit values, parsed from and printed as canonical UUID text without allocating.

use std::fmt;

/// A UUID held as a `u128` (event ids, step uuids): hashing and comparing it costs nothing, and the
/// in-flight map stores it without a heap allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uuid(pub u128);

/// Why a UUID string was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UuidError(pub String);

impl fmt::Display for UuidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not a canonical UUID (8-4-4-4-12 hex digits)", self.0)
    }
}

impl std::error::Error for UuidError {}

impl Uuid {
    /// Length of the canonical text form.
    pub const TEXT_LEN: usize = 36;

    /// Parses canonical text (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, either case).
    pub fn parse(text: &[u8]) -> Result<Self, UuidError> {
        let err = || UuidError(String::from_utf8_lossy(&text[..text.len().min(64)]).into_owned());
        if text.len() != Self::TEXT_LEN {
            return Err(err());
        }
        let mut value = 0u128;
        for (i, &b) in text.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                if b != b'-' {
                    return Err(err());
                }
                continue;
            }
            let digit = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                b'A'..=b'F' => b - b'A' + 10,
                _ => return Err(err()),
            };
            value = (value << 4) | digit as u128;
        }
        Ok(Self(value))
    }

    /// Writes the lowercase canonical text into `out`.
    pub fn write_text(&self, out: &mut [u8; Self::TEXT_LEN]) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut nibble = 32;
        for (i, slot) in out.iter_mut().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                *slot = b'-';
                continue;
            }
            nibble -= 1;
            *slot = HEX[((self.0 >> (nibble * 4)) & 0xF) as usize];
        }
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = [0u8; Self::TEXT_LEN];
        self.write_text(&mut text);
        // The buffer holds only ASCII hex digits and hyphens.
        f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_bad_text() {
        let text = "0190f3a2-7c1e-7b3a-9d2e-000000000001";
        let id = Uuid::parse(text.as_bytes()).unwrap();
        assert_eq!(id.to_string(), text);
        assert_eq!(Uuid::parse(text.to_uppercase().as_bytes()).unwrap(), id);
        for bad in [
            "",
            "0190f3a2-7c1e-7b3a-9d2e-00000000000",
            "0190f3a2x7c1e-7b3a-9d2e-000000000001",
            "g190f3a2-7c1e-7b3a-9d2e-000000000001",
        ] {
            assert!(Uuid::parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
