//! `tasker-ring demo`: every events-ring capacity that holds one event streams events and gets every one
//! back (a small ring gets small frames, so the 2.7 KB events fragment); a ring smaller than one event, or a
//! capacity the layout refuses, is one clear line.

mod support;

use support::*;

#[test]
fn capacities_that_hold_an_event_run_and_smaller_ones_fail_in_one_line() {
    let dir = TempDir::new("demo");
    for capacity in [8192u32, 16_384, 65_536, 1 << 20] {
        let r = run([
            "demo",
            "--events",
            "300",
            "--capacity",
            &capacity.to_string(),
            "--dir",
            dir.dir().to_str().unwrap(),
        ]);
        assert_eq!(r.code, Some(0), "capacity {capacity}: {}\n{}", r.stderr, r.stdout);
    }
    for (capacity, says) in [("1000", "capacity"), ("256", "the ring holds 256")] {
        let r = run([
            "demo",
            "--events",
            "10",
            "--capacity",
            capacity,
            "--dir",
            dir.dir().to_str().unwrap(),
        ]);
        assert_ne!(r.code, Some(0), "capacity {capacity}");
        assert!(r.stderr.contains(says), "capacity {capacity}: {}", r.stderr);
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "one line: {}", r.stderr);
    }
}
