//! `tasker-ring`: the project's command-line tool. Subcommands: `demo` (stream synthetic step events through a
//! region and report the rate) and the read-only inspector (`list`, `stat`, `dump`, `tail`, `watch`,
//! `clean`), and `store` (`enqueue`, `status`, `retry`, `verify` against the step store).

mod demo;
mod inspect;
mod store;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "tasker-ring",
    version,
    about = "Shared-memory rings between the tasker Rust worker and TS handlers",
    after_help = "Inspector exit codes: 0 ok, 1 I/O error, 2 usage, 3 no such region, 4 permission denied, \
5 not a region file, 6 unsupported layout version, 7 truncated or corrupt region, 8 region not ready, 9 corrupt frames. \
Store exit codes: `tasker-ring store --help`."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Stream synthetic tasker step events through a region and back as completions; print the rate.
    Demo(demo::DemoArgs),
    /// Every region in a directory: creator, alive or dead, version, size, fill of each ring.
    List(inspect::list::Args),
    /// One region in detail: header, versions, per-ring positions, lag, fill, peers, counters, rates.
    Stat(inspect::stat::Args),
    /// Decode the unconsumed frames of a ring without consuming them.
    Dump(inspect::dump::Args),
    /// Follow new frames as they are published, with a rate line.
    Tail(inspect::tail::Args),
    /// A live full-screen view: fill bars, rates, lag, heartbeat ages; q quits.
    Watch(inspect::watch::Args),
    /// Remove regions whose creator is dead; never a live one; explains each decision.
    Clean(inspect::clean::Args),
    /// The step store: enqueue tasks from a template, count tasks and steps by state, retry steps in error, check finished tasks against the reference math.
    Store(store::StoreArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let inspected = match cli.command {
        Command::Demo(args) => {
            return match demo::run(&args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("tasker-ring: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Command::Store(args) => return store::main(args),
        Command::List(args) => (None, inspect::list::run(&args)),
        Command::Stat(args) => (Some(args.region.clone()), inspect::stat::run(&args)),
        // A bare worker id names `<default dir>/<id>.ring`, as for `stat`.
        Command::Dump(mut args) => {
            args.region = inspect::stat::resolve(&args.region, None);
            (Some(args.region.clone()), inspect::dump::run(&args))
        }
        Command::Tail(mut args) => {
            args.region = inspect::stat::resolve(&args.region, None);
            (Some(args.region.clone()), inspect::tail::run(&args))
        }
        Command::Watch(mut args) => {
            args.region = inspect::stat::resolve(&args.region, None);
            (Some(args.region.clone()), inspect::watch::run(&args))
        }
        Command::Clean(args) => (None, inspect::clean::run(&args)),
    };
    match inspected {
        (_, Ok(())) => ExitCode::SUCCESS,
        (region, Err(e)) => {
            // One line that names the file, also for the attach errors that do not carry a path.
            match region.filter(|_| e.needs_path()) {
                Some(path) => eprintln!("tasker-ring: {}: {e}", path.display()),
                None => eprintln!("tasker-ring: {e}"),
            }
            ExitCode::from(e.exit_code())
        }
    }
}
