//! CNI specification versions: the ones these plugins speak, their ordering, and the result
//! layout each one uses.
//!
//! The reference accepts exactly "0.2.0", "0.3.0", "0.4.0" and "1.0.0" (spec §2.2), so a
//! configuration at 0.3.1, the version most 0.3-era runtimes write, is refused. These
//! plugins add 0.3.1 (its results are the 0.3.0 layout) and 1.1.0 (the 1.0.0 layout plus the
//! GC and STATUS verbs); every other string is still refused by exact match, as the
//! reference's skel does.

use std::cmp::Ordering;
use std::fmt;

/// Every version these plugins accept, in the order `VERSION` reports them.
pub const SUPPORTED_VERSIONS: &[&str] = &["0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// The version of the `VERSION` reply and of results built before conversion.
pub const CURRENT_VERSION: &str = "1.1.0";

/// The version a configuration without `cniVersion` has (CNI's legacy default).
pub const IMPLICIT_VERSION: &str = "0.1.0";

/// A parsed `major.minor.patch` version (missing parts are 0, as the reference's
/// `ParseVersion` reads them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpecVersion {
    /// Major.
    pub major: u32,
    /// Minor.
    pub minor: u32,
    /// Patch.
    pub patch: u32,
}

impl SpecVersion {
    /// A version.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    /// Parses `"1"`, `"1.2"` or `"1.2.3"`; an error says what was wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split('.').collect();
        if parts.len() > 3 {
            return Err(format!("invalid version {text:?}: too many dots"));
        }
        let mut nums = [0u32; 3];
        for (i, p) in parts.iter().enumerate() {
            nums[i] = p
                .parse()
                .map_err(|e| format!("invalid version {text:?}: {e}"))?;
        }
        Ok(Self::new(nums[0], nums[1], nums[2]))
    }

    /// Whether `text` names a version at least `self` (`GreaterThanOrEqualTo(text, self)`).
    pub fn le_text(self, text: &str) -> Result<bool, String> {
        Ok(SpecVersion::parse(text)?.cmp(&self) != Ordering::Less)
    }
}

impl fmt::Display for SpecVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The first version with CHECK.
pub const CHECK_MIN: SpecVersion = SpecVersion::new(0, 4, 0);
/// The first version with GC and STATUS.
pub const GC_MIN: SpecVersion = SpecVersion::new(1, 1, 0);

/// The result layouts of the supported versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultLayout {
    /// 0.2.0: `ip4` / `ip6` objects.
    V020,
    /// 0.3.0, 0.3.1, 0.4.0: `interfaces` and `ips` with a `version` per address.
    V040,
    /// 1.0.0, 1.1.0: `ips` without `version`.
    V100,
}

/// Whether these plugins accept configuration version `text` (exact match).
pub fn is_supported(text: &str) -> bool {
    SUPPORTED_VERSIONS.contains(&text)
}

/// The result layout of a supported version; `None` for any other text.
pub fn result_layout(text: &str) -> Option<ResultLayout> {
    match text {
        "0.2.0" => Some(ResultLayout::V020),
        "0.3.0" | "0.3.1" | "0.4.0" => Some(ResultLayout::V040),
        "1.0.0" | "1.1.0" => Some(ResultLayout::V100),
        _ => None,
    }
}

/// The reference's details text of an incompatible version:
/// `config is "X", plugin supports ["0.2.0" "0.3.0" ...]` (Go's `%q` of a string list).
pub fn incompatible_details(config: &str) -> String {
    let list: Vec<String> = SUPPORTED_VERSIONS
        .iter()
        .map(|v| format!("{v:?}"))
        .collect();
    format!("config is {config:?}, plugin supports [{}]", list.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_fills_missing_parts_and_rejects_garbage() {
        assert_eq!(SpecVersion::parse("1").unwrap(), SpecVersion::new(1, 0, 0));
        assert_eq!(
            SpecVersion::parse("0.3").unwrap(),
            SpecVersion::new(0, 3, 0)
        );
        assert_eq!(
            SpecVersion::parse("0.3.1").unwrap(),
            SpecVersion::new(0, 3, 1)
        );
        assert!(SpecVersion::parse("1.2.3.4").is_err());
        assert!(SpecVersion::parse("a.b").is_err());
        assert!(SpecVersion::parse("").is_err());
    }

    #[test]
    fn ordering_for_check_and_gc() {
        assert!(CHECK_MIN.le_text("0.4.0").unwrap());
        assert!(CHECK_MIN.le_text("1.0.0").unwrap());
        assert!(!CHECK_MIN.le_text("0.3.1").unwrap());
        assert!(GC_MIN.le_text("1.1.0").unwrap());
        assert!(!GC_MIN.le_text("1.0.0").unwrap());
    }

    #[test]
    fn every_supported_version_has_a_layout_and_nothing_else_does() {
        for v in SUPPORTED_VERSIONS {
            assert!(result_layout(v).is_some(), "{v}");
            assert!(is_supported(v));
        }
        for v in ["0.1.0", "0.3.2", "1.0", "1.2.0", ""] {
            assert!(result_layout(v).is_none(), "{v}");
            assert!(!is_supported(v));
        }
    }

    #[test]
    fn incompatible_details_match_the_reference_format() {
        assert_eq!(
            incompatible_details("0.1.0"),
            r#"config is "0.1.0", plugin supports ["0.2.0" "0.3.0" "0.3.1" "0.4.0" "1.0.0" "1.1.0"]"#
        );
    }
}
