//! `init`: PID 1 of the utility VM. See [`guest::init`].

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The VHD boot modes' first stage (from the boot initrd): mount the root and exec its
    // init; returns at once otherwise.
    if let Err(e) = guest::init::root::switch_if_asked(&args) {
        eprintln!("init: mounting the root filesystem: {e}");
        guest::sys::exit(1);
    }
    let opts = match guest::init::parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("init: {e}");
            guest::sys::exit(2);
        }
    };
    match guest::init::run(&opts) {
        Ok(code) => guest::sys::exit(code),
        Err(e) => {
            eprintln!("init: {e}");
            guest::sys::exit(1);
        }
    }
}
