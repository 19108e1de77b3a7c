//! How the engine fails: an HRESULT and a detail, sent as HNS sends them.
//!
//! The HRESULT is the raw failure value (`0x80070490` for element-not-found, the
//! `0x803Bxxxx` HCN codes as they are) and the error record is HNS's document
//! `{"Success":false,"Error":"<message> <detail>","ErrorCode":<hr>}`, the message being the
//! HRESULT's text and the detail naming what was wrong.

use hcs::HResult;

use crate::api::CallError;
use crate::hresult;
use crate::schema::echo;

/// A failed engine operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fail {
    /// The condition (normalised or raw form).
    pub hr: HResult,
    /// What was wrong.
    pub detail: String,
}

/// A failure of `hr` with `detail`.
pub fn fail(hr: HResult, detail: impl Into<String>) -> Fail {
    Fail {
        hr,
        detail: detail.into(),
    }
}

/// `E_FAIL`: an operation of the host (dataplane, state directory) failed.
pub const E_FAIL: HResult = HResult::new(0x8000_4005);

impl Fail {
    /// The HRESULT on the wire: a bare Win32 code becomes `HRESULT_FROM_WIN32(code)`.
    pub fn wire_hr(&self) -> i32 {
        let v = self.hr.value();
        if v != 0 && v < 0x1_0000 {
            (0x8007_0000 | v) as i32
        } else {
            v as i32
        }
    }

    /// The message: the HRESULT's text, then the detail.
    pub fn message(&self) -> String {
        let text = hresult::message(self.hr).unwrap_or("Unspecified error.");
        if self.detail.is_empty() {
            text.to_string()
        } else {
            format!("{text} {}", echo(&self.detail))
        }
    }

    /// HNS's error record.
    pub fn record(&self) -> String {
        serde_json::json!({
            "Success": false,
            "Error": self.message(),
            "ErrorCode": self.wire_hr() as u32,
        })
        .to_string()
    }
}

impl From<Fail> for CallError {
    fn from(f: Fail) -> Self {
        CallError {
            hr: f.wire_hr(),
            record: f.record(),
        }
    }
}

/// The engine's result type.
pub type Res<T> = std::result::Result<T, Fail>;
