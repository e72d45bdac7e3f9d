//! `tasker-ring`: the project's one binary. Subcommands: `demo` (stream synthetic step events through a
//! region and report the rate). Later issues add the inspector and store commands.

mod demo;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

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

#[derive(Subcommand)]
enum Command {
    /// Stream synthetic tasker step events through a region and back as completions; print the rate.
    Demo(demo::DemoArgs),
}

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
