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
    // Provisioning rules (issue 10b): seat limit, grace period, groups, sync perimeter.
    /// Most users the workspace may hold (active, invited and pending_archive); creations and
    /// reactivations past it are skipped with WORKSPACE_LIMIT_REACHED. `null`: no limit.
    pub seat_limit: Option<u32>,
    /// Days a user missing from a full sync stays `pending_archive` before being archived;
    /// 0 archives at once.
    pub archive_grace_days: u32,
    /// Groups assigned by condition; every matching rule applies.
    pub group_rules: Vec<GroupRule>,
    /// Who the syncs manage; `null`: everybody.
    pub sync_perimeter: Option<SyncPerimeter>,
}

impl Default for ProvisioningSettings {
    fn default() -> ProvisioningSettings {
        ProvisioningSettings {
            required_fields: Vec::new(),
            allowed_genders: vec!["M".to_owned(), "F".to_owned()],
            custom_fields: Vec::new(),
            seat_limit: None,
            archive_grace_days: 0,
            group_rules: Vec::new(),
            sync_perimeter: None,
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

/// Assigns `group` to every user whose record meets `when`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupRule {
    #[schema(example = "Sales EMEA")]
    pub group: String,
    pub when: FieldCondition,
}

/// A test on one field of a user: `teams`, `custom.<key>` or a record field such as
/// `employment_status`. Give exactly one of `equals` and `in`. Text is compared without regard
/// to case or surrounding spaces; `teams` matches when any of the user's teams does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldCondition {
    #[schema(example = "teams")]
    pub field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>, example = "Sales")]
    pub equals: Option<serde_json::Value>,
    #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub one_of: Option<Vec<serde_json::Value>>,
}

/// The people the syncs manage. A new record outside it is not created
/// (OUTSIDE_SYNC_PERIMETER); an existing user who leaves it is archived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncPerimeter {
    /// Allowed e-mail domains (compared without regard to case); empty: any domain.
    #[serde(default)]
    #[schema(example = json!(["example.com"]))]
    pub email_domains: Vec<String>,
    /// A condition the user must also meet; `null`: none.
    #[serde(default)]
    pub when: Option<FieldCondition>,
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
