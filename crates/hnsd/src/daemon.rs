//! An hnsd instance: the engine (state under a directory, reconciled with the kernel on
//! start) served on a socket.

use std::path::PathBuf;
use std::sync::Arc;

use hcn::engine::{Dataplane, Engine, EngineConfig, NullDataplane};

use crate::dataplane::LinuxDataplane;
use crate::server::Server;

/// Where hnsd listens by default (`hcn::hnsd_client::DEFAULT_SOCKET`).
pub const DEFAULT_SOCKET: &str = hcn::hnsd_client::DEFAULT_SOCKET;
/// Where hnsd keeps its state by default.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/hnsd";
/// Where hnsd pins the network namespaces it creates by default (as `ip netns` does).
pub const DEFAULT_NETNS_DIR: &str = "/run/netns";

/// How to run an instance.
#[derive(Debug, Clone)]
pub struct Config {
    /// The socket.
    pub socket: PathBuf,
    /// The state directory (its path also names the instance's links and nft table).
    pub state_dir: PathBuf,
    /// Where created network namespaces are pinned.
    pub netns_dir: PathBuf,
    /// The network namespace the dataplane works in (`None`: the process's).
    pub netns: Option<PathBuf>,
    /// Whether to touch the kernel at all (`false`: objects only).
    pub dataplane: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            socket: DEFAULT_SOCKET.into(),
            state_dir: DEFAULT_STATE_DIR.into(),
            netns_dir: DEFAULT_NETNS_DIR.into(),
            netns: None,
            dataplane: true,
        }
    }
}

/// Why an instance could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The state could not be loaded or reconciled.
    #[error("hnsd state: {0}")]
    State(String),
    /// The socket could not be bound.
    #[error("hnsd socket {path}: {source}")]
    Socket {
        /// The socket path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// A running instance.
#[derive(Debug)]
pub struct Daemon {
    engine: Arc<Engine>,
    server: Server,
    dataplane: Option<Arc<LinuxDataplane>>,
}

impl Daemon {
    /// Loads the state, reconciles the kernel and starts serving.
    pub fn start(config: &Config) -> Result<Self, StartError> {
        let tag = hcn::engine::link_tag_for(&config.state_dir);
        let linux = config.dataplane.then(|| {
            Arc::new(LinuxDataplane::new(
                &tag,
                config.netns.clone(),
                config.netns_dir.clone(),
            ))
        });
        let dataplane: Arc<dyn Dataplane> = match &linux {
            Some(l) => l.clone(),
            None => Arc::new(NullDataplane),
        };
        let engine = Engine::open(EngineConfig {
            state_dir: Some(config.state_dir.clone()),
            dataplane,
            link_tag: tag,
        })
        .inspect_err(|_| {
            if let Some(l) = &linux {
                l.stop();
            }
        })
        .map_err(StartError::State)?;
        let server = Server::start(engine.clone(), &config.socket).map_err(|source| {
            if let Some(l) = &linux {
                l.stop();
            }
            StartError::Socket {
                path: config.socket.clone(),
                source,
            }
        })?;
        tracing::info!(socket = %config.socket.display(), state = %config.state_dir.display(),
            tag = %engine.tag(), "hnsd serving");
        Ok(Self {
            engine,
            server,
            dataplane: linux,
        })
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Stops serving (the state and the kernel objects stay, as HNS's do across a service
    /// restart).
    pub fn stop(mut self) {
        self.server.stop();
        // The dataplane's thread leaves hnsd's namespace now, not when the last reference
        // to the engine goes (a test may remove that namespace next).
        if let Some(l) = &self.dataplane {
            l.stop();
        }
    }
}
