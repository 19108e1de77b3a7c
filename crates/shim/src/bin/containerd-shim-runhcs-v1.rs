//! The `containerd-shim-runhcs-v1` binary: flags in, exit code out; everything else is in
//! the `shim` library.

fn main() {
    std::process::exit(shim::cli::main());
}
