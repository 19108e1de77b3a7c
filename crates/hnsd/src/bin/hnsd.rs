//! `hnsd`: the HNS service for Linux. Flags, logging and signals only; the work is in the
//! library.

use std::path::PathBuf;

use clap::Parser;
use nix::sys::signal::{SigSet, Signal};

/// hnsd's flags.
#[derive(Debug, Parser)]
#[command(name = "hnsd", about = "An HNS (Host Network Service) for Linux")]
struct Args {
    /// The socket clients connect to (they find it through HNSD_SOCKET).
    #[arg(long, default_value = hnsd::daemon::DEFAULT_SOCKET)]
    socket: PathBuf,
    /// The state directory.
    #[arg(long, default_value = hnsd::daemon::DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
    /// Where created network namespaces are pinned.
    #[arg(long, default_value = hnsd::daemon::DEFAULT_NETNS_DIR)]
    netns_dir: PathBuf,
    /// Work in this network namespace instead of the process's.
    #[arg(long)]
    netns: Option<PathBuf>,
    /// Keep objects only; touch no links, namespaces or rules.
    #[arg(long)]
    no_dataplane: bool,
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HNSD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    // Block the stop signals before any thread starts, so every thread inherits the mask
    // and the main thread receives them with sigwait.
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGINT);
    if let Err(e) = signals.thread_block() {
        eprintln!("hnsd: block signals: {e}");
        std::process::exit(1);
    }
    let config = hnsd::Config {
        socket: args.socket,
        state_dir: args.state_dir,
        netns_dir: args.netns_dir,
        netns: args.netns,
        dataplane: !args.no_dataplane,
    };
    let daemon = match hnsd::Daemon::start(&config) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("hnsd: {e}");
            std::process::exit(1);
        }
    };
    match signals.wait() {
        Ok(sig) => tracing::info!(signal = ?sig, "stopping"),
        Err(e) => tracing::error!(error = %e, "sigwait failed; stopping"),
    }
    daemon.stop();
}
