//! Fuzzes the HCS result-document parser (untrusted JSON from vmcompute/computecore) and the
//! rendering of the error it produces, the decoders of HCS exit-event data and the HNSCall response envelope. Seeds: any `{"Error":..,"ErrorEvents":[..]}` shape.
#![no_main]

use hcs::{Error, HResult, ResultDocument};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(doc) = ResultDocument::parse_bytes(data) {
        assert!(doc.error_events.len() <= hcs::result_doc::MAX_ERROR_EVENTS);
        let err = Error::op("fuzz", HResult::from_i32(doc.error))
            .with_system("id")
            .with_extra(doc.error_message.clone())
            .with_events(doc.error_events);
        let _ = err.to_string();
        let _ = hcs::error::is_not_exist(&err);
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = ResultDocument::events_lossy(s);
        // Exit data of HCS events is untrusted JSON as well.
        let _ = hcs::notification::system_exit_error(Some(s));
        let _ = hcs::notification::process_exit_code(Some(s));
        // So is the envelope of an HNSCall response.
        let _ = hcs::hns_call::decode_response(s);
    }
});
