//! Compact ext4 writer, tar2ext4, dm-verity and fixed VHD footer.
