use serde_json::{json, Value};

use super::*;
use crate::sync::test_fixtures::{
    candidates, candidates_with, check, check_with, directory, entry, fingerprint, full_rows,
    person, stored, today, RecordingSink, EARLIER, NOW,
};

/// What planning one push produced.
struct Outcome {
    totals: Totals,
    sink: RecordingSink,
}

/// Checks and plans `records` against a directory of `rows` and `teams`, loading the full
/// rows `needs_full_row` asks for, as the engine does.
fn run(mode: SyncMode, rows: &[UserRow], teams: &[&str], records: Vec<Value>) -> Outcome {
    let candidates = candidates(records);
    run_candidates(mode, rows, teams, candidates, |candidates, directory| {
        full_rows(candidates, directory, rows)
    })
}

fn incremental(rows: &[UserRow], records: Vec<Value>) -> Outcome {
    run(SyncMode::Incremental, rows, &[], records)
}

/// Like [`run`], for candidates validated beforehand and full rows chosen by the test.
fn run_candidates(
    mode: SyncMode,
    rows: &[UserRow],
    teams: &[&str],
    mut candidates: Vec<Candidate>,
    load: impl FnOnce(&[Candidate], &Directory) -> HashMap<String, UserRow>,
) -> Outcome {
    let directory = directory(rows, teams);
    let order = check(&mut candidates, &directory, mode);
    let full_rows = load(&candidates, &directory);
    let mut sink = RecordingSink::default();
    let totals = plan(
        &candidates,
        &order,
        &context(mode, &directory, &full_rows),
        &mut sink,
    )
    .unwrap_or_else(|never| match never {});
    Outcome { totals, sink }
}

fn context<'a>(
    mode: SyncMode,
    directory: &'a Directory,
    full_rows: &'a HashMap<String, UserRow>,
) -> PlanContext<'a> {
    PlanContext {
        organization_id: "org",
        mode,
        today: today(),
        now: NOW,
        directory,
        full_rows,
        settings: &DEFAULT_SETTINGS,
        stamps: StampContext::new(&DEFAULT_SETTINGS),
    }
}

static DEFAULT_SETTINGS: std::sync::LazyLock<ProvisioningSettings> =
    std::sync::LazyLock::new(ProvisioningSettings::default);

/// One line per event: the action or issue code, then the row, else the user, else the team.
fn lines(sink: &RecordingSink) -> Vec<String> {
    sink.events.iter().map(line).collect()
}

fn line(event: &Event) -> String {
    let what = match (&event.action, &event.issue) {
        (Some(action), _) => action.as_str().to_owned(),
        (None, Some(issue)) => format!("issue {}", issue.code),
        (None, None) => "?".to_owned(),
    };
    let about = match (event.row, &event.user_id, &event.team) {
        (Some(row), _, _) => format!("row {row}"),
        (None, Some(user), _) => user.clone(),
        (None, None, Some(team)) => team.clone(),
        (None, None, None) => String::new(),
    };
    format!("{what} {about}")
}

fn change(field: &'static str, old: Value, new: Value) -> Change {
    Change { field, old, new }
}

fn changes_of(sink: &RecordingSink, action: UpdateAction) -> &[Change] {
    &sink
        .events
        .iter()
        .find(|event| event.action == Some(action))
        .unwrap_or_else(|| panic!("no {action} event in {:?}", lines(sink)))
        .changes
}

fn counts(counts: RunCounts) -> Totals {
    Totals {
        counts,
        issues: IssueTotals::default(),
    }
}

fn with_state(row: UserRow, state: &str) -> UserRow {
    UserRow {
        state: state.to_owned(),
        ..row
    }
}

/// A terminated person as the directory keeps them after an earlier run offboarded them.
fn terminated(row: UserRow) -> UserRow {
    UserRow {
        employment_status: "terminated".to_owned(),
        ..row
    }
}

fn nothing_written(sink: &RecordingSink) -> bool {
    sink.teams.is_empty()
        && sink.created.is_empty()
        && sink.updated.is_empty()
        && sink.states.is_empty()
}

// Creating

#[test]
fn a_new_person_is_created_with_every_initial_value_as_a_change_from_null() {
    let record = person(
        "E1",
        json!({"gender": "F", "phone": "+33 612345678", "teams": ["Sales"]}),
    );
    let expected_hash = fingerprint(&candidates(vec![record.clone()])[0]);

    let Outcome { totals, sink } = incremental(&[], vec![record]);

    assert_eq!(
        totals,
        counts(RunCounts {
            created: 1,
            ..RunCounts::default()
        })
    );
    assert_eq!(sink.created.len(), 1);
    let user = &sink.created[0];
    assert_eq!(lines(&sink), ["TEAM_CREATED Sales", "USER_CREATED row 1"]);
    assert_eq!(sink.events[1].user_id.as_deref(), Some(user.id.as_str()));
    assert_eq!(
        changes_of(&sink, UpdateAction::UserCreated),
        [
            change("email", Value::Null, json!("e1@example.com")),
            change("first_name", Value::Null, json!("Ada")),
            change("last_name", Value::Null, json!("Lovelace")),
            change("employment_status", Value::Null, json!("active")),
            change("start_date", Value::Null, json!("2024-01-15")),
            change("gender", Value::Null, json!("F")),
            change("phone", Value::Null, json!("+33 612345678")),
            change("teams", Value::Null, json!(["Sales"])),
            change("role", Value::Null, json!("member")),
            change("approval_process", Value::Null, json!("out_of_policy")),
        ]
    );
    assert_eq!(user.organization_id, "org");
    assert_eq!(user.external_id.as_deref(), Some("E1"));
    assert_eq!(user.email_key, "e1@example.com");
    assert_eq!(user.state, "active");
    assert_eq!(user.teams, r#"["Sales"]"#);
    assert_eq!(user.source_hash, Some(expected_hash));
    assert_eq!(user.search_key, "ada lovelace e1@example.com e1");
    assert_eq!(
        (user.created_at.as_str(), user.updated_at.as_str()),
        (NOW, NOW)
    );
    assert!(sink.updated.is_empty() && sink.states.is_empty());
}

#[test]
fn a_new_guest_is_created_with_all_trips_approval() {
    let Outcome { totals, sink } = incremental(&[], vec![person("G", json!({"role": "Guest"}))]);

    assert_eq!(totals.counts.created, 1);
    assert_eq!(sink.created[0].role, "guest");
    assert_eq!(sink.created[0].approval_process, "all_trips");
    let changes = changes_of(&sink, UpdateAction::UserCreated);
    assert_eq!(
        &changes[changes.len() - 2..],
        [
            change("role", Value::Null, json!("guest")),
            change("approval_process", Value::Null, json!("all_trips")),
        ]
    );
}

#[test]
fn a_new_subordinate_listed_first_points_at_the_manager_created_in_the_same_run() {
    let Outcome { totals, sink } = incremental(
        &[],
        vec![
            person("S", json!({"manager_external_id": "M"})),
            person("M", json!({})),
        ],
    );

    assert_eq!(
        totals,
        counts(RunCounts {
            created: 2,
            ..RunCounts::default()
        })
    );
    assert_eq!(lines(&sink), ["USER_CREATED row 2", "USER_CREATED row 1"]);
    let (manager, subordinate) = (&sink.created[0], &sink.created[1]);
    assert_eq!(manager.external_id.as_deref(), Some("M"));
    assert_eq!(subordinate.manager_id.as_deref(), Some(manager.id.as_str()));
    assert!(sink.events[1].changes.contains(&change(
        "manager_external_id",
        Value::Null,
        json!("M")
    )));
}

// Updating

#[test]
fn a_changed_person_is_updated_with_old_and_new_values_and_the_new_fingerprint() {
    let row = UserRow {
        phone: Some("+33 612345678".to_owned()),
        source_hash: Some("an older fingerprint".to_owned()),
        ..stored("u-1", "E1")
    };
    let record = person("E1", json!({"last_name": "King", "phone": null}));
    let expected_hash = fingerprint(&candidates(vec![record.clone()])[0]);

    let Outcome { totals, sink } = incremental(std::slice::from_ref(&row), vec![record]);

    assert_eq!(
        totals,
        counts(RunCounts {
            updated: 1,
            ..RunCounts::default()
        })
    );
    assert_eq!(lines(&sink), ["USER_UPDATED row 1"]);
    assert_eq!(sink.events[0].user_id.as_deref(), Some("u-1"));
    assert_eq!(
        sink.events[0].changes,
        [
            change("last_name", json!("Lovelace"), json!("King")),
            change("phone", json!("+33 612345678"), Value::Null),
        ]
    );
    assert_eq!(
        sink.updated,
        [UserRow {
            last_name: "King".to_owned(),
            phone: None,
            source_hash: Some(expected_hash),
            search_key: "ada king e1@example.com e1".to_owned(),
            updated_at: NOW.to_owned(),
            ..row
        }]
    );
    assert!(sink.created.is_empty() && sink.states.is_empty());
}

#[test]
fn manager_and_team_changes_of_a_user_are_reported_as_their_own_updates() {
    let rows = [
        UserRow {
            teams: r#"["Sales"]"#.to_owned(),
            ..stored("u-1", "E1")
        },
        stored("u-m", "M"),
    ];

    let Outcome { totals, sink } = run(
        SyncMode::Incremental,
        &rows,
        &["Sales", "Ops"],
        vec![person(
            "E1",
            json!({"manager_external_id": "M", "teams": ["ops", "Sales"]}),
        )],
    );

    assert_eq!(
        totals,
        counts(RunCounts {
            updated: 1,
            ..RunCounts::default()
        })
    );
    assert_eq!(
        lines(&sink),
        ["MANAGER_ASSIGNED row 1", "TEAM_ASSIGNED row 1"]
    );
    assert_eq!(
        sink.events[0].changes,
        [change("manager_external_id", Value::Null, json!("M"))]
    );
    assert_eq!(
        sink.events[1].changes,
        [change("teams", json!(["Sales"]), json!(["Ops", "Sales"]))]
    );
    assert!(sink.teams.is_empty(), "both teams exist already");
    assert_eq!(sink.updated[0].manager_id.as_deref(), Some("u-m"));
    assert_eq!(sink.updated[0].teams, r#"["Ops","Sales"]"#);
}

#[test]
fn a_member_who_becomes_a_guest_gets_all_trips_approval() {
    let Outcome { totals, sink } = incremental(
        &[stored("u-1", "E1")],
        vec![person("E1", json!({"role": "guest"}))],
    );

    assert_eq!(
        totals,
        counts(RunCounts {
            updated: 1,
            ..RunCounts::default()
        })
    );
    assert_eq!(
        changes_of(&sink, UpdateAction::UserUpdated),
        [
            change("role", json!("member"), json!("guest")),
            change(
                "approval_process",
                json!("out_of_policy"),
                json!("all_trips")
            ),
        ]
    );
}

// Unchanged

#[test]
fn an_identical_record_is_unchanged_and_only_its_new_fingerprint_is_written() {
    let row = stored("u-1", "E1");
    let record = person("E1", json!({}));
    let expected_hash = fingerprint(&candidates(vec![record.clone()])[0]);

    let Outcome { totals, sink } = incremental(std::slice::from_ref(&row), vec![record]);

    assert_eq!(
        totals,
        counts(RunCounts {
            unchanged: 1,
            ..RunCounts::default()
        })
    );
    assert!(sink.events.is_empty(), "{:?}", lines(&sink));
    // Remembered for the fast path of the next push; updated_at is left alone.
    assert_eq!(
        sink.updated,
        [UserRow {
            source_hash: Some(expected_hash),
            ..row
        }]
    );
}

#[test]
fn a_user_last_synced_from_the_same_record_is_unchanged_without_loading_its_full_row() {
    let pushed = candidates(vec![person("E1", json!({"phone": "+1 4155550123"}))]);
    let row = UserRow {
        phone: Some("+1 4155550123".to_owned()),
        source_hash: Some(fingerprint(&pushed[0])),
        ..stored("u-1", "E1")
    };
    let record = pushed[0].record.as_ref().unwrap();
    let entry = entry(&row);
    assert!(!needs_full_row(record, &entry, today()));

    let Outcome { totals, sink } =
        run_candidates(SyncMode::Incremental, &[row], &[], pushed, |_, _| {
            HashMap::new()
        });

    assert_eq!(
        totals,
        counts(RunCounts {
            unchanged: 1,
            ..RunCounts::default()
        })
    );
    assert!(nothing_written(&sink));
    assert!(sink.events.is_empty(), "{:?}", lines(&sink));
}

#[test]
fn the_fast_path_needs_the_same_fingerprint_and_a_settled_state() {
    let pushed = candidates(vec![
        person("E1", json!({})),
        person("E1", json!({"employment_status": "terminated"})),
    ]);
    let (active, leaving) = (
        pushed[0].record.as_ref().unwrap(),
        pushed[1].record.as_ref().unwrap(),
    );
    let user = |state: &str, hash: &str| {
        entry(&UserRow {
            state: state.to_owned(),
            source_hash: Some(hash.to_owned()),
            ..stored("u-1", "E1")
        })
    };
    let (active_hash, leaving_hash) = (fingerprint(&pushed[0]), fingerprint(&pushed[1]));

    assert!(!needs_full_row(
        active,
        &user("active", &active_hash),
        today()
    ));
    assert!(!needs_full_row(
        leaving,
        &user("archived", &leaving_hash),
        today()
    ));
    assert!(needs_full_row(active, &user("active", "other"), today()));
    assert!(needs_full_row(
        active,
        &user("archived", &active_hash),
        today()
    ));
    assert!(needs_full_row(
        active,
        &user("pending_archive", &active_hash),
        today()
    ));
    assert!(needs_full_row(
        leaving,
        &user("active", &leaving_hash),
        today()
    ));
    assert!(needs_full_row(
        leaving,
        &user("pending_archive", &leaving_hash),
        today()
    ));

    // An end date that has passed since the last push turns the same record into a leaver.
    let dated = candidates(vec![person("E1", json!({"end_date": "2026-11-24"}))]);
    let dated_hash = fingerprint(&dated[0]);
    let dated = dated[0].record.as_ref().unwrap();
    assert!(needs_full_row(dated, &user("active", &dated_hash), today()));
    assert!(!needs_full_row(
        dated,
        &user("archived", &dated_hash),
        today()
    ));
}

#[test]
fn a_user_whose_full_row_was_not_loaded_is_left_as_it_is() {
    let Outcome { totals, sink } = run_candidates(
        SyncMode::Incremental,
        &[stored("u-1", "E1")],
        &[],
        candidates(vec![person("E1", json!({"last_name": "King"}))]),
        |_, _| HashMap::new(),
    );

    assert_eq!(
        totals,
        counts(RunCounts {
            unchanged: 1,
            ..RunCounts::default()
        })
    );
    assert!(nothing_written(&sink));
    assert!(sink.events.is_empty());
}

// Offboarding

#[test]
fn a_terminated_person_is_archived_by_updating_the_row_not_by_set_state() {
    let row = stored("u-1", "E1");

    let Outcome { totals, sink } = incremental(
        std::slice::from_ref(&row),
        vec![person("E1", json!({"employment_status": "terminated"}))],
    );

    assert_eq!(
        totals,
        counts(RunCounts {
            archived: 1,
            ..RunCounts::default()
        })
    );
    assert!(sink.states.is_empty());
    assert_eq!(lines(&sink), ["USER_ARCHIVED row 1"]);
    assert_eq!(
        sink.events[0].changes,
        [
            change("employment_status", json!("active"), json!("terminated")),
            change("state", json!("active"), json!("archived")),
        ]
    );
    assert_eq!(sink.updated.len(), 1);
    assert_eq!(sink.updated[0].state, "archived");
    assert_eq!(sink.updated[0].employment_status, "terminated");
    assert_eq!(sink.updated[0].archived_at.as_deref(), Some(NOW));
}

#[test]
fn a_leaving_person_with_upcoming_trips_is_pending_archive_with_a_warning() {
    let row = UserRow {
        upcoming_trips: 2,
        ..stored("u-1", "E1")
    };

    let Outcome { totals, sink } = incremental(
        &[row],
        vec![person("E1", json!({"employment_status": "terminated"}))],
    );

    assert_eq!(
        totals,
        Totals {
            counts: RunCounts {
                updated: 1,
                warnings: 1,
                ..RunCounts::default()
            },
            issues: IssueTotals {
                total: 1,
                warnings: 1,
                users_affected: 1,
                ..IssueTotals::default()
            },
        }
    );
    assert_eq!(
        lines(&sink),
        ["USER_UPDATED row 1", "issue USER_HAS_UPCOMING_TRIPS row 1"]
    );
    assert!(sink.events[0].changes.contains(&change(
        "state",
        json!("active"),
        json!("pending_archive")
    )));
    let issue = sink.events[1].issue.as_ref().unwrap();
    assert_eq!(issue.field.as_deref(), Some("state"));
    assert!(issue.message.contains("2 upcoming trip(s)"));
    assert_eq!(sink.events[1].user_id.as_deref(), Some("u-1"));
    assert_eq!(sink.updated[0].state, "pending_archive");
    assert_eq!(sink.updated[0].archived_at, None);
    assert!(sink.states.is_empty());
}

#[test]
fn a_pending_archive_user_who_still_has_trips_is_left_alone_and_warned_again() {
    let record = person("E1", json!({"employment_status": "terminated"}));
    let row = UserRow {
        upcoming_trips: 1,
        source_hash: Some(fingerprint(&candidates(vec![record.clone()])[0])),
        ..with_state(terminated(stored("u-1", "E1")), "pending_archive")
    };

    let Outcome { totals, sink } = incremental(&[row], vec![record]);

    assert_eq!(
        totals,
        Totals {
            counts: RunCounts {
                unchanged: 1,
                warnings: 1,
                ..RunCounts::default()
            },
            issues: IssueTotals {
                total: 1,
                warnings: 1,
                users_affected: 1,
                ..IssueTotals::default()
            },
        }
    );
    assert!(nothing_written(&sink));
    assert_eq!(lines(&sink), ["issue USER_HAS_UPCOMING_TRIPS row 1"]);
}

#[test]
fn a_pending_archive_user_whose_trips_are_over_is_archived_by_the_same_record() {
    let record = person("E1", json!({"employment_status": "terminated"}));
    let row = UserRow {
        source_hash: Some(fingerprint(&candidates(vec![record.clone()])[0])),
        ..with_state(terminated(stored("u-1", "E1")), "pending_archive")
    };

    let Outcome { totals, sink } = incremental(&[row], vec![record]);

    assert_eq!(
        totals,
        counts(RunCounts {
            archived: 1,
            ..RunCounts::default()
        })
    );
    assert_eq!(lines(&sink), ["USER_ARCHIVED row 1"]);
    assert_eq!(
        sink.events[0].changes,
        [change("state", json!("pending_archive"), json!("archived"))]
    );
    assert_eq!(sink.updated[0].state, "archived");
}

#[test]
fn an_end_date_in_the_past_offboards_an_active_employee() {
    let Outcome { totals, sink } = incremental(
        &[stored("u-1", "E1")],
        vec![person("E1", json!({"end_date": "2026-11-24"}))],
    );

    assert_eq!(
        totals,
        counts(RunCounts {
            archived: 1,
            ..RunCounts::default()
        })
    );
    assert_eq!(
        changes_of(&sink, UpdateAction::UserArchived),
        [
            change("end_date", Value::Null, json!("2026-11-24")),
            change("state", json!("active"), json!("archived")),
        ]
    );
}

#[test]
fn a_leaving_user_is_planned_after_the_manager_it_names_and_points_at_them() {
    let Outcome { totals, sink } = incremental(
        &[stored("u-t", "T")],
        vec![
            person(
                "T",
                json!({"employment_status": "terminated", "manager_external_id": "M"}),
            ),
            person("M", json!({})),
        ],
    );

    assert_eq!(
        totals,
        counts(RunCounts {
            created: 1,
            archived: 1,
            ..RunCounts::default()
        })
    );
    assert_eq!(
        lines(&sink),
        [
            "USER_CREATED row 2",
            "USER_ARCHIVED row 1",
            "MANAGER_ASSIGNED row 1"
        ]
    );
    assert_eq!(
        sink.updated[0].manager_id.as_deref(),
        Some(sink.created[0].id.as_str())
    );
}

// Full syncs

#[test]
fn a_full_sync_archives_active_users_missing_from_the_push_with_set_state() {
    let rows = [
        stored("u-1", "E1"),
        stored("u-2", "E2"),
        UserRow {
            upcoming_trips: 3,
            ..stored("u-3", "E3")
        },
        UserRow {
            upcoming_trips: 1,
            ..with_state(stored("u-4", "E4"), "pending_archive")
        },
        with_state(stored("u-5", "E5"), "pending_archive"),
        with_state(stored("u-6", "E6"), "archived"),
        UserRow {
            external_id: None,
            ..with_state(stored("u-7", "E7"), "invited")
        },
        UserRow {
            external_id: None,
            ..stored("u-8", "E8")
        },
    ];

    let Outcome { totals, sink } = run(SyncMode::Full, &rows, &[], vec![person("E1", json!({}))]);

    assert_eq!(
        totals,
        Totals {
            counts: RunCounts {
                unchanged: 1,
                archived: 2,
                updated: 1,
                warnings: 2,
                ..RunCounts::default()
            },
            issues: IssueTotals {
                total: 2,
                warnings: 2,
                users_affected: 2,
                ..IssueTotals::default()
            },
        }
    );
    assert_eq!(
        sink.states,
        [
            ("u-2".to_owned(), UserState::Archived),
            ("u-3".to_owned(), UserState::PendingArchive),
            ("u-5".to_owned(), UserState::Archived),
        ]
    );
    assert_eq!(
        lines(&sink),
        [
            "USER_ARCHIVED u-2",
            "USER_UPDATED u-3",
            "issue USER_HAS_UPCOMING_TRIPS u-3",
            "issue USER_HAS_UPCOMING_TRIPS u-4",
            "USER_ARCHIVED u-5",
        ]
    );
    assert_eq!(
        sink.events[0].changes,
        [change("state", json!("active"), json!("archived"))]
    );
    assert_eq!(sink.events[0].who.external_id.as_deref(), Some("E2"));
    assert_eq!(sink.events[0].who.email.as_deref(), Some("e2@example.com"));
    // Only the fingerprint of the unchanged E1 is written as a row.
    assert_eq!(sink.updated.len(), 1);
    assert_eq!(sink.updated[0].id, "u-1");
}

#[test]
fn a_full_sync_never_archives_a_user_mentioned_by_a_skipped_record() {
    let rows = [
        stored("u-1", "E1"),
        stored("u-2", "E2"),
        stored("u-3", "E3"),
    ];
    let mut by_email_only = person("E2", json!({}));
    by_email_only.as_object_mut().unwrap().remove("external_id");

    let Outcome { totals, sink } = run(
        SyncMode::Full,
        &rows,
        &[],
        vec![person("E1", json!({"first_name": ""})), by_email_only],
    );

    assert_eq!(sink.states, [("u-3".to_owned(), UserState::Archived)]);
    assert_eq!(
        lines(&sink),
        [
            "issue MISSING_FIRST_NAME row 1",
            "issue MISSING_EXTERNAL_ID row 2",
            "issue USER_DUPLICATE_EMAIL row 2",
            "USER_ARCHIVED u-3",
        ]
    );
    assert_eq!(
        totals,
        Totals {
            counts: RunCounts {
                skipped: 2,
                duplicates: 1,
                archived: 1,
                ..RunCounts::default()
            },
            issues: IssueTotals {
                total: 3,
                errors: 3,
                users_affected: 2,
                ..IssueTotals::default()
            },
        }
    );
}

#[test]
fn an_incremental_sync_archives_nobody_it_does_not_mention() {
    let rows = [stored("u-1", "E1"), stored("u-2", "E2")];

    let Outcome { totals, sink } = incremental(&rows, vec![person("E1", json!({}))]);

    assert_eq!(
        totals,
        counts(RunCounts {
            unchanged: 1,
            ..RunCounts::default()
        })
    );
    assert!(sink.states.is_empty());
    assert!(sink.events.is_empty());
}

// People who left before they had a user, and people who come back

#[test]
fn leavers_without_a_user_are_not_created_and_counted_as_ignored() {
    let Outcome { totals, sink } = incremental(
        &[],
        vec![
            person(
                "N1",
                json!({"employment_status": "rescinded", "teams": ["Interns"]}),
            ),
            person("N2", json!({"employment_status": "terminated"})),
            person("N3", json!({"end_date": "2026-01-31"})),
        ],
    );

    assert_eq!(
        totals,
        Totals {
            counts: RunCounts {
                ignored: 3,
                ..RunCounts::default()
            },
            issues: IssueTotals {
                total: 3,
                infos: 3,
                users_affected: 3,
                ..IssueTotals::default()
            },
        }
    );
    assert_eq!(
        lines(&sink),
        [
            "issue RESCINDED_HIRE_NOT_CREATED row 1",
            "issue TERMINATED_USER_NOT_CREATED row 2",
            "issue TERMINATED_USER_NOT_CREATED row 3",
        ]
    );
    assert_eq!(
        sink.events[0].issue.as_ref().unwrap().field.as_deref(),
        Some("employment_status")
    );
    assert!(nothing_written(&sink), "not even the team");
}

#[test]
fn an_archived_user_pushed_as_active_again_is_reactivated() {
    let row = UserRow {
        archived_at: Some(EARLIER.to_owned()),
        ..with_state(terminated(stored("u-1", "E1")), "archived")
    };

    let Outcome { totals, sink } = incremental(&[row], vec![person("E1", json!({}))]);

    assert_eq!(
        totals,
        counts(RunCounts {
            reactivated: 1,
            ..RunCounts::default()
        })
    );
    assert_eq!(lines(&sink), ["USER_REACTIVATED row 1"]);
    assert_eq!(
        sink.events[0].changes,
        [
            change("employment_status", json!("terminated"), json!("active")),
            change("state", json!("archived"), json!("active")),
        ]
    );
    assert_eq!(sink.updated[0].state, "active");
    assert_eq!(sink.updated[0].archived_at, None);
}

#[test]
fn a_user_archived_for_missing_from_a_full_sync_is_reactivated_by_the_record_it_had() {
    let record = person("E1", json!({}));
    let row = UserRow {
        archived_at: Some(EARLIER.to_owned()),
        source_hash: Some(fingerprint(&candidates(vec![record.clone()])[0])),
        ..with_state(stored("u-1", "E1"), "archived")
    };

    let Outcome { totals, sink } = run(SyncMode::Full, &[row], &[], vec![record]);

    assert_eq!(
        totals,
        counts(RunCounts {
            reactivated: 1,
            ..RunCounts::default()
        })
    );
    assert_eq!(
        changes_of(&sink, UpdateAction::UserReactivated),
        [change("state", json!("archived"), json!("active"))]
    );
    assert_eq!(sink.updated[0].state, "active");
}

// Teams, skipped records, warnings

#[test]
fn teams_are_created_once_whatever_their_letter_case() {
    let Outcome { totals, sink } = run(
        SyncMode::Incremental,
        &[],
        &["Ops"],
        vec![
            person("A", json!({"teams": ["Sales"]})),
            person("B", json!({"teams": ["sales", "OPS"]})),
            person("C", json!({"teams": ["SALES", "Support"]})),
        ],
    );

    assert_eq!(
        totals,
        counts(RunCounts {
            created: 3,
            ..RunCounts::default()
        })
    );
    let names: Vec<&str> = sink.teams.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["Sales", "Support"]);
    assert_eq!(sink.teams[0].name_key, "sales");
    assert_eq!(
        lines(&sink),
        [
            "TEAM_CREATED Sales",
            "USER_CREATED row 1",
            "USER_CREATED row 2",
            "TEAM_CREATED Support",
            "USER_CREATED row 3",
        ]
    );
    let teams: Vec<&str> = sink.created.iter().map(|u| u.teams.as_str()).collect();
    assert_eq!(
        teams,
        [
            r#"["Sales"]"#,
            r#"["Ops","Sales"]"#,
            r#"["Sales","Support"]"#
        ]
    );
}

#[test]
fn skipped_records_are_reported_first_in_row_order_and_duplicates_counted() {
    let Outcome { totals, sink } = incremental(
        &[],
        vec![
            person("E1", json!({})),
            person("D", json!({"email": "d1@example.com"})),
            person("D", json!({"email": "d2@example.com"})),
            person("E4", json!({"first_name": ""})),
        ],
    );

    assert_eq!(
        lines(&sink),
        [
            "issue DUPLICATE_EXTERNAL_ID row 2",
            "issue DUPLICATE_EXTERNAL_ID row 3",
            "issue MISSING_FIRST_NAME row 4",
            "USER_CREATED row 1",
        ]
    );
    assert_eq!(
        totals,
        Totals {
            counts: RunCounts {
                created: 1,
                skipped: 3,
                duplicates: 2,
                ..RunCounts::default()
            },
            issues: IssueTotals {
                total: 3,
                errors: 3,
                users_affected: 3,
                ..IssueTotals::default()
            },
        }
    );
}

#[test]
fn an_applied_record_with_warnings_counts_once_and_its_teams_are_counted() {
    let Outcome { totals, sink } =
        incremental(&[], vec![person("E1", json!({"teams": ["Sales", "", 42]}))]);

    assert_eq!(
        totals,
        Totals {
            counts: RunCounts {
                created: 1,
                warnings: 1,
                ..RunCounts::default()
            },
            issues: IssueTotals {
                total: 2,
                warnings: 2,
                users_affected: 1,
                teams_affected: 2,
                ..IssueTotals::default()
            },
        }
    );
    assert_eq!(
        lines(&sink),
        [
            "TEAM_CREATED Sales",
            "USER_CREATED row 1",
            "issue TEAM_NAME_INVALID row 1",
            "issue TEAM_NAME_INVALID row 1",
        ]
    );
    assert!(sink.events[2..]
        .iter()
        .all(|event| event.entity == EntityKind::Team));
    assert_eq!(
        sink.events[3].user_id.as_deref(),
        Some(sink.created[0].id.as_str())
    );
}

#[test]
fn a_manager_warning_is_reported_on_a_user_the_fast_path_leaves_unchanged() {
    let pushed = candidates(vec![person("S", json!({"manager_external_id": "X"}))]);
    let rows = [
        UserRow {
            manager_id: Some("u-x".to_owned()),
            source_hash: Some(fingerprint(&pushed[0])),
            ..stored("u-s", "S")
        },
        with_state(stored("u-x", "X"), "archived"),
    ];

    let Outcome { totals, sink } = run_candidates(
        SyncMode::Incremental,
        &rows,
        &[],
        pushed,
        |candidates, directory| full_rows(candidates, directory, &rows),
    );

    assert_eq!(
        totals,
        Totals {
            counts: RunCounts {
                unchanged: 1,
                warnings: 1,
                ..RunCounts::default()
            },
            issues: IssueTotals {
                total: 1,
                warnings: 1,
                users_affected: 1,
                ..IssueTotals::default()
            },
        }
    );
    assert_eq!(lines(&sink), ["issue MANAGER_IS_ARCHIVED row 1"]);
    assert!(nothing_written(&sink));
}

// Dry runs

/// A sink that keeps the report and drops every directory write, as a dry run's does.
#[derive(Default)]
struct ReportOnly {
    events: Vec<Event>,
}

impl Sink for ReportOnly {
    type Error = std::convert::Infallible;

    fn create_team(&mut self, _: TeamRow) -> Result<(), Self::Error> {
        Ok(())
    }

    fn create_user(&mut self, _: UserRow) -> Result<(), Self::Error> {
        Ok(())
    }

    fn update_user(&mut self, _: UserRow) -> Result<(), Self::Error> {
        Ok(())
    }

    fn set_state(
        &mut self,
        _: &str,
        _: UserState,
        _: Option<PendingArchiveReason>,
    ) -> Result<(), Self::Error> {
        Ok(())
    }

    fn stamp(&mut self, _: &str, _: Option<String>) -> Result<(), Self::Error> {
        Ok(())
    }

    fn event(&mut self, event: Event) -> Result<(), Self::Error> {
        self.events.push(event);
        Ok(())
    }
}

#[test]
fn the_plan_is_the_same_whether_or_not_the_sink_keeps_its_writes() {
    let rows = [
        stored("u-1", "E1"),
        stored("u-2", "E2"),
        UserRow {
            upcoming_trips: 1,
            ..stored("u-3", "E3")
        },
    ];
    let mut candidates = candidates(vec![
        person(
            "S",
            json!({"manager_external_id": "M", "teams": ["New team"]}),
        ),
        person("M", json!({})),
        person("E1", json!({"last_name": "King"})),
        person("R", json!({"employment_status": "rescinded"})),
        person("BAD", json!({"email": "nope"})),
    ]);
    let directory = directory(&rows, &[]);
    let order = check(&mut candidates, &directory, SyncMode::Full);
    let full_rows = full_rows(&candidates, &directory, &rows);
    let context = context(SyncMode::Full, &directory, &full_rows);

    let mut recording = RecordingSink::default();
    let applied =
        plan(&candidates, &order, &context, &mut recording).unwrap_or_else(|n| match n {});
    let mut report_only = ReportOnly::default();
    let dry = plan(&candidates, &order, &context, &mut report_only).unwrap_or_else(|n| match n {});

    assert_eq!(dry, applied);
    assert_eq!(
        applied.counts,
        RunCounts {
            created: 2,
            updated: 2,
            archived: 1,
            skipped: 1,
            warnings: 1,
            ignored: 1,
            ..RunCounts::default()
        }
    );
    // The same report, line for line (only the ids of new users and teams are new each time).
    let without_ids = |events: &[Event]| -> Vec<Event> {
        events
            .iter()
            .cloned()
            .map(|event| Event {
                user_id: event.user_id.filter(|id| id.starts_with("u-")),
                ..event
            })
            .collect()
    };
    assert_eq!(
        without_ids(&report_only.events),
        without_ids(&recording.events)
    );
    assert_eq!(recording.events.len(), 9, "{:?}", lines(&recording));
    assert!(!nothing_written(&recording));
}

// Provisioning rules: groups, perimeter, grace period

/// Validates, checks and plans `records` under `settings`, as the engine does.
fn run_with(settings: Value, mode: SyncMode, rows: &[UserRow], records: Vec<Value>) -> Outcome {
    let settings: ProvisioningSettings = serde_json::from_value(settings).unwrap();
    let mut candidates = candidates_with(records, &settings);
    let directory = directory(rows, &[]);
    let order = check_with(&mut candidates, &directory, mode, &settings);
    let full_rows = full_rows(&candidates, &directory, rows);
    let mut sink = RecordingSink::default();
    let context = PlanContext {
        settings: &settings,
        ..context(mode, &directory, &full_rows)
    };
    let totals =
        plan(&candidates, &order, &context, &mut sink).unwrap_or_else(|never| match never {});
    Outcome { totals, sink }
}

fn issue_codes(sink: &RecordingSink) -> Vec<&'static str> {
    sink.events
        .iter()
        .filter_map(|event| event.issue.as_ref())
        .map(|issue| issue.code.as_str())
        .collect()
}

fn sales_rules() -> Value {
    json!({"group_rules": [
        {"group": "Sales", "when": {"field": "teams", "equals": "Sales"}},
        {"group": "Managed by M", "when": {"field": "manager_external_id", "equals": "M"}}
    ]})
}

#[test]
fn a_new_user_gets_every_matching_group_reported_after_its_creation() {
    let Outcome { totals, sink } = run_with(
        sales_rules(),
        SyncMode::Incremental,
        &[],
        vec![
            person("M", json!({})),
            person("S", json!({"teams": ["Sales"], "manager_external_id": "M"})),
        ],
    );

    assert_eq!(
        lines(&sink),
        [
            "USER_CREATED row 1",
            "issue NO_GROUP_MATCH row 1",
            "TEAM_CREATED Sales",
            "USER_CREATED row 2",
            "GROUP_ASSIGNED row 2",
        ]
    );
    assert_eq!(sink.created[1].groups, r#"["Sales","Managed by M"]"#);
    assert_eq!(sink.created[0].groups, "[]");
    assert_eq!(totals.counts.warnings, 1);
}

#[test]
fn an_existing_user_whose_groups_change_gets_group_assigned_with_old_and_new() {
    let mut row = stored("u-1", "E1");
    row.groups = r#"["Sales"]"#.to_owned();
    row.teams = r#"["Sales"]"#.to_owned();
    let Outcome { totals, sink } = run_with(
        sales_rules(),
        SyncMode::Incremental,
        &[row],
        vec![person("E1", json!({"teams": ["Ops"]}))],
    );

    assert_eq!(
        changes_of(&sink, UpdateAction::GroupAssigned),
        [change("groups", json!(["Sales"]), json!([]))]
    );
    assert_eq!(sink.updated[0].groups, "[]");
    assert_eq!(issue_codes(&sink), ["NO_GROUP_MATCH"]);
    assert_eq!(totals.counts.updated, 1);
}

#[test]
fn without_group_rules_nobody_is_warned_and_groups_are_left_alone() {
    let mut row = stored("u-1", "E1");
    row.groups = r#"["Legacy"]"#.to_owned();
    let Outcome { sink, .. } = run_with(
        json!({}),
        SyncMode::Incremental,
        &[row],
        vec![
            person("E1", json!({"last_name": "Byron"})),
            person("E2", json!({})),
        ],
    );

    assert!(issue_codes(&sink).is_empty());
    assert_eq!(sink.updated[0].groups, r#"["Legacy"]"#);
}

#[test]
fn a_user_who_leaves_the_perimeter_with_upcoming_trips_waits_for_them() {
    let row = UserRow {
        upcoming_trips: 2,
        ..stored("u-1", "E1")
    };
    let Outcome { totals, sink } = run_with(
        json!({"sync_perimeter": {"email_domains": ["example.com"]}}),
        SyncMode::Incremental,
        &[row],
        vec![person("E1", json!({"email": "e1@elsewhere.org"}))],
    );

    assert_eq!(sink.updated[0].state, "pending_archive");
    assert_eq!(
        sink.updated[0].pending_archive_reason.as_deref(),
        Some("upcoming_trips")
    );
    assert_eq!(sink.updated[0].pending_archive_since.as_deref(), Some(NOW));
    assert_eq!(
        issue_codes(&sink),
        ["USER_HAS_UPCOMING_TRIPS", "OUTSIDE_SYNC_PERIMETER"]
    );
    assert_eq!(totals.counts.archived, 0);
}

#[test]
fn an_archived_user_outside_the_perimeter_is_not_reactivated() {
    let row = with_state(stored("u-1", "E1"), "archived");
    let Outcome { totals, sink } = run_with(
        json!({"sync_perimeter": {"email_domains": ["corp.io"]}}),
        SyncMode::Incremental,
        &[row],
        vec![person("E1", json!({}))],
    );

    assert_eq!(totals.counts.reactivated, 0);
    assert!(sink.updated.iter().all(|user| user.state == "archived"));
    assert_eq!(issue_codes(&sink), ["OUTSIDE_SYNC_PERIMETER"]);
    let issue = sink.events.iter().find_map(|e| e.issue.as_ref()).unwrap();
    assert!(
        issue.message.ends_with("and stays archived."),
        "{}",
        issue.message
    );
}

fn missing_since(row: UserRow, since: &str) -> UserRow {
    UserRow {
        pending_archive_reason: Some("missing_from_full_sync".to_owned()),
        pending_archive_since: Some(since.to_owned()),
        ..with_state(row, "pending_archive")
    }
}

#[test]
fn a_full_sync_with_a_grace_period_marks_missing_users_pending_archive() {
    let rows = [stored("u-1", "E1"), stored("u-2", "E2")];
    let Outcome { totals, sink } = run_with(
        json!({"archive_grace_days": 10}),
        SyncMode::Full,
        &rows,
        vec![person("E1", json!({}))],
    );

    assert_eq!(sink.states, [("u-2".to_owned(), UserState::PendingArchive)]);
    assert_eq!(
        sink.reasons,
        [Some(PendingArchiveReason::MissingFromFullSync)]
    );
    assert_eq!(totals.counts.pending_archive, 1);
    assert_eq!(totals.counts.archived, 0);
    assert_eq!(issue_codes(&sink), ["ARCHIVE_GRACE_PERIOD_STARTED"]);
    let issue = sink.events.iter().find_map(|e| e.issue.as_ref()).unwrap();
    assert!(issue.message.contains("2026-12-05"), "{}", issue.message);
}

#[test]
fn a_grace_period_is_checked_by_every_run_whatever_its_mode() {
    let rows = [
        stored("u-1", "E1"),
        missing_since(stored("u-2", "E2"), "2026-11-20T08:00:00Z"),
        missing_since(stored("u-3", "E3"), "2026-11-15T08:00:00Z"),
        UserRow {
            upcoming_trips: 1,
            ..missing_since(stored("u-4", "E4"), "2026-11-01T08:00:00Z")
        },
    ];
    let Outcome { totals, sink } = run_with(
        json!({"archive_grace_days": 10}),
        SyncMode::Incremental,
        &rows,
        vec![person("E1", json!({"last_name": "Byron"}))],
    );

    // E2 waits until 2026-11-30; E3's period ended today; E4's ended but E4 has trips.
    assert_eq!(
        sink.states,
        [
            ("u-3".to_owned(), UserState::Archived),
            ("u-4".to_owned(), UserState::PendingArchive)
        ]
    );
    assert_eq!(
        sink.reasons,
        [None, Some(PendingArchiveReason::UpcomingTrips)]
    );
    assert_eq!(totals.counts.archived, 1);
    assert_eq!(issue_codes(&sink), ["USER_HAS_UPCOMING_TRIPS"]);
}

#[test]
fn a_user_waiting_for_the_grace_period_is_restored_by_a_run_that_contains_them() {
    let rows = [missing_since(stored("u-1", "E1"), "2026-11-24T08:00:00Z")];
    let Outcome { totals, sink } = run_with(
        json!({"archive_grace_days": 10}),
        SyncMode::Incremental,
        &rows,
        vec![person("E1", json!({}))],
    );

    assert_eq!(lines(&sink), ["USER_RESTORED row 1"]);
    assert_eq!(
        changes_of(&sink, UpdateAction::UserRestored),
        [change("state", json!("pending_archive"), json!("active"))]
    );
    let user = &sink.updated[0];
    assert_eq!(user.state, "active");
    assert_eq!(
        (&user.pending_archive_reason, &user.pending_archive_since),
        (&None, &None)
    );
    assert_eq!(totals.counts.updated, 1);
    assert_eq!(totals.issues.total, 0);
}

// Text stamps (see `sync::unchanged`)

/// Candidates of `records`, each with the text hash given (as the JSON reader would set).
fn hashed(records: Vec<(Value, Option<u128>)>) -> Vec<Candidate> {
    let (records, hashes): (Vec<Value>, Vec<Option<u128>>) = records.into_iter().unzip();
    candidates(records)
        .into_iter()
        .zip(hashes)
        .map(|(candidate, text_hash)| Candidate {
            text_hash,
            ..candidate
        })
        .collect()
}

fn stamp(text_hash: u128) -> Option<String> {
    Some(StampContext::new(&DEFAULT_SETTINGS).stored_stamp(text_hash))
}

#[test]
fn a_new_user_is_stamped_only_when_their_record_applies_without_any_issue() {
    let records = hashed(vec![
        (person("E1", json!({})), Some(1)),
        // A warning: applied, but with an issue.
        (person("E2", json!({"custom_fields": {"nope": 1}})), Some(2)),
        // Unknown fields (no text hash): applied, with a line in the run's log.
        (person("E3", json!({})), None),
    ]);
    let Outcome { sink, .. } =
        run_candidates(SyncMode::Full, &[], &[], records, |_, _| HashMap::new());

    let stamps: Vec<(Option<&str>, Option<String>)> = sink
        .created
        .iter()
        .map(|user| (user.external_id.as_deref(), user.text_stamp.clone()))
        .collect();
    assert_eq!(
        stamps,
        [
            (Some("E1"), stamp(1)),
            (Some("E2"), None),
            (Some("E3"), None)
        ]
    );
    assert_eq!(issue_codes(&sink), ["CUSTOM_FIELD_UNKNOWN"]);
}

#[test]
fn an_unchanged_user_is_stamped_once_and_a_stamp_no_longer_earned_is_cleared() {
    let record = person("E1", json!({}));
    let known = |text_stamp: Option<String>| {
        let mut row = stored("u-1", "E1");
        row.source_hash = Some(fingerprint(&candidates(vec![record.clone()])[0]));
        row.text_stamp = text_stamp;
        row
    };
    let plan_one = |row: UserRow, text_hash: Option<u128>| {
        let records = hashed(vec![(record.clone(), text_hash)]);
        run_candidates(
            SyncMode::Full,
            std::slice::from_ref(&row),
            &[],
            records,
            |_, _| HashMap::from([(row.id.clone(), row.clone())]),
        )
    };

    let first = plan_one(known(None), Some(7));
    assert_eq!(first.totals.counts.unchanged, 1);
    assert_eq!(first.sink.stamps, [("u-1".to_owned(), stamp(7))]);
    assert!(first.sink.updated.is_empty() && first.sink.events.is_empty());

    let again = plan_one(known(stamp(7)), Some(7));
    assert!(again.sink.stamps.is_empty(), "{:?}", again.sink.stamps);

    let other_text = plan_one(known(stamp(7)), Some(8));
    assert_eq!(other_text.sink.stamps, [("u-1".to_owned(), stamp(8))]);

    let not_stampable = plan_one(known(stamp(7)), None);
    assert_eq!(not_stampable.sink.stamps, [("u-1".to_owned(), None)]);
}

#[test]
fn an_updated_user_takes_the_stamp_of_the_record_that_changed_them() {
    let rows = [stored("u-1", "E1")];
    let records = hashed(vec![(
        person("E1", json!({"first_name": "Grace"})),
        Some(3),
    )]);
    let Outcome { sink, totals } = run_candidates(
        SyncMode::Full,
        &rows,
        &[],
        records,
        |candidates, directory| full_rows(candidates, directory, &rows),
    );
    assert_eq!(totals.counts.updated, 1);
    assert_eq!(sink.updated[0].text_stamp, stamp(3));
}
