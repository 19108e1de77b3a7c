//! Device-mapper devices from a `dm-mod.create=` argument, set up by init before it mounts
//! a dm-verity root (ext4-uvm.md §5.2: `root=/dev/dm-0 dm-mod.create=<args>`).
//!
//! The kernel's own `dm-mod.create` parser (`drivers/md/dm-init.c`) exists only when
//! device-mapper is built in; Debian's kernel has `dm-mod` as a module, so init, which
//! loads the module from the boot initrd, parses the same syntax and makes the same three
//! `DM_*` ioctls on `/dev/mapper/control` (create, load the table, resume). The ioctl layer
//! is the kernel's `linux/dm-ioctl.h` ABI (version 4), kept to those three calls; the
//! parser is plain and unit-tested.
//!
//! Syntax (`Documentation/admin-guide/device-mapper/dm-init.rst`):
//! `<name>,<uuid>,<minor>,<flags>,<table>[,<table>+][;<name>,…]` with each table
//! `<start_sector> <num_sectors> <target_type> <target_args>`; `flags` is `ro` or `rw`.

use std::os::fd::AsRawFd;
use std::path::Path;

use crate::error::{Error, Result};

/// One target line of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// First sector.
    pub start: u64,
    /// Length in sectors.
    pub len: u64,
    /// Target type (`verity`, `linear`, …).
    pub kind: String,
    /// The target's arguments.
    pub args: String,
}

/// One device of a `dm-mod.create` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Name (under `/dev/mapper`).
    pub name: String,
    /// UUID, may be empty.
    pub uuid: String,
    /// Requested minor number.
    pub minor: Option<u32>,
    /// Read-only.
    pub readonly: bool,
    /// The table.
    pub targets: Vec<Target>,
}

impl Device {
    /// The `/dev/…` paths the table names (the devices to wait for before creating it).
    pub fn dev_paths(&self) -> Vec<String> {
        self.targets
            .iter()
            .flat_map(|t| t.args.split_whitespace())
            .filter(|a| a.starts_with("/dev/"))
            .map(String::from)
            .collect()
    }
}

/// Bounds of `linux/dm-ioctl.h`.
const NAME_LEN: usize = 128;
const UUID_LEN: usize = 129;
const TYPE_NAME: usize = 16;
/// Devices in one argument (the kernel's `DM_MAX_DEVICES`).
const MAX_DEVICES: usize = 256;
/// Targets per device (the kernel's `DM_MAX_TARGETS`).
const MAX_TARGETS: usize = 256;

/// Parses a `dm-mod.create` value.
pub fn parse_create(s: &str) -> Result<Vec<Device>> {
    let bad = |why: String| Error::Usage(format!("dm-mod.create: {why}"));
    let mut out = Vec::new();
    for dev in s.split(';').filter(|d| !d.trim().is_empty()) {
        let f: Vec<&str> = dev.split(',').collect();
        if f.len() < 5 {
            return Err(bad(format!(
                "{dev:?} needs <name>,<uuid>,<minor>,<flags>,<table>"
            )));
        }
        let name = f[0].trim();
        if name.is_empty() || name.len() >= NAME_LEN || name.contains('/') {
            return Err(bad(format!("bad device name {name:?}")));
        }
        let uuid = f[1].trim();
        if uuid.len() >= UUID_LEN {
            return Err(bad(format!("uuid {uuid:?} is too long")));
        }
        let minor = match f[2].trim() {
            "" => None,
            m => Some(
                m.parse()
                    .map_err(|_| bad(format!("bad minor {m:?} of {name}")))?,
            ),
        };
        let readonly = match f[3].trim() {
            "ro" => true,
            "rw" => false,
            o => return Err(bad(format!("flags of {name} must be ro or rw, not {o:?}"))),
        };
        let mut targets = Vec::new();
        for t in &f[4..] {
            let mut w = t.split_whitespace();
            let (Some(start), Some(len), Some(kind)) = (w.next(), w.next(), w.next()) else {
                return Err(bad(format!(
                    "table {t:?} of {name} needs <start> <sectors> <type> <args>"
                )));
            };
            let num = |v: &str| {
                v.parse::<u64>()
                    .map_err(|_| bad(format!("bad sector number {v:?} in {name}")))
            };
            if kind.len() >= TYPE_NAME {
                return Err(bad(format!("target type {kind:?} is too long")));
            }
            targets.push(Target {
                start: num(start)?,
                len: num(len)?,
                kind: kind.to_string(),
                args: w.collect::<Vec<_>>().join(" "),
            });
        }
        if targets.len() > MAX_TARGETS {
            return Err(bad(format!("{name} has more than {MAX_TARGETS} targets")));
        }
        out.push(Device {
            name: name.to_string(),
            uuid: uuid.to_string(),
            minor,
            readonly,
            targets,
        });
    }
    if out.is_empty() || out.len() > MAX_DEVICES {
        return Err(bad(format!(
            "{} devices (1 to {MAX_DEVICES} allowed)",
            out.len()
        )));
    }
    Ok(out)
}

/// `struct dm_ioctl` of `linux/dm-ioctl.h`.
#[repr(C)]
struct DmIoctl {
    version: [u32; 3],
    data_size: u32,
    data_start: u32,
    target_count: u32,
    open_count: i32,
    flags: u32,
    event_nr: u32,
    padding: u32,
    dev: u64,
    name: [u8; NAME_LEN],
    uuid: [u8; UUID_LEN],
    data: [u8; 7],
}

/// `struct dm_target_spec`.
#[repr(C)]
struct DmTargetSpec {
    sector_start: u64,
    length: u64,
    status: i32,
    next: u32,
    target_type: [u8; TYPE_NAME],
}

const HEADER: usize = std::mem::size_of::<DmIoctl>();
const SPEC: usize = std::mem::size_of::<DmTargetSpec>();
const _: () = assert!(HEADER == 312 && SPEC == 40);

const DM_READONLY_FLAG: u32 = 1 << 0;
const DM_PERSISTENT_DEV_FLAG: u32 = 1 << 3;
const DM_DEV_CREATE: u32 = 3;
const DM_DEV_SUSPEND: u32 = 6;
const DM_TABLE_LOAD: u32 = 9;

/// `_IOWR(DM_IOCTL, nr, struct dm_ioctl)`.
const fn ioctl_nr(nr: u32) -> u32 {
    (3 << 30) | ((HEADER as u32) << 16) | (0xfd << 8) | nr
}

/// The header of a request for `dev`.
fn header(dev: &Device, flags: u32, target_count: u32, data_size: usize) -> Vec<u8> {
    let mut h = vec![0u8; HEADER];
    let put = |h: &mut [u8], at: usize, v: u32| h[at..at + 4].copy_from_slice(&v.to_ne_bytes());
    put(&mut h, 0, 4); // version 4.0.0
    put(&mut h, 12, data_size as u32);
    put(&mut h, 16, HEADER as u32);
    put(&mut h, 20, target_count);
    put(&mut h, 28, flags);
    if let Some(m) = dev.minor {
        // huge_encode_dev(MKDEV(0, minor)): the minor's low byte, its high bits at 20.
        let enc = u64::from(m & 0xff) | (u64::from(m & !0xff) << 12);
        h[40..48].copy_from_slice(&enc.to_ne_bytes());
    }
    h[48..48 + dev.name.len()].copy_from_slice(dev.name.as_bytes());
    h[176..176 + dev.uuid.len()].copy_from_slice(dev.uuid.as_bytes());
    h
}

/// The `DM_TABLE_LOAD` request of `dev`: the header, then each target spec followed by
/// its NUL-terminated arguments padded to 8 bytes.
fn table_request(dev: &Device) -> Vec<u8> {
    let mut body = Vec::new();
    for t in &dev.targets {
        let args_len = (t.args.len() + 1).next_multiple_of(8);
        let mut s = vec![0u8; SPEC + args_len];
        s[0..8].copy_from_slice(&t.start.to_ne_bytes());
        s[8..16].copy_from_slice(&t.len.to_ne_bytes());
        s[20..24].copy_from_slice(&((SPEC + args_len) as u32).to_ne_bytes());
        s[24..24 + t.kind.len()].copy_from_slice(t.kind.as_bytes());
        s[SPEC..SPEC + t.args.len()].copy_from_slice(t.args.as_bytes());
        body.extend(s);
    }
    let flags = if dev.readonly { DM_READONLY_FLAG } else { 0 };
    let mut req = header(dev, flags, dev.targets.len() as u32, HEADER + body.len());
    req.extend(body);
    req
}

fn ioctl(ctl: &std::fs::File, nr: u32, req: &mut [u8], what: &str) -> Result<()> {
    // SAFETY: `req` starts with a dm_ioctl whose data_size is at most req.len(); the kernel
    // reads and writes only within data_size.
    let rc = unsafe { libc::ioctl(ctl.as_raw_fd(), ioctl_nr(nr) as _, req.as_mut_ptr()) };
    if rc != 0 {
        return Err(Error::last_os(what));
    }
    Ok(())
}

/// Creates `dev`, loads its table and resumes it (what `dm-init` does), through `control`
/// (`/dev/mapper/control`).
pub fn create(control: &Path, dev: &Device) -> Result<()> {
    let ctl = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(control)
        .map_err(|e| Error::path("open", control, e))?;
    let flags = if dev.minor.is_some() {
        DM_PERSISTENT_DEV_FLAG
    } else {
        0
    };
    let mut req = header(dev, flags, 0, HEADER);
    ioctl(
        &ctl,
        DM_DEV_CREATE,
        &mut req,
        &format!("create dm device {}", dev.name),
    )?;
    let mut req = table_request(dev);
    ioctl(
        &ctl,
        DM_TABLE_LOAD,
        &mut req,
        &format!("load the table of dm device {}", dev.name),
    )?;
    // DM_DEV_SUSPEND without DM_SUSPEND_FLAG resumes, which activates the loaded table.
    let mut req = header(dev, 0, 0, HEADER);
    ioctl(
        &ctl,
        DM_DEV_SUSPEND,
        &mut req,
        &format!("resume dm device {}", dev.name),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERITY: &str =
        "dmverity,,,ro,0 43920 verity 1 /dev/sda /dev/sda 4096 4096 5490 5491 sha256 5b22 0000";

    #[test]
    fn parses_a_verity_device() {
        let d = parse_create(VERITY).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].name, "dmverity");
        assert!(d[0].readonly && d[0].minor.is_none() && d[0].uuid.is_empty());
        assert_eq!(
            d[0].targets,
            [Target {
                start: 0,
                len: 43920,
                kind: "verity".into(),
                args: "1 /dev/sda /dev/sda 4096 4096 5490 5491 sha256 5b22 0000".into()
            }]
        );
        assert_eq!(d[0].dev_paths(), ["/dev/sda", "/dev/sda"]);
    }

    #[test]
    fn parses_several_devices_and_tables() {
        let d =
            parse_create("a,u1,3,rw,0 8 linear /dev/vda 0,8 8 linear /dev/vdb 0;b,,,ro,0 1 zero")
                .unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].minor, Some(3));
        assert!(!d[0].readonly);
        assert_eq!(d[0].targets.len(), 2);
        assert_eq!(d[0].targets[1].start, 8);
        assert_eq!(d[1].targets[0].args, "");
    }

    #[test]
    fn rejects_malformed_arguments() {
        for bad in [
            "",
            "x,,,ro",
            "x,,,maybe,0 8 zero",
            "x,,y,ro,0 8 zero",
            "x,,,ro,0 zero",
            "a/b,,,ro,0 8 zero",
            "x,,,ro,0 8 averyveryverylongtype",
        ] {
            assert!(parse_create(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn table_request_matches_the_ioctl_layout() {
        let d = &parse_create(VERITY).unwrap()[0];
        let r = table_request(d);
        let args = d.targets[0].args.len() + 1;
        assert_eq!(r.len(), HEADER + SPEC + args.next_multiple_of(8));
        let u32_at = |at: usize| u32::from_ne_bytes(r[at..at + 4].try_into().unwrap());
        assert_eq!(u32_at(0), 4);
        assert_eq!(u32_at(12) as usize, r.len());
        assert_eq!(u32_at(16) as usize, HEADER);
        assert_eq!(u32_at(20), 1);
        assert_eq!(u32_at(28), DM_READONLY_FLAG);
        assert_eq!(&r[48..56], b"dmverity");
        assert_eq!(
            u64::from_ne_bytes(r[HEADER + 8..HEADER + 16].try_into().unwrap()),
            43920
        );
        assert_eq!(&r[HEADER + 24..HEADER + 30], b"verity");
        assert_eq!(&r[HEADER + SPEC..HEADER + SPEC + 5], b"1 /de");
        assert_eq!(ioctl_nr(DM_TABLE_LOAD), 0xc138_fd09);
    }
}
