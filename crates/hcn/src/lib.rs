//! Host networking for containers: the reference's `hcn` package (HCN v2) and its HNS v1 API
//! (hcs-hcn-api.md §4, §5, §2), over one backend trait.
//!
//! * [`schema`]: the HCN v2 documents (networks, endpoints, namespaces, load balancers, SDN
//!   routes, every policy and settings type, the query and modify requests), with Go's JSON
//!   rules; [`v1`]: the HNS v1 documents and policies.
//! * [`Hcn`]: every `hcn` function (list/get/create/modify/delete of each entity, namespace
//!   attach/detach, `AddLoadBalancer`, `AddRoute`, policies, globals and the `XxxSupported()`
//!   checks); [`v1::Hns`]: every HNS v1 function.
//! * [`support`]: the version-gated feature table; [`error`]: `HcnError`, the typed
//!   not-found errors and the predicates; [`hresult`]: the `HCN_E_*` codes.
//! * [`api::HcnApi`]: the backend boundary, the shape of computenetwork.dll plus `HNSCall`.
//!   Backends: `computenetwork.dll` and `vmcompute.dll!HNSCall` on Windows (`sys::windows`,
//!   loaded lazily), [`hnsd_client::HnsdClient`] (hnsd over a Unix socket, the same
//!   documents and HRESULTs) elsewhere, and the in-process engine (`engine`, feature
//!   `engine`) for tests that need no socket, no root and no Windows.
//!
//! # Selecting hnsd
//!
//! Off Windows, [`Hcn::system`] talks to the hnsd whose socket the environment variable
//! `HNSD_SOCKET` names, or `/run/hnsd/hnsd.sock`. A test that starts its own hnsd
//! (`hnsd::testing::TestHnsd`) either sets `HNSD_SOCKET` for the processes it runs (CNI
//! plugins) or builds its client with `Hcn::new(Arc::new(HnsdClient::new(path)))`.
//!
//! # Example: a NAT network, an endpoint, attached to a namespace
//!
//! ```no_run
//! use hcn::schema::*;
//! # fn main() -> hcn::Result<()> {
//! let hcn = hcn::Hcn::system()?;
//! let network = hcn.create_network(&HostComputeNetwork {
//!     name: "nat".into(),
//!     network_type: NetworkType::Nat,
//!     ipams: vec![Ipam {
//!         ipam_type: IpamType::Static,
//!         subnets: vec![Subnet {
//!             ip_address_prefix: "10.88.0.0/24".into(),
//!             routes: vec![Route {
//!                 next_hop: "10.88.0.1".into(),
//!                 destination_prefix: "0.0.0.0/0".into(),
//!                 ..Default::default()
//!             }],
//!             ..Default::default()
//!         }],
//!     }],
//!     schema_version: V2_SCHEMA_VERSION,
//!     ..Default::default()
//! })?;
//! let endpoint = hcn.create_endpoint(&network, &HostComputeEndpoint {
//!     name: "web_nat".into(),
//!     schema_version: V2_SCHEMA_VERSION,
//!     ..Default::default()
//! })?;
//! let namespace = hcn.create_namespace(&hcn::new_namespace(NamespaceType::Host))?;
//! hcn.add_namespace_endpoint(&namespace.id, &endpoint.id)?;
//! println!("{}", endpoint.ip_configurations[0].ip_address);
//! # Ok(()) }
//! ```

pub mod api;
mod client;
#[cfg(feature = "engine")]
pub mod engine;
pub mod error;
#[cfg(unix)]
pub mod hnsd_client;
pub mod hresult;
mod raw;
pub mod schema;
pub mod support;
pub mod sys;
pub mod v1;
pub mod wire;

pub use client::*;
pub use error::{Error, HcnError, Result};
pub use raw::RawJson;
