//! A run's report: updates with their changes, relationship updates, filters, pagination, and
//! a summary that agrees with the report.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::helpers::{assert_problem, person, spawn_app, with, TestApp};

fn id(run: &Value) -> &str {
    run["id"].as_str().unwrap()
}

fn user_id(app: &TestApp, external_id: &str) -> String {
    app.users("")
        .into_iter()
        .find(|u| u["external_id"] == external_id)
        .and_then(|u| u["id"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("no user {external_id}"))
}

fn external_ids(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["external_id"].as_str().unwrap_or(""))
        .collect()
}

#[test]
fn an_update_lists_each_changed_field_old_and_new() {
    let app = spawn_app();
    let original = with(
        person("E1"),
        json!({"first_name": "Marie", "last_name": "Curie", "phone": "+33 612345678", "gender": "F"}),
    );
    app.sync("incremental", json!([original.clone()]));
    let run = app.sync(
        "incremental",
        json!([with(
            original,
            json!({"last_name": "Skłodowska-Curie", "phone": "+48 221234567", "gender": null})
        )]),
    );
    assert_eq!(run["counts"]["updated"], 1);
    let updates = app.events(id(&run), "kind=update");
    assert_eq!(updates.len(), 1, "{updates:?}");
    let update = &updates[0];
    assert_eq!(update["action"], "USER_UPDATED");
    assert_eq!(update["entity"], "user");
    assert_eq!(update["row"], 1);
    assert_eq!(update["user_id"], user_id(&app, "E1"));
    assert_eq!(update["code"], Value::Null);
    assert_eq!(update["help"], Value::Null);
    assert_eq!(
        update["changes"],
        json!([
            {"field": "last_name", "old": "Curie", "new": "Skłodowska-Curie"},
            {"field": "gender", "old": "F", "new": null},
            {"field": "phone", "old": "+33 612345678", "new": "+48 221234567"},
        ])
    );
}

#[test]
fn a_field_absent_from_the_record_keeps_its_value() {
    let app = spawn_app();
    app.sync(
        "incremental",
        json!([with(person("E1"), json!({"phone": "+33 612345678"}))]),
    );
    let run = app.sync("incremental", json!([person("E1")]));
    assert_eq!(run["counts"]["unchanged"], 1);
    assert_eq!(app.users("")[0]["phone"], "+33 612345678");
}

#[test]
fn a_user_creation_lists_the_values_it_was_created_with() {
    let app = spawn_app();
    let run = app.sync(
        "incremental",
        json!([with(
            person("E1"),
            json!({"first_name": "Ada", "phone": "+44 2071838750"})
        )]),
    );
    let created = app.events(id(&run), "action=USER_CREATED");
    let changes = created[0]["changes"].as_array().unwrap();
    for expected in [
        json!({"field": "email", "old": null, "new": "e1@example.com"}),
        json!({"field": "first_name", "old": null, "new": "Ada"}),
        json!({"field": "phone", "old": null, "new": "+44 2071838750"}),
        json!({"field": "start_date", "old": null, "new": "2024-01-15"}),
        json!({"field": "role", "old": null, "new": "member"}),
    ] {
        assert!(
            changes.contains(&expected),
            "{expected} missing from {changes:?}"
        );
    }
    assert!(changes.iter().all(|c| !c["new"].is_null()), "{changes:?}");
}

#[test]
fn an_unchanged_push_counts_unchanged_and_reports_no_update() {
    let app = spawn_app();
    let users = json!([
        with(person("E1"), json!({"teams": ["Sales"]})),
        with(
            person("E2"),
            json!({"manager_external_id": "E1", "phone": "+33 612345678"})
        ),
        person("E3"),
    ]);
    app.sync("incremental", users.clone());
    let before = app.users("");
    let run = app.sync("incremental", users);
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["counts"]["unchanged"], 3);
    assert_eq!(run["counts"]["updated"], 0);
    assert_eq!(run["counts"]["created"], 0);
    assert_eq!(app.events(id(&run), ""), Vec::<Value>::new());
    assert_eq!(app.users(""), before, "not even updated_at moved");
}

#[test]
fn a_new_user_has_one_line_with_its_manager_and_teams_and_later_changes_get_their_own() {
    let app = spawn_app();
    let run = app.sync(
        "incremental",
        json!([
            with(person("E1"), json!({"teams": ["Sales"]})),
            with(
                person("E2"),
                json!({"manager_external_id": "E1", "teams": ["Sales", "Ops"]})
            ),
        ]),
    );
    let teams_created = app.events(id(&run), "action=TEAM_CREATED");
    let names: BTreeSet<&str> = teams_created
        .iter()
        .map(|e| e["team"].as_str().unwrap())
        .collect();
    assert_eq!(names, BTreeSet::from(["Ops", "Sales"]));
    for event in &teams_created {
        assert_eq!(event["entity"], "team");
        assert_eq!(
            event["changes"],
            json!([{"field": "name", "old": null, "new": event["team"]}])
        );
    }
    assert_eq!(
        app.events(id(&run), "action=TEAM_ASSIGNED"),
        Vec::<Value>::new()
    );
    assert_eq!(
        app.events(id(&run), "action=MANAGER_ASSIGNED"),
        Vec::<Value>::new()
    );
    let created = app.events(id(&run), "action=USER_CREATED");
    assert_eq!(external_ids(&created), ["E1", "E2"]);
    let e2_changes = created[1]["changes"].as_array().unwrap();
    assert!(
        e2_changes.contains(&json!({"field": "teams", "old": null, "new": ["Ops", "Sales"]})),
        "{e2_changes:?}"
    );
    assert!(
        e2_changes.contains(&json!({"field": "manager_external_id", "old": null, "new": "E1"})),
        "{e2_changes:?}"
    );

    app.sync("incremental", json!([person("E3")]));
    let run = app.sync(
        "incremental",
        json!([with(
            person("E2"),
            json!({"manager_external_id": "E3", "teams": ["sales"]})
        )]),
    );
    assert_eq!(
        app.events(id(&run), "action=TEAM_CREATED"),
        Vec::<Value>::new(),
        "teams match without case"
    );
    let managers = app.events(id(&run), "action=MANAGER_ASSIGNED");
    assert_eq!(
        managers[0]["changes"],
        json!([{"field": "manager_external_id", "old": "E1", "new": "E3"}])
    );
    let teams = app.events(id(&run), "action=TEAM_ASSIGNED");
    assert_eq!(
        teams[0]["changes"],
        json!([{"field": "teams", "old": ["Ops", "Sales"], "new": ["Sales"]}])
    );
    assert_eq!(
        app.events(id(&run), "action=USER_UPDATED"),
        Vec::<Value>::new()
    );
    assert_eq!(run["counts"]["updated"], 1);
}

/// Three people, a team each, and a missing manager.
fn varied_run(app: &TestApp) -> Value {
    app.sync(
        "incremental",
        json!([
            with(
                person("E1"),
                json!({"first_name": "Zoë", "last_name": "Ångström", "teams": ["Sales"]})
            ),
            with(
                person("E2"),
                json!({"first_name": "José", "last_name": "Ramírez", "manager_external_id": "E1"})
            ),
            with(
                person("E3"),
                json!({"first_name": "Ada", "manager_external_id": "E404"})
            ),
        ]),
    )
}

#[test]
fn events_are_filtered_by_kind_entity_action_and_code() {
    let app = spawn_app();
    let run = varied_run(&app);
    let all = app.events(id(&run), "");
    let seqs: Vec<i64> = all.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "planned order: {seqs:?}"
    );

    let issues = app.events(id(&run), "kind=issue");
    assert_eq!(external_ids(&issues), ["E3"]);
    let updates = app.events(id(&run), "kind=update");
    assert_eq!(updates.len() + issues.len(), all.len());
    assert!(updates.iter().all(|e| e["kind"] == "update"));

    let teams = app.events(id(&run), "entity=team");
    assert_eq!(teams.len(), 1);
    assert_eq!(teams[0]["action"], "TEAM_CREATED");
    assert_eq!(app.events(id(&run), "entity=user").len(), all.len() - 1);

    assert_eq!(
        external_ids(&app.events(id(&run), "action=USER_CREATED")),
        ["E1", "E2"]
    );
    assert_eq!(
        external_ids(&app.events(id(&run), "code=MANAGER_DOES_NOT_EXIST")),
        ["E3"]
    );
    assert_eq!(
        app.events(id(&run), "code=MANAGER_CYCLE"),
        Vec::<Value>::new()
    );
    assert_eq!(
        app.events(id(&run), "kind=update&code=MANAGER_DOES_NOT_EXIST"),
        Vec::<Value>::new()
    );
    assert_eq!(
        external_ids(&app.events(id(&run), "kind=update&entity=user&action=USER_CREATED")),
        ["E1", "E2"]
    );
    assert_eq!(
        app.events(id(&run), "kind=update&entity=user&action=MANAGER_ASSIGNED"),
        Vec::<Value>::new()
    );
}

#[test]
fn the_search_ignores_case_and_accents_and_covers_names_emails_ids_and_teams() {
    let app = spawn_app();
    let run = varied_run(&app);
    let zoe = app.events(id(&run), "q=zoe");
    assert!(!zoe.is_empty());
    assert!(zoe.iter().all(|e| e["first_name"] == "Zoë"), "{zoe:?}");
    assert_eq!(app.events(id(&run), "q=ZO%C3%8B").len(), zoe.len());
    assert_eq!(app.events(id(&run), "q=angstrom").len(), zoe.len());
    assert!(app
        .events(id(&run), "q=RAMIREZ")
        .iter()
        .all(|e| e["external_id"] == "E2"));
    assert_eq!(
        external_ids(&app.events(id(&run), "q=e3%40example&kind=issue")),
        ["E3"]
    );
    let by_team = app.events(id(&run), "q=sales&entity=team");
    assert_eq!(by_team.len(), 1);
    assert_eq!(
        app.events(id(&run), "q=nobody-like-this"),
        Vec::<Value>::new()
    );
    assert_eq!(
        app.events(id(&run), "q=%25"),
        Vec::<Value>::new(),
        "% is not a wildcard"
    );
    assert_eq!(
        app.events(id(&run), "q=_"),
        Vec::<Value>::new(),
        "_ is not a wildcard"
    );
}

#[test]
fn a_report_of_more_than_1000_events_is_paginated_with_cursors() {
    let app = spawn_app();
    let users: Vec<Value> = (0..1050).map(|i| person(&format!("E{i:04}"))).collect();
    let run = app.sync("incremental", json!(users));
    assert_eq!(run["counts"]["created"], 1050);

    let first = app.get_json(&format!("/v1/syncs/{}/events?limit=1000", id(&run)));
    assert_eq!(first["items"].as_array().unwrap().len(), 1000);
    let cursor = first["next_cursor"].as_str().expect("a second page");
    let second = app.get_json(&format!(
        "/v1/syncs/{}/events?limit=1000&cursor={cursor}",
        id(&run)
    ));
    assert_eq!(second["items"].as_array().unwrap().len(), 50);
    assert_eq!(second["next_cursor"], Value::Null);

    let seqs: Vec<i64> = [&first, &second]
        .iter()
        .flat_map(|page| page["items"].as_array().unwrap().iter())
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=1050).collect::<Vec<i64>>());

    let default_page = app.get_json(&format!("/v1/syncs/{}/events", id(&run)));
    assert_eq!(
        default_page["items"].as_array().unwrap().len(),
        50,
        "default limit"
    );
    let filtered = app.events(id(&run), "q=e104");
    assert_eq!(
        external_ids(&filtered),
        (1040..1050).map(|i| format!("E{i}")).collect::<Vec<_>>()
    );
}

#[test]
fn cursors_also_page_through_a_filtered_report() {
    let app = spawn_app();
    let users: Vec<Value> = (0..30)
        .map(|i| match i % 3 {
            0 => with(person(&format!("E{i}")), json!({"gender": "Q"})),
            _ => person(&format!("E{i}")),
        })
        .collect();
    let run = app.sync("incremental", json!(users));
    let mut seen = Vec::new();
    let mut path = format!("/v1/syncs/{}/events?kind=issue&limit=4", id(&run));
    loop {
        let page = app.get_json(&path);
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 4);
        seen.extend(items.iter().map(|e| e["row"].as_i64().unwrap()));
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                path = format!(
                    "/v1/syncs/{}/events?kind=issue&limit=4&cursor={cursor}",
                    id(&run)
                )
            }
            None => break,
        }
    }
    assert_eq!(seen, (0..10).map(|i| i * 3 + 1).collect::<Vec<i64>>());
}

#[test]
fn invalid_report_filters_are_400_problems() {
    let app = spawn_app();
    let run = varied_run(&app);
    let other = app.sync("incremental", json!([person("E9")]));
    let foreign_cursor = app.get_json(&format!("/v1/syncs/{}/events?limit=1", id(&run)))
        ["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let long_q = format!("q={}", "a".repeat(201));
    let cursor_of_another_run = format!("cursor={foreign_cursor}");
    let mut cases: Vec<(&str, &str)> = [
        "kind=change",
        "entity=person",
        "action=USER_DELETED",
        "action=user_created",
        "limit=0",
        "limit=1001",
        "limit=ten",
        "cursor=garbage",
        &long_q,
        "q=a%0Ab",
    ]
    .into_iter()
    .map(|query| (id(&run), query))
    .collect();
    cases.push((id(&other), &cursor_of_another_run));
    for (run_id, query) in cases {
        let problem = assert_problem(app.get(&format!("/v1/syncs/{run_id}/events?{query}")), 400);
        assert!(!problem["detail"].as_str().unwrap().is_empty(), "{query}");
    }
    assert_problem(
        app.get("/v1/syncs/00000000-0000-0000-0000-000000000000/events"),
        404,
    );
}

#[test]
fn the_summary_counts_agree_with_the_report() {
    let app = spawn_app();
    app.sync(
        "incremental",
        json!([
            person("E1"),
            person("E2"),
            person("E3"),
            person("E4"),
            person("E5")
        ]),
    );
    let pending = user_id(&app, "E4");
    app.set_upcoming_trips(&pending, 1);

    let run = app.sync(
        "full",
        json!([
            /* 1 */ person("E1"),
            /* 2 */ with(person("E2"), json!({"last_name": "Renamed"})),
            /* 3 */ with(person("E5"), json!({"teams": ["Sales", 42]})),
            /* 4 */ person("E6"),
            /* 5 */ with(person("E7"), json!({"date_of_birth": "1990-01-01"})),
            /* 6 */ with(person("E8"), json!({"email": "same@example.com"})),
            /* 7 */ with(person("E9"), json!({"email": "Same@example.com"})),
        ]),
    );
    let counts = &run["counts"];
    assert_eq!(counts["created"], 1, "E6: {run}");
    assert_eq!(
        counts["updated"], 3,
        "E2, E5's teams and E4 waiting for its trip: {run}"
    );
    assert_eq!(counts["archived"], 1, "E3: {run}");
    assert_eq!(counts["unchanged"], 1, "E1: {run}");
    assert_eq!(counts["skipped"], 3, "E7, E8, E9: {run}");
    assert_eq!(counts["duplicates"], 2, "E8, E9: {run}");
    assert_eq!(counts["warnings"], 2, "E5's team and E4's trip: {run}");
    assert_eq!(run["status"], "succeeded_with_errors");

    let events = app.events(id(&run), "");
    let count = |pred: &dyn Fn(&Value) -> bool| events.iter().filter(|e| pred(e)).count();
    assert_eq!(count(&|e| e["action"] == "USER_CREATED"), 1);
    assert_eq!(count(&|e| e["action"] == "USER_ARCHIVED"), 1);
    let updated: BTreeSet<&str> = events
        .iter()
        .filter(|e| {
            matches!(
                e["action"].as_str(),
                Some("USER_UPDATED" | "MANAGER_ASSIGNED" | "TEAM_ASSIGNED")
            )
        })
        .map(|e| e["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(updated.len(), 3);
    let skipped: BTreeSet<i64> = events
        .iter()
        .filter(|e| e["severity"] == "error")
        .map(|e| e["row"].as_i64().unwrap())
        .collect();
    assert_eq!(skipped, BTreeSet::from([5, 6, 7]));

    let issues = &run["issues"];
    let issue_events: Vec<&Value> = events.iter().filter(|e| e["kind"] == "issue").collect();
    assert_eq!(issues["total"], issue_events.len() as u64);
    assert_eq!(issues["total"], 5);
    assert_eq!(issues["errors"], 3);
    assert_eq!(issues["warnings"], 2);
    let affected: BTreeSet<String> = issue_events
        .iter()
        .map(|e| match e["row"].as_i64() {
            Some(row) => format!("row {row}"),
            None => e["user_id"].as_str().unwrap().to_owned(),
        })
        .collect();
    assert_eq!(issues["users_affected"], affected.len() as u64);
    assert_eq!(issues["users_affected"], 5);
    assert_eq!(issues["teams_affected"], 1);
}

#[test]
fn a_team_named_twice_in_different_cases_is_created_once() {
    let app = spawn_app();
    let run = app.sync(
        "incremental",
        json!([
            with(person("E1"), json!({"teams": ["Customer Success"]})),
            with(
                person("E2"),
                json!({"teams": ["customer success", "CUSTOMER SUCCESS"]})
            ),
        ]),
    );
    let created = app.events(id(&run), "action=TEAM_CREATED");
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(created[0]["team"], "Customer Success");
    for user in app.users("") {
        assert_eq!(user["teams"], json!(["Customer Success"]), "{user}");
    }
}
