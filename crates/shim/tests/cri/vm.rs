//! A pod in a utility VM through CRI: the pod annotation `io.hcsshim-rs.sandbox=vm` makes
//! the pod's shim boot the project's QEMU utility VM, which carries the pod's CNI network
//! namespace in as its NIC and containerd's bind mounts (resolv.conf, hosts, hostname) in
//! over 9p. Checks the pod's address and DNS inside the VM, TCP from the pod to the CNI
//! bridge's side, a second container in the same VM and network namespace, and a clean
//! stop/remove (no QEMU left).

use std::process::Command;

use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::*;
use tonic::transport::Channel;

use super::common::Containerd;
use super::{container_config, exec, run_container};

fn text(r: &ExecSyncResponse) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&r.stdout),
        String::from_utf8_lossy(&r.stderr)
    )
}

/// busybox httpd on the bridge's address in the test's network namespace, killed on drop.
struct Httpd {
    child: std::process::Child,
    _www: tempfile::TempDir,
}

impl Httpd {
    fn start(netns: &str, addr: &str) -> Self {
        let www = tempfile::tempdir().unwrap();
        std::fs::write(www.path().join("hello"), "hello from the node\n").unwrap();
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{netns}"))
            .args(["busybox", "httpd", "-f", "-p", addr, "-h"])
            .arg(www.path())
            .spawn()
            .expect("busybox httpd");
        Httpd { child, _www: www }
    }
}

impl Drop for Httpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn qemu_pids(state: &str) -> Vec<String> {
    let out = Command::new("pgrep")
        .args(["-f", &format!("qemu-system.*{state}")])
        .output()
        .expect("pgrep (procps)");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// Runs the VM pod scenario on containerd `c` (CNI bridge on 198.18.77.0/24).
pub async fn pod_in_a_utility_vm(rt: &mut RuntimeServiceClient<Channel>, c: &Containerd) {
    let boot = super::common::boot_files();
    // The bridge's address (the CNI gateway) in the test's network namespace.
    let _httpd = Httpd::start(&c.netns, "198.18.77.1:8081");
    let logs = c.dir.join("vmlogs");
    std::fs::create_dir_all(&logs).unwrap();
    let sandbox_config = PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: "vmpod".into(),
            uid: "uid-vmpod".into(),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: "vmpod".into(),
        log_directory: logs.display().to_string(),
        dns_config: Some(DnsConfig {
            servers: vec!["198.18.77.54".into()],
            searches: vec!["vmpod.example".into()],
            options: vec![],
        }),
        annotations: [
            ("io.hcsshim-rs.sandbox", "vm".to_string()),
            (
                "io.microsoft.virtualmachine.bootfilesrootpath",
                boot.display().to_string(),
            ),
            (
                "io.microsoft.virtualmachine.computetopology.memory.sizeinmb",
                "512".into(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
        ..Default::default()
    };
    let t0 = std::time::Instant::now();
    let pod = rt
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(sandbox_config.clone()),
            runtime_handler: "runhcs".into(),
        })
        .await
        .unwrap_or_else(|e| panic!("RunPodSandbox in a VM: {e}\n{}", c.log_tail()))
        .into_inner()
        .pod_sandbox_id;
    eprintln!("VM pod sandbox ready after {:?}", t0.elapsed());
    let status = rt
        .pod_sandbox_status(PodSandboxStatusRequest {
            pod_sandbox_id: pod.clone(),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap();
    let pod_ip = status.network.unwrap().ip;
    assert!(pod_ip.starts_with("198.18.77."), "{pod_ip}");

    let c1 = run_container(
        rt,
        c,
        &pod,
        &sandbox_config,
        container_config("vm1", "sleep 1000"),
    )
    .await;
    // In the VM: its kernel command line is the utility VM's.
    let cmdline = exec(rt, &c1, &["cat", "/proc/cmdline"]).await;
    assert!(text(&cmdline).contains("vsockexec"), "{}", text(&cmdline));
    // The pod's address (CNI's, carried into the VM), hostname and DNS (bind mounts over 9p).
    let addr = exec(rt, &c1, &["ip", "-o", "-4", "addr", "show", "dev", "eth0"]).await;
    assert!(
        text(&addr).contains(&format!("inet {pod_ip}/24")),
        "{}",
        text(&addr)
    );
    let host = exec(rt, &c1, &["hostname"]).await;
    assert_eq!(text(&host).trim(), "vmpod");
    let dns = exec(rt, &c1, &["cat", "/etc/resolv.conf"]).await;
    assert!(
        text(&dns).contains("nameserver 198.18.77.54"),
        "{}",
        text(&dns)
    );
    // TCP out of the pod, through the VM's NIC and the pod's veth, to the node.
    let get = exec(
        rt,
        &c1,
        &[
            "timeout",
            "30",
            "wget",
            "-q",
            "-O",
            "-",
            "http://198.18.77.1:8081/hello",
        ],
    )
    .await;
    assert_eq!(
        (get.exit_code, text(&get).as_str()),
        (0, "hello from the node\n")
    );
    // A second container shares the VM and the pod's network namespace.
    let c2 = run_container(
        rt,
        c,
        &pod,
        &sandbox_config,
        container_config("vm2", "sleep 1000"),
    )
    .await;
    let n1 = exec(rt, &c1, &["readlink", "/proc/self/ns/net"]).await;
    let n2 = exec(rt, &c2, &["readlink", "/proc/self/ns/net"]).await;
    assert_eq!(text(&n1), text(&n2));
    let addr2 = exec(rt, &c2, &["ip", "-o", "-4", "addr", "show", "dev", "eth0"]).await;
    assert!(text(&addr2).contains(&pod_ip), "{}", text(&addr2));

    // The pod's sandbox state (QEMU runs from it) as the shim names it.
    let state = c.sandbox_dir(super::NS, &pod);
    let state_s = state.display().to_string();
    assert_eq!(qemu_pids(&state_s).len(), 1, "one QEMU for the pod");
    for id in [&c1, &c2] {
        rt.stop_container(StopContainerRequest {
            container_id: id.to_string(),
            timeout: 5,
        })
        .await
        .unwrap();
        rt.remove_container(RemoveContainerRequest {
            container_id: id.to_string(),
        })
        .await
        .unwrap();
    }
    rt.stop_pod_sandbox(StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap();
    rt.remove_pod_sandbox(RemovePodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap();
    // The shim tears the VM down and exits once the pod is removed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !qemu_pids(&state_s).is_empty() || state.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "QEMU or {state_s} left after RemovePodSandbox"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
