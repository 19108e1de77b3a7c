//! Bringing up the loopback interface (§5.3 step 8). Setting `IFF_UP` on `lo` makes the
//! kernel assign 127.0.0.1/8 and ::1 itself.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::error::{Error, Result};

/// Sets `IFF_UP` on `lo`.
pub fn loopback_up() -> Result<()> {
    // SAFETY: socket(2) returns a new fd or -1.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(Error::last_os("socket"));
    }
    // SAFETY: the fd was just created and is owned by nobody else.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data; all-zero is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *s as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS fills the flags of the named interface in `req`.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } != 0 {
        return Err(Error::last_os("SIOCGIFFLAGS lo"));
    }
    // SAFETY: the flags member is the active one after SIOCGIFFLAGS.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: SIOCSIFFLAGS reads the name and flags from `req`.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } != 0 {
        return Err(Error::last_os("SIOCSIFFLAGS lo"));
    }
    Ok(())
}
