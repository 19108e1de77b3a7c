//! HRESULT values as HCS, vmcompute and the GCS report them.
//!
//! An [`HResult`] keeps the exact 32-bit value it was built from, so it can be logged and
//! sent back on the wire unchanged. Comparisons that decide behaviour go through
//! [`HResult::condition`], which applies the two equivalences of the spec (hcs-hcn-api.md,
//! conventions and §2.1):
//!
//! * FACILITY_WIN32 normalisation: `0x8007xxxx` is the same condition as the bare Win32 code
//!   `xxxx` (hcsshim stores every Win32 failure in that bare form);
//! * the v1 `ERROR_VMCOMPUTE_*` codes (`0xC037nnnn`) and the computecore `HCS_E_*` codes
//!   (`0x8037nnnn`) with the same low word name the same condition. hcsshim's v2 predicates
//!   compare only one of the two forms; this port treats them as one.

use std::fmt;

/// A Windows HRESULT (or a bare Win32 error code in the normalised form hcsshim stores).
///
/// The value is kept exactly as given; see [`HResult::normalized`] and
/// [`HResult::condition`] for the forms used in comparisons.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HResult(u32);

/// Mask selecting the facility bits plus the customer/reserved bits hcsshim tests.
const FACILITY_MASK: u32 = 0x1FFF_0000;
/// `FACILITY_WIN32` shifted into place (`0x0007_0000`).
const FACILITY_WIN32_BITS: u32 = 0x0007_0000;
/// The high word of the v1 vmcompute error codes (`ERROR_VMCOMPUTE_*`).
const VMCOMPUTE_HIGH: u32 = 0xC037_0000;
/// The high word of the computecore error codes (`HCS_E_*`).
const HCS_E_HIGH: u32 = 0x8037_0000;

impl HResult {
    /// Builds an HRESULT from its value, kept exactly as given (no normalisation).
    pub const fn new(value: u32) -> Self {
        Self(value)
    }

    /// Builds an HRESULT from the signed value a Win32 call returns, kept as given.
    pub const fn from_i32(value: i32) -> Self {
        Self(value as u32)
    }

    /// Builds the error a failed HCS call reports, applying hcsshim's normalisation: a
    /// FACILITY_WIN32 HRESULT (`(hr & 0x1FFF0000) == 0x00070000`) becomes the bare Win32 code
    /// `hr & 0xFFFF`; every other value is kept. Returns `None` when `hr` is not a failure
    /// (`hr >= 0`).
    pub const fn from_call(hr: i32) -> Option<Self> {
        if hr >= 0 {
            None
        } else {
            Some(Self(hr as u32).normalized())
        }
    }

    /// The value exactly as it was built.
    pub const fn value(self) -> u32 {
        self.0
    }

    /// The value as the signed 32-bit integer Windows APIs and JSON documents use.
    pub const fn as_i32(self) -> i32 {
        self.0 as i32
    }

    /// True for a failure HRESULT (sign bit set). Bare Win32 codes (normalised form) are
    /// positive but still errors; this only reports the HRESULT severity bit.
    pub const fn is_failure_hresult(self) -> bool {
        (self.0 as i32) < 0
    }

    /// hcsshim's normal form: FACILITY_WIN32 failures reduced to the bare Win32 code.
    pub const fn normalized(self) -> Self {
        if (self.0 as i32) < 0 && (self.0 & FACILITY_MASK) == FACILITY_WIN32_BITS {
            Self(self.0 & 0xFFFF)
        } else {
            self
        }
    }

    /// The key two HRESULTs are compared by: the normal form, with the v1
    /// `ERROR_VMCOMPUTE_*` form (`0xC037nnnn`) folded onto the `HCS_E_*` form (`0x8037nnnn`).
    pub const fn condition(self) -> u32 {
        let n = self.normalized().0;
        if n & 0xFFFF_0000 == VMCOMPUTE_HIGH {
            HCS_E_HIGH | (n & 0xFFFF)
        } else {
            n
        }
    }

    /// True when both values name the same condition (see [`HResult::condition`]).
    pub const fn same_condition(self, other: HResult) -> bool {
        self.condition() == other.condition()
    }

    /// True when this value names the same condition as any of `targets`.
    pub fn is_any(self, targets: &[HResult]) -> bool {
        targets.iter().any(|t| self.same_condition(*t))
    }

    /// The table entry for this exact value, or for its normal form.
    pub fn info(self) -> Option<&'static HResultInfo> {
        lookup(self.0).or_else(|| lookup(self.normalized().0))
    }

    /// The symbolic name, if the value is in the table.
    pub fn name(self) -> Option<&'static str> {
        self.info().map(|i| i.name)
    }

    /// The message, if the value is in the table.
    pub fn message(self) -> Option<&'static str> {
        self.info().map(|i| i.message)
    }
}

impl fmt::Debug for HResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "HResult({name}, {:#010X})", self.0),
            None => write!(f, "HResult({:#010X})", self.0),
        }
    }
}

/// `NAME (0x...): message`, or `HRESULT 0x...` for a value outside the table.
impl fmt::Display for HResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.info() {
            Some(info) => write!(f, "{} ({:#X}): {}", info.name, self.0, info.message),
            None => write!(f, "HRESULT {:#X}", self.0),
        }
    }
}

impl From<u32> for HResult {
    fn from(v: u32) -> Self {
        Self(v)
    }
}

impl From<i32> for HResult {
    fn from(v: i32) -> Self {
        Self(v as u32)
    }
}

/// One entry of the HRESULT table: Windows symbol, hcsshim name (if hcsshim names it), value
/// and message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HResultInfo {
    /// The Windows symbol (`ERROR_VMCOMPUTE_SYSTEM_NOT_FOUND`, `HCS_E_INVALID_STATE`, ...).
    pub name: &'static str,
    /// The hcsshim variable name, when hcsshim has one (`ErrComputeSystemDoesNotExist`).
    pub hcsshim_name: Option<&'static str>,
    /// The value in the form hcsshim stores it (normalised).
    pub value: HResult,
    /// What the code means.
    pub message: &'static str,
}

macro_rules! hresults {
    ($( $(#[$doc:meta])* $konst:ident = $value:literal, $hcsshim:expr, $message:literal; )*) => {
        impl HResult {
            $(
                $(#[$doc])*
                pub const $konst: HResult = HResult($value);
            )*
        }

        /// Every HRESULT this crate knows by name, in the normalised form.
        pub static HRESULT_TABLE: &[HResultInfo] = &[
            $( HResultInfo {
                name: stringify!($konst),
                hcsshim_name: $hcsshim,
                value: HResult($value),
                message: $message,
            }, )*
        ];
    };
}

hresults! {
    // ---- Win32 codes (normalised form) ----
    /// Access is denied (hcsshim `ErrVmcomputeOperationAccessIsDenied`; seen when enumerating
    /// on RS1/RS2 while a silo terminates).
    #[doc(alias = "ErrVmcomputeOperationAccessIsDenied")]
    ERROR_ACCESS_DENIED = 0x5, Some("ErrVmcomputeOperationAccessIsDenied"), "Access is denied.";
    /// The handle is invalid (hcsshim `ErrInvalidHandle`; property query on a closed handle).
    #[doc(alias = "ErrInvalidHandle")]
    ERROR_INVALID_HANDLE = 0x6, Some("ErrInvalidHandle"), "The handle is invalid.";
    /// The data is invalid (hcsshim `ErrInvalidData`, from `0x8007000D`).
    #[doc(alias = "ErrInvalidData")]
    ERROR_INVALID_DATA = 0xD, Some("ErrInvalidData"), "The data is invalid.";
    /// A device attached to the system is not functioning (hcsshim `ERROR_GEN_FAILURE`, the
    /// fallback Win32 code of `Win32FromError`).
    ERROR_GEN_FAILURE = 0x1F, Some("ERROR_GEN_FAILURE"), "A device attached to the system is not functioning.";
    /// The request is not supported (hcsshim `ErrNotSupported`).
    #[doc(alias = "ErrNotSupported")]
    ERROR_NOT_SUPPORTED = 0x32, Some("ErrNotSupported"), "The request is not supported.";
    /// A DLL export is missing (hcsshim `ErrProcNotFound`).
    #[doc(alias = "ErrProcNotFound")]
    ERROR_PROC_NOT_FOUND = 0x7F, Some("ErrProcNotFound"), "The specified procedure could not be found.";
    /// A system shutdown is in progress (hcsshim `ERROR_SHUTDOWN_IN_PROGRESS`, 1115).
    ERROR_SHUTDOWN_IN_PROGRESS = 0x45B, Some("ERROR_SHUTDOWN_IN_PROGRESS"), "A system shutdown is in progress.";
    /// Element not found (hcsshim `ErrElementNotFound`, 1168, from `0x80070490`); for a
    /// process it also means "already exited".
    #[doc(alias = "ErrElementNotFound")]
    ERROR_NOT_FOUND = 0x490, Some("ErrElementNotFound"), "Element not found.";
    /// An invalid argument was supplied (hcsshim `WSAEINVAL`, 10022).
    WSAEINVAL = 0x2726, Some("WSAEINVAL"), "An invalid argument was supplied.";

    // ---- Raw HRESULTs kept un-normalised on some wires ----
    /// Element not found as a raw HRESULT (the GCS bridge `hrNotFound`, not normalised).
    #[doc(alias = "hrNotFound")]
    HRESULT_ERROR_NOT_FOUND = 0x8007_0490, Some("hrNotFound"), "Element not found.";
    /// Not implemented (hcn `HCN_E_NOTIMPL`).
    E_NOTIMPL = 0x8000_4001, Some("HCN_E_NOTIMPL"), "Not implemented.";
    /// The HCN port already exists (hcn `HCN_E_PORT_ALREADY_EXISTS`).
    HCN_E_PORT_ALREADY_EXISTS = 0x803B_0013, Some("HCN_E_PORT_ALREADY_EXISTS"), "A port with the specified settings already exists.";

    // ---- computecore HCS_E_* (0x8037xxxx) ----
    /// The virtual machine or container exited unexpectedly while starting.
    HCS_E_TERMINATED_DURING_START = 0x8037_0100, None, "The virtual machine or container exited unexpectedly while starting.";
    /// The container operating system does not match the host operating system.
    HCS_E_IMAGE_MISMATCH = 0x8037_0101, None, "The container operating system does not match the host operating system.";
    /// A required feature (Hyper-V) is not installed.
    HCS_E_HYPERV_NOT_INSTALLED = 0x8037_0102, None, "The virtual machine could not be started because a required feature is not installed.";
    /// The operation is not valid in the current state (hcsshim v2 `ErrInvalidState`).
    #[doc(alias = "ErrInvalidState")]
    HCS_E_INVALID_STATE = 0x8037_0105, Some("ErrInvalidState"), "The requested virtual machine or container operation is not valid in the current state.";
    /// The virtual machine or container exited unexpectedly.
    HCS_E_UNEXPECTED_EXIT = 0x8037_0106, None, "The virtual machine or container exited unexpectedly.";
    /// The virtual machine or container was forcefully exited.
    HCS_E_TERMINATED = 0x8037_0107, None, "The virtual machine or container was forcefully exited.";
    /// A connection could not be established with the container or virtual machine.
    HCS_E_CONNECT_FAILED = 0x8037_0108, None, "A connection could not be established with the container or virtual machine.";
    /// No response was received from the virtual machine or container in time.
    HCS_E_CONNECTION_TIMEOUT = 0x8037_0109, None, "The operation timed out because a response was not received from the virtual machine or container.";
    /// The connection with the virtual machine or container was closed.
    HCS_E_CONNECTION_CLOSED = 0x8037_010A, None, "The connection with the virtual machine or container was closed.";
    /// An unknown internal message was received.
    HCS_E_UNKNOWN_MESSAGE = 0x8037_010B, None, "An unknown internal message was received by the virtual machine or container.";
    /// No common communication protocol version with the host.
    HCS_E_UNSUPPORTED_PROTOCOL_VERSION = 0x8037_010C, None, "The virtual machine or container does not support an available version of the communication protocol with the host.";
    /// The JSON document is invalid.
    HCS_E_INVALID_JSON = 0x8037_010D, None, "The virtual machine or container JSON document is invalid.";
    /// No compute system has that id.
    HCS_E_SYSTEM_NOT_FOUND = 0x8037_010E, None, "A virtual machine or container with the specified identifier does not exist.";
    /// A compute system with that id already exists.
    HCS_E_SYSTEM_ALREADY_EXISTS = 0x8037_010F, None, "A virtual machine or container with the specified identifier already exists.";
    /// The compute system is not running (hcsshim `ErrVmcomputeSystemAlreadyStopped`).
    #[doc(alias = "ErrVmcomputeSystemAlreadyStopped")]
    HCS_E_SYSTEM_ALREADY_STOPPED = 0x8037_0110, Some("ErrVmcomputeSystemAlreadyStopped"), "The virtual machine or container with the specified identifier is not running.";
    /// A communication protocol error occurred.
    HCS_E_PROTOCOL_ERROR = 0x8037_0111, None, "A communication protocol error has occurred between the virtual machine or container and the host.";
    /// The container image contains a layer with an unrecognised format.
    HCS_E_INVALID_LAYER = 0x8037_0112, None, "The container image contains a layer with an unrecognized format.";
    /// The image requires the Windows Insider Program.
    HCS_E_WINDOWS_INSIDER_REQUIRED = 0x8037_0113, None, "To use this container image, you must join the Windows Insider Program.";
    /// The compute service is not available.
    HCS_E_SERVICE_NOT_AVAILABLE = 0x8037_0114, None, "The operation could not be started because a required feature is not installed.";
    /// The operation has not started.
    HCS_E_OPERATION_NOT_STARTED = 0x8037_0115, None, "The operation has not started.";
    /// The operation is already running.
    HCS_E_OPERATION_ALREADY_STARTED = 0x8037_0116, None, "The operation is already running.";
    /// The operation is still running.
    HCS_E_OPERATION_PENDING = 0x8037_0117, None, "The operation is still running.";
    /// The wait for the operation elapsed; the caller should cancel it.
    HCS_E_OPERATION_TIMEOUT = 0x8037_0118, Some("hcsErrOperationTimeout"), "The operation did not complete in time.";
    /// An event callback is already registered on the handle.
    HCS_E_OPERATION_SYSTEM_CALLBACK_ALREADY_SET = 0x8037_0119, None, "An event callback has already been registered on this handle.";
    /// Not enough memory to return the operation result.
    HCS_E_OPERATION_RESULT_ALLOCATION_FAILED = 0x8037_011A, None, "Not enough memory available to return the result of the operation.";
    /// Insufficient access.
    HCS_E_ACCESS_DENIED = 0x8037_011B, None, "Insufficient access to perform this operation.";
    /// The guest reported a critical error.
    HCS_E_GUEST_CRITICAL_ERROR = 0x8037_011C, None, "The virtual machine or container reported a critical error and was stopped or restarted.";
    /// The process information is not available.
    HCS_E_PROCESS_INFO_NOT_AVAILABLE = 0x8037_011D, None, "The process information is not available.";
    /// The compute service disconnected.
    HCS_E_SERVICE_DISCONNECT = 0x8037_011E, None, "The host compute system service has disconnected unexpectedly.";
    /// The process has already exited (hcsshim `ErrProcessAlreadyStopped`).
    #[doc(alias = "ErrProcessAlreadyStopped")]
    HCS_E_PROCESS_ALREADY_STOPPED = 0x8037_011F, Some("ErrProcessAlreadyStopped"), "The process has already exited.";

    // ---- vmcompute ERROR_VMCOMPUTE_* (0xC037xxxx) ----
    /// v1 form of [`HResult::HCS_E_TERMINATED_DURING_START`].
    ERROR_VMCOMPUTE_TERMINATED_DURING_START = 0xC037_0100, None, "The virtual machine or container exited unexpectedly while starting.";
    /// v1 form of [`HResult::HCS_E_IMAGE_MISMATCH`].
    ERROR_VMCOMPUTE_IMAGE_MISMATCH = 0xC037_0101, None, "The container operating system does not match the host operating system.";
    /// v1 form of [`HResult::HCS_E_HYPERV_NOT_INSTALLED`].
    ERROR_VMCOMPUTE_HYPERV_NOT_INSTALLED = 0xC037_0102, None, "The virtual machine could not be started because a required feature is not installed.";
    /// The v1 call continues asynchronously (hcsshim `ErrVmcomputeOperationPending`).
    #[doc(alias = "ErrVmcomputeOperationPending")]
    ERROR_VMCOMPUTE_OPERATION_PENDING = 0xC037_0103, Some("ErrVmcomputeOperationPending"), "The call to start an asynchronous operation succeeded and the operation is performed in the background.";
    /// Too many notifications (v1 only).
    ERROR_VMCOMPUTE_TOO_MANY_NOTIFICATIONS = 0xC037_0104, None, "The supported number of notification callbacks has been exceeded.";
    /// Invalid state (hcsshim `ErrVmcomputeOperationInvalidState`).
    #[doc(alias = "ErrVmcomputeOperationInvalidState")]
    ERROR_VMCOMPUTE_INVALID_STATE = 0xC037_0105, Some("ErrVmcomputeOperationInvalidState"), "The requested virtual machine or container operation is not valid in the current state.";
    /// Unexpected exit (hcsshim `ErrVmcomputeUnexpectedExit`).
    #[doc(alias = "ErrVmcomputeUnexpectedExit")]
    ERROR_VMCOMPUTE_UNEXPECTED_EXIT = 0xC037_0106, Some("ErrVmcomputeUnexpectedExit"), "The virtual machine or container exited unexpectedly.";
    /// v1 form of [`HResult::HCS_E_TERMINATED`].
    ERROR_VMCOMPUTE_TERMINATED = 0xC037_0107, None, "The virtual machine or container was forcefully exited.";
    /// v1 form of [`HResult::HCS_E_CONNECT_FAILED`].
    ERROR_VMCOMPUTE_CONNECT_FAILED = 0xC037_0108, None, "A connection could not be established with the container or virtual machine.";
    /// v1 form of [`HResult::HCS_E_CONNECTION_TIMEOUT`].
    ERROR_VMCOMPUTE_TIMEOUT = 0xC037_0109, None, "The operation timed out because a response was not received from the virtual machine or container.";
    /// v1 form of [`HResult::HCS_E_CONNECTION_CLOSED`].
    ERROR_VMCOMPUTE_CONNECTION_CLOSED = 0xC037_010A, None, "The connection with the virtual machine or container was closed.";
    /// The guest does not support the message (hcsshim `ErrVmcomputeUnknownMessage`).
    #[doc(alias = "ErrVmcomputeUnknownMessage")]
    ERROR_VMCOMPUTE_UNKNOWN_MESSAGE = 0xC037_010B, Some("ErrVmcomputeUnknownMessage"), "An unknown internal message was received by the virtual machine or container.";
    /// v1 form of [`HResult::HCS_E_UNSUPPORTED_PROTOCOL_VERSION`].
    ERROR_VMCOMPUTE_UNSUPPORTED_PROTOCOL_VERSION = 0xC037_010C, None, "The virtual machine or container does not support an available version of the communication protocol with the host.";
    /// The document is not understood (hcsshim `ErrVmcomputeInvalidJSON`).
    #[doc(alias = "ErrVmcomputeInvalidJSON")]
    ERROR_VMCOMPUTE_INVALID_JSON = 0xC037_010D, Some("ErrVmcomputeInvalidJSON"), "The virtual machine or container JSON document is invalid.";
    /// No compute system has that id (hcsshim `ErrComputeSystemDoesNotExist`; the GCS
    /// `hrComputeSystemDoesNotExist`).
    #[doc(alias = "ErrComputeSystemDoesNotExist")]
    ERROR_VMCOMPUTE_SYSTEM_NOT_FOUND = 0xC037_010E, Some("ErrComputeSystemDoesNotExist"), "A virtual machine or container with the specified identifier does not exist.";
    /// v1 form of [`HResult::HCS_E_SYSTEM_ALREADY_EXISTS`].
    ERROR_VMCOMPUTE_SYSTEM_ALREADY_EXISTS = 0xC037_010F, None, "A virtual machine or container with the specified identifier already exists.";
    /// Shutdown/terminate on a stopped system (hcsshim `ErrVmcomputeAlreadyStopped`).
    #[doc(alias = "ErrVmcomputeAlreadyStopped")]
    ERROR_VMCOMPUTE_SYSTEM_ALREADY_STOPPED = 0xC037_0110, Some("ErrVmcomputeAlreadyStopped"), "The virtual machine or container with the specified identifier is not running.";
    /// v1 form of [`HResult::HCS_E_PROTOCOL_ERROR`].
    ERROR_VMCOMPUTE_PROTOCOL_ERROR = 0xC037_0111, None, "A communication protocol error has occurred between the virtual machine or container and the host.";
    /// v1 form of [`HResult::HCS_E_INVALID_LAYER`].
    ERROR_VMCOMPUTE_INVALID_LAYER = 0xC037_0112, None, "The container image contains a layer with an unrecognized format.";
    /// v1 form of [`HResult::HCS_E_WINDOWS_INSIDER_REQUIRED`].
    ERROR_VMCOMPUTE_WINDOWS_INSIDER_REQUIRED = 0xC037_0113, None, "To use this container image, you must join the Windows Insider Program.";
}

fn lookup(value: u32) -> Option<&'static HResultInfo> {
    HRESULT_TABLE.iter().find(|i| i.value.0 == value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_follows_the_spec_examples() {
        // 0x80070490 is stored as 0x490, 0xC0370103 and 0x80370110 stay as they are.
        assert_eq!(
            HResult::from_call(0x8007_0490_u32 as i32),
            Some(HResult::new(0x490))
        );
        assert_eq!(
            HResult::from_call(0xC037_0103_u32 as i32),
            Some(HResult::new(0xC037_0103))
        );
        assert_eq!(
            HResult::from_call(0x8037_0110_u32 as i32),
            Some(HResult::new(0x8037_0110))
        );
        assert_eq!(
            HResult::from_call(0x8007_000D_u32 as i32),
            Some(HResult::ERROR_INVALID_DATA)
        );
        // Success values are not errors.
        assert_eq!(HResult::from_call(0), None);
        assert_eq!(HResult::from_call(1), None);
        // The mask 0x1FFF0000 includes the N bit: 0x9007_0005 is not FACILITY_WIN32.
        assert_eq!(
            HResult::new(0x9007_0005).normalized(),
            HResult::new(0x9007_0005)
        );
        // Positive values are never reduced.
        assert_eq!(
            HResult::new(0x0007_0005).normalized(),
            HResult::new(0x0007_0005)
        );
    }

    #[test]
    fn condition_folds_v1_and_v2_forms() {
        assert!(HResult::ERROR_VMCOMPUTE_SYSTEM_NOT_FOUND
            .same_condition(HResult::HCS_E_SYSTEM_NOT_FOUND));
        assert!(HResult::HRESULT_ERROR_NOT_FOUND.same_condition(HResult::ERROR_NOT_FOUND));
        assert!(!HResult::ERROR_NOT_FOUND.same_condition(HResult::HCS_E_SYSTEM_NOT_FOUND));
        assert!(!HResult::new(0xC038_010E).same_condition(HResult::HCS_E_SYSTEM_NOT_FOUND));
    }

    #[test]
    fn table_values_are_exact_and_unique() {
        let expect: &[(&str, u32)] = &[
            ("ERROR_VMCOMPUTE_SYSTEM_NOT_FOUND", 0xC037_010E),
            ("ERROR_NOT_FOUND", 0x490),
            ("ERROR_NOT_SUPPORTED", 0x32),
            ("ERROR_INVALID_DATA", 0xD),
            ("ERROR_VMCOMPUTE_SYSTEM_ALREADY_STOPPED", 0xC037_0110),
            ("HCS_E_SYSTEM_ALREADY_STOPPED", 0x8037_0110),
            ("ERROR_VMCOMPUTE_OPERATION_PENDING", 0xC037_0103),
            ("ERROR_VMCOMPUTE_INVALID_STATE", 0xC037_0105),
            ("HCS_E_INVALID_STATE", 0x8037_0105),
            ("ERROR_PROC_NOT_FOUND", 0x7F),
            ("ERROR_ACCESS_DENIED", 0x5),
            ("ERROR_VMCOMPUTE_INVALID_JSON", 0xC037_010D),
            ("ERROR_VMCOMPUTE_UNKNOWN_MESSAGE", 0xC037_010B),
            ("ERROR_VMCOMPUTE_UNEXPECTED_EXIT", 0xC037_0106),
            ("HCS_E_PROCESS_ALREADY_STOPPED", 0x8037_011F),
            ("ERROR_INVALID_HANDLE", 0x6),
            ("HCS_E_OPERATION_TIMEOUT", 0x8037_0118),
            ("HRESULT_ERROR_NOT_FOUND", 0x8007_0490),
            ("HCN_E_PORT_ALREADY_EXISTS", 0x803B_0013),
            ("E_NOTIMPL", 0x8000_4001),
            ("ERROR_GEN_FAILURE", 31),
            ("ERROR_SHUTDOWN_IN_PROGRESS", 1115),
            ("WSAEINVAL", 10022),
            ("HCS_E_TERMINATED_DURING_START", 0x8037_0100),
            ("HCS_E_SERVICE_DISCONNECT", 0x8037_011E),
            ("ERROR_VMCOMPUTE_WINDOWS_INSIDER_REQUIRED", 0xC037_0113),
        ];
        for (name, value) in expect {
            let info = HRESULT_TABLE
                .iter()
                .find(|i| i.name == *name)
                .unwrap_or_else(|| panic!("{name} missing"));
            assert_eq!(info.value.value(), *value, "{name}");
        }
        // The full HCS_E range 0x100..=0x11F except 0x103/0x104 (not defined), and the v1
        // range 0x100..=0x113.
        for low in 0x100..=0x11F_u32 {
            let has = lookup(0x8037_0000 | low).is_some();
            assert_eq!(has, low != 0x103 && low != 0x104, "HCS_E {low:#X}");
        }
        for low in 0x100..=0x113_u32 {
            assert!(lookup(0xC037_0000 | low).is_some(), "VMCOMPUTE {low:#X}");
        }
        for (i, a) in HRESULT_TABLE.iter().enumerate() {
            for b in &HRESULT_TABLE[i + 1..] {
                assert_ne!(a.value, b.value, "{} and {}", a.name, b.name);
                assert_ne!(a.name, b.name);
            }
        }
    }

    #[test]
    fn display_shows_name_hex_and_message() {
        assert_eq!(
            HResult::ERROR_VMCOMPUTE_SYSTEM_NOT_FOUND.to_string(),
            "ERROR_VMCOMPUTE_SYSTEM_NOT_FOUND (0xC037010E): A virtual machine or container \
             with the specified identifier does not exist."
        );
        assert_eq!(
            HResult::ERROR_NOT_FOUND.to_string(),
            "ERROR_NOT_FOUND (0x490): Element not found."
        );
        assert_eq!(HResult::new(0x8000_FFFF).to_string(), "HRESULT 0x8000FFFF");
        // A raw FACILITY_WIN32 value outside the table is named by its normal form.
        assert_eq!(
            HResult::new(0x8007_0005).to_string(),
            "ERROR_ACCESS_DENIED (0x80070005): Access is denied."
        );
        assert_eq!(
            format!("{:?}", HResult::ERROR_ACCESS_DENIED),
            "HResult(ERROR_ACCESS_DENIED, 0x00000005)"
        );
    }

    #[test]
    fn signed_conversions_round_trip() {
        let hr = HResult::from_i32(-2_143_878_898); // 0x8037010E
        assert_eq!(hr, HResult::HCS_E_SYSTEM_NOT_FOUND);
        assert_eq!(hr.as_i32(), -2_143_878_898);
        assert!(hr.is_failure_hresult());
        assert!(!HResult::ERROR_NOT_FOUND.is_failure_hresult());
    }
}
