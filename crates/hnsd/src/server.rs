//! The socket server: one [`Request`] per frame, answered by the engine (hcn's `wire`
//! protocol).
//!
//! Connections are tasks of one tokio runtime on one thread; each request runs on the
//! runtime's blocking pool (the engine blocks: its lock, the journal's fdatasync, the
//! dataplane). So a client that connects per call (a CNI plugin is a process per ADD/DEL)
//! costs no thread start, idle connections cost no thread, and the threads are bounded
//! ([`MAX_REQUEST_THREADS`]).
//!
//! A frame that is not a request gets an `HCN_E_INVALID_JSON` reply naming the error and
//! the connection stays usable; a frame over the size bound, or a broken stream, ends the
//! connection. Handlers are thin: decode, call the engine's [`HcnApi`] method, encode.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use hcn::api::{CallError, Handle, HcnApi, ObjectKind};
use hcn::engine::Engine;
use hcn::wire::{frame_len, write_frame, Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

/// Answers one request.
pub fn handle(engine: &Engine, req: Request) -> Response {
    let h = |kind, id: String| Handle { kind, id, raw: 0 };
    let out: Result<String, CallError> = match req {
        Request::Enumerate { kind, query } => engine.enumerate(kind, &query),
        Request::Create {
            kind,
            id,
            settings,
            network,
        } => engine
            .create(
                kind,
                &id,
                &settings,
                network.map(|n| h(ObjectKind::Network, n)).as_ref(),
            )
            .map(|h| h.id),
        Request::Open { kind, id } => engine.open(kind, &id).map(|h| h.id),
        Request::Modify { kind, id, settings } => engine
            .modify(&h(kind, id), &settings)
            .map(|()| String::new()),
        Request::Query { kind, id, query } => engine.query(&h(kind, id), &query),
        Request::Delete { kind, id } => engine.delete(kind, &id).map(|()| String::new()),
        Request::Close { kind, id } => engine.close(&h(kind, id)).map(|()| String::new()),
        Request::HnsCall {
            method,
            path,
            request,
        } => engine.hns_call(&method, &path, &request),
    };
    match out {
        Ok(output) => Response {
            hr: 0,
            output,
            error_record: String::new(),
        },
        Err(e) => Response {
            hr: e.hr,
            output: String::new(),
            error_record: e.record,
        },
    }
}

/// Decodes and answers one frame.
pub fn handle_frame(engine: &Engine, frame: &[u8]) -> Response {
    match serde_json::from_slice::<Request>(frame) {
        Ok(req) => handle(engine, req),
        Err(e) => {
            let f =
                hcn::engine::fail::fail(hcn::hresult::HCN_E_INVALID_JSON, format!("request: {e}"));
            Response {
                hr: f.wire_hr(),
                output: String::new(),
                error_record: f.record(),
            }
        }
    }
}

/// The most requests served at once (more wait for a thread; mutations serialize on the
/// engine's lock anyway).
pub const MAX_REQUEST_THREADS: usize = 32;

/// Reads one frame; `Ok(None)` at a clean end of stream before a frame starts (as
/// [`hcn::wire::read_frame`], on an async stream).
async fn read_frame_async(r: &mut UnixStream) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut len[got..]).await? {
            0 if got == 0 => return Ok(None),
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => got += n,
        }
    }
    let mut body = vec![0u8; frame_len(len)?];
    r.read_exact(&mut body).await?;
    Ok(Some(body))
}

async fn write_frame_async(w: &mut UnixStream, body: &[u8]) -> io::Result<()> {
    let mut framed = Vec::with_capacity(body.len() + 4);
    // The reply was built by this server: encode it with the same bound as the client.
    write_frame(&mut framed, body)?;
    w.write_all(&framed).await
}

async fn serve_connection(engine: Arc<Engine>, mut stream: UnixStream) {
    loop {
        let frame = match read_frame_async(&mut stream).await {
            Ok(Some(f)) => f,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(error = %e, "connection ended");
                return;
            }
        };
        let engine = engine.clone();
        let reply = match tokio::task::spawn_blocking(move || handle_frame(&engine, &frame)).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "a request failed to complete");
                return;
            }
        };
        let bytes = match serde_json::to_vec(&reply) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "encode reply");
                return;
            }
        };
        if let Err(e) = write_frame_async(&mut stream, &bytes).await {
            tracing::debug!(error = %e, "client went away before the reply");
            return;
        }
    }
}

async fn accept_loop(
    engine: Arc<Engine>,
    listener: std::os::unix::net::UnixListener,
    mut stop: watch::Receiver<bool>,
) {
    let listener = match UnixListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "cannot serve the socket");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            conn = listener.accept() => match conn {
                Ok((s, _)) => {
                    tokio::spawn(serve_connection(engine.clone(), s));
                }
                Err(e) => tracing::warn!(error = %e, "accept failed"),
            },
        }
    }
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    path: PathBuf,
    stop: Option<watch::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Listens on `path` (a stale socket file is replaced) and serves `engine`.
    pub fn start(engine: Arc<Engine>, path: &Path) -> io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        if path.exists() {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("an hnsd already listens on {}", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        let listener = std::os::unix::net::UnixListener::bind(path)?;
        listener.set_nonblocking(true)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .max_blocking_threads(MAX_REQUEST_THREADS)
            .thread_name("hnsd-request")
            .build()?;
        let (stop, stop_rx) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name("hnsd-server".into())
            .spawn(move || {
                rt.block_on(accept_loop(engine, listener, stop_rx));
                // Dropping the runtime ends every connection (their tasks are dropped, so
                // are their streams) and waits for the requests in progress to finish.
                drop(rt);
            })?;
        Ok(Self {
            path: path.to_path_buf(),
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops accepting connections, ends the open ones (a request in progress finishes;
    /// its reply may not reach the client) and removes the socket file.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            // The receiver is gone only if the server thread already ended.
            if stop.send(true).is_err() {
                tracing::debug!("the server had already stopped");
            }
        }
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!("the server thread panicked");
            }
        }
        if let Err(e) = std::fs::remove_file(&self.path) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(error = %e, "removing the socket file");
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop();
        }
    }
}
