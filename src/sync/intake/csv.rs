//! The CSV reader: an uploaded file of employees, one record per line.
//!
//! The header names the columns with the JSON field names, matched without regard to case
//! or surrounding spaces; `teams` holds several teams separated by `|`; `custom.<key>` columns
//! are custom fields. The delimiter (`,`, `;` or tab) is detected from the header line; a
//! UTF-8 byte order mark and Windows line ends are accepted; quoting follows RFC 4180 (the
//! `csv` crate reads it).
//!
//! File-level failures (not UTF-8, no data, a required column missing, a column named twice)
//! are [`Unreadable`]: [`check_upload`] finds them when the file is pushed, so that the push
//! is refused with nothing stored, and [`read`] finds them again if a stored file has them.
//! A line that cannot be read is an issue on that line, and the rest of the file goes on.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::io::{self, Read};
use std::rc::Rc;

use csv::StringRecord;
use serde_json::{Map, Value};

use crate::catalogue::IssueCode;
use crate::domain::CustomFieldType;
use crate::sync::candidate::Issue;
use crate::sync::intake::{RecordStream, Unreadable};
use crate::sync::record::{Field, RawRecord, FIELD_NAMES};
use crate::sync::validate::Rules;

/// The answer to a file that is not UTF-8 (the line of the first bad byte follows it).
pub const NOT_UTF8: &str =
    "File encoding is not supported. Please make sure the file is encoded using UTF-8.";
/// The answer to an empty file, or a header without data lines.
pub const NO_DATA: &str = "File contains no data.";
/// Columns every file must have: the fields every record needs.
pub const REQUIRED_COLUMNS: &[&str] = &["external_id", "email", "first_name", "last_name"];
/// Separates the teams of one `teams` cell.
pub const TEAM_SEPARATOR: char = '|';
/// Prefix of custom field columns: `custom.cost_center`.
pub const CUSTOM_PREFIX: &str = "custom.";

const BOM: &[u8] = "\u{feff}".as_bytes();

/// What a header cell names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Column {
    /// A record field (its JSON name), except `teams` and `custom_fields`.
    Field(&'static str),
    /// `teams`, split on `|`.
    Teams,
    /// `custom.<key>`: the key as written.
    Custom(String),
    /// Anything else: kept in the stored file, ignored by the run, named in one warning.
    Unknown(String),
}

/// How a file is written and what its columns are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub delimiter: u8,
    /// The file starts with a UTF-8 byte order mark.
    pub bom: bool,
    /// The header line ends with CR LF.
    pub crlf: bool,
    /// One per header cell, in order.
    pub columns: Vec<Column>,
}

impl Layout {
    /// The index of the column of a record field.
    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|column| matches!(column, Column::Field(field) if *field == name))
    }

    /// The columns the run ignores: their 1-based position and their name as written.
    pub fn unknown_columns(&self) -> Vec<(usize, &str)> {
        self.columns
            .iter()
            .enumerate()
            .filter_map(|(index, column)| match column {
                Column::Unknown(name) => Some((index + 1, name.as_str())),
                _ => None,
            })
            .collect()
    }
}

/// A file as checked when it is pushed.
#[derive(Debug)]
pub struct CheckedUpload {
    pub layout: Layout,
    /// Data lines (records), blank lines not counted.
    pub records: usize,
}

/// Every file-level check but UTF-8 (checked as the body arrives, see `sync::spool`): a
/// header with every required column and no column twice, and at least one data line.
/// Counts the records as it goes, reading the file once as a stream.
pub fn check_upload<R: Read>(file: R) -> Result<CheckedUpload, Unreadable> {
    let OpenFile {
        layout,
        mut reader,
        mut lines,
        ..
    } = open(file)?;
    let mut count = 0;
    let mut record = StringRecord::new();
    while next_record(&mut reader, &mut record)? {
        lines.line_of(&record);
        if !is_blank(&record) {
            count += 1;
        }
    }
    if count == 0 {
        return Err(Unreadable(NO_DATA.to_owned()));
    }
    Ok(CheckedUpload {
        layout,
        records: count,
    })
}

/// What the `csv` reader reads: the file after its byte order mark, the start of which was
/// read ahead to find the header line.
pub type FileReader<R> = csv::Reader<Tracked<io::Chain<io::Cursor<Vec<u8>>, R>>>;

/// A file opened for reading its records.
pub struct OpenFile<R> {
    pub layout: Layout,
    /// The header's cells as written.
    pub header: StringRecord,
    /// Positioned after the header line.
    pub reader: FileReader<R>,
    pub lines: LineCounter,
}

/// Bytes read ahead at a time to find the header line.
const READ_AHEAD: u64 = 8 * 1024;

/// Opens a file: its layout, its header, a reader positioned after the header line. Every
/// header-level failure is found here. Only the start of the file is read ahead (up to the
/// end of its first line that is not blank).
pub fn open<R: Read>(mut file: R) -> Result<OpenFile<R>, Unreadable> {
    let cannot_read = |error: io::Error| Unreadable(format!("The file cannot be read: {error}."));
    let mut start = Vec::new();
    let mut at_end = false;
    let mut read_more = |start: &mut Vec<u8>, at_end: &mut bool| -> Result<(), Unreadable> {
        let read = (&mut file)
            .take(READ_AHEAD)
            .read_to_end(start)
            .map_err(cannot_read)?;
        *at_end = read == 0;
        Ok(())
    };
    while start.len() < BOM.len() && !at_end {
        read_more(&mut start, &mut at_end)?;
    }
    let bom = start.starts_with(BOM);
    let body_start = if bom { BOM.len() } else { 0 };
    let mut scanned = body_start;
    let first_line = loop {
        match first_line_from(&start, scanned, at_end) {
            FirstLine::Found(range) => break range,
            FirstLine::NotYet(blank_up_to) => {
                if at_end {
                    return Err(Unreadable(NO_DATA.to_owned()));
                }
                scanned = blank_up_to;
                read_more(&mut start, &mut at_end)?;
            }
        }
    };
    let first_line = &start[first_line];
    let delimiter = detect_delimiter(&String::from_utf8_lossy(first_line));
    let crlf = first_line.ends_with(b"\r");
    let mut ahead = io::Cursor::new(start);
    ahead.set_position(body_start as u64);
    let unpassed = Rc::new(RefCell::new(Unpassed::default()));
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(Tracked {
            inner: ahead.chain(file),
            unpassed: Rc::clone(&unpassed),
        });
    let mut header = StringRecord::new();
    if !next_record(&mut reader, &mut header)? {
        return Err(Unreadable(NO_DATA.to_owned()));
    }
    let columns = header.iter().map(column).collect();
    let layout = Layout {
        delimiter,
        bom,
        crlf,
        columns,
    };
    check_header(&layout)?;
    Ok(OpenFile {
        layout,
        header,
        reader,
        lines: LineCounter { unpassed, line: 1 },
    })
}

enum FirstLine {
    /// Where the first line that is not blank is (without its line feed).
    Found(std::ops::Range<usize>),
    /// Every whole line before this offset is blank.
    NotYet(usize),
}

/// The first line of `text[from..]` that is not blank: a whole line, or the last one when
/// the file ends there.
fn first_line_from(text: &[u8], from: usize, at_end: bool) -> FirstLine {
    let mut line_start = from;
    loop {
        let rest = &text[line_start..];
        let (line_end, next) = match rest.iter().position(|&byte| byte == b'\n') {
            Some(newline) => (line_start + newline, line_start + newline + 1),
            None if at_end => (text.len(), text.len()),
            None => return FirstLine::NotYet(line_start),
        };
        if !String::from_utf8_lossy(&text[line_start..line_end])
            .trim()
            .is_empty()
        {
            return FirstLine::Found(line_start..line_end);
        }
        if next >= text.len() {
            return FirstLine::NotYet(next);
        }
        line_start = next;
    }
}

/// The bytes the `csv` reader has read that the [`LineCounter`] has not passed yet.
#[derive(Debug, Default)]
pub struct Unpassed {
    bytes: Vec<u8>,
    /// Bytes of `bytes` already passed (dropped from time to time, not at each record).
    passed: usize,
    /// The file offset (after the byte order mark) of `bytes[0]`.
    offset: u64,
}

/// The file as the `csv` reader reads it, keeping what it reads until the line counter has
/// passed it.
pub struct Tracked<R> {
    inner: R,
    unpassed: Rc<RefCell<Unpassed>>,
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.unpassed
            .borrow_mut()
            .bytes
            .extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

/// The line of the file on which each record starts (the header is line 1). The `csv`
/// crate's own count misses the line breaks inside quoted values, so lines are counted here,
/// from the byte at which each record starts. Records are read in order, so the file is
/// scanned once, and only the bytes the reader has read ahead are kept.
pub struct LineCounter {
    unpassed: Rc<RefCell<Unpassed>>,
    line: u32,
}

/// Passed bytes are dropped once there are this many of them.
const DROP_PASSED_AT: usize = 64 * 1024;

impl LineCounter {
    /// Call it for every record, in order: the bytes before the record are passed.
    pub fn line_of(&mut self, record: &StringRecord) -> u32 {
        let Some(position) = record.position() else {
            return 0;
        };
        let mut unpassed = self.unpassed.borrow_mut();
        let Unpassed {
            bytes,
            passed,
            offset,
        } = &mut *unpassed;
        // A record's position is where the previous one ended: skip the line ends (and
        // blank lines) in between.
        let relative = usize::try_from(position.byte().saturating_sub(*offset))
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        let mut start = relative.max(*passed);
        while start < bytes.len() && matches!(bytes[start], b'\r' | b'\n') {
            start += 1;
        }
        let breaks = bytes[*passed..start]
            .iter()
            .filter(|&&byte| byte == b'\n')
            .count();
        self.line = self
            .line
            .saturating_add(u32::try_from(breaks).unwrap_or(u32::MAX));
        *passed = start;
        if *passed >= DROP_PASSED_AT {
            bytes.drain(..*passed);
            *offset += *passed as u64;
            *passed = 0;
        }
        self.line
    }
}

/// `,`, `;` or tab: whichever the header line has most of outside quotes (`,` on a tie, or
/// when it has none: a file of one column).
pub fn detect_delimiter(header_line: &str) -> u8 {
    let mut counts = [(b',', 0usize), (b';', 0), (b'\t', 0)];
    let mut quoted = false;
    for byte in header_line.bytes() {
        if byte == b'"' {
            quoted = !quoted;
        } else if !quoted {
            for (delimiter, count) in &mut counts {
                if byte == *delimiter {
                    *count += 1;
                }
            }
        }
    }
    counts
        .iter()
        .fold((b',', 0), |best, &(delimiter, count)| {
            if count > best.1 {
                (delimiter, count)
            } else {
                best
            }
        })
        .0
}

/// What a header cell names: field names are matched without regard to case or surrounding
/// spaces.
fn column(name: &str) -> Column {
    let trimmed = name.trim();
    let folded = trimmed.to_lowercase();
    if folded == "teams" {
        return Column::Teams;
    }
    if let Some(&field) = FIELD_NAMES
        .iter()
        .find(|field| **field == folded && **field != "custom_fields" && **field != "teams")
    {
        return Column::Field(field);
    }
    let prefix = CUSTOM_PREFIX.len();
    if trimmed
        .get(..prefix)
        .is_some_and(|start| start.eq_ignore_ascii_case(CUSTOM_PREFIX))
    {
        let key = trimmed[prefix..].trim();
        if !key.is_empty() {
            return Column::Custom(key.to_owned());
        }
    }
    Column::Unknown(trimmed.to_owned())
}

/// How a column is named for the duplicate check, `None` for unnamed columns (a spreadsheet's
/// trailing empty cells).
fn column_key(column: &Column) -> Option<String> {
    match column {
        Column::Field(field) => Some((*field).to_owned()),
        Column::Teams => Some("teams".to_owned()),
        Column::Custom(key) => Some(format!("{CUSTOM_PREFIX}{}", key.to_lowercase())),
        Column::Unknown(name) if name.is_empty() => None,
        Column::Unknown(name) => Some(name.to_lowercase()),
    }
}

/// Required columns missing, columns named twice: every one of them, in one sentence each.
fn check_header(layout: &Layout) -> Result<(), Unreadable> {
    let missing: Vec<&str> = REQUIRED_COLUMNS
        .iter()
        .copied()
        .filter(|required| layout.field_index(required).is_none())
        .collect();
    let mut seen = BTreeSet::new();
    let mut twice: Vec<String> = Vec::new();
    for key in layout.columns.iter().filter_map(column_key) {
        if !seen.insert(key.clone()) && !twice.contains(&key) {
            twice.push(key);
        }
    }
    let mut sentences = Vec::new();
    match missing.as_slice() {
        [] => {}
        [one] => sentences.push(format!(
            "The required column \"{one}\" is missing from the header."
        )),
        many => sentences.push(format!(
            "The required columns {} are missing from the header.",
            quoted_list(many)
        )),
    }
    match twice.as_slice() {
        [] => {}
        [one] => sentences.push(format!(
            "The column \"{one}\" appears more than once in the header."
        )),
        many => sentences.push(format!(
            "The columns {} appear more than once in the header.",
            quoted_list(many)
        )),
    }
    if sentences.is_empty() {
        Ok(())
    } else {
        Err(Unreadable(sentences.join(" ")))
    }
}

fn quoted_list<S: AsRef<str>>(names: &[S]) -> String {
    names
        .iter()
        .map(|name| format!("\"{}\"", name.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The next record; fails on text that is not UTF-8 (which a stored file is not) or when the
/// file cannot be read.
pub fn next_record<R: Read>(
    reader: &mut csv::Reader<R>,
    record: &mut StringRecord,
) -> Result<bool, Unreadable> {
    reader
        .read_record(record)
        .map_err(|error| Unreadable(format!("The file cannot be read: {error}.")))
}

/// A line whose every cell is blank, such as the `;;;;` rows a spreadsheet exports after its
/// data: not a record.
pub fn is_blank(record: &StringRecord) -> bool {
    record.iter().all(|cell| cell.trim().is_empty())
}

/// The issue of a line that does not have as many fields as the header.
pub fn field_count_issue(line: u32, fields: usize, columns: usize) -> Issue {
    Issue {
        code: IssueCode::CSV_LINE_UNREADABLE,
        field: None,
        message: format!(
            "Line {line} has {fields} field(s) where the header has {columns}: look for a delimiter that should be quoted, or a quote that is not closed (a quoted value runs on to the next quote, across lines). The line was skipped."
        ),
        team: None,
    }
}

/// Reads a stored CSV file into `stream`, one line at a time. Returns the run-log warning
/// naming the columns the run ignored, if any.
pub fn read<R: Read>(
    body: R,
    rules: &Rules<'_>,
    stream: &mut RecordStream<'_, '_>,
) -> Result<Vec<String>, Unreadable> {
    let OpenFile {
        layout,
        mut reader,
        mut lines,
        ..
    } = open(body)?;
    let columns = resolve_custom_keys(&layout, rules);
    let mut record = StringRecord::new();
    while next_record(&mut reader, &mut record)? {
        let line = lines.line_of(&record);
        if is_blank(&record) {
            continue;
        }
        if record.len() != columns.len() {
            stream.unreadable(line, field_count_issue(line, record.len(), columns.len()));
            continue;
        }
        stream.record(line, raw_record(&record, &columns), None);
    }
    if stream.is_empty() {
        return Err(Unreadable(NO_DATA.to_owned()));
    }
    let unknown = layout.unknown_columns();
    let warnings = if unknown.is_empty() {
        Vec::new()
    } else {
        let named: Vec<String> = unknown
            .iter()
            .map(|(position, name)| {
                if name.is_empty() {
                    format!("an unnamed column (column {position})")
                } else {
                    format!("\"{name}\"")
                }
            })
            .collect();
        vec![format!(
            "The file has {} column(s) that are not record fields, kept in the stored file and ignored by the run: {}.",
            named.len(),
            named.join(", ")
        )]
    };
    Ok(warnings)
}

/// A column as the run reads it: custom field keys resolved to their definitions.
#[derive(Debug, Clone, PartialEq)]
enum ReadColumn {
    Field(&'static str),
    Teams,
    Custom {
        key: String,
        field_type: Option<CustomFieldType>,
    },
    Ignored,
}

/// `custom.Cost_Center` names the definition `cost_center`: keys are matched without regard to
/// case too, and the definition's type says how to read the cell.
fn resolve_custom_keys(layout: &Layout, rules: &Rules<'_>) -> Vec<ReadColumn> {
    layout
        .columns
        .iter()
        .map(|column| match column {
            Column::Field(field) => ReadColumn::Field(field),
            Column::Teams => ReadColumn::Teams,
            Column::Custom(key) => {
                let definition = rules
                    .settings
                    .custom_fields
                    .iter()
                    .find(|definition| definition.key.eq_ignore_ascii_case(key));
                ReadColumn::Custom {
                    key: definition.map_or_else(|| key.clone(), |d| d.key.clone()),
                    field_type: definition.map(|d| d.field_type),
                }
            }
            Column::Unknown(_) => ReadColumn::Ignored,
        })
        .collect()
}

/// One line as a raw record: every cell is text, as a JSON string would be, except `teams`
/// (a list) and custom fields, read as their definition's type when the text is one (`42` for
/// a number, `true` for a boolean), so that a CSV and a JSON push of the same people apply
/// the same way. An empty custom field cell clears the field.
fn raw_record(record: &StringRecord, columns: &[ReadColumn]) -> RawRecord {
    let mut raw = RawRecord::default();
    let mut custom = Map::new();
    let mut has_custom = false;
    for (cell, column) in record.iter().map(unwrapped).zip(columns) {
        match column {
            ReadColumn::Field(name) => {
                if let Some(slot) = raw.slot(name) {
                    *slot = Field::Value(Value::String(cell.into_owned()));
                }
            }
            ReadColumn::Teams => {
                let teams = cell
                    .split(TEAM_SEPARATOR)
                    .map(str::trim)
                    .filter(|team| !team.is_empty())
                    .map(|team| Value::String(team.to_owned()))
                    .collect();
                raw.teams = Field::Value(Value::Array(teams));
            }
            ReadColumn::Custom { key, field_type } => {
                has_custom = true;
                custom.insert(key.clone(), custom_value(&cell, *field_type));
            }
            ReadColumn::Ignored => {}
        }
    }
    if has_custom {
        raw.custom_fields = Field::Value(Value::Object(custom));
    }
    raw
}

/// A cell whose text a spreadsheet wrapped over several lines, as one line: each line break
/// and the spaces around it become one space (`"Ada\nMarie"` is `Ada Marie`). Other control
/// characters stay, and are issues as in JSON.
fn unwrapped(cell: &str) -> Cow<'_, str> {
    if !cell.contains(['\n', '\r']) {
        return Cow::Borrowed(cell);
    }
    let lines: Vec<&str> = cell
        .split(['\n', '\r'])
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    Cow::Owned(lines.join(" "))
}

fn custom_value(cell: &str, field_type: Option<CustomFieldType>) -> Value {
    let trimmed = cell.trim();
    if trimmed.is_empty() {
        return Value::Null;
    }
    match field_type {
        Some(CustomFieldType::Number) => trimmed
            .parse::<serde_json::Number>()
            .map_or_else(|_| Value::String(cell.to_owned()), Value::Number),
        Some(CustomFieldType::Boolean) if trimmed.eq_ignore_ascii_case("true") => Value::Bool(true),
        Some(CustomFieldType::Boolean) if trimmed.eq_ignore_ascii_case("false") => {
            Value::Bool(false)
        }
        _ => Value::String(cell.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use serde_json::json;

    use super::*;
    use crate::domain::{CustomFieldDefinition, ProvisioningSettings};
    use crate::sync::candidate::Candidate;
    use crate::sync::intake::{read_records, ReadRecords};

    fn settings() -> ProvisioningSettings {
        ProvisioningSettings {
            custom_fields: vec![
                CustomFieldDefinition {
                    key: "cost_center".into(),
                    field_type: CustomFieldType::String,
                    required: false,
                },
                CustomFieldDefinition {
                    key: "level".into(),
                    field_type: CustomFieldType::Number,
                    required: false,
                },
                CustomFieldDefinition {
                    key: "remote".into(),
                    field_type: CustomFieldType::Boolean,
                    required: false,
                },
            ],
            ..ProvisioningSettings::default()
        }
    }

    fn read_csv(text: &str) -> Result<ReadRecords, Unreadable> {
        let settings = settings();
        let rules = Rules {
            settings: &settings,
            today: NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(),
        };
        read_records("text/csv", text.as_bytes(), 0, &rules, &mut |_| {})
    }

    fn codes(candidate: &Candidate) -> Vec<&'static str> {
        candidate.issues.iter().map(|i| i.code.as_str()).collect()
    }

    const HEADER: &str = "external_id,email,first_name,last_name,start_date";

    #[test]
    fn the_delimiter_is_the_one_the_header_line_has_most_of_outside_quotes() {
        assert_eq!(detect_delimiter("a,b,c"), b',');
        assert_eq!(detect_delimiter("a;b;c"), b';');
        assert_eq!(detect_delimiter("a\tb\tc"), b'\t');
        assert_eq!(detect_delimiter("\"a,b\";c"), b';');
        assert_eq!(detect_delimiter("\"x;y;z\",b"), b',');
        assert_eq!(detect_delimiter("external_id"), b',');
    }

    #[test]
    fn header_names_are_matched_without_case_or_spaces() {
        assert_eq!(column(" Email "), Column::Field("email"));
        assert_eq!(column("FIRST_NAME"), Column::Field("first_name"));
        assert_eq!(column("Teams"), Column::Teams);
        assert_eq!(
            column("Custom.Cost_Center"),
            Column::Custom("Cost_Center".into())
        );
        assert_eq!(column("custom."), Column::Unknown("custom.".into()));
        assert_eq!(
            column("custom_fields"),
            Column::Unknown("custom_fields".into())
        );
        assert_eq!(column(" Nickname"), Column::Unknown("Nickname".into()));
    }

    #[test]
    fn an_empty_file_or_a_header_alone_contains_no_data() {
        for text in [
            "",
            "\u{feff}",
            " \r\n\n",
            &format!("{HEADER}\r\n"),
            &format!("{HEADER}\n,,,,\n\n"),
        ] {
            let error = check_upload(text.as_bytes()).unwrap_err();
            assert_eq!(error.0, "File contains no data.", "{text:?}");
        }
    }

    #[test]
    fn every_missing_required_column_and_every_column_named_twice_is_named() {
        let error = check_upload(&b"external_id,Email\nE1,a@b.co\n"[..]).unwrap_err();
        assert_eq!(
            error.0,
            "The required columns \"first_name\", \"last_name\" are missing from the header."
        );
        let error = check_upload(&b"external_id,email,first_name\nE1,a@b.co,A\n"[..]).unwrap_err();
        assert_eq!(
            error.0,
            "The required column \"last_name\" is missing from the header."
        );
        let text = format!("{HEADER}, EMAIL ,Note,note,,\nE1,a@b.co,A,B,2024-01-01,x,y,z,,\n");
        let error = check_upload(text.as_bytes()).unwrap_err();
        assert_eq!(
            error.0,
            "The columns \"email\", \"note\" appear more than once in the header."
        );
        let error = check_upload(&b"external_id;email;email\nE1;a;b\n"[..]).unwrap_err();
        assert_eq!(
            error.0,
            "The required columns \"first_name\", \"last_name\" are missing from the header. The column \"email\" appears more than once in the header."
        );
    }

    #[test]
    fn a_well_formed_upload_is_counted_without_blank_lines() {
        let text = format!("\u{feff}{HEADER}\r\nE1,a@b.co,A,B,2024-01-01\r\n\r\n,,,,\r\nE2,c@d.co,C,D,2024-01-01\r\n");
        let checked = check_upload(text.as_bytes()).unwrap();
        assert_eq!(checked.records, 2);
        assert!(checked.layout.bom);
        assert!(checked.layout.crlf);
        assert_eq!(checked.layout.delimiter, b',');
    }

    #[test]
    fn rows_are_file_lines_and_quoted_line_breaks_count() {
        let text = format!(
            "{HEADER}\nE1,a@b.co,\"Ada\nMarie\",Lovelace,2024-01-01\n\nE2,b@b.co,Bob,\"Smith, Jr.\",2024-01-01\n"
        );
        let read = read_csv(&text).unwrap();
        let rows: Vec<u32> = read.candidates.iter().map(|c| c.row).collect();
        assert_eq!(rows, [2, 5]);
        let ada = read.candidates[0].record.as_ref().expect("valid");
        assert_eq!(ada.first_name, "Ada Marie");
        let bob = read.candidates[1].record.as_ref().expect("valid");
        assert_eq!(bob.last_name, "Smith, Jr.");
    }

    #[test]
    fn line_numbers_count_crlf_quoted_line_breaks_and_blank_lines() {
        let text = format!(
            "\r\n{HEADER}\r\nE1,a@b.co,\"Ada\r\n\r\nMarie\",Lovelace,2024-01-01\r\n\r\n\r\nE2,b@b.co,Bob,Smith,2024-01-01\r\nE3,c@b.co,\"\"\"Cy\"\"\",Young,2024-01-01"
        );
        let read = read_csv(&text).unwrap();
        let rows: Vec<u32> = read.candidates.iter().map(|c| c.row).collect();
        assert_eq!(rows, [3, 8, 9]);
        let cy = read.candidates[2].record.as_ref().expect("valid");
        assert_eq!(cy.first_name, "\"Cy\"");
    }

    #[test]
    fn a_line_with_the_wrong_number_of_fields_is_an_issue_and_the_rest_goes_on() {
        let text = format!(
            "{HEADER}\nE1,a@b.co,Ada,Lovelace,2024-01-01,extra\nE2,b@b.co,Bob\nE3,c@b.co,Cy,Young,2024-01-01\n"
        );
        let read = read_csv(&text).unwrap();
        assert_eq!(read.candidates.len(), 3);
        assert_eq!(codes(&read.candidates[0]), ["CSV_LINE_UNREADABLE"]);
        assert!(read.candidates[0].issues[0]
            .message
            .starts_with("Line 2 has 6 field(s) where the header has 5"));
        assert_eq!(read.candidates[1].row, 3);
        assert_eq!(codes(&read.candidates[1]), ["CSV_LINE_UNREADABLE"]);
        assert!(read.candidates[2].record.is_some());
        assert!(read.candidates.iter().take(2).all(Candidate::is_skipped));
    }

    #[test]
    fn an_unclosed_quote_makes_its_line_unreadable() {
        let text = format!(
            "{HEADER}\nE1,a@b.co,\"Ada,Lovelace,2024-01-01\nE2,b@b.co,Bob,Smith,2024-01-01\n"
        );
        let read = read_csv(&text).unwrap();
        assert_eq!(read.candidates.len(), 1);
        assert_eq!(read.candidates[0].row, 2);
        assert_eq!(codes(&read.candidates[0]), ["CSV_LINE_UNREADABLE"]);
    }

    #[test]
    fn teams_custom_fields_and_unknown_columns() {
        let text = "\u{feff}External_ID;EMAIL;First_Name;Last_Name;Start_Date;Teams;Custom.Cost_Center;custom.level;custom.remote;Nickname;\r\n\
                    E1;ada@example.com;Ada;Lovelace;2024-01-01; Sales | Paris |;CC-1;3;TRUE;Addy;\r\n\
                    E2;bob@example.com;Bob;Smith;2024-01-01;;;;;;\r\n";
        let read = read_csv(text).unwrap();
        let ada = read.candidates[0].record.as_ref().expect("valid");
        assert_eq!(
            ada.teams,
            Some(vec!["Sales".to_owned(), "Paris".to_owned()])
        );
        assert_eq!(ada.custom_fields["cost_center"], Some(json!("CC-1")));
        assert_eq!(ada.custom_fields["level"], Some(json!(3)));
        assert_eq!(ada.custom_fields["remote"], Some(json!(true)));
        let bob = read.candidates[1].record.as_ref().expect("valid");
        assert_eq!(bob.teams, Some(Vec::new()));
        assert_eq!(bob.custom_fields["cost_center"], None);
        assert_eq!(
            read.warnings,
            ["The file has 2 column(s) that are not record fields, kept in the stored file and ignored by the run: \"Nickname\", an unnamed column (column 11)."]
        );
    }

    #[test]
    fn a_custom_value_that_is_not_of_its_type_is_a_mismatch_as_in_json() {
        let text = format!("{HEADER},custom.level\nE1,a@b.co,A,B,2024-01-01,three\n");
        let read = read_csv(&text).unwrap();
        assert_eq!(codes(&read.candidates[0]), ["CUSTOM_FIELD_TYPE_MISMATCH"]);
    }

    #[test]
    fn a_column_left_out_keeps_the_field_and_an_empty_cell_clears_it() {
        let text = format!("{HEADER},phone\nE1,a@b.co,A,B,2024-01-01,\n");
        let read = read_csv(&text).unwrap();
        let record = read.candidates[0].record.as_ref().expect("valid");
        assert_eq!(record.phone, crate::sync::candidate::Patch::Clear);
        assert_eq!(record.username, crate::sync::candidate::Patch::Keep);
        assert_eq!(record.teams, None);
    }

    #[test]
    fn a_stored_file_with_a_file_level_failure_is_unreadable() {
        assert_eq!(read_csv(HEADER).unwrap_err().0, NO_DATA);
        assert!(read_csv("email\na@b.co\n")
            .unwrap_err()
            .0
            .contains("missing"));
    }
}
