//! The hnsd backend: [`HcnApi`] over hnsd's Unix socket ([`crate::wire`]).
//!
//! # Which socket
//!
//! [`HnsdClient::from_env`] (and so [`crate::Hcn::system`] off Windows) uses the path in the
//! environment variable [`SOCKET_ENV`] (`HNSD_SOCKET`), or [`DEFAULT_SOCKET`]
//! (`/run/hnsd/hnsd.sock`, where `hnsd` listens by default). Tests point `HNSD_SOCKET` at the
//! socket of their own hnsd (`hnsd::testing`), or build a client with
//! [`HnsdClient::new`].
//!
//! # Failures
//!
//! A call hnsd answered carries hnsd's HRESULT and error record. When hnsd cannot be
//! reached the call fails with `RPC_S_SERVER_UNAVAILABLE` (`0x800706BA`, what a Windows
//! client sees when the HNS service is down) and a record naming the socket and the error.
//! Connections are reused; a request is retried on a fresh connection only when writing it to
//! a reused connection failed, which means hnsd never received it.

use std::io;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use crate::api::{CallError, CallResult, Handle, HcnApi, ObjectKind};
use crate::wire::{read_frame, write_frame, Request, Response};

/// The environment variable naming hnsd's socket.
pub const SOCKET_ENV: &str = "HNSD_SOCKET";
/// hnsd's default socket.
pub const DEFAULT_SOCKET: &str = "/run/hnsd/hnsd.sock";
/// `HRESULT_FROM_WIN32(RPC_S_SERVER_UNAVAILABLE)`: hnsd is not reachable.
pub const HR_SERVER_UNAVAILABLE: i32 = 0x8007_06BA_u32 as i32;
/// How long one call may take before the client gives up (the dataplane work of a call is
/// bounded far below this).
const CALL_TIMEOUT: Duration = Duration::from_secs(300);
/// Idle connections kept for reuse.
const MAX_IDLE: usize = 8;

/// A client of one hnsd.
#[derive(Debug)]
pub struct HnsdClient {
    path: PathBuf,
    idle: Mutex<Vec<UnixStream>>,
}

impl HnsdClient {
    /// A client of the hnsd listening on `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// A client of the hnsd named by `HNSD_SOCKET`, or the default socket.
    pub fn from_env() -> Self {
        Self::new(socket_path())
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn unavailable(&self, e: &io::Error) -> CallError {
        CallError {
            hr: HR_SERVER_UNAVAILABLE,
            record: format!("hnsd at {}: {e}", self.path.display()),
        }
    }

    fn connect(&self) -> CallResult<UnixStream> {
        let s = UnixStream::connect(&self.path).map_err(|e| self.unavailable(&e))?;
        s.set_read_timeout(Some(CALL_TIMEOUT))
            .map_err(|e| self.unavailable(&e))?;
        Ok(s)
    }

    fn take_idle(&self) -> Option<UnixStream> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }

    fn put_idle(&self, s: UnixStream) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(s);
        }
    }

    /// Sends one request and returns hnsd's reply.
    pub fn call(&self, request: &Request) -> CallResult<Response> {
        let body = serde_json::to_vec(request).map_err(|e| CallError {
            hr: crate::hresult::HCN_E_INVALID_JSON.as_i32(),
            record: format!("encode request: {e}"),
        })?;
        let mut stream = match self.take_idle() {
            Some(mut s) => match write_frame(&mut s, &body) {
                Ok(()) => s,
                // A reused connection hnsd closed: the request was not received; retry once.
                Err(_) => {
                    let mut s = self.connect()?;
                    write_frame(&mut s, &body).map_err(|e| self.unavailable(&e))?;
                    s
                }
            },
            None => {
                let mut s = self.connect()?;
                write_frame(&mut s, &body).map_err(|e| self.unavailable(&e))?;
                s
            }
        };
        let reply = match read_frame(&mut stream) {
            Ok(Some(reply)) => reply,
            Ok(None) => {
                return Err(self.unavailable(&io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "hnsd closed the connection before replying",
                )))
            }
            Err(e) => return Err(self.unavailable(&e)),
        };
        let response: Response = serde_json::from_slice(&reply).map_err(|e| CallError {
            hr: crate::hresult::HCN_E_INVALID_JSON.as_i32(),
            record: format!("hnsd reply: {e}"),
        })?;
        self.put_idle(stream);
        Ok(response)
    }

    fn output(&self, request: Request) -> CallResult<String> {
        let r = self.call(&request)?;
        if r.hr < 0 || !r.error_record.is_empty() {
            return Err(CallError {
                hr: r.hr,
                record: r.error_record,
            });
        }
        Ok(r.output)
    }
}

/// The socket clients use: `HNSD_SOCKET`, or [`DEFAULT_SOCKET`].
pub fn socket_path() -> PathBuf {
    std::env::var_os(SOCKET_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET))
}

impl HcnApi for HnsdClient {
    fn enumerate(&self, kind: ObjectKind, query: &str) -> CallResult<String> {
        self.output(Request::Enumerate {
            kind,
            query: query.to_string(),
        })
    }

    fn create(
        &self,
        kind: ObjectKind,
        id: &str,
        settings: &str,
        network: Option<&Handle>,
    ) -> CallResult<Handle> {
        let id = self.output(Request::Create {
            kind,
            id: id.to_string(),
            settings: settings.to_string(),
            network: network.map(|n| n.id.clone()),
        })?;
        Ok(Handle { kind, id, raw: 0 })
    }

    fn open(&self, kind: ObjectKind, id: &str) -> CallResult<Handle> {
        let id = self.output(Request::Open {
            kind,
            id: id.to_string(),
        })?;
        Ok(Handle { kind, id, raw: 0 })
    }

    fn modify(&self, handle: &Handle, settings: &str) -> CallResult<()> {
        self.output(Request::Modify {
            kind: handle.kind,
            id: handle.id.clone(),
            settings: settings.to_string(),
        })
        .map(drop)
    }

    fn query(&self, handle: &Handle, query: &str) -> CallResult<String> {
        self.output(Request::Query {
            kind: handle.kind,
            id: handle.id.clone(),
            query: query.to_string(),
        })
    }

    fn delete(&self, kind: ObjectKind, id: &str) -> CallResult<()> {
        self.output(Request::Delete {
            kind,
            id: id.to_string(),
        })
        .map(drop)
    }

    fn close(&self, handle: &Handle) -> CallResult<()> {
        self.output(Request::Close {
            kind: handle.kind,
            id: handle.id.clone(),
        })
        .map(drop)
    }

    fn hns_call(&self, method: &str, path: &str, request: &str) -> CallResult<String> {
        self.output(Request::HnsCall {
            method: method.to_string(),
            path: path.to_string(),
            request: request.to_string(),
        })
    }
}
