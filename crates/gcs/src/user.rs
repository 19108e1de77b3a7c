//! The user of an exec: an OCI image `userstr` (`user`, `uid`, `user:group`, `uid:gid`,
//! `uid:group`, `user:gid`) resolved against the container image's `/etc/passwd` and
//! `/etc/group`, with the reference's rules (`internal/guest/spec` `ParseUserStr`):
//!
//! * a name must match exactly one entry, else the exec fails;
//! * a numeric uid is looked up for its primary group; when no single entry has it, the uid
//!   is used as given with gid 0;
//! * a numeric gid is used as given when no single group has it;
//! * ids outside `0..=u32::MAX` are refused.
//!
//! One deliberate difference: Go's parser reads an unparsable uid or gid field as 0, so a
//! malformed line matched by name would run the process as root. Here such a line matches no
//! numeric lookup and fails a lookup by name with a clear error.
//!
//! The files come from the untrusted image: they are read confined to the rootfs
//! ([`crate::rootfs::read_file`]) and bounded to [`MAX_DB_SIZE`] bytes.

use std::path::Path;

use crate::error::{Error, Result};

/// Largest `/etc/passwd` or `/etc/group` read from an image.
pub const MAX_DB_SIZE: u64 = 4 << 20;

/// A resolved user: what goes into the OCI process's `user.uid` and `user.gid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ids {
    /// `user.uid`.
    pub uid: u32,
    /// `user.gid`.
    pub gid: u32,
}

/// One line of `/etc/passwd` or `/etc/group`: the name and one numeric field (the uid for
/// passwd, the gid for group) and, for passwd, the primary gid.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry<'a> {
    name: &'a str,
    id: Option<i64>,
    gid: Option<i64>,
}

/// Parses the lines of a passwd (`name:pass:uid:gid:...`) or group (`name:pass:gid:...`)
/// file as Go's `moby/sys/user` does: lines trimmed, empty ones skipped, missing fields
/// empty. A numeric field that is not an integer is `None`.
fn entries(text: &str, passwd: bool) -> impl Iterator<Item = Entry<'_>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(move |line| {
            let mut f = line.split(':');
            let name = f.next().unwrap_or("");
            let _password = f.next();
            let num = |s: Option<&str>| s.and_then(|s| s.parse::<i64>().ok());
            let id = num(f.next());
            let gid = if passwd { num(f.next()) } else { None };
            Entry { name, id, gid }
        })
}

fn to_u32(v: i64, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::Invalid(format!("{what} ({v}) exceeds uint32 bounds")))
}

/// The one entry `pick` selects, or why there is not exactly one.
fn single<'a>(
    file: &str,
    text: Option<&'a str>,
    passwd: bool,
    pick: impl Fn(&Entry<'a>) -> bool,
) -> std::result::Result<Entry<'a>, String> {
    let Some(text) = text else {
        return Err(format!("{file} does not exist in the image"));
    };
    let mut found = entries(text, passwd).filter(|e| pick(e));
    match (found.next(), found.next()) {
        (Some(e), None) => Ok(e),
        (None, _) => Err(format!(
            "expected exactly 1 entry of {file} to match, found 0"
        )),
        (Some(_), Some(_)) => Err(format!(
            "expected exactly 1 entry of {file} to match, found {}",
            2 + found.count()
        )),
    }
}

/// Go's `strconv.Atoi` on a 64-bit machine: an optional sign and decimal digits in range.
fn atoi(s: &str) -> Option<i64> {
    s.parse::<i64>().ok()
}

/// Resolves `userstr` with the image's `/etc/passwd` and `/etc/group` contents (`None`: the
/// file is not in the image).
pub fn resolve(userstr: &str, passwd: Option<&str>, group: Option<&str>) -> Result<Ids> {
    let parts: Vec<&str> = userstr.split(':').collect();
    if parts.len() > 2 {
        return Err(Error::Invalid(format!("invalid userstr: {userstr:?}")));
    }
    let user_field = |e: &Entry<'_>, what: &str, v: Option<i64>| -> Result<u32> {
        let v = v.ok_or_else(|| {
            Error::Invalid(format!(
                "/etc/passwd entry {:?} has no numeric {what}",
                e.name
            ))
        })?;
        to_u32(v, what)
    };
    let mut ids = match atoi(parts[0]) {
        None => {
            let name = parts[0];
            let e = single("/etc/passwd", passwd, true, |e| e.name == name).map_err(|why| {
                Error::Invalid(format!("failed to find user by username {name:?}: {why}"))
            })?;
            Ids {
                uid: user_field(&e, "UID", e.id)?,
                gid: user_field(&e, "GID", e.gid)?,
            }
        }
        Some(uid) => match single("/etc/passwd", passwd, true, |e| e.id == Some(uid)) {
            Ok(e) => Ids {
                uid: to_u32(uid, "UID")?,
                gid: user_field(&e, "GID", e.gid)?,
            },
            // No single entry: the uid as given, gid 0 unless a group is named.
            Err(_) => Ids {
                uid: to_u32(uid, "UID")?,
                gid: 0,
            },
        },
    };
    if let Some(group_part) = parts.get(1) {
        ids.gid = match atoi(group_part) {
            None => {
                let e = single("/etc/group", group, false, |e| e.name == *group_part).map_err(
                    |why| {
                        Error::Invalid(format!(
                            "failed to find group by groupname {group_part:?}: {why}"
                        ))
                    },
                )?;
                let gid = e.id.ok_or_else(|| {
                    Error::Invalid(format!("/etc/group entry {:?} has no numeric GID", e.name))
                })?;
                to_u32(gid, "GID")?
            }
            Some(gid) => to_u32(gid, "GID")?,
        };
    }
    Ok(ids)
}

/// Resolves `userstr` against the image at `rootfs` (files read confined to it).
pub fn resolve_in_rootfs(rootfs: &Path, userstr: &str) -> Result<Ids> {
    let read = |p: &str| -> Result<Option<String>> {
        crate::rootfs::read_file(rootfs, p, MAX_DB_SIZE)?
            .map(|b| {
                String::from_utf8(b)
                    .map_err(|_| Error::Invalid(format!("{p} in the image is not UTF-8")))
            })
            .transpose()
    };
    let passwd = read("/etc/passwd")?;
    let group = if userstr.contains(':') {
        read("/etc/group")?
    } else {
        None
    };
    resolve(userstr, passwd.as_deref(), group.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        daemon:x:1:1::/:/bin/false\n  \n\
        app:x:1000:1001:App:/home/app:/bin/sh\n\
        twin:x:7:7::/:\ntwin:x:8:8::/:\n\
        broken:x:abc:5::/:\n\
        huge:x:4294967296:1::/:\n";
    const GROUP: &str = "root:x:0:\nstaff:x:50:app\nusers:x:100:\nusers:x:101:\n";

    fn ok(s: &str) -> (u32, u32) {
        let i = resolve(s, Some(PASSWD), Some(GROUP)).unwrap();
        (i.uid, i.gid)
    }

    fn err(s: &str) -> String {
        resolve(s, Some(PASSWD), Some(GROUP))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn names_and_ids() {
        assert_eq!(ok("app"), (1000, 1001));
        assert_eq!(ok("root"), (0, 0));
        // A known uid takes its primary group; an unknown one gets gid 0.
        assert_eq!(ok("1000"), (1000, 1001));
        assert_eq!(ok("4242"), (4242, 0));
        assert_eq!(ok("app:staff"), (1000, 50));
        assert_eq!(ok("app:77"), (1000, 77));
        assert_eq!(ok("4242:staff"), (4242, 50));
        assert_eq!(ok("+5:-0"), (5, 0));
    }

    #[test]
    fn failures_are_clear() {
        assert!(err("nobody").contains("failed to find user by username \"nobody\""));
        assert!(err("twin").contains("found 2"));
        assert!(err("app:users").contains("found 2"));
        assert!(err("app:nogroup").contains("failed to find group"));
        assert!(err("a:b:c").contains("invalid userstr"));
        assert!(
            err("broken").contains("no numeric UID"),
            "{}",
            err("broken")
        );
        assert!(err("huge").contains("exceeds uint32 bounds"));
        assert!(err("-1").contains("exceeds uint32 bounds"));
        assert!(err("0:4294967296").contains("exceeds uint32 bounds"));
        let e = resolve("app", None, None).unwrap_err().to_string();
        assert!(e.contains("does not exist in the image"), "{e}");
        // A uid needs no file.
        assert_eq!(
            resolve("12:34", None, None).unwrap(),
            Ids { uid: 12, gid: 34 }
        );
    }

    #[test]
    fn reads_the_image_confined() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rootfs");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/passwd"), PASSWD).unwrap();
        std::fs::write(root.join("etc/group"), GROUP).unwrap();
        assert_eq!(
            resolve_in_rootfs(&root, "app:staff").unwrap(),
            Ids { uid: 1000, gid: 50 }
        );
        // /etc/passwd pointing out of the image is resolved inside it: not found.
        std::fs::remove_file(root.join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink("/etc/shadow", root.join("etc/passwd")).unwrap();
        let e = resolve_in_rootfs(&root, "root").unwrap_err().to_string();
        assert!(e.contains("does not exist in the image"), "{e}");
    }
}
