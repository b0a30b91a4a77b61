//! An organization's provisioning settings: what its pushes must carry and may contain.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The settings the sync engine reads. Stored as JSON on the organization; unknown keys are
/// refused so that a typo cannot silently disable a rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ProvisioningSettings {
    /// Optional record fields that every record must carry: any of `date_of_birth`, `gender`,
    /// `phone`.
    pub required_fields: Vec<RequirableField>,
    /// Accepted `gender` values, compared without regard to case.
    pub allowed_genders: Vec<String>,
    /// The custom fields records may carry under `custom_fields`.
    pub custom_fields: Vec<CustomFieldDefinition>,
}

impl Default for ProvisioningSettings {
    fn default() -> ProvisioningSettings {
        ProvisioningSettings {
            required_fields: Vec::new(),
            allowed_genders: vec!["M".to_owned(), "F".to_owned()],
            custom_fields: Vec::new(),
        }
    }
}

impl ProvisioningSettings {
    pub fn requires(&self, field: RequirableField) -> bool {
        self.required_fields.contains(&field)
    }

    pub fn custom_field(&self, key: &str) -> Option<&CustomFieldDefinition> {
        self.custom_fields
            .iter()
            .find(|definition| definition.key == key)
    }
}

/// A field that is optional unless the settings require it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequirableField {
    DateOfBirth,
    Gender,
    Phone,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomFieldDefinition {
    #[schema(example = "cost_center")]
    pub key: String,
    #[serde(rename = "type")]
    pub field_type: CustomFieldType,
    #[serde(default)]
    pub required: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CustomFieldType {
    String,
    Number,
    Boolean,
    /// Text written `YYYY-MM-DD`.
    Date,
}

impl CustomFieldType {
    pub fn as_str(self) -> &'static str {
        match self {
            CustomFieldType::String => "string",
            CustomFieldType::Number => "number",
            CustomFieldType::Boolean => "boolean",
            CustomFieldType::Date => "date",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_allow_m_and_f_and_require_nothing() {
        let settings: ProvisioningSettings = serde_json::from_str("{}").unwrap();
        assert_eq!(settings, ProvisioningSettings::default());
        assert_eq!(settings.allowed_genders, ["M", "F"]);
        assert!(!settings.requires(RequirableField::Phone));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let error = serde_json::from_str::<ProvisioningSettings>(r#"{"alowed_genders": []}"#);
        assert!(error.is_err());
    }
}
