//! Field rules over a realistic company: every planted bad record gets exactly its issue, and
//! nothing else does.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::helpers::{person, spawn_app, with, TestApp};

fn without(mut record: Value, field: &str) -> Value {
    record.as_object_mut().expect("object").remove(field);
    record
}

fn employee(id: &str, first: &str, last: &str, manager: Option<&str>, teams: &[&str]) -> Value {
    let mut record = with(
        person(id),
        json!({
            "first_name": first,
            "last_name": last,
            "email": format!("{}.{}@acme.test", first.to_lowercase(), last.to_lowercase()),
            "teams": teams,
            "date_of_birth": "07/14/1985",
            "gender": "F",
            "phone": "+33 612345678",
        }),
    );
    if let Some(manager) = manager {
        record["manager_external_id"] = json!(manager);
    }
    record
}

/// Twenty records: a leadership team, two departments, and fourteen planted mistakes (rows 5
/// to 18), all of them people without reports so that no mistake cascades.
fn company() -> Vec<Value> {
    vec![
        /* 1 */ employee("E100", "Margaret", "Hamilton", None, &["Leadership"]),
        /* 2 */
        employee(
            "E101",
            "Grace",
            "Hopper",
            Some("E100"),
            &["Engineering", "Leadership"],
        ),
        /* 3 */
        employee(
            "E102",
            "Mary",
            "Jackson",
            Some("E100"),
            &["Sales", "Leadership"],
        ),
        /* 4 */ employee("E103", "Alan", "Turing", Some("E101"), &["Engineering"]),
        /* 5 */
        with(
            employee("E104", "Dennis", "Ritchie", Some("E101"), &["Engineering"]),
            json!({"date_of_birth": "02/30/1990"}),
        ),
        /* 6 */
        with(
            employee("E105", "Ken", "Thompson", Some("E101"), &["Engineering"]),
            json!({"date_of_birth": "1/2/1990"}),
        ),
        /* 7 */
        with(
            employee("E106", "Barbara", "Liskov", Some("E101"), &["Engineering"]),
            json!({"date_of_birth": "1990-01-02"}),
        ),
        /* 8 */
        with(
            employee("E107", "Frances", "Allen", Some("E101"), &["Engineering"]),
            json!({"date_of_birth": "13/01/1990"}),
        ),
        /* 9 */
        with(
            employee("E108", "Radia", "Perlman", Some("E101"), &["Engineering"]),
            json!({"gender": "X"}),
        ),
        /* 10 */
        with(
            employee("E109", "Edsger", "Dijkstra", Some("E101"), &["Engineering"]),
            json!({"phone": "+33612345678"}),
        ),
        /* 11 */
        without(
            employee("E110", "Donald", "Knuth", Some("E102"), &["Sales"]),
            "email",
        ),
        /* 12 */
        with(
            employee("E111", "Leslie", "Lamport", Some("E102"), &["Sales"]),
            json!({"email": "leslie.lamport.acme.test"}),
        ),
        /* 13 */
        with(
            employee("E112", "Tony", "Hoare", Some("E102"), &["Sales"]),
            json!({"first_name": "   "}),
        ),
        /* 14 */
        without(
            employee("E113", "John", "Backus", Some("E102"), &["Sales"]),
            "start_date",
        ),
        /* 15 */
        without(
            with(
                employee("E114", "Niklaus", "Wirth", Some("E102"), &["Sales"]),
                json!({"employment_status": "rescinded"}),
            ),
            "start_date",
        ),
        /* 16 */
        with(
            employee("E115", "Ada", "Lovelace", Some("E102"), &["Sales"]),
            json!({"username": "ada lovelace"}),
        ),
        /* 17 */
        with(
            employee("E116", "Katherine", "Johnson", Some("E102"), &["Sales"]),
            json!({"last_name": "J".repeat(256)}),
        ),
        /* 18 */
        with(
            employee("E117", "Hedy", "Lamarr", Some("E102"), &["Sales"]),
            json!({"first_name": "Hedy\nKiesler"}),
        ),
        /* 19 */ employee("E118", "Annie", "Easley", Some("E102"), &["Sales"]),
        /* 20 */
        with(
            employee("E119", "Zoë", "Ångström", Some("E103"), &["Engineering"]),
            json!({"username": "zoe.a", "email": "zoe.angstrom@acme.test"}),
        ),
    ]
}

fn expected_issues() -> BTreeSet<(i64, String)> {
    [
        (5, "DATE_OF_BIRTH_IS_MISSING_OR_INVALID"),
        (6, "DATE_OF_BIRTH_IS_MISSING_OR_INVALID"),
        (7, "DATE_OF_BIRTH_IS_MISSING_OR_INVALID"),
        (8, "DATE_OF_BIRTH_IS_MISSING_OR_INVALID"),
        (9, "SEX_IS_MISSING_OR_INVALID"),
        (10, "PHONE_IS_MISSING_OR_INVALID"),
        (11, "MISSING_EMAIL"),
        (12, "EMAIL_INVALID"),
        (13, "MISSING_FIRST_NAME"),
        (14, "MISSING_START_DATE"),
        (15, "RESCINDED_HIRE_NOT_CREATED"),
        (16, "USERNAME_INVALID"),
        (17, "FIELD_TOO_LONG"),
        (18, "FIELD_INVALID_CHARACTERS"),
    ]
    .into_iter()
    .map(|(row, code)| (row, code.to_owned()))
    .collect()
}

fn sync_company(app: &TestApp) -> (Value, Vec<Value>) {
    let run = app.sync("incremental", json!(company()));
    let issues = app.events(run["id"].as_str().unwrap(), "kind=issue");
    (run, issues)
}

fn issue_at(issues: &[Value], row: i64) -> &Value {
    let at: Vec<&Value> = issues.iter().filter(|i| i["row"] == row).collect();
    assert_eq!(at.len(), 1, "row {row}: {at:?}");
    at[0]
}

#[test]
fn a_company_with_planted_mistakes_gets_exactly_the_expected_issues() {
    let app = spawn_app();
    let (run, issues) = sync_company(&app);
    let actual: BTreeSet<(i64, String)> = issues
        .iter()
        .map(|issue| {
            (
                issue["row"].as_i64().unwrap(),
                issue["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(actual, expected_issues());
    assert_eq!(
        issues.len(),
        expected_issues().len(),
        "one issue per planted mistake"
    );
    assert_eq!(run["status"], "succeeded_with_errors");
    assert_eq!(run["counts"]["skipped"], 13);
    assert_eq!(run["counts"]["created"], 6);
    assert_eq!(run["counts"]["ignored"], 1);
    assert_eq!(run["issues"]["total"], 14);
    assert_eq!(run["issues"]["errors"], 13);
    assert_eq!(run["issues"]["infos"], 1);
}

#[test]
fn only_the_valid_people_of_the_company_are_created_with_their_managers_and_teams() {
    let app = spawn_app();
    sync_company(&app);
    let users = app.users("");
    let mut created: Vec<&str> = users
        .iter()
        .map(|u| u["external_id"].as_str().unwrap())
        .collect();
    created.sort_unstable();
    assert_eq!(created, ["E100", "E101", "E102", "E103", "E118", "E119"]);
    let zoe = users.iter().find(|u| u["external_id"] == "E119").unwrap();
    assert_eq!(zoe["manager_external_id"], "E103");
    assert_eq!(zoe["first_name"], "Zoë");
    assert_eq!(zoe["teams"], json!(["Engineering"]));
    assert_eq!(zoe["date_of_birth"], "07/14/1985");
    assert_eq!(zoe["gender"], "F");
    assert_eq!(zoe["phone"], "+33 612345678");
    assert_eq!(zoe["username"], "zoe.a");
    let grace = users.iter().find(|u| u["external_id"] == "E101").unwrap();
    assert_eq!(grace["teams"], json!(["Engineering", "Leadership"]));
    assert_eq!(grace["manager_external_id"], "E100");
}

#[test]
fn every_issue_names_its_record_field_value_and_help_page() {
    let app = spawn_app();
    let (_, issues) = sync_company(&app);
    for issue in &issues {
        let code = issue["code"].as_str().unwrap();
        assert_eq!(issue["kind"], "issue");
        assert_eq!(issue["entity"], "user");
        assert_eq!(issue["help"], format!("/v1/error-codes/{code}"), "{issue}");
        assert!(issue["field"].is_string(), "{issue}");
        assert!(!issue["message"].as_str().unwrap().is_empty(), "{issue}");
        assert!(issue["external_id"].is_string(), "{issue}");
    }
    let dob = issue_at(&issues, 5);
    assert_eq!(dob["severity"], "error");
    assert_eq!(dob["field"], "date_of_birth");
    assert_eq!(dob["external_id"], "E104");
    assert_eq!(dob["email"], "dennis.ritchie@acme.test");
    assert_eq!(dob["first_name"], "Dennis");
    assert_eq!(dob["last_name"], "Ritchie");
    assert_eq!(dob["user_id"], Value::Null);

    for (row, value) in [
        (5, "02/30/1990"),
        (6, "1/2/1990"),
        (7, "1990-01-02"),
        (8, "13/01/1990"),
    ] {
        let message = issue_at(&issues, row)["message"].as_str().unwrap();
        assert!(message.contains(value), "row {row}: {message}");
    }
    let sex = issue_at(&issues, 9);
    assert_eq!(sex["field"], "gender");
    assert!(sex["message"].as_str().unwrap().contains("\"X\""), "{sex}");
    let phone = issue_at(&issues, 10);
    assert_eq!(phone["field"], "phone");
    assert!(
        phone["message"].as_str().unwrap().contains("+33612345678"),
        "{phone}"
    );
    let missing_email = issue_at(&issues, 11);
    assert_eq!(missing_email["field"], "email");
    assert_eq!(missing_email["email"], Value::Null);
    let bad_email = issue_at(&issues, 12);
    assert_eq!(bad_email["field"], "email");
    assert!(bad_email["message"]
        .as_str()
        .unwrap()
        .contains("leslie.lamport.acme.test"));
    assert_eq!(issue_at(&issues, 13)["field"], "first_name");
    assert_eq!(issue_at(&issues, 14)["field"], "start_date");
    let username = issue_at(&issues, 16);
    assert_eq!(username["field"], "username");
    assert!(username["message"]
        .as_str()
        .unwrap()
        .contains("ada lovelace"));
    let too_long = issue_at(&issues, 17);
    assert_eq!(too_long["field"], "last_name");
    assert!(
        too_long["message"].as_str().unwrap().contains("256"),
        "{too_long}"
    );
    assert_eq!(
        too_long["last_name"].as_str().unwrap().chars().count(),
        255,
        "shown, cut at 255"
    );
    let control = issue_at(&issues, 18);
    assert_eq!(control["field"], "first_name");
    assert_eq!(control["first_name"], "Hedy\nKiesler", "shown as sent");
}

#[test]
fn a_rescinded_hire_without_start_date_is_information_and_creates_no_user() {
    let app = spawn_app();
    let (run, issues) = sync_company(&app);
    let rescinded = issue_at(&issues, 15);
    assert_eq!(rescinded["code"], "RESCINDED_HIRE_NOT_CREATED");
    assert_eq!(rescinded["severity"], "info");
    assert_eq!(rescinded["field"], "employment_status");
    assert!(issues
        .iter()
        .all(|i| i["external_id"] != "E114" || i["row"] == 15));
    assert!(!issues
        .iter()
        .any(|i| i["row"] == 15 && i["code"] == "MISSING_START_DATE"));
    assert!(app.users("q=E114").is_empty());
    let events = app.events(run["id"].as_str().unwrap(), "q=E114");
    assert_eq!(events.len(), 1, "only the information: {events:?}");
}

#[test]
fn a_name_of_exactly_255_characters_is_accepted() {
    let app = spawn_app();
    let name = "é".repeat(255);
    let run = app.sync(
        "incremental",
        json!([with(person("E1"), json!({"last_name": name}))]),
    );
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(app.users("")[0]["last_name"], name);
}

#[test]
fn every_field_problem_of_one_record_is_reported_at_once() {
    let app = spawn_app();
    let record = json!({
        "external_id": "E1", "email": "nope", "first_name": "", "last_name": "Lovelace",
        "start_date": "2024-01-15", "date_of_birth": "1/2/1990", "gender": "X",
        "phone": "+33612345678", "username": "a b"
    });
    let run = app.sync("incremental", json!([record]));
    let codes: BTreeSet<String> = app
        .events(run["id"].as_str().unwrap(), "kind=issue")
        .iter()
        .map(|i| i["code"].as_str().unwrap().to_owned())
        .collect();
    let expected: BTreeSet<String> = [
        "EMAIL_INVALID",
        "MISSING_FIRST_NAME",
        "DATE_OF_BIRTH_IS_MISSING_OR_INVALID",
        "SEX_IS_MISSING_OR_INVALID",
        "PHONE_IS_MISSING_OR_INVALID",
        "USERNAME_INVALID",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(codes, expected);
    assert_eq!(run["counts"]["skipped"], 1);
    assert_eq!(run["issues"]["users_affected"], 1);
}

#[test]
fn gender_is_matched_without_regard_to_case_and_stored_as_allowed() {
    let app = spawn_app();
    let run = app.sync(
        "incremental",
        json!([with(person("E1"), json!({"gender": "m"}))]),
    );
    assert_eq!(run["status"], "succeeded");
    assert_eq!(app.users("")[0]["gender"], "M");
}
