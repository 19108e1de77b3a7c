//! Arbitrary bytes into the bridge frame reader and every payload decoder: must never panic.
#![no_main]

use bridge::codec::{parse_frame, read_frame, GUEST_READ_LIMIT};
use bridge::header::MAX_MESSAGE_SIZE;
use bridge::messages::*;
use libfuzzer_sys::fuzz_target;

fn decode_all(frame: &bridge::Frame) {
    let _ = frame.known_type();
    let _ = frame.decode::<RequestBase>();
    let _ = frame.decode::<ResponseBase>();
    let _ = frame.decode::<NegotiateProtocolRequest>();
    let _ = frame.decode::<NegotiateProtocolResponse>();
    let _ = frame.decode::<CreateRequest>();
    let _ = frame.decode::<CreateResponse>();
    let _ = frame.decode::<ExecuteProcessRequest>();
    let _ = frame.decode::<ExecuteProcessResponse>();
    let _ = frame.decode::<WaitForProcessRequest>();
    let _ = frame.decode::<WaitForProcessResponse>();
    let _ = frame.decode::<SignalProcessRequest>();
    let _ = frame.decode::<ResizeConsoleRequest>();
    let _ = frame.decode::<GetPropertiesRequest>();
    let _ = frame.decode::<GetPropertiesResponse>();
    let _ = frame.decode::<ModifySettingsRequest>();
    let _ = frame.decode::<ModifyServiceSettingsRequest>();
    let _ = frame.decode::<DumpStacksResponse>();
    let _ = frame.decode::<ContainerNotification>();
}

fuzz_target!(|data: &[u8]| {
    // A stream of frames, read until the first error, with both limits.
    for limit in [MAX_MESSAGE_SIZE, GUEST_READ_LIMIT] {
        let mut reader = data;
        while let Ok(Some(frame)) = read_frame(&mut reader, limit) {
            decode_all(&frame);
        }
        let _ = parse_frame(data, limit);
    }
    // The bytes as a bare body, so the JSON decoders see everything (not only what survives
    // the header checks).
    let frame = bridge::Frame {
        header: bridge::MessageHeader {
            message_type: 0,
            size: 0,
            id: 0,
        },
        body: data.to_vec(),
    };
    decode_all(&frame);
});
