//! A push as it arrives: checked (the JSON envelope, or the CSV file as a whole) and stored
//! durably as a pending run. The records are read later, by the run (`sync::intake`).

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use xxhash_rust::xxh3::xxh3_128;

use crate::domain::{check_text, SyncMode};
use crate::error::FieldError;
use crate::store::runs::{self, Idempotency, NewRun, Stored};
use crate::store::DbConn;
use crate::sync::intake::csv::check_upload;
pub use crate::sync::intake::JSON_CONTENT_TYPE;

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
        Some(Ok(Some(source))) if is_valid_source(&source) => source.trim().to_owned(),
        Some(_) => {
            errors.push(FieldError::new("/source", SOURCE_RULE));
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

const SOURCE_RULE: &str =
    "must be a non-blank text of at most 100 characters, without control characters";

fn is_valid_source(source: &str) -> bool {
    !source.trim().is_empty() && check_text(source, SOURCE_MAX_LENGTH).is_ok()
}

/// The query parameters of a CSV upload, as given.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UploadParams {
    pub source: Option<String>,
    pub mode: Option<String>,
    pub dry_run: Option<String>,
}

/// Checks the query parameters of a CSV upload: the same rules and defaults as the fields of
/// a JSON envelope. Each problem is a sentence.
pub fn check_upload_params(params: &UploadParams) -> Result<(String, SyncMode, bool), Vec<String>> {
    let mut errors = Vec::new();
    let source = match params.source.as_deref() {
        None => DEFAULT_SOURCE.to_owned(),
        Some(source) if is_valid_source(source) => source.trim().to_owned(),
        Some(_) => {
            errors.push(format!("source {SOURCE_RULE}."));
            String::new()
        }
    };
    let mode = match params.mode.as_deref() {
        None => SyncMode::Incremental,
        Some(mode) => SyncMode::from_stored(mode).unwrap_or_else(|| {
            errors.push(format!(
                "mode must be \"full\" or \"incremental\", got {mode:?}."
            ));
            SyncMode::Incremental
        }),
    };
    let dry_run = match params.dry_run.as_deref() {
        None => false,
        Some("true") => true,
        Some("false") => false,
        Some(other) => {
            errors.push(format!("dry_run must be true or false, got {other:?}."));
            false
        }
    };
    if errors.is_empty() {
        Ok((source, mode, dry_run))
    } else {
        Err(errors)
    }
}

/// A CSV upload as it arrives (after any Content-Encoding was decoded).
pub struct CsvPush<'a> {
    pub organization_id: &'a str,
    /// One of `intake::CSV_CONTENT_TYPES`: stored with the run.
    pub content_type: &'a str,
    pub body: &'a [u8],
    pub params: &'a UploadParams,
    pub idempotency_key: Option<&'a str>,
    pub max_records: usize,
}

/// Checks a CSV upload as a whole and stores it, byte for byte, as a pending run (or finds
/// the run its Idempotency-Key already made). Every file-level failure is found here, so a
/// file that fails one is refused and nothing is stored.
pub fn store_csv_push(conn: &mut DbConn, push: &CsvPush<'_>) -> Result<Stored, PushRejected> {
    let (source, mode, dry_run) =
        check_upload_params(push.params).map_err(PushRejected::Parameters)?;
    let checked = check_upload(push.body).map_err(|failure| PushRejected::File(failure.0))?;
    if checked.records > push.max_records {
        return Err(PushRejected::File(format!(
            "The file has {} records; a push takes at most {}. Split the file.",
            checked.records, push.max_records
        )));
    }
    // The parameters are part of the request: the same file pushed as another mode is
    // another push.
    let request = format!(
        "csv\n{}\n{source}\n{}\n{dry_run}\n{:032x}",
        push.content_type,
        mode.as_str(),
        xxh3_128(push.body)
    );
    let request_hash = format!("{:032x}", xxh3_128(request.as_bytes()));
    let new = NewRun {
        organization_id: push.organization_id,
        mode,
        source: &source,
        dry_run,
        content_type: push.content_type,
        body: checked.text,
        record_count: checked.records,
        retry_of: None,
        idempotency: push.idempotency_key.map(|key| Idempotency {
            key,
            request_hash: &request_hash,
        }),
    };
    runs::insert(conn, &new).map_err(PushRejected::Store)
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
    /// A CSV upload's query parameters are not valid: a sentence each.
    Parameters(Vec<String>),
    /// A CSV upload fails a file-level check: the sentence that says which.
    File(String),
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

    fn params(source: Option<&str>, mode: Option<&str>, dry_run: Option<&str>) -> UploadParams {
        UploadParams {
            source: source.map(str::to_owned),
            mode: mode.map(str::to_owned),
            dry_run: dry_run.map(str::to_owned),
        }
    }

    #[test]
    fn upload_parameters_have_the_defaults_and_rules_of_the_json_envelope() {
        assert_eq!(
            check_upload_params(&params(None, None, None)),
            Ok(("api".to_owned(), SyncMode::Incremental, false))
        );
        assert_eq!(
            check_upload_params(&params(Some(" hris "), Some("full"), Some("true"))),
            Ok(("hris".to_owned(), SyncMode::Full, true))
        );
        let errors = check_upload_params(&params(Some(" "), Some("all"), Some("yes"))).unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].starts_with("source "));
        assert!(errors[1].starts_with("mode "));
        assert!(errors[2].starts_with("dry_run "));
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
}
