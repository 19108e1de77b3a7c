//! The QEMU side of the VM sandbox: the command line and the QMP control connection.
//!
//! * **Machine**: `microvm` by default (virtio-mmio devices, no PCI, no firmware; boots the
//!   uncompressed kernel through its PVH entry), `q35` as the PC alternative. The device
//!   names differ: `vhost-user-vsock-device`/`virtio-scsi-device` on microvm,
//!   `vhost-user-vsock-pci`/`virtio-scsi-pci` on q35.
//! * **Memory** is a shared memfd backend: vhost-user backends map guest memory, which a
//!   private anonymous mapping would not allow.
//! * **Disks** hang off one virtio-scsi controller (`scsi0`, the GCS's controller 0) at
//!   target 0, LUN n, so the guest finds them at `<host>:0:0:<n>` as it finds Hyper-V SCSI
//!   disks. They are hot-plugged over QMP (`blockdev-add` + `device_add scsi-hd`), which
//!   the SCSI bus supports on every machine type.
//! * **Timers**: microvm's PIT and PIC are switched on explicitly; without them a Debian
//!   kernel under TCG cannot calibrate its TSC and hangs before init.
//! * **Console** goes to `console.log`; `-no-reboot` makes a guest reboot or panic
//!   (`panic=-1`, PID 1 exiting) end QEMU.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::error::{Error, Result};

/// Hardware acceleration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// KVM when `/dev/kvm` can be opened and the guest boots on it, else TCG.
    Auto,
    /// KVM only.
    Kvm,
    /// TCG (emulation) only.
    Tcg,
}

impl std::str::FromStr for Accel {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(Accel::Auto),
            "kvm" => Ok(Accel::Kvm),
            "tcg" => Ok(Accel::Tcg),
            o => Err(Error::InvalidArgument(format!(
                "unknown accelerator {o:?}: use auto, kvm or tcg"
            ))),
        }
    }
}

/// The QEMU machine type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Machine {
    /// `microvm`: virtio-mmio, fastest boot.
    Microvm,
    /// `q35`: a PC with PCI.
    Q35,
}

impl std::str::FromStr for Machine {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "microvm" => Ok(Machine::Microvm),
            "q35" => Ok(Machine::Q35),
            o => Err(Error::InvalidArgument(format!(
                "unknown machine {o:?}: use microvm or q35"
            ))),
        }
    }
}

/// Whether `/dev/kvm` can be opened for reading and writing.
pub fn kvm_available() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
}

/// What one QEMU run needs.
#[derive(Debug, Clone)]
pub struct QemuArgs {
    /// The machine type.
    pub machine: Machine,
    /// `true` for KVM, `false` for TCG.
    pub kvm: bool,
    /// Guest memory in MiB.
    pub memory_mib: u64,
    /// vCPUs.
    pub cpus: u32,
    /// The kernel (uncompressed `vmlinux` or a bzImage).
    pub kernel: PathBuf,
    /// The initrd.
    pub initrd: PathBuf,
    /// The read-only root disk of the VHD boot modes, at LUN 0 of `scsi0`.
    pub root_disk: Option<PathBuf>,
    /// The kernel command line.
    pub append: String,
    /// The vhost-user socket of the vsock backend.
    pub vhost_socket: PathBuf,
    /// The QMP socket QEMU listens on.
    pub qmp_socket: PathBuf,
    /// Where the serial console goes.
    pub console_log: PathBuf,
    /// The directory exported to the guest over virtio-9p (see [`super::shares`]).
    pub shares: PathBuf,
    /// A virtio-net NIC on the tap device that is QEMU's fd 3, with this MAC address (the
    /// pod network, see [`super::net`]).
    pub nic_mac: Option<String>,
}

/// The vsock device name for a machine.
fn devices(m: Machine) -> [&'static str; 4] {
    match m {
        Machine::Microvm => [
            "vhost-user-vsock-device",
            "virtio-scsi-device",
            "virtio-9p-device",
            "virtio-net-device",
        ],
        Machine::Q35 => [
            "vhost-user-vsock-pci",
            "virtio-scsi-pci",
            "virtio-9p-pci",
            "virtio-net-pci",
        ],
    }
}

impl QemuArgs {
    /// The argument list (without the program).
    pub fn to_args(&self) -> Vec<OsString> {
        let [vsock_dev, scsi_dev, p9_dev, net_dev] = devices(self.machine);
        let machine = match self.machine {
            Machine::Microvm => {
                "microvm,x-option-roms=off,pit=on,pic=on,isa-serial=on,rtc=on,memory-backend=mem"
            }
            Machine::Q35 => "q35,memory-backend=mem",
        };
        let mut a: Vec<OsString> = Vec::new();
        let mut push = |s: &str| a.push(s.into());
        for s in ["-nodefaults", "-no-user-config", "-nographic", "-no-reboot"] {
            push(s);
        }
        push("-machine");
        push(machine);
        push("-accel");
        push(if self.kvm { "kvm" } else { "tcg" });
        push("-cpu");
        push(if self.kvm { "host" } else { "max" });
        push("-m");
        push(&format!("{}M", self.memory_mib));
        push("-smp");
        push(&self.cpus.to_string());
        push("-object");
        push(&format!(
            "memory-backend-memfd,id=mem,size={}M,share=on",
            self.memory_mib
        ));
        push("-chardev");
        push(&format!(
            "socket,id=vsock0,path={}",
            self.vhost_socket.display()
        ));
        push("-device");
        // The CID is the backend's (`--guest-cid`); the vhost-user device has no property.
        push(&format!("{vsock_dev},chardev=vsock0"));
        push("-device");
        push(&format!("{scsi_dev},id=scsi0"));
        if let Some(disk) = &self.root_disk {
            // JSON syntax: the path needs no escaping of commas.
            push("-blockdev");
            push(
                &json!({
                    "node-name": "root",
                    "driver": "raw",
                    "read-only": true,
                    "file": { "driver": "file", "filename": disk.display().to_string(), "read-only": true },
                })
                .to_string(),
            );
            push("-device");
            push("scsi-hd,id=root,drive=root,bus=scsi0.0,channel=0,scsi-id=0,lun=0");
        }
        // The shares: QEMU's 9p server, the files' owners and modes passed through as they
        // are on the host; `multidevs=remap` keeps inode numbers unique across the host
        // file systems bind-mounted into the directory. QEMU's option syntax doubles commas.
        push("-fsdev");
        push(&format!(
            "local,id=shares,path={},security_model=passthrough,multidevs=remap",
            self.shares.display().to_string().replace(',', ",,")
        ));
        push("-device");
        push(&format!(
            "{p9_dev},fsdev=shares,mount_tag={}",
            super::shares::TAG
        ));
        if let Some(mac) = &self.nic_mac {
            push("-netdev");
            push("tap,id=net0,fd=3,vhost=off");
            push("-device");
            push(&format!("{net_dev},netdev=net0,mac={mac}"));
        }
        push("-serial");
        push(&format!("file:{}", self.console_log.display()));
        push("-qmp");
        push(&format!(
            "unix:{},server=on,wait=off",
            self.qmp_socket.display()
        ));
        a.push("-kernel".into());
        a.push(self.kernel.clone().into());
        a.push("-initrd".into());
        a.push(self.initrd.clone().into());
        a.push("-append".into());
        a.push(self.append.clone().into());
        a
    }
}

/// The kernel command line (ext4-uvm.md §5.2, for a QEMU guest): the console on the serial
/// port, `panic=-1` so a panic ends the VM, no PCI scan on microvm, the boot mode's root
/// arguments (`root`, see [`super::boot`]), then init's arguments: entropy from port 1,
/// the GCS's log relayed (and re-dialled) to port 109.
pub fn kernel_command_line(
    machine: Machine,
    cpus: u32,
    root: &str,
    gcs_log_level: &str,
    extra: &str,
    gcs_args: &[String],
) -> String {
    let mut k = format!("console=ttyS0 quiet panic=-1 nr_cpus={cpus} brd.rd_nr=0 pmtmr=0");
    if machine == Machine::Microvm {
        k.push_str(" pci=off");
    }
    if !root.is_empty() {
        k.push(' ');
        k.push_str(root);
    }
    if !extra.is_empty() {
        k.push(' ');
        k.push_str(extra);
    }
    k.push_str(&format!(
        " -- -e 1 /bin/vsockexec -r -e 109 /bin/gcs -v4 -log-format json -loglevel {gcs_log_level} -disable-time-sync"
    ));
    for a in gcs_args {
        k.push(' ');
        k.push_str(a);
    }
    k
}

/// A QMP connection (one command at a time).
pub struct Qmp {
    reader: BufReader<tokio::net::unix::OwnedReadHalf>,
    writer: tokio::net::unix::OwnedWriteHalf,
    /// Events read while waiting for command replies, kept for [`Qmp::wait_event`].
    events: Vec<Value>,
}

impl std::fmt::Debug for Qmp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Qmp").finish_non_exhaustive()
    }
}

/// Bound of one QMP exchange.
const QMP_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest QMP line accepted.
const QMP_MAX_LINE: usize = 1 << 20;

impl Qmp {
    /// Connects to `path` (retrying while QEMU creates it, up to `limit`) and leaves the
    /// capabilities-negotiation mode.
    pub async fn connect(path: &Path, limit: Duration) -> Result<Self> {
        let deadline = tokio::time::Instant::now() + limit;
        let stream = loop {
            match UnixStream::connect(path).await {
                Ok(s) => break s,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::trace!(error = %e, "QMP not ready");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => return Err(Error::io(format!("connect to QMP {}", path.display()), e)),
            }
        };
        let (r, w) = stream.into_split();
        let mut q = Qmp {
            reader: BufReader::new(r),
            writer: w,
            events: Vec::new(),
        };
        let greeting = q.read_message().await?;
        if greeting.get("QMP").is_none() {
            return Err(Error::Protocol(format!(
                "unexpected QMP greeting {greeting}"
            )));
        }
        q.execute("qmp_capabilities", json!({})).await?;
        Ok(q)
    }

    async fn read_message(&mut self) -> Result<Value> {
        let mut line = String::new();
        let n = tokio::time::timeout(
            QMP_TIMEOUT,
            (&mut self.reader)
                .take(QMP_MAX_LINE as u64)
                .read_line(&mut line),
        )
        .await
        .map_err(|_| Error::Timeout {
            op: "a QMP reply".into(),
            after: QMP_TIMEOUT,
        })?
        .map_err(|e| Error::io("read QMP", e))?;
        if n == 0 {
            return Err(Error::Sandbox("QEMU closed its QMP connection".into()));
        }
        serde_json::from_str(&line)
            .map_err(|e| Error::Protocol(format!("bad QMP message {line:?}: {e}")))
    }

    /// Runs `command` with `arguments`; returns its `return` value.
    pub async fn execute(&mut self, command: &str, arguments: Value) -> Result<Value> {
        let mut msg = json!({ "execute": command });
        if arguments.as_object().is_some_and(|o| !o.is_empty()) {
            msg["arguments"] = arguments;
        }
        let mut text = msg.to_string();
        text.push('\n');
        self.writer
            .write_all(text.as_bytes())
            .await
            .map_err(|e| Error::io(format!("send QMP {command}"), e))?;
        loop {
            let m = self.read_message().await?;
            if let Some(r) = m.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = m.get("error") {
                return Err(Error::Sandbox(format!(
                    "QMP {command} failed: {}",
                    e.get("desc")
                        .and_then(Value::as_str)
                        .unwrap_or("unknown error")
                )));
            }
            if m.get("event").is_some() {
                self.events.push(m);
            }
        }
    }

    /// Waits for event `name` whose `data` matches `pred`, up to `limit`.
    pub async fn wait_event(
        &mut self,
        name: &str,
        pred: impl Fn(&Value) -> bool,
        limit: Duration,
    ) -> Result<()> {
        let matches = |m: &Value| m["event"] == name && pred(&m["data"]);
        if let Some(i) = self.events.iter().position(matches) {
            self.events.remove(i);
            return Ok(());
        }
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let m = tokio::time::timeout_at(deadline, self.read_message())
                .await
                .map_err(|_| Error::Timeout {
                    op: format!("QMP event {name}"),
                    after: limit,
                })??;
            if matches(&m) {
                return Ok(());
            }
            if m.get("event").is_some() {
                self.events.push(m);
            }
        }
    }

    /// Attaches the raw image `path` as SCSI disk `id` at LUN `lun` of controller `scsi0`.
    pub async fn attach_disk(
        &mut self,
        id: &str,
        path: &Path,
        lun: u8,
        read_only: bool,
    ) -> Result<()> {
        self.execute(
            "blockdev-add",
            json!({
                "node-name": id,
                "driver": "raw",
                "read-only": read_only,
                "file": { "driver": "file", "filename": path.display().to_string(), "read-only": read_only },
            }),
        )
        .await?;
        let r = self
            .execute(
                "device_add",
                json!({ "driver": "scsi-hd", "id": id, "drive": id, "bus": "scsi0.0", "channel": 0, "scsi-id": 0, "lun": lun }),
            )
            .await;
        if let Err(e) = r {
            if let Err(e2) = self
                .execute("blockdev-del", json!({ "node-name": id }))
                .await
            {
                tracing::warn!(error = %e2, id, "blockdev-del after a failed device_add");
            }
            return Err(e);
        }
        Ok(())
    }

    /// Detaches SCSI disk `id` (device, then its block node).
    pub async fn detach_disk(&mut self, id: &str) -> Result<()> {
        self.execute("device_del", json!({ "id": id })).await?;
        self.wait_event(
            "DEVICE_DELETED",
            |d| d["device"] == id,
            Duration::from_secs(10),
        )
        .await?;
        self.execute("blockdev-del", json!({ "node-name": id }))
            .await?;
        Ok(())
    }

    /// Asks the guest to power off (ACPI).
    pub async fn powerdown(&mut self) -> Result<()> {
        self.execute("system_powerdown", json!({}))
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(machine: Machine, kvm: bool) -> QemuArgs {
        QemuArgs {
            machine,
            kvm,
            memory_mib: 512,
            cpus: 2,
            kernel: "/b/vmlinux".into(),
            initrd: "/b/initrd.img".into(),
            root_disk: None,
            append: "x".into(),
            vhost_socket: "/s/vhost.sock".into(),
            qmp_socket: "/s/qmp.sock".into(),
            console_log: "/s/console.log".into(),
            shares: "/s/a,b/shares".into(),
            nic_mac: None,
        }
    }

    fn strings(q: &QemuArgs) -> Vec<String> {
        q.to_args()
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect()
    }

    fn args(machine: Machine, kvm: bool) -> Vec<String> {
        strings(&base(machine, kvm))
    }

    fn after<'a>(a: &'a [String], flag: &str) -> Vec<&'a str> {
        a.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].as_str())
            .collect()
    }

    #[test]
    fn microvm_uses_mmio_devices_and_shared_memory() {
        let a = args(Machine::Microvm, false);
        assert!(after(&a, "-machine")[0].starts_with("microvm,"));
        assert!(after(&a, "-machine")[0].ends_with("memory-backend=mem"));
        assert_eq!(
            after(&a, "-object"),
            ["memory-backend-memfd,id=mem,size=512M,share=on"]
        );
        assert_eq!(
            after(&a, "-device"),
            [
                "vhost-user-vsock-device,chardev=vsock0",
                "virtio-scsi-device,id=scsi0",
                "virtio-9p-device,fsdev=shares,mount_tag=hcsshim-shares"
            ]
        );
        assert_eq!(
            after(&a, "-fsdev"),
            ["local,id=shares,path=/s/a,,b/shares,security_model=passthrough,multidevs=remap"]
        );
        assert_eq!(after(&a, "-accel"), ["tcg"]);
        assert!(a.contains(&"-no-reboot".to_string()));
    }

    #[test]
    fn q35_uses_pci_devices_and_kvm_uses_the_host_cpu() {
        let a = args(Machine::Q35, true);
        assert_eq!(
            after(&a, "-device"),
            [
                "vhost-user-vsock-pci,chardev=vsock0",
                "virtio-scsi-pci,id=scsi0",
                "virtio-9p-pci,fsdev=shares,mount_tag=hcsshim-shares"
            ]
        );
        assert_eq!(
            (after(&a, "-accel")[0], after(&a, "-cpu")[0]),
            ("kvm", "host")
        );
    }

    #[test]
    fn a_pod_network_is_a_virtio_net_nic_on_fd_3() {
        let mut q = QemuArgs {
            nic_mac: Some("52:54:00:12:34:56".into()),
            ..base(Machine::Microvm, false)
        };
        let a = strings(&q);
        assert_eq!(after(&a, "-netdev"), ["tap,id=net0,fd=3,vhost=off"]);
        assert_eq!(
            after(&a, "-device").last().copied(),
            Some("virtio-net-device,netdev=net0,mac=52:54:00:12:34:56")
        );
        q.nic_mac = None;
        assert!(after(&strings(&q), "-netdev").is_empty());
    }

    #[test]
    fn a_root_disk_is_a_read_only_scsi_disk_at_lun_0() {
        let mut q = QemuArgs {
            cpus: 1,
            initrd: "/b/boot-initrd.img".into(),
            root_disk: Some("/b,c/rootfs.vhd".into()),
            ..base(Machine::Q35, false)
        };
        let a = strings(&q);
        let bd: Value = serde_json::from_str(after(&a, "-blockdev")[0]).unwrap();
        assert_eq!(bd["read-only"], true);
        assert_eq!(bd["file"]["filename"], "/b,c/rootfs.vhd");
        assert_eq!(bd["file"]["read-only"], true);
        assert_eq!(
            after(&a, "-device")[2],
            "scsi-hd,id=root,drive=root,bus=scsi0.0,channel=0,scsi-id=0,lun=0"
        );
        q.root_disk = None;
        assert!(after(&strings(&q), "-blockdev").is_empty());
    }

    #[test]
    fn root_arguments_come_before_init_arguments() {
        let k = kernel_command_line(
            Machine::Q35,
            1,
            "root=/dev/sda ro rootwait init=/init",
            "info",
            "",
            &[],
        );
        let (kernel, init) = k.split_once(" -- ").unwrap();
        assert!(
            kernel.ends_with(" root=/dev/sda ro rootwait init=/init"),
            "{k}"
        );
        assert!(init.starts_with("-e 1 /bin/vsockexec"));
        let k = kernel_command_line(Machine::Q35, 1, "", "info", "", &[]);
        assert!(!k.contains("root=") && !k.contains("init=/init"));
    }

    #[test]
    fn command_line_ends_with_init_arguments() {
        let k = kernel_command_line(Machine::Microvm, 2, "", "info", "", &[]);
        assert!(k.contains("panic=-1") && k.contains("pci=off") && k.contains("nr_cpus=2"));
        assert!(k.ends_with("-- -e 1 /bin/vsockexec -r -e 109 /bin/gcs -v4 -log-format json -loglevel info -disable-time-sync"));
        assert!(!kernel_command_line(Machine::Q35, 1, "", "debug", "", &[]).contains("pci=off"));
        let args = ["-gcs-mem-limit-bytes=1".to_string()];
        let k = kernel_command_line(Machine::Q35, 1, "", "debug", "", &args);
        assert!(k.ends_with("-disable-time-sync -gcs-mem-limit-bytes=1"));
        let k = kernel_command_line(
            Machine::Q35,
            1,
            "",
            "debug",
            "",
            &["-gcs-mem-limit-bytes=1".into()],
        );
        assert!(k.ends_with("-disable-time-sync -gcs-mem-limit-bytes=1"));
    }
}
