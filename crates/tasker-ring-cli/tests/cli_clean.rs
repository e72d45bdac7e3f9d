//! `tasker-ring clean`: regions whose creator is dead are removed with the doorbell socket beside them;
//! live ones, and anything that is not a readable region, are kept, each with its reason. A "dead" region
//! is made by a child process (this test binary re-run) that creates it and exits, so its pid is gone.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use support::*;
use tasker_ring::{Region, RingId};

/// The child process of [`dead_region`]; does nothing when run as a normal test.
#[test]
fn child_creates_and_dies() {
    child_body();
}

/// The line `clean` printed about `name`.
fn line_for<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find(|l| l.contains(&format!("/{name}: ")))
        .unwrap_or_else(|| panic!("no line for {name} in:\n{out}"))
}

fn clean(dir: &TempDir, extra: &[&str]) -> Run {
    let mut args = vec!["clean", "--dir", dir.dir().to_str().unwrap()];
    args.extend_from_slice(extra);
    let r = run(&args);
    assert_eq!(r.code, Some(0), "clean {extra:?}: {}\n{}", r.stderr, r.stdout);
    r
}

#[test]
fn dead_regions_go_live_ones_and_strangers_stay() {
    let dir = TempDir::new("clean");
    dead_region(&dir.path("dead.ring"), false);
    dead_region(&dir.path("crashed.ring"), true);
    assert!(dir.path("dead.sock").exists() && dir.path("crashed.sock").exists());
    let live = Live::start(&dir.path("live.ring"), &small_config(0));
    let _live_sock = std::os::unix::net::UnixListener::bind(dir.path("live.sock")).unwrap();
    fs::write(dir.path("junk.ring"), vec![0x5a; 8192]).unwrap();
    fs::create_dir(dir.path("folder.ring")).unwrap();
    fs::write(dir.path("notes.txt"), b"not a region").unwrap();
    let everything = [
        "dead.ring",
        "dead.sock",
        "crashed.ring",
        "crashed.sock",
        "live.ring",
        "live.sock",
        "junk.ring",
        "folder.ring",
        "notes.txt",
    ];

    // stat and list agree that the creators are dead.
    let v = run_json(["stat", dir.path("dead.ring").to_str().unwrap(), "--json"]);
    assert_eq!(v.pointer("/creator/state").unwrap(), "dead");
    assert_eq!(v.pointer("/rings/events/producer/state").unwrap(), "absent");
    let v = run_json(["stat", dir.path("crashed.ring").to_str().unwrap(), "--json"]);
    assert_eq!(v.pointer("/creator/state").unwrap(), "dead");
    assert_eq!(v.pointer("/rings/events/producer/state").unwrap(), "dead");
    assert_eq!(v.pointer("/rings/events/counters/frames").unwrap(), 1);
    let table = run(["list", "--dir", dir.dir().to_str().unwrap()]).stdout;
    let row = |name: &str| {
        table
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} in {table}"))
            .to_string()
    };
    assert_eq!(row("dead").split_whitespace().nth(3), Some("dead"));
    assert_eq!(row("live").split_whitespace().nth(3), Some("alive"));
    assert!(
        row("junk").contains("error (exit 5): not a tasker-ring region"),
        "{table}"
    );
    assert!(row("folder").contains("error (exit 5): "), "{table}");

    // Dry run: the decisions, nothing removed.
    let r = clean(&dir, &["--dry-run"]);
    let out = &r.stdout;
    assert!(line_for(out, "dead.ring").starts_with("would remove  "), "{out}");
    assert!(line_for(out, "dead.ring").contains("no such process"), "{out}");
    assert!(line_for(out, "dead.sock").starts_with("would remove  "), "{out}");
    assert!(line_for(out, "crashed.ring").starts_with("kept  "), "{out}");
    assert!(line_for(out, "crashed.ring").contains("grace"), "{out}");
    assert!(line_for(out, "live.ring").starts_with("kept  "), "{out}");
    assert!(line_for(out, "live.ring").contains("alive"), "{out}");
    assert!(line_for(out, "junk.ring").contains("not a tasker-ring region"), "{out}");
    assert!(line_for(out, "folder.ring").contains("directory"), "{out}");
    assert!(out.ends_with("dry run: 1 would be removed, 4 kept\n"), "{out}");
    for name in everything {
        assert!(fs::symlink_metadata(dir.path(name)).is_ok(), "--dry-run removed {name}");
    }

    // For real, default grace: the crashed worker's heartbeat is seconds old, so it stays for now.
    let r = clean(&dir, &[]);
    let out = &r.stdout;
    assert!(line_for(out, "dead.ring").starts_with("removed       "), "{out}");
    assert!(line_for(out, "dead.sock").starts_with("removed       "), "{out}");
    assert!(line_for(out, "crashed.ring").starts_with("kept  "), "{out}");
    assert!(out.ends_with("1 removed, 4 kept\n"), "{out}");
    assert!(!dir.path("dead.ring").exists() && fs::symlink_metadata(dir.path("dead.sock")).is_err());

    // No grace: the crashed one goes too (its role holder is dead), with its socket.
    let r = clean(&dir, &["--grace-ms", "0"]);
    let out = &r.stdout;
    assert!(line_for(out, "crashed.ring").starts_with("removed       "), "{out}");
    assert!(line_for(out, "crashed.ring").contains("last heartbeat"), "{out}");
    assert!(line_for(out, "crashed.sock").starts_with("removed       "), "{out}");
    assert!(out.ends_with("1 removed, 3 kept\n"), "{out}");
    for gone in ["dead.ring", "dead.sock", "crashed.ring", "crashed.sock"] {
        assert!(fs::symlink_metadata(dir.path(gone)).is_err(), "{gone} still there");
    }
    for kept in ["live.ring", "live.sock", "junk.ring", "folder.ring", "notes.txt"] {
        assert!(fs::symlink_metadata(dir.path(kept)).is_ok(), "{kept} was removed");
    }
    // The live region still works.
    live.publish(&[10]);
    assert_eq!(live.consume(10), 1);

    // Nothing left to do.
    let r = clean(&dir, &["--grace-ms", "0"]);
    assert!(r.stdout.ends_with("0 removed, 3 kept\n"), "{}", r.stdout);
}

#[test]
fn a_dead_creator_with_a_live_role_holder_is_kept() {
    let dir = TempDir::new("holder");
    let path = dir.path("adopted.ring");
    dead_region(&path, false);
    let region = Region::attach(&path).unwrap();
    let consumer = region.consumer(RingId::Events).unwrap();
    let r = clean(&dir, &["--grace-ms", "0"]);
    let line = line_for(&r.stdout, "adopted.ring");
    assert!(line.starts_with("kept  "), "{line}");
    assert!(
        line.contains(&format!("the events consumer, pid {}, is alive", std::process::id())),
        "{line}"
    );
    // Once the role is given back, nothing alive is left.
    drop(consumer);
    let r = clean(&dir, &["--grace-ms", "0"]);
    let line = line_for(&r.stdout, "adopted.ring");
    assert!(line.starts_with("removed "), "{line}");
    assert!(line.contains("no role holder is alive or recorded"), "{line}");
    assert!(!path.exists());
}

#[test]
fn a_reused_creator_pid_counts_as_dead() {
    let dir = TempDir::new("reused");
    let path = dir.path("reused.ring");
    dead_region(&path, false);
    // Our own (live) pid, with a start time that is not ours: a later process got the pid.
    let me = tasker_ring::liveness::ProcessIdentity::current();
    patch(&path, 56, &me.pid.to_le_bytes());
    patch(&path, 64, &(me.start_time + 12345).to_le_bytes());
    let v = run_json(["stat", path.to_str().unwrap(), "--json"]);
    assert_eq!(v.pointer("/creator/state").unwrap(), "dead");
    assert_eq!(v.pointer("/creator/pid_reused").unwrap(), true);
    let r = clean(&dir, &[]);
    let line = line_for(&r.stdout, "reused.ring");
    assert!(line.starts_with("removed "), "{line}");
    assert!(line.contains("the pid now belongs to a later process"), "{line}");
}

#[test]
fn unfinished_regions_go_only_when_their_creator_is_dead() {
    let dir = TempDir::new("unfinished");
    let dead = dir.path("dead-init.ring");
    dead_region(&dead, false);
    patch(&dead, 12, &[0, 0, 0, 0]);
    let alive = dir.path("live-init.ring");
    drop(Region::create(&alive, &small_config(0)).unwrap());
    patch(&alive, 12, &[0, 0, 0, 0]);
    let r = run(["stat", dead.to_str().unwrap()]);
    assert_eq!(r.code, Some(8), "not ready: {}", r.stderr);

    // Just modified: within the grace period, both stay.
    let r = clean(&dir, &[]);
    assert!(
        line_for(&r.stdout, "dead-init.ring").starts_with("kept  "),
        "{}",
        r.stdout
    );
    assert!(line_for(&r.stdout, "dead-init.ring").contains("grace"), "{}", r.stdout);
    let r = clean(&dir, &["--grace-ms", "0"]);
    let line = line_for(&r.stdout, "dead-init.ring");
    assert!(line.starts_with("removed "), "{line}");
    assert!(line.contains("never finished initialising"), "{line}");
    let line = line_for(&r.stdout, "live-init.ring");
    assert!(line.starts_with("kept  "), "{line}");
    assert!(line.contains("may still be initialising"), "{line}");
    assert!(!dead.exists() && alive.exists());
}

#[test]
fn a_socket_name_that_is_not_a_socket_is_left_alone() {
    let dir = TempDir::new("notsock");
    let path = dir.path("w.ring");
    dead_region(&path, false);
    fs::remove_file(dir.path("w.sock")).unwrap();
    fs::write(dir.path("w.sock"), b"someone's file").unwrap();
    let r = clean(&dir, &[]);
    assert!(line_for(&r.stdout, "w.ring").starts_with("removed "), "{}", r.stdout);
    assert!(line_for(&r.stdout, "w.sock").contains("not a socket"), "{}", r.stdout);
    assert_eq!(fs::read(dir.path("w.sock")).unwrap(), b"someone's file");
}

#[test]
fn clean_errors_have_their_exit_codes() {
    let dir = TempDir::new("cleanerr");
    let r = run(["clean", "--dir", dir.path("missing").to_str().unwrap()]);
    assert_eq!(r.code, Some(1));
    assert_one_line_error(&r, "missing dir");
    let r = clean(&dir, &[]);
    assert!(r.stdout.starts_with("no regions (*.ring) in "), "{}", r.stdout);

    let nobody = match as_nobody() {
        Ok(p) => p,
        Err(why) => {
            println!("SKIPPED the permission cases of clean: {why}");
            return;
        }
    };
    // A dead region nobody may read but not remove (root's directory): removal refused, exit 4.
    let locked = TempDir::new("cleanperm");
    fs::set_permissions(locked.dir(), fs::Permissions::from_mode(0o755)).unwrap();
    let path = locked.path("dead.ring");
    dead_region(&path, false);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let r = run_as_nobody(&nobody, &["clean", "--dir", locked.dir().to_str().unwrap()]);
    assert_eq!(r.code, Some(4), "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("error         "), "{}", r.stdout);
    assert_one_line_error(&r, "removal refused");
    assert!(r.stderr.contains("permission denied"), "{}", r.stderr);
    assert!(path.exists());
    // Root's dead 0600 region in a sticky world-writable directory (like /dev/shm): the user nobody can neither open
    // nor unlink it; kept, reported as an error with its owner and mode, exit 4.
    let sticky = TempDir::new("cleansticky");
    fs::set_permissions(sticky.dir(), fs::Permissions::from_mode(0o1777)).unwrap();
    let rooted = sticky.path("dead.ring");
    dead_region(&rooted, false);
    let r = run_as_nobody(&nobody, &["clean", "--dir", sticky.dir().to_str().unwrap()]);
    assert_eq!(r.code, Some(4), "{}\n{}", r.stdout, r.stderr);
    let line = line_for(&r.stdout, "dead.ring");
    assert!(
        line.starts_with("error ") && line.contains("owner uid 0, mode 0600"),
        "{line}"
    );
    assert!(line.contains("only its owner can judge"), "{line}");
    assert_one_line_error(&r, "another user's region");
    assert!(rooted.exists());
    // A directory nobody may not read: exit 4.
    fs::set_permissions(locked.dir(), fs::Permissions::from_mode(0o700)).unwrap();
    let r = run_as_nobody(&nobody, &["clean", "--dir", locked.dir().to_str().unwrap()]);
    assert_eq!(r.code, Some(4), "{}", r.stderr);
    assert_one_line_error(&r, "unreadable dir");
    assert!(path.exists());
}
