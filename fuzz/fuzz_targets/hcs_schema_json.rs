//! Fuzzes the Go-compatible JSON decoder of `hcs-schema` on the documents HCS and the guest
//! send back (properties, statistics, process status, v1 container properties, the create
//! document), and checks that whatever decodes re-encodes and decodes to the same value.
#![no_main]

use hcs_schema::{json, v1, v2};
use libfuzzer_sys::fuzz_target;

fn round_trip<T>(data: &[u8])
where
    T: serde::de::DeserializeOwned + serde::Serialize + PartialEq + std::fmt::Debug,
{
    if let Ok(value) = json::from_slice::<T>(data) {
        let text = json::to_string(&value).expect("a decoded document re-encodes");
        let again: T = json::from_str(&text).expect("a re-encoded document decodes");
        assert_eq!(again, value);
        let _ = json::to_string_html_escaped(&value);
    }
}

fuzz_target!(|data: &[u8]| {
    round_trip::<v2::Properties>(data);
    round_trip::<v2::ProcessStatus>(data);
    round_trip::<v2::ComputeSystem>(data);
    round_trip::<v2::ModifySettingRequest>(data);
    round_trip::<v1::ContainerProperties>(data);
    round_trip::<v1::ContainerConfig>(data);
    round_trip::<v1::ProcessConfig>(data);
});
