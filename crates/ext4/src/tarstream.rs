//! A tar reader with the semantics of Go's `archive/tar`, which the reference uses.
//!
//! Byte parity with the reference depends on details of how Go's reader turns a stream into
//! headers: PAX and GNU long-name records apply to the next entry, PAX *global* headers are
//! returned as entries (defect D6), header-only types carry no data whatever their size field
//! says, PAX times keep their nanoseconds (negative fractions included), sparse files (old GNU
//! and PAX 0.0/0.1/1.0) are expanded, and a stream that simply ends at an entry boundary is a
//! normal end. The `tar` crate differs on several of these (it neither expands PAX 1.0 sparse
//! files nor applies `GNU.sparse.name`), so the block-level decoding is done here; the `tar`
//! crate builds the archives in the tests and the benchmark.
//!
//! All sizes from the stream are bounded: special records (PAX, GNU long names) are limited
//! to 1 MiB as in Go, and sparse maps to what the stream actually carries.

use std::collections::BTreeMap;
use std::io::{self, Read};

use crate::error::{Error, Result};
use crate::time::Timestamp;

const BLOCK: usize = 512;
const MAX_SPECIAL_FILE_SIZE: u64 = 1 << 20;
/// At most this many sparse entries per file (Go limits the map by the data it reads; this is
/// a plain bound against hostile inputs).
const MAX_SPARSE_ENTRIES: usize = 1 << 20;

/// Tar type flags.
pub mod typeflag {
    /// Regular file.
    pub const REG: u8 = b'0';
    /// Regular file (old NUL flag).
    pub const REG_A: u8 = 0;
    /// Hard link.
    pub const LINK: u8 = b'1';
    /// Symbolic link.
    pub const SYMLINK: u8 = b'2';
    /// Character device.
    pub const CHAR: u8 = b'3';
    /// Block device.
    pub const BLOCK: u8 = b'4';
    /// Directory.
    pub const DIR: u8 = b'5';
    /// FIFO.
    pub const FIFO: u8 = b'6';
    /// PAX header for the next entry.
    pub const XHEADER: u8 = b'x';
    /// PAX global header.
    pub const XGLOBAL: u8 = b'g';
    /// GNU long name.
    pub const GNU_LONGNAME: u8 = b'L';
    /// GNU long link name.
    pub const GNU_LONGLINK: u8 = b'K';
    /// Old GNU sparse file.
    pub const GNU_SPARSE: u8 = b'S';
}

/// One entry's header, as Go's `tar.Header` would hold it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    /// Type flag.
    pub typeflag: u8,
    /// Path as stored (not cleaned).
    pub name: Vec<u8>,
    /// Link target.
    pub linkname: Vec<u8>,
    /// Logical size of the data.
    pub size: i64,
    /// Mode bits as stored.
    pub mode: i64,
    /// Owner.
    pub uid: i64,
    /// Group.
    pub gid: i64,
    /// Modification time.
    pub mtime: Option<Timestamp>,
    /// Access time.
    pub atime: Option<Timestamp>,
    /// Change time.
    pub ctime: Option<Timestamp>,
    /// Device major.
    pub devmajor: i64,
    /// Device minor.
    pub devminor: i64,
    /// All PAX records that applied to this entry.
    pub pax: BTreeMap<Vec<u8>, Vec<u8>>,
}

fn header_only(t: u8) -> bool {
    use typeflag::*;
    matches!(t, LINK | SYMLINK | CHAR | BLOCK | DIR | FIFO)
}

fn bad(msg: impl Into<String>) -> Error {
    Error::TarHeader(msg.into())
}

/// Go's `parseString`: up to the first NUL.
fn cstr(b: &[u8]) -> &[u8] {
    match b.iter().position(|&c| c == 0) {
        Some(i) => &b[..i],
        None => b,
    }
}

/// Parses an ASCII decimal like Go's `strconv.ParseInt(s, 10, 64)`.
fn parse_i64(s: &[u8]) -> Option<i64> {
    let st = std::str::from_utf8(s).ok()?;
    if st.starts_with('+') && st.len() > 1 && st.as_bytes()[1] == b'-' {
        return None;
    }
    st.parse::<i64>().ok()
}

#[derive(Default)]
struct Parser {
    err: bool,
}

impl Parser {
    fn octal(&mut self, b: &[u8]) -> i64 {
        let start = b.iter().position(|&c| c != b' ' && c != 0);
        let Some(start) = start else { return 0 };
        let end = b
            .iter()
            .rposition(|&c| c != b' ' && c != 0)
            .unwrap_or(start);
        let s = cstr(&b[start..=end]);
        match std::str::from_utf8(s)
            .ok()
            .filter(|s| !s.starts_with('+'))
            .and_then(|s| u64::from_str_radix(s, 8).ok())
        {
            Some(v) => v as i64,
            None => {
                self.err = true;
                0
            }
        }
    }

    fn numeric(&mut self, b: &[u8]) -> i64 {
        if !b.is_empty() && b[0] & 0x80 != 0 {
            let inv: u8 = if b[0] & 0x40 != 0 { 0xff } else { 0 };
            let mut x: u64 = 0;
            for (i, &c) in b.iter().enumerate() {
                let mut c = c ^ inv;
                if i == 0 {
                    c &= 0x7f;
                }
                if x >> 56 > 0 {
                    self.err = true;
                    return 0;
                }
                x = (x << 8) | u64::from(c);
            }
            if x >> 63 > 0 {
                self.err = true;
                return 0;
            }
            return if inv == 0xff { !(x as i64) } else { x as i64 };
        }
        self.octal(b)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Format {
    Unknown,
    V7,
    UstarPax,
    Gnu,
    Star,
}

fn get_format(b: &[u8; BLOCK]) -> Format {
    let mut p = Parser::default();
    let value = p.octal(&b[148..156]);
    // The checksum counts its own 8 bytes as spaces. Summing every byte and then swapping
    // the field's bytes for spaces keeps the loop branch-free (it vectorizes; this runs
    // once per header, and headers dominate tars of many small files).
    let sums = |bytes: &[u8]| {
        bytes.iter().fold((0i64, 0i64), |(u, s), &c| {
            (u + i64::from(c), s + i64::from(c as i8))
        })
    };
    let (all_u, all_s) = sums(&b[..]);
    let (field_u, field_s) = sums(&b[148..156]);
    let spaces = 8 * i64::from(b' ');
    let (unsigned, signed) = (all_u - field_u + spaces, all_s - field_s + spaces);
    if p.err || (value != unsigned && value != signed) {
        return Format::Unknown;
    }
    let magic = &b[257..263];
    let version = &b[263..265];
    let trailer = &b[508..512];
    if magic == b"ustar\0" && trailer == b"tar\0" {
        Format::Star
    } else if magic == b"ustar\0" {
        Format::UstarPax
    } else if magic == b"ustar " && version == b" \0" {
        Format::Gnu
    } else {
        Format::V7
    }
}

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
fn parse_pax(buf: &[u8]) -> Result<BTreeMap<Vec<u8>, Vec<u8>>> {
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

/// One data fragment of a sparse file: (logical offset, length).
type Fragments = Vec<(i64, i64)>;

fn validate_sparse(sp: &Fragments, size: i64) -> bool {
    if size < 0 {
        return false;
    }
    let mut pre_end = 0i64;
    for &(off, len) in sp {
        if off < 0 || len < 0 || off > i64::MAX - len || off + len > size || pre_end > off {
            return false;
        }
        pre_end = off + len;
    }
    true
}

/// Reads a tar stream entry by entry.
pub struct TarReader<R: Read> {
    r: R,
    /// Physical bytes left in the current entry.
    remaining: u64,
    pad: u64,
    /// Logical reading state of a sparse entry.
    sparse: Option<SparseState>,
    /// Logical bytes left in the current entry.
    logical_left: u64,
    /// Require an end-of-archive block and fail on a stream that just stops.
    strict: bool,
    done: bool,
}

struct SparseState {
    frags: Fragments,
    pos: i64,
    idx: usize,
}

impl<R: Read> TarReader<R> {
    /// Reads from `r`. With `strict`, a stream that ends without an end-of-archive block is an
    /// error (Go treats it as a normal end).
    pub fn new(r: R, strict: bool) -> Self {
        TarReader {
            r,
            remaining: 0,
            pad: 0,
            sparse: None,
            logical_left: 0,
            strict,
            done: false,
        }
    }

    /// Gives back the underlying reader.
    pub fn into_inner(self) -> R {
        self.r
    }

    /// Reads up to `buf.len()` bytes; returns how many (0 at EOF).
    fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.r.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }

    /// Reads into `buf` until full or EOF; returns the count.
    fn read_full(&mut self, buf: &mut [u8]) -> Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            let k = self.read_some(&mut buf[n..]).map_err(|e| Error::Io {
                context: "reading the tar stream",
                source: e,
            })?;
            if k == 0 {
                break;
            }
            n += k;
        }
        Ok(n)
    }

    fn skip(&mut self, mut n: u64) -> Result<u64> {
        let mut buf = [0u8; 8192];
        let mut skipped = 0;
        while n > 0 {
            let k = (buf.len() as u64).min(n) as usize;
            let got = self.read_full(&mut buf[..k])?;
            skipped += got as u64;
            n -= got as u64;
            if got < k {
                break;
            }
        }
        Ok(skipped)
    }

    /// Reads the physical data of the current entry.
    fn read_physical(&mut self, buf: &mut [u8]) -> Result<usize> {
        let k = (self.remaining.min(buf.len() as u64)) as usize;
        if k == 0 {
            return Ok(0);
        }
        let got = self.read_full(&mut buf[..k])?;
        if got < k {
            return Err(Error::TarTruncated("entry data ends early".into()));
        }
        self.remaining -= got as u64;
        Ok(got)
    }

    /// Reads the whole (bounded) data of a special entry (PAX records, long names).
    fn read_special(&mut self) -> Result<Vec<u8>> {
        if self.remaining > MAX_SPECIAL_FILE_SIZE {
            return Err(bad("special header record larger than 1 MiB"));
        }
        let mut v = vec![0u8; self.remaining as usize];
        let n = self.read_physical(&mut v)?;
        v.truncate(n);
        self.logical_left = self.remaining;
        Ok(v)
    }

    fn set_entry(&mut self, h: &Header) -> Result<()> {
        let nb = if header_only(h.typeflag) { 0 } else { h.size };
        if nb < 0 {
            return Err(bad("negative size"));
        }
        self.remaining = nb as u64;
        self.pad = (BLOCK as u64 - nb as u64 % BLOCK as u64) % BLOCK as u64;
        self.sparse = None;
        self.logical_left = nb as u64;
        Ok(())
    }

    fn end_of_stream(&mut self, what: &str) -> Result<Option<Header>> {
        self.done = true;
        if self.strict {
            return Err(Error::TarTruncated(format!(
                "{what}: no end-of-archive marker"
            )));
        }
        Ok(None)
    }

    /// Advances to the next entry. `Ok(None)` at the end of the archive.
    pub fn next_header(&mut self) -> Result<Option<Header>> {
        if self.done {
            return Ok(None);
        }
        let mut pax: Option<BTreeMap<Vec<u8>, Vec<u8>>> = None;
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        loop {
            // Skip what is left of the previous entry, then its padding.
            let left = self.remaining;
            if self.skip(left)? < left {
                return Err(Error::TarTruncated("entry data ends early".into()));
            }
            self.remaining = 0;
            let pad = self.pad as usize;
            self.pad = 0;
            let mut padbuf = [0u8; BLOCK];
            if self.read_full(&mut padbuf[..pad])? < pad {
                return self.end_of_stream("stream ends inside entry padding");
            }

            let mut blk = [0u8; BLOCK];
            let n = self.read_full(&mut blk)?;
            if n == 0 {
                return self.end_of_stream("stream ends after an entry");
            }
            if n < BLOCK {
                return Err(Error::TarTruncated("partial header block".into()));
            }
            if blk.iter().all(|&c| c == 0) {
                let n = self.read_full(&mut blk)?;
                self.done = true;
                if n == 0 || (n == BLOCK && blk.iter().all(|&c| c == 0)) {
                    return Ok(None);
                }
                if n < BLOCK {
                    return Err(Error::TarTruncated(
                        "partial block after a zero block".into(),
                    ));
                }
                return Err(bad("zero block followed by a non-zero block"));
            }
            let (mut h, format) = parse_header(&blk)?;
            self.set_entry(&h)?;
            match h.typeflag {
                typeflag::XHEADER | typeflag::XGLOBAL => {
                    let data = self.read_special()?;
                    let records = parse_pax(&data)?;
                    if h.typeflag == typeflag::XGLOBAL {
                        merge_pax(&mut h, &records)?;
                        return Ok(Some(Header {
                            typeflag: h.typeflag,
                            name: h.name,
                            pax: records,
                            ..Header::default()
                        }));
                    }
                    pax = Some(records);
                }
                typeflag::GNU_LONGNAME | typeflag::GNU_LONGLINK => {
                    let data = self.read_special()?;
                    let s = cstr(&data).to_vec();
                    if h.typeflag == typeflag::GNU_LONGNAME {
                        long_name = Some(s);
                    } else {
                        long_link = Some(s);
                    }
                }
                _ => {
                    if let Some(p) = &pax {
                        merge_pax(&mut h, p)?;
                    }
                    if let Some(n) = long_name.filter(|n| !n.is_empty()) {
                        h.name = n;
                    }
                    if let Some(l) = long_link.filter(|l| !l.is_empty()) {
                        h.linkname = l;
                    }
                    if h.typeflag == typeflag::REG_A {
                        h.typeflag = if h.name.ends_with(b"/") {
                            typeflag::DIR
                        } else {
                            typeflag::REG
                        };
                    }
                    self.set_entry(&h)?;
                    self.handle_sparse(&mut h, &blk, format)?;
                    return Ok(Some(h));
                }
            }
        }
    }

    fn handle_sparse(&mut self, h: &mut Header, blk: &[u8; BLOCK], format: Format) -> Result<()> {
        let frags = if h.typeflag == typeflag::GNU_SPARSE {
            Some(self.read_old_gnu_sparse(h, blk, format)?)
        } else {
            self.read_pax_sparse(h)?
        };
        if let Some(frags) = frags {
            if header_only(h.typeflag) || !validate_sparse(&frags, h.size) {
                return Err(bad("invalid sparse map"));
            }
            self.logical_left = h.size as u64;
            self.sparse = Some(SparseState {
                frags,
                pos: 0,
                idx: 0,
            });
        }
        Ok(())
    }

    fn read_old_gnu_sparse(
        &mut self,
        h: &mut Header,
        blk: &[u8; BLOCK],
        format: Format,
    ) -> Result<Fragments> {
        if format != Format::Gnu {
            return Err(bad("old GNU sparse entry in a non-GNU header"));
        }
        let mut p = Parser::default();
        h.size = p.numeric(&blk[483..495]);
        if p.err {
            return Err(bad("sparse real size"));
        }
        let mut frags = Vec::new();
        let mut area: Vec<u8> = blk[386..482].to_vec();
        let mut extended = blk[482] > 0;
        loop {
            for e in area.chunks_exact(24) {
                if e[0] == 0 {
                    break;
                }
                let off = p.numeric(&e[..12]);
                let len = p.numeric(&e[12..24]);
                if p.err {
                    return Err(bad("sparse map entry"));
                }
                if frags.len() >= MAX_SPARSE_ENTRIES {
                    return Err(bad("too many sparse entries"));
                }
                frags.push((off, len));
            }
            if !extended {
                return Ok(frags);
            }
            let mut ext = [0u8; BLOCK];
            if self.read_full(&mut ext)? < BLOCK {
                return Err(Error::TarTruncated("sparse extension header".into()));
            }
            area = ext[..504].to_vec();
            extended = ext[504] > 0;
        }
    }

    fn read_pax_sparse(&mut self, h: &mut Header) -> Result<Option<Fragments>> {
        let get = |k: &str| h.pax.get(k.as_bytes()).cloned().unwrap_or_default();
        let (major, minor) = (get("GNU.sparse.major"), get("GNU.sparse.minor"));
        let is_1x0 = if major == b"0" && (minor == b"0" || minor == b"1") {
            false
        } else if major == b"1" && minor == b"0" {
            true
        } else if !major.is_empty() || !minor.is_empty() {
            return Ok(None);
        } else if !get("GNU.sparse.map").is_empty() {
            false
        } else {
            return Ok(None);
        };
        let name = get("GNU.sparse.name");
        if !name.is_empty() {
            h.name = name;
        }
        let mut size = get("GNU.sparse.size");
        if size.is_empty() {
            size = get("GNU.sparse.realsize");
        }
        if !size.is_empty() {
            h.size = parse_i64(&size).ok_or_else(|| bad("GNU sparse size"))?;
        }
        if is_1x0 {
            return self.read_sparse_map_1x0().map(Some);
        }
        let num =
            parse_i64(&get("GNU.sparse.numblocks")).ok_or_else(|| bad("GNU sparse numblocks"))?;
        let map = get("GNU.sparse.map");
        let parts: Vec<&[u8]> = if map.is_empty() {
            Vec::new()
        } else {
            map.split(|&c| c == b',').collect()
        };
        if num < 0 || parts.len() as u64 != 2 * num as u64 {
            return Err(bad("GNU sparse map size"));
        }
        let mut frags = Vec::with_capacity(parts.len() / 2);
        for pair in parts.chunks_exact(2) {
            let off = parse_i64(pair[0]).ok_or_else(|| bad("GNU sparse map"))?;
            let len = parse_i64(pair[1]).ok_or_else(|| bad("GNU sparse map"))?;
            frags.push((off, len));
        }
        Ok(Some(frags))
    }

    /// The PAX 1.0 sparse map at the start of the entry data: newline-separated decimals,
    /// padded to a 512-byte block.
    fn read_sparse_map_1x0(&mut self) -> Result<Fragments> {
        let mut buf: Vec<u8> = Vec::new();
        let mut newlines = 0usize;
        let mut consumed = 0usize;
        let feed =
            |this: &mut Self, buf: &mut Vec<u8>, newlines: &mut usize, want: usize| -> Result<()> {
                while *newlines < want {
                    let mut blk = [0u8; BLOCK];
                    let got = this.read_physical(&mut blk)?;
                    if got < BLOCK {
                        return Err(Error::TarTruncated("sparse map".into()));
                    }
                    *newlines += blk.iter().filter(|&&c| c == b'\n').count();
                    buf.extend_from_slice(&blk);
                    if buf.len() as u64 > MAX_SPECIAL_FILE_SIZE * 64 {
                        return Err(bad("sparse map too large"));
                    }
                }
                Ok(())
            };
        let token = |buf: &Vec<u8>, consumed: &mut usize, newlines: &mut usize| -> Option<i64> {
            let rest = &buf[*consumed..];
            let i = rest.iter().position(|&c| c == b'\n')?;
            *consumed += i + 1;
            *newlines -= 1;
            parse_i64(&rest[..i])
        };
        feed(self, &mut buf, &mut newlines, 1)?;
        let n = token(&buf, &mut consumed, &mut newlines).ok_or_else(|| bad("sparse map count"))?;
        if n < 0 || n as u64 > MAX_SPARSE_ENTRIES as u64 {
            return Err(bad("sparse map count"));
        }
        let n = n as usize;
        feed(self, &mut buf, &mut newlines, 2 * n)?;
        let mut frags = Vec::with_capacity(n);
        for _ in 0..n {
            let off = token(&buf, &mut consumed, &mut newlines);
            let len = token(&buf, &mut consumed, &mut newlines);
            match (off, len) {
                (Some(o), Some(l)) => frags.push((o, l)),
                _ => return Err(bad("sparse map entry")),
            }
        }
        Ok(frags)
    }

    /// Logical bytes left to read in the current entry.
    pub fn entry_remaining(&self) -> u64 {
        self.logical_left
    }

    fn read_entry(&mut self, buf: &mut [u8]) -> Result<usize> {
        let want = (self.logical_left.min(buf.len() as u64)) as usize;
        if want == 0 {
            return Ok(0);
        }
        let Some(mut sp) = self.sparse.take() else {
            let n = self.read_physical(&mut buf[..want])?;
            self.logical_left -= n as u64;
            return Ok(n);
        };
        let mut done = 0usize;
        while done < want {
            // Skip fragments that end before the position (and empty ones).
            while sp.idx < sp.frags.len() && sp.frags[sp.idx].0 + sp.frags[sp.idx].1 <= sp.pos {
                sp.idx += 1;
            }
            let k = want - done;
            let n = match sp.frags.get(sp.idx) {
                Some(&(off, len)) if sp.pos >= off => {
                    let n = ((off + len - sp.pos) as u64).min(k as u64) as usize;
                    let got = self.read_physical(&mut buf[done..done + n])?;
                    if got < n {
                        self.sparse = Some(sp);
                        return Err(Error::TarTruncated("sparse data ends early".into()));
                    }
                    n
                }
                Some(&(off, _)) => {
                    let n = ((off - sp.pos) as u64).min(k as u64) as usize;
                    buf[done..done + n].fill(0);
                    n
                }
                None => {
                    buf[done..done + k].fill(0);
                    k
                }
            };
            sp.pos += n as i64;
            done += n;
        }
        self.logical_left -= done as u64;
        if self.logical_left == 0 && self.remaining > 0 {
            return Err(bad("sparse file has more data than its map describes"));
        }
        self.sparse = Some(sp);
        Ok(done)
    }
}

impl<R: Read> Read for TarReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // The crate error travels inside the io::Error so that callers can recover it.
        self.read_entry(buf)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

fn merge_pax(h: &mut Header, records: &BTreeMap<Vec<u8>, Vec<u8>>) -> Result<()> {
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

fn parse_header(b: &[u8; BLOCK]) -> Result<(Header, Format)> {
    let format = get_format(b);
    if format == Format::Unknown {
        return Err(bad("bad checksum or unknown format"));
    }
    let mut p = Parser::default();
    let mut h = Header {
        typeflag: b[156],
        name: cstr(&b[0..100]).to_vec(),
        linkname: cstr(&b[157..257]).to_vec(),
        size: p.numeric(&b[124..136]),
        mode: p.numeric(&b[100..108]),
        uid: p.numeric(&b[108..116]),
        gid: p.numeric(&b[116..124]),
        ..Header::default()
    };
    let mtime = p.numeric(&b[136..148]);
    h.mtime = Timestamp::go(mtime, 0);
    if format != Format::V7 {
        h.devmajor = p.numeric(&b[329..337]);
        h.devminor = p.numeric(&b[337..345]);
        let mut prefix: &[u8] = &[];
        match format {
            Format::UstarPax => prefix = cstr(&b[345..500]),
            Format::Star => {
                prefix = cstr(&b[345..476]);
                h.atime = Timestamp::go(p.numeric(&b[476..488]), 0);
                h.ctime = Timestamp::go(p.numeric(&b[488..500]), 0);
            }
            Format::Gnu => {
                let mut p2 = Parser::default();
                if b[345] != 0 {
                    h.atime = Timestamp::go(p2.numeric(&b[345..357]), 0);
                }
                if b[357] != 0 {
                    h.ctime = Timestamp::go(p2.numeric(&b[357..369]), 0);
                }
                if p2.err {
                    h.atime = None;
                    h.ctime = None;
                    let s = cstr(&b[345..500]);
                    if s.is_ascii() {
                        prefix = s;
                    }
                }
            }
            _ => {}
        }
        if !prefix.is_empty() {
            let mut n = prefix.to_vec();
            n.push(b'/');
            n.extend_from_slice(&h.name);
            h.name = n;
        }
    }
    if p.err {
        return Err(bad("invalid number in header"));
    }
    Ok((h, format))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// A header whose checksum field holds `sum` (octal, as tar writes it).
    fn header_with_checksum(
        name: &[u8],
        magic: &[u8],
        sum: impl Fn(&[u8; BLOCK]) -> i64,
    ) -> [u8; BLOCK] {
        let mut b = [0u8; BLOCK];
        b[..name.len()].copy_from_slice(name);
        b[257..257 + magic.len()].copy_from_slice(magic);
        b[148..156].fill(b' ');
        let v = sum(&b);
        b[148..156].copy_from_slice(format!("{:06o}\0 ", v).as_bytes());
        b
    }

    #[test]
    fn checksums_unsigned_or_signed_like_go() {
        // A name with bytes >= 0x80: the unsigned and the signed sums differ.
        let name = "caf\u{e9}-\u{fc}ber".as_bytes();
        let unsigned = |b: &[u8; BLOCK]| b.iter().map(|&c| i64::from(c)).sum();
        let signed = |b: &[u8; BLOCK]| b.iter().map(|&c| i64::from(c as i8)).sum::<i64>();
        let b = header_with_checksum(name, b"ustar\0", unsigned);
        assert_eq!(get_format(&b), Format::UstarPax);
        // The spaces of the checksum field alone make both sums positive.
        let b = header_with_checksum(name, b"ustar\0", signed);
        assert_ne!(unsigned(&b), signed(&b));
        assert_eq!(get_format(&b), Format::UstarPax);
        let b = header_with_checksum(b"plain", b"ustar ", unsigned);
        assert_ne!(get_format(&b), Format::Unknown);
        let mut bad = header_with_checksum(b"plain", b"ustar\0", unsigned);
        bad[0] ^= 1;
        assert_eq!(get_format(&bad), Format::Unknown);
    }

    #[test]
    fn numeric_fields_like_go() {
        let mut p = Parser::default();
        assert_eq!(p.numeric(b"0000644\0"), 0o644);
        assert_eq!(p.numeric(b"  644 \0\0"), 0o644);
        assert_eq!(p.numeric(&[0x80, 0, 0, 0, 0, 0, 0, 1]), 1);
        assert_eq!(p.numeric(&[0xff; 8]), -1);
        assert!(!p.err);
        p.numeric(b"9\0");
        assert!(p.err);
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

    #[test]
    fn empty_stream_ends_cleanly_unless_strict() {
        let mut r = TarReader::new(&b""[..], false);
        assert!(r.next_header().unwrap().is_none());
        let mut r = TarReader::new(&b""[..], true);
        assert!(r.next_header().is_err());
        let zeros = [0u8; 1024];
        let mut r = TarReader::new(&zeros[..], true);
        assert!(r.next_header().unwrap().is_none());
    }
}
