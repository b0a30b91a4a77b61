//! The period sync log: what the organization's runs did over a period, as one CSV or one
//! XLSX workbook, in two parts: "Employee updates" and "Errors".
//!
//! The log tells what happened to the directory, so it holds the runs created in the period
//! that were applied (`succeeded`, `succeeded_with_errors`, `approved`); dry runs and runs
//! that were not applied (awaiting approval, rejected, failed) are left out. Lines are dated
//! with their run's end.

use std::io::Write;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use rust_xlsxwriter::{Format, Workbook, Worksheet};

use crate::catalogue::IssueCode;
use crate::domain::EventKind;
use crate::export::csv_safety::neutralise;
use crate::export::report_csv::{changed_fields, csv_writer, write_line, BOM};
use crate::export::EventSource;
use crate::store::events::PeriodRun;
use crate::store::models::EventRow;

/// The period when none is given: the last 30 days.
pub const DEFAULT_DAYS: i64 = 30;
/// The longest period one export covers.
pub const MAX_DAYS: i64 = 366;

/// The names of the two parts: the XLSX sheet names and the CSV `section` values.
pub const UPDATES_SECTION: &str = "Employee updates";
pub const ERRORS_SECTION: &str = "Errors";

/// Columns of the "Employee updates" sheet.
pub const UPDATE_COLUMNS: [&str; 10] = [
    "time",
    "run_id",
    "action",
    "person",
    "email",
    "external_id",
    "team",
    "field",
    "old",
    "new",
];
/// Columns of the "Errors" sheet.
pub const ERROR_COLUMNS: [&str; 11] = [
    "time",
    "run_id",
    "code",
    "severity",
    "person",
    "email",
    "external_id",
    "team",
    "field",
    "message",
    "remediation",
];
/// Columns of the CSV: both parts, one after the other, told apart by `section`.
pub const CSV_COLUMNS: [&str; 15] = [
    "section",
    "time",
    "run_id",
    "action",
    "code",
    "severity",
    "person",
    "email",
    "external_id",
    "team",
    "field",
    "old",
    "new",
    "message",
    "remediation",
];

/// Rows of an XLSX sheet, header included: beyond, the sheet ends with a note.
const XLSX_MAX_ROWS: u32 = 1_048_576;

/// `[since, until)`, at most [`MAX_DAYS`] long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

impl Period {
    /// The period asked for: `until` defaults to now, `since` to [`DEFAULT_DAYS`] before
    /// `until`. The error says what is wrong, for a 400.
    pub fn resolve(
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Period, String> {
        let until = until.unwrap_or(now);
        let since = since.unwrap_or(until - Duration::days(DEFAULT_DAYS));
        if since >= until {
            return Err(format!(
                "since ({}) must be before until ({}).",
                since.to_rfc3339(),
                until.to_rfc3339()
            ));
        }
        if until - since > Duration::days(MAX_DAYS) {
            return Err(format!(
                "The period is longer than {MAX_DAYS} days; export it in several parts."
            ));
        }
        Ok(Period { since, until })
    }

    /// A file name for the period: `sync-log-<since>-<until>.<extension>` (dates, UTC).
    pub fn file_name(&self, extension: &str) -> String {
        format!(
            "sync-log-{}-{}.{extension}",
            self.since.format("%Y-%m-%d"),
            self.until.format("%Y-%m-%d")
        )
    }
}

/// What an update line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateLine {
    pub time: String,
    pub run_id: String,
    pub action: String,
    pub person: String,
    pub email: String,
    pub external_id: String,
    pub team: String,
    pub field: String,
    pub old: String,
    pub new: String,
}

/// What an error line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorLine {
    pub time: String,
    pub run_id: String,
    pub code: String,
    pub severity: String,
    pub person: String,
    pub email: String,
    pub external_id: String,
    pub team: String,
    pub field: String,
    pub message: String,
    /// The catalogue's steps, numbered, one per line.
    pub remediation: String,
}

/// The time a run's lines are dated with: its end, or its creation.
fn run_time(run: &PeriodRun) -> &str {
    run.finished_at.as_deref().unwrap_or(&run.created_at)
}

fn person(event: &EventRow) -> String {
    let names: Vec<&str> = [event.first_name.as_deref(), event.last_name.as_deref()]
        .into_iter()
        .flatten()
        .filter(|n| !n.is_empty())
        .collect();
    names.join(" ")
}

fn text(value: &Option<String>) -> String {
    value.clone().unwrap_or_default()
}

/// An update event as lines: one per changed field.
pub fn update_lines(run: &PeriodRun, event: &EventRow) -> Vec<UpdateLine> {
    let line = |field: &str, old: &str, new: &str| UpdateLine {
        time: run_time(run).to_owned(),
        run_id: run.id.clone(),
        action: text(&event.action),
        person: person(event),
        email: text(&event.email),
        external_id: text(&event.external_id),
        team: text(&event.team),
        field: field.to_owned(),
        old: old.to_owned(),
        new: new.to_owned(),
    };
    let changes = changed_fields(event);
    if changes.is_empty() {
        return vec![line(event.field.as_deref().unwrap_or_default(), "", "")];
    }
    changes
        .iter()
        .map(|c| line(&c.field, &c.old, &c.new))
        .collect()
}

/// The numbered remediation steps of a code, one per line.
pub fn remediation(code: &str) -> String {
    IssueCode::parse(code)
        .map(|code| {
            code.entry()
                .remediation
                .iter()
                .enumerate()
                .map(|(i, step)| format!("{}. {step}", i + 1))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

pub fn error_line(run: &PeriodRun, event: &EventRow) -> ErrorLine {
    let code = text(&event.code);
    ErrorLine {
        time: run_time(run).to_owned(),
        run_id: run.id.clone(),
        remediation: remediation(&code),
        code,
        severity: text(&event.severity),
        person: person(event),
        email: text(&event.email),
        external_id: text(&event.external_id),
        team: text(&event.team),
        field: text(&event.field),
        message: text(&event.message),
    }
}

/// Calls `each` with every event of `kind` of the runs, run after run, page after page;
/// `page_done` after each page (to flush).
fn for_each_event(
    source: &dyn EventSource,
    runs: &[PeriodRun],
    kind: EventKind,
    mut each: impl FnMut(&PeriodRun, &EventRow) -> anyhow::Result<()>,
    mut page_done: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    for run in runs {
        let mut pages = source.events(&run.id, Some(kind));
        loop {
            let page = pages.next_page()?;
            if page.is_empty() {
                break;
            }
            for event in &page {
                each(run, event)?;
            }
            page_done()?;
        }
    }
    Ok(())
}

/// Writes the period log as CSV: BOM, header, the update lines, then the error lines.
pub fn write_csv(
    source: &dyn EventSource,
    runs: &[PeriodRun],
    mut out: impl Write,
) -> anyhow::Result<()> {
    out.write_all(BOM)?;
    // Both closures below write through it.
    let csv = std::cell::RefCell::new(csv_writer(out));
    csv.borrow_mut().write_record(CSV_COLUMNS)?;
    let write = |cells: [&str; 15]| -> anyhow::Result<()> {
        Ok(write_line(&mut csv.borrow_mut(), &cells)?)
    };
    let flush = || -> anyhow::Result<()> { Ok(csv.borrow_mut().flush()?) };
    for_each_event(
        source,
        runs,
        EventKind::Update,
        |run, event| {
            for l in update_lines(run, event) {
                write([
                    UPDATES_SECTION,
                    &l.time,
                    &l.run_id,
                    &l.action,
                    "",
                    "",
                    &l.person,
                    &l.email,
                    &l.external_id,
                    &l.team,
                    &l.field,
                    &l.old,
                    &l.new,
                    "",
                    "",
                ])?;
            }
            Ok(())
        },
        flush,
    )?;
    for_each_event(
        source,
        runs,
        EventKind::Issue,
        |run, event| {
            let l = error_line(run, event);
            write([
                ERRORS_SECTION,
                &l.time,
                &l.run_id,
                "",
                &l.code,
                &l.severity,
                &l.person,
                &l.email,
                &l.external_id,
                &l.team,
                &l.field,
                "",
                "",
                &l.message,
                &l.remediation,
            ])
        },
        flush,
    )?;
    flush()
}

/// A stored timestamp as a spreadsheet date-time (UTC).
fn excel_time(stored: &str) -> Option<NaiveDateTime> {
    DateTime::parse_from_rfc3339(stored)
        .ok()
        .map(|t| t.with_timezone(&Utc).naive_utc())
}

/// Formats of a sheet.
struct Styles {
    header: Format,
    time: Format,
    wrapped: Format,
}

/// A sheet being filled row by row (constant-memory mode writes each row once, in order).
struct Sheet<'a> {
    sheet: &'a mut Worksheet,
    styles: &'a Styles,
    next_row: u32,
    columns: u16,
    full: bool,
    /// Rows the sheet may hold, header and final note included.
    max_rows: u32,
    /// The last time written and its date-time: the lines of a run share their time.
    last_time: Option<(String, Option<NaiveDateTime>)>,
}

impl<'a> Sheet<'a> {
    /// Names the sheet and writes its bold header; widths are set before any row.
    fn start(
        sheet: &'a mut Worksheet,
        styles: &'a Styles,
        name: &str,
        columns: &[&str],
        widths: &[f64],
        max_rows: u32,
    ) -> anyhow::Result<Sheet<'a>> {
        sheet.set_name(name)?;
        for (column, width) in (0u16..).zip(widths) {
            sheet.set_column_width(column, *width)?;
        }
        for (column, title) in (0u16..).zip(columns) {
            sheet.write_string_with_format(0, column, *title, &styles.header)?;
        }
        sheet.set_freeze_panes(1, 0)?;
        Ok(Sheet {
            sheet,
            styles,
            next_row: 1,
            columns: u16::try_from(columns.len()).unwrap_or(u16::MAX),
            full: false,
            max_rows,
            last_time: None,
        })
    }

    /// Writes a row: the time as a real date, the other cells as neutralised text.
    fn row(&mut self, time: &str, cells: &[&str]) -> anyhow::Result<()> {
        if self.full {
            return Ok(());
        }
        let row = self.next_row;
        if row + 1 >= self.max_rows {
            self.sheet.write_string(
                row,
                0,
                "The period has more lines than a sheet holds; download sync-log.csv for all of them.",
            )?;
            self.full = true;
            return Ok(());
        }
        if self.last_time.as_ref().is_none_or(|(text, _)| text != time) {
            self.last_time = Some((time.to_owned(), excel_time(time)));
        }
        match self.last_time.as_ref().and_then(|(_, at)| *at) {
            Some(at) => {
                self.sheet
                    .write_datetime_with_format(row, 0, at, &self.styles.time)?;
            }
            None => {
                self.sheet.write_string(row, 0, time)?;
            }
        }
        for (column, cell) in (1u16..).zip(cells) {
            if cell.is_empty() {
                continue;
            }
            let value = neutralise(cell).into_owned();
            if cell.contains('\n') {
                self.sheet
                    .write_string_with_format(row, column, value, &self.styles.wrapped)?;
            } else {
                self.sheet.write_string(row, column, value)?;
            }
        }
        self.next_row += 1;
        Ok(())
    }

    fn finish(self) -> anyhow::Result<()> {
        let last_row = self.next_row.saturating_sub(1);
        self.sheet
            .autofilter(0, 0, last_row, self.columns.saturating_sub(1))?;
        Ok(())
    }
}

/// Writes the period log as an XLSX workbook with the sheets "Employee updates" and
/// "Errors". Worksheets are in constant-memory mode: each row goes to a temporary file as it
/// is written; the workbook is then zipped straight into `out` (no seeking needed).
pub fn write_xlsx(
    source: &dyn EventSource,
    runs: &[PeriodRun],
    out: impl Write + Send,
) -> anyhow::Result<()> {
    write_workbook(source, runs, out, XLSX_MAX_ROWS)
}

fn write_workbook(
    source: &dyn EventSource,
    runs: &[PeriodRun],
    out: impl Write + Send,
    max_rows: u32,
) -> anyhow::Result<()> {
    let styles = Styles {
        header: Format::new().set_bold(),
        time: Format::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
        wrapped: Format::new().set_text_wrap(),
    };
    let mut workbook = Workbook::new();
    // Compressing the XML is most of the time of a big workbook: level 1 is about three times
    // faster than the default 6, for a file about a third bigger.
    workbook.set_zip_compression_level(1);
    {
        let mut sheet = Sheet::start(
            workbook.add_worksheet_with_constant_memory()?,
            &styles,
            UPDATES_SECTION,
            &UPDATE_COLUMNS,
            &[20.0, 38.0, 20.0, 28.0, 32.0, 16.0, 20.0, 20.0, 28.0, 28.0],
            max_rows,
        )?;
        for_each_event(
            source,
            runs,
            EventKind::Update,
            |run, event| {
                if sheet.full {
                    return Ok(());
                }
                for l in update_lines(run, event) {
                    sheet.row(
                        &l.time,
                        &[
                            &l.run_id,
                            &l.action,
                            &l.person,
                            &l.email,
                            &l.external_id,
                            &l.team,
                            &l.field,
                            &l.old,
                            &l.new,
                        ],
                    )?;
                }
                Ok(())
            },
            || Ok(()),
        )?;
        sheet.finish()?;
    }
    {
        let mut sheet = Sheet::start(
            workbook.add_worksheet_with_constant_memory()?,
            &styles,
            ERRORS_SECTION,
            &ERROR_COLUMNS,
            &[
                20.0, 38.0, 30.0, 10.0, 28.0, 32.0, 16.0, 20.0, 18.0, 60.0, 70.0,
            ],
            max_rows,
        )?;
        for_each_event(
            source,
            runs,
            EventKind::Issue,
            |run, event| {
                if sheet.full {
                    return Ok(());
                }
                let l = error_line(run, event);
                sheet.row(
                    &l.time,
                    &[
                        &l.run_id,
                        &l.code,
                        &l.severity,
                        &l.person,
                        &l.email,
                        &l.external_id,
                        &l.team,
                        &l.field,
                        &l.message,
                        &l.remediation,
                    ],
                )
            },
            || Ok(()),
        )?;
        sheet.finish()?;
    }
    workbook.save_to_writer(out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, day, 0, 0, 0).unwrap()
    }

    #[test]
    fn the_period_defaults_to_the_last_30_days() {
        let now = at(30);
        let period = Period::resolve(None, None, now).unwrap();
        assert_eq!(period.until, now);
        assert_eq!(period.since, now - Duration::days(30));
        let until = at(10);
        assert_eq!(
            Period::resolve(None, Some(until), now).unwrap().since,
            until - Duration::days(30)
        );
    }

    #[test]
    fn a_period_longer_than_366_days_or_backwards_is_refused() {
        let now = at(30);
        assert!(Period::resolve(Some(now - Duration::days(366)), Some(now), now).is_ok());
        let long = Period::resolve(Some(now - Duration::days(367)), Some(now), now);
        assert!(long.unwrap_err().contains("366"));
        assert!(Period::resolve(Some(at(2)), Some(at(1)), now).is_err());
        assert!(Period::resolve(Some(at(1)), Some(at(1)), now).is_err());
    }

    #[test]
    fn remediation_steps_are_numbered_one_per_line() {
        let steps = remediation("MISSING_EMAIL");
        let lines: Vec<&str> = steps.lines().collect();
        assert!(lines.len() >= 2, "{steps}");
        assert!(lines[0].starts_with("1. "));
        assert!(lines[1].starts_with("2. "));
        assert_eq!(remediation("NOT_A_CODE"), "");
    }

    #[test]
    fn an_update_line_names_the_person_and_is_dated_with_its_run() {
        let run = PeriodRun {
            id: "r1".into(),
            created_at: "2026-11-01T10:00:00.000000Z".into(),
            finished_at: Some("2026-11-01T10:00:05.000000Z".into()),
        };
        let event = EventRow {
            action: Some("USER_UPDATED".into()),
            first_name: Some("Zoë".into()),
            last_name: Some("Ørsted".into()),
            changes: Some(r#"[{"field":"teams","old":["A"],"new":["A","B"]}]"#.into()),
            ..crate::export::memory::event("r1", 1, EventKind::Update)
        };
        let lines = update_lines(&run, &event);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].person, "Zoë Ørsted");
        assert_eq!(lines[0].time, "2026-11-01T10:00:05.000000Z");
        assert_eq!((lines[0].old.as_str(), lines[0].new.as_str()), ("A", "A|B"));
        assert_eq!(
            excel_time(&lines[0].time).unwrap().to_string(),
            "2026-11-01 10:00:05"
        );
    }

    #[test]
    fn a_sheet_that_would_overflow_ends_with_a_note_pointing_at_the_csv() {
        use crate::export::memory::{event, MemorySource};
        use calamine::{open_workbook_from_rs, Data, Reader, Xlsx};
        let run = PeriodRun {
            id: "r1".into(),
            created_at: "2026-11-01T10:00:00.000000Z".into(),
            finished_at: None,
        };
        let updates = (1..=10)
            .map(|seq| EventRow {
                action: Some("USER_UPDATED".into()),
                ..event("r1", seq, EventKind::Update)
            })
            .collect();
        let source = MemorySource {
            events: updates,
            page_size: 3,
        };
        let mut out = Vec::new();
        write_workbook(&source, &[run], &mut out, 5).unwrap();
        let mut workbook: Xlsx<_> = open_workbook_from_rs(std::io::Cursor::new(out)).unwrap();
        let rows: Vec<Vec<Data>> = workbook
            .worksheet_range(UPDATES_SECTION)
            .unwrap()
            .rows()
            .map(<[Data]>::to_vec)
            .collect();
        assert_eq!(rows.len(), 5, "header, three lines, the note");
        assert!(matches!(&rows[4][0], Data::String(note) if note.contains("sync-log.csv")));
        assert!(matches!(rows[1][0], Data::DateTime(_)));
    }
}
