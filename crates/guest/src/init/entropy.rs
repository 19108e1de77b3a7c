//! Seeding the entropy pool from the host (§5.3 step 10): read what the host sends on the
//! entropy port (512 bytes, then it closes) and credit it with `RNDADDENTROPY`.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;

use crate::error::{Error, Result};
use crate::vsock::Dialer;

/// The most entropy accepted from the host.
pub const MAX_BYTES: usize = 4096;

/// `RNDADDENTROPY` = `_IOW('R', 0x03, int[2])`.
const RNDADDENTROPY: libc::c_ulong = 0x4008_5203;

/// Reads up to [`MAX_BYTES`] from host `port`.
pub fn read_from_host(dialer: &dyn Dialer, port: u32) -> Result<Vec<u8>> {
    let conn = dialer
        .dial(port)
        .map_err(|e| Error::io(format!("connect to host port {port}"), e))?;
    let mut data = Vec::new();
    File::from(conn)
        .take(MAX_BYTES as u64)
        .read_to_end(&mut data)
        .map_err(|e| Error::io("read entropy", e))?;
    Ok(data)
}

/// Dials `port`, reads the host's bytes and adds them to `/dev/random`. Returns how many.
pub fn seed(dialer: &dyn Dialer, port: u32) -> Result<usize> {
    let data = read_from_host(dialer, port)?;
    if data.is_empty() {
        return Err(Error::Input("the host sent no entropy".into()));
    }
    let random = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/random")
        .map_err(|e| Error::io("open /dev/random", e))?;
    // struct rand_pool_info { int entropy_count; int buf_size; __u32 buf[]; }
    let mut info = Vec::with_capacity(8 + data.len());
    info.extend_from_slice(&((data.len() * 8) as i32).to_ne_bytes());
    info.extend_from_slice(&(data.len() as i32).to_ne_bytes());
    info.extend_from_slice(&data);
    // SAFETY: RNDADDENTROPY reads a rand_pool_info of 8 + buf_size bytes from `info`.
    if unsafe { libc::ioctl(random.as_raw_fd(), RNDADDENTROPY, info.as_ptr()) } != 0 {
        return Err(Error::last_os("RNDADDENTROPY"));
    }
    Ok(data.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vsock::UnixDir;
    use std::io::Write;

    #[test]
    fn reads_what_the_host_sends_and_bounds_it() {
        let dir = tempfile::tempdir().unwrap();
        let l = std::os::unix::net::UnixListener::bind(dir.path().join("1.sock")).unwrap();
        let t = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            // More than the bound: the rest is ignored (the write may fail once we close).
            let _ = s.write_all(&vec![7u8; MAX_BYTES + 100]);
        });
        let got = read_from_host(&UnixDir(dir.path().into()), 1).unwrap();
        assert_eq!(got.len(), MAX_BYTES);
        assert!(got.iter().all(|&b| b == 7));
        drop(got);
        t.join().unwrap();
    }
}
