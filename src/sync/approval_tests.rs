use serde_json::{json, Value};

use super::*;
use crate::domain::Severity;
use crate::store::models::UserRow;
use crate::sync::test_fixtures::{candidates, codes, directory, person, stored, today};

/// Runs the approval-flow checks of one push against a directory of `rows`.
fn check(mode: SyncMode, rows: &[UserRow], records: Vec<Value>) -> (Vec<Candidate>, Vec<usize>) {
    let mut candidates = candidates(records);
    let directory = directory(rows, &[]);
    let order = check_approval_flow(
        &mut candidates,
        &directory,
        mode,
        today(),
        &mut Seats::unlimited(),
    );
    (candidates, order)
}

fn incremental(rows: &[UserRow], records: Vec<Value>) -> (Vec<Candidate>, Vec<usize>) {
    check(SyncMode::Incremental, rows, records)
}

fn managed_by(external_id: &str, manager: &str) -> Value {
    person(external_id, json!({ "manager_external_id": manager }))
}

/// A stored user whose manager is the stored user `manager_id`.
fn stored_under(id: &str, external_id: &str, manager_id: &str) -> UserRow {
    UserRow {
        manager_id: Some(manager_id.to_owned()),
        ..stored(id, external_id)
    }
}

fn with_state(row: UserRow, state: &str) -> UserRow {
    UserRow {
        state: state.to_owned(),
        ..row
    }
}

fn guest(row: UserRow) -> UserRow {
    UserRow {
        role: "guest".to_owned(),
        approval_process: "all_trips".to_owned(),
        ..row
    }
}

fn message(candidate: &Candidate) -> &str {
    &candidate.issues[0].message
}

// Cycles

#[test]
fn two_people_managing_each_other_are_both_skipped_with_manager_cycle() {
    let (candidates, order) = incremental(&[], vec![managed_by("A", "B"), managed_by("B", "A")]);

    for candidate in &candidates {
        assert_eq!(codes(candidate), ["MANAGER_CYCLE"]);
        assert!(candidate.is_skipped());
        assert_eq!(
            candidate.issues[0].field.as_deref(),
            Some("manager_external_id")
        );
        assert_eq!(message(candidate), "The manager chain loops: A → B → A.");
    }
    assert!(order.is_empty(), "{order:?}");
}

#[test]
fn a_three_person_loop_skips_all_three_and_lists_the_loop() {
    let (candidates, order) = incremental(
        &[],
        vec![
            managed_by("A", "B"),
            managed_by("B", "C"),
            managed_by("C", "A"),
            person("D", json!({})),
        ],
    );

    for candidate in &candidates[..3] {
        assert_eq!(codes(candidate), ["MANAGER_CYCLE"]);
        assert_eq!(
            message(candidate),
            "The manager chain loops: A → B → C → A."
        );
    }
    assert!(candidates[3].issues.is_empty());
    assert_eq!(order, [3]);
}

#[test]
fn a_record_naming_itself_as_manager_gets_own_manager_and_not_manager_cycle() {
    let (candidates, _) = incremental(&[], vec![managed_by("A", "A"), managed_by("B", "A")]);

    assert_eq!(codes(&candidates[0]), ["USER_CANNOT_BE_OWN_MANAGER"]);
    assert!(message(&candidates[0]).contains("\"A\""));
    assert_eq!(codes(&candidates[1]), ["MANAGER_DOES_NOT_EXIST"]);
    assert!(
        message(&candidates[1]).contains("(row 1)")
            && message(&candidates[1]).contains("USER_CANNOT_BE_OWN_MANAGER"),
        "{}",
        message(&candidates[1])
    );
    assert!(candidates.iter().all(Candidate::is_skipped));
}

#[test]
fn a_chain_leading_into_a_loop_is_skipped_naming_the_manager_row_and_its_code() {
    let (candidates, _) = incremental(
        &[],
        vec![
            managed_by("D", "A"),
            managed_by("A", "B"),
            managed_by("B", "A"),
            managed_by("E", "D"),
        ],
    );

    assert_eq!(codes(&candidates[1]), ["MANAGER_CYCLE"]);
    assert_eq!(codes(&candidates[2]), ["MANAGER_CYCLE"]);
    assert_eq!(
        message(&candidates[1]),
        "The manager chain loops: A → B → A."
    );
    // D leads into the loop without being part of it.
    assert_eq!(codes(&candidates[0]), ["MANAGER_DOES_NOT_EXIST"]);
    assert!(
        message(&candidates[0]).contains("\"A\" (row 2)")
            && message(&candidates[0]).contains("MANAGER_CYCLE"),
        "{}",
        message(&candidates[0])
    );
    // The cascade goes on down the chain, one row at a time.
    assert_eq!(codes(&candidates[3]), ["MANAGER_DOES_NOT_EXIST"]);
    assert!(
        message(&candidates[3]).contains("\"D\" (row 1)")
            && message(&candidates[3]).contains("MANAGER_DOES_NOT_EXIST"),
        "{}",
        message(&candidates[3])
    );
    assert!(candidates.iter().all(Candidate::is_skipped));
}

#[test]
fn a_loop_through_a_directory_user_is_a_cycle_in_incremental_mode() {
    let rows = [stored("u-a", "A"), stored_under("u-x", "X", "u-a")];

    let (candidates, order) = incremental(&rows, vec![managed_by("A", "X")]);

    assert_eq!(codes(&candidates[0]), ["MANAGER_CYCLE"]);
    assert_eq!(
        message(&candidates[0]),
        "The manager chain loops: A → X → A."
    );
    assert!(order.is_empty());
}

#[test]
fn a_loop_through_a_directory_user_is_no_cycle_in_full_mode_where_that_user_is_archived() {
    let rows = [stored("u-a", "A"), stored_under("u-x", "X", "u-a")];

    let (candidates, order) = check(SyncMode::Full, &rows, vec![managed_by("A", "X")]);

    assert_eq!(codes(&candidates[0]), ["MANAGER_IS_ARCHIVED"]);
    assert!(message(&candidates[0]).contains("will be archived"));
    assert!(!candidates[0].is_skipped());
    assert_eq!(order, [0]);
}

#[test]
fn a_loop_closed_by_a_manager_the_directory_keeps_is_found_in_both_modes() {
    // A's record does not name a manager, so A keeps B; B's record names A.
    let rows = [stored_under("u-a", "A", "u-b"), stored("u-b", "B")];
    for mode in [SyncMode::Incremental, SyncMode::Full] {
        let (candidates, order) = check(
            mode,
            &rows,
            vec![person("A", json!({})), managed_by("B", "A")],
        );

        assert_eq!(codes(&candidates[0]), ["MANAGER_CYCLE"], "{mode}");
        assert_eq!(codes(&candidates[1]), ["MANAGER_CYCLE"], "{mode}");
        assert!(order.is_empty(), "{mode}: {order:?}");
    }
}

#[test]
fn a_leaving_record_does_not_close_a_loop() {
    let rows = [stored("u-a", "A")];
    let (candidates, order) = incremental(
        &rows,
        vec![
            person(
                "A",
                json!({"manager_external_id": "B", "employment_status": "terminated"}),
            ),
            managed_by("B", "A"),
        ],
    );

    assert!(
        candidates[0].issues.is_empty(),
        "{:?}",
        candidates[0].issues
    );
    // B stays, under a manager this very push offboards.
    assert_eq!(codes(&candidates[1]), ["MANAGER_IS_ARCHIVED"]);
    assert!(message(&candidates[1]).contains("(row 1) is being offboarded by this sync"));
    assert_eq!(order, [1, 0]);
}

// Manager-first order

#[test]
fn a_subordinate_listed_before_its_manager_is_applied_after_it() {
    let (candidates, order) = incremental(
        &[],
        vec![
            managed_by("C", "B"),
            managed_by("B", "A"),
            person("A", json!({})),
        ],
    );

    assert!(candidates.iter().all(|c| c.issues.is_empty()));
    assert_eq!(order, [2, 1, 0]);
}

#[test]
fn records_that_wait_for_nobody_keep_their_row_order() {
    let (candidates, order) = incremental(
        &[],
        vec![
            person("C", json!({})),
            managed_by("B", "M"),
            person("M", json!({})),
            person("BAD", json!({"first_name": ""})),
            person("D", json!({})),
            managed_by("E", "M"),
        ],
    );

    assert_eq!(codes(&candidates[3]), ["MISSING_FIRST_NAME"]);
    // Skipped records are not in the order; the others are stable within each level.
    assert_eq!(order, [0, 2, 4, 1, 5]);
}

#[test]
fn a_leaving_record_is_applied_after_the_manager_it_names() {
    let rows = [stored("u-t", "T")];
    let (candidates, order) = incremental(
        &rows,
        vec![
            person(
                "T",
                json!({"manager_external_id": "M", "employment_status": "terminated"}),
            ),
            person("M", json!({})),
        ],
    );

    assert!(candidates.iter().all(|c| c.issues.is_empty()));
    assert_eq!(order, [1, 0]);
}

#[test]
fn a_leaving_record_needs_no_existing_manager() {
    let (candidates, order) = incremental(
        &[stored("u-t", "T")],
        vec![person(
            "T",
            json!({"manager_external_id": "NOBODY", "employment_status": "terminated"}),
        )],
    );

    assert!(
        candidates[0].issues.is_empty(),
        "{:?}",
        candidates[0].issues
    );
    assert_eq!(order, [0]);
}

// Guests

#[test]
fn a_guest_must_have_every_trip_approved() {
    let (candidates, order) = incremental(
        &[],
        vec![
            person(
                "G1",
                json!({"role": "guest", "approval_process": "out_of_policy"}),
            ),
            person(
                "G2",
                json!({"role": "guest", "approval_process": "all_trips"}),
            ),
            person("G3", json!({"role": "guest"})),
            person("M1", json!({"role": "member", "approval_process": "none"})),
        ],
    );

    assert_eq!(
        codes(&candidates[0]),
        ["GUEST_MEMBERS_REQUIRE_APPROVAL_FOR_ALL_TRIPS"]
    );
    assert_eq!(
        candidates[0].issues[0].field.as_deref(),
        Some("approval_process")
    );
    assert!(message(&candidates[0]).contains("out_of_policy"));
    for candidate in &candidates[1..] {
        assert!(candidate.issues.is_empty(), "{:?}", candidate.issues);
    }
    assert_eq!(order, [1, 2, 3]);
}

#[test]
fn a_guest_of_the_directory_is_still_a_guest_when_the_record_omits_the_role() {
    let rows = [guest(stored("u-g", "G")), guest(stored("u-h", "H"))];
    let (candidates, _) = incremental(
        &rows,
        vec![
            person("G", json!({"approval_process": "none"})),
            person("H", json!({"role": "member", "approval_process": "none"})),
        ],
    );

    assert_eq!(
        codes(&candidates[0]),
        ["GUEST_MEMBERS_REQUIRE_APPROVAL_FOR_ALL_TRIPS"]
    );
    assert!(
        candidates[1].issues.is_empty(),
        "{:?}",
        candidates[1].issues
    );
}

#[test]
fn nobody_can_have_a_guest_of_the_push_as_manager() {
    let (candidates, order) = incremental(
        &[],
        vec![managed_by("S", "G"), person("G", json!({"role": "guest"}))],
    );

    assert_eq!(codes(&candidates[0]), ["GUEST_USERS_CANNOT_BE_APPROVERS"]);
    assert_eq!(
        candidates[0].issues[0].field.as_deref(),
        Some("manager_external_id")
    );
    assert!(candidates[0].is_skipped());
    assert!(candidates[1].issues.is_empty());
    assert_eq!(order, [1, 0]);
}

#[test]
fn nobody_can_have_a_guest_of_the_directory_as_manager_unless_the_push_promotes_them() {
    let rows = [guest(stored("u-g", "G"))];

    let (candidates, _) = incremental(&rows, vec![managed_by("S", "G")]);
    assert_eq!(codes(&candidates[0]), ["GUEST_USERS_CANNOT_BE_APPROVERS"]);

    let (candidates, _) = incremental(
        &rows,
        vec![managed_by("S", "G"), person("G", json!({"role": "member"}))],
    );
    assert!(candidates.iter().all(|c| c.issues.is_empty()));
}

#[test]
fn a_member_of_the_directory_demoted_to_guest_by_the_push_cannot_manage_its_records() {
    let rows = [stored("u-m", "M")];
    let (candidates, _) = incremental(
        &rows,
        vec![managed_by("S", "M"), person("M", json!({"role": "guest"}))],
    );

    assert_eq!(codes(&candidates[0]), ["GUEST_USERS_CANNOT_BE_APPROVERS"]);
    assert!(candidates[1].issues.is_empty());
}

#[test]
fn a_member_who_becomes_a_guest_while_managing_directory_users_is_skipped() {
    let rows = [
        stored("u-m", "M"),
        stored_under("u-r", "R", "u-m"),
        stored("u-n", "N"),
    ];

    let (candidates, _) = incremental(&rows, vec![person("M", json!({"role": "guest"}))]);
    assert_eq!(codes(&candidates[0]), ["GUEST_USERS_CANNOT_BE_APPROVERS"]);
    assert_eq!(candidates[0].issues[0].field.as_deref(), Some("role"));
    assert!(message(&candidates[0]).contains("\"R\""));

    // Once the push gives R another manager, M may become a guest.
    let (candidates, _) = incremental(
        &rows,
        vec![person("M", json!({"role": "guest"})), managed_by("R", "N")],
    );
    assert!(candidates.iter().all(|c| c.issues.is_empty()));
}

// Managers who left, or never were

#[test]
fn a_manager_archived_or_being_offboarded_in_the_directory_is_a_warning() {
    let rows = [
        with_state(stored("u-x", "X"), "archived"),
        with_state(stored("u-y", "Y"), "pending_archive"),
    ];
    let (candidates, order) = incremental(&rows, vec![managed_by("S", "X"), managed_by("T", "Y")]);

    assert_eq!(codes(&candidates[0]), ["MANAGER_IS_ARCHIVED"]);
    assert_eq!(candidates[0].issues[0].severity(), Severity::Warning);
    assert_eq!(message(&candidates[0]), "The manager \"X\" is archived.");
    assert_eq!(codes(&candidates[1]), ["MANAGER_IS_ARCHIVED"]);
    assert_eq!(
        message(&candidates[1]),
        "The manager \"Y\" is being offboarded."
    );
    assert!(candidates.iter().all(|c| !c.is_skipped()));
    assert_eq!(order, [0, 1]);
}

#[test]
fn a_manager_of_the_directory_that_a_full_sync_leaves_out_is_a_warning_only_in_full_mode() {
    let rows = [stored("u-x", "X")];

    let (candidates, _) = check(SyncMode::Full, &rows, vec![managed_by("S", "X")]);
    assert_eq!(codes(&candidates[0]), ["MANAGER_IS_ARCHIVED"]);
    assert_eq!(
        message(&candidates[0]),
        "The manager \"X\" is not in this full sync and will be archived."
    );

    let (candidates, _) = incremental(&rows, vec![managed_by("S", "X")]);
    assert!(candidates[0].issues.is_empty());
}

#[test]
fn a_manager_the_same_push_offboards_is_a_warning_when_they_have_a_user() {
    let rows = [stored("u-m", "M")];
    let (candidates, order) = incremental(
        &rows,
        vec![
            managed_by("S", "M"),
            person("M", json!({"employment_status": "terminated"})),
        ],
    );

    assert_eq!(codes(&candidates[0]), ["MANAGER_IS_ARCHIVED"]);
    assert!(message(&candidates[0]).contains("\"M\" (row 2) is being offboarded by this sync"));
    assert!(!candidates[0].is_skipped());
    assert_eq!(order, [1, 0]);
}

#[test]
fn a_new_manager_who_has_already_left_does_not_exist() {
    let (candidates, _) = incremental(
        &[],
        vec![
            managed_by("S", "M"),
            person("M", json!({"employment_status": "rescinded"})),
        ],
    );

    assert_eq!(codes(&candidates[0]), ["MANAGER_DOES_NOT_EXIST"]);
    assert!(message(&candidates[0]).contains("has left the company"));
    assert!(candidates[0].is_skipped());
    assert!(candidates[1].issues.is_empty());
}

#[test]
fn a_manager_in_neither_the_push_nor_the_directory_does_not_exist() {
    let (candidates, _) = incremental(&[stored("u-x", "X")], vec![managed_by("S", "NOBODY")]);

    assert_eq!(codes(&candidates[0]), ["MANAGER_DOES_NOT_EXIST"]);
    assert_eq!(
        message(&candidates[0]),
        "The manager \"NOBODY\" is neither in this push nor in the directory."
    );
    assert!(candidates[0].is_skipped());
}

#[test]
fn a_manager_skipped_for_a_field_blocks_the_records_it_manages() {
    let rows = [stored("u-m", "M")];
    let (candidates, _) = incremental(
        &rows,
        vec![
            person("M", json!({"phone": "0612345678"})),
            managed_by("S", "M"),
        ],
    );

    assert_eq!(codes(&candidates[0]), ["PHONE_IS_MISSING_OR_INVALID"]);
    assert_eq!(codes(&candidates[1]), ["MANAGER_DOES_NOT_EXIST"]);
    assert!(message(&candidates[1])
        .contains("(row 1) was skipped because of PHONE_IS_MISSING_OR_INVALID"));
}

#[test]
fn archived_reports_do_not_stop_their_manager_from_becoming_a_guest() {
    let rows = [
        stored("u-m", "M"),
        with_state(stored_under("u-r", "R", "u-m"), "archived"),
    ];

    let (candidates, _) = incremental(&rows, vec![person("M", json!({"role": "guest"}))]);

    assert!(
        candidates[0].issues.is_empty(),
        "{:?}",
        candidates[0].issues
    );
}

#[test]
fn an_archived_directory_user_does_not_close_a_loop() {
    // After the run A reports to X, who is archived and approves nobody: the chain ends there,
    // as it does when X is offboarded by the push itself or left out of a full sync.
    let rows = [
        stored("u-a", "A"),
        with_state(stored_under("u-x", "X", "u-a"), "archived"),
    ];

    let (candidates, order) = incremental(&rows, vec![managed_by("A", "X")]);

    assert_eq!(codes(&candidates[0]), ["MANAGER_IS_ARCHIVED"]);
    assert_eq!(message(&candidates[0]), "The manager \"X\" is archived.");
    assert!(!candidates[0].is_skipped());
    assert_eq!(order, [0]);
}

#[test]
fn a_report_whose_new_manager_is_refused_still_stops_its_manager_becoming_a_guest() {
    // R's record moves R to NOBODY, who does not exist, so R is skipped and keeps M as manager.
    let rows = [stored("u-m", "M"), stored_under("u-r", "R", "u-m")];

    let (candidates, _) = incremental(
        &rows,
        vec![
            person("M", json!({"role": "guest"})),
            managed_by("R", "NOBODY"),
        ],
    );

    assert_eq!(codes(&candidates[1]), ["MANAGER_DOES_NOT_EXIST"]);
    assert_eq!(codes(&candidates[0]), ["GUEST_USERS_CANNOT_BE_APPROVERS"]);
}

// Every problem of a record at once

#[test]
fn a_record_whose_skipped_manager_is_also_a_guest_gets_both_issues_and_no_false_promise() {
    let (candidates, _) = incremental(
        &[],
        vec![
            person("M", json!({"role": "guest", "phone": "0612"})),
            managed_by("S", "M"),
        ],
    );

    assert_eq!(
        codes(&candidates[1]),
        ["MANAGER_DOES_NOT_EXIST", "GUEST_USERS_CANNOT_BE_APPROVERS"]
    );
    assert_eq!(
        message(&candidates[1]),
        "The manager \"M\" (row 1) was skipped because of PHONE_IS_MISSING_OR_INVALID; fix that row, and this record's 1 other error(s) too."
    );
}

#[test]
fn fix_that_row_first_is_promised_only_to_a_record_with_no_other_error() {
    let (candidates, _) = incremental(
        &[],
        vec![person("M", json!({"phone": "0612"})), managed_by("S", "M")],
    );

    assert_eq!(codes(&candidates[1]), ["MANAGER_DOES_NOT_EXIST"]);
    assert!(
        message(&candidates[1]).ends_with("fix that row first and this one will follow."),
        "{}",
        message(&candidates[1])
    );
}

#[test]
fn a_record_skipped_for_a_field_still_gets_its_approval_flow_issues() {
    let (candidates, _) = incremental(
        &[],
        vec![
            person("G", json!({"role": "guest"})),
            person(
                "S",
                json!({"manager_external_id": "NOBODY", "email": "not-an-email"}),
            ),
            person(
                "T",
                json!({"manager_external_id": "G", "phone": "1", "role": "guest", "approval_process": "none"}),
            ),
        ],
    );

    assert_eq!(
        codes(&candidates[1]),
        ["EMAIL_INVALID", "MANAGER_DOES_NOT_EXIST"]
    );
    assert_eq!(
        codes(&candidates[2]),
        [
            "PHONE_IS_MISSING_OR_INVALID",
            "GUEST_MEMBERS_REQUIRE_APPROVAL_FOR_ALL_TRIPS",
            "GUEST_USERS_CANNOT_BE_APPROVERS"
        ]
    );
    assert!(!candidates[0].is_skipped());
}

#[test]
fn a_loop_through_a_record_skipped_for_a_field_is_still_a_loop() {
    let (candidates, _) = incremental(
        &[],
        vec![
            person("A", json!({"manager_external_id": "B", "phone": "0612"})),
            managed_by("B", "A"),
        ],
    );

    assert_eq!(
        codes(&candidates[0]),
        ["PHONE_IS_MISSING_OR_INVALID", "MANAGER_CYCLE"]
    );
    assert_eq!(
        codes(&candidates[1]),
        ["MANAGER_CYCLE", "MANAGER_DOES_NOT_EXIST"]
    );
    assert!(candidates[1].issues[1]
        .message
        .contains("because of PHONE_IS_MISSING_OR_INVALID and 1 more error(s); fix that row, and this record's 1 other error(s) too."));
}

#[test]
fn records_sharing_an_external_id_get_no_approval_flow_issues() {
    let mut candidates = candidates(vec![managed_by("D", "NOBODY"), managed_by("D", "NOBODY")]);
    let directory = directory(&[], &[]);
    crate::sync::duplicates::mark_duplicates(&mut candidates);
    check_approval_flow(
        &mut candidates,
        &directory,
        SyncMode::Incremental,
        today(),
        &mut Seats::unlimited(),
    );

    for candidate in &candidates {
        assert_eq!(
            codes(candidate),
            ["DUPLICATE_EXTERNAL_ID", "USER_DUPLICATE_EMAIL"]
        );
    }
}
