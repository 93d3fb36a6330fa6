//! The `explore` command line: parses arguments and turns library errors into
//! one-line messages and exit codes (2 for any error; `check` exits 1 on a
//! regression).

mod cli;

/// BFV's polynomials are a few hundred KB each and come and go by the
/// thousand per layer: glibc's allocator hands each back to the kernel
/// and faults it in again (measured: 8 to 10 % of `he-bench` on one
/// thread), where mimalloc keeps freed pages for the next one.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli.run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
