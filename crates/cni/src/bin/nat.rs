//! `nat`: the Windows CNI plugin of that name. The three plugins share one core
//! ([`cni`]); the configuration's `type` selects the network type, not this name.

fn main() {
    std::process::exit(cni::main());
}
