//! The HCS sandbox's whole lifecycle on Linux, against the `hcs` crate's computecore and
//! vmcompute simulators, in-memory VM sockets, and a scripted guest (init dialing the
//! entropy and log ports, the GCS dialing the bridge and answering requests). What it
//! checks: the documents and requests HCS receives, in order; that the host listens on the
//! VM's id before the VM starts and serves entropy and the log; the guest requests that
//! attach, combine and remove layers; and that teardown leaves no handle open.
//!
//! What it cannot check: anything of real HCS, Hyper-V sockets or a real guest kernel.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bridge::codec::{encode_message, read_frame_async, Encoding, Frame};
use bridge::header::MessageType;
use bridge::messages::*;
use hcs::fake::FakeHcs;
use hcs::fake_vmcompute::FakeVmcompute;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::{oneshot, watch};
use uvm::hvsock::{Guid, VmSockets};
use uvm::sandbox::hcs::{HcsBackends, HcsSandbox, HcsSandboxConfig};
use uvm::sandbox::Sandbox;
use uvm::transport::{BoxStream, PortListener};

const VM_ID: &str = "8f3c5e2a-1b2c-4d5e-8f90-a1b2c3d4e5f6";

/// VM sockets in memory: `listen` registers a port; the test's guest `dial`s it.
#[derive(Debug, Default)]
struct MemSockets {
    ports: Mutex<HashMap<(Guid, u32), oneshot::Sender<DuplexStream>>>,
    /// Every listen, in order.
    listens: Mutex<Vec<(Guid, u32)>>,
    changed: Mutex<Option<watch::Sender<u64>>>,
}

struct MemListener(oneshot::Receiver<DuplexStream>);

#[async_trait]
impl PortListener for MemListener {
    async fn accept(self: Box<Self>) -> io::Result<BoxStream> {
        let s = self
            .0
            .await
            .map_err(|_| io::Error::other("listener dropped"))?;
        Ok(Box::new(s))
    }
}

impl MemSockets {
    fn new() -> (Arc<Self>, watch::Receiver<u64>) {
        let (tx, rx) = watch::channel(0);
        let s = Self {
            changed: Mutex::new(Some(tx)),
            ..Default::default()
        };
        (Arc::new(s), rx)
    }

    /// Connects to `port` of `vm` once the host listens there.
    async fn dial(&self, vm: Guid, port: u32, changes: &mut watch::Receiver<u64>) -> DuplexStream {
        loop {
            if let Some(tx) = self.ports.lock().unwrap().remove(&(vm, port)) {
                let (host, guest) = tokio::io::duplex(1 << 20);
                tx.send(host).expect("the host is listening");
                return guest;
            }
            changes.changed().await.expect("sockets alive");
        }
    }
}

#[async_trait]
impl VmSockets for MemSockets {
    async fn listen(&self, vm_id: Guid, port: u32) -> io::Result<Box<dyn PortListener>> {
        let (tx, rx) = oneshot::channel();
        self.ports.lock().unwrap().insert((vm_id, port), tx);
        self.listens.lock().unwrap().push((vm_id, port));
        if let Some(c) = self.changed.lock().unwrap().as_ref() {
            c.send_modify(|n| *n += 1);
        }
        Ok(Box::new(MemListener(rx)))
    }
}

/// The GCS side of the bridge: answers every request with success and records it.
async fn serve_gcs(mut stream: DuplexStream, seen: Arc<Mutex<Vec<(MessageType, String)>>>) {
    loop {
        let frame: Frame = match read_frame_async(&mut stream, u32::MAX).await {
            Ok(Some(f)) => f,
            _ => return,
        };
        let t = frame.header.known_type().expect("a known request type");
        let body = String::from_utf8_lossy(&frame.body).trim_end().to_owned();
        seen.lock().unwrap().push((t, body));
        let response = t.response().expect("a request");
        let bytes = if t == MessageType::NegotiateProtocol {
            encode_message(
                response,
                frame.header.id,
                &NegotiateProtocolResponse {
                    base: ResponseBase::success(ZERO_ACTIVITY_ID),
                    version: 4,
                    capabilities: GcsCapabilities::linux_gcs(),
                },
                Encoding::Guest,
            )
        } else {
            encode_message(
                response,
                frame.header.id,
                &ResponseBase::success(ZERO_ACTIVITY_ID),
                Encoding::Guest,
            )
        }
        .unwrap();
        if stream.write_all(&bytes).await.is_err() {
            return;
        }
    }
}

struct Guest {
    entropy: Vec<u8>,
}

/// What the guest does at boot: init takes its entropy, vsockexec connects the log, the
/// GCS dials the bridge and serves it.
async fn boot_guest(
    sockets: Arc<MemSockets>,
    mut changes: watch::Receiver<u64>,
    seen: Arc<Mutex<Vec<(MessageType, String)>>>,
) -> Guest {
    let vm = Guid::parse(VM_ID).unwrap();
    let mut entropy = Vec::new();
    let mut e = sockets.dial(vm, 1, &mut changes).await;
    e.read_to_end(&mut entropy).await.unwrap();
    let mut log = sockets.dial(vm, 109, &mut changes).await;
    log.write_all(b"{\"level\":\"info\",\"msg\":\"gcs started\"}\n")
        .await
        .unwrap();
    drop(log);
    let bridge = sockets.dial(vm, 0x4000_0000, &mut changes).await;
    tokio::spawn(serve_gcs(bridge, seen));
    Guest { entropy }
}

fn boot_files(dir: &std::path::Path) -> String {
    std::fs::write(dir.join("kernel"), b"kernel").unwrap();
    std::fs::write(dir.join("initrd.img"), b"initrd").unwrap();
    dir.display().to_string()
}

#[tokio::test]
async fn the_utility_vm_lifecycle_reaches_hcs_and_the_guest_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let boot = boot_files(tmp.path());
    let hcs = FakeHcs::new();
    hcs.set_runtime_os("c1@vm", "Linux");
    hcs.set_runtime_id("c1@vm", VM_ID);
    let vmcompute = FakeVmcompute::new();
    let (sockets, changes) = MemSockets::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let guest = tokio::spawn(boot_guest(sockets.clone(), changes, seen.clone()));

    let mut config = HcsSandboxConfig::new("c1@vm", tmp.path().join("state"), "test", &boot);
    config.connect_timeout = Duration::from_secs(10);
    let backends = HcsBackends {
        hcs: hcs.clone(),
        vmcompute: vmcompute.clone(),
        sockets: sockets.clone(),
        hcn: None,
    };
    let sandbox = HcsSandbox::start(config, backends).await.unwrap();
    let guest = guest.await.unwrap();

    // HCS: create with the LCOW document, read the runtime id, then start.
    let creates = hcs.calls_of("HcsCreateComputeSystem");
    assert_eq!(creates.len(), 1);
    let doc: serde_json::Value = serde_json::from_str(&creates[0].arg).unwrap();
    assert_eq!(
        doc["SchemaVersion"],
        serde_json::json!({"Major": 2, "Minor": 1})
    );
    let kernel = doc["VirtualMachine"]["Chipset"]["LinuxKernelDirect"]["KernelFilePath"]
        .as_str()
        .unwrap();
    assert_eq!(std::path::Path::new(kernel), tmp.path().join("kernel"));
    let exports = hcs.exports();
    let pos = |e: &str| exports.iter().position(|x| *x == e).unwrap();
    assert!(pos("HcsCreateComputeSystem") < pos("HcsStartComputeSystem"));
    // The host listened on the VM's id, on entropy, log and bridge, before the start.
    let vm = Guid::parse(VM_ID).unwrap();
    assert_eq!(sandbox.vm_id(), vm);
    assert_eq!(
        *sockets.listens.lock().unwrap(),
        [(vm, 1), (vm, 109), (vm, 0x4000_0000)]
    );
    assert_eq!(guest.entropy.len(), 512);
    assert!(
        guest.entropy.iter().any(|&b| b != 0),
        "entropy is random bytes"
    );
    assert_eq!(sandbox.kind(), uvm::SandboxKind::Hcs);
    assert_eq!(sandbox.capabilities().runtime_os_type, "Linux");

    // A container: two layer VHDs and a scratch VHD.
    let layers = vhds(tmp.path(), &["base.vhd", "top.vhd", "sandbox.vhdx"]);
    let spec = serde_json::json!({"ociVersion": "1.1.0", "process": {"args": ["sh"], "cwd": "/"}});
    let container = Sandbox::create_container(&sandbox, "c1", spec, &layers)
        .await
        .unwrap();

    // vmcompute: the VM may open each VHD.
    let grants: Vec<String> = vmcompute
        .calls_of("GrantVmAccess")
        .into_iter()
        .map(|c| c.arg)
        .collect();
    let expected: Vec<String> = layers
        .iter()
        .map(|p| format!("c1@vm {}", p.display()))
        .collect();
    assert_eq!(grants, expected);
    // HCS: one SCSI attachment per VHD, read-only layers, writable scratch.
    let modifies = modifies_of(&hcs);
    assert_eq!(modifies.len(), 3);
    for (lun, (m, path)) in modifies.iter().zip(&layers).enumerate() {
        assert_eq!(
            m["ResourcePath"],
            format!("VirtualMachine/Devices/Scsi/df6d0690-79e5-55b6-a5ec-c1e2f77f580a/Attachments/{lun}")
        );
        assert_eq!(m["RequestType"], "Add");
        assert_eq!(m["Settings"]["Path"], path.display().to_string());
        assert_eq!(
            m["Settings"]["ReadOnly"].as_bool().unwrap_or(false),
            lun < 2
        );
    }
    // The guest: negotiate, mount the three disks, combine the layers, create.
    let requests = requests_of(&seen);
    let types: Vec<MessageType> = requests.iter().map(|(t, _)| *t).collect();
    assert_eq!(
        types,
        [
            MessageType::NegotiateProtocol,
            MessageType::ModifySettings,
            MessageType::ModifySettings,
            MessageType::ModifySettings,
            MessageType::ModifySettings,
            MessageType::Create,
        ]
    );
    let settings = |i: usize| requests[i].1["Request"]["Settings"].clone();
    assert_eq!(settings(1)["MountPath"], "/run/mounts/scsi/m0");
    assert_eq!(settings(3)["MountPath"], "/run/mounts/scsi/m2");
    assert_eq!(settings(3)["EnsureFilesystem"], true);
    assert_eq!(
        settings(4),
        serde_json::json!({
            "ContainerID": "c1",
            "ContainerRootPath": "/run/gcs/c/c1/rootfs",
            "Layers": [{"Path": "/run/mounts/scsi/m0"}, {"Path": "/run/mounts/scsi/m1"}],
            "ScratchPath": "/run/mounts/scsi/m2/scratch/c1"
        })
    );
    let create: serde_json::Value =
        serde_json::from_str(requests[5].1["ContainerConfig"].as_str().unwrap()).unwrap();
    assert_eq!(create["OciBundlePath"], "/run/gcs/c/c1");
    assert_eq!(create["ScratchDirPath"], "/run/mounts/scsi/m2/scratch/c1");
    assert_eq!(sandbox.attached_disks().len(), 3);

    // Removal: guest state, root, then unmount + unplug + detach of each disk.
    Sandbox::remove_container(&sandbox, &container)
        .await
        .unwrap();
    let after: Vec<MessageType> = seen.lock().unwrap()[6..].iter().map(|(t, _)| *t).collect();
    assert_eq!(after[0], MessageType::DeleteContainerState);
    assert_eq!(after.len(), 1 + 1 + 3 * 2, "{after:?}");
    let detaches = hcs.calls_of("HcsModifyComputeSystem");
    assert_eq!(detaches.len(), 6);
    assert!(detaches[3..]
        .iter()
        .all(|c| c.arg.contains(r#""RequestType":"Remove""#)));
    assert!(sandbox.attached_disks().is_empty());

    // The GCS log reached the state dir.
    assert!(
        sandbox.log_tail().contains("gcs started"),
        "{}",
        sandbox.log_tail()
    );

    // Teardown: terminate, close; nothing left open; a second teardown is a no-op.
    Sandbox::teardown(&sandbox).await.unwrap();
    assert!(hcs.exports().contains(&"HcsTerminateComputeSystem"));
    assert_eq!(hcs.open_handles(), (0, 0, 0));
    assert!(!tmp.path().join("state").exists());
    Sandbox::teardown(&sandbox).await.unwrap();
}

#[tokio::test]
async fn a_vm_that_never_connects_is_torn_down() {
    let tmp = tempfile::tempdir().unwrap();
    let boot = boot_files(tmp.path());
    let hcs = FakeHcs::new();
    hcs.set_runtime_id("uvm-2", VM_ID);
    let (sockets, _changes) = MemSockets::new();
    let mut config = HcsSandboxConfig::new("uvm-2", tmp.path().join("state"), "test", &boot);
    config.connect_timeout = Duration::from_millis(200);
    let backends = HcsBackends {
        hcs: hcs.clone(),
        vmcompute: FakeVmcompute::new(),
        sockets,
        hcn: None,
    };
    let err = HcsSandbox::start(config, backends).await.unwrap_err();
    assert!(matches!(err, uvm::Error::Timeout { .. }), "{err}");
    assert!(hcs.exports().contains(&"HcsTerminateComputeSystem"));
    assert_eq!(hcs.open_handles(), (0, 0, 0));
    assert!(!tmp.path().join("state").exists());
}

#[tokio::test]
async fn missing_boot_files_fail_before_hcs_is_called() {
    let tmp = tempfile::tempdir().unwrap();
    let hcs = FakeHcs::new();
    let (sockets, _changes) = MemSockets::new();
    let config = HcsSandboxConfig::new(
        "uvm-3",
        tmp.path().join("state"),
        "test",
        &tmp.path().display().to_string(),
    );
    let backends = HcsBackends {
        hcs: hcs.clone(),
        vmcompute: FakeVmcompute::new(),
        sockets,
        hcn: None,
    };
    let err = HcsSandbox::start(config, backends.clone())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("boot file"), "{err}");
    let boot = boot_files(tmp.path());
    let bad_id = HcsSandboxConfig::new("bad\nid", tmp.path().join("state"), "test", &boot);
    let err = HcsSandbox::start(bad_id, backends).await.unwrap_err();
    assert!(err.to_string().contains("compute system id"), "{err}");
    assert!(hcs.calls().is_empty());
}

/// The guest's requests so far, decoded.
fn requests_of(seen: &Mutex<Vec<(MessageType, String)>>) -> Vec<(MessageType, serde_json::Value)> {
    seen.lock()
        .unwrap()
        .iter()
        .map(|(t, b)| (*t, serde_json::from_str(b).unwrap()))
        .collect()
}

/// The documents of the HCS modifies so far.
fn modifies_of(hcs: &FakeHcs) -> Vec<serde_json::Value> {
    hcs.calls_of("HcsModifyComputeSystem")
        .iter()
        .map(|c| serde_json::from_str(&c.arg).unwrap())
        .collect()
}

/// VHD stand-ins named `names` in `dir`.
fn vhds(dir: &std::path::Path, names: &[&str]) -> Vec<PathBuf> {
    names
        .iter()
        .map(|f| {
            let p = dir.join(f);
            std::fs::write(&p, b"vhd").unwrap();
            p
        })
        .collect()
}

/// A started sandbox `pod@vm` over the simulators and the scripted guest, with `hcn` as
/// its HNS; returns it with HCS and the guest's requests.
async fn started(
    tmp: &std::path::Path,
    hcn: Option<hcn::Hcn>,
) -> (
    HcsSandbox,
    Arc<FakeHcs>,
    Arc<Mutex<Vec<(MessageType, String)>>>,
) {
    let boot = boot_files(tmp);
    let hcs = FakeHcs::new();
    hcs.set_runtime_os("pod@vm", "Linux");
    hcs.set_runtime_id("pod@vm", VM_ID);
    let (sockets, changes) = MemSockets::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let guest = tokio::spawn(boot_guest(sockets.clone(), changes, seen.clone()));
    let mut config = HcsSandboxConfig::new("pod@vm", tmp.join("state"), "test", &boot);
    config.connect_timeout = Duration::from_secs(10);
    let backends = HcsBackends {
        hcs: hcs.clone(),
        vmcompute: FakeVmcompute::new(),
        sockets,
        hcn,
    };
    let sandbox = HcsSandbox::start(config, backends).await.unwrap();
    guest.await.unwrap();
    (sandbox, hcs, seen)
}

#[tokio::test]
async fn the_pod_network_a_spec_names_is_plugged_into_the_vm_once() {
    use hcn::schema::*;
    // HNS (in memory): a NAT network, the pod's endpoint, its namespace.
    let engine = hcn::engine::Engine::in_memory();
    let hns = engine.client();
    let network = hns
        .create_network(&HostComputeNetwork {
            name: "nat".into(),
            network_type: NetworkType::Nat,
            ipams: vec![Ipam {
                ipam_type: IpamType::Static,
                subnets: vec![Subnet {
                    ip_address_prefix: "10.88.0.0/24".into(),
                    routes: vec![Route {
                        next_hop: "10.88.0.1".into(),
                        destination_prefix: "0.0.0.0/0".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
            }],
            schema_version: V2_SCHEMA_VERSION,
            ..Default::default()
        })
        .unwrap();
    let endpoint = hns
        .create_endpoint(
            &network,
            &HostComputeEndpoint {
                name: "pod_eth0".into(),
                dns: Dns {
                    search: vec!["pod.example".into()],
                    server_list: vec!["10.88.0.53".into()],
                    ..Default::default()
                },
                schema_version: V2_SCHEMA_VERSION,
                ..Default::default()
            },
        )
        .unwrap();
    let namespace = hns
        .create_namespace(&hcn::new_namespace(NamespaceType::Guest))
        .unwrap();
    hns.add_namespace_endpoint(&namespace.id, &endpoint.id)
        .unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let (sandbox, hcs, seen) = started(tmp.path(), Some(hns)).await;
    let layers = |id: &str| vhds(tmp.path(), &["base.vhd", &format!("{id}.vhdx")]);
    let spec = |kind: &str| {
        serde_json::json!({
            "process": {"args": ["pause"], "cwd": "/"},
            "annotations": {"io.kubernetes.cri.container-type": kind,
                            "io.kubernetes.cri.sandbox-id": "pod"},
            "windows": {"network": {"networkNamespace": namespace.id}}
        })
    };
    Sandbox::create_container(&sandbox, "pod", spec("sandbox"), &layers("pod"))
        .await
        .unwrap();
    Sandbox::create_container(&sandbox, "c1", spec("container"), &layers("c1"))
        .await
        .unwrap();

    // HCS: one NIC for the one endpoint, plugged before any disk of the first container.
    let modifies = modifies_of(&hcs);
    let nic = &modifies[0];
    let networks = sandbox.pod_networks().await;
    assert_eq!(networks.len(), 1);
    assert_eq!(networks[0].0, namespace.id.to_lowercase());
    let nic_id = &networks[0].1[0];
    assert_eq!(
        nic["ResourcePath"],
        format!("VirtualMachine/Devices/NetworkAdapters/{nic_id}")
    );
    assert_eq!(nic["Settings"]["EndpointId"], endpoint.id);
    assert_eq!(nic["Settings"]["MacAddress"], endpoint.mac_address);
    let nic_adds = modifies
        .iter()
        .filter(|m| {
            m["ResourcePath"]
                .as_str()
                .unwrap()
                .contains("NetworkAdapters")
        })
        .count();
    assert_eq!(nic_adds, 1, "the workload's create plugs nothing more");
    // The guest: the adapter, with HNS's address, route and DNS, before the first create.
    let requests = requests_of(&seen);
    let (t, first) = &requests[1];
    assert_eq!(*t, MessageType::ModifySettings);
    assert_eq!(first["Request"]["ResourceType"], "Network");
    let settings = &first["Request"]["Settings"];
    assert_eq!(settings["NamespaceID"], namespace.id);
    assert_eq!(settings["ID"], nic_id.as_str());
    assert_eq!(settings["MacAddress"], endpoint.mac_address);
    assert_eq!(
        settings["IPConfigs"],
        serde_json::json!([{"IPAddress": endpoint.ip_configurations[0].ip_address, "PrefixLength": 24}])
    );
    assert_eq!(settings["Routes"][0]["NextHop"], "10.88.0.1");
    assert_eq!(settings["DNSSuffix"], "pod.example");
    assert_eq!(settings["DNSServerList"], "10.88.0.53");
    let networks_told = requests
        .iter()
        .filter(|(_, b)| b["Request"]["ResourceType"] == "Network")
        .count();
    assert_eq!(networks_told, 1);
    Sandbox::teardown(&sandbox).await.unwrap();
    assert_eq!(hcs.open_handles(), (0, 0, 0));

    // Without HNS, a container naming a pod network fails clearly, and creates nothing.
    let tmp2 = tempfile::tempdir().unwrap();
    let (sandbox, hcs, _) = started(tmp2.path(), None).await;
    let l = vhds(tmp2.path(), &["a.vhd", "s.vhdx"]);
    let err = Sandbox::create_container(&sandbox, "pod", spec("sandbox"), &l)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no HNS"), "{err}");
    assert!(hcs.calls_of("HcsModifyComputeSystem").is_empty());
    Sandbox::teardown(&sandbox).await.unwrap();
}

#[tokio::test]
async fn an_update_of_the_vm_resizes_its_memory_and_processors() {
    let tmp = tempfile::tempdir().unwrap();
    let (sandbox, hcs, _) = started(tmp.path(), None).await;
    let resources = uvm::sandbox::VmResources {
        // 1 GiB + 1 MiB: an odd number of MiB, rounded up to an even one as the reference.
        memory_bytes: Some((1 << 30) + (1 << 20)),
        processor_limit: Some(5000),
        processor_weight: Some(200),
        cpu_group: Some("0b5e1f1c-0000-0000-0000-000000000001".into()),
    };
    Sandbox::update_vm(&sandbox, &resources).await.unwrap();
    Sandbox::update_vm(
        &sandbox,
        &uvm::sandbox::VmResources {
            processor_weight: Some(50),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let modifies = modifies_of(&hcs);
    assert_eq!(
        modifies,
        [
            serde_json::json!({"ResourcePath": "VirtualMachine/ComputeTopology/Memory/SizeInMB", "Settings": 1026}),
            serde_json::json!({"ResourcePath": "VirtualMachine/ComputeTopology/Processor/Limits",
                               "Settings": {"Limit": 5000, "Weight": 200}}),
            serde_json::json!({"ResourcePath": "VirtualMachine/ComputeTopology/Processor/CpuGroup",
                               "Settings": {"Id": "0b5e1f1c-0000-0000-0000-000000000001"}}),
            serde_json::json!({"ResourcePath": "VirtualMachine/ComputeTopology/Processor/Limits",
                               "Settings": {"Weight": 50}}),
        ]
    );
    Sandbox::teardown(&sandbox).await.unwrap();
}
