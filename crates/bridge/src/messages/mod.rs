//! Every request, response and notification payload of the protocol (spec §3, §5, §7).
//!
//! Field names are the exact JSON keys of the reference (serde renames), declared in the
//! reference's order so that encoding reproduces its bytes. Go's `omitempty` becomes
//! `skip_serializing_if` plus `default`. Where the reference's two sides disagree (host GUIDs
//! vs guest strings) the looser type is used (strings).
//!
//! **Decoding follows Go's `encoding/json`** ([`hcs_schema::json`], the same decoder the HCS
//! documents use): keys match case-insensitively, `null` leaves a field at its zero value,
//! a later duplicate key wins, unknown keys are ignored. Message bodies embed their base the
//! way Go embeds a struct ([`message!`]): the base's keys and the message's own share one
//! object, and each part is decoded from it with those rules (serde's `flatten` would bypass
//! them). A key absent from a body leaves its field at the zero value, as in Go.

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

/// Declares a message body that embeds `base` (Go's embedded struct): on the wire the base's
/// keys come first, in the same object as the message's own fields. Serialization flattens
/// the base; deserialization reads the base and the message's own fields (each absent one at
/// its zero value) from the same document with Go's rules ([`crate::json::embedded`]).
macro_rules! message {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(#[$bmeta:meta])*
            pub base: $base:ty,
            $(
                $(#[$fmeta:meta])*
                pub $field:ident : $ty:ty,
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(serde::Serialize)]
        pub struct $name {
            $(#[$bmeta])*
            #[serde(flatten)]
            pub base: $base,
            $(
                $(#[$fmeta])*
                pub $field: $ty,
            )*
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                /// The message's own fields, absent ones at their zero value as in Go.
                #[derive(serde::Deserialize, Default)]
                #[serde(default)]
                struct Own {
                    $(
                        $(#[$fmeta])*
                        $field: $ty,
                    )*
                }
                let (base, own): ($base, Own) = $crate::json::embedded(deserializer)?;
                Ok(Self {
                    base,
                    $($field: own.$field,)*
                })
            }
        }
    };
}
pub(crate) use message;

/// Defines a string enum that keeps unknown values (`Other`), because the reference's Go
/// types are plain strings and accept anything. Its zero value (`Default`) is Go's `""`.
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

        /// Go's zero value for a string type: `""`.
        impl Default for $name {
            fn default() -> Self {
                $name::Other(String::new())
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
