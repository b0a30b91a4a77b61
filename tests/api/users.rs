//! The directory over HTTP: listing and searching users, reading one, setting upcoming trips,
//! inviting by hand and revoking invitations.

use std::collections::BTreeSet;

use reqwest::blocking::Response;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, person, spawn_app, with, TestApp};

fn patch(app: &TestApp, user_id: &str, body: &Value) -> Response {
    app.request(Method::PATCH, &format!("/v1/users/{user_id}"))
        .json(body)
        .send()
        .unwrap()
}

fn invite(app: &TestApp, body: &Value) -> Response {
    app.post_json("/v1/users/invitations", body)
}

fn revoke(app: &TestApp, user_id: &str) -> Response {
    app.request(
        Method::POST,
        &format!("/v1/users/{user_id}/revoke-invitation"),
    )
    .send()
    .unwrap()
}

fn external_ids(users: &[Value]) -> BTreeSet<String> {
    users
        .iter()
        .map(|u| u["external_id"].as_str().unwrap_or("-").to_owned())
        .collect()
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|id| (*id).to_owned()).collect()
}

fn user_id(app: &TestApp, external_id: &str) -> String {
    app.users("")
        .into_iter()
        .find(|u| u["external_id"] == external_id)
        .and_then(|u| u["id"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("no user {external_id}"))
}

/// Four active people, one archived, one invited by hand.
fn directory(app: &TestApp) {
    app.sync(
        "incremental",
        json!([
            with(
                person("E1"),
                json!({"first_name": "Zoë", "last_name": "Ångström"})
            ),
            with(
                person("E2"),
                json!({"first_name": "José", "last_name": "Ramírez", "manager_external_id": "E1"})
            ),
            person("E3"),
            person("E4"),
            person("E5"),
        ]),
    );
    app.sync(
        "incremental",
        json!([with(
            person("E5"),
            json!({"employment_status": "terminated"})
        )]),
    );
    let response = invite(
        app,
        &json!({"email": "grace@example.com", "first_name": "Grace", "last_name": "Hopper"}),
    );
    assert_eq!(response.status().as_u16(), 201);
}

#[test]
fn users_are_listed_in_every_state_unless_a_state_is_asked() {
    let app = spawn_app();
    directory(&app);
    assert_eq!(app.users("").len(), 6);
    assert_eq!(
        external_ids(&app.users("state=active")),
        set(&["E1", "E2", "E3", "E4"])
    );
    assert_eq!(external_ids(&app.users("state=archived")), set(&["E5"]));
    let invited = app.users("state=invited");
    assert_eq!(invited.len(), 1);
    assert_eq!(invited[0]["email"], "grace@example.com");
    assert_eq!(invited[0]["external_id"], Value::Null);
    assert_eq!(app.users("state=pending_archive"), Vec::<Value>::new());
}

#[test]
fn users_are_searched_by_name_email_or_external_id_ignoring_case_and_accents() {
    let app = spawn_app();
    directory(&app);
    assert_eq!(external_ids(&app.users("q=zoe")), set(&["E1"]));
    assert_eq!(external_ids(&app.users("q=ANGSTROM")), set(&["E1"]));
    assert_eq!(external_ids(&app.users("q=ram%C3%ADrez")), set(&["E2"]));
    assert_eq!(external_ids(&app.users("q=e3%40example.com")), set(&["E3"]));
    assert_eq!(external_ids(&app.users("q=e4")), set(&["E4"]));
    assert_eq!(app.users("q=grace")[0]["state"], "invited");
    assert_eq!(
        external_ids(&app.users("q=e5&state=archived")),
        set(&["E5"])
    );
    assert_eq!(app.users("q=e5&state=active"), Vec::<Value>::new());
    assert_eq!(
        app.users("q=%25"),
        Vec::<Value>::new(),
        "% is not a wildcard"
    );
}

#[test]
fn users_are_paginated_with_cursors_without_gaps_or_repeats() {
    let app = spawn_app();
    directory(&app);
    let mut pages = Vec::new();
    let mut path = "/v1/users?limit=4".to_owned();
    loop {
        let page = app.get_json(&path);
        pages.push(page["items"].as_array().unwrap().clone());
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/users?limit=4&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [4, 2]);
    let ids: Vec<String> = pages
        .concat()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect();
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), 6);
    let all: Vec<String> = app
        .users("")
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, all);
}

#[test]
fn bad_user_list_parameters_are_400() {
    let app = spawn_app();
    for query in [
        "state=deleted",
        "limit=0",
        "cursor=nope",
        &format!("q={}", "x".repeat(201)),
    ] {
        assert_problem(app.get(&format!("/v1/users?{query}")), 400);
    }
}

#[test]
fn a_user_is_read_with_the_external_id_of_their_manager() {
    let app = spawn_app();
    directory(&app);
    let manager_id = user_id(&app, "E1");
    let user = app.get_json(&format!("/v1/users/{}", user_id(&app, "E2")));
    assert_eq!(user["external_id"], "E2");
    assert_eq!(user["first_name"], "José");
    assert_eq!(user["manager_id"], manager_id);
    assert_eq!(user["manager_external_id"], "E1");
    assert_eq!(user["state"], "active");
    assert_eq!(user["role"], "member");
    assert_eq!(user["start_date"], "2024-01-15");
    assert_eq!(user["teams"], json!([]));
    assert_eq!(user["custom_fields"], json!({}));
    assert_eq!(user["upcoming_trips"], 0);
    let boss = app.get_json(&format!("/v1/users/{manager_id}"));
    assert_eq!(boss["manager_external_id"], Value::Null);
}

#[test]
fn an_unknown_user_is_404() {
    let app = spawn_app();
    assert_problem(
        app.get("/v1/users/0193a6d2-1c4e-7d2a-9f3b-5e6a7b8c9d0e"),
        404,
    );
    assert_problem(patch(&app, "nobody", &json!({"upcoming_trips": 1})), 404);
    assert_problem(revoke(&app, "nobody"), 404);
}

#[test]
fn upcoming_trips_are_set_by_patch() {
    let app = spawn_app();
    directory(&app);
    let id = user_id(&app, "E3");
    let before = app.get_json(&format!("/v1/users/{id}"));
    let response = patch(&app, &id, &json!({"upcoming_trips": 3}));
    assert_eq!(response.status().as_u16(), 200);
    let changed: Value = response.json().unwrap();
    assert_eq!(changed["upcoming_trips"], 3);
    assert_eq!(changed["id"], id.as_str());
    let stored = app.get_json(&format!("/v1/users/{id}"));
    assert_eq!(stored["upcoming_trips"], 3);
    assert!(stored["updated_at"].as_str() > before["updated_at"].as_str());
}

#[test]
fn an_invalid_patch_is_refused_and_changes_nothing() {
    let app = spawn_app();
    directory(&app);
    let id = user_id(&app, "E3");
    let problem = assert_problem(patch(&app, &id, &json!({"upcoming_trips": -1})), 422);
    assert_eq!(problem["errors"][0]["pointer"], "/upcoming_trips");
    assert_problem(
        patch(&app, &id, &json!({"upcoming_trips": 2, "first_name": "X"})),
        422,
    );
    assert_problem(patch(&app, &id, &json!({"upcoming_trips": "2"})), 422);
    assert_problem(patch(&app, &id, &json!({})), 422);
    let wrong_type = app
        .request(Method::PATCH, &format!("/v1/users/{id}"))
        .header("Content-Type", "text/plain")
        .body("{\"upcoming_trips\": 2}")
        .send()
        .unwrap();
    assert_problem(wrong_type, 415);
    let user = app.get_json(&format!("/v1/users/{id}"));
    assert_eq!(user["upcoming_trips"], 0);
    assert_eq!(user["first_name"], "First");
}

#[test]
fn only_an_admin_may_change_a_user() {
    let app = spawn_app();
    directory(&app);
    let id = user_id(&app, "E3");
    let token = app.token("sync:write");
    let response = app
        .client
        .patch(app.url(&format!("/v1/users/{id}")))
        .bearer_auth(&token)
        .json(&json!({"upcoming_trips": 1}))
        .send()
        .unwrap();
    assert_problem(response, 403);
    assert_eq!(
        app.get_json(&format!("/v1/users/{id}"))["upcoming_trips"],
        0
    );
}

#[test]
fn an_invitation_creates_an_invited_member_with_a_location() {
    let app = spawn_app();
    let response = invite(
        &app,
        &json!({"email": " Grace@Example.com ", "first_name": "Grace", "last_name": "Hopper"}),
    );
    assert_eq!(response.status().as_u16(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let invited: Value = response.json().unwrap();
    assert_eq!(
        location,
        format!("/v1/users/{}", invited["id"].as_str().unwrap())
    );
    assert_eq!(invited["state"], "invited");
    assert_eq!(invited["role"], "member");
    assert_eq!(invited["email"], "Grace@Example.com");
    assert_eq!(app.get_json(&location)["email"], "Grace@Example.com");

    let guest = invite(
        &app,
        &json!({"email": "g@example.com", "first_name": "G", "last_name": "H", "role": "guest"}),
    );
    let guest: Value = guest.json().unwrap();
    assert_eq!(guest["role"], "guest");
    assert_eq!(guest["approval_process"], "all_trips");
}

#[test]
fn an_invitation_with_invalid_fields_is_422_pointing_at_them() {
    let app = spawn_app();
    let problem = assert_problem(
        invite(
            &app,
            &json!({"email": "not-an-email", "first_name": "Grace", "last_name": "Hopper"}),
        ),
        422,
    );
    let pointers: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(pointers, ["/email"]);
    let problem = assert_problem(
        invite(
            &app,
            &json!({"email": "a@example.com", "first_name": " ", "last_name": "x\ny"}),
        ),
        422,
    );
    let pointers: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(pointers, ["/first_name", "/last_name"]);
    assert_problem(
        invite(&app, &json!({"email": "a@example.com", "first_name": "A"})),
        422,
    );
    assert_problem(
        invite(
            &app,
            &json!({"email": "a@example.com", "first_name": "A", "last_name": "B", "role": "owner"}),
        ),
        422,
    );
    assert_eq!(app.users(""), Vec::<Value>::new());
}

#[test]
fn an_invitation_for_an_email_already_in_the_directory_is_409() {
    let app = spawn_app();
    app.sync("incremental", json!([person("E1")]));
    let problem = assert_problem(
        invite(
            &app,
            &json!({"email": "E1@EXAMPLE.com", "first_name": "A", "last_name": "B"}),
        ),
        409,
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("E1@EXAMPLE.com"),
        "{problem}"
    );
    let first = invite(
        &app,
        &json!({"email": "new@example.com", "first_name": "A", "last_name": "B"}),
    );
    assert_eq!(first.status().as_u16(), 201);
    assert_problem(
        invite(
            &app,
            &json!({"email": "new@example.com", "first_name": "C", "last_name": "D"}),
        ),
        409,
    );
    assert_eq!(app.users("").len(), 2);
}

#[test]
fn revoking_removes_an_invited_user_and_only_an_invited_one() {
    let app = spawn_app();
    app.sync("incremental", json!([person("E1")]));
    let active = user_id(&app, "E1");
    let problem = assert_problem(revoke(&app, &active), 409);
    assert!(
        problem["detail"].as_str().unwrap().contains("active"),
        "{problem}"
    );
    assert_eq!(
        app.get_json(&format!("/v1/users/{active}"))["state"],
        "active"
    );

    let invited: Value = invite(
        &app,
        &json!({"email": "g@example.com", "first_name": "G", "last_name": "H"}),
    )
    .json()
    .unwrap();
    let invited_id = invited["id"].as_str().unwrap();
    assert_eq!(revoke(&app, invited_id).status().as_u16(), 204);
    assert_problem(app.get(&format!("/v1/users/{invited_id}")), 404);
    assert_problem(revoke(&app, invited_id), 404);
    assert_eq!(app.users("").len(), 1);
}

#[test]
fn another_organization_can_neither_change_nor_revoke_my_users() {
    let app = spawn_app();
    app.sync("incremental", json!([person("E1")]));
    let invited: Value = invite(
        &app,
        &json!({"email": "g@example.com", "first_name": "G", "last_name": "H"}),
    )
    .json()
    .unwrap();
    let (_, other) = app.other_organization();
    let mine = user_id(&app, "E1");
    let response = app
        .client
        .patch(app.url(&format!("/v1/users/{mine}")))
        .bearer_auth(&other)
        .json(&json!({"upcoming_trips": 9}))
        .send()
        .unwrap();
    assert_problem(response, 404);
    let response = app
        .client
        .post(app.url(&format!(
            "/v1/users/{}/revoke-invitation",
            invited["id"].as_str().unwrap()
        )))
        .bearer_auth(&other)
        .send()
        .unwrap();
    assert_problem(response, 404);
    let theirs = app
        .client
        .post(app.url("/v1/users/invitations"))
        .bearer_auth(&other)
        .json(&json!({"email": "g@example.com", "first_name": "G", "last_name": "H"}))
        .send()
        .unwrap();
    assert_eq!(
        theirs.status().as_u16(),
        201,
        "e-mail addresses are unique per organization"
    );
    assert_eq!(
        app.get_json(&format!("/v1/users/{mine}"))["upcoming_trips"],
        0
    );
    assert_eq!(app.users("state=invited").len(), 1);
}
