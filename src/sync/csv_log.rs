//! The CSV log of an uploaded file: the file as received — same delimiter, columns, order
//! and values — with `ImportStatus` and `ImportDetail` in front of every line, and a line at
//! the end for each user the run archived because a full file left them out.
//!
//! [`write_csv_log`] writes it into any `std::io::Write` (the `log.csv` endpoint streams it,
//! `export.zip` can put it in an archive). [`CsvLog::load`] and [`CsvLog::write`] split the
//! database work from the writing, so that a stream holds no connection while it is read.

use std::collections::HashMap;
use std::io::Write;

use csv::StringRecord;

use crate::catalogue::{Category, IssueCode};
use crate::domain::{LogLevel, LogLine, RunStatus, Severity};
use crate::store::events::{self, EventOutcome};
use crate::store::models::RunRow;
use crate::store::payloads::{self, StoredBody};
use crate::store::DbConn;
use crate::sync::intake::csv::{is_blank, next_record, open, OpenFile};
use crate::sync::intake::{Format, Unreadable};

/// The status of a line. Which one a line gets, from the events of its record:
///
/// 1. a record with an error (it was skipped): `Error` for `CSV_LINE_UNREADABLE` (the line
///    cannot be read), `DuplicateUser` for `DUPLICATE_EXTERNAL_ID` or `USER_DUPLICATE_EMAIL`,
///    `CustomFieldSyncIssue` when every error is a `CUSTOM_FIELD_*` code, `CreationIssue` for
///    an error of the `directory` category (`USER_EXISTS_IN_INVITED_STATE`,
///    `EMAIL_USED_BY_ARCHIVED_USER`, a seat limit…), `InvalidUser` for every other error (a
///    field, the approval flow);
/// 2. a record applied with a warning: `CustomFieldSyncIssue` for a `CUSTOM_FIELD_*` code,
///    `NoGroupsMatch` for `NO_GROUP_MATCH`;
/// 3. otherwise what was done: `UserCreated`, `UserReactivated`, `UserArchived`,
///    `UserUpdated` (fields, manager or teams changed), or `NoActionDone` (unchanged, a
///    rescinded hire, a blank line).
///
/// A failed run applied nothing: each line is `Error` with the reason. A rejected run: each
/// line is `NoActionDone`. A dry run's statuses say what a real run would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ImportStatus {
    UserCreated,
    UserUpdated,
    UserArchived,
    UserReactivated,
    NoActionDone,
    CreationIssue,
    DuplicateUser,
    InvalidUser,
    NoGroupsMatch,
    CustomFieldSyncIssue,
    Error,
}

impl ImportStatus {
    pub const ALL: &'static [ImportStatus] = &[
        ImportStatus::UserCreated,
        ImportStatus::UserUpdated,
        ImportStatus::UserArchived,
        ImportStatus::UserReactivated,
        ImportStatus::NoActionDone,
        ImportStatus::CreationIssue,
        ImportStatus::DuplicateUser,
        ImportStatus::InvalidUser,
        ImportStatus::NoGroupsMatch,
        ImportStatus::CustomFieldSyncIssue,
        ImportStatus::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ImportStatus::UserCreated => "UserCreated",
            ImportStatus::UserUpdated => "UserUpdated",
            ImportStatus::UserArchived => "UserArchived",
            ImportStatus::UserReactivated => "UserReactivated",
            ImportStatus::NoActionDone => "NoActionDone",
            ImportStatus::CreationIssue => "CreationIssue",
            ImportStatus::DuplicateUser => "DuplicateUser",
            ImportStatus::InvalidUser => "InvalidUser",
            ImportStatus::NoGroupsMatch => "NoGroupsMatch",
            ImportStatus::CustomFieldSyncIssue => "CustomFieldSyncIssue",
            ImportStatus::Error => "Error",
        }
    }
}

/// The two columns put in front of the file's own.
pub const STATUS_COLUMNS: [&str; 2] = ["ImportStatus", "ImportDetail"];

const CUSTOM_FIELD_CODE_PREFIX: &str = "CUSTOM_FIELD_";
const NO_GROUP_MATCH: &str = "NO_GROUP_MATCH";
const BLANK_LINE_DETAIL: &str = "The line is blank; it was ignored.";

/// What the events of one record (or one archived user) say.
#[derive(Debug, Default, Clone, PartialEq)]
struct Outcome {
    created: bool,
    reactivated: bool,
    archived: bool,
    updated: bool,
    /// Error codes, as stored.
    errors: Vec<String>,
    warnings: Vec<String>,
    /// `CODE: message` of every issue, in planned order.
    details: Vec<String>,
}

impl Outcome {
    fn add(&mut self, event: &EventOutcome) {
        match (event.action.as_deref(), event.code.as_deref()) {
            (Some("USER_CREATED"), _) => self.created = true,
            (Some("USER_REACTIVATED"), _) => self.reactivated = true,
            (Some("USER_ARCHIVED"), _) => self.archived = true,
            (Some(_), _) => self.updated = true,
            (None, Some(code)) => {
                let severity = event
                    .severity
                    .as_deref()
                    .or_else(|| IssueCode::parse(code).map(|c| c.severity().as_str()));
                match severity {
                    Some(severity) if severity == Severity::Error.as_str() => {
                        self.errors.push(code.to_owned())
                    }
                    Some(severity) if severity == Severity::Warning.as_str() => {
                        self.warnings.push(code.to_owned())
                    }
                    _ => {}
                }
                self.details.push(match event.message.as_deref() {
                    Some(message) => format!("{code}: {message}"),
                    None => code.to_owned(),
                });
            }
            (None, None) => {}
        }
    }

    fn status(&self) -> ImportStatus {
        let is_custom = |code: &String| code.starts_with(CUSTOM_FIELD_CODE_PREFIX);
        if !self.errors.is_empty() {
            let category = |code: &String| IssueCode::parse(code).map(|c| c.entry().category);
            return if self
                .errors
                .iter()
                .any(|code| code == IssueCode::CSV_LINE_UNREADABLE.as_str())
            {
                ImportStatus::Error
            } else if self.errors.iter().any(|code| {
                code == IssueCode::DUPLICATE_EXTERNAL_ID.as_str()
                    || code == IssueCode::USER_DUPLICATE_EMAIL.as_str()
            }) {
                ImportStatus::DuplicateUser
            } else if self.errors.iter().all(is_custom) {
                ImportStatus::CustomFieldSyncIssue
            } else if self
                .errors
                .iter()
                .any(|code| category(code) == Some(Category::Directory))
            {
                ImportStatus::CreationIssue
            } else {
                ImportStatus::InvalidUser
            };
        }
        if self.warnings.iter().any(is_custom) {
            ImportStatus::CustomFieldSyncIssue
        } else if self.warnings.iter().any(|code| code == NO_GROUP_MATCH) {
            ImportStatus::NoGroupsMatch
        } else if self.created {
            ImportStatus::UserCreated
        } else if self.reactivated {
            ImportStatus::UserReactivated
        } else if self.archived {
            ImportStatus::UserArchived
        } else if self.updated {
            ImportStatus::UserUpdated
        } else {
            ImportStatus::NoActionDone
        }
    }

    fn detail(&self) -> String {
        self.details.join("; ")
    }
}

/// A user the run touched without a line of the file: archived (or left waiting for their
/// trips) because a full file did not mention them.
#[derive(Debug, Clone, PartialEq)]
struct Unlisted {
    external_id: Option<String>,
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    outcome: Outcome,
}

/// Why there is no CSV log to write.
#[derive(Debug, thiserror::Error)]
pub enum CsvLogError {
    /// The run's push is not a CSV upload.
    #[error("the run is not a CSV upload")]
    NotCsv,
    /// The run has not finished: its log would change.
    #[error("the run is {0}")]
    NotFinished(RunStatus),
    #[error(transparent)]
    Store(#[from] diesel::result::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Everything the CSV log of a run is written from.
#[derive(Debug)]
pub struct CsvLog {
    body: StoredBody,
    /// When every line gets the same answer (a failed or rejected run): it.
    whole_run: Option<(ImportStatus, String)>,
    lines: HashMap<u32, Outcome>,
    unlisted: Vec<Unlisted>,
}

/// Events read per query.
const EVENT_PAGE: i64 = 5_000;

impl CsvLog {
    /// Loads the stored file and what the run did with each of its lines.
    pub fn load(conn: &mut DbConn, run: &RunRow) -> Result<CsvLog, CsvLogError> {
        if Format::of(&run.content_type) != Some(Format::Csv) {
            return Err(CsvLogError::NotCsv);
        }
        let status = run.status;
        if !status.is_final() {
            return Err(CsvLogError::NotFinished(status));
        }
        let body = payloads::load(conn, &run.id)?;
        let whole_run = match status {
            RunStatus::Failed => Some((ImportStatus::Error, failure_reason(&run.logs))),
            RunStatus::Rejected => Some((
                ImportStatus::NoActionDone,
                "The run was rejected: nothing of it was applied.".to_owned(),
            )),
            _ => None,
        };
        let (lines, unlisted) = match whole_run {
            Some(_) => (HashMap::new(), Vec::new()),
            None => outcomes(conn, &run.id)?,
        };
        Ok(CsvLog {
            body,
            whole_run,
            lines,
            unlisted,
        })
    }

    /// Writes the log. A file that cannot be read at all (a run that failed on it) gets the
    /// two status columns and one line saying why.
    pub fn write<W: Write>(self, mut out: W) -> std::io::Result<()> {
        let CsvLog {
            body,
            whole_run,
            lines: outcomes,
            unlisted,
        } = self;
        let OpenFile {
            layout,
            header,
            mut reader,
            mut lines,
        } = match open(body.into_reader()) {
            Ok(opened) => opened,
            Err(Unreadable(reason)) => {
                let mut writer = csv::Writer::from_writer(out);
                writer.write_record(STATUS_COLUMNS)?;
                writer.write_record([ImportStatus::Error.as_str(), reason.as_str()])?;
                return writer.flush();
            }
        };
        if layout.bom {
            out.write_all("\u{feff}".as_bytes())?;
        }
        let mut writer = csv::WriterBuilder::new()
            .delimiter(layout.delimiter)
            .terminator(if layout.crlf {
                csv::Terminator::CRLF
            } else {
                csv::Terminator::Any(b'\n')
            })
            .flexible(true)
            .buffer_capacity(64 * 1024)
            .from_writer(out);
        writer.write_record(STATUS_COLUMNS.iter().copied().chain(header.iter()))?;
        let mut record = StringRecord::new();
        let unreadable = |error: Unreadable| std::io::Error::other(error.0);
        let mut written = 0;
        while next_record(&mut reader, &mut record).map_err(unreadable)? {
            let line = lines.line_of(&record);
            let (status, detail) = line_answer(&whole_run, &outcomes, &record, line);
            writer.write_record([status.as_str(), &*detail].into_iter().chain(record.iter()))?;
            written += 1;
        }
        let columns = layout.columns.len();
        if let (0, Some((status, detail))) = (written, &whole_run) {
            // A file without lines that failed the run: the reason still needs a line.
            writer.write_record(
                [status.as_str(), detail.as_str()]
                    .into_iter()
                    .chain(std::iter::repeat_n("", columns)),
            )?;
        }
        let position = |field: &str| layout.field_index(field);
        for user in &unlisted {
            let mut cells = vec![""; columns];
            for (field, value) in [
                ("external_id", &user.external_id),
                ("email", &user.email),
                ("first_name", &user.first_name),
                ("last_name", &user.last_name),
            ] {
                if let (Some(index), Some(value)) = (position(field), value) {
                    cells[index] = value.as_str();
                }
            }
            let status = user.outcome.status();
            let detail = if status == ImportStatus::UserArchived && user.outcome.details.is_empty()
            {
                "The user was archived: the full file does not list them.".to_owned()
            } else {
                user.outcome.detail()
            };
            writer.write_record(
                [status.as_str(), detail.as_str()]
                    .into_iter()
                    .chain(cells.iter().copied()),
            )?;
        }
        writer.flush()
    }
}

/// What the log says of one line of the file.
fn line_answer<'a>(
    whole_run: &'a Option<(ImportStatus, String)>,
    outcomes: &'a HashMap<u32, Outcome>,
    record: &StringRecord,
    line: u32,
) -> (ImportStatus, std::borrow::Cow<'a, str>) {
    if let Some((status, detail)) = whole_run {
        return (*status, detail.as_str().into());
    }
    if is_blank(record) {
        return (ImportStatus::NoActionDone, BLANK_LINE_DETAIL.into());
    }
    match outcomes.get(&line) {
        Some(outcome) => (outcome.status(), outcome.detail().into()),
        None => (ImportStatus::NoActionDone, "".into()),
    }
}

/// Writes the CSV log of a finished CSV run into `out`: what `GET /v1/syncs/{id}/log.csv`
/// serves, for other exports to include.
pub fn write_csv_log<W: Write>(conn: &mut DbConn, run: &RunRow, out: W) -> Result<(), CsvLogError> {
    let log = CsvLog::load(conn, run)?;
    log.write(out)?;
    Ok(())
}

/// What the run did with each line of the file, by line, and with the users it touched
/// without a line (archived by a full file), in planned order. Events are read a page at a
/// time, without their changes.
fn outcomes(
    conn: &mut DbConn,
    run_id: &str,
) -> diesel::QueryResult<(HashMap<u32, Outcome>, Vec<Unlisted>)> {
    let mut lines: HashMap<u32, Outcome> = HashMap::new();
    let mut unlisted: Vec<Unlisted> = Vec::new();
    let mut unlisted_index: HashMap<String, usize> = HashMap::new();
    let mut after = 0;
    loop {
        let page = events::outcomes(conn, run_id, after, EVENT_PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for event in &page {
            match (event.source_row, &event.user_id) {
                (Some(row), _) => lines
                    .entry(u32::try_from(row).unwrap_or(0))
                    .or_default()
                    .add(event),
                (None, Some(user_id)) if event.entity == "user" => {
                    let index = *unlisted_index.entry(user_id.clone()).or_insert_with(|| {
                        unlisted.push(Unlisted {
                            external_id: event.external_id.clone(),
                            email: event.email.clone(),
                            first_name: event.first_name.clone(),
                            last_name: event.last_name.clone(),
                            outcome: Outcome::default(),
                        });
                        unlisted.len() - 1
                    });
                    unlisted[index].outcome.add(event);
                }
                // Teams created on the way have no line of their own.
                _ => {}
            }
        }
        if page.len() < usize::try_from(EVENT_PAGE).unwrap_or(usize::MAX) {
            break;
        }
    }
    Ok((lines, unlisted))
}

/// The last error line of a failed run's log: why it failed.
fn failure_reason(logs: &str) -> String {
    let lines: Vec<LogLine> = serde_json::from_str(logs).unwrap_or_default();
    lines
        .iter()
        .rev()
        .find(|line| line.level == LogLevel::Error)
        .map_or_else(
            || "The run failed; nothing of it was applied.".to_owned(),
            |line| line.message.clone(),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issue(code: &str, severity: &str) -> EventOutcome {
        EventOutcome {
            seq: 1,
            source_row: Some(2),
            entity: "user".into(),
            action: None,
            code: Some(code.into()),
            severity: Some(severity.into()),
            message: Some(format!("about {code}")),
            external_id: None,
            email: None,
            first_name: None,
            last_name: None,
            user_id: None,
        }
    }

    fn update(action: &str) -> EventOutcome {
        EventOutcome {
            action: Some(action.into()),
            code: None,
            severity: None,
            message: None,
            ..issue("", "")
        }
    }

    fn status_of(events: &[EventOutcome]) -> ImportStatus {
        let mut outcome = Outcome::default();
        for event in events {
            outcome.add(event);
        }
        outcome.status()
    }

    #[test]
    fn what_was_done_gives_the_status_of_a_clean_line() {
        assert_eq!(status_of(&[]), ImportStatus::NoActionDone);
        assert_eq!(
            status_of(&[update("USER_CREATED")]),
            ImportStatus::UserCreated
        );
        assert_eq!(
            status_of(&[update("MANAGER_ASSIGNED"), update("TEAM_ASSIGNED")]),
            ImportStatus::UserUpdated
        );
        assert_eq!(
            status_of(&[update("USER_ARCHIVED")]),
            ImportStatus::UserArchived
        );
        assert_eq!(
            status_of(&[update("USER_REACTIVATED"), update("TEAM_ASSIGNED")]),
            ImportStatus::UserReactivated
        );
        assert_eq!(
            status_of(&[issue("RESCINDED_HIRE_NOT_CREATED", "info")]),
            ImportStatus::NoActionDone
        );
    }

    #[test]
    fn errors_give_the_status_of_their_kind() {
        assert_eq!(
            status_of(&[issue("CSV_LINE_UNREADABLE", "error")]),
            ImportStatus::Error
        );
        assert_eq!(
            status_of(&[
                issue("EMAIL_INVALID", "error"),
                issue("USER_DUPLICATE_EMAIL", "error")
            ]),
            ImportStatus::DuplicateUser
        );
        assert_eq!(
            status_of(&[issue("CUSTOM_FIELD_REQUIRED", "error")]),
            ImportStatus::CustomFieldSyncIssue
        );
        assert_eq!(
            status_of(&[issue("USER_EXISTS_IN_INVITED_STATE", "error")]),
            ImportStatus::CreationIssue
        );
        assert_eq!(
            status_of(&[
                issue("MISSING_EMAIL", "error"),
                issue("CUSTOM_FIELD_REQUIRED", "error")
            ]),
            ImportStatus::InvalidUser
        );
        assert_eq!(
            status_of(&[issue("MANAGER_DOES_NOT_EXIST", "error")]),
            ImportStatus::InvalidUser
        );
    }

    #[test]
    fn warnings_of_their_own_status_win_over_what_was_done() {
        assert_eq!(
            status_of(&[
                update("USER_CREATED"),
                issue("CUSTOM_FIELD_TYPE_MISMATCH", "warning")
            ]),
            ImportStatus::CustomFieldSyncIssue
        );
        assert_eq!(
            status_of(&[update("USER_UPDATED"), issue("NO_GROUP_MATCH", "warning")]),
            ImportStatus::NoGroupsMatch
        );
        assert_eq!(
            status_of(&[
                update("USER_CREATED"),
                issue("TEAM_NAME_INVALID", "warning")
            ]),
            ImportStatus::UserCreated
        );
    }

    #[test]
    fn the_detail_lists_every_issue_with_its_code() {
        let mut outcome = Outcome::default();
        outcome.add(&issue("MISSING_EMAIL", "error"));
        outcome.add(&issue("PHONE_IS_MISSING_OR_INVALID", "error"));
        assert_eq!(
            outcome.detail(),
            "MISSING_EMAIL: about MISSING_EMAIL; PHONE_IS_MISSING_OR_INVALID: about PHONE_IS_MISSING_OR_INVALID"
        );
    }

    #[test]
    fn the_log_repeats_the_file_with_its_delimiter_line_ends_and_byte_order_mark() {
        let body = "\u{feff}Note;external_id;email;first_name;last_name\r\n\
                    \"a; b\";E1;a@b.co;Ada;Lovelace\r\n\
                    ;;;;\r\n\
                    x;E2;b@b.co;Bob;\"Multi\r\nLine\"\r\n";
        let mut created = Outcome::default();
        created.add(&update("USER_CREATED"));
        let mut invalid = Outcome::default();
        invalid.add(&issue("MISSING_START_DATE", "error"));
        let archived = Unlisted {
            external_id: Some("E9".into()),
            email: Some("z@b.co".into()),
            first_name: Some("Zed".into()),
            last_name: Some("Old".into()),
            outcome: {
                let mut outcome = Outcome::default();
                outcome.add(&update("USER_ARCHIVED"));
                outcome
            },
        };
        let log = CsvLog {
            body: StoredBody::from_whole(body.as_bytes()),
            whole_run: None,
            lines: HashMap::from([(2, created), (4, invalid)]),
            unlisted: vec![archived],
        };
        let mut out = Vec::new();
        log.write(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\u{feff}ImportStatus;ImportDetail;Note;external_id;email;first_name;last_name\r\n\
             UserCreated;;\"a; b\";E1;a@b.co;Ada;Lovelace\r\n\
             NoActionDone;\"The line is blank; it was ignored.\";;;;;\r\n\
             InvalidUser;MISSING_START_DATE: about MISSING_START_DATE;x;E2;b@b.co;Bob;\"Multi\r\nLine\"\r\n\
             UserArchived;The user was archived: the full file does not list them.;;E9;z@b.co;Zed;Old\r\n"
        );
    }

    #[test]
    fn the_reason_of_a_failed_run_is_its_last_error_line() {
        let logs = r#"[{"at": "x", "level": "warning", "message": "w"},
                       {"at": "y", "level": "error", "message": "File contains no data."}]"#;
        assert_eq!(failure_reason(logs), "File contains no data.");
        assert!(failure_reason("[]").starts_with("The run failed"));
    }
}
