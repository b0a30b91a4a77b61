//! The conditions of the provisioning rules (`group_rules`, `sync_perimeter.when`), evaluated on
//! a user: the row a run leaves, or a new person's record.
//!
//! A field has a list of values (`teams` has one per team, an unset field none); a condition
//! holds when one of them equals the expected value (`equals`) or one of the listed ones
//! (`in`). Text is compared trimmed and without regard to case, numbers by value.

use serde_json::{Map, Value};

use crate::domain::{FieldCondition, Role};
use crate::store::models::UserRow;
use crate::sync::candidate::{Patch, Record};

/// The prefix of a custom field in a condition: `custom.cost_center`.
pub const CUSTOM_PREFIX: &str = "custom.";

/// Whether `condition` holds for a subject whose field values `values` gives.
pub fn holds(condition: &FieldCondition, values: impl Fn(&str) -> Vec<Value>) -> bool {
    let found = values(condition.field.trim());
    let expected_one = condition.equals.as_ref().map(std::slice::from_ref);
    let expected = match (expected_one, condition.one_of.as_deref()) {
        (Some(one), None) => one,
        (None, Some(many)) => many,
        // Both or neither: the settings API refuses such a rule; never match one.
        _ => return false,
    };
    found
        .iter()
        .any(|value| expected.iter().any(|wanted| same(value, wanted)))
}

fn same(value: &Value, wanted: &Value) -> bool {
    match (value, wanted) {
        (Value::String(a), Value::String(b)) => a.trim().to_lowercase() == b.trim().to_lowercase(),
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (a, b) => a == b,
    }
}

/// The values of `field` on a stored (or about to be stored) user.
pub fn row_values(user: &UserRow, manager_external_id: Option<&str>, field: &str) -> Vec<Value> {
    if let Some(key) = field.strip_prefix(CUSTOM_PREFIX) {
        let custom: Map<String, Value> =
            serde_json::from_str(&user.custom_fields).unwrap_or_default();
        return custom.get(key).cloned().into_iter().collect();
    }
    let text = |value: Option<&str>| {
        value
            .map(|v| Value::String(v.to_owned()))
            .into_iter()
            .collect()
    };
    match field {
        "teams" => serde_json::from_str::<Vec<String>>(&user.teams)
            .unwrap_or_default()
            .into_iter()
            .map(Value::String)
            .collect(),
        "external_id" => text(user.external_id.as_deref()),
        "email" => text(Some(&user.email)),
        "username" => text(user.username.as_deref()),
        "first_name" => text(Some(&user.first_name)),
        "last_name" => text(Some(&user.last_name)),
        "start_date" => text(user.start_date.as_deref()),
        "end_date" => text(user.end_date.as_deref()),
        "date_of_birth" => text(user.date_of_birth.as_deref()),
        "gender" => text(user.gender.as_deref()),
        "phone" => text(user.phone.as_deref()),
        "manager_external_id" => text(manager_external_id),
        "role" => text(Some(&user.role)),
        "approval_process" => text(Some(&user.approval_process)),
        "employment_status" => text(Some(&user.employment_status)),
        _ => Vec::new(),
    }
}

/// The values of `field` on a record, for a person the directory does not know yet: what the
/// record leaves unset has no value (and the role is `member` unless the record says).
pub fn record_values(record: &Record, field: &str) -> Vec<Value> {
    if let Some(key) = field.strip_prefix(CUSTOM_PREFIX) {
        return record
            .custom_fields
            .get(key)
            .cloned()
            .flatten()
            .into_iter()
            .collect();
    }
    fn set<T: ToString>(patch: &Patch<T>) -> Vec<Value> {
        match patch {
            Patch::Set(value) => vec![Value::String(value.to_string())],
            Patch::Keep | Patch::Clear => Vec::new(),
        }
    }
    let text = |value: &str| vec![Value::String(value.to_owned())];
    match field {
        "teams" => record
            .teams
            .iter()
            .flatten()
            .map(|team| Value::String(team.clone()))
            .collect(),
        "external_id" => text(&record.external_id),
        "email" => text(record.email.as_str()),
        "username" => match &record.username {
            Patch::Set(username) => text(username.as_str()),
            _ => Vec::new(),
        },
        "first_name" => text(&record.first_name),
        "last_name" => text(&record.last_name),
        "start_date" => set(&record.start_date),
        "end_date" => set(&record.end_date),
        "date_of_birth" => set(&record.date_of_birth),
        "gender" => match &record.gender {
            Patch::Set(gender) => text(gender.as_str()),
            _ => Vec::new(),
        },
        "phone" => match &record.phone {
            Patch::Set(phone) => text(phone.as_str()),
            _ => Vec::new(),
        },
        "manager_external_id" => set(&record.manager_external_id),
        "role" => text(record.role.unwrap_or(Role::Member).as_str()),
        "approval_process" => record
            .approval_process
            .map(|process| text(process.as_str()))
            .unwrap_or_default(),
        "employment_status" => text(record.employment_status.as_str()),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::sync::test_fixtures::{candidates, person, stored};

    fn condition(value: Value) -> FieldCondition {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn teams_match_when_any_team_equals_ignoring_case_and_spaces() {
        let mut user = stored("u-1", "E1");
        user.teams = r#"["Ops","Sales EMEA"]"#.to_owned();
        let values = |field: &str| row_values(&user, None, field);
        assert!(holds(
            &condition(json!({"field": "teams", "equals": " sales emea"})),
            values
        ));
        assert!(!holds(
            &condition(json!({"field": "teams", "equals": "Sales"})),
            values
        ));
        assert!(holds(
            &condition(json!({"field": "teams", "in": ["HR", "ops"]})),
            values
        ));
    }

    #[test]
    fn custom_fields_compare_numbers_by_value_and_keep_types_apart() {
        let mut user = stored("u-1", "E1");
        user.custom_fields = r#"{"level": 3, "remote": true, "cost_center": "CC-1"}"#.to_owned();
        let values = |field: &str| row_values(&user, None, field);
        assert!(holds(
            &condition(json!({"field": "custom.level", "equals": 3.0})),
            values
        ));
        assert!(!holds(
            &condition(json!({"field": "custom.level", "equals": "3"})),
            values
        ));
        assert!(holds(
            &condition(json!({"field": "custom.remote", "equals": true})),
            values
        ));
        assert!(holds(
            &condition(json!({"field": "custom.cost_center", "in": ["cc-1", "CC-2"]})),
            values
        ));
        assert!(!holds(
            &condition(json!({"field": "custom.missing", "equals": null})),
            values
        ));
    }

    #[test]
    fn record_fields_and_unknown_fields() {
        let user = stored("u-1", "E1");
        let values = |field: &str| row_values(&user, Some("BOSS"), field);
        assert!(holds(
            &condition(json!({"field": "employment_status", "equals": "active"})),
            values
        ));
        assert!(holds(
            &condition(json!({"field": "manager_external_id", "equals": "boss"})),
            values
        ));
        assert!(!holds(
            &condition(json!({"field": "shoe_size", "equals": "42"})),
            values
        ));
    }

    #[test]
    fn a_condition_with_both_or_neither_test_never_holds() {
        let user = stored("u-1", "E1");
        let values = |field: &str| row_values(&user, None, field);
        assert!(!holds(
            &condition(json!({"field": "role", "equals": "member", "in": ["member"]})),
            values
        ));
        assert!(!holds(&condition(json!({"field": "role"})), values));
    }

    #[test]
    fn a_new_record_is_read_as_it_will_be_created() {
        let candidates = candidates(vec![person(
            "E1",
            json!({"teams": ["Sales"], "custom_fields": {}}),
        )]);
        let record = candidates[0].record.as_ref().unwrap();
        let values = |field: &str| record_values(record, field);
        assert!(holds(
            &condition(json!({"field": "teams", "equals": "sales"})),
            values
        ));
        assert!(holds(
            &condition(json!({"field": "role", "equals": "member"})),
            values
        ));
        assert!(holds(
            &condition(json!({"field": "email", "equals": "e1@example.com"})),
            values
        ));
        assert!(!holds(
            &condition(json!({"field": "phone", "in": ["+1 555"]})),
            values
        ));
    }
}
