//! The CRI test's second pod: what critest's "NamespaceOption", "Privileged" and "Container
//! Mount Propagation" specs check, in one privileged pod in the host's pid, IPC and network
//! namespaces. The local sandbox runs its agent in mount and pid namespaces of its own; these
//! checks make sure a container still gets the host's namespaces, devices and mount
//! propagation as runc on the host would give it.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};

use super::*;

/// A critest-style volume: `mnt` is a bind mount of itself with the propagation under
/// test; the host mounts `src` (holding `flagFile`) on `mnt/propagationMnt` once the
/// container runs, and the container mounts its `/bin` on `mnt/containerMntPoint`.
struct Volume {
    propagation: MountPropagation,
    mnt: PathBuf,
    src: PathBuf,
}

impl Volume {
    fn new(base: &Path, propagation: MountPropagation) -> Self {
        let mnt = base.join("mnt");
        let src = base.join("propagationSrcDir");
        std::fs::create_dir_all(mnt.join("propagationMnt")).unwrap();
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("flagFile"), "").unwrap();
        let kind = match propagation {
            MountPropagation::PropagationPrivate => MsFlags::MS_PRIVATE,
            _ => MsFlags::MS_SHARED,
        };
        bind_self(&mnt, kind);
        Self {
            propagation,
            mnt,
            src,
        }
    }

    fn mount(&self) -> Mount {
        Mount {
            container_path: self.mnt.display().to_string(),
            host_path: self.mnt.display().to_string(),
            propagation: self.propagation as i32,
            ..Default::default()
        }
    }
}

/// Binds `dir` on itself and gives it propagation `kind`, recursively. The test's
/// `Containerd` unmounts everything under its directory when dropped, also on failure.
fn bind_self(dir: &Path, kind: MsFlags) {
    mount(
        Some(dir),
        dir,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .unwrap_or_else(|e| panic!("bind {}: {e}", dir.display()));
    mount(
        None::<&str>,
        dir,
        None::<&str>,
        kind | MsFlags::MS_REC,
        None::<&str>,
    )
    .unwrap_or_else(|e| panic!("propagation of {}: {e}", dir.display()));
}

fn out(r: &ExecSyncResponse) -> String {
    String::from_utf8_lossy(&r.stdout).trim().to_owned()
}

/// A host device that runc's default device list lacks, so only a privileged container
/// (which gets every host device) has it.
fn host_only_device() -> Option<&'static str> {
    [
        "/dev/kmsg",
        "/dev/mem",
        "/dev/loop-control",
        "/dev/vda",
        "/dev/sda",
    ]
    .into_iter()
    .find(|d| Path::new(d).exists())
}

/// Runs the pod and its checks, then removes it.
pub async fn privileged_pod_in_host_namespaces(
    rt: &mut RuntimeServiceClient<Channel>,
    c: &Containerd,
) {
    // A systemd host's `/` is a shared mount, so that a mount the host makes later reaches
    // the mount namespaces copied from it (as the agent's is, when the pod starts). This
    // machine's `/` may be private: a shared mount over the volumes' directory, made before
    // the pod starts, stands in for it.
    let shared = c.dir.join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    bind_self(&shared, MsFlags::MS_SHARED);

    let host = NamespaceOption {
        network: NamespaceMode::Node as i32,
        pid: NamespaceMode::Node as i32,
        ipc: NamespaceMode::Node as i32,
        ..Default::default()
    };
    let sandbox_config = PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: "hostpod".into(),
            uid: "uid-hostpod".into(),
            namespace: "default".into(),
            attempt: 0,
        }),
        log_directory: c.dir.join("logs").display().to_string(),
        linux: Some(LinuxPodSandboxConfig {
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(host.clone()),
                privileged: true,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let pod = rt
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(sandbox_config.clone()),
            runtime_handler: "runhcs".into(),
        })
        .await
        .unwrap_or_else(|e| panic!("RunPodSandbox hostpod: {e}\n{}", c.log_tail()))
        .into_inner()
        .pod_sandbox_id;

    // As critest, the volumes are made once the pod runs.
    let volumes = [
        ("private", MountPropagation::PropagationPrivate),
        ("rslave", MountPropagation::PropagationHostToContainer),
        ("rshared", MountPropagation::PropagationBidirectional),
    ]
    .map(|(name, p)| Volume::new(&shared.join(name), p));

    // p1: privileged (as critest's, to mount), with the three volumes; p2: unprivileged.
    // Both in the pod's (the host's) namespaces.
    let mut p1 = container_config("p1", "echo $$ > /pid; exec sleep 1000");
    p1.mounts = volumes.iter().map(Volume::mount).collect();
    p1.linux = Some(LinuxContainerConfig {
        security_context: Some(LinuxContainerSecurityContext {
            privileged: true,
            namespace_options: Some(host.clone()),
            ..Default::default()
        }),
        ..Default::default()
    });
    let mut p2 = container_config("p2", "exec sleep 1000");
    p2.linux = Some(LinuxContainerConfig {
        security_context: Some(LinuxContainerSecurityContext {
            namespace_options: Some(host.clone()),
            ..Default::default()
        }),
        ..Default::default()
    });
    let p1 = run_container(rt, c, &pod, &sandbox_config, p1).await;
    let p2 = run_container(rt, c, &pod, &sandbox_config, p2).await;

    // ContainerStatus reports the volumes' propagation (critest checks it).
    let status = super::container_status(rt, &p1).await;
    let reported: Vec<i32> = status.mounts.iter().map(|m| m.propagation).collect();
    let asked: Vec<i32> = volumes.iter().map(|v| v.propagation as i32).collect();
    assert_eq!(reported, asked, "{:?}", status.mounts);

    // Host to container: the host's mount reaches the container through rslave and
    // rshared volumes only.
    for v in &volumes {
        bind_at(&v.src, &v.mnt.join("propagationMnt"));
        let ls = exec(
            rt,
            &p1,
            &["ls", "-A", &format!("{}/propagationMnt", v.mnt.display())],
        )
        .await;
        let seen = out(&ls) == "flagFile";
        let expected = v.propagation != MountPropagation::PropagationPrivate;
        assert_eq!(
            seen, expected,
            "{:?}: the container lists {ls:?}",
            v.propagation
        );
    }
    // Container to host: only through the rshared volume.
    for v in &volumes {
        let point = v.mnt.join("containerMntPoint");
        let script = format!("mkdir -p {0} && mount --bind /bin {0}", point.display());
        let m = exec(rt, &p1, &["sh", "-c", &script]).await;
        assert_eq!(m.exit_code, 0, "{:?}: {m:?}", v.propagation);
        let seen = std::fs::read_dir(&point).unwrap().next().is_some();
        let expected = v.propagation == MountPropagation::PropagationBidirectional;
        assert_eq!(
            seen, expected,
            "{:?}: the host sees the container's mount",
            v.propagation
        );
    }
    // The rootfs overlays stay in the sandbox: on the host, its state dir holds one mount
    // point, its private `c`.
    let sandbox = c.sandbox_dir(NS, &pod);
    assert_eq!(
        common::mounts_under(&sandbox),
        vec![sandbox.join("c").display().to_string()],
        "the sandbox's mounts show on the host"
    );

    // Host namespaces (critest's HostNetwork, HostIpc and HostPID specs): the network
    // namespace is the one containerd runs in, the IPC namespace the host's, and the
    // containers share one pid namespace: p2 sees p1's process.
    let netns = std::fs::metadata(format!("/run/netns/{}", c.netns))
        .unwrap()
        .ino();
    let net = exec(rt, &p2, &["readlink", "/proc/self/ns/net"]).await;
    assert_eq!(out(&net), format!("net:[{netns}]"), "{net:?}");
    let ipc = exec(rt, &p2, &["readlink", "/proc/self/ns/ipc"]).await;
    let host_ipc = std::fs::read_link("/proc/self/ns/ipc").unwrap();
    assert_eq!(out(&ipc), host_ipc.display().to_string(), "{ipc:?}");
    let pid = out(&exec(rt, &p1, &["cat", "/pid"]).await);
    let pids = exec(rt, &p2, &["pidof", "sleep"]).await;
    assert!(
        !pid.is_empty() && out(&pids).split(' ').any(|p| p == pid),
        "p2 does not see p1's sleep {pid:?}: {pids:?}"
    );
    // ... which is the host's: the containers see the host's processes (this test's own),
    // and p1's pid is its host pid.
    let ns = exec(rt, &p2, &["readlink", "/proc/self/ns/pid"]).await;
    let host_ns = std::fs::read_link("/proc/self/ns/pid").unwrap();
    assert_eq!(out(&ns), host_ns.display().to_string(), "{ns:?}");
    let me = std::process::id();
    let seen = exec(rt, &p2, &["cat", &format!("/proc/{me}/cmdline")]).await;
    let cmdline = std::fs::read(format!("/proc/{me}/cmdline")).unwrap();
    assert_eq!(
        seen.stdout, cmdline,
        "p2 does not see this test's process {me}"
    );
    let p1_host = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert!(
        p1_host.starts_with(b"sleep\0"),
        "host pid {pid}: {p1_host:?}"
    );

    // Privileged (critest's checkNetworkManagement adds a dummy link; this kernel has no
    // dummy driver, a veth pair needs the same NET_ADMIN): only p1 may add a link, and only
    // p1 has the host's devices.
    let add = "ip link add shimv0 type veth peer name shimv1 && ip link del shimv0";
    let privileged = exec(rt, &p1, &["sh", "-c", add]).await;
    assert_eq!(privileged.exit_code, 0, "{privileged:?}");
    let unprivileged = exec(rt, &p2, &["sh", "-c", add]).await;
    assert_ne!(unprivileged.exit_code, 0, "{unprivileged:?}");
    let dev = host_only_device().expect("the host has none of the devices looked for");
    let has = |r: &ExecSyncResponse| r.exit_code == 0;
    // Usable, not only listed: the device cgroup lets p1 open it.
    let open = format!("test -e {dev} && dd if={dev} of=/dev/null count=0 2>&1");
    let p1_dev = exec(rt, &p1, &["sh", "-c", &open]).await;
    assert!(has(&p1_dev), "p1 cannot use {dev}: {p1_dev:?}");
    assert!(
        !has(&exec(rt, &p2, &["test", "-e", dev]).await),
        "p2 has {dev}"
    );

    // No seccomp profile asked for: none applied (critest's "seccomp default which is
    // unconfined"); p1 is privileged, also unconfined.
    for id in [&p1, &p2] {
        let st = exec(rt, id, &["grep", "Seccomp:", "/proc/self/status"]).await;
        assert_eq!(out(&st).split_whitespace().nth(1), Some("0"), "{st:?}");
    }

    super::security::security_logs_and_status(rt, c, &pod, &sandbox_config, &c.dir.join("logs"))
        .await;

    for id in [&p1, &p2] {
        rt.stop_container(StopContainerRequest {
            container_id: id.clone(),
            timeout: 2,
        })
        .await
        .unwrap_or_else(|e| panic!("StopContainer: {e}\n{}", c.log_tail()));
        rt.remove_container(RemoveContainerRequest {
            container_id: id.clone(),
        })
        .await
        .unwrap_or_else(|e| panic!("RemoveContainer: {e}\n{}", c.log_tail()));
    }
    rt.stop_pod_sandbox(StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap_or_else(|e| panic!("StopPodSandbox: {e}\n{}", c.log_tail()));
    rt.remove_pod_sandbox(RemovePodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap_or_else(|e| panic!("RemovePodSandbox: {e}\n{}", c.log_tail()));
    let deadline = Instant::now() + Duration::from_secs(20);
    // p1's sleep, a host process, ended too (no pid namespace dies with the sandbox).
    let p1_left =
        || std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.starts_with(b"sleep\0"));
    while !c.shim_pids().is_empty() || sandbox.exists() || p1_left() {
        assert!(
            Instant::now() < deadline,
            "the pod's shim or sandbox is left: {:?}",
            common::mounts_under(&sandbox)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Binds `src` on `at` (the host's mount critest makes once the container runs).
fn bind_at(src: &Path, at: &Path) {
    mount(
        Some(src),
        at,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .unwrap_or_else(|e| panic!("bind {} on {}: {e}", src.display(), at.display()));
}
