//! The `mlserve` command line: a thin layer over the library. The commands are in `cli/`;
//! this is the one place where a failed command becomes a message and an exit code.

mod cli;

use clap::Parser as _;
use std::process::ExitCode;

// mimalloc rather than glibc's malloc: a prediction request makes a few dozen small
// allocations, freed on whichever worker thread finishes it; glibc spent ~10% of the server's
// CPU in malloc and free under load (see README, Serving performance).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match cli::run(cli::Cli::parse()) {
        Ok(code) => code,
        Err(failure) => failure.report(),
    }
}
