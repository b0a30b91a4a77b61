//! Builders shared by the engine's unit tests: records as an HR tool pushes them, users as the
//! directory stores them, and a sink that remembers every decision of the planner.

use std::convert::Infallible;

use ahash::AHashMap as HashMap;
use chrono::NaiveDate;
use serde_json::{json, Value};

use crate::domain::{
    ApprovalProcess, PendingArchiveReason, ProvisioningSettings, Role, SyncMode, UserState,
};
use crate::store::models::{DirectoryEntry, TeamRow, UserRow};
use crate::sync::approval::check_approval_flow;
use crate::sync::candidate::Candidate;
use crate::sync::conflicts::check_email_owners;
use crate::sync::directory::Directory;
use crate::sync::duplicates::mark_duplicates;
use crate::sync::perimeter::check_new_records;
use crate::sync::plan::{needs_full_row, Event, Sink};
use crate::sync::record::RawRecord;
use crate::sync::seats::Seats;
use crate::sync::validate::{validate, Rules};

/// The day every test run happens.
pub fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()
}

/// The run's timestamp, stored form.
pub const NOW: &str = "2026-11-25T09:00:00Z";

/// When the stored users were last touched, long before [`NOW`].
pub const EARLIER: &str = "2025-01-01T00:00:00Z";

/// A valid record for `external_id` (e-mail `<external_id lowercased>@example.com`, Ada
/// Lovelace, started 2024-01-15), with the fields of `extra` laid over it.
pub fn person(external_id: &str, extra: Value) -> Value {
    let mut record = json!({
        "external_id": external_id,
        "email": format!("{}@example.com", external_id.to_lowercase()),
        "first_name": "Ada",
        "last_name": "Lovelace",
        "start_date": "2024-01-15",
    });
    let Value::Object(extra) = extra else {
        panic!("extra fields must be a JSON object");
    };
    for (key, value) in extra {
        record[key] = value;
    }
    record
}

/// Validates the records as one push, rows numbered from 1, with the default settings.
pub fn candidates(records: Vec<Value>) -> Vec<Candidate> {
    let settings = ProvisioningSettings::default();
    let rules = Rules {
        settings: &settings,
        today: today(),
    };
    records
        .into_iter()
        .zip(1..)
        .map(|(record, row)| {
            let raw: RawRecord = serde_json::from_value(record).unwrap();
            validate(row, &raw, &rules)
        })
        .collect()
}

/// Every check of a run that comes before planning, as the engine chains them; returns the
/// order in which the planner applies the records.
pub fn check(candidates: &mut [Candidate], directory: &Directory, mode: SyncMode) -> Vec<usize> {
    check_with(
        candidates,
        directory,
        mode,
        &ProvisioningSettings::default(),
    )
}

/// [`check`] under these settings.
pub fn check_with(
    candidates: &mut [Candidate],
    directory: &Directory,
    mode: SyncMode,
    settings: &ProvisioningSettings,
) -> Vec<usize> {
    mark_duplicates(candidates);
    check_email_owners(candidates, directory);
    check_new_records(
        candidates,
        directory,
        settings.sync_perimeter.as_ref(),
        today(),
    );
    let mut seats = Seats::new(settings.seat_limit, directory);
    check_approval_flow(candidates, directory, mode, today(), &mut seats)
}

/// Validates the records as one push, rows numbered from 1, under these settings.
pub fn candidates_with(records: Vec<Value>, settings: &ProvisioningSettings) -> Vec<Candidate> {
    let rules = Rules {
        settings,
        today: today(),
    };
    records
        .into_iter()
        .zip(1..)
        .map(|(record, row)| {
            let raw: RawRecord = serde_json::from_value(record).unwrap();
            validate(row, &raw, &rules)
        })
        .collect()
}

pub fn codes(candidate: &Candidate) -> Vec<&'static str> {
    candidate
        .issues
        .iter()
        .map(|issue| issue.code.as_str())
        .collect()
}

/// The fingerprint of a candidate that passed every check.
pub fn fingerprint(candidate: &Candidate) -> String {
    candidate.record.as_ref().unwrap().fingerprint.clone()
}

/// An active member of the directory holding exactly what `person(external_id, json!({}))`
/// says, applied before fingerprints existed (no `source_hash`).
pub fn stored(id: &str, external_id: &str) -> UserRow {
    let email = format!("{}@example.com", external_id.to_lowercase());
    let mut row = UserRow::new(
        "org",
        UserState::Active,
        Role::Member,
        ApprovalProcess::OutOfPolicy,
        EARLIER,
    );
    row.id = id.to_owned();
    row.external_id = Some(external_id.to_owned());
    row.email = email.clone();
    row.email_key = email.clone();
    row.first_name = "Ada".to_owned();
    row.last_name = "Lovelace".to_owned();
    row.start_date = Some("2024-01-15".to_owned());
    row.search_key = format!("ada lovelace {email} {}", external_id.to_lowercase());
    row
}

/// What the directory keeps of a stored user.
pub fn entry(row: &UserRow) -> DirectoryEntry {
    DirectoryEntry {
        id: row.id.clone(),
        external_id: row.external_id.clone(),
        email: row.email.clone(),
        email_key: row.email_key.clone(),
        first_name: row.first_name.clone(),
        last_name: row.last_name.clone(),
        state: UserState::from_stored(&row.state).expect("a stored state"),
        role: Role::from_stored(&row.role).expect("a stored role"),
        manager_id: row.manager_id.clone(),
        upcoming_trips: row.upcoming_trips,
        source_hash: row.source_hash.clone(),
        groups: row.groups.clone(),
        pending_archive_since: row.pending_archive_since.clone(),
        pending_archive_reason: row.pending_archive_reason.clone(),
        text_stamp: row.text_stamp.clone(),
    }
}

/// The directory of these users and of teams with these names.
pub fn directory(rows: &[UserRow], teams: &[&str]) -> Directory {
    let teams = teams
        .iter()
        .map(|name| TeamRow {
            id: format!("team-{}", name.to_lowercase()),
            organization_id: "org".to_owned(),
            name: (*name).to_owned(),
            name_key: name.to_lowercase(),
            created_at: EARLIER.to_owned(),
        })
        .collect();
    Directory::new(rows.iter().map(entry).collect(), teams)
}

/// The full rows the engine loads before planning: those `needs_full_row` asks for.
pub fn full_rows(
    candidates: &[Candidate],
    directory: &Directory,
    rows: &[UserRow],
) -> HashMap<String, UserRow> {
    let changing: Vec<&str> = candidates
        .iter()
        .filter_map(|candidate| candidate.record.as_ref())
        .filter_map(|record| {
            let existing = directory.by_external_id(&record.external_id)?;
            needs_full_row(record, existing, today()).then_some(existing.id.as_str())
        })
        .collect();
    rows.iter()
        .filter(|row| changing.contains(&row.id.as_str()))
        .map(|row| (row.id.clone(), row.clone()))
        .collect()
}

/// A sink that keeps every call, in order per kind.
#[derive(Default)]
pub struct RecordingSink {
    pub teams: Vec<TeamRow>,
    pub created: Vec<UserRow>,
    pub updated: Vec<UserRow>,
    pub states: Vec<(String, UserState)>,
    /// The reason given with each of `states`.
    pub reasons: Vec<Option<PendingArchiveReason>>,
    /// Stamp-only writes: the user and the stamp (`None` clears it).
    pub stamps: Vec<(String, Option<String>)>,
    pub events: Vec<Event>,
}

impl Sink for RecordingSink {
    type Error = Infallible;

    fn create_team(&mut self, team: TeamRow) -> Result<(), Infallible> {
        self.teams.push(team);
        Ok(())
    }

    fn create_user(&mut self, user: UserRow) -> Result<(), Infallible> {
        self.created.push(user);
        Ok(())
    }

    fn update_user(&mut self, user: UserRow) -> Result<(), Infallible> {
        self.updated.push(user);
        Ok(())
    }

    fn set_state(
        &mut self,
        user_id: &str,
        state: UserState,
        reason: Option<PendingArchiveReason>,
    ) -> Result<(), Infallible> {
        self.states.push((user_id.to_owned(), state));
        self.reasons.push(reason);
        Ok(())
    }

    fn stamp(&mut self, user_id: &str, stamp: Option<String>) -> Result<(), Infallible> {
        self.stamps.push((user_id.to_owned(), stamp));
        Ok(())
    }

    fn event(&mut self, event: Event) -> Result<(), Infallible> {
        self.events.push(event);
        Ok(())
    }
}
