//! HCS schema versions and the Windows-build gating of each (spec §3.1).
//!
//! Every HCS document carries `SchemaVersion {Major, Minor}`. 1.0 is the only version on
//! RS1–RS3; 2.1 needs RS5 (17763); 2.5 needs LTSC2022 (20348) and is what the confidential
//! (SNP) LCOW path uses. The build is an input here, not read from the OS, so the rules are
//! testable on any platform; the Win32 layer supplies `RtlGetVersion`'s build number.

use std::fmt;

use crate::macros::omitempty_struct;

omitempty_struct! {
    /// A schema version `{Major, Minor}` (`hcsschema.Version`). Both keys are `omitempty`, so
    /// 1.0 encodes as `{"Major":1}`.
    #[derive(Copy, Eq, Hash, PartialOrd, Ord)]
    pub struct SchemaVersion {
        /// Major version; majors are not compatible with one another.
        "Major" major: i32,
        /// Minor version; a lower minor is a compatible subset of a higher one.
        "Minor" minor: i32,
    }
}

impl SchemaVersion {
    /// Schema 1.0: the only version on RS1–RS3 (the v1 documents of [`crate::v1`]).
    pub const V1_0: Self = Self::new(1, 0);
    /// Schema 2.1: needs RS5; used by process-isolated and hosted containers and most UVMs.
    pub const V2_1: Self = Self::new(2, 1);
    /// Schema 2.5: needs LTSC2022; used by confidential (SNP) LCOW UVMs.
    pub const V2_5: Self = Self::new(2, 5);

    /// A version from its parts.
    pub const fn new(major: i32, minor: i32) -> Self {
        Self { major, minor }
    }

    /// The lowest Windows build that accepts this version, or `None` for a version the
    /// reference does not know.
    pub const fn minimum_build(self) -> Option<u16> {
        match (self.major, self.minor) {
            (1, 0) => Some(0),
            (2, 1) => Some(build::RS5),
            (2, 5) => Some(build::LTSC2022),
            _ => None,
        }
    }
}

/// Alias matching the reference's name (`hcsschema.Version`), used by the v2 documents.
pub type Version = SchemaVersion;

impl fmt::Display for SchemaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Why a schema version cannot be used on a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsupportedSchema {
    /// The version exists but needs a newer Windows build.
    TooOldBuild {
        /// The version asked for.
        version: SchemaVersion,
        /// The build it was asked on.
        build: u16,
        /// The first build that accepts it.
        required: u16,
    },
    /// The reference knows no such version.
    Unknown(SchemaVersion),
}

impl fmt::Display for UnsupportedSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooOldBuild { version, build, required } => write!(
                f,
                "schema version {version} is unsupported on this Windows build ({build} < {required})"
            ),
            Self::Unknown(version) => write!(f, "unknown schema version {version}"),
        }
    }
}

impl std::error::Error for UnsupportedSchema {}

/// Whether `version` may be used on Windows build `build` (`schemaversion.IsSupported`).
///
/// # Errors
/// [`UnsupportedSchema::Unknown`] for versions other than 1.0, 2.1 and 2.5;
/// [`UnsupportedSchema::TooOldBuild`] when the build predates the version.
pub fn is_supported(version: SchemaVersion, build: u16) -> Result<(), UnsupportedSchema> {
    match version.minimum_build() {
        None => Err(UnsupportedSchema::Unknown(version)),
        Some(required) if build < required => Err(UnsupportedSchema::TooOldBuild {
            version,
            build,
            required,
        }),
        Some(_) => Ok(()),
    }
}

/// The version to use on `build` (`schemaversion.DetermineSchemaVersion`): 1.0 below RS5,
/// otherwise 2.1; a requested version replaces that default when it is supported and is
/// ignored (the reference logs a warning) when it is not.
pub fn determine_schema_version(build: u16, requested: Option<SchemaVersion>) -> SchemaVersion {
    let default = if build >= build::RS5 {
        SchemaVersion::V2_1
    } else {
        SchemaVersion::V1_0
    };
    match requested {
        Some(v) if is_supported(v, build).is_ok() => v,
        _ => default,
    }
}

/// Windows build numbers the reference names (`osversion`, spec §6.3).
pub mod build {
    /// Windows 10 1607 / Server 2016.
    pub const RS1: u16 = 14393;
    /// Same as [`RS1`].
    pub const V1607: u16 = RS1;
    /// Same as [`RS1`].
    pub const LTSC2016: u16 = RS1;
    /// Windows 10 1703.
    pub const RS2: u16 = 15063;
    /// Same as [`RS2`].
    pub const V1703: u16 = RS2;
    /// Windows 10 1709.
    pub const RS3: u16 = 16299;
    /// Same as [`RS3`].
    pub const V1709: u16 = RS3;
    /// Windows 10 1803.
    pub const RS4: u16 = 17134;
    /// Same as [`RS4`].
    pub const V1803: u16 = RS4;
    /// Windows 10 1809 / Server 2019: first build with schema 2.1.
    pub const RS5: u16 = 17763;
    /// Same as [`RS5`].
    pub const V1809: u16 = RS5;
    /// Same as [`RS5`].
    pub const LTSC2019: u16 = RS5;
    /// Windows 10 1903.
    pub const V19H1: u16 = 18362;
    /// Same as [`V19H1`].
    pub const V1903: u16 = V19H1;
    /// Windows 10 1909.
    pub const V19H2: u16 = 18363;
    /// Same as [`V19H2`].
    pub const V1909: u16 = V19H2;
    /// Windows 10 2004.
    pub const V20H1: u16 = 19041;
    /// Same as [`V20H1`].
    pub const V2004: u16 = V20H1;
    /// Windows 10 20H2.
    pub const V20H2: u16 = 19042;
    /// Windows 10 21H1.
    pub const V21H1: u16 = 19043;
    /// Windows 10 21H2.
    pub const V21H2_WIN10: u16 = 19044;
    /// Windows 10 22H2.
    pub const V22H2_WIN10: u16 = 19045;
    /// Windows Server 2022 (21H2): first build with schema 2.5.
    pub const V21H2_SERVER: u16 = 20348;
    /// Same as [`V21H2_SERVER`].
    pub const LTSC2022: u16 = V21H2_SERVER;
    /// Windows 11 21H2.
    pub const V21H2_WIN11: u16 = 22000;
    /// Windows 11 22H2.
    pub const V22H2_WIN11: u16 = 22621;
    /// Windows Server 23H2.
    pub const V23H2: u16 = 25398;
    /// Windows Server 2025 (25H1).
    pub const V25H1_SERVER: u16 = 26100;
    /// Same as [`V25H1_SERVER`].
    pub const LTSC2025: u16 = V25H1_SERVER;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_encode_with_omitempty() {
        assert_eq!(
            serde_json::to_string(&SchemaVersion::V1_0).unwrap(),
            r#"{"Major":1}"#
        );
        assert_eq!(
            serde_json::to_string(&SchemaVersion::V2_1).unwrap(),
            r#"{"Major":2,"Minor":1}"#
        );
        assert_eq!(
            serde_json::to_string(&SchemaVersion::V2_5).unwrap(),
            r#"{"Major":2,"Minor":5}"#
        );
        assert_eq!(
            serde_json::to_string(&SchemaVersion::default()).unwrap(),
            "{}"
        );
        let v: SchemaVersion = crate::json::from_str(r#"{"major":2,"minor":5}"#).unwrap();
        assert_eq!(v, SchemaVersion::V2_5);
        let v: SchemaVersion = crate::json::from_str(r#"{"Major":1}"#).unwrap();
        assert_eq!(v, SchemaVersion::V1_0);
        assert_eq!(SchemaVersion::V2_1.to_string(), "2.1");
    }

    #[test]
    fn support_follows_the_build() {
        assert_eq!(is_supported(SchemaVersion::V1_0, build::RS1), Ok(()));
        assert_eq!(is_supported(SchemaVersion::V1_0, build::LTSC2025), Ok(()));
        assert_eq!(
            is_supported(SchemaVersion::V2_1, build::RS4),
            Err(UnsupportedSchema::TooOldBuild {
                version: SchemaVersion::V2_1,
                build: 17134,
                required: 17763
            })
        );
        assert_eq!(is_supported(SchemaVersion::V2_1, 17763), Ok(()));
        assert!(is_supported(SchemaVersion::V2_5, 20347).is_err());
        assert_eq!(is_supported(SchemaVersion::V2_5, 20348), Ok(()));
        assert_eq!(
            is_supported(SchemaVersion::new(2, 0), 26100),
            Err(UnsupportedSchema::Unknown(SchemaVersion::new(2, 0)))
        );
        assert_eq!(
            is_supported(SchemaVersion::new(2, 0), 26100)
                .unwrap_err()
                .to_string(),
            "unknown schema version 2.0"
        );
    }

    #[test]
    fn determine_defaults_and_honours_supported_requests() {
        assert_eq!(
            determine_schema_version(build::RS4, None),
            SchemaVersion::V1_0
        );
        assert_eq!(
            determine_schema_version(build::RS5, None),
            SchemaVersion::V2_1
        );
        assert_eq!(
            determine_schema_version(build::LTSC2022, None),
            SchemaVersion::V2_1
        );
        // A supported request wins, in either direction.
        assert_eq!(
            determine_schema_version(build::LTSC2022, Some(SchemaVersion::V2_5)),
            SchemaVersion::V2_5
        );
        assert_eq!(
            determine_schema_version(build::RS5, Some(SchemaVersion::V1_0)),
            SchemaVersion::V1_0
        );
        // An unsupported or unknown request is ignored.
        assert_eq!(
            determine_schema_version(build::RS5, Some(SchemaVersion::V2_5)),
            SchemaVersion::V2_1
        );
        assert_eq!(
            determine_schema_version(build::RS3, Some(SchemaVersion::V2_1)),
            SchemaVersion::V1_0
        );
        assert_eq!(
            determine_schema_version(build::RS5, Some(SchemaVersion::new(3, 0))),
            SchemaVersion::V2_1
        );
    }

    #[test]
    fn build_numbers_are_the_reference_ones() {
        assert_eq!(
            [build::RS1, build::RS2, build::RS3, build::RS4, build::RS5],
            [14393, 15063, 16299, 17134, 17763]
        );
        assert_eq!(
            [build::V19H1, build::V19H2, build::V20H1, build::V20H2],
            [18362, 18363, 19041, 19042]
        );
        assert_eq!(
            [
                build::V21H1,
                build::V21H2_WIN10,
                build::V22H2_WIN10,
                build::LTSC2022
            ],
            [19043, 19044, 19045, 20348]
        );
        assert_eq!(
            [
                build::V21H2_WIN11,
                build::V22H2_WIN11,
                build::V23H2,
                build::LTSC2025
            ],
            [22000, 22621, 25398, 26100]
        );
    }
}
