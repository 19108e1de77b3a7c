//! Windows: the shim's log pipe `\\.\pipe\containerd-shim-<ns>-<id>-log` (spec §1.1 serve,
//! `debug_type` NPIPE). containerd dials it to copy the shim's logs into its own; every
//! connection it makes replaces the previous one (it reconnects after a restart). While
//! nobody is connected, and after a connection breaks, lines go to stderr (containerd's
//! `panic.log`), as the reference's logs do before containerd connects.
//!
//! tracing's writers are synchronous and a pipe write can block on a slow reader, so the
//! writer only queues each line; one thread with a small runtime owns the pipe, accepts
//! connections and writes. A full queue drops lines (counted, reported on the next write)
//! rather than stall the shim's RPCs behind its logging.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::windows::named_pipe::{NamedPipeServer, ServerOptions};
use tokio::sync::mpsc;

/// Lines waiting for the pipe thread.
const QUEUE: usize = 4096;

/// The reference's log pipe name (not under the protected prefix: containerd dials this).
pub fn log_pipe_name(namespace: &str, id: &str) -> String {
    format!(r"\\.\pipe\containerd-shim-{namespace}-{id}-log")
}

/// The `MakeWriter` of the log pipe: cheap to clone, each write queues one line.
#[derive(Debug, Clone)]
pub struct LogPipe {
    tx: mpsc::Sender<Vec<u8>>,
    dropped: Arc<AtomicU64>,
    /// What the pipe thread did (the tests wait on it).
    #[cfg(test)]
    state: Arc<PipeState>,
}

/// The pipe thread's connections.
#[derive(Debug, Default)]
struct PipeState {
    /// How many clients connected so far.
    connections: AtomicU64,
    /// Whether one is connected now.
    connected: std::sync::atomic::AtomicBool,
}

impl PipeState {
    fn set(&self, conn: &Option<NamedPipeServer>) {
        self.connected.store(conn.is_some(), Ordering::SeqCst);
    }
}

impl LogPipe {
    /// Serves `name` (which nobody else may serve) and starts the thread that owns it;
    /// `fallback` gets the lines while no client is connected.
    pub fn serve(name: &str, fallback: Box<dyn Write + Send>) -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        // A pipe registers with the reactor of the runtime it is made in: the pipe
        // thread's own (the shim calls this before its runtime exists).
        let first = {
            let _in_rt = rt.enter();
            server(name, true)?
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        let state = Arc::new(PipeState::default());
        let name = name.to_owned();
        let shared = state.clone();
        std::thread::Builder::new()
            .name("log-pipe".into())
            .spawn(move || rt.block_on(pump(name, first, rx, fallback, shared)))?;
        Ok(Self {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
            #[cfg(test)]
            state,
        })
    }

    /// How many clients have connected so far.
    #[cfg(test)]
    fn connections(&self) -> u64 {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Whether a client is connected now.
    #[cfg(test)]
    fn connected(&self) -> bool {
        self.state.connected.load(Ordering::SeqCst)
    }
}

fn server(name: &str, first: bool) -> std::io::Result<NamedPipeServer> {
    // Duplex, as go-winio's listener: containerd dials with read and write access.
    ServerOptions::new().first_pipe_instance(first).create(name)
}

impl Write for LogPipe {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let dropped = self.dropped.swap(0, Ordering::SeqCst);
        if dropped > 0 {
            let note = format!("log pipe: {dropped} lines dropped (queue full)\n");
            if self.tx.try_send(note.into_bytes()).is_err() {
                self.dropped.fetch_add(dropped, Ordering::SeqCst);
            }
        }
        if self.tx.try_send(buf.to_vec()).is_err() {
            self.dropped.fetch_add(1, Ordering::SeqCst);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogPipe {
    type Writer = LogPipe;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The pipe thread: accepts connections on `next` and writes queued lines to the newest.
/// The fallback (stderr, containerd's `panic.log`) is the last place a line can go: a
/// failed write there has nowhere to be reported, so it is not.
async fn pump(
    name: String,
    mut next: NamedPipeServer,
    mut rx: mpsc::Receiver<Vec<u8>>,
    mut fallback: Box<dyn Write + Send>,
    state: Arc<PipeState>,
) {
    let mut conn: Option<NamedPipeServer> = None;
    loop {
        tokio::select! {
            accepted = next.connect() => {
                if let Err(e) = accepted {
                    let _ = writeln!(fallback, "log pipe {name}: accept: {e}");
                }
                match server(&name, false) {
                    Ok(s) => {
                        let connected = std::mem::replace(&mut next, s);
                        // The new connection replaces the old one, which is closed.
                        conn = Some(connected);
                        state.connections.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => {
                        // No further instance: keep the one connected and stop accepting.
                        let _ = writeln!(fallback, "log pipe {name}: serve: {e}");
                        conn = Some(next);
                        state.connections.fetch_add(1, Ordering::SeqCst);
                        state.set(&conn);
                        return drain(conn, rx, fallback, state).await;
                    }
                }
            }
            line = rx.recv() => {
                let Some(line) = line else { return };
                write_line(&mut conn, &line, &mut fallback).await;
            }
            () = closed(&mut conn) => conn = None,
        }
        state.set(&conn);
    }
}

/// Resolves when the client of `conn` goes away. containerd never writes to the log pipe,
/// so a read ends only there (or reads bytes, discarded). A write to a pipe whose client
/// closed may still succeed into the pipe's buffer: this is how it is noticed.
async fn closed(conn: &mut Option<NamedPipeServer>) {
    let Some(c) = conn else {
        return std::future::pending().await;
    };
    let mut buf = [0u8; 512];
    loop {
        match c.read(&mut buf).await {
            Ok(n) if n > 0 => continue,
            _ => return,
        }
    }
}

/// The rest of the lines, without accepting anyone new.
async fn drain(
    mut conn: Option<NamedPipeServer>,
    mut rx: mpsc::Receiver<Vec<u8>>,
    mut fallback: Box<dyn Write + Send>,
    state: Arc<PipeState>,
) {
    loop {
        tokio::select! {
            line = rx.recv() => {
                let Some(line) = line else { return };
                write_line(&mut conn, &line, &mut fallback).await;
            }
            () = closed(&mut conn) => conn = None,
        }
        state.set(&conn);
    }
}

async fn write_line(
    conn: &mut Option<NamedPipeServer>,
    line: &[u8],
    fallback: &mut Box<dyn Write + Send>,
) {
    if let Some(c) = conn {
        if c.write_all(line).await.is_ok() {
            return;
        }
        // The client went away: back to the fallback until the next one connects.
        *conn = None;
    }
    let _ = fallback.write_all(line);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::net::windows::named_pipe::ClientOptions;

    use super::*;

    /// A fallback the test can read.
    #[derive(Clone, Default)]
    struct Shared(Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    async fn until(what: &str, f: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(tokio::time::Instant::now() < deadline, "{what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn read_line(c: &mut tokio::net::windows::named_pipe::NamedPipeClient) -> String {
        let mut buf = vec![0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(10), c.read(&mut buf))
            .await
            .expect("a line")
            .unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn the_newest_client_gets_the_lines_and_stderr_the_rest() {
        // Served from outside any runtime, as the shim's serve does before it starts its own.
        let name = log_pipe_name("ns", &format!("logtest-{}", std::process::id()));
        let fallback = Shared::default();
        let pipe = LogPipe::serve(&name, Box::new(fallback.clone())).unwrap();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(clients(name, pipe, fallback));
    }

    async fn clients(name: String, mut pipe: LogPipe, fallback: Shared) {
        // (That nobody else may serve the name is Windows' FILE_FLAG_FIRST_PIPE_INSTANCE,
        // which Wine does not enforce: not checked here.)

        pipe.write_all(b"before\n").unwrap();
        until("the line reaches stderr", || {
            fallback.0.lock().unwrap().as_slice() == b"before\n"
        })
        .await;

        let mut first = ClientOptions::new().open(&name).unwrap();
        until("the first client is accepted", || pipe.connections() == 1).await;
        pipe.write_all(b"one\n").unwrap();
        assert_eq!(read_line(&mut first).await, "one\n");

        // containerd restarted: the new connection replaces the old one, which is closed.
        let mut second = ClientOptions::new().open(&name).unwrap();
        until("the second client is accepted", || pipe.connections() == 2).await;
        pipe.write_all(b"two\n").unwrap();
        assert_eq!(read_line(&mut second).await, "two\n");
        let mut rest = Vec::new();
        let end = tokio::time::timeout(Duration::from_secs(10), first.read_to_end(&mut rest));
        assert!(end.await.expect("the old client is closed").is_err() || rest.is_empty());

        // The client goes away: lines go to stderr again.
        drop(second);
        until("the pipe notices", || !pipe.connected()).await;
        pipe.write_all(b"three\n").unwrap();
        pipe.write_all(b"four\n").unwrap();
        until("lines after the client left reach stderr", || {
            fallback.0.lock().unwrap().ends_with(b"four\n")
        })
        .await;
        assert_eq!(
            fallback.0.lock().unwrap().as_slice(),
            b"before\nthree\nfour\n"
        );
    }
}
