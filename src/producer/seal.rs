//! Sealing a ring (layout 1.1, layout-spec.md section 8.1): the producer's orderly end, after which it may
//! hand every message its consumer did not claim to someone else, knowing no 1.1 consumer delivers it.

use super::Producer;
use crate::layout::CLAIM_SEALED;
use crate::memory::RingMemory;
use crate::sync::Ordering;

/// What [`Producer::seal`] learned about the messages published before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SealOutcome {
    /// The consumer claims before delivering (it declared so at take, layout 1.1): messages ending at or
    /// before `up_to` are its own; every later one is never delivered and may be handed elsewhere.
    Claimed {
        /// The claimed position (the seal bit cleared).
        up_to: u32,
    },
    /// No consumer, or one that does not claim (layout 1.0, or a region of minor 0): the claim says
    /// nothing. Messages after `consumer_position` count as unread, as in 1.0; a 1.0 consumer may still
    /// be delivering some of them.
    Unclaimed {
        /// The consumer position when sealed.
        consumer_position: u32,
    },
    /// The claim word is impossible (outside `[consumer position, producer position]`): a faulty peer.
    /// Treat every published message as the consumer's, so none is handed elsewhere twice.
    ClaimFault {
        /// The claim as found.
        claim: u32,
        /// The consumer position loaded before sealing.
        consumer_position: u32,
        /// The producer position.
        producer_position: u32,
    },
}

impl<M: RingMemory> Producer<M> {
    /// Seals the ring: nothing is published after it ([`crate::WriteError::Sealed`]), and a 1.1 consumer
    /// delivers nothing it had not claimed. One atomic operation, no waiting. Sealing twice reports the
    /// first seal's claim again.
    ///
    /// ```
    /// use tasker_ring::{heap_channel, record_type, ReadError, RingLimits, SealOutcome, WriteError};
    ///
    /// let limits = RingLimits { max_frame: 256, max_message: 4096 };
    /// let (mut producer, mut consumer) = heap_channel(1024, limits, 0);
    /// producer.try_write(record_type::STEP_EVENT, b"read")?;
    /// producer.try_write(record_type::STEP_EVENT, b"never read")?;
    /// drop(consumer.read()?); // claims and reads the first (ending at 24)
    ///
    /// assert_eq!(producer.seal(), SealOutcome::Claimed { up_to: 24 });
    /// assert!(matches!(consumer.read(), Err(ReadError::Sealed { claimed: 24 })));
    /// assert_eq!(producer.try_write(record_type::STEP_EVENT, b"x"), Err(WriteError::Sealed));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn seal(&mut self) -> SealOutcome {
        if let Some(first) = self.seal {
            // The claim is frozen, but the consumer may have released the messages it dropped since.
            return first;
        }
        let outcome = self.decide_seal();
        self.seal = Some(outcome);
        outcome
    }

    fn decide_seal(&self) -> SealOutcome {
        let control = self.mem.control();
        // Acquire: pairs with the consumer's Release store of its position; loaded before the seal, so it is
        // at most the claim (a 1.1 consumer claims before it releases).
        let consumer_position = control.consumer_position.value.load(Ordering::Acquire);
        if self.mem.layout_minor() < 1 {
            return SealOutcome::Unclaimed { consumer_position };
        }
        // SeqCst (an AcqRel RMW in the single total order): pairs with the consumer's claim CAS, so exactly
        // one of the two wins the word; and with its SeqCst store of `claiming_identity` and load of the
        // claim at take (Dekker): either that consumer sees the seal, or the loads below see it claiming.
        let claim = control.consumer_position.claim.fetch_or(CLAIM_SEALED, Ordering::SeqCst);
        // SeqCst: the second half of the Dekker pair above.
        let identity = control.consumer.identity.load(Ordering::SeqCst);
        // SeqCst: as above; pairs with the consumer's SeqCst store at take.
        let claiming = control.consumer.claiming_identity.load(Ordering::SeqCst);
        if identity == 0 || claiming != identity {
            return SealOutcome::Unclaimed { consumer_position };
        }
        let up_to = claim & !CLAIM_SEALED;
        let head = self.head;
        // Forward distances from the consumer position: the claim lies between it and the producer's.
        if up_to.wrapping_sub(consumer_position) > head.wrapping_sub(consumer_position) || up_to % 8 != 0 {
            return SealOutcome::ClaimFault {
                claim,
                consumer_position,
                producer_position: head,
            };
        }
        SealOutcome::Claimed { up_to }
    }

    /// Whether [`Self::seal`] ran.
    pub fn is_sealed(&self) -> bool {
        self.seal.is_some()
    }
}
