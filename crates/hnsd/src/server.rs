//! The socket server: one thread per connection, one [`Request`] per frame, answered by the
//! engine (hcn's `wire` protocol).
//!
//! A frame that is not a request gets an `HCN_E_INVALID_JSON` reply naming the error and
//! the connection stays usable; a frame over the size bound, or a broken stream, ends the
//! connection. Handlers are thin: decode, call the engine's [`HcnApi`] method, encode.

use std::collections::HashMap;
use std::io;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use hcn::api::{CallError, Handle, HcnApi, ObjectKind};
use hcn::engine::Engine;
use hcn::wire::{read_frame, write_frame, Request, Response};

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

fn serve_connection(engine: Arc<Engine>, mut stream: UnixStream) {
    loop {
        let frame = match read_frame(&mut stream) {
            Ok(Some(f)) => f,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(error = %e, "connection ended");
                return;
            }
        };
        let reply = handle_frame(&engine, &frame);
        let bytes = match serde_json::to_vec(&reply) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "encode reply");
                return;
            }
        };
        if let Err(e) = write_frame(&mut stream, &bytes) {
            tracing::debug!(error = %e, "client went away before the reply");
            return;
        }
    }
}

/// The open connections (a clone of each stream), so that stopping ends them: a client's
/// idle connection must not keep talking to a stopped instance's engine.
#[derive(Debug, Default)]
struct Connections {
    next: AtomicU64,
    open: Mutex<HashMap<u64, UnixStream>>,
}

impl Connections {
    fn add(&self, s: &UnixStream) -> Option<u64> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        match s.try_clone() {
            Ok(c) => {
                self.open
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(id, c);
                Some(id)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot track a connection");
                None
            }
        }
    }

    fn remove(&self, id: Option<u64>) {
        if let Some(id) = id {
            self.open
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
        }
    }

    fn close_all(&self) {
        for (_, s) in self.open.lock().unwrap_or_else(|p| p.into_inner()).drain() {
            if let Err(e) = s.shutdown(std::net::Shutdown::Both) {
                tracing::debug!(error = %e, "shutting a connection down");
            }
        }
    }
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    connections: Arc<Connections>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Listens on `path` (a stale socket file is replaced) and serves `engine`.
    pub fn start(engine: Arc<Engine>, path: &Path) -> io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("an hnsd already listens on {}", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let connections = Arc::new(Connections::default());
        let conns = connections.clone();
        let thread = std::thread::Builder::new()
            .name("hnsd-accept".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if stop2.load(Ordering::SeqCst) {
                        return;
                    }
                    match conn {
                        Ok(s) => {
                            let engine = engine.clone();
                            let conns = conns.clone();
                            let id = conns.add(&s);
                            if let Err(e) = std::thread::Builder::new()
                                .name("hnsd-conn".into())
                                .spawn(move || {
                                    serve_connection(engine, s);
                                    conns.remove(id);
                                })
                            {
                                tracing::error!(error = %e, "cannot start a connection thread");
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "accept failed"),
                    }
                }
            })?;
        Ok(Self {
            path: path.to_path_buf(),
            stop,
            connections,
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
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        if let Err(e) = UnixStream::connect(&self.path) {
            tracing::debug!(error = %e, "waking the accept loop");
        }
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!("the accept thread panicked");
            }
        }
        self.connections.close_all();
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
