//! AF_HYPERV listeners on Windows, through Winsock as Microsoft's metadata declares it
//! (`windows-sys`: `Win32::Networking::WinSock`, `SOCKADDR_HV` and `HV_PROTOCOL_RAW` from
//! `Win32::System::Hypervisor`).
//!
//! Thin on purpose, and built only from calls that work with any Winsock provider:
//!
//! * **Listen**: `socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW)`, `bind` to
//!   `{VmId, ServiceId}`, `listen`.
//! * **Accept, cancellable**: `WSAEventSelect(FD_ACCEPT)` and a wait on two events, the
//!   accept event and a cancel event set when the accepting future is dropped (a timeout or
//!   the VM's exit). The accepted socket is switched back to blocking mode
//!   (`WSAEventSelect(s, 0, 0)`, `ioctlsocket(FIONBIO, 0)`), as Winsock documents for
//!   sockets accepted from an event-selected listener.
//! * **Streams**: blocking `recv`/`send` on two threads per connection, relayed to an
//!   in-process tokio pipe. tokio's Windows sockets rely on AFD readiness polling, which is
//!   not known to work for Hyper-V sockets (go-winio drives them with overlapped I/O
//!   instead); blocking calls work with every provider, and a utility VM has few
//!   connections (the bridge, the log, one per stdio stream). A relay thread ends when
//!   either side closes; the guest's side closes when its process or the VM ends.
//!
//! None of this has run on Windows: no Windows machine was available. The layouts and
//! constants it relies on are checked at compile time below.

use std::io;
use std::os::windows::io::{AsRawSocket, FromRawSocket, OwnedSocket};
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use windows_sys::core::GUID;
use windows_sys::Win32::Foundation::HANDLE;
use windows_sys::Win32::Networking::WinSock::{
    accept, bind, ioctlsocket, listen, recv, send, shutdown, socket, WSACloseEvent, WSACreateEvent,
    WSAEnumNetworkEvents, WSAEventSelect, WSAGetLastError, WSASetEvent, WSAStartup,
    WSAWaitForMultipleEvents, AF_HYPERV, FD_ACCEPT, FIONBIO, INVALID_SOCKET, SD_SEND, SOCKADDR,
    SOCKET, SOCKET_ERROR, SOCK_STREAM, WSADATA, WSAEVENT, WSAEWOULDBLOCK, WSANETWORKEVENTS,
    WSA_INFINITE,
};
use windows_sys::Win32::System::Hypervisor::{
    HV_GUID_VSOCK_TEMPLATE, HV_PROTOCOL_RAW, SOCKADDR_HV,
};

use super::{Guid, VmSockets};
use crate::transport::{BoxStream, PortListener};

/// Relay buffer size per direction.
const RELAY_BUFFER: usize = 64 * 1024;

// The neutral GUID layout and template are Microsoft's.
const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(size_of::<SOCKADDR_HV>() == 36);
    assert!(align_of::<SOCKADDR_HV>() == 4);
    assert!(offset_of!(SOCKADDR_HV, Family) == 0);
    assert!(offset_of!(SOCKADDR_HV, VmId) == 4);
    assert!(offset_of!(SOCKADDR_HV, ServiceId) == 20);
    assert!(size_of::<Guid>() == size_of::<GUID>());
    let t = HV_GUID_VSOCK_TEMPLATE;
    let ours = Guid::VSOCK_TEMPLATE;
    assert!(t.data1 == ours.data1 && t.data2 == ours.data2 && t.data3 == ours.data3);
    let mut i = 0;
    while i < 8 {
        assert!(t.data4[i] == ours.data4[i]);
        i += 1;
    }
};

fn guid(g: Guid) -> GUID {
    GUID {
        data1: g.data1,
        data2: g.data2,
        data3: g.data3,
        data4: g.data4,
    }
}

/// The last Winsock error as an `io::Error`.
fn wsa_error() -> io::Error {
    // SAFETY: reads the calling thread's last Winsock error; no preconditions.
    io::Error::from_raw_os_error(unsafe { WSAGetLastError() })
}

/// `WSAStartup(2.2)`, once per process (Winsock counts the calls; the process keeps it).
fn startup() -> io::Result<()> {
    static STARTED: OnceLock<Result<(), i32>> = OnceLock::new();
    let started = STARTED.get_or_init(|| {
        // SAFETY: WSADATA is plain data that WSAStartup fills.
        let mut data: WSADATA = unsafe { std::mem::zeroed() };
        // SAFETY: a valid out pointer for the duration of the call.
        match unsafe { WSAStartup(0x0202, &mut data) } {
            0 => Ok(()),
            code => Err(code),
        }
    });
    started.map_err(io::Error::from_raw_os_error)
}

/// A Winsock event object, closed on drop.
struct Event(WSAEVENT);

impl Event {
    fn new() -> io::Result<Self> {
        // SAFETY: no arguments; returns a new manual-reset event or 0 (WSA_INVALID_EVENT).
        let ev = unsafe { WSACreateEvent() };
        if ev == 0 {
            return Err(wsa_error());
        }
        Ok(Self(ev))
    }

    fn handle(&self) -> HANDLE {
        self.0 as HANDLE
    }
}

impl Drop for Event {
    fn drop(&mut self) {
        // SAFETY: an event we created and close once; nothing waits on it any more (its
        // owners hold it through an Arc until their waits returned).
        unsafe { WSACloseEvent(self.0) };
    }
}

// SAFETY: an event handle may be set, waited on and closed from any thread.
unsafe impl Send for Event {}
// SAFETY: as above; `WSASetEvent` and the waits are thread-safe.
unsafe impl Sync for Event {}

/// AF_HYPERV sockets of this host.
#[derive(Debug)]
pub struct HvSockets(());

impl HvSockets {
    /// Initializes Winsock.
    pub fn new() -> io::Result<Self> {
        startup()?;
        Ok(Self(()))
    }
}

#[async_trait]
impl VmSockets for HvSockets {
    async fn listen(&self, vm_id: Guid, port: u32) -> io::Result<Box<dyn PortListener>> {
        Ok(Box::new(HvListener::bind(vm_id, port)?))
    }
}

/// A bound, listening AF_HYPERV socket that accepts one connection.
struct HvListener {
    socket: OwnedSocket,
    accept_event: Event,
}

impl HvListener {
    fn bind(vm_id: Guid, port: u32) -> io::Result<Self> {
        // SAFETY: plain arguments; returns a new socket or INVALID_SOCKET.
        let raw = unsafe { socket(i32::from(AF_HYPERV), SOCK_STREAM, HV_PROTOCOL_RAW as i32) };
        if raw == INVALID_SOCKET {
            return Err(wsa_error());
        }
        // SAFETY: `raw` is a new socket owned by nobody else; OwnedSocket closes it.
        let socket = unsafe { OwnedSocket::from_raw_socket(raw as _) };
        let addr = SOCKADDR_HV {
            Family: AF_HYPERV,
            Reserved: 0,
            VmId: guid(vm_id),
            ServiceId: guid(Guid::vsock_service(port)),
        };
        // SAFETY: `addr` is a valid SOCKADDR_HV of the given length for the call.
        let r = unsafe {
            bind(
                raw_of(&socket),
                (&addr as *const SOCKADDR_HV).cast::<SOCKADDR>(),
                std::mem::size_of::<SOCKADDR_HV>() as i32,
            )
        };
        if r == SOCKET_ERROR {
            let e = wsa_error();
            return Err(io::Error::new(
                e.kind(),
                format!("bind AF_HYPERV {vm_id} port {port:#x}: {e}"),
            ));
        }
        // SAFETY: a bound socket; a backlog of one (one connection is accepted).
        if unsafe { listen(raw_of(&socket), 1) } == SOCKET_ERROR {
            return Err(wsa_error());
        }
        let accept_event = Event::new()?;
        // SAFETY: a listening socket and our event; the socket becomes non-blocking.
        if unsafe { WSAEventSelect(raw_of(&socket), accept_event.0, FD_ACCEPT as i32) }
            == SOCKET_ERROR
        {
            return Err(wsa_error());
        }
        Ok(Self {
            socket,
            accept_event,
        })
    }

    /// Waits for a connection or `cancel`; blocking.
    fn accept_blocking(&self, cancel: &Event) -> io::Result<OwnedSocket> {
        let events = [self.accept_event.handle(), cancel.handle()];
        loop {
            // SAFETY: two valid event handles, kept alive by `self` and the caller's Arc.
            let r = unsafe { WSAWaitForMultipleEvents(2, events.as_ptr(), 0, WSA_INFINITE, 0) };
            match r {
                0 => {}
                1 => {
                    return Err(io::Error::new(
                        io::ErrorKind::Interrupted,
                        "the accept was cancelled",
                    ))
                }
                _ => return Err(wsa_error()),
            }
            let mut ne = WSANETWORKEVENTS::default();
            // SAFETY: our socket and event; `ne` is a valid out pointer. This also resets
            // the accept event.
            let r =
                unsafe { WSAEnumNetworkEvents(raw_of(&self.socket), self.accept_event.0, &mut ne) };
            if r == SOCKET_ERROR {
                return Err(wsa_error());
            }
            // SAFETY: a listening socket; no peer address is asked for.
            let s = unsafe {
                accept(
                    raw_of(&self.socket),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                )
            };
            if s == INVALID_SOCKET {
                // SAFETY: reads the thread's last Winsock error.
                if unsafe { WSAGetLastError() } == WSAEWOULDBLOCK {
                    continue;
                }
                return Err(wsa_error());
            }
            // SAFETY: `s` is a new socket owned by nobody else.
            let accepted = unsafe { OwnedSocket::from_raw_socket(s as _) };
            // The accepted socket inherits the event selection: drop it, then make the
            // socket blocking again for the relay threads.
            // SAFETY: our socket; a null event with no events cancels the association.
            if unsafe { WSAEventSelect(s, 0, 0) } == SOCKET_ERROR {
                return Err(wsa_error());
            }
            let mut blocking: u32 = 0;
            // SAFETY: our socket and a valid argument pointer.
            if unsafe { ioctlsocket(s, FIONBIO, &mut blocking) } == SOCKET_ERROR {
                return Err(wsa_error());
            }
            return Ok(accepted);
        }
    }
}

fn raw_of(s: &OwnedSocket) -> SOCKET {
    s.as_raw_socket() as SOCKET
}

/// Sets the cancel event when the accepting future is dropped.
struct CancelOnDrop(Arc<Event>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        // SAFETY: a live event (the Arc keeps it open).
        unsafe { WSASetEvent((self.0).0) };
    }
}

#[async_trait]
impl PortListener for HvListener {
    async fn accept(self: Box<Self>) -> io::Result<BoxStream> {
        let cancel = Arc::new(Event::new()?);
        let guard = CancelOnDrop(cancel.clone());
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("hvsock-accept".into())
            .spawn(move || {
                let r = self.accept_blocking(&cancel);
                if tx.send(r).is_err() {
                    // The accept was cancelled: a late connection is closed here.
                    tracing::debug!("hvsock accept cancelled");
                }
            })?;
        let accepted = rx
            .await
            .map_err(|_| io::Error::other("the accept thread ended without an answer"))??;
        drop(guard);
        relay(accepted)
    }
}

/// Relays a connected blocking socket to an in-process async stream (see the module docs).
fn relay(socket: OwnedSocket) -> io::Result<BoxStream> {
    let (host, relay_end) = tokio::io::duplex(RELAY_BUFFER);
    let (mut from_host, mut to_host) = tokio::io::split(relay_end);
    let socket = Arc::new(socket);
    let rt = tokio::runtime::Handle::current();

    let guest_to_host = {
        let socket = socket.clone();
        let rt = rt.clone();
        move || {
            let mut buf = vec![0u8; RELAY_BUFFER];
            loop {
                // SAFETY: a connected socket and a buffer of the given length.
                let n = unsafe { recv(raw_of(&socket), buf.as_mut_ptr(), buf.len() as i32, 0) };
                if n <= 0 {
                    if n < 0 {
                        tracing::debug!(error = %wsa_error(), "hvsock receive ended");
                    }
                    break;
                }
                if rt.block_on(to_host.write_all(&buf[..n as usize])).is_err() {
                    break;
                }
            }
            // EOF for the host's reader.
            if let Err(e) = rt.block_on(to_host.shutdown()) {
                tracing::debug!(error = %e, "hvsock relay shutdown");
            }
        }
    };
    let host_to_guest = move || {
        let mut buf = vec![0u8; RELAY_BUFFER];
        loop {
            match rt.block_on(from_host.read(&mut buf)) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if let Err(e) = send_all(&socket, &buf[..n]) {
                        tracing::debug!(error = %e, "hvsock send ended");
                        return;
                    }
                }
            }
        }
        // The host closed its writing side: half-close towards the guest.
        // SAFETY: a connected socket.
        if unsafe { shutdown(raw_of(&socket), SD_SEND) } == SOCKET_ERROR {
            tracing::debug!(error = %wsa_error(), "hvsock half-close");
        }
    };
    std::thread::Builder::new()
        .name("hvsock-recv".into())
        .spawn(guest_to_host)?;
    std::thread::Builder::new()
        .name("hvsock-send".into())
        .spawn(host_to_guest)?;
    Ok(Box::new(host))
}

fn send_all(socket: &OwnedSocket, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        let len = data.len().min(i32::MAX as usize) as i32;
        // SAFETY: a connected socket and `len` readable bytes.
        let n = unsafe { send(raw_of(socket), data.as_ptr(), len, 0) };
        if n == SOCKET_ERROR {
            return Err(wsa_error());
        }
        data = &data[n as usize..];
    }
    Ok(())
}
