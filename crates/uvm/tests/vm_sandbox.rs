//! The VM sandbox end to end: QEMU boots the project's boot files (TCG on machines without a
//! usable KVM), the GCS dials the bridge over virtio-vsock through vhost-device-vsock, and
//! containers run inside the VM. Needs root, qemu-system-x86, vhost-device-vsock and the
//! boot files (`scripts/build-bootfiles.sh`, found in `$HCSSHIM_UVM_BOOTFILES` or
//! `<workspace>/out/uvm`). Four boots in all: one full lifecycle (initrd), one crash, one
//! container on the dm-verity VHD root, and one refused for a wrong root hash.

#![cfg(target_os = "linux")]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use bridge::messages::{NotificationType, ProcessParameters};
use bridge::RawJson;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uvm::sandbox::vm::{BootMode, VmSandbox, VmSandboxConfig};

const T: Duration = Duration::from_secs(120);

fn boot_files() -> PathBuf {
    let dir = std::env::var_os("HCSSHIM_UVM_BOOTFILES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../out/uvm"));
    assert!(
        dir.join("vmlinux").is_file() && dir.join("initrd.img").is_file(),
        "no boot files in {}: run scripts/build-bootfiles.sh first",
        dir.display()
    );
    dir
}

async fn start(tag: &str, gcs_args: &[&str]) -> VmSandbox {
    start_mode(tag, gcs_args, BootMode::Initrd).await
}

async fn start_mode(tag: &str, gcs_args: &[&str], mode: BootMode) -> VmSandbox {
    start_with(tag, gcs_args, mode, None).await
}

async fn start_with(
    tag: &str,
    gcs_args: &[&str],
    mode: BootMode,
    netns: Option<PathBuf>,
) -> VmSandbox {
    assert!(is_root(), "the VM sandbox tests run as root (as CI does)");
    let mut cfg = VmSandboxConfig::new(state_dir(tag));
    cfg.network_namespace = netns;
    cfg.boot_files = boot_files();
    cfg.boot_mode = mode;
    cfg.log_level = "debug".into();
    cfg.memory_mib = 512;
    cfg.scratch_size = 256 << 20;
    cfg.gcs_args = gcs_args.iter().map(|s| s.to_string()).collect();
    VmSandbox::start(cfg).await.expect("start the VM sandbox")
}

fn alive(pid: u32) -> bool {
    // A zombie still answers kill(0): read the state from /proc instead.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

/// A pod network as CNI leaves it: namespace `pod` with `eth0` 198.19.77.2/24 and a
/// default route via .1, the other end of the veth in namespace `outside` (198.19.77.1,
/// serving `hello` over HTTP on port 8080 with busybox httpd). Removed on drop.
struct PodNet {
    pod: String,
    outside: String,
    httpd: std::process::Child,
    _www: tempfile::TempDir,
}

impl PodNet {
    fn new() -> Self {
        let n = std::process::id();
        let (pod, outside) = (format!("uvmpod{n}"), format!("uvmout{n}"));
        let www = tempfile::tempdir().unwrap();
        std::fs::write(www.path().join("hello"), "hello from outside\n").unwrap();
        let sh = |cmd: String| {
            let st = std::process::Command::new("sh")
                .args(["-c", &cmd])
                .status()
                .unwrap();
            assert!(st.success(), "{cmd}");
        };
        sh(format!("ip netns add {pod} && ip netns add {outside}"));
        let mut net = PodNet {
            httpd: std::process::Command::new("true").spawn().unwrap(),
            pod,
            outside,
            _www: www,
        };
        let (pod, outside) = (&net.pod, &net.outside);
        sh(format!(
            "ip -n {pod} link add eth0 type veth peer name peer0 netns {outside} && \
             ip -n {pod} link set lo up && ip -n {pod} link set eth0 up && \
             ip -n {pod} addr add 198.19.77.2/24 dev eth0 && \
             ip -n {pod} route add default via 198.19.77.1 && \
             ip -n {outside} link set lo up && ip -n {outside} link set peer0 up && \
             ip -n {outside} addr add 198.19.77.1/24 dev peer0"
        ));
        net.httpd = std::process::Command::new("ip")
            .args([
                "netns", "exec", outside, "busybox", "httpd", "-f", "-p", "8080", "-h",
            ])
            .arg(net._www.path())
            .spawn()
            .unwrap();
        net
    }

    fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.pod)
    }

    /// `tc qdisc show dev eth0` in the pod namespace.
    fn qdiscs(&self) -> String {
        let out = std::process::Command::new("ip")
            .args([
                "netns", "exec", &self.pod, "tc", "qdisc", "show", "dev", "eth0",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for PodNet {
    fn drop(&mut self) {
        let _ = self.httpd.kill();
        let _ = self.httpd.wait();
        for ns in [&self.pod, &self.outside] {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", ns])
                .status();
        }
    }
}

async fn read_all(s: Option<uvm::transport::BoxStream>) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(mut s) = s {
        s.read_to_end(&mut out).await.expect("read stdio");
    }
    out
}

#[tokio::test]
async fn containers_run_in_a_qemu_utility_vm() {
    // The GCS uses more than 1 MiB: its /gcs threshold warning must come. The VM carries a
    // pod network (a CNI-like namespace) as its NIC.
    let podnet = PodNet::new();
    let sb = start_with(
        "vm",
        &["-gcs-mem-limit-bytes=1048576"],
        BootMode::Initrd,
        Some(podnet.path()),
    )
    .await;
    assert!(podnet.qdiscs().contains("ingress"), "{}", podnet.qdiscs());
    let times = sb.start_times();
    eprintln!(
        "VM sandbox negotiated in {:?} (kvm: {})",
        times.negotiated, times.kvm
    );
    assert!(sb.capabilities().guest_defined_capabilities.is_some());
    let (qemu, backend) = sb.pids();
    let dir = sb.state_dir();

    // A container whose init reads stdin, writes stdout and stderr, and exits 5. It also
    // bind-mounts host paths (shared over virtio-9p): a directory read-only and read-write,
    // and a single file.
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("f"), "from the host\n").unwrap();
    let one = host.path().join("one");
    std::fs::write(&one, "one file\n").unwrap();
    let mut c1_spec = spec(
        &[
            "/bin/sh",
            "-c",
            "read line; echo got:$line; cat /ro/f /etc/one; \
             touch /ro/x 2>/dev/null || echo ro-refused; echo guest > /rw/g; \
             echo err >&2; exit 5",
        ],
        false,
    );
    let bind = |src: &Path, dst: &str, opt: &str| serde_json::json!({"type": "bind", "source": src, "destination": dst, "options": ["rbind", opt]});
    for m in [
        bind(host.path(), "/ro", "ro"),
        bind(host.path(), "/rw", "rw"),
        bind(&one, "/etc/one", "ro"),
    ] {
        c1_spec["mounts"].as_array_mut().unwrap().push(m);
    }
    let c1 = sb
        .create_container("c1", c1_spec, &[busybox_rootfs()])
        .await
        .expect("create c1");
    let p = c1.start_init(true, true, true).await.expect("start c1");
    let stdio = p.take_stdio();
    let mut stdin = stdio.stdin.unwrap();
    stdin.write_all(b"hello vm\n").await.unwrap();
    stdin.shutdown().await.unwrap();
    let (out, err) = tokio::join!(read_all(stdio.stdout), read_all(stdio.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out),
        "got:hello vm\nfrom the host\none file\nro-refused\n"
    );
    assert_eq!(
        std::fs::read_to_string(host.path().join("g")).unwrap(),
        "guest\n",
        "the guest's write did not reach the host"
    );
    assert_eq!(String::from_utf8_lossy(&err), "err\n");
    assert_eq!(p.wait_timeout(T).await.unwrap(), 5);
    assert_eq!(
        c1.wait_timeout(T).await.unwrap(),
        NotificationType::UnexpectedExit
    );

    // A second container in the same VM, on the same layer disk: an exec whose stdin is
    // ended by the host (cat sees EOF), then the init is killed.
    let c2 = sb
        .create_container(
            "c2",
            spec(&["/bin/sleep", "1000"], false),
            &[busybox_rootfs()],
        )
        .await
        .expect("create c2");
    let init = c2.start_init(false, false, false).await.unwrap();
    let params = ProcessParameters {
        create_std_in_pipe: true,
        create_std_out_pipe: true,
        oci_process: Some(RawJson::from_value(&process(&["/bin/cat"], false)).unwrap()),
        ..Default::default()
    };
    let e = c2.exec(params).await.expect("exec");
    let stdio = e.take_stdio();
    let data: Vec<u8> = (0..256 * 1024u32).map(|i| (i % 251) as u8).collect();
    let mut stdin = stdio.stdin.unwrap();
    let input = data.clone();
    let writer = tokio::spawn(async move {
        stdin.write_all(&input).await.unwrap();
        stdin.shutdown().await.unwrap();
    });
    let out = read_all(stdio.stdout).await;
    writer.await.unwrap();
    assert_eq!(e.wait_timeout(T).await.unwrap(), 0);
    assert!(
        out == data,
        "exec output differs from its input ({} bytes)",
        out.len()
    );
    assert!(init.signal(Some(9)).await.unwrap());
    assert_eq!(
        c2.wait_timeout(T).await.unwrap(),
        NotificationType::ForcedExit
    );

    // A container that runs out of its 16 MiB: the OOM in /pods is logged.
    let mut oom_spec = spec(&["/bin/tail", "/dev/zero"], false);
    oom_spec["linux"]["resources"] = serde_json::json!({"memory": {"limit": 16 << 20}});
    let c3 = sb
        .create_container("c3", oom_spec, &[busybox_rootfs()])
        .await
        .expect("create c3");
    let p3 = c3.start_init(false, false, false).await.unwrap();
    assert_eq!(
        p3.wait_timeout(T).await.unwrap(),
        128 + 9,
        "tail was not OOM-killed"
    );
    let log = dir.join("gcs.log");
    let logged = |msg: &str, cgroup: &str| {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .any(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap_or_default();
                v["msg"] == msg && v["cgroup"] == cgroup
            })
    };
    for _ in 0..100 {
        if logged("out of memory in cgroup", "/pods")
            && logged("memory usage for cgroup exceeded threshold", "/gcs")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        logged("out of memory in cgroup", "/pods"),
        "no OOM notification for /pods in the GCS log"
    );
    assert!(
        logged("memory usage for cgroup exceeded threshold", "/gcs"),
        "no /gcs threshold notification in the GCS log"
    );

    // The pod: c4 (the sandbox) gets the pod network; c5 joins its namespace, has the pod's
    // address and route, and reaches the outside over TCP (through the redirects).
    let pod_spec = |args: &[&str]| {
        let mut s = spec(args, false);
        s["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"type": "network", "path": podnet.path()}));
        s
    };
    let c4 = sb
        .create_container("c4", pod_spec(&["/bin/sleep", "1000"]), &[busybox_rootfs()])
        .await
        .expect("create c4");
    let pause = c4.start_init(false, false, false).await.unwrap();
    let c5 = sb
        .create_container(
            "c5",
            pod_spec(&[
                "/bin/sh",
                "-c",
                "ip -o -4 addr show dev eth0; ip route show default; \
                 timeout 30 wget -q -O - http://198.19.77.1:8080/hello",
            ]),
            &[busybox_rootfs()],
        )
        .await
        .expect("create c5");
    let p5 = c5.start_init(false, true, true).await.unwrap();
    let stdio = p5.take_stdio();
    let (out, err) = tokio::join!(read_all(stdio.stdout), read_all(stdio.stderr));
    let (out, err) = (String::from_utf8_lossy(&out), String::from_utf8_lossy(&err));
    assert_eq!(p5.wait_timeout(T).await.unwrap(), 0, "{out}{err}");
    assert!(out.contains("inet 198.19.77.2/24"), "{out}{err}");
    assert!(
        out.contains("default via 198.19.77.1 dev eth0"),
        "{out}{err}"
    );
    assert!(out.ends_with("hello from outside\n"), "{out}{err}");
    // A spec naming another host namespace cannot be served.
    let mut stray = spec(&["/bin/true"], false);
    stray["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"type": "network", "path": "/proc/self/ns/net"}));
    let e = sb
        .create_container("c6", stray, &[busybox_rootfs()])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("pod's network namespace"), "{e}");
    sb.remove_container(&c5).await.expect("remove c5");
    assert!(pause.signal(Some(9)).await.unwrap());
    c4.wait_timeout(T).await.unwrap();
    sb.remove_container(&c4).await.expect("remove c4");

    sb.remove_container(&c1).await.expect("remove c1");
    let shares: Vec<_> = std::fs::read_dir(dir.join("shares")).unwrap().collect();
    assert!(
        shares.is_empty(),
        "shares left after removing c1: {shares:?}"
    );
    assert!(
        !std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains(&dir.display().to_string()),
        "a share is still mounted"
    );
    assert_eq!(
        std::fs::read_to_string(host.path().join("f")).unwrap(),
        "from the host\n"
    );
    sb.remove_container(&c2).await.expect("remove c2");
    sb.remove_container(&c3).await.expect("remove c3");
    let disks: Vec<_> = std::fs::read_dir(dir.join("disks")).unwrap().collect();
    assert!(
        disks.is_empty(),
        "disk images left after removing every container"
    );

    // A clean shutdown: the GCS powers the VM off; nothing is left.
    sb.teardown().await.expect("teardown");
    assert!(
        !alive(qemu) && !alive(backend),
        "QEMU or the backend still runs"
    );
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert!(
        !podnet.qdiscs().contains("ingress"),
        "the pod's eth0 keeps a redirect: {}",
        podnet.qdiscs()
    );
    let tap = std::process::Command::new("ip")
        .args([
            "-n",
            &podnet.pod,
            "link",
            "show",
            uvm::sandbox::vm::net::TAP_NAME,
        ])
        .output()
        .unwrap();
    assert!(!tap.status.success(), "the tap is left after teardown");
}

#[tokio::test]
async fn killing_qemu_fails_calls_and_teardown_cleans_up() {
    let sb = start("vmcrash", &[]).await;
    let (qemu, backend) = sb.pids();
    let dir = sb.state_dir();
    let c = sb
        .create_container(
            "c1",
            spec(&["/bin/sleep", "1000"], false),
            &[busybox_rootfs()],
        )
        .await
        .expect("create");
    // SAFETY: kill(2) on the QEMU process this test started.
    assert_eq!(unsafe { libc::kill(qemu as i32, libc::SIGKILL) }, 0);
    let closed = tokio::time::timeout(T, sb.client().closed())
        .await
        .expect("bridge closes");
    assert!(
        closed.contains("utility VM ended") || !closed.is_empty(),
        "{closed}"
    );
    assert!(c.start_init(false, false, false).await.is_err());
    sb.teardown().await.expect("teardown after a crash");
    assert!(
        !alive(qemu) && !alive(backend),
        "QEMU or the backend still runs"
    );
    assert!(!dir.exists(), "{} left behind", dir.display());
}

#[tokio::test]
async fn a_container_runs_on_a_verity_checked_vhd_root() {
    let sb = start_mode("vmverity", &[], BootMode::VerityVhd).await;
    let times = sb.start_times();
    eprintln!(
        "VM sandbox (verity-vhd) negotiated in {:?} (kvm: {})",
        times.negotiated, times.kvm
    );
    let (qemu, backend) = sb.pids();
    let dir = sb.state_dir();
    // The boot initrd's init mounted the dm-verity device read-only and handed over.
    let console = std::fs::read_to_string(dir.join("console.log")).unwrap();
    assert!(
        console.contains("init: mounted /dev/dm-0 (ro)"),
        "the root is not the dm-verity device:\n{console}"
    );
    // ... and emptied the boot initramfs (its init and modules) before the switch.
    let freed = console
        .lines()
        .find_map(|l| {
            l.split("init: freed ")
                .nth(1)?
                .strip_suffix(" KiB of initramfs")
        })
        .and_then(|k| k.trim().parse::<u64>().ok());
    assert!(
        freed.is_some_and(|k| k > 100) && !console.contains("free the initramfs:"),
        "the boot initramfs was not freed:\n{console}"
    );
    eprintln!("boot initramfs freed: {} KiB", freed.unwrap_or(0));
    // The container's layer disk takes LUN 1: LUN 0 is the root disk.
    let c = sb
        .create_container(
            "c1",
            spec(&["/bin/sh", "-c", "echo hello from verity; exit 3"], false),
            &[busybox_rootfs()],
        )
        .await
        .expect("create c1");
    let p = c.start_init(false, true, false).await.expect("start c1");
    let out = read_all(p.take_stdio().stdout).await;
    assert_eq!(String::from_utf8_lossy(&out), "hello from verity\n");
    assert_eq!(p.wait_timeout(T).await.unwrap(), 3);
    sb.remove_container(&c).await.expect("remove c1");
    sb.teardown().await.expect("teardown");
    assert!(
        !alive(qemu) && !alive(backend),
        "QEMU or the backend still runs"
    );
    assert!(!dir.exists(), "{} left behind", dir.display());
}

/// dm-verity refuses a root disk that does not match the root hash the host passes: with
/// one digit of the hash changed, init cannot mount the root, the VM ends, and start fails
/// with init's and the kernel's words for it, leaving nothing behind.
#[tokio::test]
async fn a_wrong_verity_root_hash_fails_the_boot() {
    use uvm::sandbox::vm::boot::VERITY_INFO;
    assert!(is_root(), "the VM sandbox tests run as root (as CI does)");
    let boot = boot_files();
    let tampered = tempfile::tempdir().unwrap();
    for f in ["vmlinux", "boot-initrd.img", "rootfs-verity.vhd"] {
        std::os::unix::fs::symlink(boot.join(f), tampered.path().join(f)).unwrap();
    }
    let info = std::fs::read_to_string(boot.join(VERITY_INFO)).unwrap();
    let root = info
        .lines()
        .find_map(|l| l.strip_prefix("root_hash="))
        .expect("a root_hash line")
        .to_owned();
    let first = if root.starts_with('0') { "1" } else { "0" };
    let wrong = format!("{first}{}", &root[1..]);
    let changed = info.replace(&root, &wrong);
    assert_eq!(changed.matches(&wrong).count(), 2, "{changed}");
    std::fs::write(tampered.path().join(VERITY_INFO), changed).unwrap();

    let mut cfg = VmSandboxConfig::new(state_dir("vmbadhash"));
    cfg.boot_files = tampered.path().to_path_buf();
    cfg.boot_mode = BootMode::VerityVhd;
    cfg.memory_mib = 512;
    let dir = cfg.state_dir.clone();
    let t0 = std::time::Instant::now();
    let err = match VmSandbox::start(cfg).await {
        Ok(_) => panic!("the VM booted a root whose hash does not match"),
        Err(e) => e.to_string(),
    };
    eprintln!("refused after {:?}:\n{err}", t0.elapsed());
    assert!(
        // dm-verity fails the first read of the root: EIO at mount.
        err.contains("mount /dev/dm-0") && err.contains("Input/output error"),
        "not a failure to mount the verity root:\n{err}"
    );
    assert!(!dir.exists(), "{} left behind", dir.display());
    let left = std::process::Command::new("pgrep")
        .args(["-f", &dir.display().to_string()])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "processes left: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}
