//! A pushed record as received: every known field kept as raw JSON, nothing checked yet.
//!
//! Reading a record never fails on its content: a field of the wrong type becomes an issue in
//! `validate`, not a failed push. Keys that are not fields are remembered so that the run can
//! tell the integrator once, instead of failing or warning on every record.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

/// A field of a record: absent, explicitly `null`, or some JSON value.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Field {
    #[default]
    Absent,
    Null,
    Value(Value),
}

/// The record fields of DESIGN.md, in the order reports show them.
pub const FIELD_NAMES: &[&str] = &[
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
    "custom_fields",
];

/// Unknown keys remembered per record.
const MAX_UNKNOWN_FIELDS: usize = 20;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawRecord {
    pub external_id: Field,
    pub email: Field,
    pub username: Field,
    pub first_name: Field,
    pub last_name: Field,
    pub start_date: Field,
    pub end_date: Field,
    pub date_of_birth: Field,
    pub gender: Field,
    pub phone: Field,
    pub manager_external_id: Field,
    pub role: Field,
    pub approval_process: Field,
    pub employment_status: Field,
    pub teams: Field,
    pub custom_fields: Field,
    /// Keys that are not record fields, e.g. a misspelt `firstName`.
    pub unknown_fields: Vec<String>,
}

impl RawRecord {
    /// The field named `key` (a JSON field name), if it is one.
    pub fn slot(&mut self, key: &str) -> Option<&mut Field> {
        Some(match key {
            "external_id" => &mut self.external_id,
            "email" => &mut self.email,
            "username" => &mut self.username,
            "first_name" => &mut self.first_name,
            "last_name" => &mut self.last_name,
            "start_date" => &mut self.start_date,
            "end_date" => &mut self.end_date,
            "date_of_birth" => &mut self.date_of_birth,
            "gender" => &mut self.gender,
            "phone" => &mut self.phone,
            "manager_external_id" => &mut self.manager_external_id,
            "role" => &mut self.role,
            "approval_process" => &mut self.approval_process,
            "employment_status" => &mut self.employment_status,
            "teams" => &mut self.teams,
            "custom_fields" => &mut self.custom_fields,
            _ => return None,
        })
    }
}

impl<'de> Deserialize<'de> for RawRecord {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RawRecord, D::Error> {
        deserializer.deserialize_map(RawRecordVisitor)
    }
}

struct RawRecordVisitor;

impl<'de> Visitor<'de> for RawRecordVisitor {
    type Value = RawRecord;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object describing one person")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawRecord, A::Error> {
        let mut record = RawRecord::default();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match record.slot(&key) {
                Some(slot) => {
                    *slot = match map.next_value::<Value>()? {
                        Value::Null => Field::Null,
                        value => Field::Value(value),
                    };
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                    // A few names are enough to tell the integrator; a record with thousands
                    // of unknown keys must not cost thousands of comparisons each.
                    let remembered = record.unknown_fields.len() < MAX_UNKNOWN_FIELDS;
                    if remembered && !record.unknown_fields.iter().any(|known| *known == key) {
                        record.unknown_fields.push(key.into_owned());
                    }
                }
            }
        }
        Ok(record)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, _seq: A) -> Result<RawRecord, A::Error> {
        Err(de::Error::invalid_type(de::Unexpected::Seq, &self))
    }
}

/// The external id and e-mail address of a record that cannot be read as a [`RawRecord`]
/// (nested too deep, a number out of range…), as far as they can be found: the record's
/// top-level keys are read and every other value is skipped unparsed (skipping a value has no
/// depth limit), and an id or address is kept when it is text or a number. `(None, None)`
/// when not even that can be read.
pub fn recover_identity(raw: &serde_json::value::RawValue) -> (Option<String>, Option<String>) {
    struct Identity;

    impl<'de> Visitor<'de> for Identity {
        type Value = (Option<String>, Option<String>);

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let (mut external_id, mut email) = (None, None);
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                let value = map.next_value::<&'de serde_json::value::RawValue>()?;
                let slot = match key.as_ref() {
                    "external_id" => &mut external_id,
                    "email" => &mut email,
                    _ => continue,
                };
                *slot = match serde_json::from_str::<Value>(value.get()) {
                    Ok(Value::String(text)) => Some(text.chars().take(255).collect()),
                    Ok(Value::Number(number)) => Some(number.to_string()),
                    _ => None,
                };
            }
            Ok((external_id, email))
        }
    }

    let mut deserializer = serde_json::Deserializer::from_str(raw.get());
    deserializer
        .deserialize_map(Identity)
        .unwrap_or((None, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(json: &str) -> (Option<String>, Option<String>) {
        let raw: Box<serde_json::value::RawValue> = serde_json::from_str(json).unwrap();
        recover_identity(&raw)
    }

    #[test]
    fn an_unreadable_record_keeps_its_external_id_and_email() {
        let deep = format!("{}1{}", "[".repeat(300), "]".repeat(300));
        let json = format!(
            r#"{{"external_id": "E7", "custom_fields": {deep}, "email": "ada@example.com"}}"#
        );
        assert!(serde_json::from_str::<RawRecord>(&json).is_err());
        assert_eq!(
            identity(&json),
            (Some("E7".to_owned()), Some("ada@example.com".to_owned()))
        );
        let out_of_range = r#"{"external_id": 1042, "phone": 1e999}"#;
        assert!(serde_json::from_str::<RawRecord>(out_of_range).is_err());
        assert_eq!(identity(out_of_range), (Some("1042".to_owned()), None));
    }

    #[test]
    fn an_identity_of_the_wrong_type_is_not_recovered() {
        assert_eq!(
            identity(r#"{"external_id": ["E7"], "email": {"a": 1}}"#),
            (None, None)
        );
        assert_eq!(identity("[1, 2]"), (None, None));
    }

    #[test]
    fn known_fields_are_kept_raw_and_unknown_keys_remembered() {
        let record: RawRecord = serde_json::from_str(
            r#"{"external_id": 42, "email": "a@b.co", "phone": null, "firstName": "Ada", "x": {}}"#,
        )
        .unwrap();
        assert_eq!(record.external_id, Field::Value(serde_json::json!(42)));
        assert_eq!(record.email, Field::Value(serde_json::json!("a@b.co")));
        assert_eq!(record.phone, Field::Null);
        assert_eq!(record.first_name, Field::Absent);
        assert_eq!(record.unknown_fields, vec!["firstName", "x"]);
    }

    #[test]
    fn every_listed_field_has_a_slot() {
        let mut record = RawRecord::default();
        for name in FIELD_NAMES {
            assert!(record.slot(name).is_some(), "{name}");
        }
    }
}
