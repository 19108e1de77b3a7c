//! Declarative helpers that keep the schema files close to the reference's Go declarations.
//! Exported for the other crates that declare Go-shaped documents (`hcn`'s HNS/HCN schema).
//!
//! * [`omitempty_struct!`] declares a struct whose every field is `omitempty` (true of almost
//!   every schema2 type): each field carries its exact JSON key, is skipped when Go would omit
//!   it ([`crate::go::GoEmpty`]), defaults when absent and reads `null` as its zero value. The
//!   struct itself is never "empty" (Go does not omit structs held by value).
//! * [`string_enum!`] declares a Go string type (`type X string` plus constants): the known
//!   values as variants and `Other(String)` for anything else, because Go accepts any string
//!   and HCS adds values between builds.

#[macro_export]
/// Declares a struct whose fields are all Go `omitempty`. Field syntax: `"JsonKey" name: Type`.
macro_rules! omitempty_struct {
    (
        $(#[$m:meta])*
        pub struct $name:ident {
            $(
                $(#[$fm:meta])*
                $key:literal $field:ident : $ty:ty
            ),* $(,)?
        }
    ) => {
        $(#[$m])*
        #[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(default)]
        pub struct $name {
            $(
                $(#[$fm])*
                #[doc = concat!("\n\nJSON key `", $key, "` (omitempty).")]
                #[serde(
                    rename = $key,
                    skip_serializing_if = "::hcs_schema::go::is_empty",
                    deserialize_with = "::hcs_schema::go::null_default"
                )]
                pub $field: $ty,
            )*
        }

        impl $crate::go::GoEmpty for $name {
            fn is_go_empty(&self) -> bool {
                false
            }
        }
    };
}

#[macro_export]
/// Declares a Go string type with its known values and an `Other` catch-all.
macro_rules! string_enum {
    (
        $(#[$m:meta])*
        pub enum $name:ident {
            $(
                $(#[$vm:meta])*
                $variant:ident = $text:literal
            ),* $(,)?
        }
    ) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $(
                $(#[$vm])*
                #[doc = concat!("\n\nWire value `", $text, "`.")]
                $variant,
            )*
            /// A value this crate does not name, kept verbatim.
            Other(String),
        }

        impl $name {
            /// Every value this crate names, in declaration order.
            pub const KNOWN: &'static [&'static str] = &[$($text),*];

            /// The wire text of this value.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)*
                    Self::Other(text) => text,
                }
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                match text {
                    $($text => Self::$variant,)*
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl From<String> for $name {
            fn from(text: String) -> Self {
                Self::from(text.as_str())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                <String as serde::Deserialize>::deserialize(deserializer).map(Self::from)
            }
        }

        /// Go's zero value for a string type: `""`, which `omitempty` drops.
        impl Default for $name {
            fn default() -> Self {
                Self::Other(String::new())
            }
        }

        /// A Go string type is empty under `omitempty` when it is `""`.
        impl $crate::go::GoEmpty for $name {
            fn is_go_empty(&self) -> bool {
                self.as_str().is_empty()
            }
        }
    };
}

pub(crate) use crate::{omitempty_struct, string_enum};
