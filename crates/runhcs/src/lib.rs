//! runhcs: an OCI-runtime-style command line over the LCOW stack.
//!
//! On Linux every container gets a local sandbox (a `gcs` child process in its own
//! namespaces) driven through the bridge, exactly as a utility VM would be:
//!
//! ```text
//! runhcs create ─▶ runhcs shim ─▶ LocalSandbox ─▶ bridge ─▶ gcs ─▶ runc
//!      ▲               │ shim.sock (start, exec, kill, ps, resize, delete)
//! runhcs start/exec/kill/ps/delete
//! ```
//!
//! The shim inherits `create`'s stdio and relays the init process's streams to it; `exec`
//! passes its own stdio to the shim over the control socket. `run` gets the init process's
//! exit code from the shim on an exit pipe as soon as the container is gone and its id free;
//! the shim then finishes tearing the sandbox down by itself.
//!
//! On Windows the same commands drive an HCS utility VM (`uvm::sandbox::hcs`) per container,
//! whose layers are the bundle's `windows.layerFolders`; the control channel is a named pipe
//! and `exec` relays its handles through named pipes (`*_windows.rs`). That side compiles
//! and its neutral parts are tested on Linux; it has never run on Windows.

pub mod cli;
pub mod commands;
#[cfg(windows)]
mod commands_windows;
#[cfg_attr(windows, path = "control_windows.rs")]
pub mod control;
pub mod error;
mod processes;
pub mod protocol;
#[cfg_attr(windows, path = "shim_windows.rs")]
pub mod shim;
pub mod signal;
pub mod spec;
pub mod state;
#[cfg_attr(windows, path = "term_windows.rs")]
pub mod term;
#[cfg(windows)]
mod winproc;

use cli::{Cli, Command};
use error::Error;

/// Sets up logging to `--log` (nothing when empty or `nul`).
fn init_logging(cli: &Cli) {
    if cli.log.is_empty() || cli.log.eq_ignore_ascii_case("nul") {
        return;
    }
    let Ok(file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&cli.log)
    else {
        eprintln!("runhcs: cannot open log file {}", cli.log);
        return;
    };
    let level = if cli.debug { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::new(level);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file));
    let _ = if cli.log_format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Runs a parsed command line; returns the process exit code.
pub fn main_with(cli: Cli) -> i32 {
    init_logging(&cli);
    let result: Result<i32, Error> = match &cli.command {
        Command::Create(a) => commands::create(&cli, a).map(|_| 0),
        Command::Run { create, detach } => commands::run(&cli, create, *detach),
        Command::Start { id } => commands::start(&cli, id).map(|_| 0),
        Command::Exec(a) => commands::exec(&cli, a),
        Command::Kill { id, signal, all } => {
            commands::kill(&cli, id, signal.as_deref(), *all).map(|_| 0)
        }
        Command::Delete { id, force } => commands::delete(&cli, id, *force).map(|_| 0),
        Command::List { format, quiet } => commands::list(&cli, format, *quiet).map(|s| {
            print!("{s}");
            0
        }),
        Command::State { id } => commands::state(&cli, id).map(|s| {
            println!("{s}");
            0
        }),
        Command::Ps { id, format } => commands::ps(&cli, id, format).map(|s| {
            print!("{s}");
            0
        }),
        Command::Pause { .. } => Err(Error::Unsupported("pause")),
        Command::Resume { .. } => Err(Error::Unsupported("resume")),
        Command::ResizeTty {
            id,
            width,
            height,
            pid,
        } => commands::resize_tty(&cli, id, *width, *height, *pid).map(|_| 0),
        Command::CreateScratch { .. } => Err(Error::Unsupported("create-scratch")),
        Command::PrepareDisk { .. } => Err(Error::Unsupported("prepare-disk")),
        Command::Shim(a) => run_shim(&cli, a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("runhcs: {e}");
            1
        }
    }
}

#[cfg(unix)]
fn run_shim(cli: &Cli, a: &cli::ShimArgs) -> Result<i32, Error> {
    let config = shim::ShimConfig {
        sandbox: commands::sandbox_kind(cli)?,
        boot_files: cli.boot_files.clone(),
        boot_mode: commands::boot_mode(cli)?,
        id: a.id.clone(),
        root: state::root_dir(&cli.root),
        bundle: a.bundle.clone(),
        gcs: commands::gcs_path(cli),
        gcs_args: cli.gcs_args.split_whitespace().map(str::to_owned).collect(),
        use_inouterr: cli.gcs_use_inouterr,
        owner: cli.owner.clone(),
        debug: cli.debug,
    };
    Ok(shim::run(config, a.ready_fd, a.exit_fd))
}

#[cfg(windows)]
fn run_shim(cli: &Cli, a: &cli::ShimArgs) -> Result<i32, Error> {
    let config = shim::ShimConfig {
        id: a.id.clone(),
        root: state::root_dir(&cli.root),
        bundle: a.bundle.clone(),
        boot_files: cli
            .boot_files
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(shim::default_boot_files),
        owner: cli.owner.clone(),
        debug: cli.debug,
    };
    Ok(shim::run(config, a.ready_pipe.clone()))
}
