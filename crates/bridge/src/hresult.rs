//! The HRESULTs the bridge puts in a response's `Result` (the reference's `gcserr` table,
//! spec §3). They travel as signed 32-bit integers: `0xC037010E` is `-1070137074`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An HRESULT as carried in a bridge response: a signed 32-bit value, 0 meaning success.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Hresult(pub i32);

// The values are written as the familiar unsigned hex and reinterpreted as i32.
const fn hr(value: u32) -> Hresult {
    Hresult(value as i32)
}

impl Hresult {
    /// Success.
    pub const S_OK: Hresult = Hresult(0);
    /// `HrNotImpl` (0x80004001): unknown message or unsupported request.
    pub const NOT_IMPL: Hresult = hr(0x8000_4001);
    /// `HrFail` (0x80004005): the default failure.
    pub const FAIL: Hresult = hr(0x8000_4005);
    /// `HrErrNotFound` (0x80070490): unknown pid, or the process is already gone.
    pub const ERR_NOT_FOUND: Hresult = hr(0x8007_0490);
    /// `HrInvalidArg` (0x80070057).
    pub const INVALID_ARG: Hresult = hr(0x8007_0057);
    /// `HrVmcomputeTimeout` (0xC0370109): WaitForProcess timed out.
    pub const VMCOMPUTE_TIMEOUT: Hresult = hr(0xC037_0109);
    /// `HrVmcomputeInvalidJSON` (0xC037010D): any JSON unmarshal failure; schema < 2.1.
    pub const VMCOMPUTE_INVALID_JSON: Hresult = hr(0xC037_010D);
    /// `HrVmcomputeSystemNotFound` (0xC037010E): unknown container.
    pub const VMCOMPUTE_SYSTEM_NOT_FOUND: Hresult = hr(0xC037_010E);
    /// `HrVmcomputeSystemAlreadyExists` (0xC037010F): duplicate create.
    pub const VMCOMPUTE_SYSTEM_ALREADY_EXISTS: Hresult = hr(0xC037_010F);
    /// `HrVmcomputeUnsupportedProtocolVersion` (0xC037010C).
    pub const VMCOMPUTE_UNSUPPORTED_PROTOCOL_VERSION: Hresult = hr(0xC037_010C);
    /// `HrVmcomputeUnknownMessage` (0xC037010B).
    pub const VMCOMPUTE_UNKNOWN_MESSAGE: Hresult = hr(0xC037_010B);
    /// `HrVmcomputeInvalidState` (0x80370105): the container is still being created.
    pub const VMCOMPUTE_INVALID_STATE: Hresult = hr(0x8037_0105);
    /// `HrVmcomputeSystemAlreadyStopped` (0xC0370110).
    pub const VMCOMPUTE_SYSTEM_ALREADY_STOPPED: Hresult = hr(0xC037_0110);

    /// Every named HRESULT of the table, with its reference name.
    pub const NAMED: &'static [(Hresult, &'static str)] = &[
        (Self::NOT_IMPL, "HrNotImpl"),
        (Self::FAIL, "HrFail"),
        (Self::ERR_NOT_FOUND, "HrErrNotFound"),
        (Self::INVALID_ARG, "HrInvalidArg"),
        (Self::VMCOMPUTE_TIMEOUT, "HrVmcomputeTimeout"),
        (Self::VMCOMPUTE_INVALID_JSON, "HrVmcomputeInvalidJSON"),
        (
            Self::VMCOMPUTE_SYSTEM_NOT_FOUND,
            "HrVmcomputeSystemNotFound",
        ),
        (
            Self::VMCOMPUTE_SYSTEM_ALREADY_EXISTS,
            "HrVmcomputeSystemAlreadyExists",
        ),
        (
            Self::VMCOMPUTE_UNSUPPORTED_PROTOCOL_VERSION,
            "HrVmcomputeUnsupportedProtocolVersion",
        ),
        (Self::VMCOMPUTE_UNKNOWN_MESSAGE, "HrVmcomputeUnknownMessage"),
        (Self::VMCOMPUTE_INVALID_STATE, "HrVmcomputeInvalidState"),
        (
            Self::VMCOMPUTE_SYSTEM_ALREADY_STOPPED,
            "HrVmcomputeSystemAlreadyStopped",
        ),
    ];

    /// The value as the unsigned 32-bit number it is usually written as.
    pub const fn as_u32(self) -> u32 {
        self.0 as u32
    }

    /// True for 0 (and any other non-negative value, as HRESULT `SUCCEEDED` does).
    pub const fn is_success(self) -> bool {
        self.0 >= 0
    }

    /// The reference name of a named HRESULT.
    pub fn name(self) -> Option<&'static str> {
        Self::NAMED
            .iter()
            .find(|(h, _)| *h == self)
            .map(|(_, name)| *name)
    }
}

/// Displays as the reference's bare form, `HRESULT: 0xc037010e`. (The wrapped form of a
/// `gcserr` error with a cause is `HRESULT 0x80004001: <cause>`, without the colon.)
impl fmt::Display for Hresult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HRESULT: {:#x}", self.as_u32())
    }
}

impl From<Hresult> for i32 {
    fn from(value: Hresult) -> Self {
        value.0
    }
}

impl From<i32> for Hresult {
    fn from(value: i32) -> Self {
        Hresult(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_values_are_signed() {
        assert_eq!(Hresult::VMCOMPUTE_SYSTEM_NOT_FOUND.0, -1_070_137_074);
        assert_eq!(
            serde_json::to_string(&Hresult::VMCOMPUTE_SYSTEM_NOT_FOUND).unwrap(),
            "-1070137074"
        );
        assert_eq!(Hresult::NOT_IMPL.as_u32(), 0x8000_4001);
        assert!(!Hresult::FAIL.is_success());
        assert!(Hresult::S_OK.is_success());
    }

    #[test]
    fn display_matches_reference_bare_form() {
        assert_eq!(
            Hresult::VMCOMPUTE_SYSTEM_NOT_FOUND.to_string(),
            "HRESULT: 0xc037010e"
        );
        assert_eq!(Hresult::FAIL.name(), Some("HrFail"));
        assert_eq!(Hresult(1).name(), None);
    }
}
