//! `uvm-bootfiles`: builds the utility VM's boot files. See [`guest::bootfiles`].

use std::path::PathBuf;

use clap::Parser;
use guest::bootfiles::{self, kernel::Kernel, Base, Inputs};

/// Builds delta.tar.gz, initrd.img, rootfs.tar.gz, rootfs.vhd, rootfs-verity.vhd and the
/// uncompressed kernel, reproducibly (mtimes from SOURCE_DATE_EPOCH, else 0).
#[derive(Debug, Parser)]
#[command(name = "uvm-bootfiles", version)]
struct Args {
    /// Output directory.
    #[arg(long, short = 'o')]
    out: PathBuf,
    /// The static init binary.
    #[arg(long)]
    init: PathBuf,
    /// The static vsockexec binary.
    #[arg(long)]
    vsockexec: PathBuf,
    /// The static gcs binary.
    #[arg(long)]
    gcs: PathBuf,
    /// A base root filesystem (tar, tar.gz, cpio, cpio.gz); default: assembled from the
    /// build machine's busybox-static and runc.
    #[arg(long)]
    base: Option<PathBuf>,
    /// busybox for the default base.
    #[arg(long, default_value = "/bin/busybox")]
    busybox: PathBuf,
    /// runc for the default base.
    #[arg(long, default_value = "/usr/sbin/runc")]
    runc: PathBuf,
    /// Kernel release under /boot and /lib/modules; default: the newest installed one
    /// (Debian's linux-image-amd64), not the running one.
    #[arg(long)]
    kernel_release: Option<String>,
    /// Build the root filesystem only, without kernel or modules.
    #[arg(long)]
    no_kernel: bool,
    /// Kernel modules to include (with dependencies); default: what the VM sandbox needs.
    #[arg(long, value_delimiter = ',')]
    modules: Option<Vec<String>>,
}

fn run(a: Args) -> guest::Result<()> {
    let root = std::path::Path::new("/");
    let kernel = if a.no_kernel {
        None
    } else {
        Some(match &a.kernel_release {
            Some(r) => Kernel::at(root, r),
            None => Kernel::newest_installed(root)?,
        })
    };
    let inputs = Inputs {
        base: match a.base {
            Some(p) => Base::Archive(p),
            None => Base::Debian {
                busybox: a.busybox,
                runc: a.runc,
            },
        },
        init: a.init,
        vsockexec: a.vsockexec,
        gcs: a.gcs,
        kernel,
        modules: a.modules.unwrap_or_else(|| {
            bootfiles::kernel::VM_MODULES
                .iter()
                .map(|s| s.to_string())
                .collect()
        }),
        epoch: bootfiles::epoch_from_env()?,
        version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let built = bootfiles::build(&inputs, &a.out)?;
    for (name, size) in &built.files {
        println!("{:>12}  {}", size, a.out.join(name).display());
    }
    if let Some(r) = &built.kernel_release {
        println!("kernel {r}");
    }
    println!("dm-verity root hash {}", built.verity_root);
    Ok(())
}

fn main() -> std::process::ExitCode {
    match run(Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("uvm-bootfiles: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
