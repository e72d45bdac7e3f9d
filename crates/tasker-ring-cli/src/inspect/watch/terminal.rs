//! Writing `watch` frames out, refresh after refresh: plain text when stdout is not a terminal (or with
//! `--plain`), otherwise full-screen (raw mode, the alternate screen, q, Esc or Ctrl-C to quit).

use super::model::Watcher;
use super::render::render;
use super::Args;
use crate::inspect::InspectError;
use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use crossterm::terminal::{self, ClearType};
use crossterm::{cursor, execute, queue, style};
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Width of a plain-text frame (pipes and logs have no terminal to ask).
const PLAIN_WIDTH: usize = 80;

/// When the next refresh is due: on the interval grid from `start`, skipping slots already missed.
fn next_due(start: Instant, interval: Duration, refresh: u64) -> Instant {
    let due = start + interval * refresh.min(u32::MAX as u64) as u32;
    due.max(Instant::now())
}

// ---------------------------------------------------------------------------------------------------------
// Plain mode: stdout is not a terminal.

pub(super) fn run_plain(watcher: &mut Watcher, args: &Args) -> Result<(), InspectError> {
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

pub(super) fn run_terminal(watcher: &mut Watcher, args: &Args) -> Result<(), InspectError> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
