//! `report.csv`: the whole report of one run, one line per event, and one line per changed
//! field of an update.

use std::borrow::Cow;
use std::io::Write;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::domain::EventKind;
use crate::export::csv_safety::neutralise;
use crate::export::EventSource;
use crate::store::models::EventRow;

/// The columns, in order. Stable: integrations read them by name or by position.
pub const COLUMNS: [&str; 18] = [
    "run_id",
    "seq",
    "kind",
    "entity",
    "action",
    "code",
    "severity",
    "field",
    "old",
    "new",
    "message",
    "row",
    "external_id",
    "email",
    "first_name",
    "last_name",
    "user_id",
    "team",
];

/// UTF-8 byte order mark: spreadsheet programs read the file as UTF-8 (accents, emoji) only
/// when it starts with one.
pub const BOM: &[u8] = "\u{feff}".as_bytes();

/// One changed field of an update, with old and new as text. Borrowed from the stored
/// changes where the JSON allows it (plain strings): a big report parses without copying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange<'a> {
    pub field: Cow<'a, str>,
    pub old: Cow<'a, str>,
    pub new: Cow<'a, str>,
}

#[derive(Deserialize)]
struct StoredChange<'a> {
    #[serde(borrow)]
    field: Cow<'a, str>,
    #[serde(borrow, default)]
    old: Option<&'a RawValue>,
    #[serde(borrow, default)]
    new: Option<&'a RawValue>,
}

/// The fields an update changed, in stored order; empty for an issue or an update without
/// field changes (a team created, say).
pub fn changed_fields(event: &EventRow) -> Vec<FieldChange<'_>> {
    let Some(stored) = event.changes.as_deref() else {
        return Vec::new();
    };
    match serde_json::from_str::<Vec<StoredChange<'_>>>(stored) {
        Ok(changes) => changes
            .into_iter()
            .map(|change| FieldChange {
                field: change.field,
                old: raw_text(change.old),
                new: raw_text(change.new),
            })
            .collect(),
        Err(error) => {
            tracing::warn!(run_id = %event.run_id, seq = event.seq, %error, "stored changes are not readable");
            Vec::new()
        }
    }
}

/// A stored JSON value as a cell; a string without escapes is borrowed as it is.
fn raw_text(raw: Option<&RawValue>) -> Cow<'_, str> {
    let Some(raw) = raw else {
        return Cow::Borrowed("");
    };
    let json = raw.get();
    if json.starts_with('"') {
        if let Ok(text) = serde_json::from_str::<&str>(json) {
            return Cow::Borrowed(text);
        }
    }
    match serde_json::from_str::<Value>(json) {
        Ok(value) => Cow::Owned(value_text(value)),
        Err(_) => Cow::Borrowed(json),
    }
}

/// A stored value as a spreadsheet cell: empty for null, lists joined with `|`, objects as
/// compact JSON.
pub fn value_text(value: Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text,
        Value::Bool(_) | Value::Number(_) | Value::Object(_) => value.to_string(),
        Value::Array(items) => items
            .into_iter()
            .map(value_text)
            .collect::<Vec<_>>()
            .join("|"),
    }
}

/// Calls `line` with the cells of each line of one event: one line per changed field for an
/// update that changed fields, one line otherwise. Cells are not yet neutralised; they borrow
/// from the event, so that a million-line report does not allocate a string per cell.
pub fn for_each_line<E>(
    event: &EventRow,
    mut line: impl FnMut(&[&str; 18]) -> Result<(), E>,
) -> Result<(), E> {
    let seq = event.seq.to_string();
    let row = event.source_row.map(|r| r.to_string()).unwrap_or_default();
    let cells =
        |field: &str, old: &str, new: &str, out: &mut dyn FnMut(&[&str; 18]) -> Result<(), E>| {
            out(&[
                event.run_id.as_str(),
                seq.as_str(),
                event.kind.as_str(),
                event.entity.as_str(),
                event.action.as_deref().unwrap_or(""),
                event.code.as_deref().unwrap_or(""),
                event.severity.as_deref().unwrap_or(""),
                field,
                old,
                new,
                event.message.as_deref().unwrap_or(""),
                row.as_str(),
                event.external_id.as_deref().unwrap_or(""),
                event.email.as_deref().unwrap_or(""),
                event.first_name.as_deref().unwrap_or(""),
                event.last_name.as_deref().unwrap_or(""),
                event.user_id.as_deref().unwrap_or(""),
                event.team.as_deref().unwrap_or(""),
            ])
        };
    let changes = if event.kind == EventKind::Update.as_str() {
        changed_fields(event)
    } else {
        Vec::new()
    };
    if changes.is_empty() {
        return cells(event.field.as_deref().unwrap_or(""), "", "", &mut line);
    }
    for change in &changes {
        cells(&change.field, &change.old, &change.new, &mut line)?;
    }
    Ok(())
}

/// The lines of one event, as owned cells (tests, and readers of one event).
pub fn lines(event: &EventRow) -> Vec<[String; 18]> {
    let mut lines = Vec::new();
    let _ = for_each_line(event, |cells| -> Result<(), std::convert::Infallible> {
        lines.push(cells.map(str::to_owned));
        Ok(())
    });
    lines
}

/// Writes one line, every cell neutralised.
pub fn write_line<W: Write>(csv: &mut csv::Writer<W>, cells: &[&str]) -> csv::Result<()> {
    for cell in cells {
        csv.write_field(neutralise(cell).as_bytes())?;
    }
    csv.write_record(None::<&[u8]>)
}

/// A CSV writer with a buffer the size of a streamed chunk.
pub fn csv_writer<W: Write>(out: W) -> csv::Writer<W> {
    csv::WriterBuilder::new()
        .buffer_capacity(64 * 1024)
        .from_writer(out)
}

/// Writes the report of `run_id`: BOM, header, then every event in planned order.
pub fn write(source: &dyn EventSource, run_id: &str, mut out: impl Write) -> anyhow::Result<()> {
    out.write_all(BOM)?;
    let mut csv = csv_writer(out);
    csv.write_record(COLUMNS)?;
    let mut pages = source.events(run_id, None);
    loop {
        let page = pages.next_page()?;
        if page.is_empty() {
            break;
        }
        for event in &page {
            for_each_line(event, |cells| write_line(&mut csv, cells))?;
        }
        csv.flush()?;
    }
    csv.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::memory::{event, MemorySource};
    use serde_json::json;

    fn update(seq: i32, changes: Value) -> EventRow {
        EventRow {
            action: Some("USER_UPDATED".into()),
            changes: Some(changes.to_string()),
            first_name: Some("Zoë".into()),
            ..event("run", seq, EventKind::Update)
        }
    }

    #[test]
    fn an_update_is_one_line_per_changed_field_with_old_and_new_as_text() {
        let event = update(
            3,
            json!([
                {"field": "last_name", "old": "Old", "new": "New"},
                {"field": "teams", "old": ["A"], "new": ["A", "B"]},
                {"field": "phone", "old": null, "new": "+44 1"},
                {"field": "custom_fields", "old": {}, "new": {"level": 3}},
            ]),
        );
        let lines = lines(&event);
        let cells: Vec<(&str, &str, &str)> = lines
            .iter()
            .map(|l| (l[7].as_str(), l[8].as_str(), l[9].as_str()))
            .collect();
        assert_eq!(
            cells,
            vec![
                ("last_name", "Old", "New"),
                ("teams", "A", "A|B"),
                ("phone", "", "+44 1"),
                ("custom_fields", "{}", "{\"level\":3}"),
            ]
        );
        assert!(lines.iter().all(|l| l[1] == "3" && l[14] == "Zoë"));
    }

    #[test]
    fn stored_values_are_read_whatever_their_json_shape() {
        let event = update(
            1,
            json!([
                {"field": "last_name", "old": "O\"Neil\n", "new": null},
                {"field": "upcoming_trips", "old": 0, "new": 2},
                {"field": "active", "old": false, "new": true},
                {"field": "teams", "old": [], "new": ["Zoë's", "B"]},
                {"field": "note"},
            ]),
        );
        let values: Vec<(String, String)> = changed_fields(&event)
            .into_iter()
            .map(|c| (c.old.into_owned(), c.new.into_owned()))
            .collect();
        let expected = [
            ("O\"Neil\n", ""),
            ("0", "2"),
            ("false", "true"),
            ("", "Zoë's|B"),
            ("", ""),
        ];
        assert_eq!(values, expected.map(|(o, n)| (o.to_owned(), n.to_owned())));
    }

    #[test]
    fn an_issue_is_one_line_with_its_field_and_no_values() {
        let issue = EventRow {
            code: Some("EMAIL_INVALID".into()),
            severity: Some("error".into()),
            field: Some("email".into()),
            message: Some("not an address".into()),
            source_row: Some(7),
            ..event("run", 1, EventKind::Issue)
        };
        let lines = lines(&issue);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0][5], "EMAIL_INVALID");
        assert_eq!(lines[0][7], "email");
        assert_eq!((lines[0][8].as_str(), lines[0][9].as_str()), ("", ""));
        assert_eq!(lines[0][11], "7");
    }

    #[test]
    fn the_report_starts_with_a_bom_and_neutralises_hostile_cells() {
        let hostile = EventRow {
            first_name: Some("=HYPERLINK(\"http://x\")".into()),
            ..update(1, json!([{"field": "last_name", "old": null, "new": "-2"}]))
        };
        let source = MemorySource {
            events: vec![hostile, update(2, json!([]))],
            page_size: 1,
        };
        let mut out = Vec::new();
        write(&source, "run", &mut out).unwrap();
        assert!(out.starts_with(BOM));
        let mut reader = csv::Reader::from_reader(&out[BOM.len()..]);
        assert_eq!(reader.headers().unwrap(), COLUMNS.as_slice());
        let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(records.len(), 2);
        assert_eq!(&records[0][14], "'=HYPERLINK(\"http://x\")");
        assert_eq!(&records[0][9], "'-2");
        assert_eq!(&records[1][1], "2");
    }
}
