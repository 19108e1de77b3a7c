//! Arbitrary bytes as a boot-files base archive (tar, cpio newc, either gzipped): must never
//! panic; what is accepted has confined names and survives a tar and a cpio round trip.
#![no_main]

use guest::bootfiles::tree::{normalize, Tree};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(t) = Tree::read_archive_limited(data, 16 << 20) else {
        return;
    };
    for (path, _) in t.iter() {
        assert_eq!(
            normalize(path).unwrap(),
            *path,
            "unnormalized name {path:?}"
        );
        assert!(
            !path.split('/').any(|c| c == ".."),
            "escaping name {path:?}"
        );
    }
    if let Ok(tar) = t.to_tar(0) {
        assert_eq!(Tree::read_archive_limited(&tar, 64 << 20).unwrap(), t);
    }
    if let Ok(cpio) = t.to_cpio(0) {
        assert_eq!(Tree::read_archive_limited(&cpio, 64 << 20).unwrap(), t);
    }
});
