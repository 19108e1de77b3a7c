//! The dataplane's worker: one thread that lives in hnsd's network namespace, with a
//! current-thread tokio runtime and one rtnetlink connection kept open, running the
//! dataplane's jobs one at a time.
//!
//! Why: each job used to start a thread (to enter hnsd's namespace), a runtime and a netlink
//! socket, and a second thread for the endpoint's namespace. Now the thread and the socket
//! of hnsd's namespace last, and a socket in an endpoint's namespace is opened by entering
//! it just long enough to create the socket (a socket stays in the namespace it was created
//! in) and coming straight back. Only this thread ever changes namespace, and jobs run in
//! order, so a deletion queued before an attach is done before it. `nft`, spawned from
//! here, inherits hnsd's namespace.

use std::collections::HashMap;
use std::fs::File;
use std::future::Future;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Mutex;
use std::thread::JoinHandle;

use hcn::engine::dataplane::RulesSpec;
use nix::sched::{setns, CloneFlags};

type Job = Box<dyn FnOnce(&mut Ctx) + Send>;

/// What a job works with.
pub struct Ctx {
    rt: tokio::runtime::Runtime,
    /// The netlink handle of hnsd's namespace.
    pub home: rtnetlink::Handle,
    home_ns: File,
    home_conn: tokio::task::JoinHandle<()>,
    /// Bridge indexes by name (a cache: a stale entry makes a job look the bridge up again).
    pub bridges: HashMap<String, u32>,
    /// The rules the instance's nft table holds, when known.
    pub rules: Option<RulesSpec>,
    /// Set when the thread could not return to hnsd's namespace: it must not do more work.
    lost: Option<String>,
}

/// A netlink connection in another namespace, closed when dropped.
pub struct Foreign<'a> {
    /// Its handle.
    pub handle: rtnetlink::Handle,
    task: Option<tokio::task::JoinHandle<()>>,
    rt: &'a tokio::runtime::Runtime,
}

impl Foreign<'_> {
    /// Runs `f` to completion on the worker's runtime.
    pub fn block<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }
}

impl Drop for Foreign<'_> {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            // Drive the abort now so the socket (which pins the namespace) closes now.
            match self.rt.block_on(task) {
                Ok(()) => {}
                Err(e) if e.is_cancelled() => {} // what abort() asked for
                Err(e) => tracing::warn!(error = %e, "a netlink connection task failed"),
            }
        }
    }
}

impl Ctx {
    /// Runs `f` to completion on the worker's runtime.
    pub fn block<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// A netlink connection in the network namespace open as `ns`.
    pub fn connect_in(&mut self, ns: &File) -> Result<Foreign<'_>, String> {
        if let Some(why) = &self.lost {
            return Err(why.clone());
        }
        setns(ns.as_fd(), CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("enter the endpoint's network namespace: {e}"))?;
        let made = {
            let _in_rt = self.rt.enter();
            rtnetlink::new_connection()
        };
        if let Err(e) = setns(self.home_ns.as_fd(), CloneFlags::CLONE_NEWNET) {
            let why = format!("the dataplane thread cannot return to hnsd's namespace: {e}");
            tracing::error!("{why}");
            self.lost = Some(why.clone());
            return Err(why);
        }
        let (conn, handle, _) = made.map_err(|e| format!("netlink socket: {e}"))?;
        let task = self.rt.spawn(conn);
        Ok(Foreign {
            handle,
            task: Some(task),
            rt: &self.rt,
        })
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        self.home_conn.abort();
    }
}

/// The worker's queue.
#[derive(Debug, Default)]
enum Queue {
    #[default]
    NotStarted,
    Running(mpsc::Sender<Job>),
    Stopped,
}

/// The worker thread and its queue.
#[derive(Debug, Default)]
pub struct Worker {
    queue: Mutex<Queue>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

fn start_ctx(netns: Option<&Path>) -> Result<Ctx, String> {
    let home_ns = match netns {
        Some(p) => {
            let f = File::open(p).map_err(|e| format!("open {}: {e}", p.display()))?;
            setns(f.as_fd(), CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("setns {}: {e}", p.display()))?;
            f
        }
        None => File::open("/proc/thread-self/ns/net")
            .map_err(|e| format!("open the thread's network namespace: {e}"))?,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let (conn, home, _) = {
        let _in_rt = rt.enter();
        rtnetlink::new_connection().map_err(|e| format!("netlink socket: {e}"))?
    };
    let home_conn = rt.spawn(conn);
    Ok(Ctx {
        rt,
        home,
        home_ns,
        home_conn,
        bridges: HashMap::new(),
        rules: None,
        lost: None,
    })
}

impl Worker {
    fn sender(&self, netns: &Option<PathBuf>) -> Result<mpsc::Sender<Job>, String> {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        match &*q {
            Queue::Running(tx) => return Ok(tx.clone()),
            Queue::Stopped => return Err("the dataplane worker has stopped".into()),
            Queue::NotStarted => {}
        }
        let (tx, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel();
        let netns = netns.clone();
        let thread = std::thread::Builder::new()
            .name("hnsd-dataplane".into())
            .spawn(move || {
                let mut ctx = match start_ctx(netns.as_deref()) {
                    Ok(c) => {
                        if ready_tx.send(Ok(())).is_err() {
                            return; // the starter is gone
                        }
                        c
                    }
                    Err(e) => {
                        // The starter reports it; if it is gone there is no one to tell.
                        if ready_tx.send(Err(e)).is_err() {
                            tracing::error!("the dataplane worker failed to start");
                        }
                        return;
                    }
                };
                for job in rx {
                    job(&mut ctx);
                }
            })
            .map_err(|e| format!("start the dataplane thread: {e}"))?;
        let started = ready_rx
            .recv()
            .map_err(|_| "the dataplane thread died starting".to_string())
            .and_then(|r| r);
        if let Err(e) = started {
            if thread.join().is_err() {
                tracing::error!("the dataplane thread panicked");
            }
            return Err(e);
        }
        *self.thread.lock().unwrap_or_else(|p| p.into_inner()) = Some(thread);
        *q = Queue::Running(tx.clone());
        Ok(tx)
    }

    /// Runs `f` on the worker (started on first use, in network namespace `netns`, `None`:
    /// the process's) and returns its result.
    pub fn call<T: Send + 'static>(
        &self,
        netns: &Option<PathBuf>,
        f: impl FnOnce(&mut Ctx) -> Result<T, String> + Send + 'static,
    ) -> Result<T, String> {
        let tx = self.sender(netns)?;
        let (reply_tx, reply_rx) = mpsc::channel();
        let job: Job = Box::new(move |ctx: &mut Ctx| {
            let out = match &ctx.lost {
                Some(why) => Err(why.clone()),
                None => f(ctx),
            };
            if reply_tx.send(out).is_err() {
                tracing::warn!("a dataplane caller went away before its reply");
            }
        });
        tx.send(job)
            .map_err(|_| "the dataplane worker has stopped".to_string())?;
        reply_rx
            .recv()
            .map_err(|_| "the dataplane worker died during a job".to_string())?
    }

    /// Stops the worker after the jobs queued so far (its namespace and sockets are
    /// released when this returns).
    pub fn stop(&self) {
        // Dropping the sender ends the thread's loop once the queue is empty.
        *self.queue.lock().unwrap_or_else(|p| p.into_inner()) = Queue::Stopped;
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            if t.join().is_err() {
                tracing::error!("the dataplane thread panicked");
            }
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop();
    }
}
