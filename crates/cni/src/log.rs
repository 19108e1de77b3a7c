//! Logging of one invocation: JSON lines, as the reference writes `wincni.log`.
//!
//! The file is `WINCNI_LOG` (an empty value turns file logging off), else `wincni.log` in
//! the current directory as in the reference; the level is `WINCNI_LOG_LEVEL` (a
//! `tracing` filter, default `debug` like the reference). Two fixes: the file is appended to
//! (the reference opens it write-only without truncation, so a shorter run leaves the tail
//! of a longer one behind, and concurrent runs overwrite each other), and a log file that
//! cannot be opened sends warnings to stderr instead of failing the network operation (the
//! reference exits 1).

use std::fs::OpenOptions;
use std::path::PathBuf;
use std::sync::Mutex;

use tracing_subscriber::EnvFilter;

/// Installs the logger of this process (once; later calls do nothing).
pub fn init() {
    let path = match std::env::var_os("WINCNI_LOG") {
        Some(p) if p.is_empty() => return,
        Some(p) => PathBuf::from(p),
        None => PathBuf::from("wincni.log"),
    };
    let level = std::env::var("WINCNI_LOG_LEVEL").unwrap_or_else(|_| "debug".into());
    let filter = EnvFilter::try_new(&level).unwrap_or_else(|e| {
        eprintln!("WINCNI_LOG_LEVEL {level:?}: {e}; using debug");
        EnvFilter::new("debug")
    });
    let installed = match OpenOptions::new().create(true).append(true).open(&path) {
        Ok(file) => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(Mutex::new(file))
            .try_init(),
        Err(e) => {
            eprintln!(
                "OpenFile {} error: {e}; logging warnings to stderr",
                path.display()
            );
            tracing_subscriber::fmt()
                .with_env_filter(EnvFilter::new("warn"))
                .with_writer(std::io::stderr)
                .try_init()
        }
    };
    if let Err(e) = installed {
        // Only a second call in one process gets here; the first logger stays.
        eprintln!("logger: {e}");
    }
}
