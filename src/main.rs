//! The `mlserve` command line: a thin layer over the library. The commands are in `cli/`;
//! this is the one place where a failed command becomes a message and an exit code.

mod cli;

use clap::Parser as _;
use std::process::ExitCode;

// mimalloc rather than glibc's malloc: a prediction request makes a few dozen small
// allocations, freed on whichever worker thread finishes it; glibc spent ~10% of the server's
// CPU in malloc and free under load, and all of its futex calls (see README, Serving
// performance). Built without transparent huge pages (`no_thp`): with them, resident memory
// under a 256-connection soak rose from 44 to 76 MiB, for no measurable speed.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match cli::run(cli::Cli::parse()) {
        Ok(code) => code,
        Err(failure) => failure.report(),
    }
}
