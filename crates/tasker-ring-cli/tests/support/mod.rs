//! Shared by the inspector's CLI tests (`cli_list_stat`, `cli_clean`, `cli_hostile`): temp dirs, the
//! built `tasker-ring` binary, a live region driven by two threads, a child process that creates a region
//! and dies, and small file-patching helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tasker_ring::{record_type, Consumer, MappedRing, Producer, Region, RegionConfig, RingId};
pub use tasker_test_support::region::*;

/// The `tasker-ring` binary cargo built for these tests.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tasker-ring"))
}

/// `tasker-ring ARGS...` with a timeout, so a blocking open (a FIFO) fails the test instead of hanging it.
pub fn cmd<I, S>(args: I) -> assert_cmd::Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut c = assert_cmd::Command::new(bin());
    c.args(args).timeout(Duration::from_secs(30));
    c
}

/// What one run of the binary did.
pub struct Run {
    /// Exit code (None: killed by a signal or the timeout).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `tasker-ring ARGS...` and collects what it did.
pub fn run<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out = cmd(args).output().expect("run tasker-ring");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `tasker-ring ARGS...`, requires exit 0, and parses stdout as JSON.
pub fn run_json<I, S>(args: I) -> serde_json::Value
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let r = run(args);
    assert_eq!(r.code, Some(0), "stderr: {}\nstdout: {}", r.stderr, r.stdout);
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.stdout))
}

/// The worker's side of a live region: it produces events and consumes completions.
pub struct WorkerSide {
    /// Producer of the events ring.
    pub events: Producer<MappedRing>,
    /// Consumer of the completions ring.
    pub completions: Consumer<MappedRing>,
}

/// The handler's side: it consumes events and produces completions.
pub struct HandlerSide {
    /// Consumer of the events ring.
    pub events: Consumer<MappedRing>,
    /// Producer of the completions ring.
    pub completions: Producer<MappedRing>,
}

type Job<S> = Box<dyn FnOnce(&mut S) + Send>;

/// One thread owning one side; it runs the jobs it is sent and touches the region only inside them, so
/// between jobs the side is paused.
struct Actor<S> {
    jobs: Option<mpsc::Sender<Job<S>>>,
    thread: Option<JoinHandle<()>>,
}

impl<S: 'static> Actor<S> {
    fn spawn(name: &str, make: impl FnOnce() -> S + Send + 'static) -> Self {
        let (tx, rx) = mpsc::channel::<Job<S>>();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let mut side = make();
                for job in rx {
                    job(&mut side);
                }
            })
            .unwrap();
        Self {
            jobs: Some(tx),
            thread: Some(thread),
        }
    }

    fn call<R: Send + 'static>(&self, f: impl FnOnce(&mut S) -> R + Send + 'static) -> R {
        self.call_async(f).recv().expect("side thread died")
    }

    fn call_async<R: Send + 'static>(&self, f: impl FnOnce(&mut S) -> R + Send + 'static) -> mpsc::Receiver<R> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.jobs
            .as_ref()
            .unwrap()
            .send(Box::new(move |s: &mut S| {
                let _ = tx.send(f(s));
            }))
            .expect("side thread gone");
        rx
    }
}

impl<S> Drop for Actor<S> {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Totals of a streaming run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Events published.
    pub frames: u64,
    /// Event payload bytes published.
    pub bytes: u64,
    /// Events consumed.
    pub frames_read: u64,
    /// Event payload bytes consumed.
    pub bytes_read: u64,
    /// Completions published.
    pub completions: u64,
    /// Completions consumed.
    pub completions_read: u64,
}

/// A streaming run in progress (see [`Live::start_streaming`]).
pub struct Streaming {
    worker: mpsc::Receiver<(u64, u64, u64)>,
    handler: mpsc::Receiver<(u64, u64, u64)>,
}

/// A region created by this process with a "worker" thread and a "handler" thread holding the four roles.
pub struct Live {
    /// The region file.
    pub path: PathBuf,
    /// The creator's handle.
    pub region: Arc<Region>,
    worker: Actor<WorkerSide>,
    handler: Actor<HandlerSide>,
    stop: Arc<AtomicBool>,
    worker_done: Arc<AtomicBool>,
}

impl Live {
    /// Creates the region at `path` and starts both sides (each takes its roles in its own thread).
    pub fn start(path: &Path, config: &RegionConfig) -> Self {
        let region = Arc::new(Region::create(path, config).expect("create region"));
        let r = Arc::clone(&region);
        let worker = Actor::spawn("worker", move || WorkerSide {
            events: r.producer(RingId::Events).unwrap(),
            completions: r.consumer(RingId::Completions).unwrap(),
        });
        let r = Arc::clone(&region);
        let handler = Actor::spawn("handler", move || HandlerSide {
            events: r.consumer(RingId::Events).unwrap(),
            completions: r.producer(RingId::Completions).unwrap(),
        });
        let live = Self {
            path: path.to_path_buf(),
            region,
            worker,
            handler,
            stop: Arc::new(AtomicBool::new(false)),
            worker_done: Arc::new(AtomicBool::new(false)),
        };
        // Wait until both sides hold their roles.
        live.worker(|_| ());
        live.handler(|_| ());
        live
    }

    /// Runs `f` on the worker thread and waits for it.
    pub fn worker<R: Send + 'static>(&self, f: impl FnOnce(&mut WorkerSide) -> R + Send + 'static) -> R {
        self.worker.call(f)
    }

    /// Runs `f` on the handler thread and waits for it.
    pub fn handler<R: Send + 'static>(&self, f: impl FnOnce(&mut HandlerSide) -> R + Send + 'static) -> R {
        self.handler.call(f)
    }

    /// Publishes one step event per payload size (payload bytes `b'a' + i % 26`), each all-or-nothing.
    pub fn publish(&self, sizes: &[usize]) {
        let sizes = sizes.to_vec();
        self.worker(move |w| {
            for (i, &n) in sizes.iter().enumerate() {
                let payload = vec![b'a' + (i % 26) as u8; n];
                w.events.try_write(record_type::STEP_EVENT, &payload).expect("publish");
            }
        });
    }

    /// The handler reads up to `max` events; returns how many.
    pub fn consume(&self, max: usize) -> usize {
        self.handler(move |h| h.events.read_batch(max, |_| {}).expect("read"))
    }

    /// Streams until [`Live::stop_streaming`]: the worker publishes events (heartbeating now and then)
    /// and drains completions; the handler reads events and answers each with a 48-byte completion.
    pub fn start_streaming(&self) -> Streaming {
        self.stop.store(false, Ordering::SeqCst);
        self.worker_done.store(false, Ordering::SeqCst);
        let (stop, done) = (Arc::clone(&self.stop), Arc::clone(&self.worker_done));
        let worker = self.worker.call_async(move |w| {
            let (mut frames, mut bytes, mut completions) = (0u64, 0u64, 0u64);
            while !stop.load(Ordering::SeqCst) {
                let n = 40 + (frames % 120) as usize;
                match w.events.try_write(record_type::STEP_EVENT, &vec![b'e'; n]) {
                    Ok(()) => {
                        frames += 1;
                        bytes += n as u64;
                        // No doorbell socket here: the handler never sleeps while streaming.
                        let _ = w.events.consumer_needs_wakeup();
                    }
                    Err(_) => std::thread::sleep(Duration::from_micros(200)),
                }
                completions += w.completions.read_batch(64, |_| {}).expect("read completions") as u64;
                if frames % 64 == 0 {
                    w.events.heartbeat();
                    w.completions.heartbeat();
                    std::thread::sleep(Duration::from_micros(500));
                }
            }
            done.store(true, Ordering::SeqCst);
            (frames, bytes, completions)
        });
        let done = Arc::clone(&self.worker_done);
        let handler = self.handler.call_async(move |h| {
            let (mut frames, mut bytes, mut answered) = (0u64, 0u64, 0u64);
            loop {
                // Loaded before reading: once the worker is done, an empty read means nothing is left.
                let finished = done.load(Ordering::SeqCst);
                let got = h
                    .events
                    .read_batch(32, |m| {
                        frames += 1;
                        bytes += m.payload.len() as u64;
                    })
                    .expect("read events");
                while answered < frames && !finished {
                    if h.completions.try_write(record_type::COMPLETION, &[b'c'; 48]).is_err() {
                        break;
                    }
                    answered += 1;
                }
                if got == 0 {
                    if finished {
                        break;
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
            (frames, bytes, answered)
        });
        Streaming { worker, handler }
    }

    /// Stops streaming and waits until both sides are paused, every event published has been read and
    /// every completion published has been drained; returns the totals.
    pub fn stop_streaming(&self, s: Streaming) -> Totals {
        self.stop.store(true, Ordering::SeqCst);
        let (frames, bytes, mut completions_read) = s.worker.recv().unwrap();
        let (frames_read, bytes_read, completions) = s.handler.recv().unwrap();
        completions_read += self.worker(|w| w.completions.read_batch(usize::MAX, |_| {}).unwrap() as u64);
        Totals {
            frames,
            bytes,
            frames_read,
            bytes_read,
            completions,
            completions_read,
        }
    }
}

/// Environment variables of the child that creates a region and dies.
pub const CHILD_PATH: &str = "TASKER_RING_CLI_CHILD_PATH";
/// "1": the child also takes the worker's roles and publishes an event before dying.
pub const CHILD_ROLES: &str = "TASKER_RING_CLI_CHILD_ROLES";

/// Body of the child: call from a `#[test]` named `child_creates_and_dies` in each test binary that uses
/// [`dead_region`]. Does nothing unless started by [`dead_region`].
pub fn child_body() {
    let Ok(path) = std::env::var(CHILD_PATH) else {
        return;
    };
    let path = PathBuf::from(path);
    let region = Region::create(&path, &small_config(0)).expect("child: create");
    // The worker binds its doorbell socket beside the region.
    let _sock = std::os::unix::net::UnixListener::bind(path.with_extension("sock")).expect("child: bind");
    if std::env::var(CHILD_ROLES).as_deref() == Ok("1") {
        let mut events = region.producer(RingId::Events).unwrap();
        let completions = region.consumer(RingId::Completions).unwrap();
        events.try_write(record_type::STEP_EVENT, b"{\"last\":true}").unwrap();
        // Dies holding its roles: no destructor runs, as in a crash.
        std::mem::forget((events, completions));
    }
    std::mem::forget(region);
    std::process::exit(0);
}

/// A region at `path` (with `<stem>.sock` beside it) whose creator was a child process that has exited
/// and been reaped, so its pid is gone. With `roles`, the dead child also held the worker's roles.
pub fn dead_region(path: &Path, roles: bool) {
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_creates_and_dies", "--nocapture", "--test-threads=1"])
        .env(CHILD_PATH, path)
        .env(CHILD_ROLES, if roles { "1" } else { "0" })
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "child failed: {status}");
    assert!(path.exists(), "the child created {}", path.display());
}

/// Runs `tasker-ring ARGS...` as `nobody` through `setpriv`.
pub fn run_as_nobody(prefix: &[String], args: &[&str]) -> Run {
    let mut c = assert_cmd::Command::new(&prefix[0]);
    c.args(&prefix[1..])
        .arg(bin())
        .args(args)
        .timeout(Duration::from_secs(30));
    let out = c.output().expect("run setpriv");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Asserts a failed run printed exactly one line on stderr, prefixed `tasker-ring: `, and no panic.
pub fn assert_one_line_error(r: &Run, what: &str) {
    assert!(!r.stderr.contains("panicked"), "{what}: panic: {}", r.stderr);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{what}: one line expected: {:?}", r.stderr);
    assert!(lines[0].starts_with("tasker-ring: "), "{what}: {:?}", lines[0]);
}
