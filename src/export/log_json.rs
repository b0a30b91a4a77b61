//! `log.json`: the per-run log in the shape HRIS connectors use.
//!
//! Which records count as what (also stated in the OpenAPI description of [`RunLog`]):
//! - duplicate: a record skipped with `DUPLICATE_EXTERNAL_ID` or `USER_DUPLICATE_EMAIL`
//!   among its issues (the run's `counts.duplicates`);
//! - ignored: every other record that was not applied — skipped on an error-severity issue,
//!   or left alone because nothing was to be done (`RESCINDED_HIRE_NOT_CREATED`,
//!   `TERMINATED_USER_NOT_CREATED`): `counts.skipped - counts.duplicates + counts.ignored`;
//! - no group match: a user with a `NO_GROUP_MATCH` warning.
//!
//! The counts come from the run's summary; the lists are read from its events in pages,
//! one pass per list, so the log of a huge run is written in flat memory.

use std::io::Write;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::{EventKind, LogLine, RunStatus, RunSummary};
use crate::export::EventSource;
use crate::store::models::{EventRow, RunRow};

/// Issue codes that make a skipped record a duplicate.
pub const DUPLICATE_CODES: [&str; 2] = ["DUPLICATE_EXTERNAL_ID", "USER_DUPLICATE_EMAIL"];
/// The warning of a user that no group rule matched.
pub const NO_GROUP_MATCH: &str = "NO_GROUP_MATCH";

/// The outcome of a run in connector terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LogStatus {
    Success,
    Warning,
    Error,
}

/// Everything of `log.json` but its three lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogSummary {
    /// The run's id.
    #[schema(format = "uuid", example = "0193a6d2-1c4e-7d2a-9f3b-5e6a7b8c9d0e")]
    pub run_id: String,
    /// The run's own status (`succeeded`, `awaiting_approval`…).
    pub run_status: RunStatus,
    /// The HR tool the push came from.
    #[schema(example = "bamboohr")]
    pub source: String,
    /// True for a dry run: the counts and lists are what the run would do.
    #[schema(example = false)]
    pub dry_run: bool,
    /// When the run started (when it was created if it never started), ISO 8601 UTC.
    #[schema(format = "date-time", example = "2026-11-25T09:00:00.200000Z")]
    pub start_date: String,
    /// When the run finished; null while it awaits approval.
    #[schema(
        required = true,
        format = "date-time",
        example = "2026-11-25T09:00:01.450000Z"
    )]
    pub end_date: Option<String>,
    /// `error`: the run failed or was rejected; `warning`: it has issues (or awaits
    /// approval); `success` otherwise.
    pub status: LogStatus,
    /// The run's log lines; present when `status` is `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        nullable = false,
        example = json!(["The database was unavailable while the run was applied; nothing was applied."])
    )]
    pub logs: Option<Vec<String>>,
    /// Users created.
    #[schema(example = 2)]
    pub number_of_created_users: u32,
    /// Users updated, reactivated included.
    #[schema(example = 5)]
    pub number_of_updated_users: u32,
    /// Users archived.
    #[schema(example = 0)]
    pub number_of_archived_users: u32,
    /// Records skipped as duplicates: `DUPLICATE_EXTERNAL_ID`, `USER_DUPLICATE_EMAIL`.
    #[schema(example = 1)]
    pub number_of_duplicate_users: u32,
    /// Other records not applied: skipped on an error, or with nothing to do
    /// (`RESCINDED_HIRE_NOT_CREATED`, `TERMINATED_USER_NOT_CREATED`).
    #[schema(example = 1)]
    pub number_of_ignored_users: u32,
    /// Users with a `NO_GROUP_MATCH` warning.
    #[schema(example = 0)]
    pub number_of_no_groups_match_users: u32,
}

/// A person in one of the lists of `log.json`: the record as it was pushed. Like a pushed
/// record (`UserRecord`), its values are the HR tool's, unchecked: `id` is the HR tool's
/// employee id (not a UUID) and `email` may be the malformed address that got the record
/// skipped, so they carry no `format`. The lists of `RunLog` declare it inline (not as a
/// component of its own) for that reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogUser {
    /// The external id (the HR tool's employee id), as pushed; `null` when the record had none.
    #[schema(required = true, example = "E1042")]
    pub id: Option<String>,
    /// The e-mail address as pushed (possibly the invalid one that got the record skipped).
    #[schema(required = true, example = "ada.lovelace@example.com")]
    pub email: Option<String>,
    #[schema(required = true, example = "Ada")]
    pub first_name: Option<String>,
    #[schema(required = true, example = "Lovelace")]
    pub last_name: Option<String>,
    /// The record's issues, `message (CODE)`, separated by `; `.
    #[schema(
        example = "Two or more records of this push carry the same external_id. hris-sync cannot know which one is right, so every one of them was skipped. (DUPLICATE_EXTERNAL_ID)"
    )]
    pub error_message: String,
}

/// `GET /v1/syncs/{id}/log.json`.
///
/// Duplicate users are records skipped with `DUPLICATE_EXTERNAL_ID` or `USER_DUPLICATE_EMAIL`.
/// Ignored users are all other records that were not applied: skipped on an error-severity
/// issue (any other code), or left alone with `RESCINDED_HIRE_NOT_CREATED` or
/// `TERMINATED_USER_NOT_CREATED`. No-groups-match users carry a `NO_GROUP_MATCH` warning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({
    "runId": "0193a6d2-1c4e-7d2a-9f3b-5e6a7b8c9d0e", "runStatus": "succeeded_with_errors",
    "source": "bamboohr", "dryRun": false,
    "startDate": "2026-11-25T09:00:00.200000Z", "endDate": "2026-11-25T09:00:01.450000Z",
    "status": "warning",
    "numberOfCreatedUsers": 2, "numberOfUpdatedUsers": 5, "numberOfArchivedUsers": 0,
    "numberOfDuplicateUsers": 1, "numberOfIgnoredUsers": 0, "numberOfNoGroupsMatchUsers": 0,
    "duplicateUsers": [{"id": "E1042", "email": "ada.lovelace@example.com", "firstName": "Ada",
        "lastName": "Lovelace",
        "errorMessage": "Two or more records of this push carry the same external_id. hris-sync cannot know which one is right, so every one of them was skipped. (DUPLICATE_EXTERNAL_ID)"}],
    "ignoredUsers": [], "noGroupsMatchUsers": []
}))]
pub struct RunLog {
    #[serde(flatten)]
    pub summary: LogSummary,
    /// Records skipped as duplicates.
    #[schema(inline)]
    pub duplicate_users: Vec<LogUser>,
    /// Other records that were not applied.
    #[schema(inline)]
    pub ignored_users: Vec<LogUser>,
    /// Users with a `NO_GROUP_MATCH` warning.
    #[schema(inline)]
    pub no_groups_match_users: Vec<LogUser>,
}

/// The summary part of a run's log; `no_group_matches` is the count of `NO_GROUP_MATCH`
/// events of the run.
pub fn summary(run: &RunRow, no_group_matches: u64) -> LogSummary {
    let run_status = run.status;
    let found: RunSummary = run
        .summary
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    let counts = &found.counts;
    let status = match run_status {
        RunStatus::Failed | RunStatus::Rejected => LogStatus::Error,
        RunStatus::AwaitingApproval | RunStatus::SucceededWithErrors => LogStatus::Warning,
        _ if found.issues.errors > 0 || found.issues.warnings > 0 => LogStatus::Warning,
        _ => LogStatus::Success,
    };
    let logs = (status == LogStatus::Error).then(|| {
        serde_json::from_str::<Vec<LogLine>>(&run.logs)
            .unwrap_or_default()
            .into_iter()
            .map(|line| line.message)
            .collect()
    });
    LogSummary {
        run_id: run.id.clone(),
        run_status,
        source: run.source.clone(),
        dry_run: run.dry_run,
        start_date: run
            .started_at
            .clone()
            .unwrap_or_else(|| run.created_at.clone()),
        end_date: run.finished_at.clone(),
        status,
        logs,
        number_of_created_users: counts.created,
        number_of_updated_users: counts.updated + counts.reactivated,
        number_of_archived_users: counts.archived,
        number_of_duplicate_users: counts.duplicates,
        number_of_ignored_users: (counts.skipped - counts.duplicates.min(counts.skipped))
            + counts.ignored,
        number_of_no_groups_match_users: u32::try_from(no_group_matches).unwrap_or(u32::MAX),
    }
}

/// The issues of a record that was not applied: issues with a row and no user.
fn unapplied_record_issue(event: &EventRow) -> bool {
    event.kind == EventKind::Issue.as_str() && event.user_id.is_none() && event.source_row.is_some()
}

fn person(event: &EventRow, error_message: String) -> LogUser {
    LogUser {
        id: event.external_id.clone(),
        email: event.email.clone(),
        first_name: event.first_name.clone(),
        last_name: event.last_name.clone(),
        error_message,
    }
}

fn described(event: &EventRow) -> String {
    let message = event.message.as_deref().unwrap_or_default();
    match &event.code {
        Some(code) => format!("{message} ({code})"),
        None => message.to_owned(),
    }
}

/// Which list a not-applied record goes to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Unapplied {
    Duplicate,
    Ignored,
}

/// Calls `found` with each record that was not applied and is of `wanted`, its issues
/// gathered. A record's issues are consecutive in the report (the planner writes them
/// together), so one page-by-page pass suffices.
fn for_each_unapplied(
    source: &dyn EventSource,
    run_id: &str,
    wanted: Unapplied,
    mut found: impl FnMut(LogUser) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut pages = source.events(run_id, Some(EventKind::Issue));
    let mut current: Vec<EventRow> = Vec::new();
    let mut flush = |group: &mut Vec<EventRow>| -> anyhow::Result<()> {
        let Some(first) = group.first() else {
            return Ok(());
        };
        let duplicate = group.iter().any(|e| {
            e.code
                .as_deref()
                .is_some_and(|c| DUPLICATE_CODES.contains(&c))
        });
        let kind = if duplicate {
            Unapplied::Duplicate
        } else {
            Unapplied::Ignored
        };
        if kind == wanted {
            let message = group.iter().map(described).collect::<Vec<_>>().join("; ");
            found(person(first, message))?;
        }
        group.clear();
        Ok(())
    };
    loop {
        let page = pages.next_page()?;
        if page.is_empty() {
            break;
        }
        for event in page.into_iter().filter(unapplied_record_issue) {
            if current
                .first()
                .is_some_and(|first| first.source_row != event.source_row)
            {
                flush(&mut current)?;
            }
            current.push(event);
        }
    }
    flush(&mut current)
}

fn for_each_no_group_match(
    source: &dyn EventSource,
    run_id: &str,
    mut found: impl FnMut(LogUser) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut pages = source.events(run_id, Some(EventKind::Issue));
    loop {
        let page = pages.next_page()?;
        if page.is_empty() {
            return Ok(());
        }
        for event in page
            .iter()
            .filter(|e| e.code.as_deref() == Some(NO_GROUP_MATCH))
        {
            found(person(event, described(event)))?;
        }
    }
}

/// Writes the log of `run`, pretty-printed, one list entry per line.
pub fn write(source: &dyn EventSource, run: &RunRow, mut out: impl Write) -> anyhow::Result<()> {
    let no_group_matches = source.count_with_code(&run.id, NO_GROUP_MATCH)?;
    let head = serde_json::to_vec_pretty(&summary(run, no_group_matches))?;
    // `{ …fields… \n}`: the lists go before the closing brace.
    let open = head
        .strip_suffix(b"\n}")
        .ok_or_else(|| anyhow::anyhow!("unexpected JSON layout"))?;
    out.write_all(open)?;
    for (name, list) in [
        ("duplicateUsers", Some(Unapplied::Duplicate)),
        ("ignoredUsers", Some(Unapplied::Ignored)),
        ("noGroupsMatchUsers", None),
    ] {
        write!(out, ",\n  \"{name}\": [")?;
        let mut first = true;
        let mut entry = |user: LogUser| -> anyhow::Result<()> {
            out.write_all(if first { b"\n    " } else { b",\n    " })?;
            first = false;
            serde_json::to_writer(&mut out, &user)?;
            Ok(())
        };
        match list {
            Some(wanted) => for_each_unapplied(source, &run.id, wanted, &mut entry)?,
            None => for_each_no_group_match(source, &run.id, &mut entry)?,
        }
        out.write_all(if first { b"]" } else { b"\n  ]" })?;
        out.flush()?;
    }
    out.write_all(b"\n}\n")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::memory::{event, MemorySource};

    fn run(status: &str, summary: serde_json::Value) -> RunRow {
        RunRow {
            id: "run".into(),
            organization_id: "org".into(),
            status: RunStatus::from_stored(status).expect("a run status"),
            mode: crate::domain::SyncMode::Full,
            source: "test".into(),
            dry_run: false,
            content_type: "application/json".into(),
            created_at: "2026-11-30T09:00:00.000000Z".into(),
            started_at: Some("2026-11-30T09:00:01.000000Z".into()),
            finished_at: Some("2026-11-30T09:00:02.000000Z".into()),
            attempts: 1,
            progress_processed: 0,
            progress_total: 0,
            summary: Some(summary.to_string()),
            logs: r#"[{"at":"2026-11-30T09:00:02Z","level":"error","message":"boom"}]"#.into(),
            retry_of: None,
            settings_version: None,
            approval_reasons: None,
            awaiting_since: None,
            approval_expires_at: None,
            decided_by: None,
            decision_reason: None,
            decided_at: None,
        }
    }

    fn issue(seq: i32, row: i32, code: &str, who: &str, user_id: Option<&str>) -> EventRow {
        EventRow {
            code: Some(code.into()),
            message: Some(format!("{code} message")),
            source_row: Some(row),
            external_id: Some(who.into()),
            first_name: Some(who.into()),
            user_id: user_id.map(str::to_owned),
            ..event("run", seq, EventKind::Issue)
        }
    }

    #[test]
    fn counts_come_from_the_summary_and_the_status_from_the_outcome() {
        let summary = serde_json::json!({"counts": {"created": 3, "updated": 2, "reactivated": 1,
            "archived": 4, "skipped": 5, "duplicates": 2, "ignored": 1},
            "issues": {"errors": 5}});
        let log = super::summary(&run("succeeded_with_errors", summary.clone()), 7);
        assert_eq!(log.status, LogStatus::Warning);
        assert_eq!(log.number_of_created_users, 3);
        assert_eq!(log.number_of_updated_users, 3);
        assert_eq!(log.number_of_archived_users, 4);
        assert_eq!(log.number_of_duplicate_users, 2);
        assert_eq!(log.number_of_ignored_users, 4);
        assert_eq!(log.number_of_no_groups_match_users, 7);
        assert_eq!(log.logs, None);

        let failed = super::summary(&run("failed", serde_json::json!({})), 0);
        assert_eq!(failed.status, LogStatus::Error);
        assert_eq!(failed.logs, Some(vec!["boom".to_owned()]));
        let clean = super::summary(&run("succeeded", serde_json::json!({})), 0);
        assert_eq!(clean.status, LogStatus::Success);
    }

    #[test]
    fn lists_gather_each_unapplied_record_once_with_all_its_messages() {
        let events = vec![
            issue(1, 2, "DUPLICATE_EXTERNAL_ID", "A", None),
            issue(2, 2, "MISSING_LAST_NAME", "A", None),
            issue(3, 3, "DUPLICATE_EXTERNAL_ID", "B", None),
            issue(4, 5, "EMAIL_INVALID", "C", None),
            issue(5, 6, "RESCINDED_HIRE_NOT_CREATED", "D", None),
            issue(6, 7, "NO_GROUP_MATCH", "E", Some("user-e")),
            issue(7, 8, "CUSTOM_FIELD_UNKNOWN", "F", Some("user-f")),
        ];
        let source = MemorySource {
            events,
            page_size: 1,
        };
        let mut out = Vec::new();
        write(&source, &run("succeeded", serde_json::json!({})), &mut out).unwrap();
        let log: RunLog = serde_json::from_slice(&out).unwrap();
        let ids = |list: &[LogUser]| -> Vec<String> {
            list.iter().map(|u| u.id.clone().unwrap()).collect()
        };
        assert_eq!(ids(&log.duplicate_users), ["A", "B"]);
        assert_eq!(ids(&log.ignored_users), ["C", "D"]);
        assert_eq!(ids(&log.no_groups_match_users), ["E"]);
        assert_eq!(log.summary.number_of_no_groups_match_users, 1);
        assert_eq!(
            log.duplicate_users[0].error_message,
            "DUPLICATE_EXTERNAL_ID message (DUPLICATE_EXTERNAL_ID); MISSING_LAST_NAME message (MISSING_LAST_NAME)"
        );
    }

    #[test]
    fn empty_lists_are_still_valid_json() {
        let source = MemorySource {
            events: Vec::new(),
            page_size: 10,
        };
        let mut out = Vec::new();
        write(&source, &run("succeeded", serde_json::json!({})), &mut out).unwrap();
        let log: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(log["duplicateUsers"], serde_json::json!([]));
        assert_eq!(log["noGroupsMatchUsers"], serde_json::json!([]));
        assert_eq!(log["status"], "success");
    }
}
