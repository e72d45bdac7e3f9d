//! The cdylib exports exactly the C ABI: `nm -D --defined-only` lists the 23 functions and nothing else.
//! (Rust cdylibs get a linker version script that exports only `#[no_mangle]` items; on this toolchain no
//! other symbol appears. Should a toolchain add its own, filter it here with a comment saying why.)

use tasker_test_support::ffi as support;

const EXPORTS: [&str; 23] = [
    "bootstrap_worker",
    "check_starvation_warnings",
    "checkpoint_yield_step_event",
    "cleanup_timeouts",
    "client_call",
    "complete_step_event",
    "free_rust_string",
    "get_ffi_dispatch_metrics",
    "get_worker_status",
    "give_back_step_event",
    "is_worker_running",
    "log_message",
    "map_ring_region",
    "map_ring_region_handle",
    "poll_completion_refusals",
    "poll_domain_events",
    "poll_step_events",
    "poll_worker_logs",
    "release_ring_region",
    "release_ring_region_handle",
    "stop_worker",
    "tasker_worker_abi_version",
    "transition_to_graceful_shutdown",
];

#[test]
fn exports_exactly_the_c_abi() {
    let lib = support::library_path();
    assert!(lib.exists(), "{} is missing", lib.display());
    let out = match std::process::Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(&lib)
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            eprintln!(
                "\n!!!!! SKIPPED: `nm` is not runnable here ({e}); the exported symbols were NOT checked !!!!!\n"
            );
            return;
        }
    };
    assert!(
        out.status.success(),
        "nm failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    eprintln!("nm -D --defined-only {}:\n{text}", lib.display());
    let mut names: Vec<&str> = text.lines().filter_map(|l| l.split_whitespace().last()).collect();
    names.sort_unstable();
    assert_eq!(names, EXPORTS, "exported symbols of {}", lib.display());
}
