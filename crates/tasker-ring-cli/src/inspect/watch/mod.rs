//! `tasker-ring watch <region>`: a live view of one region, refreshed every `--interval` ms: per ring a
//! fill bar, positions, lag (unread frames and bytes), publish and consume rates, the sleeping flag, the
//! producer's counters and both peers with liveness and heartbeat age.
//!
//! Read-only like every inspector command: the region is mapped `PROT_READ` ([`super::open`]), the view only
//! loads control-block words ([`tasker_ring::RegionView::snapshot`]), and the only other thing it does to the region is
//! `stat` its path on every refresh (to notice the file being removed, replaced or resized before reading
//! the mapping again). It takes no role and no lock.
//!
//! On a terminal it draws full-screen (raw mode, alternate screen; q, Esc or Ctrl-C quits; a guard restores
//! the terminal on every exit path, panics included). When stdout is not a terminal, or with `--plain`, it
//! prints one plain-text frame per refresh, frames separated by a blank line, and `--frames N` stops after
//! N refreshes. Drawing is a pure function, [`render::render`], of a [`model::Model`] built from two
//! snapshots of the control blocks and the time between them, so it is tested without a terminal.
//!
//! The parts: [`model`] reads the region and computes what a frame shows, [`render`] draws a frame as
//! lines of text, [`terminal`] writes frames out (plain, or full-screen with raw mode and keys) in the
//! refresh loop.

mod model;
mod render;
mod terminal;

use super::InspectError;
use model::Watcher;
use std::io::{self, IsTerminal};
use std::path::PathBuf;
use terminal::{run_plain, run_terminal};

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
