//! The planner: diffs the applicable records against the directory and says what changes.
//!
//! It streams what it decides into a [`Sink`] (the database inside the run's transaction, or a
//! vector in tests) instead of building the whole plan in memory: a run of 100,000 people
//! produces hundreds of thousands of report lines.

use std::collections::BTreeMap;

use ahash::{AHashMap as HashMap, AHashSet as HashSet};

use chrono::NaiveDate;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::catalogue::IssueCode;
use crate::domain::{
    search_key, ApprovalProcess, EntityKind, IssueTotals, PendingArchiveReason,
    ProvisioningSettings, Role, RunCounts, Severity, SyncMode, UpdateAction, UserState,
};
use crate::store::models::{DirectoryEntry, TeamRow, UserRow};
use crate::store::new_id;
use crate::sync::candidate::{Candidate, Issue, Patch, Record, Shown};
use crate::sync::condition::row_values;
use crate::sync::directory::Directory;
use crate::sync::grace::{grace_ends, is_expired, pending_reason};
use crate::sync::groups::{matching_groups, no_group_match};
use crate::sync::perimeter;
use crate::sync::unchanged::StampContext;

/// One field's change, `old` → `new` (`null` when empty).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub field: &'static str,
    pub old: Value,
    pub new: Value,
}

/// A line of the report before it is numbered and stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub entity: EntityKind,
    /// Set for updates.
    pub action: Option<UpdateAction>,
    /// Set for issues.
    pub issue: Option<Issue>,
    pub changes: Vec<Change>,
    pub row: Option<u32>,
    pub who: Shown,
    pub user_id: Option<String>,
    pub team: Option<String>,
}

/// Where the planner's decisions go.
pub trait Sink {
    type Error;
    fn create_team(&mut self, team: TeamRow) -> Result<(), Self::Error>;
    fn create_user(&mut self, user: UserRow) -> Result<(), Self::Error>;
    fn update_user(&mut self, user: UserRow) -> Result<(), Self::Error>;
    /// Moves a user to another state without touching the rest of the row (offboarding of a
    /// user the push does not mention). A move to `pending_archive` says why.
    fn set_state(
        &mut self,
        user_id: &str,
        state: UserState,
        reason: Option<PendingArchiveReason>,
    ) -> Result<(), Self::Error>;
    /// Stamps a user the run leaves unchanged with the text of their record, or clears their
    /// stamp (`None`), without touching the rest of the row (see `sync::unchanged`).
    fn stamp(&mut self, user_id: &str, stamp: Option<String>) -> Result<(), Self::Error>;
    fn event(&mut self, event: Event) -> Result<(), Self::Error>;
}

/// What the planner needs besides the records.
pub struct PlanContext<'a> {
    pub organization_id: &'a str,
    pub mode: SyncMode,
    pub today: NaiveDate,
    /// The run's timestamp, stored form.
    pub now: &'a str,
    pub directory: &'a Directory,
    /// Full rows of the users for which [`needs_full_row`] said yes, by id.
    pub full_rows: &'a HashMap<String, UserRow>,
    /// The provisioning rules the plan follows: groups, perimeter, grace period.
    pub settings: &'a ProvisioningSettings,
    /// How the users whose records apply cleanly are stamped (see `sync::unchanged`).
    pub stamps: StampContext,
}

/// False when the record is the one last applied to the user and the user is in the state
/// the record asks for: nothing can change, and the planner does not need the full row.
pub fn needs_full_row(record: &Record, existing: &DirectoryEntry, today: NaiveDate) -> bool {
    !is_known_unchanged(record, existing, today)
}

fn is_known_unchanged(record: &Record, existing: &DirectoryEntry, today: NaiveDate) -> bool {
    let same_record = existing.source_hash.as_deref() == Some(record.fingerprint.as_str());
    let settled = matches!(
        (record.is_leaving(today), existing.state),
        (false, UserState::Active) | (true, UserState::Archived)
    );
    same_record && settled
}

/// The totals of a planned run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    pub counts: RunCounts,
    pub issues: IssueTotals,
}

/// Plans every candidate: first the issues of skipped records (in row order), then the
/// applicable records in `order` (managers first), then, in full mode, the archiving of users
/// missing from the push.
pub fn plan<S: Sink>(
    candidates: &[Candidate],
    order: &[usize],
    context: &PlanContext<'_>,
    sink: &mut S,
) -> Result<Totals, S::Error> {
    let mut planner = Planner::new(context, sink);
    for candidate in candidates.iter().filter(|c| c.is_skipped()) {
        planner.skipped(candidate)?;
    }
    for &index in order {
        let candidate = &candidates[index];
        if let Some(record) = &candidate.record {
            planner.apply(candidate, record)?;
        }
    }
    planner.archive_missing(candidates)?;
    Ok(planner.finish())
}

struct Planner<'a, 'c, S: Sink> {
    context: &'a PlanContext<'c>,
    sink: &'a mut S,
    /// Ids of the users this run creates, by external id (managers are planned first).
    created_ids: HashMap<String, String>,
    /// The same, the other way round: external ids by id.
    created_external_ids: HashMap<String, String>,
    /// Team names by lowercased name: the directory's and those this run creates.
    team_names: HashMap<String, String>,
    totals: Totals,
    /// Rows (or directory users) and teams that have at least one issue.
    users_with_issues: HashSet<String>,
    teams_with_issues: HashSet<String>,
}

impl<'a, 'c, S: Sink> Planner<'a, 'c, S> {
    fn new(context: &'a PlanContext<'c>, sink: &'a mut S) -> Self {
        let team_names = context
            .directory
            .teams
            .iter()
            .map(|(key, team)| (key.clone(), team.name.clone()))
            .collect();
        Planner {
            context,
            sink,
            created_ids: HashMap::new(),
            created_external_ids: HashMap::new(),
            team_names,
            totals: Totals::default(),
            users_with_issues: HashSet::new(),
            teams_with_issues: HashSet::new(),
        }
    }

    fn finish(mut self) -> Totals {
        self.totals.issues.users_affected = count(self.users_with_issues.len());
        self.totals.issues.teams_affected = count(self.teams_with_issues.len());
        self.totals
    }

    fn skipped(&mut self, candidate: &Candidate) -> Result<(), S::Error> {
        self.totals.counts.skipped += 1;
        let duplicate = candidate.issues.iter().any(|issue| {
            matches!(
                issue.code,
                IssueCode::DUPLICATE_EXTERNAL_ID | IssueCode::USER_DUPLICATE_EMAIL
            )
        });
        if duplicate {
            self.totals.counts.duplicates += 1;
        }
        self.issues(candidate, None)
    }

    /// Reports every issue of a record.
    fn issues(&mut self, candidate: &Candidate, user_id: Option<&str>) -> Result<(), S::Error> {
        for issue in &candidate.issues {
            self.issue(
                issue.clone(),
                Some(candidate.row),
                &candidate.shown,
                user_id,
            )?;
        }
        Ok(())
    }

    fn issue(
        &mut self,
        issue: Issue,
        row: Option<u32>,
        who: &Shown,
        user_id: Option<&str>,
    ) -> Result<(), S::Error> {
        let issues = &mut self.totals.issues;
        issues.total += 1;
        match issue.severity() {
            Severity::Error => issues.errors += 1,
            Severity::Warning => issues.warnings += 1,
            Severity::Info => issues.infos += 1,
        }
        let subject = match (row, user_id) {
            (Some(row), _) => format!("row {row}"),
            (None, Some(id)) => id.to_owned(),
            (None, None) => String::new(),
        };
        self.users_with_issues.insert(subject);
        if let Some(team) = &issue.team {
            self.teams_with_issues.insert(team.to_lowercase());
        }
        let team = issue.team.clone();
        self.sink.event(Event {
            entity: if team.is_some() {
                EntityKind::Team
            } else {
                EntityKind::User
            },
            action: None,
            issue: Some(issue),
            changes: Vec::new(),
            row,
            who: who.clone(),
            user_id: user_id.map(str::to_owned),
            team,
        })
    }

    fn update(
        &mut self,
        action: UpdateAction,
        changes: Vec<Change>,
        candidate: &Candidate,
        user_id: &str,
    ) -> Result<(), S::Error> {
        self.sink.event(Event {
            entity: EntityKind::User,
            action: Some(action),
            issue: None,
            changes,
            row: Some(candidate.row),
            who: candidate.shown.clone(),
            user_id: Some(user_id.to_owned()),
            team: None,
        })
    }

    fn apply(&mut self, candidate: &Candidate, record: &Record) -> Result<(), S::Error> {
        let directory = self.context.directory;
        let leaving = record.is_leaving(self.context.today);
        let Some(existing) = directory.by_external_id(&record.external_id) else {
            if leaving {
                self.totals.counts.ignored += 1;
                let code = match record.employment_status {
                    crate::domain::EmploymentStatus::Rescinded => {
                        IssueCode::RESCINDED_HIRE_NOT_CREATED
                    }
                    _ => IssueCode::TERMINATED_USER_NOT_CREATED,
                };
                let message = match code {
                    IssueCode::RESCINDED_HIRE_NOT_CREATED => {
                        "The hire was rescinded: no user was created."
                    }
                    _ => "The person has left the company and has no user: none was created.",
                };
                self.issue(
                    Issue::new(code, "employment_status", message),
                    Some(candidate.row),
                    &candidate.shown,
                    None,
                )?;
                return self.issues(candidate, None);
            }
            if candidate.has(IssueCode::OUTSIDE_SYNC_PERIMETER) {
                // Marked by perimeter::check_new_records; the issue is among the record's.
                self.totals.counts.ignored += 1;
                return self.issues(candidate, None);
            }
            return self.create(candidate, record);
        };

        if is_known_unchanged(record, existing, self.context.today) {
            self.totals.counts.unchanged += 1;
            let no_group = self.has_rules_but_no_group(&existing.groups);
            let stamp = if existing.state == UserState::Active {
                self.clean_stamp(candidate, &no_group)
            } else {
                None
            };
            if stamp != existing.text_stamp {
                self.sink.stamp(&existing.id, stamp)?;
            }
            return self.finish_record(candidate, no_group, &existing.id);
        }
        let Some(full) = self.context.full_rows.get(&existing.id) else {
            // The engine loads every row needs_full_row asks for, in the same transaction.
            tracing::error!(user_id = %existing.id, "full row missing; the user is left as it is");
            self.totals.counts.unchanged += 1;
            return self.finish_record(candidate, Vec::new(), &existing.id);
        };
        let mut changes = Vec::new();
        let mut user = self.updated_user(full, record, &mut changes)?;
        let (manager_change, teams_change) = split_relationship_changes(&mut changes);
        let mut extra_issues = Vec::new();
        let outside = if leaving {
            None
        } else {
            self.outside_perimeter(&user)
        };
        let (before, after) = self.settle_state(
            &mut user,
            existing,
            leaving || outside.is_some(),
            &mut changes,
            &mut extra_issues,
        );
        if let Some(why) = &outside {
            extra_issues.push(perimeter::left(why, before, after));
        }
        let groups_change = if after == UserState::Active {
            self.assign_groups(&mut user, &mut extra_issues)
        } else {
            None
        };
        let action = match (before, after) {
            (_, UserState::Archived) if before != UserState::Archived => UpdateAction::UserArchived,
            (UserState::Archived, UserState::Active) => UpdateAction::UserReactivated,
            (UserState::PendingArchive, UserState::Active) => UpdateAction::UserRestored,
            _ => UpdateAction::UserUpdated,
        };
        let changed = !changes.is_empty()
            || manager_change.is_some()
            || teams_change.is_some()
            || groups_change.is_some();
        user.text_stamp = if after == UserState::Active {
            self.clean_stamp(candidate, &extra_issues)
        } else {
            None
        };
        if changed {
            user.updated_at = self.context.now.to_owned();
            match action {
                UpdateAction::UserArchived => self.totals.counts.archived += 1,
                UpdateAction::UserReactivated => self.totals.counts.reactivated += 1,
                _ => self.totals.counts.updated += 1,
            }
            let user_id = user.id.clone();
            self.sink.update_user(user)?;
            if !changes.is_empty() {
                self.update(action, changes, candidate, &user_id)?;
            }
            let relationships = [
                (UpdateAction::ManagerAssigned, manager_change),
                (UpdateAction::TeamAssigned, teams_change),
                (UpdateAction::GroupAssigned, groups_change),
            ];
            for (action, change) in relationships {
                if let Some(change) = change {
                    self.update(action, vec![change], candidate, &user_id)?;
                }
            }
        } else {
            self.totals.counts.unchanged += 1;
            if full.source_hash != user.source_hash {
                // Same values, but the record's fingerprint is new (first sync after an
                // upgrade, say): remember it, so that the next identical push is a fast one.
                self.sink.update_user(user)?;
            } else if full.text_stamp != user.text_stamp {
                self.sink.stamp(&user.id, user.text_stamp)?;
            }
        }
        self.finish_record(candidate, extra_issues, &existing.id)
    }

    /// Why `user`, as the run leaves them, is outside the sync perimeter; `None` when inside
    /// (or when there is no perimeter).
    fn outside_perimeter(&self, user: &UserRow) -> Option<String> {
        let limits = self.context.settings.sync_perimeter.as_ref()?;
        let manager = self.manager_external_id_of(user);
        perimeter::outside(limits, &user.email, |field| {
            row_values(user, manager.as_deref(), field)
        })
    }

    /// Moves `user` to the state the run leaves them in: offboarded (`offboard`: archived, or
    /// pending_archive while they have upcoming trips) or active. Records the state change in
    /// `changes` and the trips warning in `issues`; returns the states before and after.
    fn settle_state(
        &self,
        user: &mut UserRow,
        existing: &DirectoryEntry,
        offboard: bool,
        changes: &mut Vec<Change>,
        issues: &mut Vec<Issue>,
    ) -> (UserState, UserState) {
        let before = existing.state;
        let after = match (offboard, before) {
            (true, UserState::Archived) => UserState::Archived,
            (true, _) if existing.upcoming_trips > 0 => {
                issues.push(upcoming_trips_issue(existing.upcoming_trips));
                UserState::PendingArchive
            }
            (true, _) => UserState::Archived,
            (false, _) => UserState::Active,
        };
        if after != before {
            changes.push(Change {
                field: "state",
                old: before.as_str().into(),
                new: after.as_str().into(),
            });
            user.state = after.as_str().to_owned();
            user.archived_at = (after == UserState::Archived).then(|| self.context.now.to_owned());
        }
        let after_reason =
            (after == UserState::PendingArchive).then_some(PendingArchiveReason::UpcomingTrips);
        if after_reason != pending_reason(existing) {
            user.pending_archive_reason = after_reason.map(|r| r.as_str().to_owned());
            user.pending_archive_since = after_reason.map(|_| self.context.now.to_owned());
        }
        (before, after)
    }

    /// Writes the groups the rules give `user`; returns the change, if any, and adds
    /// NO_GROUP_MATCH to `issues` when rules exist and none matches.
    fn assign_groups(&self, user: &mut UserRow, issues: &mut Vec<Issue>) -> Option<Change> {
        let rules = &self.context.settings.group_rules;
        if rules.is_empty() {
            return None;
        }
        let manager = self.manager_external_id_of(user);
        let groups = matching_groups(rules, |field| row_values(user, manager.as_deref(), field));
        if groups.is_empty() {
            issues.push(no_group_match(rules.len()));
        }
        let stored = serde_json::to_string(&groups).unwrap_or_else(|_| "[]".to_owned());
        if stored == user.groups {
            return None;
        }
        let old: Vec<String> = serde_json::from_str(&user.groups).unwrap_or_default();
        user.groups = stored;
        Some(Change {
            field: "groups",
            old: old.into(),
            new: groups.into(),
        })
    }

    /// NO_GROUP_MATCH for an unchanged user whose stored groups are empty while rules exist.
    fn has_rules_but_no_group(&self, stored_groups: &str) -> Vec<Issue> {
        let rules = self.context.settings.group_rules.len();
        // Parsed only when rules exist: this is on the path of every unchanged record.
        if rules > 0
            && serde_json::from_str::<Vec<String>>(stored_groups).map_or(true, |g| g.is_empty())
        {
            vec![no_group_match(rules)]
        } else {
            Vec::new()
        }
    }

    /// The stamp of the record's text (see `sync::unchanged`) when it applies cleanly: no
    /// issue of its own, none found while planning it, no unknown field. The caller checks
    /// that the user is active after the run.
    fn clean_stamp(&self, candidate: &Candidate, found: &[Issue]) -> Option<String> {
        let hash = candidate.text_hash?;
        (candidate.issues.is_empty() && found.is_empty())
            .then(|| self.context.stamps.stored_stamp(hash))
    }

    /// The external id of the user's manager as planned so far (a manager this run creates
    /// included).
    fn manager_external_id_of(&self, user: &UserRow) -> Option<String> {
        let manager_id = user.manager_id.as_deref()?;
        if let Some(manager) = self.context.directory.by_id(manager_id) {
            return manager.external_id.clone();
        }
        self.created_external_ids.get(manager_id).cloned()
    }

    /// Reports a record's own issues (and those planning found: offboarding, groups,
    /// perimeter), and counts its warnings.
    fn finish_record(
        &mut self,
        candidate: &Candidate,
        found: Vec<Issue>,
        user_id: &str,
    ) -> Result<(), S::Error> {
        let mut issues = candidate.issues.clone();
        issues.extend(found);
        if issues.iter().any(|i| i.severity() == Severity::Warning) {
            self.totals.counts.warnings += 1;
        }
        for issue in issues {
            self.issue(issue, Some(candidate.row), &candidate.shown, Some(user_id))?;
        }
        Ok(())
    }

    fn create(&mut self, candidate: &Candidate, record: &Record) -> Result<(), S::Error> {
        let context = self.context;
        let role = record.role.unwrap_or(Role::Member);
        let approval = record
            .approval_process
            .unwrap_or(ApprovalProcess::default_for(role));
        let mut blank = UserRow::new(
            context.organization_id,
            UserState::Active,
            role,
            approval,
            context.now,
        );
        let id = blank.id.clone();
        blank.external_id = Some(record.external_id.clone());
        // Set from the record below, so that it shows as a change of the new user.
        blank.employment_status = String::new();
        let mut changes = Vec::new();
        let user = self.updated_user(&blank, record, &mut changes)?;
        // One line per new user, with every value it was created with (manager and teams
        // included): MANAGER_ASSIGNED and TEAM_ASSIGNED report changes of existing users.
        changes.retain(|c| !c.new.is_null() && c.new != Value::Array(Vec::new()));
        for change in &mut changes {
            change.old = Value::Null;
        }
        changes.push(Change {
            field: "role",
            old: Value::Null,
            new: user.role.clone().into(),
        });
        changes.push(Change {
            field: "approval_process",
            old: Value::Null,
            new: user.approval_process.clone().into(),
        });
        let mut user = user;
        let mut found = Vec::new();
        let groups_change = self.assign_groups(&mut user, &mut found);
        user.text_stamp = self.clean_stamp(candidate, &found);
        self.created_ids
            .insert(record.external_id.clone(), id.clone());
        self.created_external_ids
            .insert(id.clone(), record.external_id.clone());
        self.totals.counts.created += 1;
        self.sink.create_user(user)?;
        self.update(UpdateAction::UserCreated, changes, candidate, &id)?;
        if let Some(change) = groups_change {
            self.update(UpdateAction::GroupAssigned, vec![change], candidate, &id)?;
        }
        self.finish_record(candidate, found, &id)
    }

    /// `existing` with the record's fields applied; every difference goes to `changes`.
    fn updated_user(
        &mut self,
        existing: &UserRow,
        record: &Record,
        changes: &mut Vec<Change>,
    ) -> Result<UserRow, S::Error> {
        let mut user = existing.clone();
        let mut set = |field: &'static str, slot: &mut String, new: String| {
            if *slot != new {
                changes.push(Change {
                    field,
                    old: text_value(slot),
                    new: text_value(&new),
                });
                *slot = new;
            }
        };
        set("email", &mut user.email, record.email.as_str().to_owned());
        user.email_key = record.email.normalized();
        set(
            "first_name",
            &mut user.first_name,
            record.first_name.clone(),
        );
        set("last_name", &mut user.last_name, record.last_name.clone());
        set(
            "employment_status",
            &mut user.employment_status,
            record.employment_status.as_str().to_owned(),
        );
        if let Some(role) = record.role {
            set("role", &mut user.role, role.as_str().to_owned());
        }
        let approval = match (record.approval_process, Role::parse(&user.role)) {
            (Some(process), _) => Some(process),
            // A user who becomes a guest must have every trip approved.
            (None, Ok(Role::Guest)) => Some(ApprovalProcess::AllTrips),
            (None, _) => None,
        };
        if let Some(process) = approval {
            set(
                "approval_process",
                &mut user.approval_process,
                process.as_str().to_owned(),
            );
        }

        patch(
            "username",
            &mut user.username,
            &record.username,
            |u| u.as_str().to_owned(),
            changes,
        );
        patch(
            "start_date",
            &mut user.start_date,
            &record.start_date,
            ToString::to_string,
            changes,
        );
        patch(
            "end_date",
            &mut user.end_date,
            &record.end_date,
            ToString::to_string,
            changes,
        );
        patch(
            "date_of_birth",
            &mut user.date_of_birth,
            &record.date_of_birth,
            ToString::to_string,
            changes,
        );
        patch(
            "gender",
            &mut user.gender,
            &record.gender,
            |g| g.as_str().to_owned(),
            changes,
        );
        patch(
            "phone",
            &mut user.phone,
            &record.phone,
            |p| p.as_str().to_owned(),
            changes,
        );

        self.apply_manager(&mut user, record, changes);
        if let Some(teams) = &record.teams {
            self.apply_teams(&mut user, teams, changes)?;
        }
        apply_custom_fields(&mut user, &record.custom_fields, changes);
        let named_differently = user.first_name != existing.first_name
            || user.last_name != existing.last_name
            || user.email != existing.email
            || user.search_key.is_empty();
        if named_differently {
            user.search_key = search_key(&[
                Some(&user.first_name),
                Some(&user.last_name),
                Some(&user.email),
                user.external_id.as_deref(),
            ]);
        }
        user.source_hash = Some(record.fingerprint.clone());
        Ok(user)
    }

    fn apply_manager(&self, user: &mut UserRow, record: &Record, changes: &mut Vec<Change>) {
        let directory = self.context.directory;
        let old_external = user
            .manager_id
            .as_deref()
            .and_then(|id| directory.by_id(id))
            .and_then(|manager| manager.external_id.clone());
        let new_id = match &record.manager_external_id {
            Patch::Keep => return,
            Patch::Clear => None,
            Patch::Set(external_id) => self
                .created_ids
                .get(external_id)
                .cloned()
                .or_else(|| directory.by_external_id(external_id).map(|m| m.id.clone())),
        };
        if new_id != user.manager_id {
            let new_external = match &record.manager_external_id {
                Patch::Set(external_id) if new_id.is_some() => Some(external_id.clone()),
                _ => None,
            };
            changes.push(Change {
                field: "manager_external_id",
                old: old_external.map_or(Value::Null, Value::String),
                new: new_external.map_or(Value::Null, Value::String),
            });
            user.manager_id = new_id;
        }
    }

    fn apply_teams(
        &mut self,
        user: &mut UserRow,
        teams: &[String],
        changes: &mut Vec<Change>,
    ) -> Result<(), S::Error> {
        let mut names = Vec::with_capacity(teams.len());
        for name in teams {
            let key = name.to_lowercase();
            let canonical = match self.team_names.get(&key) {
                Some(known) => known.clone(),
                None => {
                    self.create_team(name, &key)?;
                    name.clone()
                }
            };
            names.push(canonical);
        }
        names.sort_by_key(|name| name.to_lowercase());
        let stored = serde_json::to_string(&names).unwrap_or_else(|_| "[]".to_owned());
        if stored != user.teams {
            let old: Vec<String> = serde_json::from_str(&user.teams).unwrap_or_default();
            changes.push(Change {
                field: "teams",
                old: old.into(),
                new: names.into(),
            });
            user.teams = stored;
        }
        Ok(())
    }

    fn create_team(&mut self, name: &str, key: &str) -> Result<(), S::Error> {
        self.team_names.insert(key.to_owned(), name.to_owned());
        self.sink.create_team(TeamRow {
            id: new_id(),
            organization_id: self.context.organization_id.to_owned(),
            name: name.to_owned(),
            name_key: key.to_owned(),
            created_at: self.context.now.to_owned(),
        })?;
        self.sink.event(Event {
            entity: EntityKind::Team,
            action: Some(UpdateAction::TeamCreated),
            issue: None,
            changes: vec![Change {
                field: "name",
                old: Value::Null,
                new: name.into(),
            }],
            row: None,
            who: Shown::default(),
            user_id: None,
            team: Some(name.to_owned()),
        })
    }

    /// Offboards the users of the directory that the push does not mention: in full mode
    /// every active one (after the grace period, when `archive_grace_days` sets one); in any
    /// mode, those whose offboarding waits (`pending_archive`): for upcoming trips, retried by
    /// every run, or for a grace period that has ended. A person is mentioned by their external
    /// id or their e-mail address, even when their record was skipped: an invalid record must
    /// never offboard anyone.
    fn archive_missing(&mut self, candidates: &[Candidate]) -> Result<(), S::Error> {
        let external_ids: HashSet<&str> = candidates
            .iter()
            .filter_map(|c| c.external_id.as_deref())
            .collect();
        let email_keys: HashSet<&str> = candidates
            .iter()
            .filter_map(|c| c.email_key.as_deref())
            .collect();
        let directory = self.context.directory;
        let grace_days = self.context.settings.archive_grace_days;
        for existing in &directory.users {
            let Some(external_id) = existing.external_id.as_deref() else {
                continue;
            };
            if external_ids.contains(external_id)
                || email_keys.contains(existing.email_key.as_str())
            {
                continue;
            }
            let before = existing.state;
            let before_reason = pending_reason(existing);
            let offboarding = match (before, before_reason) {
                (UserState::PendingArchive, Some(PendingArchiveReason::MissingFromFullSync)) => {
                    is_expired(existing, grace_days, self.context.today)
                }
                (UserState::PendingArchive, _) => true,
                (UserState::Active, _) if self.context.mode == SyncMode::Full => {
                    if grace_days > 0 {
                        self.start_grace(existing, grace_days)?;
                        continue;
                    }
                    true
                }
                _ => false,
            };
            if !offboarding {
                continue;
            }
            let who = shown_user(existing);
            let (after, after_reason) = if existing.upcoming_trips > 0 {
                (
                    UserState::PendingArchive,
                    Some(PendingArchiveReason::UpcomingTrips),
                )
            } else {
                (UserState::Archived, None)
            };
            if (after, after_reason) != (before, before_reason) {
                self.sink.set_state(&existing.id, after, after_reason)?;
            }
            if after != before {
                let action = match after {
                    UserState::Archived => {
                        self.totals.counts.archived += 1;
                        UpdateAction::UserArchived
                    }
                    _ => {
                        self.totals.counts.updated += 1;
                        UpdateAction::UserUpdated
                    }
                };
                self.state_event(action, existing, before, after)?;
            }
            if after == UserState::PendingArchive {
                self.totals.counts.warnings += 1;
                self.issue(
                    upcoming_trips_issue(existing.upcoming_trips),
                    None,
                    &who,
                    Some(&existing.id),
                )?;
            }
        }
        Ok(())
    }

    /// Marks an active user missing from a full sync `pending_archive` for the grace period.
    fn start_grace(&mut self, existing: &DirectoryEntry, days: u32) -> Result<(), S::Error> {
        let reason = PendingArchiveReason::MissingFromFullSync;
        self.sink
            .set_state(&existing.id, UserState::PendingArchive, Some(reason))?;
        self.totals.counts.pending_archive += 1;
        self.state_event(
            UpdateAction::UserUpdated,
            existing,
            UserState::Active,
            UserState::PendingArchive,
        )?;
        let ends = grace_ends(self.context.now, days)
            .map_or_else(|| format!("in {days} day(s)"), |day| format!("on {day}"));
        self.issue(
            Issue::new(
                IssueCode::ARCHIVE_GRACE_PERIOD_STARTED,
                "state",
                format!("The user is not in this full sync: marked pending_archive, and archived {ends} if still missing by then."),
            ),
            None,
            &shown_user(existing),
            Some(&existing.id),
        )
    }

    fn state_event(
        &mut self,
        action: UpdateAction,
        existing: &DirectoryEntry,
        before: UserState,
        after: UserState,
    ) -> Result<(), S::Error> {
        self.sink.event(Event {
            entity: EntityKind::User,
            action: Some(action),
            issue: None,
            changes: vec![Change {
                field: "state",
                old: before.as_str().into(),
                new: after.as_str().into(),
            }],
            row: None,
            who: shown_user(existing),
            user_id: Some(existing.id.clone()),
            team: None,
        })
    }
}

/// A directory user as the report names them.
fn shown_user(existing: &DirectoryEntry) -> Shown {
    Shown {
        external_id: existing.external_id.clone(),
        email: Some(existing.email.clone()),
        first_name: Some(existing.first_name.clone()),
        last_name: Some(existing.last_name.clone()),
    }
}

fn upcoming_trips_issue(trips: i32) -> Issue {
    Issue::new(
        IssueCode::USER_HAS_UPCOMING_TRIPS,
        "state",
        format!("The user has {trips} upcoming trip(s): marked pending_archive, and archived by a later sync once they are over."),
    )
}

/// Takes the manager and teams changes out: they are reported as their own updates.
fn split_relationship_changes(changes: &mut Vec<Change>) -> (Option<Change>, Option<Change>) {
    let take = |changes: &mut Vec<Change>, field: &str| {
        changes
            .iter()
            .position(|c| c.field == field)
            .map(|at| changes.remove(at))
    };
    let manager = take(changes, "manager_external_id");
    let teams = take(changes, "teams");
    (manager, teams)
}

fn patch<T>(
    field: &'static str,
    slot: &mut Option<String>,
    patch: &Patch<T>,
    show: impl Fn(&T) -> String,
    changes: &mut Vec<Change>,
) {
    let new = match patch {
        Patch::Keep => return,
        Patch::Clear => None,
        Patch::Set(value) => Some(show(value)),
    };
    if *slot != new {
        changes.push(Change {
            field,
            old: slot.clone().map_or(Value::Null, Value::String),
            new: new.clone().map_or(Value::Null, Value::String),
        });
        *slot = new;
    }
}

fn apply_custom_fields(
    user: &mut UserRow,
    updates: &BTreeMap<String, Option<Value>>,
    changes: &mut Vec<Change>,
) {
    if updates.is_empty() {
        return;
    }
    let old: Map<String, Value> = serde_json::from_str(&user.custom_fields).unwrap_or_default();
    let mut new = old.clone();
    for (key, value) in updates {
        match value {
            Some(value) => new.insert(key.clone(), value.clone()),
            None => new.remove(key),
        };
    }
    if new != old {
        user.custom_fields = Value::Object(new.clone()).to_string();
        changes.push(Change {
            field: "custom_fields",
            old: Value::Object(old),
            new: Value::Object(new),
        });
    }
}

fn text_value(text: &str) -> Value {
    if text.is_empty() {
        Value::Null
    } else {
        Value::String(text.to_owned())
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
