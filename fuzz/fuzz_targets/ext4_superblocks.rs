//! The readers of images from elsewhere: the ext4 superblock (`ext4_filesystem_size`,
//! `SuperBlock::parse`), the dm-verity superblock and root block (`verity::read_info`), and
//! the structural checker. Arbitrary bytes as a device image must give a value or an error,
//! never a panic, a hang or a huge allocation.
#![no_main]

use std::io::{Cursor, Seek};

use ext4::format::SuperBlock;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut dev = Cursor::new(data);
    let size = ext4::tar2ext4::ext4_filesystem_size(&mut dev);
    assert_eq!(
        dev.stream_position().unwrap(),
        0,
        "the size probe restores the position"
    );
    if let Some(sb) = data.get(1024..2048).and_then(SuperBlock::parse) {
        let size = size.as_ref().expect("a parsed superblock gives a size");
        assert_eq!(
            *size,
            u64::from(sb.blocks_count) * (1024u64 << sb.log_block_size.min(16))
        );
    }
    // The verity superblock where tar2ext4 puts it (after the ext4 data), and at 0.
    let mut offsets = vec![0u64];
    if let Ok(s) = size {
        offsets.push(s);
    }
    for off in offsets {
        if let Ok(info) = ext4::verity::read_info(&mut dev, off) {
            let at = off as usize;
            assert_eq!(&data[at..at + 6], b"verity");
            let blocks = u64::from_le_bytes(data[at + 72..at + 80].try_into().unwrap());
            assert_eq!(info.data_blocks, blocks);
            assert_eq!(info.root_hash.len(), 64);
            assert!(info.salt.len() <= 512);
        }
    }
    let _ = ext4::check::check(data);
});
