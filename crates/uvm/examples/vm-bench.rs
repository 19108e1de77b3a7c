//! Start-up figures of the VM sandbox next to the local sandbox's, in one run (used by
//! `bench/vm.sh`): sandbox start to a negotiated bridge, and to the first output of a
//! container; the same for the VM booted from the dm-verity VHD root (`verity-vhd` boot
//! mode) next to the initrd one; QEMU + vhost-device-vsock RSS per VM. Linux, as root.
//!
//! `vm-bench <gcs binary> <busybox rootfs> <boot files dir> <rounds>`

#[cfg(target_os = "linux")]
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    bench::main().await
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("vm-bench runs on Linux only");
    std::process::exit(2);
}

#[cfg(target_os = "linux")]
mod bench {
    use std::path::PathBuf;
    use std::time::{Duration, Instant};

    use tokio::io::AsyncReadExt;
    use uvm::sandbox::local::{LocalSandbox, LocalSandboxConfig};
    use uvm::sandbox::vm::{BootMode, VmSandbox, VmSandboxConfig};
    use uvm::Sandbox;

    fn spec() -> serde_json::Value {
        serde_json::json!({
            "ociVersion": "1.1.0",
            "process": {"user": {"uid": 0, "gid": 0}, "args": ["/bin/echo", "ready"], "cwd": "/",
                        "env": ["PATH=/bin"]},
            "root": {"path": "rootfs"},
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}
        })
    }

    /// Time from `t0` to the first byte of a container's stdout.
    async fn first_output(sb: &dyn Sandbox, rootfs: &PathBuf, t0: Instant) -> Duration {
        let c = sb
            .create_container("b1", spec(), std::slice::from_ref(rootfs))
            .await
            .expect("create");
        let p = c.start_init(false, true, false).await.expect("start");
        let mut out = p.take_stdio().stdout.expect("stdout");
        let mut b = [0u8; 1];
        out.read_exact(&mut b).await.expect("output");
        let t = t0.elapsed();
        let mut rest = Vec::new();
        out.read_to_end(&mut rest).await.expect("read");
        p.wait().await.expect("exit");
        sb.remove_container(&c).await.expect("remove");
        t
    }

    fn rss_kib(pid: u32) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        s.lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    }

    pub async fn main() {
        let a: Vec<String> = std::env::args().collect();
        let (gcs, rootfs, boot, rounds) = (
            PathBuf::from(&a[1]),
            PathBuf::from(&a[2]),
            PathBuf::from(&a[3]),
            a[4].parse::<usize>().unwrap(),
        );
        let base = std::env::temp_dir().join(format!("vm-bench-{}", std::process::id()));
        let (mut vm_neg, mut vm_out, mut lo_neg, mut lo_out) = (vec![], vec![], vec![], vec![]);
        let (mut vhd_neg, mut vhd_out) = (vec![], vec![]);
        let (mut rss, mut kvm) = (Vec::new(), false);
        for i in 0..rounds {
            // Interleaved, so that load on the machine hits both alike.
            let t0 = Instant::now();
            let mut c = LocalSandboxConfig::new(base.join(format!("local{i}")));
            c.agent = gcs.clone();
            let lo = LocalSandbox::start(c).await.expect("local sandbox");
            lo_neg.push(t0.elapsed().as_secs_f64());
            lo_out.push(first_output(&lo, &rootfs, t0).await.as_secs_f64());
            lo.teardown().await.expect("local teardown");

            let t0 = Instant::now();
            let mut c = VmSandboxConfig::new(base.join(format!("vm{i}")));
            c.boot_files = boot.clone();
            let vm = VmSandbox::start(c).await.expect("VM sandbox");
            vm_neg.push(t0.elapsed().as_secs_f64());
            kvm = vm.start_times().kvm;
            vm_out.push(first_output(&vm, &rootfs, t0).await.as_secs_f64());
            let (q, b) = vm.pids();
            rss.push((rss_kib(q), rss_kib(b)));
            vm.teardown().await.expect("VM teardown");

            let t0 = Instant::now();
            let mut c = VmSandboxConfig::new(base.join(format!("vhd{i}")));
            c.boot_files = boot.clone();
            c.boot_mode = BootMode::VerityVhd;
            let vm = VmSandbox::start(c).await.expect("VM sandbox (verity-vhd)");
            vhd_neg.push(t0.elapsed().as_secs_f64());
            vhd_out.push(first_output(&vm, &rootfs, t0).await.as_secs_f64());
            vm.teardown().await.expect("VM teardown (verity-vhd)");
        }
        if let Err(e) = std::fs::remove_dir(&base) {
            eprintln!("{}: {e}", base.display());
        }
        let (ln, lo, vn, vo) = (
            median(lo_neg),
            median(lo_out),
            median(vm_neg),
            median(vm_out),
        );
        println!(
            "rounds: {rounds} (medians), VM accel: {}",
            if kvm { "kvm" } else { "tcg" }
        );
        println!(
            "start -> GCS negotiated:    local {:8.3} s   vm {:8.3} s   vm/local {:6.1}x",
            ln,
            vn,
            vn / ln
        );
        println!(
            "start -> first output:      local {:8.3} s   vm {:8.3} s   vm/local {:6.1}x",
            lo,
            vo,
            vo / lo
        );
        let (hn, ho) = (median(vhd_neg), median(vhd_out));
        println!(
            "VM boot mode, negotiated:   initrd {:7.3} s   verity-vhd {:7.3} s   vhd/initrd {:5.2}x",
            vn,
            hn,
            hn / vn
        );
        println!(
            "VM boot mode, first output: initrd {:7.3} s   verity-vhd {:7.3} s   vhd/initrd {:5.2}x",
            vo,
            ho,
            ho / vo
        );
        let (q, b) = rss[rss.len() - 1];
        println!(
            "RSS per VM (after one container): qemu {} MiB + vhost-device-vsock {} MiB = {} MiB",
            q / 1024,
            b / 1024,
            (q + b) / 1024
        );
    }
}
