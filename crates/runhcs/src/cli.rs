//! The command line, spelled as the reference's (shim-cni.md §1.10). urfave/cli accepts
//! `-flag` as well as `--flag`; [`normalize`] rewrites single-dash long flags before clap.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// runhcs: run containers through the LCOW stack (the Linux local sandbox).
#[derive(Debug, Parser)]
#[command(name = "runhcs", version, about)]
pub struct Cli {
    /// Enable debug output in the log.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Log file ("" or "nul": no log).
    #[arg(long, global = true, default_value = "")]
    pub log: String,
    /// Log format: text or json.
    #[arg(long = "log-format", global = true, default_value = "text")]
    pub log_format: String,
    /// Owner recorded with each container.
    #[arg(long, global = true, default_value = "runhcs")]
    pub owner: String,
    /// State root: a name under /run/runhcs, or an absolute path.
    #[arg(long, global = true, default_value = "default")]
    pub root: String,
    /// The GCS binary run by the local sandbox (default: `gcs` beside runhcs, else on PATH).
    #[arg(long = "gcs", global = true, env = "RUNHCS_GCS")]
    pub gcs: Option<PathBuf>,
    /// Extra arguments for the GCS, space separated.
    #[arg(
        long = "gcs-args",
        global = true,
        env = "RUNHCS_GCS_ARGS",
        default_value = ""
    )]
    pub gcs_args: String,
    /// Speak the bridge over the GCS's stdin/stdout (`-use-inouterr`).
    #[arg(long = "gcs-use-inouterr", global = true)]
    pub gcs_use_inouterr: bool,
    /// What hosts each container's GCS: `local` (a child process in its own namespaces) or
    /// `vm` (a QEMU utility VM booted from the boot files; see `--boot-files`).
    #[arg(
        long = "sandbox",
        global = true,
        env = "RUNHCS_SANDBOX",
        default_value = "local"
    )]
    pub sandbox: String,
    /// Directory of the utility VM's boot files. Linux, `--sandbox vm`: `vmlinux` and
    /// `initrd.img` (default: `$HCSSHIM_UVM_BOOTFILES`, else /usr/local/share/hcsshim-rs/uvm;
    /// build them with scripts/build-bootfiles.sh). Windows: the kernel and `initrd.img` or
    /// `rootfs.vhd` (default `%ProgramFiles%\Linux Containers`).
    #[arg(long = "boot-files", global = true, env = "RUNHCS_BOOT_FILES")]
    pub boot_files: Option<PathBuf>,
    /// Linux, `--sandbox vm`: where the utility VM's root filesystem comes from. `initrd`:
    /// `initrd.img` is the whole root. `vhd`: `rootfs.vhd` on a read-only SCSI disk
    /// (`root=/dev/sda ro`), mounted by `boot-initrd.img`. `verity-vhd`: `rootfs-verity.vhd`
    /// through dm-verity (`root=/dev/dm-0 dm-mod.create=…`, root hash from
    /// `rootfs-verity.info`), so every block read is checked against the root hash.
    #[arg(
        long = "boot-mode",
        global = true,
        env = "RUNHCS_BOOT_MODE",
        default_value = "initrd",
        value_parser = ["initrd", "vhd", "verity-vhd"]
    )]
    pub boot_mode: String,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Flags of `create` (and `run`).
#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    /// Container id.
    pub id: String,
    /// Path to the OCI bundle.
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// Write the container's (shim's) pid here.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Path of the shim's log (default: shim.log in the container's state dir).
    #[arg(long = "shim-log")]
    pub shim_log: Option<PathBuf>,
    /// Path of the VM's log (accepted; the local sandbox logs to its state dir).
    #[arg(long = "vm-log")]
    pub vm_log: Option<PathBuf>,
    /// VM console pipe (accepted; the local sandbox has no console).
    #[arg(long = "vm-console")]
    pub vm_console: Option<PathBuf>,
    /// Process isolation on the host (not supported: every container gets a sandbox).
    #[arg(long)]
    pub host: bool,
}

/// Flags of `exec`.
#[derive(Debug, Clone, Args)]
pub struct ExecArgs {
    /// Container id.
    pub id: String,
    /// Command and arguments (unless `--process`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
    /// Working directory.
    #[arg(long)]
    pub cwd: Option<String>,
    /// Extra environment (`KEY=VALUE`), repeatable.
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Allocate a terminal.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// User `uid[:gid]`.
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// An OCI process.json instead of the command line.
    #[arg(short = 'p', long)]
    pub process: Option<PathBuf>,
    /// Do not wait for the process.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Write the process's pid here.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Accepted for compatibility (the shim logs to its state dir).
    #[arg(long = "shim-log")]
    pub shim_log: Option<PathBuf>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a container (its init process waits for `start`).
    Create(CreateArgs),
    /// Create and start a container; without --detach wait for it and exit with its code.
    Run {
        /// Create flags.
        #[command(flatten)]
        create: CreateArgs,
        /// Return once the container is started.
        #[arg(short = 'd', long)]
        detach: bool,
    },
    /// Start a created container.
    Start {
        /// Container id.
        id: String,
    },
    /// Run a process in a running container.
    Exec(ExecArgs),
    /// Send a signal to the container's init process.
    Kill {
        /// Container id.
        id: String,
        /// Signal name or number (default TERM).
        signal: Option<String>,
        /// Signal every process of the container.
        #[arg(short = 'a', long)]
        all: bool,
    },
    /// Delete a container.
    Delete {
        /// Container id.
        id: String,
        /// Kill a running container first; succeed if it does not exist.
        #[arg(short = 'f', long)]
        force: bool,
    },
    /// List containers.
    List {
        /// table or json.
        #[arg(short = 'f', long, default_value = "table")]
        format: String,
        /// Print only ids.
        #[arg(short = 'q', long)]
        quiet: bool,
    },
    /// Print a container's state as JSON.
    State {
        /// Container id.
        id: String,
    },
    /// List a container's processes.
    Ps {
        /// Container id.
        id: String,
        /// table or json.
        #[arg(short = 'f', long, default_value = "table")]
        format: String,
    },
    /// Pause a container (not supported by the local sandbox).
    Pause {
        /// Container id.
        id: String,
    },
    /// Resume a container (not supported by the local sandbox).
    Resume {
        /// Container id.
        id: String,
    },
    /// Resize a process's terminal.
    ResizeTty {
        /// Container id.
        id: String,
        /// Columns (1..65535).
        width: u16,
        /// Rows (1..65535).
        height: u16,
        /// The process (default: init).
        #[arg(short = 'p', long)]
        pid: Option<u32>,
    },
    /// Create an ext4 scratch VHDX (needs a Windows utility VM: not supported).
    CreateScratch {
        /// Destination.
        #[arg(long)]
        destpath: Option<PathBuf>,
        /// Size.
        #[arg(long = "sizeGB")]
        size_gb: Option<u32>,
        /// Cache.
        #[arg(long = "cache-path")]
        cache_path: Option<PathBuf>,
        /// Use virtual memory.
        #[arg(long = "use-virtual-memory")]
        use_virtual_memory: bool,
    },
    /// Format a pass-through disk (needs a Windows utility VM: not supported).
    PrepareDisk {
        /// Destination.
        #[arg(long)]
        destpath: Option<PathBuf>,
    },
    /// The per-container shim (internal).
    #[command(hide = true)]
    Shim(ShimArgs),
}

/// Arguments of the internal `shim` command.
#[derive(Debug, Clone, Args)]
pub struct ShimArgs {
    /// Container id.
    pub id: String,
    /// Absolute bundle path.
    #[arg(long)]
    pub bundle: PathBuf,
    /// Fd of the readiness pipe.
    #[arg(long = "ready-fd")]
    pub ready_fd: Option<i32>,
    /// Fd of `run`'s exit pipe (init's exit code, early).
    #[arg(long = "exit-fd")]
    pub exit_fd: Option<i32>,
    /// Windows: the named pipe of `create`'s readiness report.
    #[arg(long = "ready-pipe")]
    pub ready_pipe: Option<String>,
    /// Shim log path.
    #[arg(long = "shim-log")]
    pub shim_log: Option<PathBuf>,
}

const LONG_FLAGS: &[&str] = &[
    "debug",
    "log",
    "log-format",
    "owner",
    "root",
    "gcs",
    "gcs-args",
    "gcs-use-inouterr",
    "sandbox",
    "boot-files",
    "bundle",
    "pid-file",
    "shim-log",
    "vm-log",
    "vm-console",
    "host",
    "detach",
    "cwd",
    "env",
    "tty",
    "user",
    "process",
    "force",
    "format",
    "quiet",
    "all",
    "pid",
    "destpath",
    "sizeGB",
    "cache-path",
    "use-virtual-memory",
    "ready-fd",
    "exit-fd",
    "ready-pipe",
    "boot-files",
    "help",
    "version",
];

/// Rewrites `-name[=v]` into `--name[=v]` for known long flags, up to `--` and, for `exec`,
/// up to the command (so the command's own flags are left alone).
pub fn normalize(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut stop = false;
    let mut exec_positionals = None::<usize>;
    for (i, a) in args.into_iter().enumerate() {
        if i == 0 || stop {
            out.push(a);
            continue;
        }
        if a == "--" {
            stop = true;
            out.push(a);
            continue;
        }
        if let Some(n) = exec_positionals.as_mut() {
            if !a.starts_with('-') {
                *n += 1;
                // exec <id> <command...>: the command starts at the second positional.
                if *n >= 2 {
                    stop = true;
                }
                out.push(a);
                continue;
            }
        } else if a == "exec" {
            exec_positionals = Some(0);
            out.push(a);
            continue;
        }
        if a.starts_with('-') && !a.starts_with("--") && a.len() > 2 {
            let name = a[1..].split('=').next().unwrap_or("");
            if LONG_FLAGS.contains(&name) {
                out.push(format!("-{a}"));
                continue;
            }
        }
        out.push(a);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(normalize(args.iter().map(|s| s.to_string()))).unwrap()
    }

    #[test]
    fn go_style_flags() {
        let c = parse(&["runhcs", "-root", "/r", "create", "-bundle", "/b", "c1"]);
        assert_eq!(c.root, "/r");
        match c.command {
            Command::Create(a) => {
                assert_eq!(a.bundle, PathBuf::from("/b"));
                assert_eq!(a.id, "c1");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn exec_command_flags_are_left_alone() {
        let c = parse(&["runhcs", "exec", "-t", "c1", "ls", "-la", "-debug"]);
        match c.command {
            Command::Exec(a) => {
                assert!(a.tty);
                assert_eq!(a.command, ["ls", "-la", "-debug"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn run_and_kill() {
        let c = parse(&["runhcs", "run", "-d", "--bundle", "/b", "x"]);
        assert!(matches!(c.command, Command::Run { detach: true, .. }));
        let c = parse(&["runhcs", "kill", "x", "KILL"]);
        assert!(matches!(c.command, Command::Kill { signal: Some(ref s), .. } if s == "KILL"));
    }
}
