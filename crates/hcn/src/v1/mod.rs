//! HNS v1 (hcs-hcn-api.md §4): the documents of the legacy `HNSCall` API and [`Hns`], the
//! reference's `hns` package functions over the same backend trait as HCN v2.
//!
//! A request is `HNSCall(method, path, request)`; the response is the envelope
//! `{"Success": bool, "Error": string, "Output": raw}` ([`hns_request`]).

mod client;
mod policy;
mod types;

pub use client::*;
pub use policy::*;
pub use types::*;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::raw::RawJson;

use crate::api::HcnApi;
use crate::error::{Error, HcnError, Result};

/// The operation name of HNSCall errors.
pub const HNS_CALL_OP: &str = "hnsCall";

/// The HNS response envelope.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HnsResponse {
    /// Whether the request succeeded.
    #[serde(rename = "Success")]
    pub success: bool,
    /// The error text when it did not.
    #[serde(rename = "Error")]
    pub error: String,
    /// The payload, raw.
    #[serde(rename = "Output")]
    pub output: Option<RawJson>,
}

/// Decodes an HNS envelope: the `Output` as `T` (`None` when absent or `null`), or
/// `"hns failed with error : <Error>"`.
pub fn decode_envelope<T: DeserializeOwned>(response: &str) -> Result<Option<T>> {
    let env: HnsResponse =
        serde_json::from_str(response).map_err(|e| Error::response(HNS_CALL_OP, e))?;
    if !env.success {
        return Err(Error::Hns(env.error));
    }
    match env.output {
        Some(raw) if raw.get().trim() != "null" => serde_json::from_str(raw.get())
            .map(Some)
            .map_err(|e| Error::response(HNS_CALL_OP, e)),
        _ => Ok(None),
    }
}

/// One HNS v1 request: `HNSCall`, then the envelope.
pub fn hns_request<T: DeserializeOwned>(
    api: &dyn HcnApi,
    method: &str,
    path: &str,
    request: &str,
) -> Result<Option<T>> {
    let response = api
        .hns_call(method, path, request)
        .map_err(|e| Error::Call(HcnError::new(HNS_CALL_OP, e.hr, e.record)))?;
    if response.trim().is_empty() {
        return Ok(None);
    }
    decode_envelope(&response)
}

#[cfg(test)]
mod tests;
