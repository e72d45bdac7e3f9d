//! Where the cdylib under test is (the cdylib's tests, examples and `benches/js_consumer.rs`).

use std::path::PathBuf;

/// The cdylib cargo built with this binary: `target/<profile>/deps/libtasker_worker.so`. A test or bench
/// binary lives in that `deps/` directory, an example in `target/<profile>/examples/`. Not the copy in
/// `target/<profile>/`: cargo refreshes that one only when the library itself is a build root
/// (`cargo build -p tasker-worker-ffi`), never for `cargo test` or `cargo build --example`, so it can be
/// stale or missing. `TASKER_LIBRARY_PATH` overrides the search.
pub fn library_path() -> PathBuf {
    if let Some(p) = std::env::var_os("TASKER_LIBRARY_PATH") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().expect("binary inside target/<profile>/<dir>/");
    let deps = if dir.ends_with("deps") {
        dir.to_path_buf()
    } else {
        dir.parent().expect("target/<profile>/").join("deps")
    };
    deps.join(format!(
        "{}tasker_worker{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ))
}
