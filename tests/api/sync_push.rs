//! Pushing a batch: the answer, the run's life, the run list, a broken envelope, retries with an
//! Idempotency-Key, dry runs, and records whose fields have the wrong JSON type.

use reqwest::blocking::Response;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, person, spawn_app, with, TestApp};

fn push_with_key(app: &TestApp, key: &str, body: &Value) -> Response {
    app.request(Method::POST, "/v1/syncs")
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .expect("request sent")
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|run| run["id"].as_str().expect("run id").to_owned())
        .collect()
}

fn listed(app: &TestApp, query: &str) -> Vec<String> {
    ids(&app.get_json(&format!("/v1/syncs?{query}")))
}

#[test]
fn a_push_is_accepted_with_202_the_pending_run_and_its_location() {
    let app = spawn_app();
    let response = app.post_json(
        "/v1/syncs",
        &json!({"source": "bamboohr", "mode": "full", "users": [person("E1"), person("E2")]}),
    );
    assert_eq!(response.status().as_u16(), 202);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let run: Value = response.json().unwrap();
    let id = run["id"].as_str().unwrap();
    assert_eq!(location, format!("/v1/syncs/{id}"));
    assert_eq!(run["status"], "pending");
    assert_eq!(run["source"], "bamboohr");
    assert_eq!(run["mode"], "full");
    assert_eq!(run["dry_run"], false);
    assert_eq!(run["records"], 2);
    assert_eq!(run["finished_at"], Value::Null);
    assert_eq!(app.get_json(&location)["id"], id);
}

#[test]
fn a_push_without_mode_or_source_is_an_incremental_api_run() {
    let app = spawn_app();
    let run = app.push_body(&json!({"users": [person("E1")]}));
    assert_eq!(run["mode"], "incremental");
    assert_eq!(run["source"], "api");
    assert_eq!(run["dry_run"], false);
}

#[test]
fn an_accepted_run_ends_succeeded_with_its_counts_times_and_progress() {
    let app = spawn_app();
    let run = app.sync(
        "incremental",
        json!([person("E1"), person("E2"), person("E3")]),
    );
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["counts"]["created"], 3);
    assert_eq!(run["counts"]["skipped"], 0);
    let created_at = run["created_at"].as_str().unwrap();
    let started_at = run["started_at"].as_str().expect("started_at");
    let finished_at = run["finished_at"].as_str().expect("finished_at");
    assert!(
        created_at <= started_at && started_at <= finished_at,
        "{run}"
    );
    assert_eq!(run["progress"], json!({"processed": 3, "total": 3}));
    assert_eq!(run["logs"], json!([]));
    assert_eq!(app.users("").len(), 3);
}

#[test]
fn runs_are_listed_newest_first_and_cursors_walk_through_all_of_them() {
    let app = spawn_app();
    let mut pushed: Vec<String> = (0..5)
        .map(|i| {
            let run = app.sync("incremental", json!([person(&format!("E{i}"))]));
            run["id"].as_str().unwrap().to_owned()
        })
        .collect();
    pushed.reverse();

    let mut pages = Vec::new();
    let mut path = "/v1/syncs?limit=2".to_owned();
    loop {
        let page = app.get_json(&path);
        pages.push(ids(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/syncs?limit=2&cursor={cursor}"),
            None => break,
        }
        assert!(pages.len() < 10, "cursors never end");
    }
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
    assert_eq!(pages.concat(), pushed);
    assert_eq!(listed(&app, ""), pushed);
}

#[test]
fn the_last_page_of_runs_has_a_null_cursor() {
    let app = spawn_app();
    app.sync("incremental", json!([person("E1")]));
    app.sync("incremental", json!([person("E2")]));
    let page = app.get_json("/v1/syncs?limit=2");
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(page["next_cursor"], Value::Null);
}

#[test]
fn runs_are_filtered_by_status_source_and_creation_time() {
    let app = spawn_app();
    let push = |source: &str, users: Value| {
        let run = app.push_body(&json!({"source": source, "mode": "incremental", "users": users}));
        app.wait_for_run(run["id"].as_str().unwrap())
    };
    let first = push("bamboohr", json!([person("E1")]));
    let second = push(
        "personio",
        json!([with(person("E2"), json!({"gender": "X"}))]),
    );
    let third = push("bamboohr", json!([person("E3")]));
    assert_eq!(second["status"], "succeeded_with_errors");
    let [first_id, second_id, third_id] =
        [&first, &second, &third].map(|run| run["id"].as_str().unwrap().to_owned());

    assert_eq!(
        listed(&app, "status=succeeded_with_errors"),
        [second_id.as_str()]
    );
    assert_eq!(
        listed(&app, "status=succeeded"),
        [third_id.as_str(), first_id.as_str()]
    );
    assert_eq!(listed(&app, "status=failed"), Vec::<String>::new());
    assert_eq!(
        listed(&app, "source=bamboohr"),
        [third_id.as_str(), first_id.as_str()]
    );
    assert_eq!(listed(&app, "source=personio"), [second_id.as_str()]);
    assert_eq!(
        listed(&app, "source=personio&status=succeeded"),
        Vec::<String>::new()
    );

    let second_at = second["created_at"].as_str().unwrap();
    let third_at = third["created_at"].as_str().unwrap();
    assert_eq!(
        listed(&app, &format!("since={second_at}")),
        [third_id.as_str(), second_id.as_str()]
    );
    assert_eq!(
        listed(&app, &format!("until={second_at}")),
        [first_id.as_str()]
    );
    assert_eq!(
        listed(&app, &format!("since={second_at}&until={third_at}")),
        [second_id.as_str()]
    );
    assert_eq!(listed(&app, "since=2000-01-01").len(), 3);
    assert_eq!(listed(&app, "until=2000-01-01"), Vec::<String>::new());
}

#[test]
fn a_broken_envelope_is_422_pointing_at_each_problem_and_nothing_is_stored() {
    let app = spawn_app();
    let cases = [
        (
            json!({"mode": "everything", "dry_run": "yes"}),
            vec!["/mode", "/dry_run", "/users"],
        ),
        (
            json!({"users": [person("E1"), 3, "x"]}),
            vec!["/users/1", "/users/2"],
        ),
        (json!({"users": {"E1": person("E1")}}), vec!["/users"]),
        (
            json!({"mode": "full", "dry_run": 1, "users": [person("E1")]}),
            vec!["/dry_run"],
        ),
    ];
    for (body, expected) in cases {
        let problem = assert_problem(app.post_json("/v1/syncs", &body), 422);
        let pointers: Vec<&str> = problem["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("no errors in {problem}"))
            .iter()
            .map(|e| e["pointer"].as_str().unwrap())
            .collect();
        assert_eq!(pointers, expected, "{body}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("nothing was stored"),
            "{problem}"
        );
    }
    assert_eq!(app.get_json("/v1/syncs")["items"], json!([]));
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(app.users(""), Vec::<Value>::new());
}

#[test]
fn the_same_idempotency_key_and_body_return_the_first_run_with_200() {
    let app = spawn_app();
    let body = json!({"source": "hibob", "mode": "incremental", "users": [person("E1")]});
    let first = push_with_key(&app, "nightly-2026-11-25", &body);
    assert_eq!(first.status().as_u16(), 202);
    let first: Value = first.json().unwrap();
    let id = first["id"].as_str().unwrap();

    let replay = push_with_key(&app, "nightly-2026-11-25", &body);
    assert_eq!(replay.status().as_u16(), 200);
    assert_eq!(
        replay.headers()["location"],
        format!("/v1/syncs/{id}").as_str()
    );
    let replay: Value = replay.json().unwrap();
    assert_eq!(replay["id"], id);

    assert_eq!(listed(&app, ""), [id]);
    assert_eq!(app.wait_for_run(id)["counts"]["created"], 1);
    assert_eq!(app.users("").len(), 1);
}

#[test]
fn the_same_idempotency_key_with_another_body_is_422_and_stores_nothing() {
    let app = spawn_app();
    let first = push_with_key(&app, "k-1", &json!({"users": [person("E1")]}));
    assert_eq!(first.status().as_u16(), 202);
    let first: Value = first.json().unwrap();
    let other = push_with_key(&app, "k-1", &json!({"users": [person("E2")]}));
    let problem = assert_problem(other, 422);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key"),
        "{problem}"
    );
    assert_eq!(listed(&app, ""), [first["id"].as_str().unwrap()]);
    app.wait_for_run(first["id"].as_str().unwrap());
    let users = app.users("");
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["external_id"], "E1");
}

#[test]
fn different_idempotency_keys_make_different_runs() {
    let app = spawn_app();
    let body = json!({"users": [person("E1")]});
    let a: Value = push_with_key(&app, "a", &body).json().unwrap();
    let b = push_with_key(&app, "b", &body);
    assert_eq!(b.status().as_u16(), 202);
    let b: Value = b.json().unwrap();
    assert_ne!(a["id"], b["id"]);
    assert_eq!(listed(&app, "").len(), 2);
}

#[test]
fn an_idempotency_key_belongs_to_one_organization() {
    let app = spawn_app();
    let body = json!({"users": [person("E1")]});
    let mine: Value = push_with_key(&app, "shared", &body).json().unwrap();
    let (_, other_token) = app.other_organization();
    let theirs = app
        .client
        .post(app.url("/v1/syncs"))
        .bearer_auth(&other_token)
        .header("Idempotency-Key", "shared")
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(theirs.status().as_u16(), 202);
    let theirs: Value = theirs.json().unwrap();
    assert_ne!(mine["id"], theirs["id"]);
}

#[test]
fn a_dry_run_reports_planned_counts_and_leaves_the_directory_empty() {
    let app = spawn_app();
    let body = json!({"mode": "incremental", "dry_run": true,
        "users": [person("E1"), person("E2"), with(person("E3"), json!({"manager_external_id": "E1"}))]});
    let run = app.push_body(&body);
    assert_eq!(run["dry_run"], true);
    let run = app.wait_for_run(run["id"].as_str().unwrap());
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["dry_run"], true);
    assert_eq!(run["counts"]["created"], 3);
    let id = run["id"].as_str().unwrap();
    let created = app.events(id, "action=USER_CREATED");
    assert_eq!(created.len(), 3);
    let e3 = created.iter().find(|e| e["external_id"] == "E3").unwrap();
    assert!(
        e3["changes"]
            .as_array()
            .unwrap()
            .contains(&json!({"field": "manager_external_id", "old": null, "new": "E1"})),
        "{e3}"
    );
    assert_eq!(app.users(""), Vec::<Value>::new());

    let real = app.sync(
        "incremental",
        json!([person("E1"), person("E2"), person("E3")]),
    );
    assert_eq!(real["counts"]["created"], 3, "the dry run created nobody");
}

#[test]
fn a_dry_full_run_plans_archiving_but_archives_nobody() {
    let app = spawn_app();
    app.sync("incremental", json!([person("E1"), person("E2")]));
    let run = app.push_body(&json!({"mode": "full", "dry_run": true, "users": [person("E1")]}));
    let run = app.wait_for_run(run["id"].as_str().unwrap());
    assert_eq!(run["counts"]["archived"], 1);
    assert_eq!(run["counts"]["unchanged"], 1);
    assert_eq!(app.users("state=archived"), Vec::<Value>::new());
    assert_eq!(app.users("state=active").len(), 2);
}

#[test]
fn a_field_of_the_wrong_json_type_is_an_issue_of_its_record_not_a_failed_push() {
    let app = spawn_app();
    let response = app.post_json(
        "/v1/syncs",
        &json!({"users": [with(person("E1"), json!({"phone": 33612345678u64})), person("E2")]}),
    );
    assert_eq!(response.status().as_u16(), 202);
    let run: Value = response.json().unwrap();
    let run = app.wait_for_run(run["id"].as_str().unwrap());
    assert_eq!(run["status"], "succeeded_with_errors");
    assert_eq!(run["counts"]["created"], 1);
    assert_eq!(run["counts"]["skipped"], 1);
    let issues = app.events(run["id"].as_str().unwrap(), "kind=issue");
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_eq!(issues[0]["code"], "FIELD_TYPE_INVALID");
    assert_eq!(issues[0]["field"], "phone");
    assert_eq!(issues[0]["row"], 1);
    assert_eq!(issues[0]["external_id"], "E1");
    assert!(issues[0]["message"]
        .as_str()
        .unwrap()
        .contains("the number 33612345678"));
    let users = app.users("");
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["external_id"], "E2");
}

#[test]
fn keys_that_are_not_record_fields_are_logged_once_and_ignored() {
    let app = spawn_app();
    let run = app.sync(
        "incremental",
        json!([
            with(person("E1"), json!({"firstName": "Ada"})),
            with(person("E2"), json!({"firstName": "Bo"}))
        ]),
    );
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["counts"]["created"], 2);
    let logs = run["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 1, "{logs:?}");
    let message = logs[0]["message"].as_str().unwrap();
    assert!(
        message.contains("firstName") && message.contains("2 record(s)"),
        "{message}"
    );
}

#[test]
fn concurrent_pushes_with_one_idempotency_key_make_a_single_run() {
    let app = spawn_app();
    let body = json!({"users": [person("E1"), person("E2")]});
    let answers: Vec<(u16, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|_| {
                scope.spawn(|| {
                    let response = push_with_key(&app, "burst", &body);
                    let status = response.status().as_u16();
                    let run: Value = response.json().unwrap();
                    (status, run["id"].as_str().unwrap_or("").to_owned())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let first = &answers[0].1;
    assert!(answers.iter().all(|(_, id)| id == first), "{answers:?}");
    assert_eq!(
        answers.iter().filter(|(status, _)| *status == 202).count(),
        1,
        "{answers:?}"
    );
    assert_eq!(
        answers.iter().filter(|(status, _)| *status == 200).count(),
        5,
        "{answers:?}"
    );
    assert_eq!(listed(&app, ""), [first.as_str()]);
}

#[test]
fn a_key_used_with_a_refused_envelope_is_still_free_for_a_good_push() {
    let app = spawn_app();
    let refused = push_with_key(
        &app,
        "k-2",
        &json!({"mode": "sometimes", "users": [person("E1")]}),
    );
    assert_problem(refused, 422);
    let accepted = push_with_key(
        &app,
        "k-2",
        &json!({"mode": "full", "users": [person("E1")]}),
    );
    assert_eq!(accepted.status().as_u16(), 202);
}

#[test]
fn runs_of_an_organization_are_applied_one_at_a_time_in_arrival_order() {
    let app = spawn_app();
    let runs: Vec<Value> = ["Alpha", "Bravo", "Charlie"]
        .iter()
        .map(|name| {
            app.push(
                "incremental",
                json!([with(person("E1"), json!({"last_name": name}))]),
            )
        })
        .collect();
    let finished: Vec<Value> = runs
        .iter()
        .map(|run| app.wait_for_run(run["id"].as_str().unwrap()))
        .collect();
    assert_eq!(finished[0]["counts"]["created"], 1);
    assert_eq!(finished[1]["counts"]["updated"], 1);
    assert_eq!(finished[2]["counts"]["updated"], 1);
    assert!(finished[0]["finished_at"].as_str() <= finished[1]["started_at"].as_str());
    assert!(finished[1]["finished_at"].as_str() <= finished[2]["started_at"].as_str());
    assert_eq!(app.users("")[0]["last_name"], "Charlie");
}

#[test]
fn retry_runs_the_stored_push_again_against_todays_directory() {
    let app = spawn_app();
    let first = app.sync(
        "incremental",
        json!([
            person("E1"),
            with(person("E2"), json!({"manager_external_id": "E9"}))
        ]),
    );
    assert_eq!(first["counts"]["created"], 1);
    assert_eq!(first["counts"]["skipped"], 1);
    app.sync("incremental", json!([person("E9")]));

    let first_id = first["id"].as_str().unwrap();
    let response = app.post_json(&format!("/v1/syncs/{first_id}/retry"), &json!({}));
    assert_eq!(response.status().as_u16(), 202);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let retried: Value = response.json().unwrap();
    assert_eq!(
        location,
        format!("/v1/syncs/{}", retried["id"].as_str().unwrap())
    );
    assert_eq!(retried["retry_of"], first["id"]);
    assert_eq!(retried["mode"], "incremental");
    assert_eq!(retried["records"], 2);

    let retried = app.wait_for_run(retried["id"].as_str().unwrap());
    assert_eq!(retried["status"], "succeeded", "{retried}");
    assert_eq!(retried["counts"]["created"], 1, "E2 now has its manager");
    assert_eq!(retried["counts"]["unchanged"], 1);
}

#[test]
fn retry_needs_a_write_token_and_an_existing_run_of_the_organization() {
    let app = spawn_app();
    let run = app.sync("incremental", json!([person("E1")]));
    let path = format!("/v1/syncs/{}/retry", run["id"].as_str().unwrap());
    let reader = app.token("sync:read");
    assert_problem(app.post_json_as(&reader, &path, &json!({})), 403);
    let (_, other) = app.other_organization();
    assert_problem(app.post_json_as(&other, &path, &json!({})), 404);
    assert_problem(app.post_json("/v1/syncs/nope/retry", &json!({})), 404);
}
