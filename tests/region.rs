//! Regions on disk: create, attach, roles across handles, and hostile files (every header field and frame
//! field corrupted) giving a typed error each time, never a panic.

mod support_stream;

use std::error::Error as _;
use std::fs;
use std::os::unix::fs::{FileExt, PermissionsExt};
use tasker_ring::layout::{COMPLETIONS_CONTROL_OFFSET, EVENTS_CONTROL_OFFSET, HEADER_SIZE};
use tasker_ring::{
    record_type, AttachError, ConfigError, CreateError, HeaderError, ReadError, Region, RegionConfig, RegionView,
    RingId,
};

fn small() -> RegionConfig {
    RegionConfig {
        events_capacity: 4096,
        completions_capacity: 4096,
        max_frame_size: 512,
        max_message_size: 1 << 20,
        initial_position: 0,
    }
}

use tasker_test_support::region::TempDir;

/// A valid region file at `path`, with the creator's handle dropped.
fn make_region(path: &std::path::Path) -> u64 {
    let region = Region::create(path, &small()).unwrap();
    region.layout().header.region_size
}

fn patch(path: &std::path::Path, offset: u64, bytes: &[u8]) {
    let f = fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_at(bytes, offset).unwrap();
}

fn attach_err(path: &std::path::Path) -> AttachError {
    // Files written by the test are 0644; a read-write attach refuses those first (A2a, tested in
    // tests/region_security.rs). Private, they reach the content checks both attach paths share.
    if fs::symlink_metadata(path).is_ok_and(|m| m.is_file()) {
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
    }
    let rw = Region::attach(path).err().expect("attach must fail");
    let ro = RegionView::attach(path).err().expect("read-only attach must fail");
    assert_eq!(format!("{rw:?}"), format!("{ro:?}"), "both attach paths agree");
    rw
}

#[test]
fn create_then_attach_carries_frames_between_handles() {
    let dir = TempDir::new("attach");
    let path = dir.path("r.ring");
    let creator = Region::create(&path, &small()).unwrap();
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(fs::metadata(&path).unwrap().len(), creator.layout().header.region_size);
    let peer = Region::attach(&path).unwrap();
    assert_eq!(peer.layout(), creator.layout());

    let mut events = creator.producer(RingId::Events).unwrap();
    let mut reader = peer.consumer(RingId::Events).unwrap();
    events
        .try_write(record_type::STEP_EVENT, b"{\"event_id\":\"a\"}")
        .unwrap();
    let g = reader.read().unwrap().unwrap();
    assert_eq!(&*g.payload(), b"{\"event_id\":\"a\"}");
    drop(g);

    let mut completions = peer.producer(RingId::Completions).unwrap();
    let mut drain = creator.consumer(RingId::Completions).unwrap();
    completions.try_write(record_type::COMPLETION, b"x").unwrap();
    assert_eq!(drain.read_batch(10, |m| assert_eq!(m.payload, b"x")).unwrap(), 1);

    assert!(matches!(
        peer.producer(RingId::Events),
        Err(tasker_ring::RoleError::Taken { .. })
    ));
    let view = RegionView::attach(&path).unwrap();
    let snap = view.snapshot(RingId::Events);
    assert_eq!(
        (
            snap.producer_position,
            snap.consumer_position,
            snap.frames,
            snap.frames_read
        ),
        (32, 32, 1, 1)
    );
    assert_eq!(snap.producer.pid, std::process::id());
    assert!(snap.producer.heartbeat_unix_ms > 0);
    assert_eq!(&view.copy_ring_bytes(RingId::Events, 16, 16), b"{\"event_id\":\"a\"}");
    creator.unlink().unwrap();
    assert!(!path.exists());
}

#[test]
fn create_is_exclusive_and_refuses_links_and_bad_configs() {
    let dir = TempDir::new("create");
    let path = dir.path("r.ring");
    make_region(&path);
    assert!(matches!(
        Region::create(&path, &small()),
        Err(CreateError::AlreadyExists(_))
    ));
    let link = dir.path("link.ring");
    std::os::unix::fs::symlink(dir.path("target.ring"), &link).unwrap();
    assert!(matches!(
        Region::create(&link, &small()),
        Err(CreateError::AlreadyExists(_))
    ));
    assert!(!dir.path("target.ring").exists(), "never created through the link");
    for bad in [
        RegionConfig {
            events_capacity: 5000,
            ..small()
        },
        RegionConfig {
            completions_capacity: 32,
            ..small()
        },
        RegionConfig {
            max_frame_size: 3000,
            ..small()
        },
        RegionConfig {
            max_frame_size: 100,
            ..small()
        },
        RegionConfig {
            initial_position: 3,
            ..small()
        },
        RegionConfig {
            max_message_size: 100,
            ..small()
        },
    ] {
        let err = Region::create(&dir.path("bad.ring"), &bad).err().unwrap();
        assert!(matches!(err, CreateError::InvalidConfig(_)), "{bad:?}: {err}");
        assert!(!dir.path("bad.ring").exists(), "a failed create leaves no file");
    }
    let missing = Region::create(&dir.path("nodir/r.ring"), &small()).err().unwrap();
    assert!(matches!(missing, CreateError::Io { step: "create", .. }), "{missing}");
}

#[test]
fn hostile_files_give_typed_errors() {
    let dir = TempDir::new("hostile");
    let p = |n: &str| dir.path(n);

    assert!(matches!(attach_err(&p("absent")), AttachError::NotFound(_)));

    fs::write(p("empty"), b"").unwrap();
    assert!(matches!(
        attach_err(&p("empty")),
        AttachError::Truncated {
            needed: 4096,
            actual: 0
        }
    ));

    let mut noise = vec![0u8; 3 * HEADER_SIZE as usize];
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for b in noise.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    fs::write(p("noise"), &noise).unwrap();
    assert!(matches!(attach_err(&p("noise")), AttachError::BadMagic(_)));

    fs::create_dir(p("dir")).unwrap();
    assert!(matches!(
        attach_err(&p("dir")),
        AttachError::NotARegularFile { kind: "directory", .. }
    ));

    let fifo = std::ffi::CString::new(p("fifo").to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo has no other memory arguments.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    assert!(matches!(
        attach_err(&p("fifo")),
        AttachError::NotARegularFile { kind: "FIFO", .. }
    ));

    make_region(&p("real"));
    std::os::unix::fs::symlink(p("real"), p("link")).unwrap();
    assert!(matches!(attach_err(&p("link")), AttachError::Symlink(_)));

    let size = make_region(&p("trunc"));
    fs::OpenOptions::new()
        .write(true)
        .open(p("trunc"))
        .unwrap()
        .set_len(size - 4096)
        .unwrap();
    assert!(matches!(attach_err(&p("trunc")), AttachError::Truncated { .. }));

    make_region(&p("long"));
    fs::OpenOptions::new()
        .write(true)
        .open(p("long"))
        .unwrap()
        .set_len(size + 4096)
        .unwrap();
    assert!(matches!(attach_err(&p("long")), AttachError::SizeMismatch { .. }));

    // One field at a time: (name, offset, bytes, check).
    type Check = fn(&AttachError) -> bool;
    let cases: Vec<(&str, u64, Vec<u8>, Check)> = vec![
        ("magic", 0, b"NOTARING".to_vec(), |e| {
            matches!(e, AttachError::BadMagic(_))
        }),
        ("not ready", 12, 0u32.to_le_bytes().to_vec(), |e| {
            matches!(e, AttachError::NotReady)
        }),
        ("ready garbage", 12, 7u32.to_le_bytes().to_vec(), |e| {
            matches!(e, AttachError::BadHeader(HeaderError::ReadyWord { found: 7 }))
        }),
        ("major", 8, 2u16.to_le_bytes().to_vec(), |e| {
            matches!(e, AttachError::UnsupportedMajor { found: 2, supported: 1 })
        }),
        ("features", 16, 1u64.to_le_bytes().to_vec(), |e| {
            matches!(e, AttachError::UnknownFeatures(1))
        }),
        ("header size", 24, 100u32.to_le_bytes().to_vec(), |e| {
            matches!(e, AttachError::BadHeader(HeaderError::HeaderSize { size: 100 }))
        }),
        ("ring count", 28, 1u32.to_le_bytes().to_vec(), |e| {
            matches!(e, AttachError::BadHeader(HeaderError::RingCount { count: 1 }))
        }),
        ("region size larger", 32, (size * 2).to_le_bytes().to_vec(), |e| {
            matches!(e, AttachError::Truncated { .. })
        }),
        ("max frame odd", 40, 509u32.to_le_bytes().to_vec(), |e| {
            matches!(
                e,
                AttachError::BadHeader(HeaderError::MaxFrame { size: 509, max: 2048 })
            )
        }),
        ("max frame huge", 40, 4096u32.to_le_bytes().to_vec(), |e| {
            matches!(
                e,
                AttachError::BadHeader(HeaderError::MaxFrame { size: 4096, max: 2048 })
            )
        }),
        ("events control", 128, 3000u64.to_le_bytes().to_vec(), |e| {
            matches!(
                e,
                AttachError::BadHeader(HeaderError::ControlOffset {
                    ring: "events",
                    offset: 3000
                })
            )
        }),
        // Offsets within a control block of 2^64: an unchecked `offset + 1024` wraps in release builds and
        // passes; each must be refused, never mapped past.
        (
            "events control near 2^64",
            128,
            (0u64.wrapping_sub(512)).to_le_bytes().to_vec(),
            |e| {
                matches!(
                    e,
                    AttachError::BadHeader(HeaderError::ControlOffset { ring: "events", .. })
                )
            },
        ),
        (
            "events control at 2^64-128",
            128,
            (0u64.wrapping_sub(128)).to_le_bytes().to_vec(),
            |e| {
                matches!(
                    e,
                    AttachError::BadHeader(HeaderError::ControlOffset { ring: "events", .. })
                )
            },
        ),
        (
            "completions control near 2^64",
            160,
            (0u64.wrapping_sub(1024)).to_le_bytes().to_vec(),
            |e| {
                matches!(
                    e,
                    AttachError::BadHeader(HeaderError::ControlOffset {
                        ring: "completions",
                        ..
                    })
                )
            },
        ),
        (
            "events data near 2^64",
            136,
            (0u64.wrapping_sub(4096)).to_le_bytes().to_vec(),
            |e| matches!(e, AttachError::BadHeader(HeaderError::DataRange { ring: "events", .. })),
        ),
        ("events data past end", 136, (size - 100).to_le_bytes().to_vec(), |e| {
            matches!(e, AttachError::BadHeader(HeaderError::DataRange { ring: "events", .. }))
        }),
        ("events data in header", 136, 0u64.to_le_bytes().to_vec(), |e| {
            matches!(
                e,
                AttachError::BadHeader(HeaderError::DataRange {
                    ring: "events",
                    offset: 0,
                    ..
                })
            )
        }),
        ("capacity not pow2", 144, 3000u32.to_le_bytes().to_vec(), |e| {
            matches!(
                e,
                AttachError::BadHeader(HeaderError::Capacity {
                    ring: "events",
                    capacity: 3000
                })
            )
        }),
        ("capacity huge", 144, (1u32 << 31).to_le_bytes().to_vec(), |e| {
            matches!(e, AttachError::BadHeader(HeaderError::Capacity { ring: "events", .. }))
        }),
        ("overlapping data", 168, 4096u64.to_le_bytes().to_vec(), |e| {
            matches!(e, AttachError::BadHeader(HeaderError::Overlap))
        }),
        (
            "overlapping control",
            160,
            EVENTS_CONTROL_OFFSET.to_le_bytes().to_vec(),
            |e| matches!(e, AttachError::BadHeader(HeaderError::Overlap)),
        ),
        ("ring id", 148, 7u32.to_le_bytes().to_vec(), |e| {
            matches!(
                e,
                AttachError::BadHeader(HeaderError::RingId {
                    descriptor: 0,
                    ring: "events",
                    found: 7
                })
            )
        }),
        ("ring count past controls", 28, 40u32.to_le_bytes().to_vec(), |e| {
            matches!(
                e,
                AttachError::BadHeader(HeaderError::ControlOffset { ring: "events", .. })
            )
        }),
        ("max message tiny", 48, 8u64.to_le_bytes().to_vec(), |e| {
            matches!(e, AttachError::BadHeader(HeaderError::MaxMessage { size: 8, min: 496 }))
        }),
        ("initial position", 152, 4u32.to_le_bytes().to_vec(), |e| {
            matches!(
                e,
                AttachError::BadHeader(HeaderError::InitialPosition {
                    ring: "events",
                    position: 4
                })
            )
        }),
    ];
    for (name, offset, bytes, check) in cases {
        let path = p(&format!("field-{}", name.replace(' ', "-")));
        make_region(&path);
        patch(&path, offset, &bytes);
        let err = attach_err(&path);
        assert!(check(&err), "{name}: got {err:?}");
        assert!(!err.to_string().is_empty());
    }
    let _ = COMPLETIONS_CONTROL_OFFSET;
}

#[test]
fn errors_keep_their_sources_and_their_messages() {
    let dir = TempDir::new("sources");

    // A refused configuration: `CreateError::InvalidConfig`, whose source is the `ConfigError`.
    for (bad, rule, message) in [
        (
            RegionConfig {
                events_capacity: 1000,
                ..small()
            },
            ConfigError::Capacity {
                ring: "events",
                capacity: 1000,
            },
            "events capacity 1000 must be a power of two in 64..=1073741824",
        ),
        (
            RegionConfig {
                completions_capacity: 32,
                ..small()
            },
            ConfigError::Capacity {
                ring: "completions",
                capacity: 32,
            },
            "completions capacity 32 must be a power of two in 64..=1073741824",
        ),
        (
            RegionConfig {
                max_frame_size: 100,
                ..small()
            },
            ConfigError::MaxFrameSize { size: 100, max: 2048 },
            "max frame size 100 must be a multiple of 8 in 32..=2048 (half the smaller ring)",
        ),
        (
            RegionConfig {
                max_message_size: 100,
                ..small()
            },
            ConfigError::MaxMessageSize { size: 100, min: 496 },
            "max message size 100 must hold at least one full frame's payload (496)",
        ),
        (
            RegionConfig {
                initial_position: 3,
                ..small()
            },
            ConfigError::InitialPosition { position: 3 },
            "initial position 3 must be a multiple of 8",
        ),
    ] {
        assert_eq!(bad.validate(), Err(rule));
        let err = Region::create(&dir.path("bad.ring"), &bad).err().unwrap();
        assert!(matches!(err, CreateError::InvalidConfig(r) if r == rule), "{err:?}");
        assert_eq!(err.to_string(), format!("invalid region configuration: {message}"));
        let source = err.source().and_then(|s| s.downcast_ref::<ConfigError>());
        assert_eq!(source, Some(&rule));
        assert_eq!(source.unwrap().to_string(), message);
    }

    // An I/O failure: `CreateError::Io`, whose source is the OS error.
    let missing = Region::create(&dir.path("nodir/r.ring"), &small()).err().unwrap();
    let io = missing.source().and_then(|s| s.downcast_ref::<std::io::Error>());
    assert_eq!(io.map(|e| e.kind()), Some(std::io::ErrorKind::NotFound), "{missing:?}");

    // A corrupt header: `AttachError::BadHeader`, whose source is the `HeaderError`; messages unchanged.
    for (name, offset, bytes, rule, message) in [
        (
            "ready",
            12,
            0xdead_beefu32.to_le_bytes().to_vec(),
            HeaderError::ReadyWord { found: 0xdead_beef },
            "ready word 0xdeadbeef is neither 0 nor 0x21594452",
        ),
        (
            "ring-count",
            28,
            1u32.to_le_bytes().to_vec(),
            HeaderError::RingCount { count: 1 },
            "ring count 1 is below 2",
        ),
        (
            "header-size",
            24,
            100u32.to_le_bytes().to_vec(),
            HeaderError::HeaderSize { size: 100 },
            "header size 100 is not a multiple of 4096 of at least 4096",
        ),
        (
            "ring-id",
            180,
            9u32.to_le_bytes().to_vec(),
            HeaderError::RingId {
                descriptor: 1,
                ring: "completions",
                found: 9,
            },
            "descriptor 1 (completions) has ring id 9",
        ),
        (
            "capacity",
            144,
            1000u32.to_le_bytes().to_vec(),
            HeaderError::Capacity {
                ring: "events",
                capacity: 1000,
            },
            "events capacity 1000 is not a power of two in 64..=2^30",
        ),
        (
            "control",
            128,
            0u64.wrapping_sub(512).to_le_bytes().to_vec(),
            HeaderError::ControlOffset {
                ring: "events",
                offset: 18446744073709551104,
            },
            "events control offset 18446744073709551104 is outside the header page",
        ),
        (
            "data",
            136,
            0u64.to_le_bytes().to_vec(),
            HeaderError::DataRange {
                ring: "events",
                offset: 0,
                capacity: 4096,
                region_size: 12288,
            },
            "events data 0+4096 lies outside the region's 12288 bytes",
        ),
        (
            "initial",
            184,
            4u32.to_le_bytes().to_vec(),
            HeaderError::InitialPosition {
                ring: "completions",
                position: 4,
            },
            "completions initial position 4 is not a multiple of 8",
        ),
        (
            "overlap",
            168,
            4096u64.to_le_bytes().to_vec(),
            HeaderError::Overlap,
            "the two rings overlap",
        ),
        (
            "max-frame",
            40,
            509u32.to_le_bytes().to_vec(),
            HeaderError::MaxFrame { size: 509, max: 2048 },
            "max frame size 509 is not a multiple of 8 in 32..=2048",
        ),
        (
            "max-message",
            48,
            8u64.to_le_bytes().to_vec(),
            HeaderError::MaxMessage { size: 8, min: 496 },
            "max message size 8 is smaller than one frame's payload (496)",
        ),
    ] {
        let path = dir.path(&format!("{name}.ring"));
        make_region(&path);
        patch(&path, offset, &bytes);
        let err = attach_err(&path);
        assert!(matches!(err, AttachError::BadHeader(r) if r == rule), "{name}: {err:?}");
        assert_eq!(err.to_string(), format!("corrupt region header: {message}"), "{name}");
        let source = err.source().and_then(|s| s.downcast_ref::<HeaderError>());
        assert_eq!(source, Some(&rule), "{name}");
    }
}

#[test]
fn permission_problems_are_reported_as_such() {
    let dir = TempDir::new("perm");
    let path = dir.path("r.ring");
    make_region(&path);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).unwrap();
    // Root ignores file modes; only assert when the OS actually refuses.
    if let Err(e) = fs::File::open(&path) {
        assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied);
        assert!(matches!(attach_err(&path), AttachError::PermissionDenied(_)));
    }
}

/// Corrupts the events ring of a fresh region after one message, then reads it with a fresh consumer.
fn corrupt_and_read(tag: &str, patch_at: impl Fn(u64) -> (u64, Vec<u8>)) -> ReadError {
    let dir = TempDir::new(tag);
    let path = dir.path("r.ring");
    let region = Region::create(&path, &small()).unwrap();
    {
        let mut p = region.producer(RingId::Events).unwrap();
        p.try_write(record_type::STEP_EVENT, b"0123456789").unwrap();
    }
    let data = region.layout().rings[0].data_offset;
    let (offset, bytes) = patch_at(data);
    patch(&path, offset, &bytes);
    let mut c = region.consumer(RingId::Events).unwrap();
    let err = c.read().err().expect("corrupt ring must fail");
    assert_eq!(c.read().err(), Some(err.clone()), "the error is sticky");
    err
}

#[test]
fn corrupt_frames_give_typed_errors() {
    let ev = EVENTS_CONTROL_OFFSET;
    let e = corrupt_and_read("len-past", |d| (d, 200u32.to_le_bytes().to_vec()));
    assert!(matches!(e, ReadError::LengthPastPublished { .. }), "{e:?}");
    let e = corrupt_and_read("len-ring", |d| (d, 0x7fff_fff0u32.to_le_bytes().to_vec()));
    assert!(matches!(e, ReadError::FrameTooLarge { .. }), "{e:?}");
    let e = corrupt_and_read("len-small", |d| (d, 3u32.to_le_bytes().to_vec()));
    assert!(matches!(e, ReadError::LengthTooSmall { .. }), "{e:?}");
    let e = corrupt_and_read("type", |d| (d + 4, 0x0042u16.to_le_bytes().to_vec()));
    assert!(
        matches!(e, ReadError::UnknownRecordType { record_type: 0x42, .. }),
        "{e:?}"
    );
    let e = corrupt_and_read("flags", |d| (d + 6, 0x0083u16.to_le_bytes().to_vec()));
    assert!(matches!(e, ReadError::UnknownFlags { .. }), "{e:?}");
    let e = corrupt_and_read("frag", |d| (d + 6, 0x0002u16.to_le_bytes().to_vec()));
    assert!(matches!(e, ReadError::FragmentOutOfOrder { .. }), "{e:?}");
    let e = corrupt_and_read("seq", |d| (d + 8, 9u64.to_le_bytes().to_vec()));
    assert!(
        matches!(
            e,
            ReadError::SequenceGap {
                expected: 0,
                found: 9,
                ..
            }
        ),
        "{e:?}"
    );
    let e = corrupt_and_read("pad-misplaced", |d| (d, [8u32.to_le_bytes(), [1, 0, 0, 0]].concat()));
    assert!(matches!(e, ReadError::BadPadding { .. }), "{e:?}");
    let e = corrupt_and_read("head-far", |_| (ev, 100_000u32.to_le_bytes().to_vec()));
    assert!(matches!(e, ReadError::PositionsCorrupt { .. }), "{e:?}");
    let e = corrupt_and_read("head-odd", |_| (ev, 13u32.to_le_bytes().to_vec()));
    assert!(matches!(e, ReadError::Misaligned { .. }), "{e:?}");
    // Consumer at the ring's last 16 bytes, producer 32 past it, and a frame there claiming 32 bytes.
    let dir = TempDir::new("straddle");
    let path = dir.path("r.ring");
    let region = Region::create(&path, &small()).unwrap();
    let data = region.layout().rings[0].data_offset;
    patch(&path, ev, &(4096u32 + 16).to_le_bytes());
    patch(&path, ev + 128, &(4096u32 - 16).to_le_bytes());
    patch(
        &path,
        data + 4096 - 16,
        &[32u32.to_le_bytes(), [0x10, 0, 3, 0]].concat(),
    );
    let e = region.consumer(RingId::Events).unwrap().read().err().unwrap();
    assert!(
        matches!(
            e,
            ReadError::Straddles {
                position: 4080,
                length: 32,
                to_end: 16
            }
        ),
        "{e:?}"
    );
}

/// Two threads stream a checked sequence through a real region (the mmap path; see
/// `support_stream::two_threads`).
#[test]
fn two_threads_stream_a_checked_sequence_through_a_region() {
    let dir = TempDir::new("threads");
    let region = Region::create(
        &dir.path("r.ring"),
        &RegionConfig {
            events_capacity: 1 << 14,
            completions_capacity: 1 << 12,
            max_frame_size: 1024,
            max_message_size: 1 << 16,
            initial_position: u32::MAX - 4095,
        },
    )
    .unwrap();
    let p = region.producer(RingId::Events).unwrap();
    let c = region.consumer(RingId::Events).unwrap();
    support_stream::two_threads(p, c);
}
