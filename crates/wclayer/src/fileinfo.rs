//! Win32 file metadata as layers carry it: `FILE_BASIC_INFO` (four FILETIMEs and the file
//! attributes), the attribute bits, and the conversions between FILETIME (100 ns ticks since
//! 1601) and Unix time that the tar format needs.

/// `FILE_ATTRIBUTE_READONLY`.
pub const FILE_ATTRIBUTE_READONLY: u32 = 0x1;
/// `FILE_ATTRIBUTE_HIDDEN`.
pub const FILE_ATTRIBUTE_HIDDEN: u32 = 0x2;
/// `FILE_ATTRIBUTE_SYSTEM`.
pub const FILE_ATTRIBUTE_SYSTEM: u32 = 0x4;
/// `FILE_ATTRIBUTE_DIRECTORY`.
pub const FILE_ATTRIBUTE_DIRECTORY: u32 = 0x10;
/// `FILE_ATTRIBUTE_ARCHIVE`.
pub const FILE_ATTRIBUTE_ARCHIVE: u32 = 0x20;
/// `FILE_ATTRIBUTE_NORMAL`.
pub const FILE_ATTRIBUTE_NORMAL: u32 = 0x80;
/// `FILE_ATTRIBUTE_SPARSE_FILE`.
pub const FILE_ATTRIBUTE_SPARSE_FILE: u32 = 0x200;
/// `FILE_ATTRIBUTE_REPARSE_POINT`.
pub const FILE_ATTRIBUTE_REPARSE_POINT: u32 = 0x400;

/// FILETIME ticks between 1601-01-01 and 1970-01-01.
pub const UNIX_EPOCH_FILETIME: i64 = 116_444_736_000_000_000;

/// `FILE_BASIC_INFO`: the times (FILETIME ticks, signed as in `LARGE_INTEGER`) and the
/// attributes of a file. A layer entry without it is a tombstone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct FileBasicInfo {
    /// `CreationTime`.
    pub creation_time: i64,
    /// `LastAccessTime`.
    pub last_access_time: i64,
    /// `LastWriteTime`.
    pub last_write_time: i64,
    /// `ChangeTime`.
    pub change_time: i64,
    /// `FileAttributes`.
    pub file_attributes: u32,
}

impl FileBasicInfo {
    /// The size of [`FileBasicInfo::to_bytes`].
    pub const ENCODED_LEN: usize = 36;

    /// Whether `FILE_ATTRIBUTE_DIRECTORY` is set.
    pub fn is_dir(&self) -> bool {
        self.file_attributes & FILE_ATTRIBUTE_DIRECTORY != 0
    }

    /// Whether `FILE_ATTRIBUTE_REPARSE_POINT` is set.
    pub fn is_reparse_point(&self) -> bool {
        self.file_attributes & FILE_ATTRIBUTE_REPARSE_POINT != 0
    }

    /// Little-endian packed form (times, then attributes), used where Linux layer folders
    /// keep the metadata Linux file systems have no place for.
    pub fn to_bytes(&self) -> [u8; Self::ENCODED_LEN] {
        let mut b = [0u8; Self::ENCODED_LEN];
        b[0..8].copy_from_slice(&self.creation_time.to_le_bytes());
        b[8..16].copy_from_slice(&self.last_access_time.to_le_bytes());
        b[16..24].copy_from_slice(&self.last_write_time.to_le_bytes());
        b[24..32].copy_from_slice(&self.change_time.to_le_bytes());
        b[32..36].copy_from_slice(&self.file_attributes.to_le_bytes());
        b
    }

    /// Reads [`FileBasicInfo::to_bytes`]; `None` when `b` is shorter.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        let b: &[u8; Self::ENCODED_LEN] = b.get(..Self::ENCODED_LEN)?.try_into().ok()?;
        let i = |r: std::ops::Range<usize>| {
            i64::from_le_bytes(b[r].try_into().expect("8-byte range of a 36-byte array"))
        };
        Some(Self {
            creation_time: i(0..8),
            last_access_time: i(8..16),
            last_write_time: i(16..24),
            change_time: i(24..32),
            file_attributes: u32::from_le_bytes([b[32], b[33], b[34], b[35]]),
        })
    }
}

/// A point in time as seconds and nanoseconds since the Unix epoch (`nanos` in `0..1e9`, so
/// times before 1970 have a negative `secs` and a positive fraction).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixTime {
    /// Whole seconds (floor).
    pub secs: i64,
    /// Nanoseconds past `secs`.
    pub nanos: u32,
}

impl UnixTime {
    /// From nanoseconds since the epoch.
    pub fn from_nanos(ns: i128) -> Self {
        let secs = ns.div_euclid(1_000_000_000);
        let nanos = ns.rem_euclid(1_000_000_000) as u32;
        Self {
            secs: secs.clamp(i64::MIN as i128, i64::MAX as i128) as i64,
            nanos,
        }
    }

    /// Nanoseconds since the epoch.
    pub fn as_nanos(self) -> i128 {
        self.secs as i128 * 1_000_000_000 + self.nanos as i128
    }

    /// The FILETIME of this time, as Go's `windows.NsecToFiletime` computes it (100 ns ticks,
    /// truncated toward zero), saturating instead of wrapping.
    pub fn to_filetime(self) -> i64 {
        let ticks = self.as_nanos() / 100 + UNIX_EPOCH_FILETIME as i128;
        ticks.clamp(i64::MIN as i128, i64::MAX as i128) as i64
    }

    /// The Unix time of a FILETIME.
    pub fn from_filetime(ft: i64) -> Self {
        Self::from_nanos((ft as i128 - UNIX_EPOCH_FILETIME as i128) * 100)
    }

    /// The PAX form of this time (`1234.5`, `-1.25`), as Go's `formatPAXTime` writes it:
    /// whole seconds when there is no fraction, trailing zeros trimmed otherwise.
    pub fn to_pax(self) -> String {
        if self.nanos == 0 {
            return self.secs.to_string();
        }
        // A negative time keeps a positive fraction internally; PAX writes `-(s).(f)`.
        let (sign, secs, nanos) = if self.secs < 0 {
            ("-", -(self.secs + 1), 1_000_000_000 - self.nanos)
        } else {
            ("", self.secs, self.nanos)
        };
        let s = format!("{sign}{secs}.{nanos:09}");
        s.trim_end_matches('0').to_string()
    }

    /// Parses a PAX time (`[-]secs[.fraction]`); digits past nanoseconds are truncated, as
    /// Go's `parsePAXTime` does.
    pub fn from_pax(s: &str) -> Option<Self> {
        let (neg, body) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (whole, frac) = match body.split_once('.') {
            Some((w, f)) => (w, f),
            None => (body, ""),
        };
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || !(frac.is_empty() || digits(frac)) {
            return None;
        }
        let secs: i64 = whole.parse().ok()?;
        let mut nanos: i64 = 0;
        for (i, d) in frac.bytes().take(9).enumerate() {
            nanos += (d - b'0') as i64 * 10i64.pow(8 - i as u32);
        }
        let total = secs as i128 * 1_000_000_000 + nanos as i128;
        Some(Self::from_nanos(if neg { -total } else { total }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_info_bytes_round_trip() {
        let i = FileBasicInfo {
            creation_time: -5,
            last_access_time: 1,
            last_write_time: i64::MAX,
            change_time: 132_000_000_000_000_000,
            file_attributes: FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_HIDDEN,
        };
        assert_eq!(FileBasicInfo::from_bytes(&i.to_bytes()), Some(i));
        assert!(i.is_dir() && !i.is_reparse_point());
        assert_eq!(FileBasicInfo::from_bytes(&[0; 35]), None);
    }

    #[test]
    fn filetimes_convert_like_go() {
        assert_eq!(UnixTime::default().to_filetime(), UNIX_EPOCH_FILETIME);
        let t = UnixTime {
            secs: 1_600_000_000,
            nanos: 123_456_700,
        };
        let ft = t.to_filetime();
        assert_eq!(UnixTime::from_filetime(ft), t);
        // Sub-tick nanoseconds are truncated.
        let t2 = UnixTime { secs: 1, nanos: 99 };
        assert_eq!(UnixTime::from_filetime(t2.to_filetime()).nanos, 0);
        // FILETIME 0 is 1601, long before the Unix epoch.
        assert_eq!(UnixTime::from_filetime(0).secs, -11_644_473_600);
    }

    #[test]
    fn pax_times_match_go() {
        let t = |s, n| UnixTime { secs: s, nanos: n };
        assert_eq!(t(1, 0).to_pax(), "1");
        assert_eq!(t(1, 500_000_000).to_pax(), "1.5");
        assert_eq!(t(-2, 750_000_000).to_pax(), "-1.25");
        assert_eq!(t(0, 100).to_pax(), "0.0000001");
        for s in [
            "1",
            "1.5",
            "-1.25",
            "0.0000001",
            "-11644473600",
            "1.123456789",
        ] {
            assert_eq!(UnixTime::from_pax(s).unwrap().to_pax(), s, "{s}");
        }
        assert_eq!(
            UnixTime::from_pax("1.1234567891").unwrap(),
            t(1, 123_456_789)
        );
        for bad in ["", "-", ".5", "1.x", "+1", "1e3", "99999999999999999999"] {
            assert_eq!(UnixTime::from_pax(bad), None, "{bad}");
        }
    }
}
