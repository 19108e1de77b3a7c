//! HCS JSON documents (schema v1 and v2) with serde; no OS code.
//!
//! This crate is the wire vocabulary shared by the HCS bindings, the bridge to the guest and
//! the shim. It compiles and tests on every platform (spec: `hcs-hcn-api.md` §3).
//!
//! # Layout
//!
//! * [`v1`]: schema 1.0 documents (`internal/hcs/schema1`): `ContainerConfig`, `ProcessConfig`,
//!   `ContainerProperties`, v1 statistics, `ResourceModificationRequestResponse`.
//! * [`v2`]: schema 2.x documents (`internal/hcs/schema2`), one module per concept: compute
//!   system, container, virtual machine, devices, storage, network, properties and statistics,
//!   processes, modify requests, and the smaller host-side types.
//! * [`version`]: `SchemaVersion` with the 1.0 / 2.1 / 2.5 constants, the Windows build numbers
//!   and the build gating (`determine_schema_version`, `is_supported`).
//! * [`json`]: decoding with Go's rules (case-insensitive keys, `null` as absent, the later of
//!   two spellings wins) and encoding with Go's string escapes when byte equality matters.
//! * [`go`]: the Go value rules: `omitempty` ([`go::GoEmpty`], [`go::is_empty`]), `time.Time`
//!   ([`go::GoTime`]), `guid.GUID` ([`go::Guid`]), `[]byte` ([`go::GoBytes`]), nil slices and
//!   `map[int]` keys. They are public so that other Go-JSON crates (HCN) can reuse them.
//!
//! # Go JSON rules reproduced
//!
//! * **Keys** are the Go field names unless a tag renames them; every field here names its key
//!   explicitly, including the odd ones (`ID` in v1 `Layer`, `SiloGuid`, `RuntimeOsType`,
//!   `LCOWMetrics`, `Ids`, `CreateInUtilityVM`).
//! * **Field order** is declaration order, as Go emits it; maps are `BTreeMap`s, so their keys
//!   come out sorted as Go sorts them (`map[int]` keys sorted as strings). Go `interface{}`
//!   fields are `serde_json::Value`, whose objects sort their keys; where the caller knows the
//!   payload type the field is a type parameter instead, so the payload keeps its own order.
//! * **`omitempty`** drops `0`, `false`, `""`, empty slices and maps and nil pointers
//!   (`Option::None`), but not a struct held by value: such structs are emitted even when
//!   empty (`{}`), e.g. v1 `Statistics.Memory` or a `time.Time`. Fields without `omitempty` are
//!   always emitted; a nil slice among them is `null`.
//! * **Go string types** (`type PathType string`) decode any string: known values are enum
//!   variants, anything else is kept in `Other`.
//! * **Decoding** accepts unknown keys everywhere. Through [`json::from_str`] it also matches
//!   keys case-insensitively and reads `null` as absent, as Go does; plain `serde_json` gives
//!   exact-key matching only.
//! * **`time.Time`** is an RFC 3339 string, zero value `0001-01-01T00:00:00Z`.
//!
//! # Examples
//!
//! Hot-adding a SCSI disk to a utility VM (`HcsModifyComputeSystem`); typed settings keep
//! Go's field order inside `Settings`:
//!
//! ```
//! use hcs_schema::v2::{resource_paths, Attachment, AttachmentType, ModifySettingRequest, RequestType};
//!
//! let request = ModifySettingRequest::host(
//!     RequestType::Add,
//!     resource_paths::scsi_attachment("0", 1),
//!     Attachment {
//!         attachment_type: AttachmentType::VirtualDisk,
//!         path: r"C:\c\scratch.vhdx".into(),
//!         ..Default::default()
//!     },
//! );
//! assert_eq!(
//!     hcs_schema::json::to_string(&request).unwrap(),
//!     r#"{"ResourcePath":"VirtualMachine/Devices/Scsi/0/Attachments/1","RequestType":"Add","Settings":{"Type":"VirtualDisk","Path":"C:\\c\\scratch.vhdx"}}"#
//! );
//! ```
//!
//! Reading a properties document the way Go would (any key case, `null` as absent):
//!
//! ```
//! use hcs_schema::v2::{Properties, State};
//!
//! let props: Properties =
//!     hcs_schema::json::from_str(r#"{"id":"c1","STATE":"Running","ProcessList":null}"#).unwrap();
//! assert_eq!(props.id, "c1");
//! assert_eq!(props.state, Some(State::Running));
//! assert!(props.process_list.is_empty());
//! ```
//!
//! Choosing the schema version for a Windows build:
//!
//! ```
//! use hcs_schema::version::{build, determine_schema_version};
//! use hcs_schema::SchemaVersion;
//!
//! assert_eq!(determine_schema_version(build::RS4, None), SchemaVersion::V1_0);
//! assert_eq!(determine_schema_version(build::LTSC2022, Some(SchemaVersion::V2_5)), SchemaVersion::V2_5);
//! assert_eq!(determine_schema_version(build::RS5, Some(SchemaVersion::V2_5)), SchemaVersion::V2_1);
//! ```

// The exported macros name this crate's items by an absolute path (serde's attribute
// strings cannot use `$crate`), which must resolve here too.
extern crate self as hcs_schema;

pub mod go;
pub mod json;
mod macros;
pub mod v1;
pub mod v2;
pub mod version;

pub use version::SchemaVersion;
