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
use std::collections::BTreeSet;

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

const BOM: char = '\u{feff}';

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
pub struct CheckedUpload<'a> {
    /// The file as text, byte order mark included.
    pub text: &'a str,
    pub layout: Layout,
    /// Data lines (records), blank lines not counted.
    pub records: usize,
}

/// Every file-level check: UTF-8, a header with every required column and no column twice,
/// and at least one data line. Counts the records as it goes.
pub fn check_upload(bytes: &[u8]) -> Result<CheckedUpload<'_>, Unreadable> {
    let text = utf8(bytes)?;
    let OpenFile {
        layout, mut reader, ..
    } = open(text)?;
    let mut count = 0;
    let mut record = StringRecord::new();
    while next_record(&mut reader, &mut record)? {
        if !is_blank(&record) {
            count += 1;
        }
    }
    if count == 0 {
        return Err(Unreadable(NO_DATA.to_owned()));
    }
    Ok(CheckedUpload {
        text,
        layout,
        records: count,
    })
}

/// The file as text, or the encoding failure naming the line of the first byte that is not
/// UTF-8.
pub fn utf8(bytes: &[u8]) -> Result<&str, Unreadable> {
    std::str::from_utf8(bytes).map_err(|error| {
        let valid = &bytes[..error.valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
        Unreadable(format!(
            "{NOT_UTF8} The first byte that is not UTF-8 is on line {line}."
        ))
    })
}

/// A file opened for reading its records.
pub struct OpenFile<'a> {
    pub layout: Layout,
    /// The header's cells as written.
    pub header: StringRecord,
    /// Positioned after the header line.
    pub reader: csv::Reader<&'a [u8]>,
    pub lines: LineCounter<'a>,
}

/// Opens a file: its layout, its header, a reader positioned after the header line. Every
/// header-level failure is found here.
pub fn open(text: &str) -> Result<OpenFile<'_>, Unreadable> {
    let (bom, body) = match text.strip_prefix(BOM) {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let first_line = body
        .split('\n')
        .find(|line| !line.trim().is_empty())
        .ok_or_else(|| Unreadable(NO_DATA.to_owned()))?;
    let delimiter = detect_delimiter(first_line);
    let crlf = first_line.ends_with('\r');
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(body.as_bytes());
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
        lines: LineCounter::new(body),
    })
}

/// The line of the file on which each record starts (the header is line 1). The `csv`
/// crate's own count misses the line breaks inside quoted values, so lines are counted here,
/// from the byte at which each record starts; records are read in order, so the file is
/// scanned once.
pub struct LineCounter<'a> {
    text: &'a [u8],
    at: usize,
    line: u32,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a str) -> LineCounter<'a> {
        LineCounter {
            text: text.as_bytes(),
            at: 0,
            line: 1,
        }
    }

    pub fn line_of(&mut self, record: &StringRecord) -> u32 {
        let Some(position) = record.position() else {
            return 0;
        };
        // A record's position is where the previous one ended: skip the line ends (and
        // blank lines) in between.
        let mut start = usize::try_from(position.byte())
            .unwrap_or(usize::MAX)
            .min(self.text.len());
        while start < self.text.len() && matches!(self.text[start], b'\r' | b'\n') {
            start += 1;
        }
        if start < self.at {
            self.at = 0;
            self.line = 1;
        }
        let breaks = self.text[self.at..start]
            .iter()
            .filter(|&&byte| byte == b'\n')
            .count();
        self.line = self
            .line
            .saturating_add(u32::try_from(breaks).unwrap_or(u32::MAX));
        self.at = start;
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

/// The next record; reading from memory fails only on text that is not UTF-8, which
/// [`utf8`] already ruled out.
pub fn next_record(
    reader: &mut csv::Reader<&[u8]>,
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
pub fn read(
    body: &str,
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
        if is_blank(&record) {
            continue;
        }
        let line = lines.line_of(&record);
        if record.len() != columns.len() {
            stream.unreadable(line, field_count_issue(line, record.len(), columns.len()));
            continue;
        }
        stream.record(line, &raw_record(&record, &columns));
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
        read_records("text/csv", text, 0, &rules, &mut |_| {})
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
    fn a_file_that_is_not_utf8_names_the_line_of_the_first_bad_byte() {
        let bytes = b"external_id,email\nE1,a@b.co\nE2,caf\xe9@b.co\n";
        let error = check_upload(bytes).unwrap_err();
        assert_eq!(
            error.0,
            "File encoding is not supported. Please make sure the file is encoded using UTF-8. The first byte that is not UTF-8 is on line 3."
        );
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
        let error = check_upload(b"external_id,Email\nE1,a@b.co\n").unwrap_err();
        assert_eq!(
            error.0,
            "The required columns \"first_name\", \"last_name\" are missing from the header."
        );
        let error = check_upload(b"external_id,email,first_name\nE1,a@b.co,A\n").unwrap_err();
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
        let error = check_upload(b"external_id;email;email\nE1;a;b\n").unwrap_err();
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
