//! The `explore` command line: parses arguments and turns library errors into
//! one-line messages and exit codes (2 for any error; `check` exits 1 on a
//! regression).

mod cli;

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
