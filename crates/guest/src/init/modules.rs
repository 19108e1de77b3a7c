//! Loading the kernel modules shipped in the root filesystem (§5.3 step 9, the `KMOD`
//! build's walk over `/lib/modules/$(uname -r)`).
//!
//! The boot-files builder puts only the modules the VM needs (virtio transport, vsock,
//! SCSI disks, ext4, overlayfs) under `/lib/modules/<release>`, with [`LOAD_ORDER`]
//! listing them dependencies first. There is no `modprobe` in the guest: the listed
//! modules are loaded in that order, the others after them, and whatever fails (a module
//! whose symbols are not there yet) is retried in further passes until one loads nothing
//! new, so a root filesystem without the list still works.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The file, in the release dir, listing module paths in load order.
pub const LOAD_ORDER: &str = "modules.load";

/// Loads one module file.
pub trait Loader {
    /// Loads `path`; `Ok` also when it is already loaded.
    fn load(&self, path: &Path) -> std::io::Result<()>;
}

/// `finit_module(2)`.
#[derive(Debug, Clone, Copy)]
pub struct FinitModule;

impl Loader for FinitModule {
    fn load(&self, path: &Path) -> std::io::Result<()> {
        let f = File::open(path)?;
        // SAFETY: finit_module(2) on an open fd with an empty NUL-terminated parameter string.
        let rc = unsafe { libc::syscall(libc::SYS_finit_module, f.as_raw_fd(), c"".as_ptr(), 0) };
        if rc == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EEXIST) {
            Ok(())
        } else {
            Err(e)
        }
    }
}

/// What [`load_all`] did.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Modules loaded, in load order.
    pub loaded: Vec<PathBuf>,
    /// Modules that never loaded, with their last error.
    pub failed: Vec<(PathBuf, std::io::Error)>,
}

/// `/lib/modules/<running release>`.
pub fn release_dir() -> PathBuf {
    // SAFETY: utsname is plain data; uname(2) fills it.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid utsname for uname(2) to fill.
    unsafe { libc::uname(&mut u) };
    // SAFETY: uname(2) NUL-terminates `release`.
    let rel = unsafe { std::ffi::CStr::from_ptr(u.release.as_ptr()) };
    Path::new("/lib/modules").join(rel.to_string_lossy().as_ref())
}

/// Every `*.ko` under `dir`, sorted.
pub fn find_modules(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let rd = std::fs::read_dir(&d).map_err(|e| Error::path("read", &d, e))?;
        for e in rd {
            let e = e.map_err(|e| Error::path("read", &d, e))?;
            let t = e
                .file_type()
                .map_err(|err| Error::path("stat", &e.path(), err))?;
            if t.is_dir() {
                stack.push(e.path());
            } else if e.path().extension().is_some_and(|x| x == "ko") {
                out.push(e.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Loads every module under `dir` in passes until no pass makes progress. A missing `dir`
/// loads nothing.
pub fn load_all(dir: &Path, loader: &dyn Loader) -> Result<Loaded> {
    let mut r = Loaded::default();
    if !dir.is_dir() {
        return Ok(r);
    }
    let mut found = find_modules(dir)?;
    let list = dir.join(LOAD_ORDER);
    let listed = match std::fs::read_to_string(&list) {
        Ok(l) => l,
        // No list: every module is loaded in passes (see the module docs).
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::path("read", &list, e)),
    };
    let mut ordered: Vec<PathBuf> = Vec::new();
    for l in listed.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let p = dir.join(l);
        if let Some(i) = found.iter().position(|f| *f == p) {
            ordered.push(found.remove(i));
        }
    }
    ordered.extend(found);
    let mut pending: Vec<(PathBuf, Option<std::io::Error>)> =
        ordered.into_iter().map(|p| (p, None)).collect();
    loop {
        let before = pending.len();
        let mut next = Vec::new();
        for (p, _) in pending {
            match loader.load(&p) {
                Ok(()) => r.loaded.push(p),
                Err(e) => next.push((p, Some(e))),
            }
        }
        pending = next;
        if pending.is_empty() || pending.len() == before {
            break;
        }
    }
    r.failed = pending
        .into_iter()
        .map(|(p, e)| (p, e.unwrap_or_else(|| std::io::Error::other("not tried"))))
        .collect();
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// Loads a module only after its dependencies (by file stem).
    struct Fake {
        deps: Vec<(&'static str, &'static str)>,
        loaded: RefCell<Vec<String>>,
    }

    impl Loader for Fake {
        fn load(&self, path: &Path) -> std::io::Result<()> {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let ok = self
                .deps
                .iter()
                .filter(|(m, _)| *m == name)
                .all(|(_, d)| self.loaded.borrow().iter().any(|l| l == d));
            if name == "broken" || !ok {
                return Err(std::io::Error::from_raw_os_error(libc::ENOENT));
            }
            self.loaded.borrow_mut().push(name);
            Ok(())
        }
    }

    #[test]
    fn dependencies_load_first_whatever_the_order() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "a/vsock_transport.ko",
            "b/vsock.ko",
            "a/virtio.ko",
            "c/broken.ko",
            "c/notes.txt",
        ] {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"").unwrap();
        }
        let fake = Fake {
            deps: vec![("vsock_transport", "vsock"), ("vsock_transport", "virtio")],
            loaded: RefCell::new(Vec::new()),
        };
        let r = load_all(dir.path(), &fake).unwrap();
        assert_eq!(
            *fake.loaded.borrow(),
            ["virtio", "vsock", "vsock_transport"]
        );
        assert_eq!(r.loaded.len(), 3);
        assert_eq!(r.failed.len(), 1);
        assert!(r.failed[0].0.ends_with("c/broken.ko"));
    }

    #[test]
    fn the_listed_order_comes_first() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["a/top.ko", "z/base.ko", "m/other.ko"] {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"").unwrap();
        }
        std::fs::write(
            dir.path().join(LOAD_ORDER),
            "z/base.ko\na/top.ko\nmissing.ko\n",
        )
        .unwrap();
        let fake = Fake {
            deps: vec![("top", "base")],
            loaded: RefCell::new(Vec::new()),
        };
        let r = load_all(dir.path(), &fake).unwrap();
        assert_eq!(*fake.loaded.borrow(), ["base", "top", "other"]);
        assert!(r.failed.is_empty());
    }

    #[test]
    fn a_missing_directory_loads_nothing() {
        let r = load_all(Path::new("/nonexistent/modules"), &FinitModule).unwrap();
        assert!(r.loaded.is_empty() && r.failed.is_empty());
    }
}
