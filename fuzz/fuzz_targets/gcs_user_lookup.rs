//! The user of an exec resolved from the container image: an OCI `userstr` against the
//! image's `/etc/passwd` and `/etc/group` (both untrusted). Input: `userstr NUL passwd NUL
//! group`; a missing part is a file the image does not have. Must not panic, and numeric ids
//! are taken as given.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.splitn(3, '\0');
    let userstr = parts.next().unwrap_or("");
    let passwd = parts.next();
    let group = parts.next();
    let Ok(ids) = gcs::user::resolve(userstr, passwd, group) else {
        return;
    };
    let fields: Vec<&str> = userstr.split(':').collect();
    let plain = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if plain(fields[0]) {
        assert_eq!(Some(ids.uid), fields[0].parse().ok(), "uid of {userstr:?}");
    }
    if let Some(g) = fields.get(1).filter(|g| plain(g)) {
        assert_eq!(Some(ids.gid), g.parse().ok(), "gid of {userstr:?}");
    }
});
