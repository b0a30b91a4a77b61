//! Field rules: a raw record becomes a [`Candidate`] carrying *all* of its field issues at once.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde_json::Value;

use crate::catalogue::IssueCode;
use crate::domain::{
    check_text, ApprovalProcess, CustomFieldType, DateOfBirth, Email, EmploymentStatus, Gender,
    IsoDate, Phone, ProvisioningSettings, RequirableField, Role, TextProblem, Username,
    EMAIL_MAX_LENGTH,
};
use crate::sync::candidate::{Candidate, Issue, Links, Patch, Record, Shown};
use crate::sync::record::{Field, RawRecord};

/// Most teams, or custom fields, one record may carry.
pub const MAX_LIST_ITEMS: usize = 200;

/// Names, username and external id.
pub const TEXT_MAX_LENGTH: usize = 255;

/// What a run validates against: the organization's settings and the day of the run.
pub struct Rules<'a> {
    pub settings: &'a ProvisioningSettings,
    pub today: NaiveDate,
}

/// Applies every field rule of DESIGN.md to one record.
pub fn validate(row: u32, raw: &RawRecord, rules: &Rules<'_>) -> Candidate {
    let mut issues = Vec::new();
    let shown = Shown {
        external_id: shown_text(&raw.external_id),
        email: shown_text(&raw.email),
        first_name: shown_text(&raw.first_name),
        last_name: shown_text(&raw.last_name),
    };

    let external_id = identifier(&raw.external_id, "external_id", &mut issues);
    if external_id.is_none() && is_missing(&raw.external_id) {
        issues.push(Issue::new(
            IssueCode::MISSING_EXTERNAL_ID,
            "external_id",
            "The record has no external_id.",
        ));
    }

    let email = text(&raw.email, "email", EMAIL_MAX_LENGTH, &mut issues).and_then(|value| {
        if value.is_empty() {
            return None;
        }
        Email::parse(&value)
            .map_err(|reason| issues.push(Issue::new(IssueCode::EMAIL_INVALID, "email", reason)))
            .ok()
    });
    if email.is_none() && is_missing(&raw.email) {
        issues.push(Issue::new(
            IssueCode::MISSING_EMAIL,
            "email",
            "The record has no email.",
        ));
    }

    let first_name = required_name(
        &raw.first_name,
        "first_name",
        IssueCode::MISSING_FIRST_NAME,
        &mut issues,
    );
    let last_name = required_name(
        &raw.last_name,
        "last_name",
        IssueCode::MISSING_LAST_NAME,
        &mut issues,
    );

    let username = optional(
        &raw.username,
        "username",
        TEXT_MAX_LENGTH,
        &mut issues,
        |value| Username::parse(value).map_err(|reason| (IssueCode::USERNAME_INVALID, reason)),
    );

    let employment_status = match word(&raw.employment_status, "employment_status", &mut issues) {
        Some(value) => EmploymentStatus::parse(&value)
            .map_err(|reason| {
                issues.push(Issue::new(
                    IssueCode::EMPLOYMENT_STATUS_INVALID,
                    "employment_status",
                    reason,
                ))
            })
            .ok(),
        None => Some(EmploymentStatus::Active),
    };

    let start_date = optional(
        &raw.start_date,
        "start_date",
        TEXT_MAX_LENGTH,
        &mut issues,
        |value| IsoDate::parse(value).map_err(|reason| (IssueCode::START_DATE_INVALID, reason)),
    );
    let start_required = employment_status == Some(EmploymentStatus::Active);
    if start_required && is_missing(&raw.start_date) {
        issues.push(Issue::new(
            IssueCode::MISSING_START_DATE,
            "start_date",
            "An active employee needs a start_date (YYYY-MM-DD).",
        ));
    }
    let end_date = optional(
        &raw.end_date,
        "end_date",
        TEXT_MAX_LENGTH,
        &mut issues,
        |value| IsoDate::parse(value).map_err(|reason| (IssueCode::END_DATE_INVALID, reason)),
    );
    if let (Patch::Set(start), Patch::Set(end)) = (&start_date, &end_date) {
        if end < start {
            issues.push(Issue::new(
                IssueCode::END_DATE_BEFORE_START_DATE,
                "end_date",
                format!("The end_date {end} is before the start_date {start}."),
            ));
        }
    }

    let date_of_birth = requirable(
        &raw.date_of_birth,
        "date_of_birth",
        IssueCode::DATE_OF_BIRTH_IS_MISSING_OR_INVALID,
        rules.settings.requires(RequirableField::DateOfBirth),
        &mut issues,
        |value| DateOfBirth::parse(value, rules.today),
    );
    let gender = requirable(
        &raw.gender,
        "gender",
        IssueCode::SEX_IS_MISSING_OR_INVALID,
        rules.settings.requires(RequirableField::Gender),
        &mut issues,
        |value| Gender::parse(value, &rules.settings.allowed_genders),
    );
    let phone = requirable(
        &raw.phone,
        "phone",
        IssueCode::PHONE_IS_MISSING_OR_INVALID,
        rules.settings.requires(RequirableField::Phone),
        &mut issues,
        Phone::parse,
    );

    let manager_external_id = match &raw.manager_external_id {
        Field::Absent => Patch::Keep,
        Field::Null => Patch::Clear,
        field => match identifier(field, "manager_external_id", &mut issues) {
            Some(id) => Patch::Set(id),
            None if is_missing(field) => Patch::Clear,
            None => Patch::Keep,
        },
    };

    let role = word(&raw.role, "role", &mut issues).and_then(|value| {
        Role::parse(&value)
            .map_err(|reason| issues.push(Issue::new(IssueCode::ROLE_INVALID, "role", reason)))
            .ok()
    });
    let approval_process =
        word(&raw.approval_process, "approval_process", &mut issues).and_then(|value| {
            ApprovalProcess::parse(&value)
                .map_err(|reason| {
                    issues.push(Issue::new(
                        IssueCode::APPROVAL_PROCESS_INVALID,
                        "approval_process",
                        reason,
                    ))
                })
                .ok()
        });

    let teams = teams(&raw.teams, &mut issues);
    let custom_fields = custom_fields(&raw.custom_fields, rules, &mut issues);

    let email_key = email.as_ref().map(Email::normalized);
    let links = external_id.as_ref().map(|_| Links {
        manager_external_id: manager_external_id.clone(),
        role,
        approval_process,
        leaving: employment_status.is_some_and(|status| status != EmploymentStatus::Active)
            || matches!(&end_date, Patch::Set(end) if end.date() < rules.today),
    });
    let has_error = issues
        .iter()
        .any(|issue| issue.severity() == crate::domain::Severity::Error);
    let record = match (
        has_error,
        &external_id,
        email,
        first_name,
        last_name,
        employment_status,
    ) {
        (
            false,
            Some(external_id),
            Some(email),
            Some(first_name),
            Some(last_name),
            Some(employment_status),
        ) => {
            let mut record = Record {
                external_id: external_id.clone(),
                email,
                first_name,
                last_name,
                username,
                start_date,
                end_date,
                date_of_birth,
                gender,
                phone,
                manager_external_id,
                role,
                approval_process,
                employment_status,
                teams,
                custom_fields,
                fingerprint: String::new(),
            };
            record.fingerprint = record.compute_fingerprint();
            if let Some(salt) = rules_salt(rules.settings) {
                // The same record meets new group rules or a new perimeter differently.
                record.fingerprint = format!(
                    "{:032x}",
                    xxhash_rust::xxh3::xxh3_128(format!("{}{salt}", record.fingerprint).as_bytes())
                );
            }
            Some(record)
        }
        _ => None,
    };
    Candidate {
        row,
        shown,
        external_id,
        email_key,
        record,
        links,
        issues,
        text_hash: None,
    }
}

/// The settings that decide how a valid record applies beyond its own values (its groups,
/// whether it is in the perimeter), as text; `None` when there are none, so that fingerprints
/// stay as they were for organizations that use neither.
fn rules_salt(settings: &ProvisioningSettings) -> Option<String> {
    if settings.group_rules.is_empty() && settings.sync_perimeter.is_none() {
        return None;
    }
    serde_json::to_string(&(&settings.group_rules, &settings.sync_perimeter)).ok()
}

/// Text of a field for the report: strings as they are, other scalars written out.
fn shown_text(field: &Field) -> Option<String> {
    match field {
        Field::Value(Value::String(text)) => Some(text.chars().take(TEXT_MAX_LENGTH).collect()),
        Field::Value(Value::Number(number)) => Some(number.to_string()),
        _ => None,
    }
}

fn is_missing(field: &Field) -> bool {
    match field {
        Field::Absent | Field::Null => true,
        Field::Value(Value::String(text)) => text.trim().is_empty(),
        Field::Value(_) => false,
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(_) => "text".to_owned(),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

fn type_issue(field: &str, expected: &str, value: &Value) -> Issue {
    Issue::new(
        IssueCode::FIELD_TYPE_INVALID,
        field,
        format!("{field} must be {expected}, got {}.", describe(value)),
    )
}

fn text_issue(field: &str, problem: TextProblem) -> Issue {
    match problem {
        TextProblem::TooLong { length, limit } => Issue::new(
            IssueCode::FIELD_TOO_LONG,
            field,
            format!("{field} has {length} characters; at most {limit} are allowed."),
        ),
        TextProblem::ControlCharacter => Issue::new(
            IssueCode::FIELD_INVALID_CHARACTERS,
            field,
            format!("{field} contains a control character (line break, tab…)."),
        ),
    }
}

/// A text field, trimmed. `None` when absent, null, or broken (then an issue is recorded).
fn text(field: &Field, name: &str, limit: usize, issues: &mut Vec<Issue>) -> Option<String> {
    match field {
        Field::Absent | Field::Null => None,
        Field::Value(Value::String(value)) => match check_text(value, limit) {
            Ok(()) => Some(value.trim().to_owned()),
            Err(problem) => {
                issues.push(text_issue(name, problem));
                None
            }
        },
        Field::Value(other) => {
            issues.push(type_issue(name, "text", other));
            None
        }
    }
}

/// An identifier: text, or a whole number (HR tools often number their employees).
fn identifier(field: &Field, name: &str, issues: &mut Vec<Issue>) -> Option<String> {
    match field {
        Field::Value(Value::Number(number)) if number.is_u64() => Some(number.to_string()),
        Field::Value(Value::Number(_) | Value::Bool(_) | Value::Array(_) | Value::Object(_)) => {
            if let Field::Value(value) = field {
                issues.push(type_issue(name, "text or a whole number", value));
            }
            None
        }
        _ => text(field, name, TEXT_MAX_LENGTH, issues).filter(|id| !id.is_empty()),
    }
}

/// A required, non-blank name.
fn required_name(
    field: &Field,
    name: &str,
    missing: IssueCode,
    issues: &mut Vec<Issue>,
) -> Option<String> {
    let value = text(field, name, TEXT_MAX_LENGTH, issues);
    if value.as_deref().is_some_and(|v| !v.is_empty()) {
        return value;
    }
    if is_missing(field) {
        issues.push(Issue::new(
            missing,
            name,
            format!("The record has no {name}."),
        ));
    }
    None
}

/// A word from a closed list; absent or null means the default.
fn word(field: &Field, name: &str, issues: &mut Vec<Issue>) -> Option<String> {
    text(field, name, TEXT_MAX_LENGTH, issues).filter(|value| !value.is_empty())
}

/// An optional field with a parser: absent keeps, null or blank clears, otherwise parse.
fn optional<T>(
    field: &Field,
    name: &str,
    limit: usize,
    issues: &mut Vec<Issue>,
    parse: impl FnOnce(&str) -> Result<T, (IssueCode, String)>,
) -> Patch<T> {
    match field {
        Field::Absent => Patch::Keep,
        Field::Null => Patch::Clear,
        field => match text(field, name, limit, issues) {
            Some(value) if value.is_empty() => Patch::Clear,
            Some(value) => match parse(&value) {
                Ok(parsed) => Patch::Set(parsed),
                Err((code, reason)) => {
                    issues.push(Issue::new(code, name, reason));
                    Patch::Keep
                }
            },
            None => Patch::Keep,
        },
    }
}

/// An optional field that the organization's settings may require. Its one issue code covers
/// "missing" and "invalid", as in DESIGN.md.
fn requirable<T>(
    field: &Field,
    name: &str,
    code: IssueCode,
    required: bool,
    issues: &mut Vec<Issue>,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Patch<T> {
    if required && is_missing(field) {
        issues.push(Issue::new(
            code,
            name,
            format!("{name} is required by the provisioning settings and the record has none."),
        ));
        return Patch::Keep;
    }
    // The field's own code covers text that is not a value of the field, whatever the reason.
    optional(field, name, TEXT_MAX_LENGTH, issues, |value| {
        parse(value).map_err(|reason| (code, reason))
    })
}

fn teams(field: &Field, issues: &mut Vec<Issue>) -> Option<Vec<String>> {
    let items = match field {
        Field::Absent => return None,
        Field::Null => return Some(Vec::new()),
        Field::Value(Value::Array(items)) if items.len() > MAX_LIST_ITEMS => {
            issues.push(Issue::new(
                IssueCode::FIELD_TOO_LONG,
                "teams",
                format!(
                    "teams has {} entries; at most {MAX_LIST_ITEMS} are allowed.",
                    items.len()
                ),
            ));
            return None;
        }
        Field::Value(Value::Array(items)) => items,
        Field::Value(other) => {
            issues.push(type_issue("teams", "a list of team names", other));
            return None;
        }
    };
    let mut names: Vec<String> = Vec::with_capacity(items.len());
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    for item in items {
        let problem = match item {
            Value::String(name) => match check_text(name, TEXT_MAX_LENGTH) {
                Ok(()) if name.trim().is_empty() => Some("a team name is blank".to_owned()),
                Ok(()) => None,
                Err(TextProblem::TooLong { length, limit }) => Some(format!(
                    "a team name has {length} characters; at most {limit} are allowed"
                )),
                Err(TextProblem::ControlCharacter) => {
                    Some("a team name contains a control character".to_owned())
                }
            },
            other => Some(format!("a team name must be text, got {}", describe(other))),
        };
        match (problem, item) {
            (None, Value::String(name)) => {
                let name = name.trim();
                if seen.insert(name.to_lowercase()) {
                    names.push(name.to_owned());
                }
            }
            (problem, item) => {
                let shown: String = match item {
                    Value::String(name) => name.chars().take(TEXT_MAX_LENGTH).collect(),
                    other => other.to_string().chars().take(TEXT_MAX_LENGTH).collect(),
                };
                issues.push(Issue {
                    code: IssueCode::TEAM_NAME_INVALID,
                    field: Some("teams".to_owned()),
                    message: format!(
                        "The team {shown:?} was ignored: {}.",
                        problem.unwrap_or_default()
                    ),
                    team: Some(shown),
                });
            }
        }
    }
    Some(names)
}

fn custom_fields(
    field: &Field,
    rules: &Rules<'_>,
    issues: &mut Vec<Issue>,
) -> BTreeMap<String, Option<Value>> {
    let mut accepted = BTreeMap::new();
    let given = match field {
        Field::Absent | Field::Null => None,
        Field::Value(Value::Object(map)) if map.len() > MAX_LIST_ITEMS => {
            issues.push(Issue::new(
                IssueCode::FIELD_TOO_LONG,
                "custom_fields",
                format!(
                    "custom_fields has {} keys; at most {MAX_LIST_ITEMS} are allowed.",
                    map.len()
                ),
            ));
            None
        }
        Field::Value(Value::Object(map)) => Some(map),
        Field::Value(other) => {
            issues.push(type_issue("custom_fields", "an object", other));
            None
        }
    };
    if let Some(map) = given {
        for (key, value) in map {
            let name = format!("custom_fields.{key}");
            let Some(definition) = rules.settings.custom_field(key) else {
                issues.push(Issue::new(
                    IssueCode::CUSTOM_FIELD_UNKNOWN,
                    &name,
                    format!("The custom field {key:?} is not defined in the provisioning settings; it was ignored."),
                ));
                continue;
            };
            if value.is_null() {
                accepted.insert(key.clone(), None);
                continue;
            }
            if matches_type(value, definition.field_type) {
                accepted.insert(key.clone(), Some(value.clone()));
            } else {
                issues.push(Issue::new(
                    IssueCode::CUSTOM_FIELD_TYPE_MISMATCH,
                    &name,
                    format!(
                        "The custom field {key:?} must be a {}, got {}; it was ignored.",
                        definition.field_type.as_str(),
                        shown_value(value)
                    ),
                ));
            }
        }
    }
    for definition in rules.settings.custom_fields.iter().filter(|d| d.required) {
        let value = given
            .and_then(|map| map.get(&definition.key))
            .filter(|v| !v.is_null());
        let problem = match value {
            None => "the record has none".to_owned(),
            // The value's CUSTOM_FIELD_TYPE_MISMATCH says what is wrong with it.
            Some(value) if !matches_type(value, definition.field_type) => format!(
                "the record's value is not a {}",
                definition.field_type.as_str()
            ),
            Some(_) => continue,
        };
        issues.push(Issue::new(
            IssueCode::CUSTOM_FIELD_REQUIRED,
            &format!("custom_fields.{}", definition.key),
            format!(
                "The custom field {:?} is required and {problem}.",
                definition.key
            ),
        ));
    }
    accepted
}

fn matches_type(value: &Value, field_type: CustomFieldType) -> bool {
    match (field_type, value) {
        (CustomFieldType::String, Value::String(text)) => check_text(text, TEXT_MAX_LENGTH).is_ok(),
        (CustomFieldType::Number, Value::Number(_)) => true,
        (CustomFieldType::Boolean, Value::Bool(_)) => true,
        (CustomFieldType::Date, Value::String(text)) => IsoDate::parse(text).is_ok(),
        _ => false,
    }
}

fn shown_value(value: &Value) -> String {
    match value {
        Value::String(text) => format!("{:?}", text.chars().take(64).collect::<String>()),
        other => describe(other),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::{CustomFieldDefinition, Severity};

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()
    }

    fn check_with(settings: &ProvisioningSettings, record: Value) -> Candidate {
        let raw: RawRecord = serde_json::from_value(record).unwrap();
        validate(
            7,
            &raw,
            &Rules {
                settings,
                today: today(),
            },
        )
    }

    fn check(record: Value) -> Candidate {
        check_with(&ProvisioningSettings::default(), record)
    }

    fn codes(candidate: &Candidate) -> Vec<&'static str> {
        candidate
            .issues
            .iter()
            .map(|issue| issue.code.as_str())
            .collect()
    }

    fn valid() -> Value {
        json!({
            "external_id": "E1", "email": "ada@example.com", "first_name": "Ada",
            "last_name": "Lovelace", "start_date": "2024-01-15"
        })
    }

    fn with(field: &str, value: Value) -> Value {
        let mut record = valid();
        record[field] = value;
        record
    }

    #[test]
    fn a_minimal_record_is_valid() {
        let candidate = check(valid());
        assert!(candidate.issues.is_empty(), "{:?}", candidate.issues);
        let record = candidate.record.unwrap();
        assert_eq!(record.external_id, "E1");
        assert_eq!(record.employment_status, EmploymentStatus::Active);
        assert_eq!(record.phone, Patch::Keep);
        assert_eq!(candidate.email_key.as_deref(), Some("ada@example.com"));
    }

    #[test]
    fn all_issues_of_a_record_are_reported_at_once() {
        let candidate = check(json!({
            "email": "not-an-email", "first_name": " ", "date_of_birth": "1/2/1990",
            "gender": "X", "phone": "+33612345678", "username": "ada lovelace"
        }));
        assert_eq!(
            codes(&candidate),
            [
                "MISSING_EXTERNAL_ID",
                "EMAIL_INVALID",
                "MISSING_FIRST_NAME",
                "MISSING_LAST_NAME",
                "USERNAME_INVALID",
                "MISSING_START_DATE",
                "DATE_OF_BIRTH_IS_MISSING_OR_INVALID",
                "SEX_IS_MISSING_OR_INVALID",
                "PHONE_IS_MISSING_OR_INVALID",
            ]
        );
        assert!(candidate.is_skipped());
        assert_eq!(candidate.row, 7);
    }

    #[test]
    fn messages_name_the_rejected_value() {
        let candidate = check(with("date_of_birth", json!("02/30/1990")));
        assert_eq!(codes(&candidate), ["DATE_OF_BIRTH_IS_MISSING_OR_INVALID"]);
        assert!(candidate.issues[0].message.contains("02/30/1990"));
        assert_eq!(candidate.issues[0].field.as_deref(), Some("date_of_birth"));
    }

    #[test]
    fn wrong_json_types_are_field_type_issues_not_failures() {
        let candidate = check(with("phone", json!(33612345678u64)));
        assert_eq!(codes(&candidate), ["FIELD_TYPE_INVALID"]);
        assert!(candidate.issues[0]
            .message
            .contains("the number 33612345678"));
        assert_eq!(
            codes(&check(with("first_name", json!(["Ada"])))),
            ["FIELD_TYPE_INVALID"]
        );
        assert_eq!(
            codes(&check(with("teams", json!("Sales")))),
            ["FIELD_TYPE_INVALID"]
        );
        assert_eq!(
            codes(&check(with("custom_fields", json!([])))),
            ["FIELD_TYPE_INVALID"]
        );
    }

    #[test]
    fn numeric_external_ids_are_accepted_as_text() {
        let candidate = check(with("external_id", json!(1042)));
        assert_eq!(candidate.record.unwrap().external_id, "1042");
        assert_eq!(
            codes(&check(with("external_id", json!(-3)))),
            ["FIELD_TYPE_INVALID"]
        );
    }

    #[test]
    fn length_limits_and_control_characters() {
        assert_eq!(
            codes(&check(with("last_name", json!("x".repeat(256))))),
            ["FIELD_TOO_LONG"]
        );
        assert!(check(with("last_name", json!("x".repeat(255))))
            .issues
            .is_empty());
        let long_email = format!("{}@example.com", "a".repeat(250));
        assert_eq!(
            codes(&check(with("email", json!(long_email)))),
            ["FIELD_TOO_LONG"]
        );
        assert_eq!(
            codes(&check(with("first_name", json!("Ada\nLine")))),
            ["FIELD_INVALID_CHARACTERS"]
        );
        assert_eq!(
            codes(&check(with("external_id", json!("E\u{0}1")))),
            ["FIELD_INVALID_CHARACTERS"]
        );
    }

    #[test]
    fn rescinded_and_terminated_people_need_no_start_date() {
        let mut record = valid();
        record.as_object_mut().unwrap().remove("start_date");
        assert_eq!(codes(&check(record.clone())), ["MISSING_START_DATE"]);
        record["employment_status"] = json!("rescinded");
        assert!(check(record.clone()).issues.is_empty());
        record["employment_status"] = json!("terminated");
        assert!(check(record).issues.is_empty());
    }

    #[test]
    fn dates_must_be_iso_and_ordered() {
        assert_eq!(
            codes(&check(with("start_date", json!("01/15/2024")))),
            ["START_DATE_INVALID"]
        );
        assert_eq!(
            codes(&check(with("end_date", json!("2024-13-01")))),
            ["END_DATE_INVALID"]
        );
        assert_eq!(
            codes(&check(with("end_date", json!("2023-12-31")))),
            ["END_DATE_BEFORE_START_DATE"]
        );
        assert!(check(with("end_date", json!("2024-01-15")))
            .issues
            .is_empty());
    }

    #[test]
    fn closed_vocabularies_reject_other_words() {
        assert_eq!(
            codes(&check(with("role", json!("owner")))),
            ["ROLE_INVALID"]
        );
        assert_eq!(
            codes(&check(with("approval_process", json!("some")))),
            ["APPROVAL_PROCESS_INVALID"]
        );
        assert_eq!(
            codes(&check(with("employment_status", json!("retired")))),
            ["EMPLOYMENT_STATUS_INVALID"]
        );
        let record = check(with("role", json!("Guest"))).record.unwrap();
        assert_eq!(record.role, Some(Role::Guest));
    }

    #[test]
    fn optional_fields_are_checked_only_when_present_unless_required() {
        assert!(check(with("phone", Value::Null)).issues.is_empty());
        let settings = ProvisioningSettings {
            required_fields: vec![RequirableField::Phone, RequirableField::DateOfBirth],
            ..ProvisioningSettings::default()
        };
        let candidate = check_with(&settings, valid());
        assert_eq!(
            codes(&candidate),
            [
                "DATE_OF_BIRTH_IS_MISSING_OR_INVALID",
                "PHONE_IS_MISSING_OR_INVALID"
            ]
        );
    }

    #[test]
    fn null_clears_and_absence_keeps() {
        let record = check(with("phone", Value::Null)).record.unwrap();
        assert_eq!(record.phone, Patch::Clear);
        let record = check(with("manager_external_id", json!("")))
            .record
            .unwrap();
        assert_eq!(record.manager_external_id, Patch::Clear);
        let record = check(valid()).record.unwrap();
        assert_eq!(record.manager_external_id, Patch::Keep);
        assert_eq!(record.teams, None);
    }

    #[test]
    fn bad_team_names_are_warnings_and_duplicates_collapse() {
        let candidate = check(with("teams", json!(["Sales", "sales ", "", 42, "Ops"])));
        assert_eq!(
            codes(&candidate),
            ["TEAM_NAME_INVALID", "TEAM_NAME_INVALID"]
        );
        assert!(candidate
            .issues
            .iter()
            .all(|i| i.severity() == Severity::Warning));
        assert_eq!(
            candidate.record.unwrap().teams,
            Some(vec!["Sales".to_owned(), "Ops".to_owned()])
        );
    }

    #[test]
    fn custom_fields_follow_their_definitions() {
        let settings = ProvisioningSettings {
            custom_fields: vec![
                CustomFieldDefinition {
                    key: "cost_center".into(),
                    field_type: CustomFieldType::String,
                    required: false,
                },
                CustomFieldDefinition {
                    key: "seniority".into(),
                    field_type: CustomFieldType::Number,
                    required: false,
                },
                CustomFieldDefinition {
                    key: "badge".into(),
                    field_type: CustomFieldType::Boolean,
                    required: true,
                },
            ],
            ..ProvisioningSettings::default()
        };
        let candidate = check_with(
            &settings,
            with(
                "custom_fields",
                json!({"cost_center": "CC-1", "seniority": "high", "shoe": 42}),
            ),
        );
        assert_eq!(
            codes(&candidate),
            [
                "CUSTOM_FIELD_TYPE_MISMATCH",
                "CUSTOM_FIELD_UNKNOWN",
                "CUSTOM_FIELD_REQUIRED"
            ]
        );
        assert_eq!(
            candidate.issues[0].field.as_deref(),
            Some("custom_fields.seniority")
        );
        let candidate = check_with(
            &settings,
            with("custom_fields", json!({"badge": true, "cost_center": null})),
        );
        let record = candidate.record.unwrap();
        assert_eq!(record.custom_fields.get("badge"), Some(&Some(json!(true))));
        assert_eq!(record.custom_fields.get("cost_center"), Some(&None));
    }

    #[test]
    fn a_required_custom_field_of_the_wrong_type_skips_the_record_and_dates_are_iso() {
        let settings = ProvisioningSettings {
            custom_fields: vec![
                CustomFieldDefinition {
                    key: "badge".into(),
                    field_type: CustomFieldType::Boolean,
                    required: true,
                },
                CustomFieldDefinition {
                    key: "until".into(),
                    field_type: CustomFieldType::Date,
                    required: false,
                },
            ],
            ..ProvisioningSettings::default()
        };
        let candidate = check_with(
            &settings,
            with(
                "custom_fields",
                json!({"badge": "yes", "until": "2027-02-30"}),
            ),
        );
        assert_eq!(
            codes(&candidate),
            [
                "CUSTOM_FIELD_TYPE_MISMATCH",
                "CUSTOM_FIELD_TYPE_MISMATCH",
                "CUSTOM_FIELD_REQUIRED"
            ]
        );
        assert!(candidate.is_skipped());
        assert!(candidate.issues[2].message.contains("is not a boolean"));
        let candidate = check_with(
            &settings,
            with(
                "custom_fields",
                json!({"badge": false, "until": "2027-02-28"}),
            ),
        );
        let record = candidate.record.unwrap();
        assert_eq!(
            record.custom_fields.get("until"),
            Some(&Some(json!("2027-02-28")))
        );
    }
}
