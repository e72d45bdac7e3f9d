//! Security of the region file (layout-spec.md 11.1, 11.2 A1-A2a): another user can neither attach to nor
//! remove a worker's region, a peer never attaches to a file of another user or one readable by others,
//! a planted symlink is never followed, and region names cannot leave their directory.
//!
//! CI runs as root, where mode 0600 denies nothing, so the other-user cases re-execute this test binary
//! as `nobody` (through `setpriv`) in a sticky, world-writable directory like `/dev/shm`.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use tasker_ring::{region_path, AttachError, CreateError, Region};
use tasker_test_support::region::*;

const CHILD_DIR: &str = "TASKER_SECURITY_CHILD_DIR";

fn region(path: &Path) -> Region {
    Region::create(path, &small_config(0)).unwrap()
}

/// What the `nobody` child reports, one `key=value` line each.
fn attach_kind(path: &Path) -> String {
    match Region::attach(path) {
        Ok(_) => "ok".into(),
        Err(AttachError::PermissionDenied(_)) => "permission_denied".into(),
        Err(e) => format!("other: {e}"),
    }
}

/// The child role, run as `nobody` by [`another_user_can_neither_attach_nor_remove`]; a no-op otherwise.
#[test]
fn child_as_other_user() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let dir = Path::new(&dir);
    println!("attach={}", attach_kind(&dir.join("root.ring")));
    let unlink = match fs::remove_file(dir.join("root.ring")) {
        Ok(()) => "removed".to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => "permission_denied".into(),
        Err(e) => format!("other: {e}"),
    };
    println!("unlink={unlink}");
    // Its own region, for the owner check on the other side; and a link planted where root will create.
    let own = Region::create(&dir.join("nobody.ring"), &small_config(0));
    println!("create={}", if own.is_ok() { "ok" } else { "failed" });
    std::mem::forget(own); // the file stays for the parent to look at
    std::os::unix::fs::symlink(dir.join("victim"), dir.join("planted.ring")).unwrap();
    println!("planted=ok");
}

#[test]
fn another_user_can_neither_attach_nor_remove() {
    let prefix = match as_nobody() {
        Ok(p) => p,
        Err(why) => {
            eprintln!("\n!!! SKIPPED another_user_can_neither_attach_nor_remove: {why} !!!\n");
            return;
        }
    };
    let dir = TempDir::new("security");
    // Sticky and world-writable, like /dev/shm: anyone may create, only an owner may remove.
    fs::set_permissions(dir.dir(), fs::Permissions::from_mode(0o1777)).unwrap();
    let root_region = region(&dir.path("root.ring"));
    fs::write(dir.path("victim"), b"root's file").unwrap();

    let out = Command::new(&prefix[0])
        .args(&prefix[1..])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "child_as_other_user", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir.dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "attach=permission_denied",
        "unlink=permission_denied",
        "create=ok",
        "planted=ok",
    ] {
        // The harness may print "test child_as_other_user ... " on the same line before the first.
        assert!(
            stdout.lines().any(|l| l.ends_with(line)),
            "expected {line} from the child:\n{stdout}"
        );
    }
    assert!(
        dir.path("root.ring").exists(),
        "a live region is never removed by another user"
    );

    let nobody_region = dir.path("nobody.ring");
    let nobody_uid = fs::metadata(&nobody_region).unwrap().uid();
    assert_ne!(nobody_uid, 0);
    match Region::attach(&nobody_region) {
        Err(AttachError::WrongOwner { owner, euid, .. }) => assert_eq!((owner, euid), (nobody_uid, 0)),
        other => panic!("root attaching nobody's region: {:?}", other.err()),
    }

    // The stale-region sweep (every worker's bootstrap, `tasker-ring clean`) never maps another user's
    // file, even a world-readable one whose creator is dead: its owner could plant hostile offsets or
    // truncate it mid-sweep (SIGBUS). Kept, and said why.
    let dead_pid = {
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    };
    patch(&nobody_region, 56, &dead_pid.to_le_bytes());
    fs::set_permissions(&nobody_region, fs::Permissions::from_mode(0o644)).unwrap();
    let outcomes = tasker_ring::stale::sweep(dir.dir(), std::time::Duration::ZERO, false).unwrap();
    let nobody_outcome = outcomes.iter().find(|o| o.path == nobody_region).unwrap();
    match &nobody_outcome.verdict {
        tasker_ring::stale::Verdict::Keep(why) => assert!(why.contains("another user's file"), "{why}"),
        other => panic!("another user's dead region: {other:?}"),
    }
    assert!(
        nobody_region.exists(),
        "another user's region is never removed by the sweep"
    );

    let planted = dir.path("planted.ring");
    assert!(matches!(
        Region::create(&planted, &small_config(0)),
        Err(CreateError::AlreadyExists(_))
    ));
    assert!(matches!(Region::attach(&planted), Err(AttachError::Symlink(_))));
    assert_eq!(
        fs::read(dir.path("victim")).unwrap(),
        b"root's file",
        "never written through the link"
    );
    drop(root_region);
}

#[test]
fn a_peer_attaches_only_to_private_files_of_its_own_user() {
    let dir = TempDir::new("mode");
    let path = dir.path("r.ring");
    let _creator = region(&path);
    assert_eq!(fs::metadata(&path).unwrap().mode() & 0o7777, 0o600, "created 0600");
    Region::attach(&path).expect("own 0600 region");
    for mode in [0o640, 0o604, 0o660, 0o666] {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        match Region::attach(&path) {
            Err(e @ AttachError::InsecureMode { mode: found, .. }) => {
                assert_eq!(found, mode);
                assert!(e.to_string().contains("must be 0600"), "{e}");
            }
            other => panic!("mode {mode:o}: {:?}", other.err()),
        }
    }
    // The read-only inspector view still opens it: it never writes, and shows what is wrong.
    tasker_ring::RegionView::attach(&path).expect("the inspector reads any region it can open");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    Region::attach(&path).expect("0600 again");
}

#[test]
fn region_names_cannot_leave_their_directory() {
    let dir = Path::new("/dev/shm");
    assert_eq!(
        region_path(dir, "worker-ts-12-1").unwrap(),
        dir.join("worker-ts-12-1.ring")
    );
    assert_eq!(region_path(dir, "a.b_c-D9").unwrap(), dir.join("a.b_c-D9.ring"));
    let long = "x".repeat(tasker_ring::MAX_REGION_NAME + 1);
    for bad in [
        "",
        ".",
        "..",
        "../etc/passwd",
        "a/b",
        "/abs",
        ".hidden",
        "a\0b",
        "naïve",
        "a b",
        &long,
    ] {
        let e = region_path(dir, bad).expect_err(bad);
        assert_eq!(e.name, bad);
        assert!(!e.to_string().is_empty());
    }
    assert!(region_path(dir, &"x".repeat(tasker_ring::MAX_REGION_NAME)).is_ok());
}
