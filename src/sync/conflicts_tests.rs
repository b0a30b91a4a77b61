use serde_json::{json, Value};

use super::*;
use crate::store::models::UserRow;
use crate::sync::test_fixtures::{candidates, codes, directory, person, stored};

/// Checks the records' e-mail addresses against a directory of `rows`.
fn check(rows: &[UserRow], records: Vec<Value>) -> Vec<Candidate> {
    let mut candidates = candidates(records);
    check_email_owners(&mut candidates, &directory(rows, &[]));
    candidates
}

/// A stored user of another external id (or none) who owns `email`.
fn owner(id: &str, external_id: Option<&str>, email: &str, state: &str) -> UserRow {
    UserRow {
        external_id: external_id.map(str::to_owned),
        email: email.to_owned(),
        email_key: email.to_lowercase(),
        state: state.to_owned(),
        ..stored(id, "unused")
    }
}

fn with_email(external_id: &str, email: &str) -> Value {
    person(external_id, json!({ "email": email }))
}

#[test]
fn a_record_whose_user_has_the_same_external_id_and_email_is_fine_in_any_letter_case() {
    let rows = [stored("u-1", "E1")];

    let candidates = check(&rows, vec![with_email("E1", "E1@Example.COM")]);

    assert!(
        candidates[0].issues.is_empty(),
        "{:?}",
        candidates[0].issues
    );
    assert!(!candidates[0].is_skipped());
}

#[test]
fn an_archived_user_pushed_again_with_the_same_external_id_and_email_is_no_conflict() {
    let rows = [UserRow {
        state: "archived".to_owned(),
        ..stored("u-1", "E1")
    }];

    let candidates = check(&rows, vec![person("E1", json!({}))]);

    assert!(
        candidates[0].issues.is_empty(),
        "{:?}",
        candidates[0].issues
    );
}

#[test]
fn an_email_nobody_owns_is_fine_even_when_it_changes_a_users_address() {
    let rows = [stored("u-1", "E1")];

    let candidates = check(&rows, vec![with_email("E1", "ada.new@example.com")]);

    assert!(
        candidates[0].issues.is_empty(),
        "{:?}",
        candidates[0].issues
    );
}

#[test]
fn the_email_of_a_user_invited_by_hand_asks_to_revoke_the_invitation() {
    let rows = [owner("u-inv", None, "grace@example.com", "invited")];

    let candidates = check(&rows, vec![with_email("E1", "Grace@example.com")]);

    assert_eq!(codes(&candidates[0]), ["USER_EXISTS_IN_INVITED_STATE"]);
    assert!(candidates[0].is_skipped());
    let issue = &candidates[0].issues[0];
    assert_eq!(issue.field.as_deref(), Some("email"));
    assert!(
        issue
            .message
            .contains("POST /v1/users/u-inv/revoke-invitation")
            && issue.message.contains("\"Grace@example.com\"")
            && issue.message.contains("no external id"),
        "{}",
        issue.message
    );
}

#[test]
fn the_email_of_an_archived_user_with_another_external_id_is_refused() {
    let rows = [owner("u-old", Some("E0"), "grace@example.com", "archived")];

    let candidates = check(&rows, vec![with_email("E1", "grace@example.com")]);

    assert_eq!(codes(&candidates[0]), ["EMAIL_USED_BY_ARCHIVED_USER"]);
    assert!(candidates[0].is_skipped());
    assert!(
        candidates[0].issues[0]
            .message
            .contains("external id \"E0\""),
        "{}",
        candidates[0].issues[0].message
    );
}

#[test]
fn the_email_of_another_active_or_offboarding_user_is_a_duplicate() {
    let rows = [
        owner("u-2", Some("E2"), "grace@example.com", "active"),
        owner("u-3", Some("E3"), "alan@example.com", "pending_archive"),
        owner("u-4", None, "linus@example.com", "active"),
    ];

    let candidates = check(
        &rows,
        vec![
            with_email("E1", "GRACE@example.com"),
            with_email("E5", "alan@example.com"),
            with_email("E6", "linus@example.com"),
        ],
    );

    for candidate in &candidates {
        assert_eq!(codes(candidate), ["USER_DUPLICATE_EMAIL"]);
        assert!(candidate.is_skipped());
    }
    assert!(
        candidates[0].issues[0]
            .message
            .contains("already belongs to Ada Lovelace (user u-2, external id \"E2\")"),
        "{}",
        candidates[0].issues[0].message
    );
}

#[test]
fn records_without_a_valid_email_are_not_compared() {
    let rows = [owner("u-2", Some("E2"), "grace@example.com", "active")];

    let candidates = check(&rows, vec![with_email("E1", "grace@")]);

    assert_eq!(codes(&candidates[0]), ["EMAIL_INVALID"]);
}

#[test]
fn a_record_already_skipped_still_learns_who_owns_its_email() {
    let rows = [owner("u-2", Some("E2"), "grace@example.com", "active")];

    let candidates = check(
        &rows,
        vec![person(
            "E1",
            json!({"email": "grace@example.com", "last_name": ""}),
        )],
    );

    assert_eq!(
        codes(&candidates[0]),
        ["MISSING_LAST_NAME", "USER_DUPLICATE_EMAIL"]
    );
}
