//! The control channel between runhcs commands and a container's shim (Unix): one JSON line
//! per request ([`crate::protocol`]) on `shim.sock`, one JSON line per reply. `exec` passes
//! the caller's stdio file descriptors with the request (`SCM_RIGHTS`) and gets a second
//! reply with the exit code when the process ends.

use std::io::{BufRead, BufReader, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

use crate::error::{Error, Result};
use crate::protocol::MAX_REQUEST;

/// Largest reply line accepted from a shim.
const MAX_REPLY: u64 = 1 << 20;
pub use crate::protocol::{Reply, Request};

/// A connection to a shim, after the request was sent.
pub struct Connection {
    reader: BufReader<UnixStream>,
}

impl Connection {
    /// Reads the next reply (one line of at most 1 MiB); a shim that went away is an error.
    pub fn reply(&mut self) -> Result<Reply> {
        let mut line = Vec::new();
        let n = (&mut self.reader)
            .take(MAX_REPLY + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| Error::io("read the shim's reply", e))?;
        if n == 0 {
            return Err(Error::ShimGone(
                "the container's shim closed the connection without replying".into(),
            ));
        }
        if n as u64 > MAX_REPLY {
            return Err(Error::Shim(format!(
                "bad reply from the shim: longer than {MAX_REPLY} bytes"
            )));
        }
        parse_reply(&line)?.into_result()
    }
}

/// Decodes one reply line (the shim's answer; [`Reply::error`] is kept, not turned into an
/// `Err`).
pub fn parse_reply(line: &[u8]) -> Result<Reply> {
    serde_json::from_slice::<Reply>(line)
        .map_err(|e| Error::Shim(format!("bad reply from the shim: {e}")))
}

/// Sends `request` (with `fds`) to the shim listening on `socket`.
pub fn send(socket: &Path, request: &Request, fds: &[RawFd]) -> Result<Connection> {
    let stream = UnixStream::connect(socket).map_err(|e| {
        Error::ShimGone(format!(
            "cannot reach the container's shim at {}: {e}",
            socket.display()
        ))
    })?;
    let mut line = serde_json::to_vec(request).map_err(|e| Error::Invalid(e.to_string()))?;
    line.push(b'\n');
    let cmsgs = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsgs };
    let sent = sendmsg::<()>(
        stream.as_raw_fd(),
        &[IoSlice::new(&line)],
        cmsgs,
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| Error::io("send to the shim", e.into()))?;
    if sent < line.len() {
        (&stream)
            .write_all(&line[sent..])
            .map_err(|e| Error::io("send to the shim", e))?;
    }
    Ok(Connection {
        reader: BufReader::new(stream),
    })
}

/// Sends `request` and returns its single reply.
pub fn call(socket: &Path, request: &Request) -> Result<Reply> {
    send(socket, request, &[])?.reply()
}

/// Receives one request and the fds that came with it (shim side, blocking).
pub fn receive(stream: &UnixStream) -> std::io::Result<(Request, Vec<OwnedFd>)> {
    let mut data = Vec::new();
    let mut fds = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(3))];
        let mut cmsg = RecvAncillaryBuffer::new(&mut space);
        let msg = rustix::net::recvmsg(
            stream,
            &mut [IoSliceMut::new(&mut buf)],
            &mut cmsg,
            RecvFlags::CMSG_CLOEXEC,
        )?;
        for c in cmsg.drain() {
            if let RecvAncillaryMessage::ScmRights(received) = c {
                fds.extend(received);
            }
        }
        let n = msg.bytes;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed before a full request",
            ));
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(end) = data.iter().position(|&b| b == b'\n') {
            data.truncate(end);
            break;
        }
        if data.len() > MAX_REQUEST {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "request too large",
            ));
        }
    }
    Ok((parse_request(&data)?, fds))
}

/// Decodes one request line (without its newline).
pub fn parse_request(line: &[u8]) -> std::io::Result<Request> {
    serde_json::from_slice(line)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Writes one reply line.
pub fn write_reply(mut stream: &UnixStream, reply: &Reply) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(reply).map_err(std::io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_fds_cross_a_socket() {
        let (a, b) = UnixStream::pair().unwrap();
        let req = Request::Exec {
            process: serde_json::json!({"args": ["ls"]}),
            stdin: false,
            stdout: true,
            stderr: false,
        };
        let devnull = std::fs::File::open("/dev/null").unwrap();
        let mut line = serde_json::to_vec(&req).unwrap();
        line.push(b'\n');
        sendmsg::<()>(
            a.as_raw_fd(),
            &[IoSlice::new(&line)],
            &[ControlMessage::ScmRights(&[devnull.as_raw_fd()])],
            MsgFlags::empty(),
            None,
        )
        .unwrap();
        let (got, fds) = receive(&b).unwrap();
        assert_eq!(got, req);
        assert_eq!(fds.len(), 1);
        write_reply(&b, &Reply::error("boom")).unwrap();
        let mut conn = Connection {
            reader: BufReader::new(a),
        };
        assert!(matches!(conn.reply(), Err(Error::Shim(m)) if m == "boom"));
        drop(b);
        assert!(conn.reply().is_err());
    }

    #[test]
    fn request_encoding_is_tagged() {
        let s = serde_json::to_string(&Request::Kill {
            signal: 9,
            all: false,
        })
        .unwrap();
        assert_eq!(s, r#"{"op":"kill","signal":9,"all":false}"#);
        let r: Request = serde_json::from_str(r#"{"op":"delete","force":true}"#).unwrap();
        assert_eq!(r, Request::Delete { force: true });
    }
}
