//! GUIDs as the layer APIs use them: the Windows `GUID` struct, its two 16-byte forms (the
//! "array" form of RFC 4122, big-endian fields, and the "Windows array" form, little-endian
//! fields, which is how the root package's `GUID [16]byte` holds them), its text form, and
//! the two ways hcsshim derives a GUID from a name:
//!
//! * [`new_guid`] (`hcsshim.NewGUID`): the first 16 bytes of the SHA-1 of the name, taken
//!   as a Windows-array GUID, with no version or variant bits set;
//! * [`name_to_guid`] (`hcsshim.NameToGuid`): vmcompute.dll's own derivation (Windows only).

use std::fmt;
use std::str::FromStr;

use sha1::{Digest, Sha1};

use crate::error::{Error, Result};

/// A GUID (`Data1`..`Data4`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
    /// From the RFC 4122 byte order (`guid.FromArray`).
    pub fn from_array(b: [u8; 16]) -> Self {
        Self {
            data1: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            data2: u16::from_be_bytes([b[4], b[5]]),
            data3: u16::from_be_bytes([b[6], b[7]]),
            data4: b[8..].try_into().expect("8 bytes"),
        }
    }

    /// To the RFC 4122 byte order (`guid.ToArray`).
    pub fn to_array(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..4].copy_from_slice(&self.data1.to_be_bytes());
        b[4..6].copy_from_slice(&self.data2.to_be_bytes());
        b[6..8].copy_from_slice(&self.data3.to_be_bytes());
        b[8..].copy_from_slice(&self.data4);
        b
    }

    /// From the Windows byte order (`guid.FromWindowsArray`; the layout of `GUID` in memory
    /// and of the root package's `GUID [16]byte`).
    pub fn from_windows_array(b: [u8; 16]) -> Self {
        Self {
            data1: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            data2: u16::from_le_bytes([b[4], b[5]]),
            data3: u16::from_le_bytes([b[6], b[7]]),
            data4: b[8..].try_into().expect("8 bytes"),
        }
    }

    /// To the Windows byte order (`guid.ToWindowsArray`).
    pub fn to_windows_array(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..4].copy_from_slice(&self.data1.to_le_bytes());
        b[4..6].copy_from_slice(&self.data2.to_le_bytes());
        b[6..8].copy_from_slice(&self.data3.to_le_bytes());
        b[8..].copy_from_slice(&self.data4);
        b
    }
}

impl fmt::Display for Guid {
    /// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, lower case.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.data4;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            self.data1, self.data2, self.data3, d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]
        )
    }
}

impl FromStr for Guid {
    type Err = Error;

    /// Parses exactly the 36-character form [`fmt::Display`] writes (either case), as
    /// go-winio's `guid.FromString` does.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::InvalidGuid(s.to_string());
        let b = s.as_bytes();
        if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
            return Err(bad());
        }
        let hex: Vec<u8> = b
            .iter()
            .enumerate()
            .filter(|(i, _)| ![8, 13, 18, 23].contains(i))
            .map(|(_, &c)| c)
            .collect();
        let mut bytes = [0u8; 16];
        for (i, pair) in hex.chunks_exact(2).enumerate() {
            let digit = |c: u8| (c as char).to_digit(16).ok_or_else(bad);
            bytes[i] = (digit(pair[0])? << 4 | digit(pair[1])?) as u8;
        }
        Ok(Self::from_array(bytes))
    }
}

impl From<hcs::vmcompute::LayerGuid> for Guid {
    fn from(g: hcs::vmcompute::LayerGuid) -> Self {
        Self {
            data1: g.data1,
            data2: g.data2,
            data3: g.data3,
            data4: g.data4,
        }
    }
}

impl From<Guid> for hcs::vmcompute::LayerGuid {
    fn from(g: Guid) -> Self {
        Self {
            data1: g.data1,
            data2: g.data2,
            data3: g.data3,
            data4: g.data4,
        }
    }
}

/// `hcsshim.NewGUID(source)`: the first 16 bytes of SHA-1(`source`) in the Windows byte
/// order. (Not an RFC 4122 name-based GUID: no version or variant bits are set, exactly as
/// the reference does, so ids stay the same as the ones it made.)
pub fn new_guid(source: &str) -> Guid {
    let digest = Sha1::digest(source.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    Guid::from_windows_array(b)
}

/// `hcsshim.NameToGuid(name)`: vmcompute.dll's GUID for a layer name (Windows only; fails
/// with "not available" elsewhere).
pub fn name_to_guid(name: &str) -> Result<Guid> {
    let api = hcs::sys::default_vmcompute()?;
    name_to_guid_with(api.as_ref(), name)
}

/// [`name_to_guid`] against any vmcompute binding (a fake in tests).
pub fn name_to_guid_with(api: &dyn hcs::vmcompute::VmcomputeApi, name: &str) -> Result<Guid> {
    use hcs::vmcompute::{LayerCall, LayerOutput};
    match api.layer_call(LayerCall::NameToGuid { name }) {
        Ok(LayerOutput::Guid(g)) => Ok(g.into()),
        Ok(other) => Err(Error::Hcs(hcs::Error::op(
            "hcsshim::NameToGuid",
            hcs::ErrorKind::InvalidResponse(format!("unexpected output {other:?}")),
        ))),
        Err(hr) => Err(hcs::operation::call_error(hr, None)
            .with_op("hcsshim::NameToGuid")
            .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_orders_and_text() {
        let b: [u8; 16] = std::array::from_fn(|i| i as u8 + 1);
        let g = Guid::from_array(b);
        assert_eq!(g.to_string(), "01020304-0506-0708-090a-0b0c0d0e0f10");
        assert_eq!(g.to_array(), b);
        assert_eq!(
            g.to_windows_array(),
            [4, 3, 2, 1, 6, 5, 8, 7, 9, 10, 11, 12, 13, 14, 15, 16]
        );
        assert_eq!(Guid::from_windows_array(g.to_windows_array()), g);
        assert_eq!(g.to_string().parse::<Guid>().unwrap(), g);
        assert_eq!(
            "01020304-0506-0708-090A-0B0C0D0E0F10"
                .parse::<Guid>()
                .unwrap(),
            g
        );
        for bad in [
            "",
            "01020304-0506-0708-090a-0b0c0d0e0f1",
            "{01020304-0506-0708-090a-0b0c0d0e0f10}",
            "01020304x0506-0708-090a-0b0c0d0e0f10",
            "0102030g-0506-0708-090a-0b0c0d0e0f10",
            "01020304-0506-0708-090a-0b0c0d0e0f1é",
        ] {
            assert!(bad.parse::<Guid>().is_err(), "{bad}");
        }
    }

    #[test]
    fn new_guid_is_sha1_in_windows_order() {
        // SHA-1("abc") = a9993e36 4706816a ba3e2571 7850c26c 9cd0d89d.
        let g = new_guid("abc");
        assert_eq!(
            g.to_windows_array(),
            [
                0xa9, 0x99, 0x3e, 0x36, 0x47, 0x06, 0x81, 0x6a, 0xba, 0x3e, 0x25, 0x71, 0x78, 0x50,
                0xc2, 0x6c
            ]
        );
        // The text form reads the first three fields little-endian, as hcsshim's
        // GUID.ToString does.
        assert_eq!(g.to_string(), "363e99a9-0647-6a81-ba3e-25717850c26c");
    }

    #[test]
    fn name_to_guid_goes_to_vmcompute() {
        let fake = hcs::fake_vmcompute::FakeVmcompute::new();
        let g = name_to_guid_with(fake.as_ref(), "layer").unwrap();
        assert_eq!(fake.calls_of("NameToGuid")[0].arg, "layer");
        let direct: Guid = hcs::vmcompute::LayerGuid::from(g).into();
        assert_eq!(direct, g);
        #[cfg(not(windows))]
        assert!(matches!(
            name_to_guid("layer").unwrap_err(),
            Error::Hcs(e) if matches!(e.kind(), hcs::ErrorKind::NotAvailable(_))
        ));
    }
}
