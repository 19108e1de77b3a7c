//! `init`: PID 1 of the utility VM. See [`guest::init`].

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match guest::init::parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("init: {e}");
            std::process::exit(2);
        }
    };
    match guest::init::run(&opts) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("init: {e}");
            std::process::exit(1);
        }
    }
}
