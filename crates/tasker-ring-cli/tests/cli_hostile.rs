//! Hostile files given to the inspector: random bytes, zero-length, truncated, wrong magic, a newer major
//! version, unknown features, a header that is not ready or corrupt, a directory, a FIFO (must not
//! block), a socket, a device, a symlink, a missing path and a permission problem (run as `nobody`).
//! Each gives its own exit code and one line on stderr, never a panic; `list` shows each with its error
//! and goes on; `clean` removes none of them.

mod support;

use serde_json::Value;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::*;
use tasker_ring::Region;

/// Deterministic noise (xorshift64*).
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed >> 12;
            seed ^= seed << 25;
            seed ^= seed >> 27;
            (seed.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

/// A valid region (creator: this process) at `path`; returns its size.
fn region(path: &Path) -> u64 {
    let r = Region::create(path, &small_config(0)).unwrap();
    r.layout().header.region_size
}

struct Case {
    file: &'static str,
    exit: i32,
    kind: &'static str,
    says: &'static str,
}

/// Builds every hostile file in `dir` (named `*.ring`, so `list` and `clean` meet them too).
fn build(dir: &TempDir) -> Vec<Case> {
    let p = |n: &str| dir.path(n);
    let mut cases = Vec::new();
    let mut case = |file, exit, kind, says| cases.push(Case { file, exit, kind, says });

    fs::write(p("random.ring"), noise(8192, 7)).unwrap();
    case("random.ring", 5, "bad_magic", "not a tasker-ring region (magic");
    fs::write(p("random-short.ring"), noise(1000, 11)).unwrap();
    case(
        "random-short.ring",
        7,
        "truncated",
        "the layout needs 4096 bytes, the file has 1000",
    );
    fs::write(p("empty.ring"), b"").unwrap();
    case("empty.ring", 7, "truncated", "the file has 0");

    let size = region(&p("truncated.ring"));
    fs::OpenOptions::new()
        .write(true)
        .open(p("truncated.ring"))
        .unwrap()
        .set_len(size - 4096)
        .unwrap();
    case(
        "truncated.ring",
        7,
        "truncated",
        "region truncated: the layout needs 12288 bytes",
    );
    region(&p("header-only.ring"));
    fs::OpenOptions::new()
        .write(true)
        .open(p("header-only.ring"))
        .unwrap()
        .set_len(100)
        .unwrap();
    case("header-only.ring", 7, "truncated", "the file has 100");

    region(&p("magic.ring"));
    patch(&p("magic.ring"), 0, b"TSKRRINX");
    case("magic.ring", 5, "bad_magic", "not a tasker-ring region");
    region(&p("major.ring"));
    patch(&p("major.ring"), 8, &2u16.to_le_bytes());
    case(
        "major.ring",
        6,
        "unsupported_major",
        "layout major version 2 is not supported (this build speaks 1)",
    );
    region(&p("features.ring"));
    patch(&p("features.ring"), 16, &1u64.to_le_bytes());
    case("features.ring", 6, "unknown_features", "unknown feature bits 0x1");
    region(&p("not-ready.ring"));
    patch(&p("not-ready.ring"), 12, &0u32.to_le_bytes());
    case("not-ready.ring", 8, "not_ready", "not ready");
    region(&p("bad-ready.ring"));
    patch(&p("bad-ready.ring"), 12, &0xdead_beefu32.to_le_bytes());
    case(
        "bad-ready.ring",
        7,
        "bad_header",
        "corrupt region header: ready word 0xdeadbeef",
    );
    region(&p("ring-count.ring"));
    patch(&p("ring-count.ring"), 28, &1u32.to_le_bytes());
    case("ring-count.ring", 7, "bad_header", "ring count 1 is below 2");
    region(&p("capacity.ring"));
    patch(&p("capacity.ring"), 128 + 16, &1000u32.to_le_bytes());
    case(
        "capacity.ring",
        7,
        "bad_header",
        "events capacity 1000 is not a power of two",
    );
    // A control offset within 1 KiB of 2^64: an unchecked bound `offset + 1024` wraps, passes, and `stat`,
    // `dump`, `list` and `clean` die of SIGSEGV reading past the mapping; the header check must refuse it.
    region(&p("control-wrap.ring"));
    patch(&p("control-wrap.ring"), 128, &0u64.wrapping_sub(512).to_le_bytes());
    case(
        "control-wrap.ring",
        7,
        "bad_header",
        "events control offset 18446744073709551104 is outside the header page",
    );
    let size = region(&p("longer.ring"));
    fs::OpenOptions::new()
        .write(true)
        .open(p("longer.ring"))
        .unwrap()
        .set_len(size + 4096)
        .unwrap();
    case(
        "longer.ring",
        7,
        "size_mismatch",
        "region header says 12288 bytes but the file has 16384",
    );

    fs::create_dir(p("directory.ring")).unwrap();
    case(
        "directory.ring",
        5,
        "not_a_regular_file",
        "is a directory, not a region file",
    );
    let made = Command::new("mkfifo").arg(p("fifo.ring")).status().unwrap();
    assert!(made.success(), "mkfifo");
    case("fifo.ring", 5, "not_a_regular_file", "is a FIFO, not a region file");
    let _sock = std::os::unix::net::UnixListener::bind(p("socket.ring")).unwrap();
    std::mem::forget(_sock);
    case("socket.ring", 5, "not_a_regular_file", "not a region file");
    region(&p("good.ring"));
    std::os::unix::fs::symlink(p("good.ring"), p("link.ring")).unwrap();
    case(
        "link.ring",
        5,
        "symlink",
        "is a symlink; regions are never opened through links",
    );
    cases
}

fn check_stat(path: &Path, exit: i32, says: &str, what: &str) {
    for extra in [&[][..], &["--json"][..], &["--interval", "10"][..]] {
        let mut args: Vec<&str> = vec!["stat", path.to_str().unwrap()];
        args.extend_from_slice(extra);
        let started = Instant::now();
        let r = run(&args);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{what}: took {:?}",
            started.elapsed()
        );
        assert_eq!(r.code, Some(exit), "{what} {extra:?}: {}", r.stderr);
        assert_one_line_error(&r, what);
        assert!(r.stderr.contains(says), "{what}: {:?} lacks {says:?}", r.stderr);
        assert!(r.stdout.is_empty(), "{what}: nothing on stdout: {:?}", r.stdout);
    }
}

#[test]
fn each_hostile_file_has_its_exit_code_and_one_line() {
    let dir = TempDir::new("hostile");
    let cases = build(&dir);
    for c in &cases {
        check_stat(&dir.path(c.file), c.exit, c.says, c.file);
    }
    // A missing path, and a device.
    check_stat(&dir.path("missing.ring"), 3, "no such region", "missing");
    check_stat(Path::new("/dev/null"), 5, "is a device, not a region file", "/dev/null");
    // The good region beside them is fine.
    let r = run(["stat", dir.path("good.ring").to_str().unwrap()]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
}

#[test]
fn list_shows_each_hostile_file_with_its_error_and_goes_on() {
    let dir = TempDir::new("hostile-list");
    let cases = build(&dir);
    let started = Instant::now();
    let v = run_json(["list", "--dir", dir.dir().to_str().unwrap(), "--json"]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a FIFO must not block list"
    );
    let regions = v.pointer("/regions").unwrap().as_array().unwrap();
    assert_eq!(regions.len(), cases.len() + 1, "every *.ring plus good.ring: {v:#}");
    let paths: Vec<&str> = regions.iter().map(|r| r["path"].as_str().unwrap()).collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted, "sorted by file name");
    for c in &cases {
        let name = c.file.trim_end_matches(".ring");
        let e = regions.iter().find(|r| r["name"] == name).unwrap();
        assert_eq!(e["region"], Value::Null, "{name}");
        assert_eq!(e["error"]["kind"], c.kind, "{name}: {e:#}");
        assert_eq!(e["error"]["exit_code"], c.exit, "{name}");
        assert!(
            e["error"]["message"].as_str().unwrap().contains(c.says),
            "{name}: {e:#}"
        );
        assert_eq!(e["path"], dir.path(c.file).to_str().unwrap());
    }
    let good = regions.iter().find(|r| r["name"] == "good").unwrap();
    assert_eq!(good["error"], Value::Null);
    assert_eq!(good["region"]["creator"]["state"], "alive");

    let r = run(["list", "--dir", dir.dir().to_str().unwrap()]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    for c in &cases {
        let name = c.file.trim_end_matches(".ring");
        let line = r
            .stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} in {}", r.stdout));
        assert!(
            line.contains(&format!("error (exit {}): ", c.exit)) && line.contains(c.says),
            "{line}"
        );
    }
    assert_eq!(
        r.stdout.lines().count(),
        cases.len() + 2,
        "header + one line each:\n{}",
        r.stdout
    );
}

#[test]
fn clean_removes_no_hostile_file() {
    let dir = TempDir::new("hostile-clean");
    let cases = build(&dir);
    let listing = |d: &Path| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = fs::read_dir(d).unwrap().map(|e| e.unwrap().path()).collect();
        v.sort();
        v
    };
    let before = listing(dir.dir());
    for extra in [&["--dry-run"][..], &[][..], &["--grace-ms", "0"][..]] {
        let mut args = vec!["clean", "--dir", dir.dir().to_str().unwrap()];
        args.extend_from_slice(extra);
        let r = run(&args);
        assert_eq!(r.code, Some(0), "{extra:?}: {}", r.stderr);
        for c in &cases {
            let line = r
                .stdout
                .lines()
                .find(|l| l.contains(&format!("/{}: ", c.file)))
                .unwrap_or_else(|| panic!("{} in {}", c.file, r.stdout));
            assert!(line.starts_with("kept "), "{line}");
        }
        assert!(
            r.stdout.contains("0 removed") || r.stdout.contains("0 would be removed"),
            "{}",
            r.stdout
        );
        assert_eq!(listing(dir.dir()), before, "{extra:?} removed something");
    }
}

#[test]
fn permission_problems_exit_4_as_nobody() {
    let nobody = match as_nobody() {
        Ok(p) => p,
        Err(why) => {
            println!("SKIPPED permission_problems_exit_4_as_nobody: {why}");
            return;
        }
    };
    // A root-owned 0600 region in a directory anyone may traverse: the open is refused.
    let open_dir = TempDir::new("perm-open");
    fs::set_permissions(open_dir.dir(), fs::Permissions::from_mode(0o755)).unwrap();
    let file = open_dir.path("private.ring");
    region(&file);
    assert_eq!(fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    let r = run_as_nobody(&nobody, &["stat", file.to_str().unwrap()]);
    assert_eq!(r.code, Some(4), "{}", r.stderr);
    assert_one_line_error(&r, "0600 file");
    assert!(r.stderr.contains("permission denied"), "{}", r.stderr);
    let r = run_as_nobody(&nobody, &["list", "--dir", open_dir.dir().to_str().unwrap(), "--json"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["regions"][0]["error"]["kind"], "permission_denied");
    assert_eq!(v["regions"][0]["error"]["exit_code"], 4);

    // The same file in a directory nobody cannot traverse.
    let closed = TempDir::new("perm-closed");
    fs::set_permissions(closed.dir(), fs::Permissions::from_mode(0o700)).unwrap();
    let hidden = closed.path("hidden.ring");
    region(&hidden);
    let r = run_as_nobody(&nobody, &["stat", hidden.to_str().unwrap()]);
    assert_eq!(r.code, Some(4), "{}", r.stderr);
    assert_one_line_error(&r, "untraversable dir");
    assert!(r.stderr.contains("permission denied"), "{}", r.stderr);
    let r = run_as_nobody(&nobody, &["list", "--dir", closed.dir().to_str().unwrap()]);
    assert_eq!(r.code, Some(4), "{}", r.stderr);
    assert_one_line_error(&r, "list of an unreadable dir");
    // Root itself reads both.
    assert_eq!(run(["stat", hidden.to_str().unwrap()]).code, Some(0));
}
