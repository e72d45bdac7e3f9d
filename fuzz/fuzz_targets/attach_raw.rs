//! Coverage-guided fuzzing of attach and frame decoding: the input is a whole region image, written as a
//! region file, attached, and used through every role (`tests/support_hostile`'s oracle, the same one the
//! proptest in tests/hostile.rs runs). Seeded with fixtures/hostile-base.ring by scripts/fuzz. A panic
//! (including a bounds assertion of a ring read) is a finding.
#![no_main]

#[path = "../../tests/support_hostile/mod.rs"]
mod support_hostile;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|image: &[u8]| {
    thread_local! {
        static DIR: std::path::PathBuf = support_hostile::scratch_dir();
    }
    DIR.with(|dir| {
        support_hostile::exercise(image, dir);
    });
});
