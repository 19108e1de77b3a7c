//! Registry changes applied to a container or VM at start.

use crate::macros::{omitempty_struct, string_enum};

omitempty_struct! {
    /// Registry values to add and keys to delete.
    pub struct RegistryChanges {
        /// Values to add.
        "AddValues" add_values: Vec<RegistryValue>,
        /// Keys to delete.
        "DeleteKeys" delete_keys: Vec<RegistryKey>,
    }
}

string_enum! {
    /// A registry hive.
    pub enum RegistryHive {
        /// `HKLM\SYSTEM`.
        System = "System",
        /// `HKLM\SOFTWARE`.
        Software = "Software",
        /// `HKLM\SECURITY`.
        Security = "Security",
        /// `HKLM\SAM`.
        Sam = "Sam",
    }
}

omitempty_struct! {
    /// A registry key.
    pub struct RegistryKey {
        /// Hive.
        "Hive" hive: Option<RegistryHive>,
        /// Key path within the hive.
        "Name" name: String,
        /// Volatile key.
        "Volatile" volatile: bool,
    }
}

string_enum! {
    /// Type of a registry value.
    pub enum RegistryValueType {
        /// `REG_NONE`.
        None = "None",
        /// `REG_SZ`.
        String = "String",
        /// `REG_EXPAND_SZ`.
        ExpandedString = "ExpandedString",
        /// `REG_MULTI_SZ`.
        MultiString = "MultiString",
        /// `REG_BINARY`.
        Binary = "Binary",
        /// `REG_DWORD`.
        DWord = "DWord",
        /// `REG_QWORD`.
        QWord = "QWord",
        /// A custom type carried in `CustomType`, data in `BinaryValue`.
        CustomType = "CustomType",
    }
}

omitempty_struct! {
    /// A registry value; exactly one of the value fields is set.
    pub struct RegistryValue {
        /// Key holding the value.
        "Key" key: Option<RegistryKey>,
        /// Value name.
        "Name" name: String,
        /// Value type.
        "Type" value_type: Option<RegistryValueType>,
        /// String data.
        "StringValue" string_value: String,
        /// Binary data, base64.
        "BinaryValue" binary_value: String,
        /// DWORD data.
        "DWordValue" dword_value: u32,
        /// QWORD data.
        "QWordValue" qword_value: u64,
        /// Custom type number (with `CustomType`).
        "CustomType" custom_type: u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    #[test]
    fn registry_value_round_trip() {
        let doc = concat!(
            r#"{"AddValues":[{"Key":{"Hive":"System","Name":"ControlSet001\\Control"},"#,
            r#""Name":"WaitToKillServiceTimeout","Type":"String","StringValue":"20000"},"#,
            r#"{"Key":{"Hive":"Software","Name":"K","Volatile":true},"Name":"D","Type":"DWord","DWordValue":1}],"#,
            r#""DeleteKeys":[{"Hive":"Sam","Name":"X"}]}"#
        );
        let r: RegistryChanges = json::from_str(doc).unwrap();
        assert_eq!(r.add_values[1].value_type, Some(RegistryValueType::DWord));
        assert_eq!(json::to_string(&r).unwrap(), doc);
    }
}
