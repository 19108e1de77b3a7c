//! `HNSCall`, the HNS v1 transport exported by vmcompute.dll (hcs-hcn-api.md §4.1).
//!
//! `HNSCall(method, path, request, &response)`: a failing HRESULT becomes an error with the
//! operation `"hnsCall"` (hcsshim's `hcserror.New(err, "hnsCall ", "")`). The response is
//! the envelope `{"Success": bool, "Error": string, "Output": raw}`; [`hns_request`] decodes
//! it: `Success == false` is the error `"hns failed with error : <Error>"`, and an empty
//! `Output` is success with nothing to decode. The HNS object model (networks, endpoints,
//! policies) belongs to the network crates; this module is only the transport.

use std::sync::Arc;

use serde::Deserialize;

use crate::error::{Error, ErrorKind, Result};
use crate::operation::{blocking, call_error};
use crate::vmcompute::VmcomputeApi;

/// The operation name of HNSCall errors.
pub const OP: &str = "hnsCall";

/// The HNS response envelope.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct HnsResponse {
    /// Whether the request succeeded.
    #[serde(rename = "Success")]
    pub success: bool,
    /// The error text when it did not.
    #[serde(rename = "Error")]
    pub error: String,
    /// The payload (raw JSON), if any.
    #[serde(rename = "Output")]
    pub output: Option<serde_json::Value>,
}

/// One raw `HNSCall`: the response string (empty when HNS returned none).
pub async fn hns_call(
    api: Arc<dyn VmcomputeApi>,
    method: &str,
    path: &str,
    request: &str,
) -> Result<String> {
    let (method, path, request) = (method.to_string(), path.to_string(), request.to_string());
    let out = blocking(move || api.hns_call(&method, &path, &request)).await?;
    if out.hr < 0 {
        return Err(call_error(out.hr, out.result.as_deref()).with_op(OP));
    }
    Ok(out.output.unwrap_or_default())
}

/// Decodes an HNS response envelope: the `Output` on success (`None` when empty or null).
pub fn decode_response(response: &str) -> Result<Option<serde_json::Value>> {
    let env: HnsResponse = serde_json::from_str(response)
        .map_err(|e| Error::op(OP, ErrorKind::InvalidResponse(e.to_string())))?;
    if !env.success {
        return Err(Error::op(
            OP,
            ErrorKind::Transport(format!("hns failed with error : {}", env.error)),
        ));
    }
    Ok(env.output.filter(|o| !o.is_null()))
}

/// `HNSCall` and envelope decoding in one: the `Output` of a successful request.
pub async fn hns_request(
    api: Arc<dyn VmcomputeApi>,
    method: &str,
    path: &str,
    request: &str,
) -> Result<Option<serde_json::Value>> {
    let response = hns_call(api, method, path, request).await?;
    decode_response(&response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_vmcompute::FakeVmcompute;
    use crate::hresult::HResult;

    #[test]
    fn envelope() {
        assert_eq!(
            decode_response(r#"{"Success":true,"Output":{"ID":"n1"}}"#).unwrap(),
            Some(serde_json::json!({"ID": "n1"}))
        );
        assert_eq!(decode_response(r#"{"Success":true}"#).unwrap(), None);
        assert_eq!(
            decode_response(r#"{"Success":true,"Output":null}"#).unwrap(),
            None
        );
        let err = decode_response(r#"{"Success":false,"Error":"Element not found."}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "hnsCall: hns failed with error : Element not found."
        );
        assert!(matches!(
            decode_response("<html>").unwrap_err().kind(),
            ErrorKind::InvalidResponse(_)
        ));
    }

    #[tokio::test]
    async fn transport_passes_arguments_and_maps_failures() {
        let fake = FakeVmcompute::new();
        fake.set_hns_response(r#"{"Success":true,"Output":[{"ID":"n1"}]}"#);
        let out = hns_request(fake.clone(), "GET", "/networks/", "")
            .await
            .unwrap();
        assert_eq!(out, Some(serde_json::json!([{"ID": "n1"}])));
        assert_eq!(fake.calls_of("HNSCall")[0].arg, "GET /networks/ ");

        fake.fail_next("HNSCall", HResult::HRESULT_ERROR_NOT_FOUND.as_i32());
        let err = hns_call(fake.clone(), "DELETE", "/networks/x", "")
            .await
            .unwrap_err();
        assert_eq!(err.hresult(), Some(HResult::ERROR_NOT_FOUND));
        assert_eq!(err.operation(), OP);
    }
}
