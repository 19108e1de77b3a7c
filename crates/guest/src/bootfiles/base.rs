//! The default base root filesystem, assembled from Debian packages of the build machine:
//! busybox-static (shell and the tools the GCS calls: `ip`, `nsenter`, …) and runc with the
//! shared libraries it links (found with `ldd`). Another base can be given as an archive.

use std::path::Path;
use std::process::Command;

use super::tree::{dir, file, symlink, Kind, Node, Tree};
use crate::error::{Error, PathContext, Result};

/// Where runc goes in the guest (on the child's `PATH`).
pub const RUNC_PATH: &str = "usr/sbin/runc";

const DIRS: &[(&str, u32)] = &[
    ("bin", 0o755),
    ("sbin", 0o755),
    ("usr/bin", 0o755),
    ("usr/sbin", 0o755),
    ("etc", 0o755),
    ("proc", 0o555),
    ("sys", 0o555),
    ("dev", 0o755),
    ("run", 0o755),
    ("tmp", 0o1777),
    ("root", 0o700),
    ("var", 0o755),
    ("lib", 0o755),
    ("mnt", 0o755),
];

/// Assembles the base from the busybox and runc binaries at those paths.
pub fn assemble(busybox: &Path, runc: &Path) -> Result<Tree> {
    let mut t = Tree::new();
    for (d, mode) in DIRS {
        t.insert(d, dir(*mode))?;
    }
    // The kernel opens /dev/console for init's stdio before anything mounts /dev.
    t.insert(
        "dev/console",
        Node {
            kind: Kind::Char(5, 1),
            mode: 0o600,
        },
    )?;
    t.insert(
        "bin/busybox",
        file(std::fs::read(busybox).with_path("read", busybox)?, 0o755),
    )?;
    for applet in busybox_applets(busybox)? {
        if applet == "bin/busybox" || applet == "linuxrc" || applet == "sbin/init" {
            continue;
        }
        t.insert(&applet, symlink("/bin/busybox"))?;
    }
    t.insert(
        RUNC_PATH,
        file(std::fs::read(runc).with_path("read", runc)?, 0o755),
    )?;
    for lib in shared_libraries(runc)? {
        let p = Path::new(&lib);
        t.insert(&lib, file(std::fs::read(p).with_path("read", p)?, 0o755))?;
    }
    t.insert(
        "etc/passwd",
        file(
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
                .to_vec(),
            0o644,
        ),
    )?;
    t.insert(
        "etc/group",
        file(b"root:x:0:\nnogroup:x:65534:\n".to_vec(), 0o644),
    )?;
    for f in ["etc/hostname", "etc/hosts", "etc/resolv.conf"] {
        t.insert(f, file(Vec::new(), 0o644))?;
    }
    Ok(t)
}

/// `busybox --list-full`: the applet paths, relative (`bin/sh`, `usr/bin/awk`).
fn busybox_applets(busybox: &Path) -> Result<Vec<String>> {
    let out = Command::new(busybox)
        .arg("--list-full")
        .output()
        .with_path("run", busybox)?;
    if !out.status.success() {
        return Err(Error::Input(format!(
            "{} --list-full failed ({}): install busybox-static",
            busybox.display(),
            out.status
        )));
    }
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().trim_start_matches('/').to_string())
        .filter(|l| !l.is_empty())
        .collect();
    v.sort();
    Ok(v)
}

/// The shared libraries `ldd` lists for `binary` (absolute paths, sorted); none for a
/// static binary.
pub fn shared_libraries(binary: &Path) -> Result<Vec<String>> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .with_path("ldd", binary)?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        if text.contains("not a dynamic executable")
            || String::from_utf8_lossy(&out.stderr).contains("not a dynamic executable")
        {
            return Ok(Vec::new());
        }
        return Err(Error::Input(format!(
            "ldd {} failed: {}",
            binary.display(),
            out.status
        )));
    }
    Ok(parse_ldd(&text))
}

/// The library paths of `ldd` output.
pub fn parse_ldd(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let path = match l.split_once("=>") {
                Some((_, rhs)) => rhs.split_whitespace().next()?,
                None => l.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| path.to_string())
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_is_parsed() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibseccomp.so.2 => /lib/x86_64-linux-gnu/libseccomp.so.2 (0x1)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x2)\n\t/lib64/ld-linux-x86-64.so.2 (0x3)\n";
        assert_eq!(
            parse_ldd(text),
            [
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib/x86_64-linux-gnu/libseccomp.so.2",
                "/lib64/ld-linux-x86-64.so.2"
            ]
        );
    }
}
