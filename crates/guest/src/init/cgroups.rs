//! cgroups (§5.3 step 7): v2 at `/sys/fs/cgroup` when the kernel has controllers for it
//! and device control by BPF works (runc needs it on v2), else one v1 hierarchy per
//! enabled controller on a tmpfs. `hcsshim.cgroup=v1` on the kernel command line forces v1.

use std::os::fd::AsRawFd;
use std::path::Path;

use super::mounts;
use crate::error::{Error, Result};

const ROOT: &str = "/sys/fs/cgroup";
const NOSUID_NODEV_NOEXEC: libc::c_ulong = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;

/// Which hierarchy was mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// The unified hierarchy.
    V2,
    /// Per-controller hierarchies.
    V1,
}

/// Whether the kernel command line forces cgroup v1.
pub fn force_v1(cmdline: &str) -> bool {
    cmdline.split_whitespace().any(|w| w == "hcsshim.cgroup=v1")
}

/// Mounts the cgroup hierarchies.
pub fn mount(force_v1: bool) -> Result<Version> {
    if !force_v1 {
        match try_v2() {
            Ok(()) => return Ok(Version::V2),
            Err(e) => super::warn("cgroup v2 unusable, falling back to v1", &e),
        }
    }
    mount_v1()?;
    Ok(Version::V1)
}

fn try_v2() -> Result<()> {
    mounts::mount("cgroup2", ROOT, "cgroup2", NOSUID_NODEV_NOEXEC, "")?;
    let usable = (|| {
        let controllers = std::fs::read_to_string(Path::new(ROOT).join("cgroup.controllers"))
            .map_err(|e| Error::io("read cgroup.controllers", e))?;
        if controllers.trim().is_empty() {
            return Err(Error::Input("cgroup v2 has no controllers".into()));
        }
        probe_bpf_device()?;
        let control = subtree_control_line(&controllers);
        std::fs::write(Path::new(ROOT).join("cgroup.subtree_control"), control)
            .map_err(|e| Error::io("enable cgroup v2 controllers", e))
    })();
    if usable.is_err() {
        // SAFETY: umount2(2) on a NUL-terminated constant path.
        unsafe { libc::umount2(c"/sys/fs/cgroup".as_ptr(), 0) };
    }
    usable
}

/// `+c1 +c2 …` for every controller listed in `cgroup.controllers`.
pub fn subtree_control_line(controllers: &str) -> String {
    controllers
        .split_whitespace()
        .map(|c| format!("+{c}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `BPF_PROG_QUERY` for `BPF_CGROUP_DEVICE` on the root cgroup: the kernel can filter
/// devices by BPF (what runc uses on v2). `EPERM` still means the support is there.
fn probe_bpf_device() -> Result<()> {
    const BPF_PROG_QUERY: libc::c_long = 16;
    const BPF_CGROUP_DEVICE: u32 = 6;
    let dir = std::fs::File::open(ROOT).map_err(|e| Error::io("open cgroup root", e))?;
    // The `query` member of union bpf_attr: target_fd, attach_type, query_flags,
    // attach_flags, prog_ids (u64), prog_cnt; zero padding up to the union's size.
    let mut attr = [0u32; 32];
    attr[0] = dir.as_raw_fd() as u32;
    attr[1] = BPF_CGROUP_DEVICE;
    // SAFETY: bpf(2) reads (and for QUERY writes counts into) `attr`, a buffer of the given
    // size; prog_ids is null, so no id array is written.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_QUERY,
            attr.as_mut_ptr(),
            std::mem::size_of_val(&attr) as u32,
        )
    };
    if rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM) {
        Ok(())
    } else {
        Err(Error::last_os("BPF_PROG_QUERY(BPF_CGROUP_DEVICE)"))
    }
}

/// The enabled controllers of `/proc/cgroups` (`name hierarchy num_cgroups enabled`).
pub fn enabled_v1_controllers(proc_cgroups: &str) -> Vec<String> {
    proc_cgroups
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 4 && f[3] == "1").then(|| f[0].to_string())
        })
        .collect()
}

fn mount_v1() -> Result<()> {
    mounts::mount("tmpfs", ROOT, "tmpfs", NOSUID_NODEV_NOEXEC, "mode=0755")?;
    let list =
        std::fs::read_to_string("/proc/cgroups").map_err(|e| Error::io("read /proc/cgroups", e))?;
    for c in enabled_v1_controllers(&list) {
        let target = format!("{ROOT}/{c}");
        if let Err(e) = mounts::mount("cgroup", &target, "cgroup", NOSUID_NODEV_NOEXEC, &c) {
            super::warn("cgroup v1", &e);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_is_forced_by_the_command_line_word_only() {
        assert!(force_v1("quiet hcsshim.cgroup=v1 panic=-1"));
        assert!(!force_v1("quiet hcsshim.cgroup=v2 xhcsshim.cgroup=v1"));
    }

    #[test]
    fn controllers_are_listed_for_subtree_control() {
        assert_eq!(
            subtree_control_line("cpuset cpu io memory pids\n"),
            "+cpuset +cpu +io +memory +pids"
        );
    }

    #[test]
    fn only_enabled_v1_controllers_are_mounted() {
        let text = "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpuset\t0\t1\t1\nmemory\t0\t1\t0\npids 0 1 1\n";
        assert_eq!(enabled_v1_controllers(text), ["cpuset", "pids"]);
    }
}
