//! An organization's provisioning settings: what its pushes must carry and may contain, how
//! much a run may change on its own, and the provisioning rules (seat limit, groups, perimeter,
//! grace period).
//!
//! The document is read once at the edge by [`ProvisioningSettings::parse`], which collects
//! every problem of a document at once (each located by a JSON pointer); past that point the
//! typed document is trusted.

use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::error::FieldError;

/// The settings the sync engine reads. Stored as JSON on the organization; unknown keys are
/// refused so that a typo cannot silently disable a rule. A key left out takes its default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
#[schema(example = json!({
    "approval": {"mode": "threshold", "max_archive_percent": 10, "max_archive_count": 50,
                 "max_create_count": 500, "max_update_percent": 50, "expires_after_hours": 72},
    "required_fields": [],
    "allowed_genders": ["M", "F", "X"],
    "seat_limit": 1000,
    "archive_grace_days": 7,
    "custom_fields": [{"key": "cost_center", "type": "string", "required": false}],
    "group_rules": [{"group": "Sales EMEA", "when": {"field": "teams", "equals": "Sales"}}],
    "sync_perimeter": null
}))]
pub struct ProvisioningSettings {
    /// How much a run may change before an administrator must approve it.
    pub approval: ApprovalSettings,
    /// Optional record fields that every record must carry: any of `date_of_birth`, `gender`,
    /// `phone`.
    pub required_fields: Vec<RequirableField>,
    /// Accepted `gender` values, compared without regard to case.
    #[schema(example = json!(["M", "F"]))]
    pub allowed_genders: Vec<String>,
    /// Most users the workspace may hold (active and invited); `null`: no limit.
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 4294967295_u64, example = 1000)]
    pub seat_limit: Option<u32>,
    /// Days a user missing from a full sync stays `pending_archive` before being archived;
    /// 0 archives at once.
    #[schema(minimum = 0, maximum = 3650, example = 7)]
    pub archive_grace_days: u32,
    /// The custom fields records may carry under `custom_fields`.
    pub custom_fields: Vec<CustomFieldDefinition>,
    /// Groups given to users by a condition on their record.
    pub group_rules: Vec<GroupRule>,
    /// Which records the workspace provisions at all; `null`: every record.
    pub sync_perimeter: Option<SyncPerimeter>,
}

impl Default for ProvisioningSettings {
    fn default() -> ProvisioningSettings {
        ProvisioningSettings {
            approval: ApprovalSettings::default(),
            required_fields: Vec::new(),
            allowed_genders: vec!["M".to_owned(), "F".to_owned()],
            seat_limit: None,
            archive_grace_days: 0,
            custom_fields: Vec::new(),
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

    /// Reads a settings document sent by a client: every problem at once, each with the JSON
    /// pointer of its place, or the typed settings.
    pub fn parse(document: &Value) -> Result<ProvisioningSettings, Vec<FieldError>> {
        let mut problems = Problems::default();
        check_document(document, &mut problems);
        if !problems.0.is_empty() {
            return Err(problems.0);
        }
        serde_json::from_value(document.clone())
            .map_err(|error| vec![FieldError::new("", format!("{error}"))])
    }
}

/// `approval.mode`: `never` (runs apply on their own), `always` (every run waits for an
/// administrator), `threshold` (a run waits when its plan crosses one of the limits).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalMode {
    #[default]
    Never,
    Always,
    Threshold,
}

impl ApprovalMode {
    pub const ALL: &'static [ApprovalMode] = &[
        ApprovalMode::Never,
        ApprovalMode::Always,
        ApprovalMode::Threshold,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalMode::Never => "never",
            ApprovalMode::Always => "always",
            ApprovalMode::Threshold => "threshold",
        }
    }
}

/// The approval gate. Percentages are of the organization's active users before the run;
/// `null` means no limit. The limits apply in `threshold` mode only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ApprovalSettings {
    pub mode: ApprovalMode,
    /// Most users a run may archive, as a percentage (0–100) of the active users.
    #[serde(serialize_with = "whole_numbers_as_integers")]
    #[schema(minimum = 0, maximum = 100, example = 10)]
    pub max_archive_percent: Option<f64>,
    /// Most users a run may archive.
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 4294967295_u64, example = 50)]
    pub max_archive_count: Option<u32>,
    /// Most users a run may create.
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 4294967295_u64, example = 500)]
    pub max_create_count: Option<u32>,
    /// Most users a run may update, as a percentage (0–100) of the active users.
    #[serde(serialize_with = "whole_numbers_as_integers")]
    #[schema(minimum = 0, maximum = 100, example = 50)]
    pub max_update_percent: Option<f64>,
    /// A run awaiting approval longer than this is rejected (it expired). Fractions are
    /// allowed (0.5 = 30 minutes).
    #[serde(serialize_with = "whole_number_as_integer")]
    #[schema(example = 72, exclusive_minimum = 0, maximum = 8760)]
    pub expires_after_hours: f64,
}

impl Default for ApprovalSettings {
    fn default() -> ApprovalSettings {
        ApprovalSettings {
            mode: ApprovalMode::Never,
            max_archive_percent: None,
            max_archive_count: None,
            max_create_count: None,
            max_update_percent: None,
            expires_after_hours: 72.0,
        }
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

impl RequirableField {
    const ALL: &'static [(&'static str, RequirableField)] = &[
        ("date_of_birth", RequirableField::DateOfBirth),
        ("gender", RequirableField::Gender),
        ("phone", RequirableField::Phone),
    ];
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomFieldDefinition {
    /// Letters, digits, `_` and `-`, at most 64; unique among the definitions.
    #[schema(example = "cost_center", pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub key: String,
    #[serde(rename = "type")]
    pub field_type: CustomFieldType,
    /// Every record must carry the field. Default false.
    #[serde(default)]
    #[schema(example = false)]
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
    pub const ALL: &'static [CustomFieldType] = &[
        CustomFieldType::String,
        CustomFieldType::Number,
        CustomFieldType::Boolean,
        CustomFieldType::Date,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CustomFieldType::String => "string",
            CustomFieldType::Number => "number",
            CustomFieldType::Boolean => "boolean",
            CustomFieldType::Date => "date",
        }
    }
}

/// `{"group": "Sales EMEA", "when": {"field": "teams", "equals": "Sales"}}`: users whose
/// record meets the condition belong to the group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupRule {
    #[schema(example = "Sales EMEA", min_length = 1, max_length = 255)]
    pub group: String,
    pub when: FieldCondition,
}

/// Which records are provisioned: those whose e-mail domain is listed (when the list is not
/// empty) and that meet the condition (when there is one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncPerimeter {
    /// E-mail domains, compared without regard to case; empty: any domain.
    #[serde(default)]
    #[schema(example = json!(["example.com"]))]
    pub email_domains: Vec<String>,
    #[serde(default)]
    pub when: Option<FieldCondition>,
}

/// A condition on one field of a record: exactly one of `equals` and `in`.
///
/// `field` is `teams` (met when one of the user's teams matches), `custom.<key>` (a custom
/// field declared in `custom_fields`) or a record field: `external_id`, `email`, `username`,
/// `first_name`, `last_name`, `start_date`, `end_date`, `date_of_birth`, `gender`, `phone`,
/// `manager_external_id`, `role`, `approval_process`, `employment_status`. Values are
/// strings, numbers or booleans.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldCondition {
    #[schema(
        example = "teams",
        pattern = "^(external_id|email|username|first_name|last_name|start_date|end_date|date_of_birth|gender|phone|manager_external_id|role|approval_process|employment_status|teams|custom\\.[A-Za-z0-9_-]{1,64})$"
    )]
    pub field: String,
    /// Met when the field equals this value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = ConditionValue, example = "Sales")]
    pub equals: Option<Value>,
    /// Met when the field equals one of these values.
    #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Vec<ConditionValue>, min_items = 1, example = json!(["Sales", "Marketing"]))]
    pub one_of: Option<Vec<Value>>,
}

/// The values a condition compares with: a string, a number or a boolean. (Documents the
/// schema; conditions hold them as JSON values.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum ConditionValue {
    Text(String),
    Number(f64),
    Boolean(bool),
}

/// What a [`FieldCondition`] looks at, once its `field` is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionField<'a> {
    /// The user's team names.
    Teams,
    /// A custom field, by its key.
    Custom(&'a str),
    /// A record field by its JSON name (one of [`CONDITION_FIELDS`] other than `teams`).
    Record(&'a str),
}

/// What a [`FieldCondition`] tests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ConditionTest<'a> {
    Equals(&'a Value),
    In(&'a [Value]),
}

impl FieldCondition {
    /// The field the condition looks at. Validated settings always name a known field.
    pub fn target(&self) -> Option<ConditionField<'_>> {
        if let Some(key) = self.field.strip_prefix("custom.") {
            return Some(ConditionField::Custom(key));
        }
        if self.field == "teams" {
            return Some(ConditionField::Teams);
        }
        CONDITION_FIELDS
            .contains(&self.field.as_str())
            .then_some(ConditionField::Record(self.field.as_str()))
    }

    /// The test; validated settings always carry exactly one.
    pub fn test(&self) -> Option<ConditionTest<'_>> {
        match (&self.equals, &self.one_of) {
            (Some(value), None) => Some(ConditionTest::Equals(value)),
            (None, Some(values)) => Some(ConditionTest::In(values)),
            _ => None,
        }
    }
}

/// The record fields a condition may name (besides `custom.<key>`).
pub const CONDITION_FIELDS: &[&str] = &[
    "external_id",
    "email",
    "username",
    "first_name",
    "last_name",
    "start_date",
    "end_date",
    "date_of_birth",
    "gender",
    "phone",
    "manager_external_id",
    "role",
    "approval_process",
    "employment_status",
    "teams",
];

/// Serializes 10.0 as `10`, so that a document reads back as it was written.
fn whole_numbers_as_integers<S: Serializer>(
    value: &Option<f64>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(number) => whole_number_as_integer(number, serializer),
        None => serializer.serialize_none(),
    }
}

fn whole_number_as_integer<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        serializer.serialize_i64(*value as i64)
    } else {
        serializer.serialize_f64(*value)
    }
}

// ---- validation of a client's document -------------------------------------------------

#[derive(Default)]
struct Problems(Vec<FieldError>);

impl Problems {
    fn add(&mut self, pointer: &str, detail: impl Into<String>) {
        self.0.push(FieldError::new(pointer, detail));
    }
}

/// RFC 6901: `~` and `/` in a key are escaped.
fn pointer(parent: &str, key: &str) -> String {
    format!("{parent}/{}", key.replace('~', "~0").replace('/', "~1"))
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The object at `at`, or a problem; `None` also when it is not an object.
fn object<'a>(
    value: &'a Value,
    at: &str,
    what: &str,
    problems: &mut Problems,
) -> Option<&'a Map<String, Value>> {
    match value {
        Value::Object(map) => Some(map),
        other => {
            problems.add(
                at,
                format!("{what} must be an object, not {}.", kind(other)),
            );
            None
        }
    }
}

/// Refuses keys outside `known`.
fn known_keys(map: &Map<String, Value>, at: &str, known: &[&str], problems: &mut Problems) {
    for key in map.keys() {
        if !known.contains(&key.as_str()) {
            problems.add(
                &pointer(at, key),
                format!(
                    "Unknown setting {key:?}; the known ones here are: {}.",
                    known.join(", ")
                ),
            );
        }
    }
}

fn list<'a>(value: &'a Value, at: &str, problems: &mut Problems) -> Option<&'a Vec<Value>> {
    match value {
        Value::Array(items) => Some(items),
        other => {
            problems.add(at, format!("Expected a list, not {}.", kind(other)));
            None
        }
    }
}

/// A whole number in `0..=max` (or null when `nullable`).
fn whole_number(value: &Value, at: &str, max: u64, nullable: bool, problems: &mut Problems) {
    match value {
        Value::Null if nullable => {}
        Value::Number(number) => match number.as_u64() {
            Some(n) if n <= max => {}
            Some(_) => problems.add(at, format!("Must be at most {max}.")),
            None => problems.add(at, "Must be a whole number, 0 or more."),
        },
        other => problems.add(
            at,
            format!(
                "Expected a whole number{}, not {}.",
                if nullable { " or null" } else { "" },
                kind(other)
            ),
        ),
    }
}

fn percentage(value: &Value, at: &str, problems: &mut Problems) {
    match value {
        Value::Null => {}
        Value::Number(number) => match number.as_f64() {
            Some(p) if (0.0..=100.0).contains(&p) => {}
            _ => problems.add(at, "A percentage must be between 0 and 100."),
        },
        other => problems.add(
            at,
            format!(
                "Expected a percentage (0–100) or null, not {}.",
                kind(other)
            ),
        ),
    }
}

fn non_blank_text(value: &Value, at: &str, max: usize, problems: &mut Problems) -> Option<String> {
    match value {
        Value::String(text) if text.trim().is_empty() => {
            problems.add(at, "Must not be blank.");
            None
        }
        Value::String(text) if text.chars().count() > max => {
            problems.add(at, format!("Must be at most {max} characters."));
            None
        }
        Value::String(text) if text.chars().any(char::is_control) => {
            problems.add(at, "Must not contain control characters.");
            None
        }
        Value::String(text) => Some(text.clone()),
        other => {
            problems.add(at, format!("Expected a string, not {}.", kind(other)));
            None
        }
    }
}

fn check_document(document: &Value, problems: &mut Problems) {
    let Some(root) = object(document, "", "The settings document", problems) else {
        return;
    };
    known_keys(
        root,
        "",
        &[
            "approval",
            "required_fields",
            "allowed_genders",
            "seat_limit",
            "archive_grace_days",
            "custom_fields",
            "group_rules",
            "sync_perimeter",
        ],
        problems,
    );
    if let Some(approval) = root.get("approval") {
        check_approval(approval, problems);
    }
    if let Some(value) = root.get("required_fields") {
        for (index, item) in list(value, "/required_fields", problems)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let known = RequirableField::ALL.iter().map(|(name, _)| *name);
            if !item
                .as_str()
                .is_some_and(|name| known.clone().any(|k| k == name))
            {
                problems.add(
                    &format!("/required_fields/{index}"),
                    "Must be one of date_of_birth, gender, phone.",
                );
            }
        }
    }
    if let Some(value) = root.get("allowed_genders") {
        let mut seen = Vec::new();
        for (index, item) in list(value, "/allowed_genders", problems)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let at = format!("/allowed_genders/{index}");
            if let Some(gender) = non_blank_text(item, &at, 50, problems) {
                let folded = gender.to_lowercase();
                if seen.contains(&folded) {
                    problems.add(&at, format!("{gender:?} is listed twice."));
                }
                seen.push(folded);
            }
        }
    }
    if let Some(value) = root.get("seat_limit") {
        whole_number(value, "/seat_limit", u64::from(u32::MAX), true, problems);
    }
    if let Some(value) = root.get("archive_grace_days") {
        whole_number(value, "/archive_grace_days", 3650, false, problems);
    }
    let custom_keys = root
        .get("custom_fields")
        .map(|value| check_custom_fields(value, problems))
        .unwrap_or_default();
    if let Some(value) = root.get("group_rules") {
        for (index, rule) in list(value, "/group_rules", problems)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let at = format!("/group_rules/{index}");
            let Some(rule) = object(rule, &at, "A group rule", problems) else {
                continue;
            };
            known_keys(rule, &at, &["group", "when"], problems);
            match rule.get("group") {
                Some(group) => {
                    non_blank_text(group, &pointer(&at, "group"), 255, problems);
                }
                None => problems.add(&at, "A group rule needs a \"group\"."),
            }
            match rule.get("when") {
                Some(when) => check_condition(when, &pointer(&at, "when"), &custom_keys, problems),
                None => problems.add(&at, "A group rule needs a \"when\" condition."),
            }
        }
    }
    if let Some(value) = root.get("sync_perimeter") {
        check_perimeter(value, &custom_keys, problems);
    }
}

fn check_approval(value: &Value, problems: &mut Problems) {
    let Some(approval) = object(value, "/approval", "approval", problems) else {
        return;
    };
    known_keys(
        approval,
        "/approval",
        &[
            "mode",
            "max_archive_percent",
            "max_archive_count",
            "max_create_count",
            "max_update_percent",
            "expires_after_hours",
        ],
        problems,
    );
    if let Some(mode) = approval.get("mode") {
        let known = ApprovalMode::ALL.iter().map(|m| m.as_str());
        if !mode.as_str().is_some_and(|m| known.clone().any(|k| k == m)) {
            problems.add("/approval/mode", "Must be one of never, always, threshold.");
        }
    }
    for key in ["max_archive_percent", "max_update_percent"] {
        if let Some(value) = approval.get(key) {
            percentage(value, &pointer("/approval", key), problems);
        }
    }
    for key in ["max_archive_count", "max_create_count"] {
        if let Some(value) = approval.get(key) {
            whole_number(
                value,
                &pointer("/approval", key),
                u64::from(u32::MAX),
                true,
                problems,
            );
        }
    }
    if let Some(value) = approval.get("expires_after_hours") {
        let hours = value.as_f64();
        if !hours.is_some_and(|h| h > 0.0 && h <= 8760.0) {
            problems.add(
                "/approval/expires_after_hours",
                "Must be a number of hours above 0 and at most 8760 (a year).",
            );
        }
    }
}

/// Checks the definitions and returns the keys they declare.
fn check_custom_fields(value: &Value, problems: &mut Problems) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for (index, definition) in list(value, "/custom_fields", problems)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("/custom_fields/{index}");
        let Some(definition) = object(definition, &at, "A custom field definition", problems)
        else {
            continue;
        };
        known_keys(definition, &at, &["key", "type", "required"], problems);
        match definition.get("key") {
            Some(Value::String(key))
                if !key.is_empty()
                    && key.len() <= 64
                    && key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') =>
            {
                if keys.contains(key) {
                    problems.add(
                        &pointer(&at, "key"),
                        format!("The custom field {key:?} is defined twice."),
                    );
                } else {
                    keys.push(key.clone());
                }
            }
            Some(_) => problems.add(
                &pointer(&at, "key"),
                "A key is 1 to 64 letters, digits, \"_\" or \"-\".",
            ),
            None => problems.add(&at, "A custom field definition needs a \"key\"."),
        }
        let types = CustomFieldType::ALL.iter().map(|t| t.as_str());
        match definition.get("type") {
            Some(field_type)
                if field_type
                    .as_str()
                    .is_some_and(|t| types.clone().any(|k| k == t)) => {}
            Some(_) => problems.add(
                &pointer(&at, "type"),
                "Must be one of string, number, boolean, date.",
            ),
            None => problems.add(&at, "A custom field definition needs a \"type\"."),
        }
        if let Some(required) = definition.get("required") {
            if !required.is_boolean() {
                problems.add(&pointer(&at, "required"), "Expected true or false.");
            }
        }
    }
    keys
}

fn check_condition(value: &Value, at: &str, custom_keys: &[String], problems: &mut Problems) {
    let Some(condition) = object(value, at, "A condition", problems) else {
        return;
    };
    known_keys(condition, at, &["field", "equals", "in"], problems);
    match condition.get("field") {
        Some(Value::String(field)) => {
            let known = match field.strip_prefix("custom.") {
                Some(key) => custom_keys.iter().any(|k| k == key),
                None => CONDITION_FIELDS.contains(&field.as_str()),
            };
            if !known {
                problems.add(
                    &pointer(at, "field"),
                    format!("Unknown field {field:?}: name a record field ({}), or custom.<key> of a field declared in custom_fields.", CONDITION_FIELDS.join(", ")),
                );
            }
        }
        Some(other) => problems.add(
            &pointer(at, "field"),
            format!("Expected a field name, not {}.", kind(other)),
        ),
        None => problems.add(at, "A condition needs a \"field\"."),
    }
    let scalar =
        |value: &Value| matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_));
    match (condition.get("equals"), condition.get("in")) {
        (Some(_), Some(_)) | (None, None) => problems.add(
            at,
            "A condition needs exactly one of \"equals\" and \"in\".",
        ),
        (Some(value), None) => {
            if !scalar(value) {
                problems.add(
                    &pointer(at, "equals"),
                    format!("Expected a string, number or boolean, not {}.", kind(value)),
                );
            }
        }
        (None, Some(values)) => {
            let at = pointer(at, "in");
            if let Some(values) = list(values, &at, problems) {
                if values.is_empty() {
                    problems.add(&at, "List at least one value.");
                }
                for (index, value) in values.iter().enumerate() {
                    if !scalar(value) {
                        problems.add(
                            &format!("{at}/{index}"),
                            format!("Expected a string, number or boolean, not {}.", kind(value)),
                        );
                    }
                }
            }
        }
    }
}

fn check_perimeter(value: &Value, custom_keys: &[String], problems: &mut Problems) {
    if value.is_null() {
        return;
    }
    let at = "/sync_perimeter";
    let Some(perimeter) = object(value, at, "sync_perimeter", problems) else {
        return;
    };
    known_keys(perimeter, at, &["email_domains", "when"], problems);
    let domains = perimeter
        .get("email_domains")
        .and_then(|value| list(value, "/sync_perimeter/email_domains", problems));
    for (index, domain) in domains.into_iter().flatten().enumerate() {
        let valid = domain.as_str().is_some_and(|d| {
            !d.is_empty()
                && d.len() <= 253
                && !d.starts_with(['.', '-'])
                && !d.ends_with(['.', '-'])
                && d.contains('.')
                && d.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        });
        if !valid {
            problems.add(
                &format!("/sync_perimeter/email_domains/{index}"),
                "Expected an e-mail domain such as example.com (without \"@\").",
            );
        }
    }
    let when = perimeter.get("when").filter(|when| !when.is_null());
    if let Some(when) = when {
        check_condition(when, "/sync_perimeter/when", custom_keys, problems);
    }
    let no_domains = perimeter
        .get("email_domains")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    if no_domains && when.is_none() {
        problems.add(
            at,
            "A perimeter needs email_domains, a when condition, or both; set sync_perimeter to null to provision every record.",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pointers(document: Value) -> Vec<String> {
        ProvisioningSettings::parse(&document)
            .unwrap_err()
            .into_iter()
            .map(|e| e.pointer)
            .collect()
    }

    #[test]
    fn defaults_allow_m_and_f_and_require_nothing() {
        let settings: ProvisioningSettings = serde_json::from_str("{}").unwrap();
        assert_eq!(settings, ProvisioningSettings::default());
        assert_eq!(settings.allowed_genders, ["M", "F"]);
        assert!(!settings.requires(RequirableField::Phone));
        assert_eq!(settings.approval.mode, ApprovalMode::Never);
        assert_eq!(settings.approval.expires_after_hours, 72.0);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let error = serde_json::from_str::<ProvisioningSettings>(r#"{"alowed_genders": []}"#);
        assert!(error.is_err());
        assert_eq!(pointers(json!({"alowed_genders": []})), ["/alowed_genders"]);
    }

    #[test]
    fn the_design_example_parses_and_reads_back_as_written() {
        let document = json!({
            "approval": {"mode": "threshold", "max_archive_percent": 10, "max_archive_count": null,
                         "max_create_count": null, "max_update_percent": 12.5, "expires_after_hours": 72},
            "required_fields": ["phone"], "allowed_genders": ["M", "F", "X"], "seat_limit": 500,
            "archive_grace_days": 7,
            "custom_fields": [{"key": "cost_center", "type": "string", "required": false}],
            "group_rules": [
                {"group": "Sales EMEA", "when": {"field": "teams", "equals": "Sales"}},
                {"group": "Finance", "when": {"field": "custom.cost_center", "in": ["F1", "F2"]}}
            ],
            "sync_perimeter": null
        });
        let settings = ProvisioningSettings::parse(&document).unwrap();
        assert_eq!(settings.approval.max_archive_percent, Some(10.0));
        assert_eq!(settings.seat_limit, Some(500));
        assert_eq!(
            settings.group_rules[1].when.target(),
            Some(ConditionField::Custom("cost_center"))
        );
        assert!(matches!(
            settings.group_rules[0].when.test(),
            Some(ConditionTest::Equals(v)) if v == "Sales"
        ));
        let written = serde_json::to_value(&settings).unwrap();
        assert_eq!(written["approval"], document["approval"]);
        assert_eq!(written["group_rules"], document["group_rules"]);
        assert_eq!(written["sync_perimeter"], document["sync_perimeter"]);
    }

    #[test]
    fn every_problem_of_a_document_is_reported_at_once_with_its_pointer() {
        let found = pointers(json!({
            "approval": {"mode": "sometimes", "max_archive_percent": 101, "max_update_percent": -1,
                         "max_create_count": -3, "expires_after_hours": 0, "extra": 1},
            "required_fields": ["phone", "shoe_size"],
            "allowed_genders": ["M", "m"],
            "seat_limit": "ten",
            "archive_grace_days": 1.5,
            "custom_fields": [{"key": "cc", "type": "string"}, {"key": "cc", "type": "colour"}],
            "group_rules": [{"group": "", "when": {"field": "custom.nope", "equals": "x"}},
                            {"group": "G", "when": {"field": "teams", "equals": "a", "in": ["b"]}}],
            "sync_perimeter": {"email_domains": ["@example.com"], "when": {"field": "shoe", "in": []}}
        }));
        let expected = [
            "/approval/extra",
            "/approval/mode",
            "/approval/max_archive_percent",
            "/approval/max_update_percent",
            "/approval/max_create_count",
            "/approval/expires_after_hours",
            "/required_fields/1",
            "/allowed_genders/1",
            "/seat_limit",
            "/archive_grace_days",
            "/custom_fields/1/key",
            "/custom_fields/1/type",
            "/group_rules/0/group",
            "/group_rules/0/when/field",
            "/group_rules/1/when",
            "/sync_perimeter/email_domains/0",
            "/sync_perimeter/when/field",
            "/sync_perimeter/when/in",
        ];
        assert_eq!(found, expected);
    }

    #[test]
    fn percentages_at_the_bounds_are_accepted_and_beyond_them_refused() {
        for (value, ok) in [(0.0, true), (100.0, true), (-0.1, false), (100.1, false)] {
            let document = json!({"approval": {"max_archive_percent": value}});
            assert_eq!(
                ProvisioningSettings::parse(&document).is_ok(),
                ok,
                "{value}"
            );
        }
    }

    #[test]
    fn a_perimeter_needs_domains_or_a_condition() {
        assert_eq!(pointers(json!({"sync_perimeter": {}})), ["/sync_perimeter"]);
        assert!(ProvisioningSettings::parse(&json!({"sync_perimeter": null})).is_ok());
    }

    #[test]
    fn conditions_may_name_every_record_field_but_the_custom_fields_object() {
        let record_fields: Vec<&str> = crate::sync::record::FIELD_NAMES
            .iter()
            .copied()
            .filter(|field| *field != "custom_fields")
            .collect();
        assert_eq!(CONDITION_FIELDS, record_fields.as_slice());
    }

    #[test]
    fn a_document_that_is_not_an_object_is_refused() {
        assert_eq!(pointers(json!([1])), [""]);
    }
}
