//! Records meeting the directory: duplicates, invitations by hand, archived users, full-mode
//! archiving, offboardings that wait for upcoming trips, and returning employees.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{person, spawn_app, with, TestApp};

fn issues(app: &TestApp, run: &Value) -> Vec<Value> {
    app.events(run["id"].as_str().unwrap(), "kind=issue")
}

fn only<'a>(events: &'a [Value], external_id: &str) -> &'a Value {
    let found: Vec<&Value> = events
        .iter()
        .filter(|e| e["external_id"] == external_id)
        .collect();
    assert_eq!(found.len(), 1, "{external_id}: {events:?}");
    found[0]
}

fn user(app: &TestApp, external_id: &str) -> Value {
    app.users("")
        .into_iter()
        .find(|u| u["external_id"] == external_id)
        .unwrap_or_else(|| panic!("no user {external_id}"))
}

fn invite(app: &TestApp, email: &str) -> Value {
    let response = app.post_json(
        "/v1/users/invitations",
        &json!({"email": email, "first_name": "Ada", "last_name": "Lovelace"}),
    );
    assert_eq!(response.status().as_u16(), 201);
    response.json().unwrap()
}

#[test]
fn records_sharing_an_email_in_one_push_are_all_skipped_whatever_the_case() {
    let app = spawn_app();
    let run = app.sync(
        "incremental",
        json!([
            with(person("E1"), json!({"email": "Ada@Example.com"})),
            person("E2"),
            with(person("E3"), json!({"email": "ada@example.COM"})),
        ]),
    );
    let found = issues(&app, &run);
    let first = only(&found, "E1");
    assert_eq!(first["code"], "USER_DUPLICATE_EMAIL");
    assert_eq!(first["field"], "email");
    assert!(
        first["message"].as_str().unwrap().contains("row 3"),
        "{first}"
    );
    let third = only(&found, "E3");
    assert_eq!(third["code"], "USER_DUPLICATE_EMAIL");
    assert!(
        third["message"].as_str().unwrap().contains("row 1"),
        "{third}"
    );
    assert_eq!(found.len(), 2);
    assert_eq!(run["counts"]["skipped"], 2);
    assert_eq!(run["counts"]["duplicates"], 2);
    let users = app.users("");
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["external_id"], "E2");
}

#[test]
fn an_email_of_another_active_user_is_a_duplicate_and_leaves_the_owner_alone() {
    let app = spawn_app();
    app.sync(
        "incremental",
        json!([with(person("E1"), json!({"email": "ada@example.com"}))]),
    );
    let owner = user(&app, "E1");
    let run = app.sync(
        "incremental",
        json!([with(person("E2"), json!({"email": "ADA@example.com"}))]),
    );
    let found = issues(&app, &run);
    let issue = only(&found, "E2");
    assert_eq!(issue["code"], "USER_DUPLICATE_EMAIL");
    let message = issue["message"].as_str().unwrap();
    assert!(message.contains(owner["id"].as_str().unwrap()), "{message}");
    assert!(message.contains("\"E1\""), "{message}");
    let users = app.users("");
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["email"], "ada@example.com");
    assert_eq!(users[0]["updated_at"], owner["updated_at"]);
}

#[test]
fn an_email_changing_only_in_case_is_an_update_of_the_same_person() {
    let app = spawn_app();
    app.sync(
        "incremental",
        json!([with(person("E1"), json!({"email": "ada@example.com"}))]),
    );
    let run = app.sync(
        "incremental",
        json!([with(person("E1"), json!({"email": "Ada@Example.com"}))]),
    );
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["counts"]["updated"], 1);
    assert_eq!(user(&app, "E1")["email"], "Ada@Example.com");
}

#[test]
fn records_sharing_an_external_id_are_all_skipped_and_name_each_other() {
    let app = spawn_app();
    let run = app.sync(
        "incremental",
        json!([
            with(person("E1"), json!({"email": "one@example.com"})),
            with(person("E1"), json!({"email": "two@example.com"})),
            person("E2"),
            with(person("E1"), json!({"email": "three@example.com"})),
        ]),
    );
    let found = issues(&app, &run);
    assert_eq!(found.len(), 3, "{found:?}");
    for (issue, others) in found
        .iter()
        .zip(["rows 2 and 4", "rows 1 and 4", "rows 1 and 2"])
    {
        assert_eq!(issue["code"], "DUPLICATE_EXTERNAL_ID");
        assert!(
            issue["message"].as_str().unwrap().contains(others),
            "{issue}"
        );
    }
    assert_eq!(run["counts"]["duplicates"], 3);
    let users = app.users("");
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["external_id"], "E2");
}

#[test]
fn an_invited_email_blocks_the_record_until_the_invitation_is_revoked() {
    let app = spawn_app();
    let invited = invite(&app, "ada@example.com");
    let invited_id = invited["id"].as_str().unwrap();
    assert_eq!(invited["state"], "invited");

    let record = with(person("E1"), json!({"email": "ada@example.com"}));
    let run = app.sync("incremental", json!([record.clone()]));
    let found = issues(&app, &run);
    let issue = only(&found, "E1");
    assert_eq!(issue["code"], "USER_EXISTS_IN_INVITED_STATE");
    assert!(
        issue["message"]
            .as_str()
            .unwrap()
            .contains(&format!("/v1/users/{invited_id}/revoke-invitation")),
        "{issue}"
    );
    assert_eq!(app.users("").len(), 1, "only the invited user");

    let revoked = app
        .request(
            Method::POST,
            &format!("/v1/users/{invited_id}/revoke-invitation"),
        )
        .send()
        .unwrap();
    assert_eq!(revoked.status().as_u16(), 204);
    assert_eq!(
        app.get(&format!("/v1/users/{invited_id}"))
            .status()
            .as_u16(),
        404
    );

    let run = app.sync("incremental", json!([record]));
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["counts"]["created"], 1);
    let users = app.users("");
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["state"], "active");
    assert_eq!(users[0]["external_id"], "E1");
}

#[test]
fn an_email_of_an_archived_user_is_refused_to_a_newcomer() {
    let app = spawn_app();
    app.sync("incremental", json!([person("E1"), person("E2")]));
    app.sync("full", json!([person("E2")]));
    assert_eq!(user(&app, "E1")["state"], "archived");
    let run = app.sync(
        "incremental",
        json!([with(person("E3"), json!({"email": "e1@example.com"}))]),
    );
    let found = issues(&app, &run);
    let issue = only(&found, "E3");
    assert_eq!(issue["code"], "EMAIL_USED_BY_ARCHIVED_USER");
    assert!(
        issue["message"].as_str().unwrap().contains("\"E1\""),
        "{issue}"
    );
    assert_eq!(app.users("").len(), 2);
}

#[test]
fn a_full_sync_archives_active_users_missing_from_the_push() {
    let app = spawn_app();
    app.sync(
        "incremental",
        json!([person("E1"), person("E2"), person("E3")]),
    );
    let missing = user(&app, "E3");
    let run = app.sync("full", json!([person("E1"), person("E2")]));
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["counts"]["archived"], 1);
    assert_eq!(run["counts"]["unchanged"], 2);
    let archived = app.events(run["id"].as_str().unwrap(), "action=USER_ARCHIVED");
    assert_eq!(archived.len(), 1);
    assert_eq!(archived[0]["user_id"], missing["id"]);
    assert_eq!(archived[0]["external_id"], "E3");
    assert_eq!(archived[0]["row"], Value::Null);
    assert_eq!(
        archived[0]["changes"],
        json!([{"field": "state", "old": "active", "new": "archived"}])
    );
    let e3 = user(&app, "E3");
    assert_eq!(e3["state"], "archived");
    assert!(e3["archived_at"].is_string());
    assert_eq!(app.users("state=active").len(), 2);
}

#[test]
fn an_incremental_sync_archives_nobody_missing_from_the_push() {
    let app = spawn_app();
    app.sync("incremental", json!([person("E1"), person("E2")]));
    let run = app.sync("incremental", json!([person("E1")]));
    assert_eq!(run["counts"]["archived"], 0);
    assert_eq!(app.users("state=active").len(), 2);
}

#[test]
fn a_full_sync_never_archives_someone_whose_record_was_pushed_but_skipped() {
    let app = spawn_app();
    app.sync(
        "incremental",
        json!([person("E1"), person("E2"), person("E3"), person("E4")]),
    );
    let run = app.sync(
        "full",
        json!([
            person("E1"),
            with(person("E2"), json!({"date_of_birth": "31/12/1990"})),
            // external id unreadable: recognised by the e-mail address
            with(person("E3"), json!({"external_id": ["E3"]})),
        ]),
    );
    assert_eq!(run["counts"]["skipped"], 2);
    assert_eq!(run["counts"]["archived"], 1);
    assert_eq!(user(&app, "E2")["state"], "active");
    assert_eq!(user(&app, "E3")["state"], "active");
    assert_eq!(user(&app, "E4")["state"], "archived");
}

#[test]
fn a_full_sync_leaves_users_invited_by_hand_alone() {
    let app = spawn_app();
    app.sync("incremental", json!([person("E1")]));
    invite(&app, "grace@example.com");
    let run = app.sync("full", json!([person("E1")]));
    assert_eq!(run["counts"]["archived"], 0);
    assert_eq!(app.users("state=invited").len(), 1);
}

#[test]
fn an_offboarding_waits_for_upcoming_trips_and_a_later_sync_finishes_it() {
    let app = spawn_app();
    app.sync("incremental", json!([person("E1"), person("E2")]));
    let traveller = user(&app, "E2");
    let traveller_id = traveller["id"].as_str().unwrap();
    app.set_upcoming_trips(traveller_id, 2);

    let run = app.sync("full", json!([person("E1")]));
    assert_eq!(run["counts"]["archived"], 0);
    assert_eq!(run["counts"]["warnings"], 1);
    assert_eq!(user(&app, "E2")["state"], "pending_archive");
    let found = issues(&app, &run);
    let warning = only(&found, "E2");
    assert_eq!(warning["code"], "USER_HAS_UPCOMING_TRIPS");
    assert_eq!(warning["severity"], "warning");
    assert_eq!(warning["user_id"], traveller_id);
    assert!(
        warning["message"]
            .as_str()
            .unwrap()
            .contains("2 upcoming trip"),
        "{warning}"
    );
    assert_eq!(run["status"], "succeeded", "a warning is not an error");

    app.set_upcoming_trips(traveller_id, 0);
    let run = app.sync("full", json!([person("E1")]));
    assert_eq!(run["counts"]["archived"], 1);
    let archived = app.events(run["id"].as_str().unwrap(), "action=USER_ARCHIVED");
    assert_eq!(
        archived[0]["changes"],
        json!([{"field": "state", "old": "pending_archive", "new": "archived"}])
    );
    assert_eq!(user(&app, "E2")["state"], "archived");
    assert!(issues(&app, &run).is_empty());
}

#[test]
fn a_terminated_employee_with_upcoming_trips_waits_in_pending_archive() {
    let app = spawn_app();
    app.sync("incremental", json!([person("E1")]));
    app.set_upcoming_trips(user(&app, "E1")["id"].as_str().unwrap(), 1);
    let run = app.sync(
        "incremental",
        json!([with(
            person("E1"),
            json!({"employment_status": "terminated"})
        )]),
    );
    assert_eq!(user(&app, "E1")["state"], "pending_archive");
    assert_eq!(
        only(&issues(&app, &run), "E1")["code"],
        "USER_HAS_UPCOMING_TRIPS"
    );
}

#[test]
fn a_terminated_employee_or_a_past_end_date_archives_in_an_incremental_sync() {
    let app = spawn_app();
    app.sync(
        "incremental",
        json!([person("E1"), person("E2"), person("E3")]),
    );
    let run = app.sync(
        "incremental",
        json!([
            with(person("E1"), json!({"employment_status": "terminated"})),
            with(
                person("E2"),
                json!({"start_date": "2019-01-01", "end_date": "2020-06-30"})
            ),
            with(person("E3"), json!({"end_date": "2999-12-31"})),
        ]),
    );
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["counts"]["archived"], 2);
    assert_eq!(run["counts"]["updated"], 1);
    assert_eq!(user(&app, "E1")["state"], "archived");
    assert_eq!(user(&app, "E2")["state"], "archived");
    assert_eq!(
        user(&app, "E3")["state"],
        "active",
        "a future end date waits"
    );
    let archived = app.events(run["id"].as_str().unwrap(), "action=USER_ARCHIVED");
    assert_eq!(archived.len(), 2);
}

#[test]
fn a_terminated_person_never_in_the_directory_is_not_created() {
    let app = spawn_app();
    let run = app.sync(
        "incremental",
        json!([with(
            person("E1"),
            json!({"employment_status": "terminated"})
        )]),
    );
    let found = issues(&app, &run);
    let issue = only(&found, "E1");
    assert_eq!(issue["code"], "TERMINATED_USER_NOT_CREATED");
    assert_eq!(issue["severity"], "info");
    assert!(app.users("").is_empty());
}

#[test]
fn a_returning_employee_is_reactivated_not_created_again() {
    let app = spawn_app();
    app.sync("incremental", json!([person("E1"), person("E2")]));
    let before = user(&app, "E1");
    app.sync(
        "incremental",
        json!([with(
            person("E1"),
            json!({"employment_status": "terminated"})
        )]),
    );
    assert_eq!(user(&app, "E1")["state"], "archived");

    let run = app.sync("incremental", json!([person("E1")]));
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["counts"]["reactivated"], 1);
    assert_eq!(run["counts"]["created"], 0);
    let events = app.events(run["id"].as_str().unwrap(), "action=USER_REACTIVATED");
    assert_eq!(events.len(), 1);
    let changes = events[0]["changes"].as_array().unwrap();
    assert!(changes.contains(&json!({"field": "state", "old": "archived", "new": "active"})));
    assert!(changes
        .contains(&json!({"field": "employment_status", "old": "terminated", "new": "active"})));
    let after = user(&app, "E1");
    assert_eq!(after["id"], before["id"]);
    assert_eq!(after["state"], "active");
    assert_eq!(after["archived_at"], Value::Null);
    assert_eq!(app.users("").len(), 2);
}

#[test]
fn a_user_archived_by_a_full_sync_comes_back_with_the_next_full_sync() {
    let app = spawn_app();
    app.sync("incremental", json!([person("E1"), person("E2")]));
    app.sync("full", json!([person("E1")]));
    let run = app.sync("full", json!([person("E1"), person("E2")]));
    assert_eq!(run["counts"]["reactivated"], 1);
    assert_eq!(user(&app, "E2")["state"], "active");
}

#[test]
fn a_waiting_offboarding_is_warned_again_without_a_new_update_while_trips_remain() {
    let app = spawn_app();
    app.sync("incremental", json!([person("E1"), person("E2")]));
    app.set_upcoming_trips(user(&app, "E2")["id"].as_str().unwrap(), 1);
    app.sync("full", json!([person("E1")]));
    let run = app.sync("full", json!([person("E1")]));
    assert_eq!(run["counts"]["updated"], 0);
    assert_eq!(run["counts"]["archived"], 0);
    assert_eq!(
        app.events(run["id"].as_str().unwrap(), "kind=update"),
        Vec::<Value>::new()
    );
    assert_eq!(
        only(&issues(&app, &run), "E2")["code"],
        "USER_HAS_UPCOMING_TRIPS"
    );
    assert_eq!(user(&app, "E2")["state"], "pending_archive");
}

#[test]
fn a_waiting_offboarding_finishes_when_the_terminated_record_comes_again_after_the_trips() {
    let app = spawn_app();
    app.sync("incremental", json!([person("E1")]));
    let id = user(&app, "E1")["id"].as_str().unwrap().to_owned();
    app.set_upcoming_trips(&id, 1);
    let terminated = with(person("E1"), json!({"employment_status": "terminated"}));
    app.sync("incremental", json!([terminated.clone()]));
    assert_eq!(user(&app, "E1")["state"], "pending_archive");
    app.set_upcoming_trips(&id, 0);
    let run = app.sync("incremental", json!([terminated]));
    assert_eq!(run["counts"]["archived"], 1);
    assert_eq!(user(&app, "E1")["state"], "archived");
}

#[test]
fn a_waiting_offboarding_is_retried_by_incremental_runs_that_do_not_mention_the_user() {
    let app = spawn_app();
    app.sync("incremental", json!([person("E1"), person("E2")]));
    let e2 = user(&app, "E2");
    app.set_upcoming_trips(e2["id"].as_str().unwrap(), 1);
    let leaving = with(person("E2"), json!({"employment_status": "terminated"}));
    app.sync("incremental", json!([leaving]));
    assert_eq!(user(&app, "E2")["state"], "pending_archive");

    // Still a trip ahead: the next run that does not mention E2 says so again.
    let run = app.sync("incremental", json!([person("E1")]));
    let waiting = issues(&app, &run);
    assert_eq!(only(&waiting, "E2")["code"], "USER_HAS_UPCOMING_TRIPS");
    assert_eq!(user(&app, "E2")["state"], "pending_archive");

    app.set_upcoming_trips(e2["id"].as_str().unwrap(), 0);
    let run = app.sync("incremental", json!([person("E1")]));
    assert_eq!(run["counts"]["archived"], 1, "{run}");
    assert_eq!(user(&app, "E2")["state"], "archived");
}

#[test]
fn thousands_of_records_sharing_a_placeholder_email_are_all_skipped_quickly() {
    let app = spawn_app();
    let records: Vec<Value> = (0..3000)
        .map(|i| with(person(&format!("E{i}")), json!({"email": "hr@example.com"})))
        .collect();
    let started = std::time::Instant::now();
    let run = app.sync("incremental", Value::Array(records));
    assert_eq!(run["counts"]["skipped"], 3000, "{run}");
    assert_eq!(run["counts"]["duplicates"], 3000);
    let page = app.get_json(&format!(
        "/v1/syncs/{}/events?limit=1&code=USER_DUPLICATE_EMAIL",
        run["id"].as_str().unwrap()
    ));
    let first = &page["items"][0];
    assert!(
        first["message"].as_str().unwrap().contains("and 2989 more"),
        "{first}"
    );
    // Naming ten rows per message keeps this linear; quadratic work took minutes here.
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}

/// SQLite runs write without the per-row foreign-key check and count the users left without
/// their manager before committing (`store::users::count_missing_managers`): that count sees
/// what the foreign key would have refused.
#[test]
fn a_manager_that_does_not_exist_is_counted_as_the_foreign_key_would_refuse_it() {
    let app = spawn_app();
    if crate::helpers::postgres_url().is_some() {
        eprintln!("PostgreSQL checks every row's keys itself: nothing to count");
        return;
    }
    app.sync(
        "full",
        json!([
            person("M"),
            with(person("B"), json!({"manager_external_id": "M"}))
        ]),
    );
    let mut conn = hris_sync::store::connect(&app.database_url, 1)
        .unwrap()
        .get()
        .unwrap();
    let missing = |conn: &mut hris_sync::store::DbConn| {
        hris_sync::store::users::count_missing_managers(conn, &app.organization_id).unwrap()
    };
    assert_eq!(missing(&mut conn), 0);
    diesel::connection::SimpleConnection::batch_execute(
        &mut *conn,
        "PRAGMA foreign_keys = OFF; UPDATE users SET manager_id = 'nobody' WHERE external_id = 'B'; PRAGMA foreign_keys = ON;",
    )
    .unwrap();
    assert_eq!(missing(&mut conn), 1);
}
