//! Inode timestamp encodings: the reference's (defect D2) and the kernel's.

/// A point in time: seconds since the Unix epoch and nanoseconds (`0..1e9`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp {
    /// Seconds since 1970-01-01 UTC (may be negative).
    pub sec: i64,
    /// Nanoseconds, always in `0..1_000_000_000`.
    pub nsec: u32,
}

/// Go's zero `time.Time` (0001-01-01 UTC) in Unix seconds; the reference writes it as 0.
const GO_ZERO_SEC: i64 = -62_135_596_800;
const NS: i64 = 1_000_000_000;
const MIN_SEC: i64 = -0x8000_0000;
const MAX_SEC: i64 = 0x3_7FFF_FFFF;

impl Timestamp {
    /// Builds a normalized timestamp from seconds and a possibly out-of-range nanosecond count
    /// (as Go's `time.Unix` does).
    pub fn new(sec: i64, nsec: i64) -> Timestamp {
        let s = sec.saturating_add(nsec.div_euclid(NS));
        let n = nsec.rem_euclid(NS);
        Timestamp {
            sec: s,
            nsec: n as u32,
        }
    }

    /// Like Go's `time.Unix(sec, nsec)`, but `None` when the result is Go's zero time, which the
    /// reference treats as "no time".
    pub fn go(sec: i64, nsec: i64) -> Option<Timestamp> {
        let t = Timestamp::new(sec, nsec);
        if t.sec == GO_ZERO_SEC && t.nsec == 0 {
            None
        } else {
            Some(t)
        }
    }
}

/// How times are stored in the inode: the low 32 bits of the value go to the base field and the
/// high 32 bits to the `*_extra` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeEncoding {
    /// The reference's `seconds | nanoseconds << 34` as an unsigned value (defect D2).
    Reference,
    /// The kernel's: signed 32-bit base plus 2 epoch bits and 30 nanosecond bits.
    Kernel,
}

impl TimeEncoding {
    /// Encodes a time; `None` is 0.
    pub fn encode(self, t: Option<Timestamp>) -> u64 {
        let Some(t) = t else { return 0 };
        match self {
            TimeEncoding::Reference => {
                if t.sec < MIN_SEC {
                    return 0x8000_0000;
                }
                if t.sec > MAX_SEC {
                    return MAX_SEC as u64;
                }
                (t.sec as u64) | (u64::from(t.nsec) << 34)
            }
            TimeEncoding::Kernel => {
                let (sec, nsec) = if t.sec < MIN_SEC {
                    (MIN_SEC, 0)
                } else if t.sec > MAX_SEC {
                    (MAX_SEC, 0)
                } else {
                    (t.sec, t.nsec)
                };
                let base = sec as i32;
                let epoch = ((sec - i64::from(base)) >> 32) as u64 & 3;
                let extra = epoch | (u64::from(nsec) << 2);
                u64::from(base as u32) | (extra << 32)
            }
        }
    }

    /// Decodes a stored value (the reference's `fsTimeToTime`, including its quirks).
    pub fn decode(self, v: u64) -> Option<Timestamp> {
        if v == 0 {
            return None;
        }
        match self {
            TimeEncoding::Reference => {
                let mut s = (v & 0x3_FFFF_FFFF) as i64;
                if s > 0x7FFF_FFFF && s < 0x1_0000_0000 {
                    s = i64::from(s as u32 as i32);
                }
                Timestamp::go(s, (v >> 34) as i64)
            }
            TimeEncoding::Kernel => {
                let base = i64::from(v as u32 as i32);
                let extra = (v >> 32) as u32;
                let sec = base + (i64::from(extra & 3) << 32);
                Some(Timestamp::new(sec, i64::from(extra >> 2)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(e: TimeEncoding, sec: i64, nsec: i64) -> (u32, u32) {
        let v = e.encode(Some(Timestamp::new(sec, nsec)));
        (v as u32, (v >> 32) as u32)
    }

    #[test]
    fn reference_encoding_matches_listing_values() {
        let r = TimeEncoding::Reference;
        assert_eq!(raw(r, -1, 0), (0xffff_ffff, 0xffff_ffff));
        assert_eq!(raw(r, -946_771_200, 0), (0xc791_6b00, 0xffff_ffff));
        assert_eq!(raw(r, -2_147_483_648, 0), (0x8000_0000, 0xffff_ffff));
        assert_eq!(raw(r, -2_147_483_649, 0), (0x8000_0000, 0));
        assert_eq!(raw(r, -1, -500_000_000), (0xffff_fffe, 0xffff_ffff));
        assert_eq!(raw(r, 2_208_988_800, 0), (0x83aa_7e80, 0));
        assert_eq!(raw(r, 1 << 32, 0), (0, 1));
        assert_eq!(raw(r, 0x4_0000_0000, 0), (0x7fff_ffff, 3));
    }

    #[test]
    fn kernel_encoding_round_trips() {
        let k = TimeEncoding::Kernel;
        for (s, n) in [
            (-1i64, 0u32),
            (-946_771_200, 5),
            (-2_147_483_648, 0),
            (0, 1),
            (2_147_483_648, 999_999_999),
            (4_294_967_295, 0),
            (0x3_7FFF_FFFF, 7),
        ] {
            let t = Timestamp { sec: s, nsec: n };
            assert_eq!(k.decode(k.encode(Some(t))), Some(t), "{s}");
        }
        // -1 is base 0xffffffff with epoch 0, as the kernel writes it.
        assert_eq!(raw(k, -1, 0), (0xffff_ffff, 0));
        // 2040 has epoch 1.
        assert_eq!(raw(k, 2_208_988_800, 0), (0x83aa_7e80, 1));
    }

    #[test]
    fn go_zero_time_is_none() {
        assert_eq!(Timestamp::go(GO_ZERO_SEC, 0), None);
        assert!(Timestamp::go(0, 0).is_some());
    }
}
