//! The runhcs control socket: a request as the shim receives it (bytes on a Unix socket,
//! read up to the first newline, bounded at 1 MiB) and a reply line as a command reads it.
//! Neither may panic; what decodes must encode back to the same request or reply.
#![no_main]

use std::io::Write;
use std::os::unix::net::UnixStream;

use libfuzzer_sys::fuzz_target;
use runhcs::control::{parse_reply, parse_request, receive, Request};

fuzz_target!(|data: &[u8]| {
    // The shim's side: the bytes arrive on its end of the connection, then EOF.
    let (mut client, shim) = UnixStream::pair().expect("socketpair");
    // A request is at most 1 MiB and the inputs are far smaller: the socket buffer holds it.
    client.write_all(data).expect("write the request");
    client
        .shutdown(std::net::Shutdown::Write)
        .expect("shut the request's end");
    if let Ok((req, fds)) = receive(&shim) {
        assert!(fds.is_empty(), "no descriptors were sent");
        let line = serde_json::to_vec(&req).expect("a decoded request encodes");
        let again: Request = parse_request(&line).expect("an encoded request decodes");
        assert_eq!(again, req);
    }
    let _ = parse_request(data);

    // The command's side: a reply line.
    if let Ok(reply) = parse_reply(data) {
        let line = serde_json::to_vec(&reply).expect("a decoded reply encodes");
        assert_eq!(parse_reply(&line).expect("an encoded reply decodes"), reply);
    }
});
