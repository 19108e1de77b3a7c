//! The control channel between runhcs commands and a container's shim on Windows: the
//! shim's named pipe ([`crate::state::pipe_name`]), one JSON line per request
//! ([`crate::protocol`]), one JSON line per reply. `exec` cannot attach handles to a
//! request: the caller creates named pipes for its streams and names them
//! ([`Request::ExecPipes`]); the shim connects to them.
//!
//! The client side is synchronous (a named pipe opened as a file); the shim serves the
//! pipe with tokio (`shim_windows.rs`).

use std::io::{BufReader, Write};
use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::protocol::{encode_line, read_line, MAX_REQUEST};
pub use crate::protocol::{Reply, Request};

/// `ERROR_FILE_NOT_FOUND`: no shim listens on the pipe.
const ERROR_FILE_NOT_FOUND: i32 = 2;
/// `ERROR_PIPE_BUSY`: every instance is connected; the shim makes the next one at once.
const ERROR_PIPE_BUSY: i32 = 231;
/// How often a busy pipe is retried, and how long apart (one second in all).
const BUSY_RETRIES: u32 = 50;
const BUSY_PAUSE: Duration = Duration::from_millis(20);

/// A connection to a shim, after the request was sent.
pub struct Connection {
    reader: BufReader<std::fs::File>,
}

impl Connection {
    /// Reads the next reply; a shim that went away is an error.
    pub fn reply(&mut self) -> Result<Reply> {
        let line = read_line(&mut self.reader, MAX_REQUEST)
            .map_err(|e| Error::io("read the shim's reply", e))?;
        let Some(line) = line else {
            return Err(Error::Shim(
                "the container's shim closed the connection without replying".into(),
            ));
        };
        serde_json::from_slice::<Reply>(&line)
            .map_err(|e| Error::Shim(format!("bad reply from the shim: {e}")))?
            .into_result()
    }
}

fn open(pipe: &Path) -> Result<std::fs::File> {
    let mut tries = 0;
    loop {
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(pipe)
        {
            Ok(f) => return Ok(f),
            Err(e) if e.raw_os_error() == Some(ERROR_PIPE_BUSY) && tries < BUSY_RETRIES => {
                tries += 1;
                std::thread::sleep(BUSY_PAUSE);
            }
            Err(e) if e.raw_os_error() == Some(ERROR_FILE_NOT_FOUND) => {
                return Err(Error::Shim(format!(
                    "the container's shim is not running (no pipe {})",
                    pipe.display()
                )))
            }
            Err(e) => {
                return Err(Error::Shim(format!(
                    "cannot reach the container's shim at {}: {e}",
                    pipe.display()
                )))
            }
        }
    }
}

/// Sends `request` to the shim listening on `pipe`.
pub fn send(pipe: &Path, request: &Request) -> Result<Connection> {
    let mut file = open(pipe)?;
    file.write_all(&encode_line(request)?)
        .map_err(|e| Error::io("send to the shim", e))?;
    Ok(Connection {
        reader: BufReader::new(file),
    })
}

/// Sends `request` and returns its single reply.
pub fn call(pipe: &Path, request: &Request) -> Result<Reply> {
    send(pipe, request)?.reply()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{decode_request, encode_line};
    use tokio::io::{AsyncWriteExt, BufReader as AsyncBufReader};
    use tokio::net::windows::named_pipe::ServerOptions;

    /// A request and two replies (as `exec` gets them) cross a named pipe between the
    /// synchronous client and a tokio server, and a missing shim is a clear error.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_and_replies_cross_a_named_pipe() {
        let name = format!(r"\\.\pipe\runhcs-test-{}", std::process::id());
        let mut server = ServerOptions::new()
            .first_pipe_instance(true)
            .create(&name)
            .unwrap();
        let client_name = name.clone();
        let client = tokio::task::spawn_blocking(move || {
            let mut conn = send(Path::new(&client_name), &Request::Ps).unwrap();
            let first = conn.reply().unwrap();
            let second = conn.reply();
            (first, second)
        });
        server.connect().await.unwrap();
        let mut reader = AsyncBufReader::new(&mut server);
        let mut line = Vec::new();
        tokio::io::AsyncBufReadExt::read_until(&mut reader, b'\n', &mut line)
            .await
            .unwrap();
        line.pop();
        assert_eq!(decode_request(&line).unwrap(), Request::Ps);
        let first = Reply {
            pids: Some(vec![1, 7]),
            ..Default::default()
        };
        server
            .write_all(&encode_line(&first).unwrap())
            .await
            .unwrap();
        server
            .write_all(&encode_line(&Reply::error("gone")).unwrap())
            .await
            .unwrap();
        let (got, second) = client.await.unwrap();
        assert_eq!(got.pids, Some(vec![1, 7]));
        assert!(matches!(second, Err(Error::Shim(m)) if m == "gone"));

        let missing = format!(r"\\.\pipe\runhcs-test-missing-{}", std::process::id());
        let err = tokio::task::spawn_blocking(move || call(Path::new(&missing), &Request::Start))
            .await
            .unwrap()
            .unwrap_err();
        assert!(err.to_string().contains("not running"), "{err}");
    }
}
