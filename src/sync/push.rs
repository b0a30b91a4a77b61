//! A push as it arrives: checked (the JSON envelope, or the CSV file as a whole) and stored
//! durably as a pending run. The records are read later, by the run (`sync::intake`).

use std::fmt;
use std::io::{BufReader, Read};
use std::path::PathBuf;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use xxhash_rust::xxh3::xxh3_128;

use crate::domain::{check_text, SyncMode};
use crate::error::FieldError;
use crate::store::payloads::ChunksReader;
use crate::store::runs::{self, Idempotency, NewRun, Stored};
use crate::store::DbConn;
use crate::sync::intake::csv::{check_upload, NOT_UTF8};
pub use crate::sync::intake::JSON_CONTENT_TYPE;
use crate::sync::spool::{BodyFailure, Spool, SpooledBody, SpoolingReader};

mod envelope_scan;

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
struct EnvelopeShape {
    #[serde(default)]
    source: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present")]
    mode: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present")]
    dry_run: Option<Box<RawValue>>,
    #[serde(default)]
    users: Option<UsersShape>,
}

/// The envelope, read only from a JSON object: serde would also read a struct from a JSON
/// array, by position.
struct ObjectEnvelope(EnvelopeShape);

impl<'de> Deserialize<'de> for ObjectEnvelope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ObjectEnvelope, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = ObjectEnvelope;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object with a \"users\" list")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ObjectEnvelope, A::Error> {
                EnvelopeShape::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(ObjectEnvelope)
            }
        }
        deserializer.deserialize_map(ObjectVisitor)
    }
}

/// Keeps a present field's raw value, `null` included (serde would read `null` as absent).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(deserializer).map(Some)
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
        while let Some(element) = seq.next_element::<Element>()? {
            if element == Element::Other && not_objects.len() < MAX_LISTED_ERRORS {
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

/// A record of `users` as the envelope check sees it: an object or not, read without keeping
/// anything of it.
#[derive(Debug, PartialEq, Eq)]
enum Element {
    Object,
    Other,
}

impl<'de> Deserialize<'de> for Element {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Element, D::Error> {
        deserializer.deserialize_any(ElementVisitor)
    }
}

struct ElementVisitor;

impl<'de> Visitor<'de> for ElementVisitor {
    type Value = Element;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an employee record")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Element, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Element::Object)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Element, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Element::Other)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Element, E> {
        Ok(Element::Other)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Element, E> {
        Ok(Element::Other)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Element, E> {
        Ok(Element::Other)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Element, E> {
        Ok(Element::Other)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Element, E> {
        Ok(Element::Other)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Element, E> {
        Ok(Element::Other)
    }
}

/// Checks a JSON push: a JSON object with `users` a list of objects, `mode` `full` or
/// `incremental` (default `incremental`), `dry_run` a boolean (default false), `source` a short
/// text (default `api`). The records themselves are not read here: a broken record is an issue
/// of the run, not a failed push.
///
/// The body is read as a stream, once: a push of any size costs the memory of its envelope.
pub fn check_json_envelope<R: Read>(
    body: R,
    max_records: usize,
) -> Result<PushEnvelope, Vec<FieldError>> {
    let mut deserializer = serde_json::Deserializer::from_reader(body);
    let shape = ObjectEnvelope::deserialize(&mut deserializer)
        .and_then(|ObjectEnvelope(shape)| deserializer.end().map(|()| shape))
        .map_err(|error| {
            let detail = if error.is_data() {
                format!("the body must be a JSON object with a \"users\" list: {error}")
            } else {
                format!("the body is not valid JSON: {error}")
            };
            vec![FieldError::new("", detail)]
        })?;
    envelope_of(shape, max_records)
}

/// What the fast check made of a JSON push's envelope.
enum FastCheck {
    /// The answer [`check_json_envelope`] gives.
    Decided(Result<PushEnvelope, Vec<FieldError>>),
    /// Left to [`check_json_envelope`], which reads the spooled body again.
    Undecided,
}

/// Checks a JSON push's envelope with the faster [`envelope_scan`] of the body as it arrives.
/// The body is always read to its end, so a JSON body that is not valid is received whole
/// (within `--max-body-bytes`) before it is refused.
fn check_json_envelope_fast<R: Read>(body: R, max_records: usize) -> FastCheck {
    match envelope_scan::scan(body) {
        envelope_scan::Scan::Read(shape) => FastCheck::Decided(envelope_of(shape, max_records)),
        envelope_scan::Scan::Failed(error) => FastCheck::Decided(Err(vec![FieldError::new(
            "",
            format!("the body is not valid JSON: {error}"),
        )])),
        envelope_scan::Scan::Undecided => FastCheck::Undecided,
    }
}

/// The checks of the envelope's fields, once its shape is read.
fn envelope_of(shape: EnvelopeShape, max_records: usize) -> Result<PushEnvelope, Vec<FieldError>> {
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
                format!("has {count} records; a push takes at most {max_records} (split the push, or ask the operator to raise --max-records-per-push)"),
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

/// How a push's body is read and what it may hold.
#[derive(Debug, Clone)]
pub struct BodyRules {
    /// Largest body, after any decompression (`--max-body-bytes`).
    pub max_bytes: u64,
    /// Most records (`--max-records-per-push`).
    pub max_records: usize,
    /// Where bodies are spooled while they arrive (`--spool-dir`).
    pub spool_dir: PathBuf,
}

/// What a push asks for, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushKind {
    Json,
    /// A CSV upload: its content type (one of `intake::CSV_CONTENT_TYPES`, stored with the
    /// run) and its query parameters.
    Csv {
        content_type: String,
        params: UploadParams,
    },
}

/// A push received in full, checked and spooled: ready to be stored.
pub struct ReceivedPush {
    pub content_type: String,
    pub source: String,
    pub mode: SyncMode,
    pub dry_run: bool,
    pub record_count: usize,
    /// Identifies the request for Idempotency-Key replays.
    pub request_hash: String,
    pub body: SpooledBody,
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
    /// The body is over the size limit.
    TooLarge {
        limit: u64,
    },
    /// The body could not be read (the client went away, or its gzip encoding is corrupt).
    Unreadable {
        reason: String,
        transport: bool,
    },
    /// The body could not be spooled (a full disk).
    Spool(std::io::Error),
    Store(diesel::result::Error),
}

/// Reads a push as it arrives from `body` (already decompressed), checks it as it goes, and
/// spools it: a JSON push's envelope, or a CSV upload's parameters and file-level checks.
/// The records themselves are read later, by the run: a broken record is an issue of the
/// run, not a refused push. Memory stays the same whatever the body's size.
pub fn receive<R: Read>(
    kind: &PushKind,
    body: R,
    rules: &BodyRules,
) -> Result<ReceivedPush, PushRejected> {
    let received = receive_and_check(kind, body, rules);
    // The spool's buffers were freed on this pooled thread, which may then idle for long.
    crate::allocator::release_freed_memory();
    received
}

fn receive_and_check<R: Read>(
    kind: &PushKind,
    body: R,
    rules: &BodyRules,
) -> Result<ReceivedPush, PushRejected> {
    let upload = match kind {
        PushKind::Json => None,
        PushKind::Csv { params, .. } => {
            Some(check_upload_params(params).map_err(PushRejected::Parameters)?)
        }
    };
    let spool = Spool::new(&rules.spool_dir).map_err(PushRejected::Spool)?;
    let mut reader = SpoolingReader::new(body, spool, rules.max_bytes);
    let buffered = BufReader::with_capacity(READ_BUFFER, &mut reader);
    let checked = match (kind, upload) {
        (PushKind::Csv { .. }, Some((source, mode, dry_run))) => check_upload(buffered)
            .map_err(|failure| PushRejected::File(failure.0))
            .and_then(|checked| {
                if checked.records > rules.max_records {
                    Err(PushRejected::File(format!(
                        "The file has {} records; a push takes at most {}. Split the file, or ask the operator to raise --max-records-per-push.",
                        checked.records, rules.max_records
                    )))
                } else {
                    Ok(Some(PushEnvelope {
                        source,
                        mode,
                        dry_run,
                        record_count: checked.records,
                    }))
                }
            }),
        _ => match check_json_envelope_fast(buffered, rules.max_records) {
            FastCheck::Decided(checked) => checked.map(Some).map_err(PushRejected::Malformed),
            FastCheck::Undecided => Ok(None),
        },
    };
    // A failure of the body itself explains whatever the checks made of it.
    if reader.failure().is_some() {
        return Err(body_rejection(kind, reader.finish().err()));
    }
    let envelope = checked?;
    let body = reader
        .finish()
        .map_err(|failure| body_rejection(kind, Some(failure)))?;
    let envelope = match envelope {
        Some(envelope) => envelope,
        // The scan left the body to the streaming reader: it reads the spooled body again.
        None => check_json_envelope(ChunksReader::new(&body), rules.max_records)
            .map_err(PushRejected::Malformed)?,
    };
    let body_hash = format!("{:032x}", body.hash());
    let (content_type, request_hash) = match kind {
        PushKind::Json => (JSON_CONTENT_TYPE.to_owned(), body_hash),
        PushKind::Csv { content_type, .. } => {
            // The parameters are part of the request: the same file pushed as another mode
            // is another push.
            let request = format!(
                "csv\n{content_type}\n{}\n{}\n{}\n{body_hash}",
                envelope.source,
                envelope.mode.as_str(),
                envelope.dry_run
            );
            (
                content_type.clone(),
                format!("{:032x}", xxh3_128(request.as_bytes())),
            )
        }
    };
    Ok(ReceivedPush {
        content_type,
        source: envelope.source,
        mode: envelope.mode,
        dry_run: envelope.dry_run,
        record_count: envelope.record_count,
        request_hash,
        body,
    })
}

/// The checks read through a buffer: the spooling reader sees pieces of this size.
const READ_BUFFER: usize = 64 * 1024;

fn body_rejection(kind: &PushKind, failure: Option<BodyFailure>) -> PushRejected {
    match failure {
        Some(BodyFailure::TooLarge { limit }) => PushRejected::TooLarge { limit },
        Some(BodyFailure::NotUtf8 { line }) => match kind {
            PushKind::Json => {
                PushRejected::Malformed(vec![FieldError::new("", "the body is not UTF-8 text")])
            }
            PushKind::Csv { .. } => PushRejected::File(format!(
                "{NOT_UTF8} The first byte that is not UTF-8 is on line {line}."
            )),
        },
        Some(BodyFailure::Unreadable { reason, transport }) => {
            PushRejected::Unreadable { reason, transport }
        }
        Some(BodyFailure::Spool(error)) => PushRejected::Spool(error),
        None => PushRejected::Unreadable {
            reason: "the body ended unexpectedly".to_owned(),
            transport: true,
        },
    }
}

/// Stores a received push durably as a pending run (or finds the run its Idempotency-Key
/// already made).
pub fn store(
    conn: &mut DbConn,
    organization_id: &str,
    push: &ReceivedPush,
    idempotency_key: Option<&str>,
) -> Result<Stored, PushRejected> {
    let new = NewRun {
        organization_id,
        mode: push.mode,
        source: &push.source,
        dry_run: push.dry_run,
        content_type: &push.content_type,
        body: &push.body,
        record_count: push.record_count,
        retry_of: None,
        idempotency: idempotency_key.map(|key| Idempotency {
            key,
            request_hash: &push.request_hash,
        }),
    };
    let stored = runs::insert(conn, &new).map_err(PushRejected::Store);
    // The chunks were copied on this pooled thread, which may then idle for long.
    crate::allocator::release_freed_memory();
    stored
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scan's answer where it gives one, else the streaming reader's: what `receive` does.
    fn checked_as_received(
        body: &str,
        max_records: usize,
    ) -> (bool, Result<PushEnvelope, Vec<FieldError>>) {
        match check_json_envelope_fast(body.as_bytes(), max_records) {
            FastCheck::Decided(checked) => (true, checked),
            FastCheck::Undecided => (false, check_json_envelope(body.as_bytes(), max_records)),
        }
    }

    #[test]
    fn the_fast_envelope_scan_answers_as_the_streaming_reader_on_every_body() {
        let deep = format!("{}1{}", "[".repeat(130), "]".repeat(130));
        let decided = [
            r#"{"users": []}"#,
            r#"{"users": [ ]}"#,
            "{\n  \"source\": \"hr\",\n  \"users\": [\n    {\"external_id\": \"1\"} ,\n {}\n  ],\n  \"mode\": \"full\"\n}\n",
            r#"{"mode": "full", "dry_run": true, "users": [{"a": "]\"[,{"}, {"b": [[1, {"c": []}]]}]}"#,
            r#"{"users": [1, "a,]", null, [1, 2], {}, true, -1.5e3]}"#,
            r#"{"users": [{}], "source": "x"}"#,
            r#"{"us\u0065rs": [{}, 2]}"#,
            r#"{"users": [{}, {}, {}]}"#,
            r#"{"users": [{}], "mode": "sometimes"}"#,
            r#"{"users": [{}], "source": "   "}"#,
            r#"{"users": [{}], "dry_run": "yes"}"#,
            r#"{"source": "hr"}"#,
        ];
        for body in decided {
            let (fast, checked) = checked_as_received(body, 2);
            assert!(fast, "the scan should decide {body}");
            assert_eq!(checked, check_json_envelope(body.as_bytes(), 2), "{body}");
        }
        let deep_record = format!(r#"{{"users": [{{"a": {deep}}}]}}"#);
        let left_to_the_reader = [
            "",
            "[]",
            r#"{"users": [{},]}"#,
            r#"{"users": [,{}]}"#,
            r#"{"users": [{}"#,
            r#"{"users": [{}]"#,
            r#"{"users": {}}"#,
            r#"{"users": "x"}"#,
            r#"{"users": null}"#,
            r#"{"users": [], "users": []}"#,
            r#"{"users": [{}]} x"#,
            r#"{"users": [1}]}"#,
            r#"{"users": [{"a": "unterminated}]}"#,
            r#"{"users": [{"a" 1}]}"#,
            r#"{"users": [{}], "extra": {"users": [1]}}"#,
            deep_record.as_str(),
        ];
        for body in left_to_the_reader {
            let (fast, checked) = checked_as_received(body, 2);
            assert!(
                !fast,
                "the scan should leave {body} to the streaming reader"
            );
            assert_eq!(checked, check_json_envelope(body.as_bytes(), 2), "{body}");
        }
    }

    /// A body that arrives a few bytes at a time, as a network may deliver it.
    struct Trickle<'a> {
        body: &'a [u8],
        piece: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.piece).min(self.body.len());
            buf[..n].copy_from_slice(&self.body[..n]);
            self.body = &self.body[n..];
            Ok(n)
        }
    }

    #[test]
    fn records_cut_across_the_pieces_a_body_arrives_in_are_counted_once_each() {
        let records: Vec<String> = (0..3_000)
            .map(|i| match i % 3 {
                0 => format!(r#"{{"external_id": "E{i}", "note": "a \"quoted\" ], {{ text"}}"#),
                1 => format!(r#"{{"teams": [["x", {{"y": [{i}]}}]]}}"#),
                _ => format!("{i}"),
            })
            .collect();
        let body = format!(r#"{{"mode": "full", "users": [{}]}}"#, records.join(",\n"));
        for piece in [7, 1_000, 1 << 20] {
            let trickle = Trickle {
                body: body.as_bytes(),
                piece,
            };
            let FastCheck::Decided(checked) = check_json_envelope_fast(trickle, 3_000) else {
                panic!("decided");
            };
            assert_eq!(
                checked,
                check_json_envelope(body.as_bytes(), 3_000),
                "piece {piece}"
            );
        }
    }

    #[test]
    fn escapes_and_brackets_in_strings_read_the_same_whatever_the_pieces() {
        let bodies = [
            r#"{"users": [{"a": "\\"}, {"b": "\"]"}, {"c": "\u0022,"}, "\\\"", {"d": "[{"}], "source": "x\\"}"#,
            r#"{"source": "\"users\"", "users": [{"users": [1, {"users": "]"}]}, 2]}"#,
            r#"{"users": [{"a": "\\"}, {"b": "]}"#,
            r#"{"users": ["\\"]]}"#,
        ];
        for body in bodies {
            let expected = check_json_envelope(body.as_bytes(), 10);
            for piece in 1..=16 {
                let trickle = Trickle {
                    body: body.as_bytes(),
                    piece,
                };
                let answer = match check_json_envelope_fast(trickle, 10) {
                    FastCheck::Decided(checked) => checked,
                    FastCheck::Undecided => check_json_envelope(body.as_bytes(), 10),
                };
                assert_eq!(answer, expected, "{body} in pieces of {piece}");
            }
        }
    }

    #[test]
    fn a_push_whose_envelope_the_scan_leaves_undecided_is_still_checked() {
        let kind = PushKind::Json;
        let rules = BodyRules {
            max_bytes: 1024,
            max_records: 3,
            spool_dir: std::env::temp_dir(),
        };
        // Nested deeper than the scan follows, but within what serde reads.
        let deep = format!("{}1{}", "[".repeat(70), "]".repeat(70));
        let body = format!(r#"{{"users": [{{"a": {deep}}}, {{}}], "source": "hr"}}"#);
        assert!(matches!(
            check_json_envelope_fast(body.as_bytes(), 3),
            FastCheck::Undecided
        ));
        let push = receive(&kind, body.as_bytes(), &rules).unwrap();
        assert_eq!(push.record_count, 2);
        assert_eq!(push.source, "hr");
        let trailing_comma = br#"{"users": [{},]}"#;
        let Err(PushRejected::Malformed(errors)) = receive(&kind, &trailing_comma[..], &rules)
        else {
            panic!("a trailing comma is refused");
        };
        assert_eq!(Err(errors), check_json_envelope(&trailing_comma[..], 3));
    }

    fn check_json_envelope_default(body: &str) -> Result<PushEnvelope, Vec<FieldError>> {
        check_json_envelope(body.as_bytes(), 10)
    }

    fn received(kind: &PushKind, body: &[u8]) -> Result<ReceivedPush, PushRejected> {
        let rules = BodyRules {
            max_bytes: 1024,
            max_records: 2,
            spool_dir: std::env::temp_dir(),
        };
        receive(kind, body, &rules)
    }

    fn csv() -> PushKind {
        PushKind::Csv {
            content_type: "text/csv".into(),
            params: UploadParams::default(),
        }
    }

    #[test]
    fn a_csv_upload_that_is_not_utf8_names_the_line_of_the_first_bad_byte() {
        let body = b"external_id,email,first_name,last_name\nE1,a@b.co,A,B\nE2,caf\xe9@b.co,C,D\n";
        let Err(PushRejected::File(reason)) = received(&csv(), body) else {
            panic!("refused as a file");
        };
        assert_eq!(
            reason,
            "File encoding is not supported. Please make sure the file is encoded using UTF-8. The first byte that is not UTF-8 is on line 3."
        );
    }

    #[test]
    fn a_received_push_is_counted_hashed_and_spooled_whole() {
        let body = br#"{"source": "hr", "users": [{"external_id": "1"}, {}]}"#;
        let push = received(&PushKind::Json, body).unwrap();
        assert_eq!(push.record_count, 2);
        assert_eq!(push.source, "hr");
        assert_eq!(push.body.len(), body.len() as u64);
        assert_eq!(push.request_hash, format!("{:032x}", xxh3_128(body)));
        let file = b"external_id,email,first_name,last_name\nE1,a@b.co,A,B\n";
        let upload = received(&csv(), file).unwrap();
        assert_eq!(upload.record_count, 1);
        assert_eq!(upload.content_type, "text/csv");
        assert_ne!(upload.request_hash, format!("{:032x}", xxh3_128(file)));
    }

    #[test]
    fn a_body_over_the_limits_is_refused_naming_the_limit() {
        let big = format!("{{\"users\": [], \"source\": \"{}\"}}", "x".repeat(2000));
        assert!(matches!(
            received(&PushKind::Json, big.as_bytes()),
            Err(PushRejected::TooLarge { limit: 1024 })
        ));
        let Err(PushRejected::Malformed(errors)) =
            received(&PushKind::Json, br#"{"users": [{}, {}, {}]}"#)
        else {
            panic!("over the record cap");
        };
        assert!(
            errors[0].detail.contains("--max-records-per-push"),
            "{}",
            errors[0].detail
        );
    }

    #[test]
    fn a_push_over_the_record_cap_is_refused() {
        let body = format!("{{\"users\": [{}]}}", ["{}"; 11].join(","));
        let errors = check_json_envelope(body.as_bytes(), 10).unwrap_err();
        assert_eq!(errors[0].pointer, "/users");
        assert!(
            errors[0].detail.contains("at most 10"),
            "{}",
            errors[0].detail
        );
        assert!(check_json_envelope(body.as_bytes(), 11).is_ok());
    }

    #[test]
    fn null_mode_or_dry_run_is_refused() {
        assert!(check_json_envelope(&br#"{"users": [], "mode": null}"#[..], 10).is_err());
        assert!(check_json_envelope(&br#"{"users": [], "dry_run": null}"#[..], 10).is_err());
        assert!(check_json_envelope(&br#"{"users": [], "source": null}"#[..], 10).is_ok());
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
