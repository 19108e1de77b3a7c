//! ModifySettings: storage (layers, disks, shares) and network resources (spec §5).

use std::path::PathBuf;

use bridge::messages::{
    ModifyRequestType, ModifySettingsRequest, ResourceSettings, ResourceType, ResponseBase,
};
use bridge::Frame;

use super::{decode, enforce, ok};
use crate::error::{hr, Error, Result};
use crate::host::Host;
use crate::network::{Adapter, IpConfig, Route};
use crate::server::{Bridge, RequestContext};
use crate::storage::{self, ScsiMount};

pub(super) fn modify(
    bridge: &Bridge,
    host: &Host,
    ctx: &RequestContext,
    frame: &Frame,
) -> Result<ResponseBase> {
    let req: ModifySettingsRequest = decode(frame)?;
    // An empty RequestType is Add, as the reference guest's decoder makes it.
    let rt = match req.request.request_type.clone() {
        t if t.as_str().is_empty() => ModifyRequestType::Add,
        t => t,
    };
    let resource_type = req.request.resource_type.clone();
    // The reference rejects an unknown ResourceType while decoding, before any routing.
    if !bridge::messages::linux_gcs_accepts(&resource_type) {
        return Err(Error::Invalid(format!(
            "invalid ResourceType '{resource_type}'"
        )));
    }
    // A container id: the container first (SystemNotFound, InvalidState), then only
    // ContainerConstraints is accepted.
    if ctx.container_id != crate::NULL_CONTAINER_ID {
        host.container(&ctx.container_id)?;
        if resource_type != ResourceType::ContainerConstraints {
            return Err(Error::Invalid(format!(
                "the ResourceType \"{resource_type}\" is not supported for containers"
            )));
        }
    }
    enforce(bridge, "modify settings")?;
    // The reference's error for a RequestType a resource does not take (E_FAIL).
    let bad_request = || {
        Err(Error::Invalid(format!(
            "the RequestType \"{rt}\" is not supported"
        )))
    };
    let Some(settings) = req.request.settings else {
        if resource_type == ResourceType::PodCgroupMemoryLimit {
            if rt != ModifyRequestType::Update {
                return bad_request();
            }
            host.update_pods_limit()?;
            return Ok(ok(ctx));
        }
        return Err(Error::wrap(
            hr::INVALID_JSON,
            format!("ModifySettings {resource_type} has no Settings"),
        ));
    };
    let add = matches!(rt, ModifyRequestType::Add);
    let remove = matches!(rt, ModifyRequestType::Remove);
    match settings {
        ResourceSettings::CombinedLayers(c) => {
            let root = PathBuf::from(&c.container_root_path);
            if c.container_root_path.is_empty() {
                return Err(Error::Invalid("ContainerRootPath is empty".into()));
            }
            if add {
                let layers: Vec<PathBuf> =
                    c.layers.iter().map(|l| PathBuf::from(&l.path)).collect();
                let scratch = (!c.scratch_path.is_empty()).then(|| PathBuf::from(&c.scratch_path));
                storage::mount_overlay(&root, &layers, scratch.as_deref())?;
                host.track_mount(root);
            } else if remove {
                storage::unmount_overlay(&root)?;
                host.untrack_mount(&root);
            } else {
                return bad_request();
            }
        }
        ResourceSettings::MappedVirtualDisk(d) => {
            if add {
                let path = PathBuf::from(&d.mount_path);
                storage::mount_scsi(&ScsiMount {
                    mount_path: d.mount_path,
                    controller: d.controller,
                    lun: d.lun,
                    partition: d.partition,
                    read_only: d.read_only,
                    block_dev: d.block_dev,
                    filesystem: d.filesystem,
                    options: d.options,
                    encrypted: d.encrypted,
                    ensure_filesystem: d.ensure_filesystem,
                })?;
                if !d.block_dev && !path.as_os_str().is_empty() {
                    host.track_mount(path);
                }
            } else if remove {
                storage::unmount_path(&d.mount_path)?;
                host.untrack_mount(std::path::Path::new(&d.mount_path));
            } else {
                return bad_request();
            }
        }
        ResourceSettings::ScsiDevice(d) => {
            if !remove {
                return bad_request();
            }
            storage::remove_scsi_device(d.controller, d.lun)?;
        }
        ResourceSettings::MappedDirectory(d) => {
            if add {
                let port = u32::try_from(d.port)
                    .map_err(|_| Error::Invalid(format!("invalid port {}", d.port)))?;
                storage::mount_plan9(
                    host.transport(),
                    &d.mount_path,
                    port,
                    &d.share_name,
                    d.read_only,
                )?;
            } else if remove {
                storage::unmount_path(&d.mount_path)?;
            } else {
                return bad_request();
            }
        }
        ResourceSettings::VPMemDevice(d) => {
            if add {
                storage::mount_vpmem(d.device_number, &d.mount_path, d.mapping_info.is_some())?;
                host.track_mount(PathBuf::from(&d.mount_path));
            } else if remove {
                storage::unmount_path(&d.mount_path)?;
                host.untrack_mount(std::path::Path::new(&d.mount_path));
            } else {
                return bad_request();
            }
        }
        ResourceSettings::Network(n) => {
            if add {
                host.networks().add_adapter(
                    host.reaper(),
                    Adapter {
                        namespace_id: n.namespace_id,
                        id: n.id,
                        mac_address: n.mac_address,
                        dns_suffix: n.dns_suffix,
                        dns_server_list: n.dns_server_list,
                        encap_overhead: n.encap_overhead,
                        vpci_assigned: n.vpci_assigned,
                        ip_configs: n
                            .ip_configs
                            .into_iter()
                            .map(|i| IpConfig {
                                ip_address: i.ip_address,
                                prefix_length: i.prefix_length,
                            })
                            .collect(),
                        routes: n
                            .routes
                            .into_iter()
                            .map(|r| Route {
                                next_hop: r.next_hop,
                                destination_prefix: r.destination_prefix,
                                metric: r.metric,
                            })
                            .collect(),
                        policy_based_routing: n.policy_based_routing,
                        enable_low_metric: n.enable_low_metric,
                    },
                )?;
            } else if remove {
                host.networks().remove_adapter(&n.namespace_id, &n.id);
            } else {
                return bad_request();
            }
        }
        ResourceSettings::ContainerConstraints(c) => {
            // The reference looks the container up by the request's id: for the null id
            // that is SystemNotFound.
            host.update_constraints(&ctx.container_id, &c.linux)?;
        }
        ResourceSettings::VPCIDevice(_)
        | ResourceSettings::SecurityPolicy(_)
        | ResourceSettings::SecurityPolicyFragment(_) => {
            return Err(Error::wrap(
                hr::NOT_IMPL,
                format!(
                    "ModifySettings {} is not implemented by this GCS",
                    req.request.resource_type
                ),
            ))
        }
        ResourceSettings::Other(_) => {
            // Only PodCgroupMemoryLimit gets here (unknown types were refused above); its
            // settings are ignored.
            if rt != ModifyRequestType::Update {
                return bad_request();
            }
            host.update_pods_limit()?;
        }
    }
    Ok(ok(ctx))
}
