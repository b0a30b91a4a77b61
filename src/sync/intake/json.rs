//! The JSON reader: the `users` of a stored JSON push, one record at a time.

use std::collections::BTreeMap;
use std::io::Read;

use serde_json::value::RawValue;

use crate::sync::intake::json_records::for_each_record;
use crate::sync::intake::{RecordStream, Unreadable};
use crate::sync::record::{recover_identity, RawRecord};
use crate::sync::unchanged::text_hash;

/// Reads the `users` of a stored JSON push into `stream`, one record at a time: each record is
/// cut out of the body as it is read (`json_records`) and read on its own, so that one that
/// serde cannot read (nested too deep, a number out of range) is an issue of that record, not
/// a failed run. Returns the run-log warnings about keys that are not record fields.
pub fn read<R: Read>(
    body: R,
    stream: &mut RecordStream<'_, '_>,
) -> Result<Vec<String>, Unreadable> {
    let mut unknown_fields = UnknownFields::new();
    for_each_record(body, |text| {
        let row = u32::try_from(stream.len() + 1).unwrap_or(u32::MAX);
        match serde_json::from_str::<RawRecord>(text) {
            Ok(raw) => {
                for key in &raw.unknown_fields {
                    unknown_fields.entry(key.clone()).or_insert((0, row)).0 += 1;
                }
                // A record with unknown fields adds a line to the run's log: never stamped.
                let hash = raw.unknown_fields.is_empty().then(|| text_hash(text));
                stream.record(row, raw, hash);
            }
            Err(error) => {
                let (external_id, email) = serde_json::from_str::<&RawValue>(text)
                    .map(recover_identity)
                    .unwrap_or_default();
                stream.unreadable_record_named(row, &error.to_string(), external_id, email);
            }
        }
    })
    .map_err(|reason| {
        Unreadable(format!(
            "The stored push cannot be read: {reason}. Nothing was applied."
        ))
    })?;
    Ok(unknown_field_warnings(&unknown_fields))
}

/// Keys that are not record fields: how many records carry each, and the first row.
type UnknownFields = BTreeMap<String, (usize, u32)>;

fn unknown_field_warnings(unknown_fields: &UnknownFields) -> Vec<String> {
    unknown_fields
        .iter()
        .map(|(field, (records, first_row))| {
            format!("{records} record(s) carry the field {field:?} (first at row {first_row}), which is not part of the record format and was ignored.")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::IssueCode;
    use crate::domain::ProvisioningSettings;
    use crate::sync::intake::{read_records, ReadRecords, JSON_CONTENT_TYPE};
    use crate::sync::validate::Rules;

    fn read_json(body: &str, progress: &mut dyn FnMut(usize)) -> Result<ReadRecords, Unreadable> {
        let settings = ProvisioningSettings::default();
        let rules = Rules {
            settings: &settings,
            today: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
        };
        read_records(JSON_CONTENT_TYPE, body.as_bytes(), 0, &rules, progress)
    }

    #[test]
    fn a_record_too_deep_to_read_is_an_issue_of_that_record() {
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        let body =
            format!("{{\"users\": [{{\"external_id\": \"E1\"}}, {{\"custom_fields\": {deep}}}]}}");
        let read = read_json(&body, &mut |_| {}).unwrap();
        assert_eq!(read.candidates.len(), 2);
        assert_eq!(
            read.candidates[1].issues[0].code,
            IssueCode::FIELD_TYPE_INVALID
        );
        assert!(read.candidates[1].issues[0]
            .message
            .contains("cannot be read"));
    }

    #[test]
    fn records_are_validated_while_read_and_unknown_fields_reported_once_each() {
        let body = r#"{"mode": "full", "users": [
            {"external_id": "1", "firstName": "A"},
            {"external_id": "2", "firstName": "B", "nickname": "b"}
        ], "source": "x"}"#;
        let mut calls = 0;
        let read = read_json(body, &mut |_| calls += 1).unwrap();
        assert_eq!(read.candidates.len(), 2);
        assert_eq!(read.candidates[1].row, 2);
        assert_eq!(
            read.warnings,
            [
                "2 record(s) carry the field \"firstName\" (first at row 1), which is not part of the record format and was ignored.",
                "1 record(s) carry the field \"nickname\" (first at row 2), which is not part of the record format and was ignored.",
            ]
        );
        assert_eq!(calls, 0);
    }

    #[test]
    fn an_unreadable_record_is_named_by_the_identity_it_still_has() {
        let body = r#"{"users": [
            {"external_id": " E9 ", "email": "Ada@Example.com", "phone": 1e999},
            {"external_id": 7, "email": "not an address", "phone": 1e999}
        ]}"#;
        let read = read_json(body, &mut |_| {}).unwrap();
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

    #[test]
    fn a_large_push_validated_on_a_second_thread_reads_exactly_as_when_validated_inline() {
        // Valid records, invalid ones and unreadable ones, across several batches.
        let records: Vec<String> = (0..10_000)
            .map(|i| match i % 97 {
                0 => format!(r#"{{"external_id": "E{i}", "phone": 1e999}}"#),
                1 => format!(r#"{{"external_id": "E{i}", "email": "not an address"}}"#),
                _ => format!(
                    r#"{{"external_id": "E{i}", "email": "p{i}@example.com", "first_name": "A", "last_name": "B", "nick": 1}}"#
                ),
            })
            .collect();
        let body = format!(r#"{{"users": [{}]}}"#, records.join(","));
        let settings = ProvisioningSettings::default();
        let rules = Rules {
            settings: &settings,
            today: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
        };
        let read = |expected: usize| {
            let mut reported = Vec::new();
            let read = read_records(
                JSON_CONTENT_TYPE,
                body.as_bytes(),
                expected,
                &rules,
                &mut |count| reported.push(count),
            )
            .unwrap();
            (read, reported)
        };
        let (inline, inline_progress) = read(0);
        let (aside, aside_progress) = read(records.len());
        assert_eq!(aside.candidates.len(), 10_000);
        assert_eq!(
            format!("{:?}", aside.candidates),
            format!("{:?}", inline.candidates)
        );
        assert_eq!(aside.warnings, inline.warnings);
        assert_eq!(aside_progress, [10_000]);
        assert_eq!(inline_progress, [10_000]);
        let rows: Vec<u32> = aside.candidates.iter().map(|c| c.row).collect();
        assert!(rows.windows(2).all(|pair| pair[1] == pair[0] + 1));
        let codes = |at: usize| -> Vec<IssueCode> {
            aside.candidates[at].issues.iter().map(|i| i.code).collect()
        };
        assert_eq!(codes(97), [IssueCode::FIELD_TYPE_INVALID]);
        assert!(
            codes(98).contains(&IssueCode::EMAIL_INVALID),
            "{:?}",
            codes(98)
        );
        assert!(aside.candidates[99].email_key.is_some());
    }

    #[test]
    fn a_body_that_is_not_a_push_is_unreadable() {
        let error = read_json(r#"{"source": "x"}"#, &mut |_| {}).unwrap_err();
        assert!(error.0.contains("users"), "{}", error.0);
        assert!(error.0.ends_with("Nothing was applied."), "{}", error.0);
    }
}
