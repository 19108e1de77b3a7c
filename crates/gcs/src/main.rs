//! `gcs`: the Linux guest compute service. Parses the reference's flags and runs the agent.

use std::process::ExitCode;

fn main() -> ExitCode {
    let opts = match gcs::cli::Options::parse_go(std::env::args()) {
        Ok(o) => o,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match gcs::agent::run(opts) {
        Ok(gcs::agent::Exit::Shutdown) => ExitCode::SUCCESS,
        Ok(gcs::agent::Exit::StdioClosed(reason)) => {
            eprintln!("gcs: the stdio bridge ended: {reason}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("gcs: {e}");
            ExitCode::from(1)
        }
    }
}
