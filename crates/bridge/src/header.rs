//! The fixed 16-byte message header and the message-type identifiers (spec §2).
//!
//! Layout (all little-endian): `Type: u32`, `Size: u32` (total length, header included),
//! `ID: u64` (sequence id). A message type packs four fields into its 32 bits:
//! `TTTT CCCCCCCC IIIIIIIIIIII VVVVVVVV` = kind, category, RPC number, version.

use std::fmt;

/// Size in bytes of the message header.
pub const HEADER_SIZE: usize = 16;

/// Largest message (header included) the host accepts (`MaxMsgSize`).
pub const MAX_MESSAGE_SIZE: u32 = 0x10000;

/// Mask of the message-kind bits (request, response, notification).
pub const KIND_MASK: u32 = 0xF000_0000;
/// Mask of the category bits (compute system, compute service).
pub const CATEGORY_MASK: u32 = 0x0FF0_0000;
/// Mask of the RPC-number bits.
pub const RPC_MASK: u32 = 0x000F_FF00;
/// Mask of the version bits.
pub const VERSION_MASK: u32 = 0x0000_00FF;

/// Kind bits of a request.
pub const KIND_REQUEST: u32 = 0x1000_0000;
/// Kind bits of a response.
pub const KIND_RESPONSE: u32 = 0x2000_0000;
/// Kind bits of a notification.
pub const KIND_NOTIFICATION: u32 = 0x3000_0000;
/// Category of the compute-system messages.
pub const CATEGORY_COMPUTE_SYSTEM: u32 = 0x0010_0000;
/// Category of the compute-service messages (`ModifyServiceSettings`).
pub const CATEGORY_COMPUTE_SERVICE: u32 = 0x0020_0000;
/// The only message version in use.
pub const VERSION_V1: u32 = 0x01;

/// The kind of a message, from the top four bits of its type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// Host → guest request (`0x1`).
    Request,
    /// Guest → host response (`0x2`).
    Response,
    /// Guest → host notification (`0x3`).
    Notification,
}

impl MessageKind {
    /// Decodes the kind bits of a raw message type; `None` for any other value.
    pub fn of(raw: u32) -> Option<Self> {
        match raw & KIND_MASK {
            KIND_REQUEST => Some(Self::Request),
            KIND_RESPONSE => Some(Self::Response),
            KIND_NOTIFICATION => Some(Self::Notification),
            _ => None,
        }
    }
}

/// The kind bits (`raw & 0xF0000000`) of a raw message type.
pub const fn kind_bits(raw: u32) -> u32 {
    raw & KIND_MASK
}

/// The category bits (`raw & 0x0FF00000`) of a raw message type.
pub const fn category_bits(raw: u32) -> u32 {
    raw & CATEGORY_MASK
}

/// The RPC number (1..15) of a raw message type, shifted down.
pub const fn rpc_number(raw: u32) -> u32 {
    (raw & RPC_MASK) >> 8
}

/// The version bits (`raw & 0xFF`) of a raw message type.
pub const fn version_bits(raw: u32) -> u32 {
    raw & VERSION_MASK
}

/// The response type for a request type: `0x20000000 | (request & 0x0FFFFFFF)`.
pub const fn response_for(request: u32) -> u32 {
    KIND_RESPONSE | (request & !KIND_MASK)
}

macro_rules! message_types {
    ($( $(#[$doc:meta])* $variant:ident = $value:literal, $name:literal; )*) => {
        /// Every message type of the protocol (spec §2 table).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u32)]
        pub enum MessageType {
            $( $(#[$doc])* $variant = $value, )*
        }

        impl MessageType {
            /// All known message types.
            pub const ALL: &'static [MessageType] = &[$(MessageType::$variant,)*];

            /// The known message type with this raw value, if any.
            pub const fn from_u32(raw: u32) -> Option<Self> {
                match raw {
                    $( $value => Some(MessageType::$variant), )*
                    _ => None,
                }
            }

            /// The reference's name of the type (`prot.MessageIdentifier.String()` style).
            pub const fn name(self) -> &'static str {
                match self {
                    $( MessageType::$variant => $name, )*
                }
            }
        }
    };
}

message_types! {
    /// Create a container (`0x10100101`).
    Create = 0x1010_0101, "ComputeSystemCreateV1";
    /// Start a container: a no-op on Linux (`0x10100201`).
    Start = 0x1010_0201, "ComputeSystemStartV1";
    /// Graceful shutdown, SIGTERM (`0x10100301`).
    ShutdownGraceful = 0x1010_0301, "ComputeSystemShutdownGracefulV1";
    /// Forced shutdown, SIGKILL (`0x10100401`).
    ShutdownForced = 0x1010_0401, "ComputeSystemShutdownForcedV1";
    /// Start a process (`0x10100501`).
    ExecuteProcess = 0x1010_0501, "ComputeSystemExecuteProcessV1";
    /// Wait for a process to exit (`0x10100601`).
    WaitForProcess = 0x1010_0601, "ComputeSystemWaitForProcessV1";
    /// Signal a process (`0x10100701`).
    SignalProcess = 0x1010_0701, "ComputeSystemSignalProcessV1";
    /// Resize a process's console (`0x10100801`).
    ResizeConsole = 0x1010_0801, "ComputeSystemResizeConsoleV1";
    /// Query container properties (`0x10100901`).
    GetProperties = 0x1010_0901, "ComputeSystemGetPropertiesV1";
    /// Add, remove or update a resource (`0x10100a01`).
    ModifySettings = 0x1010_0a01, "ComputeSystemModifySettingsV1";
    /// Negotiate the protocol version (`0x10100b01`).
    NegotiateProtocol = 0x1010_0b01, "ComputeSystemNegotiateProtocolV1";
    /// Dump the guest's stacks (`0x10100c01`).
    DumpStacks = 0x1010_0c01, "ComputeSystemDumpStacksV1";
    /// Delete a container's state (`0x10100d01`).
    DeleteContainerState = 0x1010_0d01, "ComputeSystemDeleteContainerStateV1";
    /// Update a container: WCOW sidecar only (`0x10100e01`).
    UpdateContainer = 0x1010_0e01, "ComputeSystemUpdateContainerV1";
    /// Lifecycle notification: WCOW sidecar only (`0x10100f01`).
    LifecycleNotification = 0x1010_0f01, "ComputeSystemLifecycleNotificationV1";
    /// Modify service settings: WCOW only (`0x10200101`).
    ModifyServiceSettings = 0x1020_0101, "ComputeServiceModifyServiceSettingsV1";
    /// Response to [`MessageType::Create`].
    CreateResponse = 0x2010_0101, "ComputeSystemResponseCreateV1";
    /// Response to [`MessageType::Start`].
    StartResponse = 0x2010_0201, "ComputeSystemResponseStartV1";
    /// Response to [`MessageType::ShutdownGraceful`].
    ShutdownGracefulResponse = 0x2010_0301, "ComputeSystemResponseShutdownGracefulV1";
    /// Response to [`MessageType::ShutdownForced`].
    ShutdownForcedResponse = 0x2010_0401, "ComputeSystemResponseShutdownForcedV1";
    /// Response to [`MessageType::ExecuteProcess`].
    ExecuteProcessResponse = 0x2010_0501, "ComputeSystemResponseExecuteProcessV1";
    /// Response to [`MessageType::WaitForProcess`].
    WaitForProcessResponse = 0x2010_0601, "ComputeSystemResponseWaitForProcessV1";
    /// Response to [`MessageType::SignalProcess`].
    SignalProcessResponse = 0x2010_0701, "ComputeSystemResponseSignalProcessV1";
    /// Response to [`MessageType::ResizeConsole`].
    ResizeConsoleResponse = 0x2010_0801, "ComputeSystemResponseResizeConsoleV1";
    /// Response to [`MessageType::GetProperties`].
    GetPropertiesResponse = 0x2010_0901, "ComputeSystemResponseGetPropertiesV1";
    /// Response to [`MessageType::ModifySettings`].
    ModifySettingsResponse = 0x2010_0a01, "ComputeSystemResponseModifySettingsV1";
    /// Response to [`MessageType::NegotiateProtocol`].
    NegotiateProtocolResponse = 0x2010_0b01, "ComputeSystemResponseNegotiateProtocolV1";
    /// Response to [`MessageType::DumpStacks`].
    DumpStacksResponse = 0x2010_0c01, "ComputeSystemResponseDumpStacksV1";
    /// Response to [`MessageType::DeleteContainerState`].
    DeleteContainerStateResponse = 0x2010_0d01, "ComputeSystemResponseDeleteContainerStateV1";
    /// Response to [`MessageType::UpdateContainer`].
    UpdateContainerResponse = 0x2010_0e01, "ComputeSystemResponseUpdateContainerV1";
    /// Response to [`MessageType::LifecycleNotification`].
    LifecycleNotificationResponse = 0x2010_0f01, "ComputeSystemResponseLifecycleNotificationV1";
    /// Response to [`MessageType::ModifyServiceSettings`].
    ModifyServiceSettingsResponse = 0x2020_0101, "ComputeServiceResponseModifyServiceSettingsV1";
    /// The container notification, guest → host (`0x30100101`), always id 0.
    ContainerNotification = 0x3010_0101, "ComputeSystemNotificationV1";
}

impl MessageType {
    /// The raw 32-bit value.
    pub const fn as_u32(self) -> u32 {
        self as u32
    }

    /// The message kind (request, response, notification).
    pub fn kind(self) -> MessageKind {
        match kind_bits(self as u32) {
            KIND_REQUEST => MessageKind::Request,
            KIND_RESPONSE => MessageKind::Response,
            _ => MessageKind::Notification,
        }
    }

    /// The response type of a request type; `None` for responses and notifications.
    pub fn response(self) -> Option<MessageType> {
        if self.kind() == MessageKind::Request {
            MessageType::from_u32(response_for(self as u32))
        } else {
            None
        }
    }
}

impl From<MessageType> for u32 {
    fn from(value: MessageType) -> Self {
        value as u32
    }
}

impl TryFrom<u32> for MessageType {
    type Error = UnknownMessageType;

    fn try_from(raw: u32) -> Result<Self, Self::Error> {
        MessageType::from_u32(raw).ok_or(UnknownMessageType(raw))
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A raw message type that is not in the protocol's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown message type {0:#010x}")]
pub struct UnknownMessageType(pub u32);

/// The display form of a raw message type: its name if known, else its decimal value, as the
/// reference's `MessageIdentifier.String()` prints it.
pub fn type_display_name(raw: u32) -> String {
    match MessageType::from_u32(raw) {
        Some(t) => t.name().to_owned(),
        None => raw.to_string(),
    }
}

/// The reference guest's name of a raw message type: `prot.MessageIdentifier.String()`
/// (`internal/guest/prot/protocol.go`). It names 0 (`None`), the thirteen requests it
/// serves, their responses but DeleteContainerState's, and the notification; every other
/// type (UpdateContainer, LifecycleNotification, ModifyServiceSettings and their responses,
/// DeleteContainerState's response, unknown values) prints as its decimal value.
pub fn guest_type_name(raw: u32) -> String {
    use MessageType as T;
    if raw == 0 {
        return "None".to_owned();
    }
    match MessageType::from_u32(raw) {
        Some(
            T::UpdateContainer
            | T::LifecycleNotification
            | T::ModifyServiceSettings
            | T::DeleteContainerStateResponse
            | T::UpdateContainerResponse
            | T::LifecycleNotificationResponse
            | T::ModifyServiceSettingsResponse,
        )
        | None => raw.to_string(),
        Some(t) => t.name().to_owned(),
    }
}

/// The guest's error message for a request it has no handler for (answered with
/// `HrNotImpl`): `bridge: function not supported, header type: <name or decimal>`, with
/// the reference guest's names ([`guest_type_name`]).
pub fn not_supported_message(raw: u32) -> String {
    format!(
        "bridge: function not supported, header type: {}",
        guest_type_name(raw)
    )
}

/// The 16-byte message header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MessageHeader {
    /// Raw message type. Kept raw so that unknown types can still be answered (with
    /// `HrNotImpl`); see [`MessageHeader::known_type`].
    pub message_type: u32,
    /// Total message length, header included.
    pub size: u32,
    /// Sequence id correlating a request with its response; 0 for notifications.
    pub id: u64,
}

impl MessageHeader {
    /// Encodes the header as 16 little-endian bytes.
    pub fn encode(&self) -> [u8; HEADER_SIZE] {
        let mut out = [0u8; HEADER_SIZE];
        out[0..4].copy_from_slice(&self.message_type.to_le_bytes());
        out[4..8].copy_from_slice(&self.size.to_le_bytes());
        out[8..16].copy_from_slice(&self.id.to_le_bytes());
        out
    }

    /// Decodes 16 header bytes. Any bytes are a header; validation of `size` is the frame
    /// reader's job ([`crate::codec::read_frame`]).
    pub fn decode(bytes: &[u8; HEADER_SIZE]) -> Self {
        let mut t = [0u8; 4];
        let mut s = [0u8; 4];
        let mut i = [0u8; 8];
        t.copy_from_slice(&bytes[0..4]);
        s.copy_from_slice(&bytes[4..8]);
        i.copy_from_slice(&bytes[8..16]);
        Self {
            message_type: u32::from_le_bytes(t),
            size: u32::from_le_bytes(s),
            id: u64::from_le_bytes(i),
        }
    }

    /// The message type, if it is in the table.
    pub fn known_type(&self) -> Result<MessageType, UnknownMessageType> {
        MessageType::try_from(self.message_type)
    }

    /// The message kind, if the kind bits are valid.
    pub fn kind(&self) -> Option<MessageKind> {
        MessageKind::of(self.message_type)
    }

    /// Body length (`size - 16`), or `None` if `size` is below the header size.
    pub fn body_len(&self) -> Option<usize> {
        (self.size as usize).checked_sub(HEADER_SIZE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_is_little_endian() {
        let h = MessageHeader {
            message_type: MessageType::NegotiateProtocol.into(),
            size: 161,
            id: 0,
        };
        let bytes = h.encode();
        assert_eq!(
            bytes,
            [0x01, 0x0b, 0x10, 0x10, 0xa1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(MessageHeader::decode(&bytes), h);
    }

    #[test]
    fn responses_follow_the_formula() {
        for t in MessageType::ALL {
            if let Some(r) = t.response() {
                assert_eq!(r.as_u32(), response_for(t.as_u32()));
                assert_eq!(r.kind(), MessageKind::Response);
                assert_eq!(rpc_number(r.as_u32()), rpc_number(t.as_u32()));
            }
        }
        assert_eq!(response_for(0x1010_0b01), 0x2010_0b01);
        assert_eq!(
            MessageType::ModifyServiceSettings.response(),
            Some(MessageType::ModifyServiceSettingsResponse)
        );
        assert_eq!(MessageType::ContainerNotification.response(), None);
    }

    #[test]
    fn bit_accessors() {
        let t = MessageType::ModifySettings.as_u32();
        assert_eq!(kind_bits(t), KIND_REQUEST);
        assert_eq!(category_bits(t), CATEGORY_COMPUTE_SYSTEM);
        assert_eq!(rpc_number(t), 10);
        assert_eq!(version_bits(t), VERSION_V1);
        assert_eq!(
            category_bits(MessageType::ModifyServiceSettings.as_u32()),
            CATEGORY_COMPUTE_SERVICE
        );
        assert_eq!(
            MessageType::ContainerNotification.kind(),
            MessageKind::Notification
        );
        assert_eq!(MessageKind::of(0x4010_0101), None);
    }

    #[test]
    fn all_types_are_distinct_and_round_trip() {
        for t in MessageType::ALL {
            assert_eq!(MessageType::from_u32(t.as_u32()), Some(*t));
            assert_eq!(version_bits(t.as_u32()), VERSION_V1);
        }
        assert_eq!(MessageType::ALL.len(), 33);
    }

    #[test]
    fn not_supported_message_uses_name_or_decimal() {
        assert_eq!(
            not_supported_message(0x1010_0b01),
            "bridge: function not supported, header type: ComputeSystemNegotiateProtocolV1"
        );
        assert_eq!(
            not_supported_message(0x1010_1001),
            "bridge: function not supported, header type: 269488129"
        );
        assert_eq!(
            MessageType::try_from(0x1234),
            Err(UnknownMessageType(0x1234))
        );
    }

    #[test]
    fn guest_names_are_the_reference_guests() {
        // Named by prot.MessageIdentifier.String().
        for (raw, name) in [
            (0, "None"),
            (0x1010_0101, "ComputeSystemCreateV1"),
            (0x1010_0d01, "ComputeSystemDeleteContainerStateV1"),
            (0x2010_0c01, "ComputeSystemResponseDumpStacksV1"),
            (0x3010_0101, "ComputeSystemNotificationV1"),
        ] {
            assert_eq!(guest_type_name(raw), name);
        }
        // Not named there: decimal, although the host side has names for them.
        for (t, decimal) in [
            (MessageType::UpdateContainer, "269487617"),
            (MessageType::LifecycleNotification, "269487873"),
            (MessageType::ModifyServiceSettings, "270532865"),
            (MessageType::DeleteContainerStateResponse, "537922817"),
            (MessageType::UpdateContainerResponse, "537923073"),
            (MessageType::LifecycleNotificationResponse, "537923329"),
            (MessageType::ModifyServiceSettingsResponse, "538968321"),
        ] {
            assert_eq!(guest_type_name(t.as_u32()), decimal, "{t}");
            assert_eq!(
                not_supported_message(t.as_u32()),
                format!("bridge: function not supported, header type: {decimal}")
            );
            assert_eq!(type_display_name(t.as_u32()), t.name());
        }
        assert_eq!(
            not_supported_message(0),
            "bridge: function not supported, header type: None"
        );
        // Every other known type keeps its name.
        let unnamed = 7;
        let named = MessageType::ALL
            .iter()
            .filter(|t| guest_type_name(t.as_u32()) == t.name())
            .count();
        assert_eq!(named + unnamed, MessageType::ALL.len());
    }

    #[test]
    fn body_len_rejects_small_sizes() {
        let mut h = MessageHeader {
            message_type: 0,
            size: 15,
            id: 0,
        };
        assert_eq!(h.body_len(), None);
        h.size = 16;
        assert_eq!(h.body_len(), Some(0));
    }
}
