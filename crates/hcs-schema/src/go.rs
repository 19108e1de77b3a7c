//! Go `encoding/json` value rules the HCS documents depend on.
//!
//! The reference marshals every document with Go's `encoding/json`, so the bytes HCS and the
//! guest see follow Go's rules, not serde's defaults:
//!
//! * `omitempty` drops `false`, `0`, `""`, empty slices and maps and nil pointers, but **never a
//!   struct held by value** (nor a `time.Time`, nor a fixed-size array of non-zero length).
//!   [`GoEmpty`] encodes exactly that: scalars and collections answer by their value, `Option`
//!   (a Go pointer) by `is_none`, and every schema struct answers `false`.
//! * `time.Time` is a struct: it is always emitted, as RFC 3339 ([`GoTime`]), and its zero value
//!   is `0001-01-01T00:00:00Z`.
//! * `guid.GUID` is an array marshalled as text: always emitted, zero value is the nil GUID
//!   ([`Guid`]).
//! * A nil slice without `omitempty` is emitted as `null` ([`nil_if_empty`]).
//! * On decode a JSON `null` leaves a non-pointer field at its zero value ([`null_default`]).

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Whether a value is "empty" in the sense of Go's `omitempty`.
pub trait GoEmpty {
    /// True when Go would omit a field holding this value under `omitempty`.
    fn is_go_empty(&self) -> bool;
}

/// `skip_serializing_if` helper: Go's `omitempty` test.
pub fn is_empty<T: GoEmpty + ?Sized>(value: &T) -> bool {
    value.is_go_empty()
}

macro_rules! go_empty_zero {
    ($($t:ty),*) => {
        $(impl GoEmpty for $t {
            fn is_go_empty(&self) -> bool {
                *self == <$t>::default()
            }
        })*
    };
}
go_empty_zero!(bool, u8, u16, u32, u64, i8, i16, i32, i64, f32, f64);

impl GoEmpty for String {
    fn is_go_empty(&self) -> bool {
        self.is_empty()
    }
}

impl<T> GoEmpty for Vec<T> {
    fn is_go_empty(&self) -> bool {
        self.is_empty()
    }
}

impl<K, V> GoEmpty for BTreeMap<K, V> {
    fn is_go_empty(&self) -> bool {
        self.is_empty()
    }
}

impl<K, V, S> GoEmpty for HashMap<K, V, S> {
    fn is_go_empty(&self) -> bool {
        self.is_empty()
    }
}

/// A Go pointer (or interface): omitted only when nil.
impl<T> GoEmpty for Option<T> {
    fn is_go_empty(&self) -> bool {
        self.is_none()
    }
}

/// A Go array `[N]T` is empty only when `N == 0`, whatever its elements hold.
impl<T, const N: usize> GoEmpty for [T; N] {
    fn is_go_empty(&self) -> bool {
        N == 0
    }
}

/// `deserialize_with` helper: a JSON `null` decodes to the zero value, as Go leaves a
/// non-pointer field untouched when it reads `null`.
pub fn null_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// `serialize_with` helper for a slice field without `omitempty`: Go writes a nil slice as
/// `null`. An empty `Vec` stands for the nil slice the reference leaves unset.
pub fn nil_if_empty<S, T>(value: &[T], serializer: S) -> Result<S::Ok, S::Error>
where
    S: Serializer,
    T: Serialize,
{
    if value.is_empty() {
        serializer.serialize_none()
    } else {
        value.serialize(serializer)
    }
}

/// `serialize_with` helper for a Go `map[int]T`: Go writes the keys as decimal strings and
/// sorts them **as strings** (`"10"` before `"2"`), unlike a `BTreeMap<i64, _>`'s numeric order.
pub fn int_keyed_map<S, T>(
    map: &std::collections::BTreeMap<i64, T>,
    serializer: S,
) -> Result<S::Ok, S::Error>
where
    S: Serializer,
    T: Serialize,
{
    use serde::ser::SerializeMap;
    let mut entries: Vec<(String, &T)> = map.iter().map(|(k, v)| (k.to_string(), v)).collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = serializer.serialize_map(Some(entries.len()))?;
    for (key, value) in entries {
        out.serialize_entry(&key, value)?;
    }
    out.end()
}

/// A Go `time.Time` on the wire: an RFC 3339 string, always present.
///
/// Kept as the text HCS sent (validated on decode) so that round trips are byte-exact and no
/// date library is needed; callers that need arithmetic parse it themselves.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GoTime(String);

impl GoTime {
    /// The text Go writes for the zero `time.Time`.
    pub const ZERO: &'static str = "0001-01-01T00:00:00Z";

    /// Wraps an RFC 3339 timestamp, or `None` when the text is not RFC 3339.
    pub fn new(text: impl Into<String>) -> Option<Self> {
        let text = text.into();
        is_rfc3339(&text).then_some(Self(text))
    }

    /// The timestamp text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The UTC time `secs` seconds and `nanos` nanoseconds after the Unix epoch, written as
    /// Go's `MarshalJSON` writes it (RFC 3339 with the fraction's trailing zeros trimmed), or
    /// `None` outside years 0000–9999 (which Go refuses to marshal) or for `nanos` ≥ 10⁹.
    pub fn from_unix(secs: i64, nanos: u32) -> Option<Self> {
        if nanos >= 1_000_000_000 {
            return None;
        }
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        // Howard Hinnant's days-to-civil algorithm (proleptic Gregorian).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        if !(0..=9999).contains(&year) {
            return None;
        }
        let mut text = format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        );
        if nanos != 0 {
            let fraction = format!("{nanos:09}");
            text.push('.');
            text.push_str(fraction.trim_end_matches('0'));
        }
        text.push('Z');
        Some(Self(text))
    }

    /// A [`std::time::SystemTime`] as Go writes it (see [`GoTime::from_unix`]).
    pub fn from_system_time(time: std::time::SystemTime) -> Option<Self> {
        match time.duration_since(std::time::UNIX_EPOCH) {
            Ok(after) => {
                Self::from_unix(i64::try_from(after.as_secs()).ok()?, after.subsec_nanos())
            }
            Err(before) => {
                let before = before.duration();
                let secs = i64::try_from(before.as_secs()).ok()?;
                match before.subsec_nanos() {
                    0 => Self::from_unix(-secs, 0),
                    n => Self::from_unix(-secs - 1, 1_000_000_000 - n),
                }
            }
        }
    }

    /// Whether this is Go's zero time.
    pub fn is_zero(&self) -> bool {
        self.0 == Self::ZERO
    }
}

impl Default for GoTime {
    fn default() -> Self {
        Self(Self::ZERO.to_owned())
    }
}

impl fmt::Display for GoTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `time.Time` is a struct: `omitempty` never drops it.
impl GoEmpty for GoTime {
    fn is_go_empty(&self) -> bool {
        false
    }
}

impl Serialize for GoTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for GoTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Go's time.Time.UnmarshalJSON treats null as "leave unchanged".
        match Option::<String>::deserialize(deserializer)? {
            None => Ok(Self::default()),
            Some(text) => Self::new(text.clone())
                .ok_or_else(|| serde::de::Error::custom(format!("time {text:?} is not RFC 3339"))),
        }
    }
}

/// Checks the RFC 3339 form Go's `time.Time.UnmarshalJSON` accepts:
/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` with upper-case `T` and `Z` and a real
/// calendar date.
fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let num = |r: std::ops::Range<usize>| -> u32 {
        b[r].iter().fold(0, |acc, d| acc * 10 + u32::from(d - b'0'))
    };
    if b.len() < 20
        || !digits(0..4)
        || b[4] != b'-'
        || !digits(5..7)
        || b[7] != b'-'
        || !digits(8..10)
        || b[10] != b'T'
        || !digits(11..13)
        || b[13] != b':'
        || !digits(14..16)
        || b[16] != b':'
        || !digits(17..19)
    {
        return false;
    }
    let (year, month, day) = (num(0..4), num(5..7), num(8..10));
    let (hour, min, sec) = (num(11..13), num(14..16), num(17..19));
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    if !(1..=days_in_month).contains(&day) || hour > 23 || min > 59 || sec > 59 {
        return false;
    }
    let mut i = 19;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match &b[i..] {
        [b'Z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => {
            [h1, h2, m1, m2].iter().all(|d| d.is_ascii_digit())
                && (h1 - b'0') * 10 + (h2 - b'0') <= 23
                && (m1 - b'0') * 10 + (m2 - b'0') <= 59
        }
        _ => false,
    }
}

/// A `go-winio` `guid.GUID` on the wire: always present, lowercase canonical text, the nil
/// GUID when unset.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Guid(String);

impl Guid {
    /// The all-zero GUID, Go's zero value.
    pub const NIL: &'static str = "00000000-0000-0000-0000-000000000000";

    /// Parses the canonical `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` form (any hex case); the
    /// stored text is lowercase, as `guid.GUID.String()` writes it.
    pub fn parse(text: &str) -> Option<Self> {
        let b = text.as_bytes();
        let ok = b.len() == 36
            && b.iter().enumerate().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => *c == b'-',
                _ => c.is_ascii_hexdigit(),
            });
        ok.then(|| Self(text.to_ascii_lowercase()))
    }

    /// The GUID text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Guid {
    fn default() -> Self {
        Self(Self::NIL.to_owned())
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `guid.GUID` is an array of 16 bytes: `omitempty` never drops it.
impl GoEmpty for Guid {
    fn is_go_empty(&self) -> bool {
        false
    }
}

impl Serialize for Guid {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Guid {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            None => Ok(Self::default()),
            Some(text) => Self::parse(&text)
                .ok_or_else(|| serde::de::Error::custom(format!("invalid GUID {text:?}"))),
        }
    }
}

/// A Go `[]byte` on the wire: standard base64 with padding; `null` or absent is empty, and
/// `omitempty` drops it when empty (it is a slice).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct GoBytes(pub Vec<u8>);

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

impl GoBytes {
    /// The base64 text Go writes for these bytes.
    pub fn to_base64(&self) -> String {
        let mut out = String::with_capacity(self.0.len().div_ceil(3) * 4);
        for chunk in self.0.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
                if i <= chunk.len() {
                    out.push(char::from(BASE64[((n >> shift) & 63) as usize]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    /// Decodes standard padded base64 as Go's `encoding/json` does (`\r` and `\n` are
    /// ignored); `None` on malformed input.
    pub fn from_base64(text: &str) -> Option<Self> {
        let symbols: Vec<u8> = text
            .bytes()
            .filter(|c| *c != b'\r' && *c != b'\n')
            .collect();
        if symbols.len() % 4 != 0 {
            return None;
        }
        let value = |c: u8| BASE64.iter().position(|&b| b == c).map(|v| v as u32);
        let mut out = Vec::with_capacity(symbols.len() / 4 * 3);
        let quads = symbols.len() / 4;
        for (q, quad) in symbols.chunks(4).enumerate() {
            let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
            if pad > 2 || (pad > 0 && q + 1 != quads) {
                return None;
            }
            let mut n = 0u32;
            for &c in &quad[..4 - pad] {
                n = (n << 6) | value(c)?;
            }
            n <<= 6 * pad as u32;
            let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
            // Like Go's default (non-strict) decoder, bits left over in a padded quad are
            // ignored.
            out.extend_from_slice(&bytes[..3 - pad]);
        }
        Some(Self(out))
    }
}

impl GoEmpty for GoBytes {
    fn is_go_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for GoBytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_base64())
    }
}

impl<'de> Deserialize<'de> for GoBytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            None => Ok(Self::default()),
            Some(text) => Self::from_base64(&text)
                .ok_or_else(|| serde::de::Error::custom("illegal base64 data in []byte value")),
        }
    }
}

impl GoEmpty for serde_json::Value {
    /// A Go `interface{}` is omitted only when nil, which decodes from / encodes to `null`.
    fn is_go_empty(&self) -> bool {
        self.is_null()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn omitempty_rules() {
        assert!(is_empty(&0u32));
        assert!(is_empty(&false));
        assert!(is_empty(&String::new()));
        assert!(is_empty(&Vec::<u8>::new()));
        assert!(is_empty(&BTreeMap::<String, u8>::new()));
        assert!(is_empty(&None::<u8>));
        assert!(
            !is_empty(&Some(0u8)),
            "a non-nil pointer to zero is not empty"
        );
        assert!(!is_empty(&[0u64; 2]), "a [2]uint is never empty");
        assert!(!is_empty(&GoTime::default()));
        assert!(!is_empty(&Guid::default()));
    }

    #[test]
    fn go_time_accepts_rfc3339_only() {
        for ok in [
            "0001-01-01T00:00:00Z",
            "2024-05-06T07:08:09.123456789Z",
            "2024-05-06T07:08:09+01:00",
            "2024-05-06T07:08:09.5-08:30",
            "2024-02-29T23:59:59Z",
        ] {
            assert_eq!(
                GoTime::new(ok).map(|t| t.to_string()),
                Some(ok.to_owned()),
                "{ok}"
            );
        }
        for bad in [
            "",
            "2024-05-06",
            "2024-05-06 07:08:09Z",
            "2024-13-06T07:08:09Z",
            "2024-05-06T07:08:09",
            "2024-05-06T07:08:09.Z",
            "2024-05-06T07:08:09+0100",
            "2023-02-29T00:00:00Z",
            "2024-04-31T00:00:00Z",
            "2024-05-06t07:08:09z",
        ] {
            assert!(GoTime::new(bad).is_none(), "{bad}");
        }
        let t: GoTime = serde_json::from_str("null").unwrap();
        assert!(t.is_zero());
        let t = GoTime::from_unix(-62_135_596_800, 0).unwrap();
        assert!(t.is_zero());
        assert!(serde_json::from_str::<GoTime>("\"yesterday\"").is_err());
    }

    #[test]
    fn go_time_from_unix_matches_marshal_json() {
        let cases = [
            (0, 0, "1970-01-01T00:00:00Z"),
            (1_715_000_000, 0, "2024-05-06T12:53:20Z"),
            (1_715_000_000, 123_456_700, "2024-05-06T12:53:20.1234567Z"),
            (951_782_400, 500_000_000, "2000-02-29T00:00:00.5Z"),
            (-1, 999_999_999, "1969-12-31T23:59:59.999999999Z"),
            (253_402_300_799, 0, "9999-12-31T23:59:59Z"),
        ];
        for (secs, nanos, text) in cases {
            let t = GoTime::from_unix(secs, nanos).unwrap();
            assert_eq!(t.as_str(), text);
            assert!(GoTime::new(text).is_some(), "{text} must parse back");
        }
        assert_eq!(GoTime::from_unix(253_402_300_800, 0), None, "year 10000");
        assert_eq!(GoTime::from_unix(-62_167_219_201, 0), None, "year -1");
        assert_eq!(GoTime::from_unix(0, 1_000_000_000), None);
        let before = std::time::UNIX_EPOCH - std::time::Duration::from_millis(1500);
        assert_eq!(
            GoTime::from_system_time(before).unwrap().as_str(),
            "1969-12-31T23:59:58.5Z"
        );
        // 100 ns: the finest step a Windows SystemTime holds (Linux holds 1 ns).
        let after = std::time::UNIX_EPOCH + std::time::Duration::new(1_715_000_000, 100);
        assert_eq!(
            GoTime::from_system_time(after).unwrap().as_str(),
            "2024-05-06T12:53:20.0000001Z"
        );
    }

    #[test]
    fn go_bytes_are_base64() {
        for (raw, text) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (b"\xff\x00\xfe", "/wD+"),
        ] {
            let bytes = GoBytes(raw.to_vec());
            assert_eq!(bytes.to_base64(), text);
            assert_eq!(GoBytes::from_base64(text), Some(bytes));
        }
        assert_eq!(
            GoBytes::from_base64("Zm9v\r\nYg=="),
            Some(GoBytes(b"foob".to_vec()))
        );
        for bad in ["Zg=", "Z===", "Zg==Zg==", "Zm9*", "@@@@"] {
            assert_eq!(GoBytes::from_base64(bad), None, "{bad}");
        }
        assert_eq!(
            serde_json::to_string(&GoBytes(b"hi".to_vec())).unwrap(),
            "\"aGk=\""
        );
        assert!(serde_json::from_str::<GoBytes>("\"!\"").is_err());
        assert_eq!(
            serde_json::from_str::<GoBytes>("null").unwrap(),
            GoBytes::default()
        );
    }

    #[test]
    fn guid_is_lowercased_and_validated() {
        let g: Guid = serde_json::from_str("\"ABCDEF01-2345-6789-ABCD-EF0123456789\"").unwrap();
        assert_eq!(
            serde_json::to_string(&g).unwrap(),
            "\"abcdef01-2345-6789-abcd-ef0123456789\""
        );
        assert!(serde_json::from_str::<Guid>("\"not-a-guid\"").is_err());
        assert_eq!(Guid::default().as_str(), Guid::NIL);
    }
}
