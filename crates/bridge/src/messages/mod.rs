//! Every request, response and notification payload of the protocol (spec §3, §5, §7).
//!
//! Field names are the exact JSON keys of the reference (serde renames), declared in the
//! reference's order so that encoding reproduces its bytes. Go's `omitempty` becomes
//! `skip_serializing_if` plus `default`. Where the reference's two sides disagree (host GUIDs
//! vs guest strings) the looser type is used (strings).
//!
//! **Key case.** Go's decoder matches keys case-insensitively; serde does not. The spellings
//! that really occur with different case are accepted as aliases (`ContainerID` for
//! `ContainerId`, `ActivityID`, `ProcessID`, `CreateInUtilityVm` (hcsschema) for
//! `CreateInUtilityVM`, `HVSocketConfigOnStartup`). Other miscased keys are ignored like
//! unknown keys, which leaves the field at its default.

mod base;
mod container;
mod modify;
mod negotiate;
mod notification;
mod process;
mod properties;
mod service;

pub use base::*;
pub use container::*;
pub use modify::*;
pub use negotiate::*;
pub use notification::*;
pub use process::*;
pub use properties::*;
pub use service::*;

/// Defines a string enum that keeps unknown values (`Other`), because the reference's Go
/// types are plain strings and accept anything.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $( $(#[$vdoc:meta])* $variant:ident = $text:literal, )* }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vdoc])* $variant, )*
            /// A value outside the known set, kept verbatim.
            Other(String),
        }

        impl $name {
            /// The wire spelling.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $text, )*
                    $name::Other(s) => s,
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s {
                    $( $text => $name::$variant, )*
                    other => $name::Other(other.to_owned()),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as serde::Deserialize>::deserialize(d)?;
                Ok($name::from(s.as_str()))
            }
        }
    };
}
pub(crate) use string_enum;

#[cfg(test)]
mod tests;
