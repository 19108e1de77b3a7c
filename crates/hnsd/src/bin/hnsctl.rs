//! `hnsctl`: list, show and delete HNS objects. Flags only; the work is in `hnsd::ctl`.

use std::sync::Arc;

use clap::Parser;

fn main() {
    let args = hnsd::ctl::Args::parse();
    let client = match &args.socket {
        Some(p) => hcn::hnsd_client::HnsdClient::new(p),
        None => hcn::hnsd_client::HnsdClient::from_env(),
    };
    let hcn = hcn::Hcn::new(Arc::new(client));
    let mut out = std::io::stdout().lock();
    if let Err(e) = hnsd::ctl::run(&hcn, &args, &mut out) {
        eprintln!("hnsctl: {e}");
        std::process::exit(1);
    }
}
