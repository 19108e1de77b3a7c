//! The gzip front of tar2ext4 (`maybe_gunzip`, as the CLI uses it) and the conversion behind
//! it: arbitrary bytes, gzipped or not, must convert or fail cleanly; a default-mode image
//! must pass the structural checker. The decompressed stream is bounded (a small input can
//! expand a lot), as is the image.
#![no_main]

use std::io::{Cursor, Read};

use ext4::{convert, Options, OutputMode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(stream) = ext4::tar2ext4::maybe_gunzip(data) else {
        return;
    };
    let opts = Options {
        mode: OutputMode::Default,
        max_disk_size: 64 << 20,
        vhd_unique_id: Some([0; 16]),
        verity_uuid: Some([0; 16]),
        ..Options::default()
    };
    let mut out = Cursor::new(Vec::new());
    if let Ok(outcome) = convert(stream.take(32 << 20), &mut out, &opts) {
        let img = out.into_inner();
        assert_eq!(img.len() as u64, outcome.ext4_size);
        if let Err(e) = ext4::check::check(&img) {
            panic!("default-mode image fails the structural check: {e}");
        }
    }
});
