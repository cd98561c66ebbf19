//! The `mlserve` command line: a thin layer over the library. The commands are in `cli/`;
//! this is the one place where a failed command becomes a message and an exit code.

mod cli;

use clap::Parser as _;
use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::run(cli::Cli::parse()) {
        Ok(code) => code,
        Err(failure) => failure.report(),
    }
}
