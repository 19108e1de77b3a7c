//! `runhcs`: parses the command line and runs it.

use clap::Parser;

fn main() {
    let args = runhcs::cli::normalize(std::env::args());
    let cli = match runhcs::cli::Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            std::process::exit(if e.use_stderr() { 2 } else { 0 });
        }
    };
    std::process::exit(runhcs::main_with(cli));
}
