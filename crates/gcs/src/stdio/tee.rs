//! The tee log of a container's init (`io.microsoft.container.lcow.tee-log-path`, spec §6):
//! everything its output relays send to the host is also appended to a file under the
//! sandbox's `logs/`. The log is a copy: a failed write there is reported once and the
//! relays go on without it, never holding up the host's stream.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::error::{PathContext, Result};

/// An append-only copy of a process's output.
#[derive(Debug)]
pub struct TeeLog {
    path: PathBuf,
    file: Mutex<File>,
    failed: AtomicBool,
}

impl TeeLog {
    /// Opens (creating) `path` for appending.
    pub fn open(path: &Path) -> Result<Self> {
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o644)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)
            .with_path("open the tee log", path)?;
        Ok(Self {
            path: path.to_path_buf(),
            file: Mutex::new(file),
            failed: AtomicBool::new(false),
        })
    }

    /// Appends `data` (one relay's chunk; the stdout and stderr relays interleave by chunk).
    pub fn append(&self, data: &[u8]) {
        if self.failed.load(Ordering::Relaxed) {
            return;
        }
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = f.write_all(data) {
            self.failed.store(true, Ordering::Relaxed);
            tracing::warn!(path = %self.path.display(), error = %e, "tee log write failed; no more output goes to it");
        }
    }
}

/// A connection whose writes are also appended to a tee log.
pub struct Teed<'a, W> {
    /// The host's connection.
    pub conn: &'a mut W,
    /// The log.
    pub log: &'a TeeLog,
}

impl<W: Write> Write for Teed<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.conn.write(buf)?;
        self.log.append(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.conn.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_teed_write_reaches_both_and_the_log_appends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        std::fs::write(&path, "earlier\n").unwrap();
        let log = TeeLog::open(&path).unwrap();
        let mut conn = Vec::new();
        let mut t = Teed {
            conn: &mut conn,
            log: &log,
        };
        t.write_all(b"hello\n").unwrap();
        assert_eq!(conn, b"hello\n");
        assert_eq!(std::fs::read(&path).unwrap(), b"earlier\nhello\n");
        // Not a file one can open for appending: a clear error naming it.
        let e = TeeLog::open(dir.path()).unwrap_err().to_string();
        assert!(e.contains("tee log"), "{e}");
    }
}
