//! `tasker-ring`: the project's one binary. Subcommands: `demo` (stream synthetic step events through a
//! region and report the rate). Later issues add the inspector and store commands.

#[cfg(not(loom))]
mod demo;

#[cfg(not(loom))]
use clap::{Parser, Subcommand};
#[cfg(not(loom))]
use std::process::ExitCode;

#[cfg(not(loom))]
#[derive(Parser)]
#[command(
    name = "tasker-ring",
    version,
    about = "Shared-memory rings between the tasker Rust worker and TS handlers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[cfg(not(loom))]
#[derive(Subcommand)]
enum Command {
    /// Stream synthetic tasker step events through a region and back as completions; print the rate.
    Demo(demo::DemoArgs),
}

#[cfg(not(loom))]
fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Demo(args) => demo::run(&args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tasker-ring: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Under `--cfg loom` the crate leaves out the mapped region, so the binary has nothing to run.
#[cfg(loom)]
fn main() {
    eprintln!("tasker-ring was built with --cfg loom for model checking; build it normally to run it");
}
