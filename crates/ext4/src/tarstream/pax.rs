//! PAX extended headers: the records (Go's `parsePAX`, PAX 0.0 sparse maps folded into
//! `GNU.sparse.map`), their times, and how they override the next entry's header.

use std::collections::BTreeMap;

use super::{bad, parse_i64, Header};
use crate::error::Result;
use crate::time::Timestamp;

/// Go's `parsePAXTime`.
fn parse_pax_time(s: &[u8]) -> Option<Option<Timestamp>> {
    let (ss, sn) = match s.iter().position(|&c| c == b'.') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, &s[s.len()..]),
    };
    let secs = parse_i64(ss)?;
    if sn.is_empty() {
        return Some(Timestamp::go(secs, 0));
    }
    if !sn.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut digits = sn.to_vec();
    digits.resize(9, b'0');
    let nsecs = parse_i64(&digits[..9])?;
    if ss.first() == Some(&b'-') {
        return Some(Timestamp::go(secs, -nsecs));
    }
    Some(Timestamp::go(secs, nsecs))
}

/// Go's `parsePAX` over the record bytes.
pub(super) fn parse_pax(buf: &[u8]) -> Result<BTreeMap<Vec<u8>, Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut sparse_map: Vec<Vec<u8>> = Vec::new();
    let mut s = buf;
    while !s.is_empty() {
        let sp = s
            .iter()
            .position(|&c| c == b' ')
            .ok_or_else(|| bad("PAX record without length"))?;
        let n = parse_i64(&s[..sp]).ok_or_else(|| bad("PAX record length"))?;
        if n < 5 || n as u64 > s.len() as u64 {
            return Err(bad("PAX record length out of range"));
        }
        let n = n as usize;
        if n <= sp + 1 {
            return Err(bad("PAX record length out of range"));
        }
        let rec = &s[sp + 1..n - 1];
        if s[n - 1] != b'\n' {
            return Err(bad("PAX record not terminated by a newline"));
        }
        let eq = rec
            .iter()
            .position(|&c| c == b'=')
            .ok_or_else(|| bad("PAX record without '='"))?;
        let (k, v) = (&rec[..eq], &rec[eq + 1..]);
        let valid = !k.is_empty()
            && match k {
                b"path" | b"linkpath" | b"uname" | b"gname" => !v.contains(&0),
                _ => !k.contains(&0),
            };
        if !valid {
            return Err(bad("invalid PAX record"));
        }
        match k {
            b"GNU.sparse.offset" | b"GNU.sparse.numbytes" => {
                let expect_offset = sparse_map.len() % 2 == 0;
                if (expect_offset && k != b"GNU.sparse.offset")
                    || (!expect_offset && k != b"GNU.sparse.numbytes")
                    || v.contains(&b',')
                {
                    return Err(bad("invalid GNU sparse PAX 0.0 map"));
                }
                sparse_map.push(v.to_vec());
            }
            _ => {
                out.insert(k.to_vec(), v.to_vec());
            }
        }
        s = &s[n..];
    }
    if !sparse_map.is_empty() {
        out.insert(b"GNU.sparse.map".to_vec(), sparse_map.join(&b','));
    }
    Ok(out)
}

pub(super) fn merge_pax(h: &mut Header, records: &BTreeMap<Vec<u8>, Vec<u8>>) -> Result<()> {
    for (k, v) in records {
        if v.is_empty() {
            continue;
        }
        let err = || bad(format!("PAX record {}", String::from_utf8_lossy(k)));
        match k.as_slice() {
            b"path" => h.name = v.clone(),
            b"linkpath" => h.linkname = v.clone(),
            b"uid" => h.uid = parse_i64(v).ok_or_else(err)?,
            b"gid" => h.gid = parse_i64(v).ok_or_else(err)?,
            b"atime" => h.atime = parse_pax_time(v).ok_or_else(err)?,
            b"mtime" => h.mtime = parse_pax_time(v).ok_or_else(err)?,
            b"ctime" => h.ctime = parse_pax_time(v).ok_or_else(err)?,
            b"size" => h.size = parse_i64(v).ok_or_else(err)?,
            _ => {}
        }
    }
    h.pax = records.clone();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn pax_time_like_go() {
        assert_eq!(
            parse_pax_time(b"-1.5"),
            Some(Some(Timestamp {
                sec: -2,
                nsec: 500_000_000
            }))
        );
        assert_eq!(
            parse_pax_time(b"1.123456789123"),
            Some(Some(Timestamp {
                sec: 1,
                nsec: 123_456_789
            }))
        );
        assert_eq!(
            parse_pax_time(b"-0.25"),
            Some(Some(Timestamp {
                sec: -1,
                nsec: 750_000_000
            }))
        );
        assert_eq!(parse_pax_time(b"1.x"), None);
        assert_eq!(parse_pax_time(b"abc"), None);
    }

    #[test]
    fn pax_records_parse_and_reject_garbage() {
        let r = parse_pax(b"12 path=abc\n6 xyz\n").unwrap_err();
        assert!(matches!(r, Error::TarHeader(_)));
        let r = parse_pax(b"12 path=abc\n").unwrap();
        assert_eq!(r.get(&b"path"[..]).unwrap(), b"abc");
        assert!(parse_pax(b"3 x=\n").is_err());
        assert!(parse_pax(b"999 a=b\n").is_err());
    }
}
