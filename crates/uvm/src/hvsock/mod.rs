//! Hyper-V sockets (AF_HYPERV) as the host sees a utility VM's vsock ports.
//!
//! The guest dials vsock ports on CID 2; the host listens on the VM's Hyper-V socket
//! address: the VM id (the utility VM's `RuntimeId`) and a service GUID made from the port,
//! the vsock template `XXXXXXXX-facb-11e6-bd58-64006a7986d3` with `Data1` = the port
//! (gcs-bridge-protocol.md §1, go-winio's `VsockServiceID`). This module holds that
//! derivation, the well-known ports and the [`VmSockets`] interface the HCS sandbox listens
//! through; the Win32 implementation is [`windows`] (Windows only).

use std::fmt;
use std::io;
use std::sync::Arc;

use async_trait::async_trait;

use crate::transport::{PortListener, StdioTransport};

#[cfg(windows)]
pub mod windows;

/// The entropy port: `init -e 1` reads seed bytes from it (`LinuxEntropyVsockPort`).
pub const ENTROPY_PORT: u32 = 1;
/// The GCS log port: `vsockexec -e 109` sends the GCS's stderr there (`LinuxLogVsockPort`).
pub const LOG_PORT: u32 = 109;
/// Bytes of entropy the host sends (`LinuxEntropyBytes`).
pub const ENTROPY_BYTES: usize = 512;

/// A GUID in its Windows layout (`Data1` … `Data4`), as `SOCKADDR_HV` carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Guid {
    /// `Data1`.
    pub data1: u32,
    /// `Data2`.
    pub data2: u16,
    /// `Data3`.
    pub data3: u16,
    /// `Data4`.
    pub data4: [u8; 8],
}

impl Guid {
    /// The vsock service template `00000000-facb-11e6-bd58-64006a7986d3`
    /// (`HV_GUID_VSOCK_TEMPLATE`).
    pub const VSOCK_TEMPLATE: Guid = Guid {
        data1: 0,
        data2: 0xfacb,
        data3: 0x11e6,
        data4: [0xbd, 0x58, 0x64, 0x00, 0x6a, 0x79, 0x86, 0xd3],
    };

    /// Parses the canonical `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` form (any hex case).
    pub fn parse(text: &str) -> Option<Guid> {
        let b = text.as_bytes();
        if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
            return None;
        }
        let hex = |range: std::ops::Range<usize>| -> Option<u64> {
            let s = text.get(range)?;
            s.bytes()
                .all(|c| c.is_ascii_hexdigit())
                .then(|| u64::from_str_radix(s, 16).ok())?
        };
        let mut data4 = [0u8; 8];
        let tail = hex(19..23)?.to_be_bytes();
        data4[..2].copy_from_slice(&tail[6..]);
        let node = hex(24..36)?.to_be_bytes();
        data4[2..].copy_from_slice(&node[2..]);
        Some(Guid {
            data1: u32::try_from(hex(0..8)?).ok()?,
            data2: u16::try_from(hex(9..13)?).ok()?,
            data3: u16::try_from(hex(14..18)?).ok()?,
            data4,
        })
    }

    /// The service GUID of vsock `port` (go-winio's `VsockServiceID`).
    pub fn vsock_service(port: u32) -> Guid {
        Guid {
            data1: port,
            ..Self::VSOCK_TEMPLATE
        }
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.data4;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            self.data1, self.data2, self.data3, d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]
        )
    }
}

/// Where the host listens for a utility VM's guest connections: one listener per vsock port
/// of VM `vm_id`, each accepting exactly one connection.
#[async_trait]
pub trait VmSockets: Send + Sync + fmt::Debug {
    /// Starts listening on `port` of VM `vm_id`. The listener is ready when this returns.
    async fn listen(&self, vm_id: Guid, port: u32) -> io::Result<Box<dyn PortListener>>;
}

/// The stdio transport of one VM: [`VmSockets`] bound to its id.
#[derive(Debug, Clone)]
pub struct VmStdio {
    sockets: Arc<dyn VmSockets>,
    vm_id: Guid,
}

impl VmStdio {
    /// Stdio listeners on VM `vm_id` through `sockets`.
    pub fn new(sockets: Arc<dyn VmSockets>, vm_id: Guid) -> Self {
        Self { sockets, vm_id }
    }
}

#[async_trait]
impl StdioTransport for VmStdio {
    async fn listen(&self, port: u32) -> io::Result<Box<dyn PortListener>> {
        self.sockets.listen(self.vm_id, port).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::BRIDGE_PORT;

    #[test]
    fn service_ids_are_the_vsock_template_with_the_port() {
        // The values the reference writes into the UVM's HvSocket service table.
        assert_eq!(
            Guid::vsock_service(BRIDGE_PORT).to_string(),
            "40000000-facb-11e6-bd58-64006a7986d3"
        );
        assert_eq!(
            Guid::vsock_service(BRIDGE_PORT + 1).to_string(),
            "40000001-facb-11e6-bd58-64006a7986d3"
        );
        assert_eq!(
            Guid::vsock_service(LOG_PORT).to_string(),
            "0000006d-facb-11e6-bd58-64006a7986d3"
        );
        assert_eq!(
            Guid::vsock_service(ENTROPY_PORT).to_string(),
            "00000001-facb-11e6-bd58-64006a7986d3"
        );
        assert_eq!(
            Guid::vsock_service(0x808).to_string(),
            "00000808-facb-11e6-bd58-64006a7986d3"
        );
    }

    #[test]
    fn guids_parse_in_windows_layout() {
        let g = Guid::parse("A42E7CDA-D03F-480C-9CC2-A4DE20ABB878").unwrap();
        assert_eq!(g.data1, 0xa42e7cda);
        assert_eq!(g.data2, 0xd03f);
        assert_eq!(g.data3, 0x480c);
        assert_eq!(g.data4, [0x9c, 0xc2, 0xa4, 0xde, 0x20, 0xab, 0xb8, 0x78]);
        assert_eq!(g.to_string(), "a42e7cda-d03f-480c-9cc2-a4de20abb878");
        assert_eq!(
            Guid::parse("40000000-facb-11e6-bd58-64006a7986d3"),
            Some(Guid::vsock_service(BRIDGE_PORT))
        );
        for bad in [
            "",
            "40000000facb-11e6-bd58-64006a7986d3-",
            "4000000g-facb-11e6-bd58-64006a7986d3",
            "40000000-facb-11e6-bd58-64006a7986d",
            "+0000000-facb-11e6-bd58-64006a7986d3",
            "40000000-+acb-11e6-bd58-64006a7986d3",
        ] {
            assert_eq!(Guid::parse(bad), None, "{bad:?}");
        }
    }
}
