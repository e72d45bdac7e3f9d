//! `tasker-ring watch <region>`: a live view of one region, refreshed every `--interval` ms: per ring a
//! fill bar, positions, lag (unread frames and bytes), publish and consume rates, the sleeping flag, the
//! producer's counters and both peers with liveness and heartbeat age.
//!
//! Read-only like every inspector command: the region is mapped `PROT_READ` ([`super::open`]), the view only
//! loads control-block words ([`RegionView::snapshot`]), and the only other thing it does to the region is
//! `stat` its path on every refresh (to notice the file being removed, replaced or resized before reading
//! the mapping again). It takes no role and no lock.
//!
//! On a terminal it draws full-screen (raw mode, alternate screen; q, Esc or Ctrl-C quits; a guard restores
//! the terminal on every exit path, panics included). When stdout is not a terminal, or with `--plain`, it
//! prints one plain-text frame per refresh, frames separated by a blank line, and `--frames N` stops after
//! N refreshes. Drawing is a pure function, [`render`], of a [`Model`] built from two snapshots of the
//! control blocks and the time between them, so it is tested without a terminal.

use super::{human_age_ms, human_bytes, open, InspectError};
use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use crossterm::terminal::{self, ClearType};
use crossterm::{cursor, execute, queue, style};
use std::io::{self, IsTerminal, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tasker_ring::liveness::{now_unix_ms, Liveness, ProcessIdentity};
use tasker_ring::{AttachError, Layout, RegionView, RingId, RingSnapshot};

/// Width of a plain-text frame (pipes and logs have no terminal to ask).
const PLAIN_WIDTH: usize = 80;
/// Narrowest layout; a narrower terminal sees lines cut at its edge.
const MIN_WIDTH: usize = 40;

/// Arguments of `tasker-ring watch`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Region file to watch.
    pub region: PathBuf,
    /// Milliseconds between refreshes (10 ..= 3600000).
    #[arg(long, value_name = "MS", default_value_t = 500,
          value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
    pub interval: u64,
    /// Stop after N refreshes (default: until q is pressed; forever when stdout is not a terminal).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub frames: Option<u64>,
    /// Print plain-text frames even on a terminal (no raw mode, no alternate screen).
    #[arg(long)]
    pub plain: bool,
}

/// Runs the command.
pub fn run(args: &Args) -> Result<(), InspectError> {
    let mut watcher = Watcher::attach(&args.region, args.interval)?;
    if !args.plain && io::stdout().is_terminal() {
        run_terminal(&mut watcher, args)
    } else {
        run_plain(&mut watcher, args)
    }
}

// ---------------------------------------------------------------------------------------------------------
// The model and its rendering (pure).

/// One recorded process (a role holder or the creator) as the view shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Pid (0: none).
    pub pid: u32,
    /// Alive, dead (gone or pid reused) or absent (pid 0).
    pub liveness: Liveness,
    /// Age of its stamp in ms (heartbeat, or creation for the creator); `None` if never stamped.
    pub age_ms: Option<u64>,
}

impl Peer {
    fn observe(
        pid: u32,
        start_time: u64,
        stamp_unix_ms: u64,
        now_unix_ms: u64,
        judge: &dyn Fn(ProcessIdentity) -> Liveness,
    ) -> Self {
        Self {
            pid,
            liveness: match pid {
                0 => Liveness::Absent,
                _ => judge(ProcessIdentity { pid, start_time }),
            },
            // A stamp from the future (another host's clock, a clock step) shows as 0 ms.
            age_ms: (stamp_unix_ms != 0).then(|| now_unix_ms.saturating_sub(stamp_unix_ms)),
        }
    }
}

/// One ring: the latest snapshot, the previous one (for rates) and its peers.
#[derive(Clone, Debug, PartialEq)]
pub struct RingModel {
    /// Which ring.
    pub id: RingId,
    /// Data area size in bytes.
    pub capacity: u32,
    /// Control block words read at this refresh.
    pub now: RingSnapshot,
    /// The same words read at the previous refresh (`None` on the first one).
    pub before: Option<RingSnapshot>,
    /// Producer role holder.
    pub producer: Peer,
    /// Consumer role holder.
    pub consumer: Peer,
}

/// Frames and payload bytes per second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    /// Records per second.
    pub frames: f64,
    /// Payload bytes per second (frame headers and padding excluded).
    pub bytes: f64,
}

impl Rate {
    fn between(frames: (u64, u64), bytes: (u64, u64), elapsed: Duration) -> Self {
        let secs = elapsed.as_secs_f64();
        // Counters only grow; a smaller value (a different region under the path) counts as no progress.
        Self {
            frames: frames.1.saturating_sub(frames.0) as f64 / secs,
            bytes: bytes.1.saturating_sub(bytes.0) as f64 / secs,
        }
    }
}

impl RingModel {
    /// Bytes published and not yet consumed: `producer - consumer` (mod 2^32), headers and padding included.
    /// The two positions are loaded one after the other (producer first), so the consumer may have moved
    /// past the producer value read: that shows as 0. `None` when the distance is impossible either way
    /// (a corrupt position).
    pub fn used_bytes(&self) -> Option<u32> {
        let (p, c) = (self.now.producer_position, self.now.consumer_position);
        let used = p.wrapping_sub(c);
        if used <= self.capacity {
            Some(used)
        } else if c.wrapping_sub(p) <= self.capacity {
            Some(0)
        } else {
            None
        }
    }

    /// Records published and not yet consumed (`frames(producer) - frames(consumer)`, clamped at 0: the
    /// two counters are loaded one after the other).
    pub fn lag_frames(&self) -> u64 {
        self.now.frames.saturating_sub(self.now.frames_read)
    }

    /// Publish and consume rates since the previous refresh; `None` on the first refresh.
    pub fn rates(&self, elapsed: Option<Duration>) -> Option<(Rate, Rate)> {
        let (b, n) = (self.before?, &self.now);
        let elapsed = elapsed.filter(|e| !e.is_zero())?;
        Some((
            Rate::between((b.frames, n.frames), (b.bytes, n.bytes), elapsed),
            Rate::between((b.frames_read, n.frames_read), (b.bytes_read, n.bytes_read), elapsed),
        ))
    }
}

/// How a frame is drawn (not read from the region).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ViewOptions {
    /// Refresh number, from 1.
    pub refresh: u64,
    /// Requested time between refreshes.
    pub interval_ms: u64,
    /// Columns available; every rendered line fits.
    pub width: usize,
    /// Full-screen on a terminal (the footer names the keys).
    pub interactive: bool,
    /// Wall clock at this refresh, Unix ms (heartbeat and creation ages).
    pub now_unix_ms: u64,
}

/// Everything one frame shows.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    /// Region path as given.
    pub path: String,
    /// Layout major version.
    pub layout_major: u16,
    /// Layout minor version.
    pub layout_minor: u16,
    /// Region size in bytes.
    pub region_size: u64,
    /// The creating process; its `age_ms` is the region's age.
    pub creator: Peer,
    /// Events, then completions.
    pub rings: [RingModel; 2],
    /// Time between the previous snapshot and this one (`None` on the first refresh).
    pub elapsed: Option<Duration>,
    /// Drawing options.
    pub view: ViewOptions,
    /// A problem to show above everything (the region was removed, replaced or resized).
    pub alert: Option<String>,
}

impl Model {
    /// Builds a frame from the header, this refresh's snapshots of both rings, the previous refresh's
    /// snapshots with the time since them (`None` on the first refresh), and `judge`, which tells whether
    /// a recorded process lives ([`ProcessIdentity::liveness`]; tests pass a fixed answer).
    pub fn build(
        path: &Path,
        layout: &Layout,
        before: Option<(&[RingSnapshot; 2], Duration)>,
        now: &[RingSnapshot; 2],
        judge: &dyn Fn(ProcessIdentity) -> Liveness,
        view: ViewOptions,
    ) -> Self {
        let h = &layout.header;
        let t = view.now_unix_ms;
        let rings = RingId::ALL.map(|id| {
            let i = id.index();
            let s = now[i];
            RingModel {
                id,
                capacity: layout.rings[i].capacity,
                now: s,
                before: before.map(|(b, _)| b[i]),
                producer: Peer::observe(
                    s.producer.pid,
                    s.producer.start_time,
                    s.producer.heartbeat_unix_ms,
                    t,
                    judge,
                ),
                consumer: Peer::observe(
                    s.consumer.pid,
                    s.consumer.start_time,
                    s.consumer.heartbeat_unix_ms,
                    t,
                    judge,
                ),
            }
        });
        Self {
            path: path.display().to_string(),
            layout_major: h.layout_major,
            layout_minor: h.layout_minor,
            region_size: h.region_size,
            creator: Peer::observe(h.creator_pid, h.creator_start_time, h.created_at_unix_ms, t, judge),
            rings,
            elapsed: before.map(|(_, e)| e),
            view,
            alert: None,
        }
    }
}

/// Draws one frame: plain lines, none empty, none wider than `model.view.width` (at least 40) columns.
pub fn render(model: &Model) -> Vec<String> {
    let width = model.view.width.max(MIN_WIDTH);
    let mut out = Vec::new();
    out.push(format!("tasker-ring watch  {}", model.path));
    if let Some(alert) = &model.alert {
        wrap(&mut out, &format!("!! {alert}"), width);
    }
    out.push(format!(
        "region    layout {}.{}  size {}  creator {}  created {}",
        model.layout_major,
        model.layout_minor,
        human_bytes(model.region_size),
        peer_text(&model.creator),
        ago(model.creator.age_ms),
    ));
    for ring in &model.rings {
        render_ring(&mut out, ring, model.elapsed, width);
    }
    wrap(
        &mut out,
        "in flight: the region shows only unread frames (above); dispatch in-flight counts (read, not \
         completed) live in the worker: get_ffi_dispatch_metrics",
        width,
    );
    out.push(format!(
        "refresh {}, every {} ms | {}",
        model.view.refresh,
        model.view.interval_ms,
        if model.view.interactive {
            "q, Esc or Ctrl-C quits | read-only"
        } else {
            "read-only, one frame per refresh"
        }
    ));
    out.into_iter().map(|line| cut(line, width)).collect()
}

fn render_ring(out: &mut Vec<String>, ring: &RingModel, elapsed: Option<Duration>, width: usize) {
    let (s, cap) = (&ring.now, ring.capacity);
    let direction = match ring.id {
        RingId::Events => "Rust -> TS",
        RingId::Completions => "TS -> Rust",
    };
    out.push(format!(
        "{} ({direction})  capacity {}",
        ring.id.name(),
        human_bytes(cap as u64)
    ));

    let bar = width.saturating_sub(38).clamp(10, 60);
    let used = ring.used_bytes();
    out.push(match used {
        Some(used) => {
            let fraction = used as f64 / cap as f64;
            let mut filled = ((fraction * bar as f64).round() as usize).min(bar);
            if used > 0 && filled == 0 {
                filled = 1; // a non-empty ring never looks empty
            }
            format!(
                "  fill      [{}{}] {:5.1}%  {} used",
                "#".repeat(filled),
                ".".repeat(bar - filled),
                fraction * 100.0,
                human_bytes(used as u64)
            )
        }
        None => format!(
            "  fill      ?  positions inconsistent: producer {}, consumer {}",
            s.producer_position, s.consumer_position
        ),
    });
    out.push(format!(
        "  unread    {} frames  {}  (lag: published, not yet consumed)",
        group(ring.lag_frames()),
        used.map_or("?".to_string(), |u| human_bytes(u as u64))
    ));

    let rates = ring.rates(elapsed);
    let rate = |r: Option<Rate>| match r {
        Some(r) => format!(
            "{} frames/s {}/s",
            per_second(r.frames),
            human_bytes(r.bytes.round() as u64)
        ),
        None => "-/s (next refresh)".to_string(),
    };
    let offset = |pos: u32| pos as usize & (cap as usize - 1);
    let before = ring.before.as_ref();
    let delta = |f: fn(&RingSnapshot) -> u64| counter(f(s), before.map(f));
    out.push(format!(
        "  producer  {}   pos {} @{:#x}",
        peer_with_heartbeat(&ring.producer),
        s.producer_position,
        offset(s.producer_position)
    ));
    out.push(format!(
        "            published {}  total {} frames",
        rate(rates.map(|r| r.0)),
        count(s.frames),
    ));
    out.push(format!(
        "            doorbells {}  full-stalls {}  pads {}",
        delta(|x| x.doorbells),
        delta(|x| x.full_stalls),
        delta(|x| x.pads),
    ));
    out.push(format!(
        "  consumer  {}   pos {} @{:#x}",
        peer_with_heartbeat(&ring.consumer),
        s.consumer_position,
        offset(s.consumer_position)
    ));
    out.push(format!(
        "            consumed {}  total {} frames",
        rate(rates.map(|r| r.1)),
        count(s.frames_read),
    ));
    out.push(format!(
        "            sleeps {}  {}",
        delta(|x| x.sleeps),
        if s.consumer_sleeping != 0 {
            "SLEEPING (waits for a doorbell)"
        } else {
            "awake"
        }
    ));
}

fn peer_text(p: &Peer) -> String {
    match p.liveness {
        Liveness::Absent => "none".to_string(),
        Liveness::Alive => format!("pid {} alive", p.pid),
        Liveness::Dead => format!("pid {} DEAD", p.pid),
    }
}

fn peer_with_heartbeat(p: &Peer) -> String {
    match p.liveness {
        Liveness::Absent => "none (role free)".to_string(),
        _ => format!("{}  heartbeat {}", peer_text(p), ago(p.age_ms)),
    }
}

fn ago(age_ms: Option<u64>) -> String {
    match age_ms {
        None => "never".to_string(),
        age => format!("{} ago", human_age_ms(age)),
    }
}

/// A counter with its growth since the previous refresh: `12`, `12 (+3)`.
fn counter(now: u64, before: Option<u64>) -> String {
    match before.map(|b| now.saturating_sub(b)) {
        Some(d) if d > 0 => format!("{} (+{})", count(now), count(d)),
        _ => count(now),
    }
}

/// A total for people: exact (grouped) below ten million, then `12.3M`, `4.6G`.
fn count(n: u64) -> String {
    match n {
        0..=9_999_999 => group(n),
        10_000_000..=9_999_999_999 => format!("{:.1}M", n as f64 / 1e6),
        _ => format!("{:.1}G", n as f64 / 1e9),
    }
}

/// Digits grouped by thousands: `1,234,567`.
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// A per-second figure: one decimal below 10, whole and grouped above.
fn per_second(x: f64) -> String {
    if x < 10.0 {
        format!("{x:.1}")
    } else {
        group(x.round() as u64)
    }
}

/// Greedy word wrap into lines of at most `width` columns; continuation lines are indented by two.
fn wrap(out: &mut Vec<String>, text: &str, width: usize) {
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.trim().is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            out.push(std::mem::replace(&mut line, "  ".to_string()));
        }
        if !line.trim().is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.trim().is_empty() {
        out.push(line);
    }
}

/// Cuts a line to `width` characters (one column each: the view is ASCII apart from the path).
fn cut(line: String, width: usize) -> String {
    match line.char_indices().nth(width) {
        Some((at, _)) => line[..at].to_string(),
        None => line,
    }
}

// ---------------------------------------------------------------------------------------------------------
// Reading the region.

/// The file a path named when it was attached: `(device, inode)`.
type FileId = (u64, u64);

fn file_id(path: &Path) -> Option<FileId> {
    std::fs::symlink_metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// The attached region and the state kept between refreshes.
struct Watcher {
    view: RegionView,
    file: FileId,
    interval_ms: u64,
    refresh: u64,
    /// Last snapshots read while the file checked out, and when.
    last: [RingSnapshot; 2],
    last_at: Instant,
    /// The last frame built from them (shown again, under the alert, when a check fails).
    shown: Option<Model>,
}

impl Watcher {
    /// Attaches read-only and pins the file: the path must name the same inode before and after the
    /// attach, so later refreshes can tell "this region was replaced" from "this region".
    fn attach(path: &Path, interval_ms: u64) -> Result<Self, InspectError> {
        for _ in 0..5 {
            let before = file_id(path);
            let view = open(path)?;
            let after = file_id(path);
            if let (Some(file), true) = (after, before == after) {
                let last = Self::read(&view);
                return Ok(Self {
                    view,
                    file,
                    interval_ms,
                    refresh: 0,
                    last,
                    last_at: Instant::now(),
                    shown: None,
                });
            }
        }
        Err(InspectError::Io(format!(
            "{}: the region file keeps being replaced while attaching",
            path.display()
        )))
    }

    fn read(view: &RegionView) -> [RingSnapshot; 2] {
        RingId::ALL.map(|id| view.snapshot(id))
    }

    /// The path still names the attached file, at its full size; otherwise the error to exit with and
    /// what to tell the person watching. Checked before each read of the mapping: a file truncated under
    /// it would turn the read into a SIGBUS.
    fn check(&self) -> Result<(), (InspectError, String)> {
        let path = self.view.path();
        let size = self.view.layout().header.region_size;
        let shown = path.display();
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err((
                InspectError::Attach(AttachError::NotFound(path.to_path_buf())),
                format!("region removed: {shown} no longer exists (its worker stopped and unlinked it); last state read below"),
            )),
            Err(e) => Err((
                InspectError::Io(format!("{shown}: {e}")),
                format!("cannot check the region file: {e}"),
            )),
            Ok(m) if (m.dev(), m.ino()) != self.file => Err((
                InspectError::Attach(AttachError::NotFound(path.to_path_buf())),
                format!("region replaced: {shown} is now another file (the watched region was unlinked); run watch again to follow the new one"),
            )),
            Ok(m) if m.len() < size => Err((
                InspectError::Attach(AttachError::Truncated { needed: size, actual: m.len() }),
                format!("region truncated: the file has {} bytes, its header says {size}; not read again", m.len()),
            )),
            Ok(m) if m.len() > size => Err((
                InspectError::Attach(AttachError::SizeMismatch { header: size, file: m.len() }),
                format!("region size check failed: the file has {} bytes, its header says {size}", m.len()),
            )),
            Ok(_) => Ok(()),
        }
    }

    /// One refresh: check the file, read both control blocks, build the frame. On a failed check the
    /// frame is the last one drawn (the last state read, with its rates) under the alert, and the error
    /// is the exit status.
    fn tick(&mut self, width: usize, interactive: bool) -> Result<Model, (Box<Model>, InspectError)> {
        self.refresh += 1;
        let view = ViewOptions {
            refresh: self.refresh,
            interval_ms: self.interval_ms,
            width,
            interactive,
            now_unix_ms: now_unix_ms(),
        };
        let judge = |p: ProcessIdentity| p.liveness();
        let (path, layout) = (self.view.path(), self.view.layout());
        if let Err((error, alert)) = self.check() {
            let mut model = match self.shown.take() {
                Some(shown) => shown,
                // Failed at the first refresh: the snapshots read right after attaching.
                None => Model::build(path, layout, None, &self.last, &judge, view),
            };
            model.alert = Some(alert);
            model.view.width = width;
            return Err((Box::new(model), error));
        }
        let now = Self::read(&self.view);
        let at = Instant::now();
        let before = (self.refresh > 1).then(|| (&self.last, at.duration_since(self.last_at)));
        let model = Model::build(path, layout, before, &now, &judge, view);
        self.last = now;
        self.last_at = at;
        self.shown = Some(model.clone());
        Ok(model)
    }
}

/// When the next refresh is due: on the interval grid from `start`, skipping slots already missed.
fn next_due(start: Instant, interval: Duration, refresh: u64) -> Instant {
    let due = start + interval * refresh.min(u32::MAX as u64) as u32;
    due.max(Instant::now())
}

// ---------------------------------------------------------------------------------------------------------
// Plain mode: stdout is not a terminal.

fn run_plain(watcher: &mut Watcher, args: &Args) -> Result<(), InspectError> {
    let interval = Duration::from_millis(args.interval);
    let start = Instant::now();
    let mut out = io::stdout().lock();
    loop {
        let (model, failure) = match watcher.tick(PLAIN_WIDTH, false) {
            Ok(model) => (model, None),
            Err((model, error)) => (*model, Some(error)),
        };
        let written = write_frame(&mut out, &render(&model), model.view.refresh > 1);
        match written {
            // The reader went away (`watch ... | head`): nothing left to show.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(InspectError::Io(format!("stdout: {e}"))),
            Ok(()) => {}
        }
        if let Some(error) = failure {
            return Err(error);
        }
        if args.frames.is_some_and(|n| watcher.refresh >= n) {
            return Ok(());
        }
        std::thread::sleep(next_due(start, interval, watcher.refresh).saturating_duration_since(Instant::now()));
    }
}

fn write_frame(out: &mut impl Write, lines: &[String], separate: bool) -> io::Result<()> {
    if separate {
        writeln!(out)?;
    }
    for line in lines {
        writeln!(out, "{line}")?;
    }
    out.flush()
}

// ---------------------------------------------------------------------------------------------------------
// Full-screen mode.

/// Whether the terminal is in raw mode on the alternate screen (so restoring happens exactly once, from
/// whichever of the guard's drop and the panic hook gets there first).
static TERMINAL_TAKEN: AtomicBool = AtomicBool::new(false);

/// Leaves the alternate screen and raw mode, shows the cursor. Idempotent.
fn restore_terminal() {
    if TERMINAL_TAKEN.swap(false, Ordering::SeqCst) {
        let _ = execute!(io::stdout(), cursor::Show, terminal::LeaveAlternateScreen);
        let _ = terminal::disable_raw_mode();
    }
}

/// Raw mode and the alternate screen for as long as it lives; restored in `Drop` (normal return, `?`
/// errors, unwinding) and by a panic hook that runs before the panic message is printed, so the message
/// lands on the normal screen.
struct TerminalGuard;

impl TerminalGuard {
    fn enter() -> io::Result<Self> {
        terminal::enable_raw_mode()?;
        TERMINAL_TAKEN.store(true, Ordering::SeqCst);
        let guard = TerminalGuard;
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            previous(info);
        }));
        execute!(io::stdout(), terminal::EnterAlternateScreen, cursor::Hide)?;
        Ok(guard)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// q, Q, Esc and Ctrl-C quit (in raw mode Ctrl-C arrives as a key, not as SIGINT).
fn is_quit(event: &Event) -> bool {
    match event {
        Event::Key(KeyEvent {
            code,
            modifiers,
            kind: KeyEventKind::Press,
            ..
        }) => match code {
            KeyCode::Char('q') | KeyCode::Char('Q') | KeyCode::Esc => true,
            KeyCode::Char('c') | KeyCode::Char('C') => modifiers.contains(KeyModifiers::CONTROL),
            _ => false,
        },
        _ => false,
    }
}

/// Columns to draw in: one less than the terminal, so a full line never wraps or scrolls.
fn screen_width() -> usize {
    terminal::size()
        .map(|(cols, _)| (cols as usize).saturating_sub(1))
        .unwrap_or(PLAIN_WIDTH)
}

fn draw(out: &mut impl Write, lines: &[String]) -> io::Result<()> {
    let rows = terminal::size().map(|(_, rows)| rows as usize).unwrap_or(24).max(1);
    let shown = lines.len().min(rows);
    for (row, line) in lines.iter().take(shown).enumerate() {
        queue!(
            out,
            cursor::MoveTo(0, row as u16),
            style::Print(line),
            terminal::Clear(ClearType::UntilNewLine)
        )?;
    }
    if shown < rows {
        queue!(
            out,
            cursor::MoveTo(0, shown as u16),
            terminal::Clear(ClearType::FromCursorDown)
        )?;
    }
    out.flush()
}

fn terminal_error(e: io::Error) -> InspectError {
    InspectError::Io(format!("terminal: {e}"))
}

fn run_terminal(watcher: &mut Watcher, args: &Args) -> Result<(), InspectError> {
    let interval = Duration::from_millis(args.interval);
    let start = Instant::now();
    let mut out = io::stdout();
    let guard = TerminalGuard::enter().map_err(terminal_error)?;
    loop {
        let mut model = match watcher.tick(screen_width(), true) {
            Ok(model) => model,
            Err((model, error)) => {
                // Back on the normal screen, leave the last frame (with the alert) where it can be read.
                drop(guard);
                let _ = write_frame(&mut out, &render(&model), false);
                return Err(error);
            }
        };
        draw(&mut out, &render(&model)).map_err(terminal_error)?;
        if args.frames.is_some_and(|n| watcher.refresh >= n) {
            return Ok(());
        }
        let due = next_due(start, interval, watcher.refresh);
        loop {
            let left = due.saturating_duration_since(Instant::now());
            if left.is_zero() || !event::poll(left).map_err(terminal_error)? {
                break;
            }
            match event::read().map_err(terminal_error)? {
                ev if is_quit(&ev) => return Ok(()),
                Event::Resize(..) => {
                    model.view.width = screen_width();
                    draw(&mut out, &render(&model)).map_err(terminal_error)?;
                }
                _ => {}
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use tasker_ring::layout::{RegionHeader, RingDescriptor};
    use tasker_ring::PeerSnapshot;

    const NOW_MS: u64 = 1_700_000_000_000;

    fn layout(events: u32, completions: u32) -> Layout {
        let mut header: RegionHeader = bytemuck::Zeroable::zeroed();
        header.layout_major = 1;
        header.layout_minor = 0;
        header.region_size = 4096 + events as u64 + completions as u64;
        header.creator_pid = 4242;
        header.created_at_unix_ms = NOW_MS - 90_000;
        let ring = |ring_id, capacity| RingDescriptor {
            control_offset: 1024 * (ring_id as u64 + 1),
            data_offset: 4096,
            capacity,
            ring_id,
            initial_position: 0,
            reserved: 0,
        };
        Layout {
            header,
            rings: [ring(0, events), ring(1, completions)],
        }
    }

    fn snapshot(producer_position: u32, consumer_position: u32, frames: u64, frames_read: u64) -> RingSnapshot {
        let peer = |pid| PeerSnapshot {
            pid,
            start_time: 0,
            heartbeat_unix_ms: NOW_MS - 1_500,
        };
        RingSnapshot {
            producer_position,
            consumer_position,
            consumer_sleeping: 0,
            frames,
            bytes: frames * 100,
            pads: 0,
            full_stalls: 0,
            doorbells: 0,
            frames_read,
            bytes_read: frames_read * 100,
            sleeps: 0,
            producer: peer(4242),
            consumer: peer(4243),
        }
    }

    fn view(refresh: u64) -> ViewOptions {
        ViewOptions {
            refresh,
            interval_ms: 500,
            width: 80,
            interactive: true,
            now_unix_ms: NOW_MS,
        }
    }

    fn alive(_: ProcessIdentity) -> Liveness {
        Liveness::Alive
    }

    fn model(before: Option<(&[RingSnapshot; 2], Duration)>, now: &[RingSnapshot; 2], refresh: u64) -> Model {
        Model::build(
            Path::new("/dev/shm/w.ring"),
            &layout(4096, 1024),
            before,
            now,
            &alive,
            view(refresh),
        )
    }

    fn line<'a>(lines: &'a [String], ring: usize, starts: &str) -> &'a str {
        let heading = ["events (", "completions ("][ring];
        let from = lines.iter().position(|l| l.starts_with(heading)).expect("ring heading");
        lines[from + 1..]
            .iter()
            .find(|l| l.starts_with(starts))
            .unwrap_or_else(|| panic!("no line {starts:?} in ring {ring}: {lines:#?}"))
    }

    #[test]
    fn fill_bar_lag_and_capacity_of_each_ring() {
        let now = [snapshot(1024, 0, 10, 0), snapshot(0, 0, 0, 0)];
        let lines = render(&model(None, &now, 1));
        assert_eq!(lines[0], "tasker-ring watch  /dev/shm/w.ring");
        assert!(
            lines.iter().any(|l| l == "events (Rust -> TS)  capacity 4.0 KiB"),
            "{lines:#?}"
        );
        assert!(lines.iter().any(|l| l == "completions (TS -> Rust)  capacity 1.0 KiB"));
        let fill = line(&lines, 0, "  fill");
        let bar = &fill[fill.find('[').unwrap() + 1..fill.find(']').unwrap()];
        assert_eq!(bar.len(), 42, "80 columns leave a 42-column bar");
        assert_eq!(bar.matches('#').count(), 11, "a quarter full");
        assert!(fill.ends_with(" 25.0%  1.0 KiB used"), "{fill}");
        assert!(line(&lines, 0, "  unread").starts_with("  unread    10 frames  1.0 KiB  (lag"));
        assert!(line(&lines, 1, "  fill").contains("  0.0%  0 B used"));
        assert!(!line(&lines, 1, "  fill").contains('#'));
    }

    #[test]
    fn first_refresh_has_no_rates_later_ones_do() {
        let first = [snapshot(0, 0, 1000, 900), snapshot(0, 0, 0, 0)];
        let lines = render(&model(None, &first, 1));
        assert_eq!(
            line(&lines, 0, "            published"),
            "            published -/s (next refresh)  total 1,000 frames"
        );

        let second = [snapshot(0, 0, 1500, 1400), snapshot(0, 0, 5, 0)];
        let m = model(Some((&first, Duration::from_millis(500))), &second, 2);
        let lines = render(&m);
        assert_eq!(
            lines.last().unwrap(),
            "refresh 2, every 500 ms | q, Esc or Ctrl-C quits | read-only"
        );
        assert_eq!(
            line(&lines, 0, "            published"),
            "            published 1,000 frames/s 97.7 KiB/s  total 1,500 frames"
        );
        assert_eq!(
            line(&lines, 0, "            consumed"),
            "            consumed 1,000 frames/s 97.7 KiB/s  total 1,400 frames"
        );
        assert_eq!(
            line(&lines, 1, "            published"),
            "            published 10 frames/s 1000 B/s  total 5 frames"
        );
        assert!(line(&lines, 1, "            consumed").starts_with("            consumed 0.0 frames/s 0 B/s"));
        // Counters that went backwards (never in one region) read as no progress, not as a huge rate.
        let m = model(Some((&second, Duration::from_millis(500))), &first, 3);
        assert!(line(&render(&m), 0, "            published").contains("published 0.0 frames/s 0 B/s"));
    }

    #[test]
    fn lag_across_the_u32_wrap_and_racing_or_corrupt_positions() {
        let ring =
            |p, c, frames, read| model(None, &[snapshot(p, c, frames, read), snapshot(0, 0, 0, 0)], 1).rings[0].clone();
        assert_eq!(ring(8, u32::MAX - 7, 2, 0).used_bytes(), Some(16), "wraps at 2^32");
        assert_eq!(ring(4096, 0, 0, 0).used_bytes(), Some(4096), "exactly full");
        // Consumer loaded after it moved past the producer value loaded: nothing unread, not 4 GiB.
        assert_eq!(ring(64, 128, 3, 5).used_bytes(), Some(0));
        assert_eq!(ring(64, 128, 3, 5).lag_frames(), 0);
        assert_eq!(
            ring(1 << 20, 0, 0, 0).used_bytes(),
            None,
            "more than the capacity either way"
        );
        let lines = render(&model(None, &[snapshot(1 << 20, 0, 0, 0), snapshot(0, 0, 0, 0)], 1));
        assert!(line(&lines, 0, "  fill").ends_with("  ?  positions inconsistent: producer 1048576, consumer 0"));
        assert!(line(&lines, 0, "  unread").starts_with("  unread    0 frames  ?  "));
    }

    #[test]
    fn peers_positions_counters_and_sleeping() {
        let mut now = [snapshot(4104, 4096, 7, 6), snapshot(0, 0, 0, 0)];
        let mut before = now;
        now[0].doorbells = 5;
        before[0].doorbells = 2;
        now[0].pads = 1;
        before[0].pads = 1;
        now[0].consumer_sleeping = 1;
        now[0].sleeps = 9;
        now[1].producer = PeerSnapshot {
            pid: 0,
            start_time: 0,
            heartbeat_unix_ms: 0,
        };
        now[1].consumer.heartbeat_unix_ms = 0;
        let judge = |p: ProcessIdentity| if p.pid == 4243 { Liveness::Dead } else { Liveness::Alive };
        let mut m = Model::build(
            Path::new("r.ring"),
            &layout(4096, 1024),
            Some((&before, Duration::from_secs(1))),
            &now,
            &judge,
            view(2),
        );
        m.view.width = 120;
        let lines = render(&m);
        assert_eq!(
            line(&lines, 0, "  producer"),
            "  producer  pid 4242 alive  heartbeat 1.5 s ago   pos 4104 @0x8"
        );
        assert_eq!(
            line(&lines, 0, "  consumer"),
            "  consumer  pid 4243 DEAD  heartbeat 1.5 s ago   pos 4096 @0x0"
        );
        assert_eq!(
            line(&lines, 0, "            doorbells"),
            "            doorbells 5 (+3)  full-stalls 0  pads 1"
        );
        assert_eq!(
            line(&lines, 0, "            sleeps"),
            "            sleeps 9 (+9)  SLEEPING (waits for a doorbell)"
        );
        assert_eq!(line(&lines, 1, "            sleeps"), "            sleeps 0  awake");
        assert!(line(&lines, 1, "  producer").starts_with("  producer  none (role free)   pos 0 @0x0"));
        assert!(line(&lines, 1, "  consumer").contains("pid 4243 DEAD  heartbeat never"));
        assert_eq!(
            lines[1],
            "region    layout 1.0  size 9.0 KiB  creator pid 4242 alive  created 1 min ago"
        );
    }

    #[test]
    fn every_line_fits_none_is_empty_and_the_footer_says_where_dispatch_counts_live() {
        let now = [
            snapshot(u32::MAX - 7, u32::MAX - 7, u64::MAX / 3, 0),
            snapshot(0, 0, 0, 0),
        ];
        for width in [20, 40, 60, 80, 132] {
            let mut m = model(None, &now, 1);
            m.view.width = width;
            m.alert =
                Some("region removed: /dev/shm/w.ring no longer exists (its worker stopped and unlinked it)".into());
            let lines = render(&m);
            for l in &lines {
                assert!(l.chars().count() <= width.max(MIN_WIDTH), "{width}: {l:?}");
                assert!(!l.trim().is_empty(), "{width}: empty line in {lines:#?}");
            }
            assert!(lines[1].starts_with("!! region removed"), "the alert comes first");
            let text = lines.join(" ");
            assert!(text.contains("get_ffi_dispatch_metrics"), "{width}: {text}");
        }
        let mut m = model(None, &now, 1);
        assert!(render(&m)
            .last()
            .unwrap()
            .ends_with("q, Esc or Ctrl-C quits | read-only"));
        m.view.interactive = false;
        assert!(!render(&m).last().unwrap().contains("quits"));
        assert!(
            !render(&m).iter().any(|l| l.starts_with("!!")),
            "no alert, no alert line"
        );
    }

    #[test]
    fn formatting_helpers() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(1_234_567), "1,234,567");
        assert_eq!(per_second(0.0), "0.0");
        assert_eq!(per_second(2.54), "2.5");
        assert_eq!(per_second(12_345.6), "12,346");
        assert_eq!(counter(5, None), "5");
        assert_eq!(counter(5, Some(5)), "5");
        assert_eq!(counter(5, Some(2)), "5 (+3)");
        assert_eq!(counter(25_000_000, Some(2)), "25.0M (+25.0M)");
        assert_eq!(count(9_999_999), "9,999,999");
        assert_eq!(count(864_012_345), "864.0M");
        assert_eq!(count(12_345_678_901), "12.3G");
        assert_eq!(cut("abcdef".into(), 4), "abcd");
        assert_eq!(cut("abc".into(), 4), "abc");
        let mut out = Vec::new();
        wrap(&mut out, "aaa bbb ccc ddd", 8);
        assert_eq!(out, ["aaa bbb", "  ccc", "  ddd"]);
    }

    #[test]
    fn quit_keys() {
        let key = |code, modifiers| Event::Key(KeyEvent::new(code, modifiers));
        assert!(is_quit(&key(KeyCode::Char('q'), KeyModifiers::NONE)));
        assert!(is_quit(&key(KeyCode::Esc, KeyModifiers::NONE)));
        assert!(is_quit(&key(KeyCode::Char('c'), KeyModifiers::CONTROL)));
        assert!(!is_quit(&key(KeyCode::Char('c'), KeyModifiers::NONE)));
        assert!(!is_quit(&key(KeyCode::Char('x'), KeyModifiers::NONE)));
        let mut release = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE);
        release.kind = KeyEventKind::Release;
        assert!(!is_quit(&Event::Key(release)));
        assert!(!is_quit(&Event::Resize(80, 24)));
    }
}
