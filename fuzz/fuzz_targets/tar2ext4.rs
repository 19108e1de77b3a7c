//! Fuzzes tar → ext4 conversion: arbitrary bytes as the tar stream must never panic, and
//! every image the default mode produces must pass the structural checker.
#![no_main]

use std::io::Cursor;

use ext4::{convert, Options, OutputMode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks options; the rest is the tar stream.
    let (flags, tar) = match data.split_first() {
        Some((f, t)) => (*f, t),
        None => (0, data),
    };
    for mode in [OutputMode::Default, OutputMode::Compat] {
        let opts = Options {
            mode,
            convert_whiteout: flags & 1 != 0,
            inline_data: flags & 2 != 0,
            convert_backslash: flags & 4 != 0,
            compute_root_hash: flags & 8 != 0,
            // Keeps images (and sparse files expanded into them) small.
            max_disk_size: 64 << 20,
            verity_uuid: Some([0; 16]),
            vhd_unique_id: Some([0; 16]),
            ..Options::default()
        };
        let mut out = Cursor::new(Vec::new());
        if let Ok(outcome) = convert(tar, &mut out, &opts) {
            let img = out.into_inner();
            assert_eq!(img.len() as u64, outcome.ext4_size);
            if mode == OutputMode::Default {
                if let Err(e) = ext4::check::check(&img) {
                    panic!("default-mode image fails the structural check: {e}");
                }
            }
        }
    }
});
