//! The HCN v2 documents (hcs-hcn-api.md §5): networks, endpoints, namespaces, load
//! balancers, SDN routes, their policies, the query and the modify requests.
//!
//! Every type reproduces the reference's Go JSON exactly: the same keys (`ID` next to
//! `IpAddressPrefix`), Go's `omitempty` (zero scalars and empty lists dropped, structs held by
//! value such as `Dns`, `MacPool`, `Health` and `SchemaVersion` always emitted) and field
//! order. Raw JSON members (`Settings`, subnet `Policies`, namespace resource `Data`) are
//! [`RawJson`], kept byte for byte. Decoding accepts unknown keys and reads `null` as absent.

mod common;
mod endpoint;
mod loadbalancer;
mod namespace;
mod network;
mod policy;
mod query;
mod route;

pub use common::*;
pub use endpoint::*;
pub use loadbalancer::*;
pub use namespace::*;
pub use network::*;
pub use policy::*;
pub use query::*;
pub use route::*;

pub use crate::raw::RawJson;

#[cfg(test)]
mod tests;
