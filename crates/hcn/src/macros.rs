//! Declarative helpers that keep the document files close to the reference's Go declarations
//! (the same shapes as `hcs-schema`'s macros, reusing its Go value rules in
//! [`hcs_schema::go`]).
//!
//! * [`omitempty_struct!`]: a struct whose fields are all Go `omitempty`: each field carries its
//!   exact JSON key, is skipped when Go would omit it, defaults when absent and reads `null` as
//!   its zero value. Structs held by value are never empty (Go never omits them); the few
//!   scalar fields Go always emits are declared by hand where they occur.
//! * [`string_enum!`]: a Go string type with its known values and an `Other` catch-all, since
//!   Go accepts any string and HNS adds values between builds.

/// Declares a struct of Go `omitempty` fields. Field syntax: `"JsonKey" name: Type`.
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
                #[doc = concat!("\n\nJSON key `", $key, "`.")]
                #[serde(
                    rename = $key,
                    skip_serializing_if = "hcs_schema::go::is_empty",
                    deserialize_with = "hcs_schema::go::null_default"
                )]
                pub $field: $ty,
            )*
        }

        impl hcs_schema::go::GoEmpty for $name {
            fn is_go_empty(&self) -> bool {
                false
            }
        }
    };
}

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

        impl hcs_schema::go::GoEmpty for $name {
            fn is_go_empty(&self) -> bool {
                self.as_str().is_empty()
            }
        }
    };
}

pub(crate) use omitempty_struct;
pub(crate) use string_enum;
