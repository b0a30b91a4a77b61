//! The body of a push: the envelope checked when the push arrives, the records read when the
//! run is processed.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use xxhash_rust::xxh3::xxh3_128;

use crate::domain::{check_text, SyncMode};
use crate::error::FieldError;
use crate::store::runs::{self, Idempotency, NewRun, Stored};
use crate::store::DbConn;
use crate::sync::candidate::Candidate;
use crate::sync::record::{recover_identity, RawRecord};
use crate::sync::validate::{validate, Rules};

/// The source name when a push does not give one.
pub const DEFAULT_SOURCE: &str = "api";
const SOURCE_MAX_LENGTH: usize = 100;
/// Envelope errors listed at most, so that a broken 100,000-record push gets a readable answer.
const MAX_LISTED_ERRORS: usize = 20;

/// What a push asks for, checked before it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct PushEnvelope {
    pub source: String,
    pub mode: SyncMode,
    pub dry_run: bool,
    pub record_count: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvelopeShape<'a> {
    #[serde(borrow, default)]
    source: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    mode: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    dry_run: Option<&'a RawValue>,
    #[serde(default)]
    users: Option<UsersShape>,
}

/// Keeps a present field's raw value, `null` included (serde would read `null` as absent).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&'de RawValue>::deserialize(deserializer).map(Some)
}

/// `users` as the envelope check sees it, read in the same pass as the envelope: how many
/// records, and which elements are not objects (the first few).
enum UsersShape {
    List {
        count: usize,
        not_objects: Vec<usize>,
    },
    NotAList,
}

impl<'de> Deserialize<'de> for UsersShape {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<UsersShape, D::Error> {
        deserializer.deserialize_any(UsersShapeVisitor)
    }
}

struct UsersShapeVisitor;

impl<'de> Visitor<'de> for UsersShapeVisitor {
    type Value = UsersShape;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of employee records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<UsersShape, A::Error> {
        let mut count = 0;
        let mut not_objects = Vec::new();
        while let Some(raw) = seq.next_element::<&'de RawValue>()? {
            if !raw.get().starts_with('{') && not_objects.len() < MAX_LISTED_ERRORS {
                not_objects.push(count);
            }
            count += 1;
        }
        Ok(UsersShape::List { count, not_objects })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UsersShape, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(UsersShape::NotAList)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<UsersShape, E> {
        Ok(UsersShape::NotAList)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<UsersShape, E> {
        Ok(UsersShape::NotAList)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<UsersShape, E> {
        Ok(UsersShape::NotAList)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<UsersShape, E> {
        Ok(UsersShape::NotAList)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<UsersShape, E> {
        Ok(UsersShape::NotAList)
    }

    fn visit_unit<E: de::Error>(self) -> Result<UsersShape, E> {
        Ok(UsersShape::NotAList)
    }
}

/// Checks a JSON push: a JSON object with `users` a list of objects, `mode` `full` or
/// `incremental` (default `incremental`), `dry_run` a boolean (default false), `source` a short
/// text (default `api`). The records themselves are not read here: a broken record is an issue
/// of the run, not a failed push.
pub fn check_json_envelope(
    body: &str,
    max_records: usize,
) -> Result<PushEnvelope, Vec<FieldError>> {
    // serde would also read a struct from a JSON array, by position.
    if !body.trim_start().starts_with('{') && serde_json::from_str::<IgnoredAny>(body).is_ok() {
        return Err(vec![FieldError::new(
            "",
            "the body must be a JSON object with a \"users\" list",
        )]);
    }
    let shape: EnvelopeShape<'_> = serde_json::from_str(body).map_err(|error| {
        let detail = if error.is_data() {
            format!("the body must be a JSON object with a \"users\" list: {error}")
        } else {
            format!("the body is not valid JSON: {error}")
        };
        vec![FieldError::new("", detail)]
    })?;
    let mut errors = Vec::new();

    let source = match shape
        .source
        .map(|raw| serde_json::from_str::<Option<String>>(raw.get()))
    {
        None | Some(Ok(None)) => DEFAULT_SOURCE.to_owned(),
        Some(Ok(Some(source)))
            if !source.trim().is_empty() && check_text(&source, SOURCE_MAX_LENGTH).is_ok() =>
        {
            source.trim().to_owned()
        }
        Some(_) => {
            errors.push(FieldError::new(
                "/source",
                format!("must be a non-blank text of at most {SOURCE_MAX_LENGTH} characters, without control characters"),
            ));
            String::new()
        }
    };
    let mode = match shape
        .mode
        .map(|raw| serde_json::from_str::<String>(raw.get()))
    {
        None => SyncMode::Incremental,
        Some(Ok(mode)) => SyncMode::from_stored(&mode).unwrap_or_else(|| {
            errors.push(FieldError::new(
                "/mode",
                format!("must be \"full\" or \"incremental\", got {mode:?}"),
            ));
            SyncMode::Incremental
        }),
        Some(Err(_)) => {
            errors.push(FieldError::new(
                "/mode",
                "must be \"full\" or \"incremental\"",
            ));
            SyncMode::Incremental
        }
    };
    let dry_run = match shape
        .dry_run
        .map(|raw| serde_json::from_str::<bool>(raw.get()))
    {
        None => false,
        Some(Ok(dry_run)) => dry_run,
        Some(Err(_)) => {
            errors.push(FieldError::new("/dry_run", "must be true or false"));
            false
        }
    };
    let record_count = match shape.users {
        None => {
            errors.push(FieldError::new(
                "/users",
                "is required: the list of employee records",
            ));
            0
        }
        Some(UsersShape::NotAList) => {
            errors.push(FieldError::new(
                "/users",
                "must be a list of employee records (JSON objects)",
            ));
            0
        }
        Some(UsersShape::List { count, .. }) if count > max_records => {
            errors.push(FieldError::new(
                "/users",
                format!("has {count} records; a push takes at most {max_records}"),
            ));
            count
        }
        Some(UsersShape::List { count, not_objects }) => {
            for index in not_objects {
                errors.push(FieldError::new(
                    format!("/users/{index}"),
                    "must be a JSON object",
                ));
            }
            count
        }
    };
    if errors.is_empty() {
        Ok(PushEnvelope {
            source,
            mode,
            dry_run,
            record_count,
        })
    } else {
        Err(errors)
    }
}

/// A JSON push as it arrives.
pub struct JsonPush<'a> {
    pub organization_id: &'a str,
    pub body: &'a [u8],
    pub idempotency_key: Option<&'a str>,
    pub max_records: usize,
}

/// Why a push was not stored.
#[derive(Debug)]
pub enum PushRejected {
    /// The body is not a well-formed push: where and why.
    Malformed(Vec<FieldError>),
    Store(diesel::result::Error),
}

/// Checks a JSON push's envelope and stores it durably as a pending run (or finds the run
/// its Idempotency-Key already made). The records are read later, by the run.
pub fn store_json_push(conn: &mut DbConn, push: &JsonPush<'_>) -> Result<Stored, PushRejected> {
    let text = std::str::from_utf8(push.body).map_err(|_| {
        PushRejected::Malformed(vec![FieldError::new("", "the body is not UTF-8 text")])
    })?;
    let envelope = check_json_envelope(text, push.max_records).map_err(PushRejected::Malformed)?;
    let request_hash = format!("{:032x}", xxh3_128(push.body));
    let new = NewRun {
        organization_id: push.organization_id,
        mode: envelope.mode,
        source: &envelope.source,
        dry_run: envelope.dry_run,
        content_type: JSON_CONTENT_TYPE,
        body: text,
        record_count: envelope.record_count,
        retry_of: None,
        idempotency: push.idempotency_key.map(|key| Idempotency {
            key,
            request_hash: &request_hash,
        }),
    };
    runs::insert(conn, &new).map_err(PushRejected::Store)
}

/// The content type of JSON pushes, as stored with the run.
pub const JSON_CONTENT_TYPE: &str = "application/json";

/// The records of a stored push, validated as they are read.
pub struct ReadRecords {
    pub candidates: Vec<Candidate>,
    /// Keys that are not record fields: how many records carry each, and the first row.
    pub unknown_fields: BTreeMap<String, (usize, u32)>,
}

/// Reads the `users` of a stored JSON push and validates each record as it is read, so that
/// the raw records are never all in memory at once. `progress` is called every
/// `PROGRESS_EVERY` records with the number read so far.
pub fn read_json_records(
    body: &str,
    rules: &Rules<'_>,
    progress: &mut dyn FnMut(usize),
) -> Result<ReadRecords, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(body);
    let read = BodySeed { rules, progress }.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(read)
}

pub const PROGRESS_EVERY: usize = 10_000;

struct BodySeed<'r, 'p> {
    rules: &'r Rules<'r>,
    progress: &'p mut dyn FnMut(usize),
}

impl<'de> DeserializeSeed<'de> for BodySeed<'_, '_> {
    type Value = ReadRecords;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<ReadRecords, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for BodySeed<'_, '_> {
    type Value = ReadRecords;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a push: a JSON object with a \"users\" list")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ReadRecords, A::Error> {
        let mut read = None;
        let BodySeed { rules, progress } = self;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "users" && read.is_none() {
                read = Some(map.next_value_seed(RecordsSeed {
                    rules,
                    progress: &mut *progress,
                })?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        read.ok_or_else(|| de::Error::missing_field("users"))
    }
}

struct RecordsSeed<'r, 'p> {
    rules: &'r Rules<'r>,
    progress: &'p mut dyn FnMut(usize),
}

impl<'de> DeserializeSeed<'de> for RecordsSeed<'_, '_> {
    type Value = ReadRecords;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<ReadRecords, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RecordsSeed<'_, '_> {
    type Value = ReadRecords;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of employee records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ReadRecords, A::Error> {
        let mut read = ReadRecords {
            candidates: Vec::with_capacity(seq.size_hint().unwrap_or(0)),
            unknown_fields: BTreeMap::new(),
        };
        while let Some(element) = seq.next_element::<&'de RawValue>()? {
            let row = u32::try_from(read.candidates.len() + 1).unwrap_or(u32::MAX);
            // Read each record on its own: one that serde cannot read (nested too deep, a
            // number out of range) is an issue of that record, not a failed run.
            let candidate = match serde_json::from_str::<RawRecord>(element.get()) {
                Ok(raw) => {
                    for key in &raw.unknown_fields {
                        read.unknown_fields.entry(key.clone()).or_insert((0, row)).0 += 1;
                    }
                    validate(row, &raw, self.rules)
                }
                Err(error) => {
                    let (external_id, email) = recover_identity(element);
                    Candidate::unreadable(row, &error.to_string()).named(external_id, email)
                }
            };
            read.candidates.push(candidate);
            if read.candidates.len().is_multiple_of(PROGRESS_EVERY) {
                (self.progress)(read.candidates.len());
            }
        }
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_json_envelope_default(body: &str) -> Result<PushEnvelope, Vec<FieldError>> {
        check_json_envelope(body, 10)
    }

    #[test]
    fn a_push_over_the_record_cap_is_refused() {
        let body = format!("{{\"users\": [{}]}}", ["{}"; 11].join(","));
        let errors = check_json_envelope(&body, 10).unwrap_err();
        assert_eq!(errors[0].pointer, "/users");
        assert!(
            errors[0].detail.contains("at most 10"),
            "{}",
            errors[0].detail
        );
        assert!(check_json_envelope(&body, 11).is_ok());
    }

    #[test]
    fn null_mode_or_dry_run_is_refused() {
        assert!(check_json_envelope(r#"{"users": [], "mode": null}"#, 10).is_err());
        assert!(check_json_envelope(r#"{"users": [], "dry_run": null}"#, 10).is_err());
        assert!(check_json_envelope(r#"{"users": [], "source": null}"#, 10).is_ok());
    }

    #[test]
    fn a_record_too_deep_to_read_is_an_issue_of_that_record() {
        let settings = crate::domain::ProvisioningSettings::default();
        let rules = Rules {
            settings: &settings,
            today: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
        };
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        let body =
            format!("{{\"users\": [{{\"external_id\": \"E1\"}}, {{\"custom_fields\": {deep}}}]}}");
        assert!(check_json_envelope(&body, 10).is_ok());
        let read = read_json_records(&body, &rules, &mut |_| {}).unwrap();
        assert_eq!(read.candidates.len(), 2);
        assert_eq!(
            read.candidates[1].issues[0].code,
            crate::catalogue::IssueCode::FIELD_TYPE_INVALID
        );
        assert!(read.candidates[1].issues[0]
            .message
            .contains("cannot be read"));
    }

    #[test]
    fn an_unreadable_record_is_named_by_the_identity_it_still_has() {
        let settings = crate::domain::ProvisioningSettings::default();
        let rules = Rules {
            settings: &settings,
            today: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
        };
        let body = r#"{"users": [
            {"external_id": " E9 ", "email": "Ada@Example.com", "phone": 1e999},
            {"external_id": 7, "email": "not an address", "phone": 1e999}
        ]}"#;
        let read = read_json_records(body, &rules, &mut |_| {}).unwrap();
        let [first, second] = read.candidates.as_slice() else {
            panic!("two records");
        };
        assert!(first.issues[0].message.contains("cannot be read"));
        assert_eq!(first.shown.external_id.as_deref(), Some(" E9 "));
        assert_eq!(first.external_id.as_deref(), Some("E9"));
        assert_eq!(first.email_key.as_deref(), Some("ada@example.com"));
        assert_eq!(second.external_id.as_deref(), Some("7"));
        assert_eq!(second.shown.email.as_deref(), Some("not an address"));
        assert_eq!(second.email_key, None);
    }

    fn pointers(body: &str) -> Vec<String> {
        check_json_envelope_default(body)
            .unwrap_err()
            .into_iter()
            .map(|e| e.pointer)
            .collect()
    }

    #[test]
    fn a_well_formed_envelope_is_accepted_with_defaults() {
        let envelope = check_json_envelope_default(r#"{"users": [{}, {"email": 1}]}"#).unwrap();
        assert_eq!(
            envelope,
            PushEnvelope {
                source: "api".into(),
                mode: SyncMode::Incremental,
                dry_run: false,
                record_count: 2
            }
        );
        let envelope = check_json_envelope_default(
            r#"{"source": "bamboohr", "mode": "full", "dry_run": true, "users": []}"#,
        )
        .unwrap();
        assert_eq!(envelope.mode, SyncMode::Full);
        assert!(envelope.dry_run);
        assert_eq!(envelope.source, "bamboohr");
    }

    #[test]
    fn broken_envelopes_point_at_every_problem() {
        assert_eq!(
            pointers(r#"{"mode": "everything", "dry_run": "yes"}"#),
            ["/mode", "/dry_run", "/users"]
        );
        assert_eq!(pointers(r#"{"users": {"a": 1}}"#), ["/users"]);
        assert_eq!(
            pointers(r#"{"users": [{}, 3, "x", null]}"#),
            ["/users/1", "/users/2", "/users/3"]
        );
        assert_eq!(pointers(r#"{"users": [], "source": 12}"#), ["/source"]);
        assert_eq!(pointers(r#"[{"users": []}]"#), [""]);
        assert_eq!(pointers(r#"{"users": [], "extra": 1}"#), [""]);
        assert_eq!(pointers(r#"{"users": [}"#), [""]);
    }

    #[test]
    fn records_are_validated_while_read_and_unknown_fields_counted() {
        let settings = crate::domain::ProvisioningSettings::default();
        let rules = Rules {
            settings: &settings,
            today: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
        };
        let body = r#"{"mode": "full", "users": [
            {"external_id": "1", "firstName": "A"},
            {"external_id": "2", "firstName": "B", "nickname": "b"}
        ], "source": "x"}"#;
        let mut calls = 0;
        let read = read_json_records(body, &rules, &mut |_| calls += 1).unwrap();
        assert_eq!(read.candidates.len(), 2);
        assert_eq!(read.candidates[1].row, 2);
        assert_eq!(read.unknown_fields.get("firstName"), Some(&(2, 1)));
        assert_eq!(read.unknown_fields.get("nickname"), Some(&(1, 2)));
        assert_eq!(calls, 0);
    }
}
