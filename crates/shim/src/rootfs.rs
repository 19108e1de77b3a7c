//! Maps the rootfs mounts containerd gives in Create onto a sandbox's layers and scratch.
//!
//! containerd's snapshotter prepared the container's filesystem as mounts, expecting the
//! runtime to mount them. A utility VM cannot mount host overlays; it builds its own overlay
//! from layer directories (CombinedLayers). So the mounts are taken apart:
//!
//! * `overlay` with `lowerdir=A:B` (topmost first) → layers `[A, B]` in that order;
//!   `upperdir`/`workdir` (an active snapshot) → the container's writable layer: the
//!   sandbox builds its overlay with exactly that upper and work dir, so what the container
//!   writes lands in containerd's snapshot (`ctr snapshot diff`, commit and a restart see
//!   it). The GCS expects `<scratch>/upper` and `<scratch>/work`; the scratch is a
//!   directory in the bundle whose two entries are symlinks to the snapshot's dirs.
//! * `bind` read-only (a view, or a snapshot with one layer) → that one layer.
//! * `bind` read-write (a snapshot without parents: `<snap>/fs`) → the writable layer is
//!   `<snap>/fs` itself with the snapshot's `<snap>/work` (the overlay snapshotter's layout)
//!   over an empty layer; without a sibling `work` dir it becomes a read-only layer under
//!   the sandbox's own scratch, and writes do not reach the directory (logged).
//! * no mounts (`ctr run --rootfs`, a bundle with its own rootfs) → `root.path` as the
//!   one layer, under the sandbox's scratch.
//!
//! Anything else (several mounts, block devices, other filesystem types) is refused by
//! name.

use std::path::{Path, PathBuf};

pub use containerd_shim_protos::types::mount::Mount;

use crate::error::{Error, Result};

/// A container's root filesystem as host directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rootfs {
    /// Read-only layers, topmost first (overlayfs `lowerdir` order).
    pub layers: Vec<PathBuf>,
    /// The writable layer: containerd's upper and work directories.
    pub writable: Option<Writable>,
}

/// containerd's writable snapshot directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Writable {
    /// The overlay upper directory (the snapshot's `fs`).
    pub upper: PathBuf,
    /// The overlay work directory (same filesystem as `upper`).
    pub work: PathBuf,
}

/// A task's root filesystem, in the form its kind of container takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskRootfs {
    /// A Linux container's layers and writable snapshot (host directories).
    Linux(Rootfs),
    /// A Windows container's layer folders (`windows-layer` mounts or `layerFolders`).
    Windows(crate::wcow::layers::WcowLayers),
}

/// The name of the scratch directory the shim makes in the bundle.
pub const SCRATCH_DIR: &str = "scratch";
/// The name of the empty layer under a writable bind rootfs.
pub const EMPTY_LAYER_DIR: &str = "empty-layer";

fn absolute(what: &str, p: &str) -> Result<PathBuf> {
    let path = PathBuf::from(p);
    if !path.is_absolute()
        || path
            .components()
            .any(|c| c == std::path::Component::ParentDir)
    {
        return Err(Error::InvalidArgument(format!(
            "rootfs {what} {p:?} is not a clean absolute path"
        )));
    }
    Ok(path)
}

/// Parses containerd's rootfs mounts (see the module docs). `spec_root` is the spec's
/// `root.path`, used when there are no mounts (relative to `bundle`).
pub fn from_mounts(mounts: &[Mount], bundle: &Path, spec_root: Option<&str>) -> Result<Rootfs> {
    match mounts {
        [] => {
            let root = spec_root.filter(|r| !r.is_empty()).ok_or_else(|| {
                Error::InvalidArgument("no rootfs mounts and no root.path in the spec".into())
            })?;
            let path = bundle.join(root);
            if !path.is_dir() {
                return Err(Error::InvalidArgument(format!(
                    "root.path {} is not a directory",
                    path.display()
                )));
            }
            Ok(Rootfs {
                layers: vec![path],
                writable: None,
            })
        }
        [m] if m.type_ == "overlay" => overlay(m),
        [m] if m.type_ == "bind" || m.type_ == "rbind" => bind(m),
        [m] => Err(Error::InvalidArgument(format!(
            "rootfs mount of type {:?} from {:?} is not supported: use the overlayfs or native snapshotter",
            m.type_, m.source
        ))),
        more => Err(Error::InvalidArgument(format!(
            "{} rootfs mounts given; exactly one is supported",
            more.len()
        ))),
    }
}

fn overlay(m: &Mount) -> Result<Rootfs> {
    let mut layers = Vec::new();
    let (mut upper, mut work) = (None, None);
    for o in &m.options {
        if let Some(v) = o.strip_prefix("lowerdir=") {
            for l in v.split(':').filter(|l| !l.is_empty()) {
                layers.push(absolute("lowerdir", l)?);
            }
        } else if let Some(v) = o.strip_prefix("upperdir=") {
            upper = Some(absolute("upperdir", v)?);
        } else if let Some(v) = o.strip_prefix("workdir=") {
            work = Some(absolute("workdir", v)?);
        }
        // Other options (index=off, userxattr, volatile) tune the host mount; the
        // sandbox's overlay has its own.
    }
    if layers.is_empty() {
        return Err(Error::InvalidArgument(
            "overlay rootfs mount has no lowerdir".into(),
        ));
    }
    let writable = match (upper, work) {
        (Some(upper), Some(work)) => Some(Writable { upper, work }),
        (None, None) => None,
        _ => {
            return Err(Error::InvalidArgument(
                "overlay rootfs mount has an upperdir without a workdir (or the reverse)".into(),
            ))
        }
    };
    Ok(Rootfs { layers, writable })
}

fn bind(m: &Mount) -> Result<Rootfs> {
    let source = absolute("bind source", &m.source)?;
    if m.options.iter().any(|o| o == "ro") {
        return Ok(Rootfs {
            layers: vec![source],
            writable: None,
        });
    }
    let work = source.parent().map(|p| p.join("work"));
    match work {
        Some(work) if work.is_dir() => Ok(Rootfs {
            layers: Vec::new(),
            writable: Some(Writable {
                upper: source,
                work,
            }),
        }),
        _ => {
            tracing::warn!(
                source = %source.display(),
                "writable bind rootfs without a sibling work dir: the container's writes stay in the sandbox"
            );
            Ok(Rootfs {
                layers: vec![source],
                writable: None,
            })
        }
    }
}

impl Rootfs {
    /// The layers for a sandbox whose scratch is its own (a utility VM): the read-only
    /// layers, under the writable snapshot's upper directory when that holds anything
    /// (it then is the topmost layer). A writable snapshot without layers (a bind of
    /// `<snap>/fs`) is its upper directory alone.
    pub fn vm_layers(&self) -> Result<Vec<PathBuf>> {
        let mut layers = Vec::new();
        if let Some(w) = &self.writable {
            let mut entries = std::fs::read_dir(&w.upper)
                .map_err(|e| Error::io(format!("read {}", w.upper.display()), e))?;
            if entries.next().is_some() || self.layers.is_empty() {
                layers.push(w.upper.clone());
            }
        }
        layers.extend(self.layers.iter().cloned());
        Ok(layers)
    }

    /// Prepares the rootfs for a sandbox under `bundle`: for a writable snapshot, the
    /// scratch dir with `upper`/`work` links (returned), and an empty layer when the
    /// snapshot has no read-only layers. Returns the layers and the scratch dir.
    pub fn prepare(&self, bundle: &Path) -> Result<(Vec<PathBuf>, Option<PathBuf>)> {
        let mut layers = self.layers.clone();
        let Some(w) = &self.writable else {
            return Ok((layers, None));
        };
        if layers.is_empty() {
            let empty = bundle.join(EMPTY_LAYER_DIR);
            create_dir(&empty)?;
            layers.push(empty);
        }
        let scratch = bundle.join(SCRATCH_DIR);
        create_dir(&scratch)?;
        for (name, target) in [("upper", &w.upper), ("work", &w.work)] {
            let link = scratch.join(name);
            match std::fs::read_link(&link) {
                Ok(existing) if &existing == target => continue,
                Ok(_) => std::fs::remove_file(&link)
                    .map_err(|e| Error::io(format!("remove {}", link.display()), e))?,
                Err(_) => {}
            }
            symlink(target, &link)?;
        }
        Ok((layers, Some(scratch)))
    }
}

fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> Result<()> {
    std::os::unix::fs::symlink(target, link).map_err(|e| {
        Error::io(
            format!("link {} to {}", link.display(), target.display()),
            e,
        )
    })
}

#[cfg(windows)]
fn symlink(target: &Path, link: &Path) -> Result<()> {
    std::os::windows::fs::symlink_dir(target, link).map_err(|e| {
        Error::io(
            format!("link {} to {}", link.display(), target.display()),
            e,
        )
    })
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn mount(t: &str, src: &str, opts: &[&str]) -> Mount {
        Mount {
            type_: t.into(),
            source: src.into(),
            options: opts.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn overlay_layers_keep_lowerdir_order_and_the_upper_is_writable() {
        let m = mount(
            "overlay",
            "overlay",
            &[
                "index=off",
                "workdir=/s/3/work",
                "upperdir=/s/3/fs",
                "lowerdir=/s/2/fs:/s/1/fs",
            ],
        );
        let r = from_mounts(&[m], Path::new("/b"), None).unwrap();
        assert_eq!(
            r.layers,
            [PathBuf::from("/s/2/fs"), PathBuf::from("/s/1/fs")]
        );
        assert_eq!(
            r.writable,
            Some(Writable {
                upper: "/s/3/fs".into(),
                work: "/s/3/work".into()
            })
        );
    }

    #[test]
    fn bad_mounts_are_refused_by_name() {
        let e = from_mounts(&[mount("ext4", "/dev/sda", &[])], Path::new("/b"), None).unwrap_err();
        assert!(e.to_string().contains("ext4"), "{e}");
        assert!(from_mounts(
            &[mount("overlay", "overlay", &["lowerdir=/a/../etc"])],
            Path::new("/b"),
            None
        )
        .is_err());
        assert!(from_mounts(
            &[mount("overlay", "overlay", &["upperdir=/u", "lowerdir=/l"])],
            Path::new("/b"),
            None
        )
        .is_err());
        assert!(from_mounts(
            &[mount("bind", "/a", &["ro"]), mount("bind", "/b", &["ro"])],
            Path::new("/b"),
            None
        )
        .is_err());
        assert!(from_mounts(&[], Path::new("/nonexistent-bundle"), Some("rootfs")).is_err());
    }

    #[test]
    fn writable_bind_uses_the_snapshot_work_dir_over_an_empty_layer() {
        let snap = tempfile::tempdir().unwrap();
        std::fs::create_dir(snap.path().join("fs")).unwrap();
        std::fs::create_dir(snap.path().join("work")).unwrap();
        let fs = snap.path().join("fs");
        let r = from_mounts(
            &[mount("bind", fs.to_str().unwrap(), &["rbind", "rw"])],
            Path::new("/b"),
            None,
        )
        .unwrap();
        assert!(r.layers.is_empty());
        let bundle = tempfile::tempdir().unwrap();
        let (layers, scratch) = r.prepare(bundle.path()).unwrap();
        assert_eq!(layers, [bundle.path().join(EMPTY_LAYER_DIR)]);
        let scratch = scratch.unwrap();
        assert_eq!(std::fs::read_link(scratch.join("upper")).unwrap(), fs);
        assert_eq!(
            std::fs::read_link(scratch.join("work")).unwrap(),
            snap.path().join("work")
        );
        // Idempotent.
        r.prepare(bundle.path()).unwrap();
        let ro = from_mounts(
            &[mount("bind", fs.to_str().unwrap(), &["rbind", "ro"])],
            Path::new("/b"),
            None,
        )
        .unwrap();
        assert_eq!(ro.layers, [fs]);
        assert!(ro.writable.is_none());
    }

    #[test]
    fn a_vm_gets_the_upper_dir_as_a_layer_only_when_it_holds_something() {
        let snap = tempfile::tempdir().unwrap();
        let upper = snap.path().join("fs");
        std::fs::create_dir(&upper).unwrap();
        let r = Rootfs {
            layers: vec![PathBuf::from("/l1"), PathBuf::from("/l0")],
            writable: Some(Writable {
                upper: upper.clone(),
                work: snap.path().join("work"),
            }),
        };
        assert_eq!(r.vm_layers().unwrap(), r.layers);
        std::fs::write(upper.join("f"), b"x").unwrap();
        assert_eq!(
            r.vm_layers().unwrap(),
            [upper.clone(), PathBuf::from("/l1"), PathBuf::from("/l0")]
        );
        let alone = Rootfs {
            layers: Vec::new(),
            writable: r.writable.clone(),
        };
        assert_eq!(alone.vm_layers().unwrap(), [upper]);
    }
}
