//! A real peer (issue 12 item 5): Debian's containerd, its CRI plugin using the `nat`
//! plugin as the pod network through a conflist in a private configuration directory,
//! started by the test inside hnsd's host network namespace with a private root, state and
//! sockets, `restrict_oom_score_adj = true` and a locally built image (no registry). The
//! same pod scenario runs once per CRI runtime handler: `runc` (Debian's
//! `containerd-shim-runc-v2`) and `runhcs` (this workspace's `containerd-shim-runhcs-v1`
//! with its local sandbox and `gcs`, built by the test). A pod started through CRI (a Rust
//! client: tonic + the CRI protos) gets its address from the plugin (the HNS endpoint's),
//! its DNS settings (runtimeConfig DNS on the endpoint, resolv.conf in the pod), and a
//! host port mapping that reaches its web server from the outside and from the host.
//! Removing the pod removes the endpoint and the HCN namespace.
//!
//! Root (CI runs as root); one pod per test, a few seconds each.

#![cfg(target_os = "linux")]

mod common;
#[path = "containerd/daemon.rs"]
mod daemon;
#[path = "containerd/image.rs"]
mod image;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::net::*;
use common::HOST_IP;
use daemon::{Containerd, Runtime};
use hnsd::testing::TestHnsd;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::*;
use serde_json::json;

const NETWORK: &str = "cnitest";
const HOST_PORT: i32 = 18080;

fn sandbox_config(dir: &std::path::Path) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: "web".into(),
            uid: format!("uid-{}", std::process::id()),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: "web".into(),
        log_directory: dir.join("pod-logs").display().to_string(),
        dns_config: Some(DnsConfig {
            servers: vec!["192.0.2.53".into()],
            searches: vec!["test.local".into()],
            options: vec!["ndots:2".into()],
        }),
        port_mappings: vec![PortMapping {
            protocol: Protocol::Tcp as i32,
            container_port: 80,
            host_port: HOST_PORT,
            host_ip: String::new(),
        }],
        labels: HashMap::new(),
        annotations: HashMap::new(),
        linux: Some(LinuxPodSandboxConfig::default()),
        windows: None,
    }
}

/// What the pod's shell prints for `cmd`.
async fn exec(
    rt: &mut RuntimeServiceClient<tonic::transport::Channel>,
    id: &str,
    cmd: &[&str],
) -> String {
    let r = rt
        .exec_sync(ExecSyncRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: 10,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        r.exit_code,
        0,
        "{cmd:?}: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    String::from_utf8_lossy(&r.stdout).into_owned()
}

#[test]
fn containerd_cri_pod_with_runc_gets_its_address_dns_and_a_working_host_port_from_nat() {
    pod_through_cri(Runtime::Runc);
}

#[test]
fn containerd_cri_pod_with_runhcs_gets_its_address_dns_and_a_working_host_port_from_nat() {
    pod_through_cri(Runtime::Runhcs);
}

/// The scenario: a pod with a web server through CRI with `runtime`'s handler, on the
/// `nat` network (see the module docs).
fn pod_through_cri(runtime: Runtime) {
    require_root();
    let hnsd = TestHnsd::start().unwrap();
    let host = hnsd.host_netns().unwrap().path().to_path_buf();
    // containerd's stream server listens on the host namespace's loopback.
    run_in(&host, "ip", &["link", "set", "lo", "up"]);
    let outside = outside(&hnsd);
    let hcn = hnsd.client();

    let conflist = json!({
        "cniVersion": "1.0.0",
        "name": NETWORK,
        "plugins": [{
            "type": "nat",
            "capabilities": {"portMappings": true, "dns": true},
            "ipam": {"subnet": "10.88.0.0/16", "routes": [{"dst": "0.0.0.0/0", "gw": "10.88.0.1"}]},
            "dns": {"Nameservers": ["10.50.10.50"], "Search": ["svc.cluster.local"]}
        }]
    })
    .to_string();
    let mut ctrd = Containerd::start(&host, &conflist, &[("HNSD_SOCKET", hnsd.socket())], runtime);
    let tar = ctrd.dir().join("image.tar");
    image::build(ctrd.dir(), &tar);
    ctrd.ctr(&[
        "-n",
        "k8s.io",
        "images",
        "import",
        &tar.display().to_string(),
    ]);

    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = ctrd.dir().to_path_buf();
    tokio.block_on(async {
        let channel = ctrd.channel().await;
        let mut rt = RuntimeServiceClient::new(channel.clone());
        let mut img = ImageServiceClient::new(channel);

        // CRI learns about the imported image from containerd's events.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let st = img
                .image_status(ImageStatusRequest {
                    image: Some(ImageSpec {
                        image: image::IMAGE.into(),
                        ..Default::default()
                    }),
                    verbose: false,
                })
                .await
                .unwrap()
                .into_inner();
            if st.image.is_some() {
                break;
            }
            assert!(Instant::now() < deadline, "CRI does not see {}", image::IMAGE);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        let config = sandbox_config(&dir);
        let pod = rt
            .run_pod_sandbox(RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: runtime.handler().into(),
            })
            .await
            .unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}\n{}", ctrd.log(), ctrd.cni_log()))
            .into_inner()
            .pod_sandbox_id;
        for ns in hcn.list_namespaces().unwrap() {
            ctrd.track_netns(ns.netns_path.into());
        }

        // The address: the plugin's result, which is the HNS endpoint's.
        let status = rt
            .pod_sandbox_status(PodSandboxStatusRequest {
                pod_sandbox_id: pod.clone(),
                verbose: false,
            })
            .await
            .unwrap()
            .into_inner();
        let ip = status.status.unwrap().network.unwrap().ip;
        let ep = hcn
            .get_endpoint_by_name(&format!("{pod}_{NETWORK}"))
            .unwrap();
        assert_eq!(ep.ip_configurations[0].ip_address, ip);
        assert!(ip.starts_with("10.88."), "{ip}");
        // DNS: the runtime's settings replaced the configuration's on the endpoint.
        assert_eq!(ep.dns.server_list, ["192.0.2.53"]);
        assert_eq!(ep.dns.search, ["test.local"]);
        assert_eq!(ep.dns.options, ["ndots:2"]);

        // A web server in the pod.
        let web = rt
            .create_container(CreateContainerRequest {
                pod_sandbox_id: pod.clone(),
                config: Some(ContainerConfig {
                    metadata: Some(ContainerMetadata {
                        name: "httpd".into(),
                        attempt: 0,
                    }),
                    image: Some(ImageSpec {
                        image: image::IMAGE.into(),
                        ..Default::default()
                    }),
                    command: vec!["/bin/sh".into(), "-c".into(),
                        "mkdir -p /www && echo hello-from-pod > /www/index.html && exec httpd -f -p 80 -h /www".into()],
                    log_path: "httpd.log".into(),
                    linux: Some(LinuxContainerConfig::default()),
                    ..Default::default()
                }),
                sandbox_config: Some(config),
            })
            .await
            .unwrap_or_else(|e| panic!("CreateContainer: {e}\n{}", ctrd.log()))
            .into_inner()
            .container_id;
        rt.start_container(StartContainerRequest {
            container_id: web.clone(),
        })
        .await
        .unwrap_or_else(|e| panic!("StartContainer: {e}\n{}", ctrd.log()));

        // The pod runs with the handler's shim (one shim per pod).
        let shims: Vec<&str> = ctrd.shims().into_iter().map(|(_, s)| s).collect();
        assert_eq!(shims, [runtime.shim()], "{}", ctrd.log());

        // Inside the pod: eth0 has the address; resolv.conf has the DNS settings.
        let addr = exec(&mut rt, &web, &["ip", "-o", "-4", "addr", "show", "dev", "eth0"]).await;
        assert!(addr.contains(&format!("inet {ip}/16")), "{addr}");
        let resolv = exec(&mut rt, &web, &["cat", "/etc/resolv.conf"]).await;
        for line in ["nameserver 192.0.2.53", "search test.local", "options ndots:2"] {
            assert!(resolv.contains(line), "{resolv}");
        }

        // The host port mapping, from the outside and from the host.
        let get = "GET / HTTP/1.0\r\n\r\n";
        let deadline = Instant::now() + Duration::from_secs(10);
        let reply = loop {
            match talk(outside.path(), &format!("{HOST_IP}:{HOST_PORT}"), get) {
                Ok(r) => break r,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("waiting for httpd: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("port mapping from the outside: {e}"),
            }
        };
        assert!(reply.contains("hello-from-pod"), "{reply}");
        let reply = talk(&host, &format!("{HOST_IP}:{HOST_PORT}"), get).unwrap();
        assert!(reply.contains("hello-from-pod"), "{reply}");

        // Teardown through CRI: DEL removes the endpoint and the HCN namespace.
        rt.stop_container(StopContainerRequest {
            container_id: web.clone(),
            timeout: 0,
        })
        .await
        .unwrap();
        rt.remove_container(RemoveContainerRequest { container_id: web })
            .await
            .unwrap();
        rt.stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: pod.clone(),
        })
        .await
        .unwrap_or_else(|e| panic!("StopPodSandbox: {e}\n{}", ctrd.cni_log()));
        rt.remove_pod_sandbox(RemovePodSandboxRequest { pod_sandbox_id: pod })
            .await
            .unwrap();
    });
    assert!(hcn.list_endpoints().unwrap().is_empty());
    assert!(hcn.list_namespaces().unwrap().is_empty());
    assert_eq!(hcn.list_networks().unwrap().len(), 1);
    drop(tokio);
    drop(ctrd);
}
