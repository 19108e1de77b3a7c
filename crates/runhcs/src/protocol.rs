//! The control protocol between runhcs commands and a container's shim: one JSON line per
//! request, one JSON line per reply (`exec` gets a second reply with the exit code). The
//! transport is per platform: a Unix socket with the caller's fds attached
//! (`control.rs`), or a named pipe (`control_windows.rs`).

use std::io::{BufRead, Read};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Largest request a shim accepts.
pub const MAX_REQUEST: usize = 1 << 20;

/// A request to the shim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    /// Start the init process.
    Start,
    /// Signal init (or every process with `all`).
    Kill {
        /// Linux signal number.
        signal: i32,
        /// Signal every process of the container.
        #[serde(default)]
        all: bool,
    },
    /// List the container's pids.
    Ps,
    /// Run a process; the fds for the requested streams follow in stdin, stdout, stderr order.
    Exec {
        /// The OCI process.
        process: serde_json::Value,
        /// An fd for stdin is attached.
        stdin: bool,
        /// An fd for stdout is attached.
        stdout: bool,
        /// An fd for stderr is attached.
        stderr: bool,
    },
    /// Resize a terminal (init when `pid` is absent).
    Resize {
        /// The process (sandbox pid).
        #[serde(default)]
        pid: Option<u32>,
        /// Columns.
        width: u16,
        /// Rows.
        height: u16,
    },
    /// Delete the container (kill first when `force`), tear the sandbox down, exit.
    Delete {
        /// Kill a running container.
        force: bool,
    },
    /// Run a process whose streams the shim connects to the caller's named pipes (Windows,
    /// where handles do not travel with the request); replies as [`Request::Exec`].
    #[cfg(windows)]
    ExecPipes {
        /// The OCI process.
        process: serde_json::Value,
        /// The caller's pipe for stdin.
        #[serde(default)]
        stdin: Option<String>,
        /// The caller's pipe for stdout.
        #[serde(default)]
        stdout: Option<String>,
        /// The caller's pipe for stderr.
        #[serde(default)]
        stderr: Option<String>,
    },
}

/// A reply from the shim.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// The failure, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `ps`: the pids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<Vec<u32>>,
    /// `exec`/`start`: the process's pid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// `exec` second reply: the exit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

impl Reply {
    /// A failure reply.
    pub fn error(e: impl ToString) -> Self {
        Reply {
            error: Some(e.to_string()),
            ..Default::default()
        }
    }

    pub(crate) fn into_result(self) -> Result<Self> {
        match self.error {
            Some(e) => Err(Error::Shim(e)),
            None => Ok(self),
        }
    }
}

/// One message as a line: its JSON and `\n`.
pub fn encode_line<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    let mut line = serde_json::to_vec(value).map_err(|e| Error::Invalid(e.to_string()))?;
    line.push(b'\n');
    Ok(line)
}

/// Reads one `\n`-terminated line of at most `limit` bytes (without the `\n`); `None` at a
/// clean end of stream. A longer line, or a stream that ends inside a line, is an error.
pub fn read_line(reader: &mut impl BufRead, limit: usize) -> std::io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    let n = reader.take(limit as u64 + 1).read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            if line.len() > limit {
                "message too large"
            } else {
                "connection closed inside a message"
            },
        ));
    }
    line.pop();
    Ok(Some(line))
}

/// Decodes one request line (shim side).
pub fn decode_request(line: &[u8]) -> std::io::Result<Request> {
    serde_json::from_slice(line)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_bounded_and_complete() {
        let mut r = std::io::Cursor::new(b"{\"op\":\"ps\"}\n{\"op\":\"start\"}\n".to_vec());
        let a = read_line(&mut r, 64).unwrap().unwrap();
        assert_eq!(decode_request(&a).unwrap(), Request::Ps);
        let b = read_line(&mut r, 64).unwrap().unwrap();
        assert_eq!(decode_request(&b).unwrap(), Request::Start);
        assert_eq!(read_line(&mut r, 64).unwrap(), None);

        let err = read_line(&mut std::io::Cursor::new(vec![b'x'; 100]), 64).unwrap_err();
        assert_eq!(err.to_string(), "message too large");
        let err = read_line(&mut std::io::Cursor::new(b"{\"op\"".to_vec()), 64).unwrap_err();
        assert_eq!(err.to_string(), "connection closed inside a message");
        // Exactly at the limit is fine.
        let mut at = vec![b'y'; 64];
        at.push(b'\n');
        assert_eq!(
            read_line(&mut std::io::Cursor::new(at), 64)
                .unwrap()
                .unwrap()
                .len(),
            64
        );
        assert!(decode_request(b"{\"op\":\"fly\"}").is_err());
    }

    #[test]
    fn lines_round_trip() {
        let reply = Reply {
            pid: Some(7),
            ..Default::default()
        };
        let line = encode_line(&reply).unwrap();
        assert_eq!(line, b"{\"pid\":7}\n");
        let back = read_line(&mut std::io::Cursor::new(line), 64)
            .unwrap()
            .unwrap();
        let back: Reply = serde_json::from_slice(&back).unwrap();
        assert_eq!(back, reply);
        assert!(matches!(
            Reply::error("boom").into_result(),
            Err(Error::Shim(m)) if m == "boom"
        ));
    }
}
