//! `vsockexec`: runs a program with its stdio on host vsock ports. See [`guest::vsockexec`].

use guest::vsock::Vsock;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match guest::vsockexec::parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("vsockexec: {e}");
            std::process::exit(2);
        }
    };
    if opts.relay {
        match guest::vsockexec::relay(&opts, &Vsock) {
            Ok(code) => std::process::exit(code),
            Err(e) => {
                eprintln!("vsockexec: {e}");
                std::process::exit(1);
            }
        }
    }
    let e = guest::vsockexec::exec(&opts, &Vsock);
    eprintln!("vsockexec: {e}");
    std::process::exit(1);
}
