//! The hnsd wire protocol: one [`HcnApi`](crate::api::HcnApi) call per frame, carrying the
//! same documents, GUIDs and HRESULTs as the Windows calls.
//!
//! A frame is a 4-byte big-endian length and that many bytes of JSON, at most
//! [`MAX_FRAME`]. A request is tagged by `Op` (`Enumerate`, `Create`, `Open`, `Modify`,
//! `Query`, `Delete`, `Close`, `HnsCall`); the reply is `{"Hr", "Output", "ErrorRecord"}`:
//! `Hr` < 0 or a non-empty `ErrorRecord` is a failure, exactly as for `computenetwork.dll`.
//! `Open` and `Create` answer the object's GUID in `Output`; the client's handle is the kind
//! and that GUID.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

use crate::api::ObjectKind;

/// The largest frame either side accepts (16 MiB): far above any HCN document, small
/// enough that a bad peer cannot make the other side allocate without bound.
pub const MAX_FRAME: usize = 16 << 20;

/// One call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "Op", rename_all_fields = "PascalCase", deny_unknown_fields)]
pub enum Request {
    /// `HcnEnumerateX(query)`.
    Enumerate {
        /// Object kind.
        kind: ObjectKind,
        /// The query document.
        query: String,
    },
    /// `HcnCreateX(id, settings)`; `network` is the endpoint's open network.
    Create {
        /// Object kind.
        kind: ObjectKind,
        /// The GUID (zero: hnsd assigns one).
        id: String,
        /// The settings document.
        settings: String,
        /// The network of an endpoint.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        network: Option<String>,
    },
    /// `HcnOpenX(id)`.
    Open {
        /// Object kind.
        kind: ObjectKind,
        /// The GUID.
        id: String,
    },
    /// `HcnModifyX(handle, settings)`.
    Modify {
        /// Object kind.
        kind: ObjectKind,
        /// The GUID.
        id: String,
        /// The request document.
        settings: String,
    },
    /// `HcnQueryXProperties(handle, query)`.
    Query {
        /// Object kind.
        kind: ObjectKind,
        /// The GUID.
        id: String,
        /// The query document.
        query: String,
    },
    /// `HcnDeleteX(id)`.
    Delete {
        /// Object kind.
        kind: ObjectKind,
        /// The GUID.
        id: String,
    },
    /// `HcnCloseX(handle)`.
    Close {
        /// Object kind.
        kind: ObjectKind,
        /// The GUID.
        id: String,
    },
    /// `HNSCall(method, path, request)`.
    HnsCall {
        /// `GET`, `POST` or `DELETE`.
        method: String,
        /// The path (`/networks/`).
        path: String,
        /// The request document.
        request: String,
    },
}

/// The reply to one call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Response {
    /// The HRESULT (0 on success).
    pub hr: i32,
    /// The output document (list, properties, GUID, HNS envelope), or empty.
    pub output: String,
    /// The error record, empty on success.
    pub error_record: String,
}

/// Writes one frame.
pub fn write_frame(w: &mut impl Write, body: &[u8]) -> io::Result<()> {
    if body.len() > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("frame of {} bytes exceeds {MAX_FRAME}", body.len()),
        ));
    }
    // The length fits in u32: MAX_FRAME does.
    let len = (body.len() as u32).to_be_bytes();
    w.write_all(&len)?;
    w.write_all(body)?;
    w.flush()
}

/// The body length a frame's big-endian length prefix announces, refused above
/// [`MAX_FRAME`] (checked before anything is allocated).
pub fn frame_len(prefix: [u8; 4]) -> io::Result<usize> {
    let len = u32::from_be_bytes(prefix) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds {MAX_FRAME}"),
        ));
    }
    Ok(len)
}

/// Reads one frame; `Ok(None)` at a clean end of stream before a frame starts.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let mut body = vec![0u8; frame_len(len)?];
    r.read_exact(&mut body)?;
    Ok(Some(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_shape() {
        let r = Request::Create {
            kind: ObjectKind::Endpoint,
            id: "0".into(),
            settings: "{}".into(),
            network: Some("N".into()),
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"Op":"Create","Kind":"Endpoint","Id":"0","Settings":"{}","Network":"N"}"#
        );
        let back: Request = serde_json::from_str(
            r#"{"Op":"HnsCall","Method":"GET","Path":"/globals/version","Request":""}"#,
        )
        .unwrap();
        assert!(matches!(back, Request::HnsCall { .. }));
        assert!(
            serde_json::from_str::<Request>(r#"{"Op":"Open","Kind":"Bogus","Id":"x"}"#).is_err()
        );
        assert!(serde_json::from_str::<Request>(
            r#"{"Op":"Open","Kind":"Network","Id":"x","X":1}"#
        )
        .is_err());
    }

    #[test]
    fn frames_round_trip_and_are_bounded() {
        let mut buf = Vec::new();
        write_frame(&mut buf, b"{}").unwrap();
        write_frame(&mut buf, b"[1]").unwrap();
        let mut r = &buf[..];
        assert_eq!(read_frame(&mut r).unwrap().unwrap(), b"{}");
        assert_eq!(read_frame(&mut r).unwrap().unwrap(), b"[1]");
        assert!(read_frame(&mut r).unwrap().is_none());
        let huge = ((MAX_FRAME + 1) as u32).to_be_bytes();
        assert_eq!(
            read_frame(&mut &huge[..]).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        assert_eq!(
            read_frame(&mut &[0u8, 0][..]).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        let short = [0u8, 0, 0, 9, b'{'];
        assert!(read_frame(&mut &short[..]).is_err());
    }
}
