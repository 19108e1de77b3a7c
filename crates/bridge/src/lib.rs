//! The LCOW GCS bridge wire protocol: header, message types, payloads and codec.
//!
//! The host (hcsshim on Windows, or the local sandbox on Linux) and the guest agent (GCS)
//! exchange messages over one stream: a 16-byte little-endian [`header::MessageHeader`]
//! (`Type`, total `Size`, sequence `ID`) followed by a UTF-8 JSON body. This crate is OS-free:
//! it only turns bytes into typed messages and back, and is shared by both sides.
//!
//! # The two encodings
//!
//! The reference's two sides encode JSON differently, and byte compatibility needs both
//! ([`codec::Encoding`]):
//!
//! * **Host → guest** ([`codec::Encoding::Host`]): Go's `json.Encoder` with
//!   `SetEscapeHTML(false)`. The body ends with a **newline**, counted in `Size`; `<`, `>` and
//!   `&` are written verbatim.
//! * **Guest → host** ([`codec::Encoding::Guest`]): Go's `json.Marshal`. **No newline**, and
//!   `<`, `>`, `&` are escaped as `\u003c`, `\u003e`, `\u0026`.
//!
//! Both escape U+2028 and U+2029 (Go always does). Fields that carry "JSON inside a string"
//! ([`json::AnyInString`]: `ContainerConfig`, `ProcessParameters`, `Query`, `Properties`) are
//! produced by a nested `json.Marshal` on both sides, so their content is HTML-escaped even in
//! host messages. Field order follows the reference's struct order and maps are sorted, as Go
//! does. Decoding tolerates the trailing newline on both sides.
//!
//! # Validation
//!
//! The frame readers ([`codec::read_frame`], [`codec::read_frame_async`]) reject sizes below
//! the header or above a caller-given limit before allocating, and report truncated bodies;
//! [`codec::Frame::decode`] reports bad JSON with the message type. None of these panic.

pub mod codec;
pub mod ext;
pub mod header;
pub mod hresult;
pub mod json;
pub mod messages;

#[cfg(feature = "tokio")]
pub use codec::read_frame_async;
pub use codec::{
    encode_message, read_frame, DecodeError, EncodeError, Encoding, Frame, FrameError,
};
pub use header::{MessageHeader, MessageKind, MessageType, HEADER_SIZE, MAX_MESSAGE_SIZE};
pub use hresult::Hresult;
pub use json::{AnyInString, RawJson};
