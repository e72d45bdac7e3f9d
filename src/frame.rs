//! Frame record codec: the 16-byte header and the checks a reader applies before trusting it.
//!
//! Pure functions over copied bytes, shared by the consumer and the inspector; nothing here touches
//! shared memory, so a hostile peer cannot change a header between its check and its use.

use crate::error::ReadError;
use crate::layout::{align_frame, flags, record_type, FRAME_ALIGN, FRAME_HEADER};

/// A decoded frame header (layout-spec.md, "Frame record").
///
/// ```
/// use tasker_ring::frame::FrameHeader;
/// use tasker_ring::{flags, record_type};
///
/// let header = FrameHeader {
///     length: 16 + 5,
///     record_type: record_type::STEP_EVENT,
///     flags: flags::UNFRAGMENTED,
///     sequence: 7,
/// };
/// let bytes = header.encode();
/// assert_eq!(bytes[..4], 21u32.to_le_bytes());
///
/// // A reader decodes the 8-byte prefix, checks it, then reads the sequence.
/// let prefix = FrameHeader::decode_prefix(bytes[..8].try_into().unwrap());
/// assert_eq!(prefix.sequence, 0);
/// let decoded = prefix.with_sequence(bytes[8..].try_into().unwrap());
/// assert_eq!(decoded, header);
/// assert_eq!((decoded.payload_len(), decoded.footprint()), (5, 24));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// Record length in bytes: header plus payload, before alignment. Padding: bytes to the ring's end.
    pub length: u32,
    /// Record type code (`layout::record_type`).
    pub record_type: u16,
    /// Flag bits (`layout::flags`).
    pub flags: u16,
    /// Sequence number (absent, and read as 0, in an 8-byte padding record).
    pub sequence: u64,
}

impl FrameHeader {
    /// Encodes the header little-endian.
    #[inline]
    pub fn encode(&self) -> [u8; FRAME_HEADER] {
        let mut out = [0u8; FRAME_HEADER];
        out[0..4].copy_from_slice(&self.length.to_le_bytes());
        out[4..6].copy_from_slice(&self.record_type.to_le_bytes());
        out[6..8].copy_from_slice(&self.flags.to_le_bytes());
        out[8..16].copy_from_slice(&self.sequence.to_le_bytes());
        out
    }

    /// Decodes the 8-byte prefix (length, type, flags); the sequence is filled in by [`Self::with_sequence`].
    #[inline]
    pub fn decode_prefix(prefix: [u8; FRAME_ALIGN]) -> Self {
        Self {
            length: u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]),
            record_type: u16::from_le_bytes([prefix[4], prefix[5]]),
            flags: u16::from_le_bytes([prefix[6], prefix[7]]),
            sequence: 0,
        }
    }

    /// Sets the sequence from header bytes 8..16.
    pub fn with_sequence(mut self, seq: [u8; 8]) -> Self {
        self.sequence = u64::from_le_bytes(seq);
        self
    }

    /// Bytes the record occupies in the ring (length rounded up to 8).
    pub fn footprint(&self) -> usize {
        align_frame(self.length as usize)
    }

    /// Payload length (0 for padding).
    pub fn payload_len(&self) -> usize {
        if self.record_type == record_type::PADDING {
            0
        } else {
            self.length as usize - FRAME_HEADER
        }
    }
}

/// Where a record sits and what the reader knows about the ring around it (see [`check_prefix`]).
#[derive(Clone, Copy, Debug)]
pub struct RecordContext {
    /// Free-running position of the record's first byte.
    pub position: u32,
    /// Ring capacity (power of two).
    pub capacity: usize,
    /// Published bytes from `position` to the producer position.
    pub available: usize,
    /// Largest frame the region allows.
    pub max_frame: usize,
}

impl RecordContext {
    /// Offset of the record inside the data area.
    pub fn offset(&self) -> usize {
        self.position as usize & (self.capacity - 1)
    }
}

/// Checks that the published bytes between two free-running positions can be read at all, and returns
/// how many there are.
///
/// ```
/// use tasker_ring::frame::check_span;
/// use tasker_ring::ReadError;
///
/// assert_eq!(check_span(u32::MAX - 7, 8, 256), Ok(16)); // across the u32 wrap
/// assert!(matches!(check_span(0, 512, 256), Err(ReadError::PositionsCorrupt { .. })));
/// assert!(matches!(check_span(0, 12, 256), Err(ReadError::Misaligned { .. })));
/// ```
///
/// # Errors
/// [`ReadError::PositionsCorrupt`] when the producer is more than `capacity` ahead of the consumer (or
/// behind it); [`ReadError::Misaligned`] when either position is not a multiple of 8.
pub fn check_span(consumer: u32, producer: u32, capacity: usize) -> Result<usize, ReadError> {
    let available = producer.wrapping_sub(consumer) as usize;
    if available > capacity {
        return Err(ReadError::PositionsCorrupt { consumer, producer });
    }
    if consumer as usize % FRAME_ALIGN != 0 || producer as usize % FRAME_ALIGN != 0 {
        return Err(ReadError::Misaligned { consumer, producer });
    }
    Ok(available)
}

/// Validates the 8-byte prefix of a record. For a non-padding record the caller then reads the sequence.
/// Never trusts a length: every bound is checked against the ring and the published span.
///
/// ```
/// use tasker_ring::frame::{check_prefix, FrameHeader, RecordContext};
/// use tasker_ring::{flags, record_type, ReadError};
///
/// let (record_type, flags) = (record_type::STEP_EVENT, flags::UNFRAGMENTED);
/// let header = FrameHeader { length: 40, record_type, flags, sequence: 0 };
/// let at = |position, available| RecordContext { position, capacity: 256, available, max_frame: 128 };
/// assert_eq!(check_prefix(&header, &at(0, 40)), Ok(()));
/// assert!(matches!(check_prefix(&header, &at(0, 32)), Err(ReadError::LengthPastPublished { .. })));
/// assert!(matches!(check_prefix(&header, &at(224, 40)), Err(ReadError::Straddles { .. })));
/// ```
///
/// # Errors
/// - Padding: [`ReadError::BadPadding`] unless it runs exactly to the ring's end with no flags;
///   [`ReadError::LengthPastPublished`] if that end is not published.
/// - Other records: [`ReadError::LengthTooSmall`] (shorter than a header), [`ReadError::FrameTooLarge`],
///   [`ReadError::Straddles`] (past the ring's end), [`ReadError::LengthPastPublished`],
///   [`ReadError::UnknownRecordType`], [`ReadError::UnknownFlags`], and [`ReadError::FragmentOutOfOrder`]
///   for an `ABORT` without `END` or with a payload.
pub fn check_prefix(h: &FrameHeader, ctx: &RecordContext) -> Result<(), ReadError> {
    let position = ctx.position;
    let to_end = ctx.capacity - ctx.offset();
    let length = h.length as usize;
    if h.record_type == record_type::PADDING {
        if length != to_end || h.flags != 0 {
            return Err(ReadError::BadPadding {
                position,
                length: h.length,
                expected: to_end as u32,
            });
        }
        if length > ctx.available {
            return Err(ReadError::LengthPastPublished {
                position,
                length: h.length,
                available: ctx.available as u32,
            });
        }
        return Ok(());
    }
    if length < FRAME_HEADER {
        return Err(ReadError::LengthTooSmall {
            position,
            length: h.length,
        });
    }
    if length > ctx.max_frame {
        return Err(ReadError::FrameTooLarge {
            position,
            length: h.length,
            max: ctx.max_frame as u32,
        });
    }
    if h.footprint() > to_end {
        return Err(ReadError::Straddles {
            position,
            length: h.length,
            to_end: to_end as u32,
        });
    }
    if h.footprint() > ctx.available {
        return Err(ReadError::LengthPastPublished {
            position,
            length: h.length,
            available: ctx.available as u32,
        });
    }
    if !record_type::is_known_or_skippable(h.record_type) {
        return Err(ReadError::UnknownRecordType {
            position,
            record_type: h.record_type,
        });
    }
    if h.flags & !flags::KNOWN != 0 {
        return Err(ReadError::UnknownFlags {
            position,
            flags: h.flags,
        });
    }
    if h.flags & flags::ABORT != 0 && (h.flags & flags::END == 0 || length != FRAME_HEADER) {
        return Err(ReadError::FragmentOutOfOrder {
            position,
            flags: h.flags,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(position: u32, available: usize) -> RecordContext {
        RecordContext {
            position,
            capacity: 256,
            available,
            max_frame: 128,
        }
    }

    #[test]
    fn header_round_trips_little_endian() {
        let h = FrameHeader {
            length: 0x1234,
            record_type: 0x0010,
            flags: 3,
            sequence: 0x0102_0304_0506_0708,
        };
        let bytes = h.encode();
        assert_eq!(&bytes[0..4], &[0x34, 0x12, 0, 0]);
        assert_eq!(&bytes[8..16], &[8, 7, 6, 5, 4, 3, 2, 1]);
        let prefix: [u8; 8] = bytes[0..8].try_into().unwrap();
        let back = FrameHeader::decode_prefix(prefix).with_sequence(bytes[8..16].try_into().unwrap());
        assert_eq!(back, h);
        assert_eq!(back.footprint(), 0x1238);
    }

    #[test]
    fn prefix_checks_reject_each_bad_field() {
        let ok = FrameHeader {
            length: 20,
            record_type: record_type::STEP_EVENT,
            flags: flags::UNFRAGMENTED,
            sequence: 0,
        };
        assert!(check_prefix(&ok, &ctx(0, 24)).is_ok());
        let bad = |h: FrameHeader, c: RecordContext| check_prefix(&h, &c).unwrap_err();
        assert!(matches!(
            bad(FrameHeader { length: 8, ..ok }, ctx(0, 24)),
            ReadError::LengthTooSmall { .. }
        ));
        assert!(matches!(
            bad(FrameHeader { length: 200, ..ok }, ctx(0, 256)),
            ReadError::FrameTooLarge { .. }
        ));
        assert!(matches!(bad(ok, ctx(0, 16)), ReadError::LengthPastPublished { .. }));
        assert!(matches!(bad(ok, ctx(248, 24)), ReadError::Straddles { .. }));
        assert!(matches!(
            bad(
                FrameHeader {
                    record_type: 0x0042,
                    ..ok
                },
                ctx(0, 24)
            ),
            ReadError::UnknownRecordType { .. }
        ));
        assert!(matches!(
            bad(FrameHeader { flags: 0x10, ..ok }, ctx(0, 24)),
            ReadError::UnknownFlags { .. }
        ));
        let pad = FrameHeader {
            length: 16,
            record_type: record_type::PADDING,
            flags: 0,
            sequence: 0,
        };
        assert!(check_prefix(&pad, &ctx(240, 16)).is_ok());
        assert!(matches!(bad(pad, ctx(232, 24)), ReadError::BadPadding { .. }));
        assert!(matches!(
            bad(FrameHeader { length: 12, ..pad }, ctx(240, 16)),
            ReadError::BadPadding { .. }
        ));
        assert!(check_prefix(
            &FrameHeader {
                record_type: 0x9000,
                ..ok
            },
            &ctx(0, 24)
        )
        .is_ok());
    }

    #[test]
    fn span_checks_positions() {
        assert_eq!(check_span(u32::MAX - 7, 8, 256).unwrap(), 16);
        assert!(matches!(
            check_span(0, 512, 256),
            Err(ReadError::PositionsCorrupt { .. })
        ));
        assert!(matches!(check_span(0, 12, 256), Err(ReadError::Misaligned { .. })));
    }
}
