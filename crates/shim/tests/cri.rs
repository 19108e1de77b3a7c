//! A pod through containerd's CRI gRPC API (the calls kubelet makes), against Debian's
//! containerd with this shim as the pod's runtime. Checks one shim and one sandbox per pod,
//! the pod's network namespace (set up by the CNI bridge plugin inside the test's own
//! network namespace) shared by the pause and the containers, the pod's DNS settings,
//! security contexts (run as a user, read-only root file system), a container with a
//! terminal, ExecSync output, exit codes and timeout, container stats, resource updates,
//! streaming (exec with a terminal, attach, attach with StdinOnce ending the container,
//! port-forward over containerd's streaming server), container logs, and a clean
//! stop/remove. Then, on the same containerd, a
//! privileged pod in the host's namespaces with volumes of each mount propagation
//! (`host_namespaces`), where `security` checks security contexts, seccomp, log reopening
//! and the status of a container that exited. Root only.

#![cfg(target_os = "linux")]

mod common;
#[path = "cri/host_namespaces.rs"]
mod host_namespaces;
#[path = "cri/security.rs"]
mod security;
#[path = "cri/vm.rs"]
mod vm;

use std::time::{Duration, Instant};

use common::{stream, Containerd, IMAGE};
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::*;
use tonic::transport::{Channel, Endpoint, Uri};

const NS: &str = "k8s.io";

async fn client(c: &Containerd) -> RuntimeServiceClient<Channel> {
    let path = c.socket();
    let channel = Endpoint::try_from("http://[::]:50051")
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                    tokio::net::UnixStream::connect(path).await?,
                ))
            }
        }))
        .await
        .expect("connect to containerd's CRI");
    RuntimeServiceClient::new(channel)
}

fn container_config(name: &str, script: &str) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: IMAGE.into(),
            ..Default::default()
        }),
        command: vec!["sh".into(), "-c".into(), script.into()],
        log_path: format!("{name}.log"),
        ..Default::default()
    }
}

async fn exec(rt: &mut RuntimeServiceClient<Channel>, id: &str, cmd: &[&str]) -> ExecSyncResponse {
    rt.exec_sync(ExecSyncRequest {
        container_id: id.into(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        timeout: 30,
    })
    .await
    .expect("ExecSync")
    .into_inner()
}

/// ContainerStatus of `id`.
async fn container_status(rt: &mut RuntimeServiceClient<Channel>, id: &str) -> ContainerStatus {
    rt.container_status(ContainerStatusRequest {
        container_id: id.to_owned(),
        verbose: false,
    })
    .await
    .unwrap()
    .into_inner()
    .status
    .unwrap()
}

/// Creates and starts a container of `pod`; returns its id.
async fn run_container(
    rt: &mut RuntimeServiceClient<Channel>,
    c: &Containerd,
    pod: &str,
    sandbox_config: &PodSandboxConfig,
    config: ContainerConfig,
) -> String {
    let name = config
        .metadata
        .as_ref()
        .map(|m| m.name.clone())
        .unwrap_or_default();
    let id = rt
        .create_container(CreateContainerRequest {
            pod_sandbox_id: pod.into(),
            config: Some(config),
            sandbox_config: Some(sandbox_config.clone()),
        })
        .await
        .unwrap_or_else(|e| panic!("CreateContainer {name}: {e}\n{}", c.log_tail()))
        .into_inner()
        .container_id;
    rt.start_container(StartContainerRequest {
        container_id: id.clone(),
    })
    .await
    .unwrap_or_else(|e| panic!("StartContainer {name}: {e}\n{}", c.log_tail()));
    id
}

#[test]
fn a_pod_of_three_containers_through_cri() {
    let parent = common::CgroupParent(format!("/hcsshim-cri-{}", std::process::id()));
    let c = Containerd::start(true);
    c.import_images(NS);
    let logs = c.dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut rt = client(&c).await;
        let sandbox_config = PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: "shimpod".into(),
                uid: "uid-shimpod".into(),
                namespace: "default".into(),
                attempt: 0,
            }),
            hostname: "shimpod".into(),
            log_directory: logs.display().to_string(),
            dns_config: Some(DnsConfig {
                servers: vec!["198.18.77.53".into()],
                searches: vec!["shimpod.example".into()],
                options: vec!["ndots:3".into()],
            }),
            // A namespaced sysctl of the pod (critest's "runtime should support sysctls"),
            // set in the pause's IPC namespace, which the containers share.
            // A cgroup parent, as kubelet always gives (`/kubepods/...`).
            linux: Some(LinuxPodSandboxConfig {
                sysctls: [("kernel.shm_rmid_forced".to_owned(), "1".to_owned())].into(),
                cgroup_parent: parent.0.clone(),
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
            .unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", c.log_tail()))
            .into_inner()
            .pod_sandbox_id;

        let mut ids = Vec::new();
        // c1: a read-only root file system, the pod's pid namespace (CRI's default); c2: runs
        // as uid 1234 in a pid namespace of its own (CRI security contexts).
        let security = [
            LinuxContainerSecurityContext {
                readonly_rootfs: true,
                ..Default::default()
            },
            LinuxContainerSecurityContext {
                run_as_user: Some(Int64Value { value: 1234 }),
                namespace_options: Some(NamespaceOption {
                    pid: NamespaceMode::Container as i32,
                    ..Default::default()
                }),
                ..Default::default()
            },
        ];
        for ((name, script), security) in [
            ("c1", "echo hello-from-c1; exec sleep 1000"),
            ("c2", "exec sleep 1000"),
        ]
        .into_iter()
        .zip(security)
        {
            let mut config = container_config(name, script);
            // c2 has a terminal: containerd names a stderr FIFO with it, which the shim
            // must accept (and leave unused) on Linux.
            config.tty = name == "c2";
            config.linux = Some(LinuxContainerConfig {
                security_context: Some(security),
                ..Default::default()
            });
            ids.push(run_container(&mut rt, &c, &pod, &sandbox_config, config).await);
        }

        // One shim serves the pod: both containers' bundles name the pod's shim.
        let pod_addr = std::fs::read_to_string(c.bundle(NS, &pod).join("address")).unwrap();
        for id in &ids {
            let a = std::fs::read_to_string(c.bundle(NS, id).join("address")).unwrap();
            assert_eq!(a, pod_addr, "container {id} has a shim of its own");
        }
        assert_eq!(c.shim_pids().len(), 1, "one shim per pod");

        // The containers share the pod's hostname, network namespace (the CNI one, with
        // the bridge plugin's address) and see their own exit codes.
        let h = exec(&mut rt, &ids[0], &["hostname"]).await;
        assert_eq!(String::from_utf8_lossy(&h.stdout).trim(), "shimpod");
        let n1 = exec(&mut rt, &ids[0], &["readlink", "/proc/self/ns/net"]).await;
        let n2 = exec(&mut rt, &ids[1], &["readlink", "/proc/self/ns/net"]).await;
        assert!(n1.stdout.starts_with(b"net:["), "{n1:?}");
        assert_eq!(n1.stdout, n2.stdout, "containers of a pod share its netns");
        let addr = exec(&mut rt, &ids[1], &["ip", "-4", "addr", "show", "eth0"]).await;
        assert!(
            String::from_utf8_lossy(&addr.stdout).contains("198.18.77."),
            "the pod's CNI address is not in the container: {addr:?}"
        );
        // The pod's DNS settings reach the containers' resolv.conf.
        let dns = exec(&mut rt, &ids[0], &["cat", "/etc/resolv.conf"]).await;
        let dns = String::from_utf8_lossy(&dns.stdout).into_owned();
        for line in [
            "nameserver 198.18.77.53",
            "search shimpod.example",
            "options ndots:3",
        ] {
            assert!(dns.lines().any(|l| l == line), "{line:?} not in {dns:?}");
        }

        let sysctl = exec(&mut rt, &ids[1], &["cat", "/proc/sys/kernel/shm_rmid_forced"]).await;
        assert_eq!(String::from_utf8_lossy(&sysctl.stdout).trim(), "1", "{sysctl:?}");

        // Security contexts: c1's root file system is read-only, c2 runs (and execs) as 1234.
        let ro = exec(&mut rt, &ids[0], &["sh", "-c", "touch /written 2>&1"]).await;
        assert_ne!(ro.exit_code, 0, "wrote to a read-only rootfs: {ro:?}");
        assert!(
            String::from_utf8_lossy(&ro.stdout).contains("Read-only file system"),
            "{ro:?}"
        );
        let uid = exec(&mut rt, &ids[1], &["id", "-u"]).await;
        assert_eq!(
            String::from_utf8_lossy(&uid.stdout).trim(),
            "1234",
            "{uid:?}"
        );
        // c2 asked for a pid namespace of its own (kubelet's default): its init is pid 1
        // there, and runs as 1234; c1 shares the pod's, where the pause process is pid 1.
        let init = exec(&mut rt, &ids[1], &["stat", "-c", "%u", "/proc/1"]).await;
        assert_eq!(
            String::from_utf8_lossy(&init.stdout).trim(),
            "1234",
            "{init:?}"
        );
        let tty = exec(&mut rt, &ids[1], &["readlink", "/proc/1/fd/0"]).await;
        assert!(
            String::from_utf8_lossy(&tty.stdout).starts_with("/dev/pts/"),
            "c2's init has no terminal: {tty:?}"
        );
        let init = exec(&mut rt, &ids[0], &["stat", "-c", "%u", "/proc/1"]).await;
        assert_eq!(
            String::from_utf8_lossy(&init.stdout).trim(),
            "0",
            "{init:?}"
        );

        let code = exec(
            &mut rt,
            &ids[1],
            &["sh", "-c", "echo out; echo err >&2; exit 7"],
        )
        .await;
        assert_eq!(code.exit_code, 7);
        assert_eq!(code.stdout, b"out\n");
        assert_eq!(code.stderr, b"err\n");

        // ExecSync past its timeout fails and the shim kills the exec'd process.
        let t0 = Instant::now();
        let timed_out = rt
            .exec_sync(ExecSyncRequest {
                container_id: ids[1].clone(),
                cmd: vec!["sleep".into(), "417".into()],
                timeout: 1,
            })
            .await;
        assert!(timed_out.is_err(), "{timed_out:?}");
        assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
        let ps = exec(&mut rt, &ids[1], &["ps", "-o", "args"]).await;
        assert!(
            String::from_utf8_lossy(&ps.stdout).contains("sleep 1000"),
            "ps shows no processes: {ps:?}"
        );
        assert!(
            !String::from_utf8_lossy(&ps.stdout).contains("sleep 417"),
            "the timed-out exec still runs: {ps:?}"
        );

        // Stats as kubelet reads them: containerd's CRI decodes the shim's metrics type.
        let stats = rt
            .container_stats(ContainerStatsRequest {
                container_id: ids[0].clone(),
            })
            .await
            .unwrap_or_else(|e| panic!("ContainerStats: {e}\n{}", c.log_tail()))
            .into_inner()
            .stats
            .unwrap();
        // What critest's stats specs read: the container's id and name, and timestamps.
        let attributes = stats.attributes.as_ref();
        assert_eq!(attributes.map(|a| a.id.as_str()), Some(ids[0].as_str()));
        assert_eq!(
            attributes.and_then(|a| a.metadata.as_ref()).map(|m| m.name.as_str()),
            Some("c1")
        );
        assert!(stats.cpu.as_ref().is_some_and(|c| c.timestamp != 0), "{stats:?}");
        assert!(stats.memory.as_ref().is_some_and(|m| m.timestamp != 0), "{stats:?}");
        let memory = stats.memory.and_then(|m| m.working_set_bytes);
        assert!(memory.is_some_and(|m| m.value > 0), "{memory:?}");
        assert!(stats.cpu.and_then(|c| c.usage_core_nano_seconds).is_some());
        let listed = rt
            .list_container_stats(ListContainerStatsRequest {
                filter: Some(ContainerStatsFilter {
                    pod_sandbox_id: pod.clone(),
                    ..Default::default()
                }),
            })
            .await
            .unwrap_or_else(|e| panic!("ListContainerStats: {e}\n{}", c.log_tail()))
            .into_inner()
            .stats;
        assert_eq!(listed.len(), 2, "{listed:?}");

        // The containers are in the cgroups CRI named, under the pod's cgroup parent, as
        // with runc: where kubelet (cAdvisor) and containerd's pod stats look.
        for id in &ids {
            let procs = common::cgroup_bases()
                .into_iter()
                .map(|b| b.join(parent.0.trim_start_matches('/')).join(id).join("cgroup.procs"))
                .find(|p| p.is_file())
                .unwrap_or_else(|| panic!("no cgroup of {id} under {}", parent.0));
            let procs = std::fs::read_to_string(&procs).unwrap();
            assert!(!procs.trim().is_empty(), "{id}'s cgroup has no process");
        }
        let pod_stats = rt
            .pod_sandbox_stats(PodSandboxStatsRequest {
                pod_sandbox_id: pod.clone(),
            })
            .await
            .unwrap_or_else(|e| panic!("PodSandboxStats: {e}\n{}", c.log_tail()))
            .into_inner()
            .stats
            .and_then(|s| s.linux)
            .unwrap();
        let working_set = pod_stats.memory.and_then(|m| m.working_set_bytes);
        assert!(working_set.is_some_and(|w| w.value > 0), "{working_set:?}");

        // UpdateContainerResources reaches the container's cgroup.
        rt.update_container_resources(UpdateContainerResourcesRequest {
            container_id: ids[1].clone(),
            linux: Some(LinuxContainerResources {
                memory_limit_in_bytes: 96 << 20,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("UpdateContainerResources: {e}\n{}", c.log_tail()));
        let limit = exec(
            &mut rt,
            &ids[1],
            &[
                "sh",
                "-c",
                "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
            ],
        )
        .await;
        assert_eq!(
            String::from_utf8_lossy(&limit.stdout).trim(),
            (96u64 << 20).to_string(),
            "{limit:?}"
        );

        // Streaming, as `kubectl exec -it`, `attach` and `port-forward` reach a pod through
        // containerd's streaming server.
        // Exec with a terminal: the resize and stdin go through the shim to the process.
        let url = rt
            .exec(ExecRequest {
                container_id: ids[0].clone(),
                cmd: vec!["sh".into()],
                tty: true,
                stdin: true,
                stdout: true,
                stderr: false,
            })
            .await
            .unwrap_or_else(|e| panic!("Exec: {e}\n{}", c.log_tail()))
            .into_inner()
            .url;
        let mut s = stream::connect(&c.netns, &url, stream::CHANNEL_V4).await;
        s.send(stream::RESIZE, br#"{"Width":100,"Height":30}"#).await;
        s.send(
            stream::STDIN,
            b"until [ \"$(stty size)\" = '30 100' ]; do sleep 0.1; done; stty size; exit 3\n",
        )
        .await;
        let got = s
            .recv_until(Duration::from_secs(30), |g| g.contains_key(&stream::STATUS))
            .await;
        s.close().await;
        let out = String::from_utf8_lossy(got.get(&stream::STDOUT).map_or(&[][..], |o| o));
        assert!(
            out.lines().any(|l| l.trim_end_matches('\r') == "30 100"),
            "the terminal was not resized: {out:?}; status {:?}",
            String::from_utf8_lossy(got.get(&stream::STATUS).map_or(&[][..], |o| o))
        );
        assert_eq!(stream::exit_code(&got[&stream::STATUS]), Some(3), "{got:?}");
        // Exec without a terminal or stdin (critest's "exec" spec): stdout exactly what
        // the process wrote, nothing on stderr, the stream ends with its status.
        let url = rt
            .exec(ExecRequest {
                container_id: ids[0].clone(),
                cmd: vec!["echo".into(), "-n".into(), "hello".into()],
                tty: false,
                stdin: false,
                stdout: true,
                stderr: true,
            })
            .await
            .unwrap_or_else(|e| panic!("Exec: {e}\n{}", c.log_tail()))
            .into_inner()
            .url;
        let mut s = stream::connect(&c.netns, &url, stream::CHANNEL_V4).await;
        let got = s
            .recv_until(Duration::from_secs(30), |g| g.contains_key(&stream::STATUS))
            .await;
        s.close().await;
        assert_eq!(got.get(&stream::STDOUT).map(|o| &o[..]), Some(&b"hello"[..]), "{got:?}");
        assert!(got.get(&2).is_none_or(|e| e.is_empty()), "stderr: {got:?}");
        assert_eq!(stream::exit_code(&got[&stream::STATUS]), Some(0), "{got:?}");

        // A third container with an open stdin (attach) and a listener on port 8080
        // (port-forward), in the pod's network namespace.
        let mut config = container_config(
            "c3",
            "echo pf-hello | nc -l -p 8080 & while read l; do echo got-$l; done",
        );
        config.stdin = true;
        // Capabilities added to and dropped from containerd's default set (critest's
        // "Security Context ... capability" specs).
        config.linux = Some(LinuxContainerConfig {
            security_context: Some(LinuxContainerSecurityContext {
                capabilities: Some(Capability {
                    add_capabilities: vec!["NET_ADMIN".into()],
                    drop_capabilities: vec!["NET_RAW".into()],
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
        // ... and a volume: a host directory bind-mounted read-write (kubelet's hostPath and
        // emptyDir volumes reach the runtime this way).
        let volume = c.dir.join("volume");
        std::fs::create_dir_all(&volume).unwrap();
        std::fs::write(volume.join("in"), "from-the-host\n").unwrap();
        // ... and a read-only volume with a tmpfs mounted in it on the host after the pod
        // started (critest's "non-recursive readonly mounts"): the tmpfs stays writable.
        let ro = c.dir.join("ro");
        std::fs::create_dir_all(ro.join("tmpfs")).unwrap();
        // (Under the test's directory: `Containerd`'s drop unmounts it, also on failure.)
        nix::mount::mount(
            Some("tmpfs"),
            &ro.join("tmpfs"),
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .expect("mount a tmpfs in the read-only volume");
        config.mounts = vec![
            Mount {
                container_path: "/vol".into(),
                host_path: volume.display().to_string(),
                ..Default::default()
            },
            Mount {
                container_path: "/ro".into(),
                host_path: ro.display().to_string(),
                readonly: true,
                ..Default::default()
            },
        ];
        let c3 = run_container(&mut rt, &c, &pod, &sandbox_config, config).await;
        ids.push(c3.clone());
        let vol = exec(
            &mut rt,
            &c3,
            &["sh", "-c", "cat /vol/in && echo from-the-pod > /vol/out"],
        )
        .await;
        assert_eq!((vol.exit_code, &vol.stdout[..]), (0, &b"from-the-host\n"[..]), "{vol:?}");
        assert_eq!(
            std::fs::read_to_string(volume.join("out")).unwrap(),
            "from-the-pod\n"
        );
        let ro = exec(
            &mut rt,
            &c3,
            &["sh", "-c", "touch /ro/tmpfs/file && ! touch /ro/x 2>/dev/null"],
        )
        .await;
        assert_eq!(ro.exit_code, 0, "{ro:?}");
        let caps = exec(&mut rt, &c3, &["grep", "CapBnd", "/proc/self/status"]).await;
        let caps = String::from_utf8_lossy(&caps.stdout).to_string();
        let bnd = u64::from_str_radix(caps.trim().trim_start_matches("CapBnd:").trim(), 16)
            .unwrap_or_else(|_| panic!("{caps:?}"));
        // CAP_NET_ADMIN is bit 12, CAP_NET_RAW bit 13; CAP_CHOWN (0) stays from the defaults.
        assert_eq!((bnd >> 12 & 1, bnd >> 13 & 1, bnd & 1), (1, 0, 1), "{caps:?}");
        let url = rt
            .attach(AttachRequest {
                container_id: c3.clone(),
                stdin: true,
                tty: false,
                stdout: true,
                stderr: true,
            })
            .await
            .unwrap_or_else(|e| panic!("Attach: {e}\n{}", c.log_tail()))
            .into_inner()
            .url;
        let mut s = stream::connect(&c.netns, &url, stream::CHANNEL_V4).await;
        s.send(stream::STDIN, b"ping\n").await;
        let got = s
            .recv_until(Duration::from_secs(30), |g| {
                g.get(&stream::STDOUT)
                    .is_some_and(|o| o.windows(8).any(|w| w == b"got-ping"))
            })
            .await;
        s.close().await;
        assert!(
            got.get(&stream::STDOUT)
                .is_some_and(|o| o.windows(8).any(|w| w == b"got-ping")),
            "attach: {got:?}"
        );

        // critest's attach: a shell with StdinOnce; when the attach ends, containerd closes
        // the container's stdin (CloseIO), the shell reads EOF and the container exits 0.
        let mut config = container_config("c4", "exec sh");
        config.stdin = true;
        config.stdin_once = true;
        let c4 = run_container(&mut rt, &c, &pod, &sandbox_config, config).await;
        let url = rt
            .attach(AttachRequest {
                container_id: c4.clone(),
                stdin: true,
                tty: false,
                stdout: true,
                stderr: true,
            })
            .await
            .unwrap_or_else(|e| panic!("Attach c4: {e}\n{}", c.log_tail()))
            .into_inner()
            .url;
        let mut s = stream::connect(&c.netns, &url, stream::CHANNEL_V4).await;
        s.send(stream::STDIN, b"echo hello-once\n").await;
        let got = s
            .recv_until(Duration::from_secs(30), |g| {
                g.get(&stream::STDOUT)
                    .is_some_and(|o| o.windows(10).any(|w| w == b"hello-once"))
            })
            .await;
        s.close().await;
        assert!(
            got.get(&stream::STDOUT)
                .is_some_and(|o| o.windows(10).any(|w| w == b"hello-once")),
            "attach c4: {got:?}"
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let st = container_status(&mut rt, &c4).await;
            if st.state == ContainerState::ContainerExited as i32 {
                assert_eq!(st.exit_code, 0, "{st:?}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "c4 still runs after its StdinOnce attach ended: {st:?}\n{}",
                c.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        rt.remove_container(RemoveContainerRequest {
            container_id: c4.clone(),
        })
        .await
        .unwrap_or_else(|e| panic!("RemoveContainer c4: {e}\n{}", c.log_tail()));

        let listening = exec(
            &mut rt,
            &c3,
            &[
                "sh",
                "-c",
                "for i in $(seq 100); do grep -qsE ':1F90 0+:0000 0A' /proc/net/tcp /proc/net/tcp6 && exit 0; sleep 0.1; done; exit 1",
            ],
        )
        .await;
        assert_eq!(listening.exit_code, 0, "nothing listens on 8080: {listening:?}");
        let url = rt
            .port_forward(PortForwardRequest {
                pod_sandbox_id: pod.clone(),
                port: vec![8080],
            })
            .await
            .unwrap_or_else(|e| panic!("PortForward: {e}\n{}", c.log_tail()))
            .into_inner()
            .url;
        let mut s = stream::connect(&c.netns, &url, stream::CHANNEL_V4).await;
        // Per port, a data channel (0) and an error channel (1), each opened by the port.
        let got = s
            .recv_until(Duration::from_secs(30), |g| {
                g.get(&0).is_some_and(|d| d.ends_with(b"pf-hello\n"))
            })
            .await;
        s.close().await;
        let port = 8080u16.to_le_bytes();
        let data = [&port[..], b"pf-hello\n"].concat();
        assert_eq!(got.get(&0), Some(&data), "{got:?}");
        assert_eq!(got.get(&1).map(|d| &d[..]), Some(&port[..]), "{got:?}");

        // Container logs in the CRI format.
        let log = logs.join("c1.log");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains(" stdout F hello-from-c1") {
                break;
            }
            assert!(Instant::now() < deadline, "log {}: {text:?}", log.display());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // The three ways critest's containers end: c1 stopped then removed; c2 removed
        // while running (containerd kills it first); c3 still running when the pod is
        // stopped (containerd kills each container, then the pause) and removed.
        let listed = |rt: &mut RuntimeServiceClient<Channel>, id: &str| {
            let mut rt = rt.clone();
            let id = id.to_owned();
            async move {
                rt.list_containers(ListContainersRequest {
                    filter: Some(ContainerFilter {
                        id,
                        ..Default::default()
                    }),
                })
                .await
                .unwrap()
                .into_inner()
                .containers
                .len()
            }
        };
        rt.stop_container(StopContainerRequest {
            container_id: ids[0].clone(),
            timeout: 2,
        })
        .await
        .unwrap_or_else(|e| panic!("StopContainer: {e}\n{}", c.log_tail()));
        let st = container_status(&mut rt, &ids[0]).await;
        assert_eq!(st.state, ContainerState::ContainerExited as i32);
        for id in &ids[..2] {
            rt.remove_container(RemoveContainerRequest {
                container_id: id.clone(),
            })
            .await
            .unwrap_or_else(|e| panic!("RemoveContainer: {e}\n{}", c.log_tail()));
            assert_eq!(listed(&mut rt, id).await, 0, "{id} is still listed");
        }
        rt.stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: pod.clone(),
        })
        .await
        .unwrap_or_else(|e| panic!("StopPodSandbox: {e}\n{}", c.log_tail()));
        let st = container_status(&mut rt, &c3).await;
        assert_eq!(st.state, ContainerState::ContainerExited as i32, "{st:?}");
        rt.remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: pod.clone(),
        })
        .await
        .unwrap_or_else(|e| panic!("RemovePodSandbox: {e}\n{}", c.log_tail()));
        assert_eq!(listed(&mut rt, &c3).await, 0, "c3 outlived its pod");

        let deadline = Instant::now() + Duration::from_secs(20);
        while !c.shim_pids().is_empty() || c.sandbox_dir(NS, &pod).exists() {
            assert!(
                Instant::now() < deadline,
                "the pod's shim or sandbox is left"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for base in common::cgroup_bases() {
            let under_parent = base.join(parent.0.trim_start_matches('/'));
            for id in ids.iter().chain([&pod]) {
                for cg in [base.join("pods").join(id), under_parent.join(id)] {
                    assert!(!cg.exists(), "cgroup {} left", cg.display());
                }
            }
        }

        host_namespaces::privileged_pod_in_host_namespaces(&mut rt, &c).await;

        // A pod in a utility VM, on the same containerd and CNI network.
        vm::pod_in_a_utility_vm(&mut rt, &c).await;
    });
}
