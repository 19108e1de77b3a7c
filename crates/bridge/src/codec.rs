//! Encoding messages and reading validated frames.
//!
//! A frame is a header plus `Size - 16` body bytes. The readers check `Size` against
//! [`HEADER_SIZE`] and a caller-given limit **before** reading the body, and never allocate
//! more than the bytes actually received, so a hostile `Size` costs nothing. The reference
//! guest allocates `Size - 16` unchecked (and underflows below 16); the reference host kills
//! the bridge. Here every case is a typed error the caller can act on.
//!
//! Limits: the host accepts at most [`MAX_MESSAGE_SIZE`] (64 KiB) per message. The host
//! itself sends without limit (a Create with a large OCI spec can exceed 64 KiB), so a guest
//! should read with a larger bound such as [`GUEST_READ_LIMIT`].

use std::io::{self, Read};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::header::{type_display_name, MessageHeader, HEADER_SIZE, MAX_MESSAGE_SIZE};
use crate::json::go_escape;

/// A generous bound for what a guest accepts from the host (the reference has none).
pub const GUEST_READ_LIMIT: u32 = 16 * 1024 * 1024;

/// Which side's JSON conventions to reproduce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// Host → guest: `json.Encoder` + `SetEscapeHTML(false)`: trailing `\n`, no HTML escaping.
    Host,
    /// Guest → host: `json.Marshal`: no newline, `<` `>` `&` escaped.
    Guest,
}

/// Failure to encode a message.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The payload could not be serialized.
    #[error("failed to serialize bridge message body: {0}")]
    Json(#[from] serde_json::Error),
    /// The message does not fit the 32-bit size field.
    #[error("bridge message of {0} bytes does not fit the 32-bit size field")]
    TooLarge(usize),
}

/// Failure to read a frame from a stream.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// `Size` is below the 16-byte header.
    #[error("bridge message size {size} is smaller than the {HEADER_SIZE}-byte header")]
    SizeTooSmall {
        /// The header's `Size`.
        size: u32,
    },
    /// `Size` is above the reader's limit.
    #[error("bridge message size {size} exceeds the limit of {limit} bytes")]
    SizeTooLarge {
        /// The header's `Size`.
        size: u32,
        /// The reader's limit.
        limit: u32,
    },
    /// The stream ended inside the header.
    #[error("bridge stream ended inside a message header ({got} of {HEADER_SIZE} bytes)")]
    TruncatedHeader {
        /// Header bytes received.
        got: usize,
    },
    /// The stream ended inside the body.
    #[error("bridge stream ended inside a message body ({got} of {expected} bytes)")]
    TruncatedBody {
        /// Body bytes announced.
        expected: usize,
        /// Body bytes received.
        got: usize,
    },
    /// The underlying read failed.
    #[error("bridge read failed: {0}")]
    Io(#[from] io::Error),
}

/// Failure to decode a frame's body.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The body is not valid JSON for the expected payload.
    #[error("invalid JSON body in bridge message {message_type}: {source}")]
    Json {
        /// Display name (or decimal value) of the message type.
        message_type: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The message type is not in the protocol's table.
    #[error(transparent)]
    UnknownType(#[from] crate::header::UnknownMessageType),
}

/// One message read from a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The header.
    pub header: MessageHeader,
    /// The JSON body (`header.size - 16` bytes).
    pub body: Vec<u8>,
}

impl Frame {
    /// Decodes the body into `T`. A trailing newline (host encoding) is accepted.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, DecodeError> {
        decode_body(self.header.message_type, &self.body)
    }

    /// The header's message type, if known.
    pub fn known_type(&self) -> Result<crate::header::MessageType, DecodeError> {
        Ok(self.header.known_type()?)
    }

    /// The whole message as bytes (header then body).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_SIZE + self.body.len());
        out.extend_from_slice(&self.header.encode());
        out.extend_from_slice(&self.body);
        out
    }
}

/// Decodes a body into `T` with Go's rules ([`hcs_schema::json`]: case-insensitive keys,
/// `null` as the zero value, the later duplicate key wins), naming the message type in the
/// error.
pub fn decode_body<T: DeserializeOwned>(message_type: u32, body: &[u8]) -> Result<T, DecodeError> {
    hcs_schema::json::from_slice(body).map_err(|source| DecodeError::Json {
        message_type: type_display_name(message_type),
        source,
    })
}

/// Serializes a payload with the conventions of `encoding` (body only).
pub fn encode_body<T: Serialize + ?Sized>(
    payload: &T,
    encoding: Encoding,
) -> Result<Vec<u8>, EncodeError> {
    let json = serde_json::to_string(payload)?;
    let mut body = match encoding {
        Encoding::Host => go_escape(&json, false),
        Encoding::Guest => go_escape(&json, true),
    }
    .into_bytes();
    if encoding == Encoding::Host {
        body.push(b'\n');
    }
    Ok(body)
}

/// Encodes a whole message: header (`Size` = 16 + body) then body.
pub fn encode_message<T: Serialize + ?Sized>(
    message_type: impl Into<u32>,
    id: u64,
    payload: &T,
    encoding: Encoding,
) -> Result<Vec<u8>, EncodeError> {
    let body = encode_body(payload, encoding)?;
    let total = HEADER_SIZE + body.len();
    let size = u32::try_from(total).map_err(|_| EncodeError::TooLarge(total))?;
    let header = MessageHeader {
        message_type: message_type.into(),
        size,
        id,
    };
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&header.encode());
    out.extend_from_slice(&body);
    Ok(out)
}

fn check_size(header: &MessageHeader, limit: u32) -> Result<usize, FrameError> {
    let body_len = header
        .body_len()
        .ok_or(FrameError::SizeTooSmall { size: header.size })?;
    if header.size > limit {
        return Err(FrameError::SizeTooLarge {
            size: header.size,
            limit,
        });
    }
    Ok(body_len)
}

/// Reads one frame. Returns `Ok(None)` on a clean end of stream (before any header byte).
///
/// `max_size` bounds the total message size; use [`MAX_MESSAGE_SIZE`] on the host.
pub fn read_frame<R: Read + ?Sized>(
    reader: &mut R,
    max_size: u32,
) -> Result<Option<Frame>, FrameError> {
    let mut hdr = [0u8; HEADER_SIZE];
    let got = read_full(reader, &mut hdr)?;
    if got == 0 {
        return Ok(None);
    }
    if got < HEADER_SIZE {
        return Err(FrameError::TruncatedHeader { got });
    }
    let header = MessageHeader::decode(&hdr);
    let body_len = check_size(&header, max_size)?;
    // `take` + `read_to_end` grows with the data actually received.
    let mut body = Vec::new();
    reader.take(body_len as u64).read_to_end(&mut body)?;
    if body.len() < body_len {
        return Err(FrameError::TruncatedBody {
            expected: body_len,
            got: body.len(),
        });
    }
    Ok(Some(Frame { header, body }))
}

fn read_full<R: Read + ?Sized>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Parses one frame from the start of `bytes`, returning it and the bytes consumed.
/// `Ok(None)` means more bytes are needed.
pub fn parse_frame(bytes: &[u8], max_size: u32) -> Result<Option<(Frame, usize)>, FrameError> {
    let Some(hdr) = bytes.first_chunk::<HEADER_SIZE>() else {
        return Ok(None);
    };
    let header = MessageHeader::decode(hdr);
    let body_len = check_size(&header, max_size)?;
    let total = HEADER_SIZE + body_len;
    if bytes.len() < total {
        return Ok(None);
    }
    let body = bytes[HEADER_SIZE..total].to_vec();
    Ok(Some((Frame { header, body }, total)))
}

/// Async twin of [`read_frame`] over a tokio reader. Cancel-safe only between frames: drop
/// the future mid-frame and the stream is out of sync.
#[cfg(feature = "tokio")]
pub async fn read_frame_async<R: tokio::io::AsyncRead + Unpin + ?Sized>(
    reader: &mut R,
    max_size: u32,
) -> Result<Option<Frame>, FrameError> {
    use tokio::io::AsyncReadExt;

    let mut hdr = [0u8; HEADER_SIZE];
    let mut got = 0;
    while got < HEADER_SIZE {
        let n = reader.read(&mut hdr[got..]).await?;
        if n == 0 {
            break;
        }
        got += n;
    }
    if got == 0 {
        return Ok(None);
    }
    if got < HEADER_SIZE {
        return Err(FrameError::TruncatedHeader { got });
    }
    let header = MessageHeader::decode(&hdr);
    let body_len = check_size(&header, max_size)?;
    let mut body = Vec::new();
    (&mut *reader)
        .take(body_len as u64)
        .read_to_end(&mut body)
        .await?;
    if body.len() < body_len {
        return Err(FrameError::TruncatedBody {
            expected: body_len,
            got: body.len(),
        });
    }
    Ok(Some(Frame { header, body }))
}

/// The host's read limit, re-exported for convenience.
pub const HOST_READ_LIMIT: u32 = MAX_MESSAGE_SIZE;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::MessageType;
    use crate::messages::{RequestBase, ResponseBase};

    fn raw(t: u32, size: u32, id: u64, body: &[u8]) -> Vec<u8> {
        let mut v = MessageHeader {
            message_type: t,
            size,
            id,
        }
        .encode()
        .to_vec();
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn clean_eof_is_none() {
        let mut empty: &[u8] = &[];
        assert!(read_frame(&mut empty, MAX_MESSAGE_SIZE).unwrap().is_none());
    }

    #[test]
    fn truncated_header() {
        let mut r: &[u8] = &[1, 2, 3];
        assert!(matches!(
            read_frame(&mut r, MAX_MESSAGE_SIZE),
            Err(FrameError::TruncatedHeader { got: 3 })
        ));
    }

    #[test]
    fn size_below_header_is_rejected() {
        for size in [0, 1, 15] {
            let bytes = raw(0x1010_0101, size, 1, b"");
            assert!(matches!(
                read_frame(&mut bytes.as_slice(), MAX_MESSAGE_SIZE),
                Err(FrameError::SizeTooSmall { .. })
            ));
            assert!(matches!(
                parse_frame(&bytes, MAX_MESSAGE_SIZE),
                Err(FrameError::SizeTooSmall { .. })
            ));
        }
    }

    #[test]
    fn size_above_limit_is_rejected_without_allocating() {
        // u32::MAX would be a 4 GiB allocation in the reference guest.
        let bytes = raw(0x1010_0101, u32::MAX, 1, b"{}");
        assert!(matches!(
            read_frame(&mut bytes.as_slice(), MAX_MESSAGE_SIZE),
            Err(FrameError::SizeTooLarge {
                size: u32::MAX,
                limit: MAX_MESSAGE_SIZE
            })
        ));
        let bytes = raw(0x1010_0101, MAX_MESSAGE_SIZE + 1, 1, b"{}");
        assert!(matches!(
            read_frame(&mut bytes.as_slice(), MAX_MESSAGE_SIZE),
            Err(FrameError::SizeTooLarge { .. })
        ));
    }

    #[test]
    fn limit_is_inclusive() {
        let body = vec![b' '; (MAX_MESSAGE_SIZE as usize) - HEADER_SIZE];
        let bytes = raw(0x1010_0101, MAX_MESSAGE_SIZE, 1, &body);
        let f = read_frame(&mut bytes.as_slice(), MAX_MESSAGE_SIZE)
            .unwrap()
            .unwrap();
        assert_eq!(f.body.len(), body.len());
    }

    #[test]
    fn truncated_body() {
        let bytes = raw(0x1010_0101, 16 + 10, 1, b"{}");
        assert!(matches!(
            read_frame(&mut bytes.as_slice(), MAX_MESSAGE_SIZE),
            Err(FrameError::TruncatedBody {
                expected: 10,
                got: 2
            })
        ));
        assert!(parse_frame(&bytes, MAX_MESSAGE_SIZE).unwrap().is_none());
    }

    #[test]
    fn bad_json_names_the_type() {
        let bytes = raw(0x2010_0101, 16 + 3, 1, b"{x}");
        let f = read_frame(&mut bytes.as_slice(), MAX_MESSAGE_SIZE)
            .unwrap()
            .unwrap();
        let err = f.decode::<ResponseBase>().unwrap_err();
        assert!(matches!(err, DecodeError::Json { .. }));
        assert!(err.to_string().contains("ComputeSystemResponseCreateV1"));
    }

    #[test]
    fn unknown_type_is_a_typed_error() {
        let bytes = raw(0x1010_1001, 18, 9, b"{}");
        let f = read_frame(&mut bytes.as_slice(), MAX_MESSAGE_SIZE)
            .unwrap()
            .unwrap();
        assert!(matches!(f.known_type(), Err(DecodeError::UnknownType(_))));
        // The base still decodes, so the guest can answer HrNotImpl.
        let base: RequestBase = f.decode().unwrap();
        assert_eq!(base.container_id, "");
    }

    #[test]
    fn frames_back_to_back() {
        let mut stream = encode_message(
            MessageType::Start,
            1,
            &RequestBase::new("a"),
            Encoding::Host,
        )
        .unwrap();
        stream.extend(
            encode_message(
                MessageType::Start,
                2,
                &RequestBase::new("b"),
                Encoding::Host,
            )
            .unwrap(),
        );
        let mut r = stream.as_slice();
        let a = read_frame(&mut r, MAX_MESSAGE_SIZE).unwrap().unwrap();
        let b = read_frame(&mut r, MAX_MESSAGE_SIZE).unwrap().unwrap();
        assert!(read_frame(&mut r, MAX_MESSAGE_SIZE).unwrap().is_none());
        assert_eq!(a.decode::<RequestBase>().unwrap().container_id, "a");
        assert_eq!(b.header.id, 2);
        let (pa, used) = parse_frame(&stream, MAX_MESSAGE_SIZE).unwrap().unwrap();
        assert_eq!(pa, a);
        assert_eq!(a.to_bytes(), stream[..used]);
    }

    #[test]
    fn io_errors_propagate() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset"))
            }
        }
        assert!(matches!(
            read_frame(&mut Failing, MAX_MESSAGE_SIZE),
            Err(FrameError::Io(_))
        ));
    }

    #[cfg(feature = "tokio")]
    #[tokio::test]
    async fn async_reader_matches_sync() {
        let msg = encode_message(
            MessageType::Start,
            7,
            &RequestBase::new("c"),
            Encoding::Host,
        )
        .unwrap();
        let mut r = msg.as_slice();
        let f = read_frame_async(&mut r, MAX_MESSAGE_SIZE)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(f.header.id, 7);
        assert!(read_frame_async(&mut r, MAX_MESSAGE_SIZE)
            .await
            .unwrap()
            .is_none());
        let big = raw(0x1010_0101, u32::MAX, 1, b"");
        assert!(matches!(
            read_frame_async(&mut big.as_slice(), MAX_MESSAGE_SIZE).await,
            Err(FrameError::SizeTooLarge { .. })
        ));
        let short = raw(0x1010_0101, 40, 1, b"{}");
        assert!(matches!(
            read_frame_async(&mut short.as_slice(), MAX_MESSAGE_SIZE).await,
            Err(FrameError::TruncatedBody { .. })
        ));
        assert!(matches!(
            read_frame_async(&mut &[1u8, 2][..], MAX_MESSAGE_SIZE).await,
            Err(FrameError::TruncatedHeader { got: 2 })
        ));
    }
}
