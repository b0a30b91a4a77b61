use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{assert_problem, person, spawn_app, spawn_app_with};

#[test]
fn requests_without_a_token_are_401_with_a_bearer_challenge() {
    let app = spawn_app();
    let response = app.client.get(app.url("/v1/syncs")).send().unwrap();
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"hris-sync\""
    );
    let problem = assert_problem(response, 401);
    assert!(problem["detail"].as_str().unwrap().contains("Bearer"));
}

#[test]
fn malformed_authorization_headers_are_401() {
    let app = spawn_app();
    for header in [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer ",
        &app.admin_token.clone(),
        "Token abc",
    ] {
        let response = app
            .client
            .get(app.url("/v1/syncs"))
            .header("Authorization", header)
            .send()
            .unwrap();
        assert_problem(response, 401);
    }
}

#[test]
fn unknown_tokens_are_401() {
    let app = spawn_app();
    let forged = format!("hsk_{}", "0".repeat(64));
    assert_problem(app.get_as(&forged, "/v1/syncs"), 401);
}

#[test]
fn a_revoked_token_stops_working_within_the_token_cache_time() {
    let app = spawn_app_with(|config| config.token_cache_ttl = Duration::from_millis(300));
    let token = app.token("sync:read");
    assert_eq!(app.get_as(&token, "/v1/syncs").status().as_u16(), 200);
    let mut conn = hris_sync::store::connect(&app.database_url, 1)
        .unwrap()
        .get()
        .unwrap();
    let listed = hris_sync::store::tokens::list(&mut conn, &app.organization_id).unwrap();
    let row = listed.iter().find(|t| t.name == "test").unwrap();
    hris_sync::store::tokens::revoke(&mut conn, &row.id).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    assert_problem(app.get_as(&token, "/v1/syncs"), 401);
}

#[test]
fn tokens_are_stored_only_as_hashes_and_record_their_last_use_in_the_background() {
    let app = spawn_app_with(|config| {
        config.token_use_flush_interval = Duration::from_millis(100);
    });
    app.get("/v1/syncs");
    let mut conn = hris_sync::store::connect(&app.database_url, 1)
        .unwrap()
        .get()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let listed = loop {
        let listed = hris_sync::store::tokens::list(&mut conn, &app.organization_id).unwrap();
        if listed[0].last_used_at.is_some() || Instant::now() > deadline {
            break listed;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(listed.len(), 1);
    assert_ne!(listed[0].token_hash, app.admin_token);
    assert!(!listed[0].token_hash.contains(&app.admin_token[4..]));
    assert!(listed[0].last_used_at.is_some());
}

#[test]
fn a_read_token_can_read_but_not_push() {
    let app = spawn_app();
    let token = app.token("sync:read");
    assert_eq!(app.get_as(&token, "/v1/syncs").status().as_u16(), 200);
    assert_eq!(app.get_as(&token, "/v1/error-codes").status().as_u16(), 200);
    let response = app.post_json_as(&token, "/v1/syncs", &json!({"users": [person("E1")]}));
    let problem = assert_problem(response, 403);
    assert!(problem["detail"].as_str().unwrap().contains("sync:write"));
}

#[test]
fn a_write_token_can_push_but_not_administer() {
    let app = spawn_app();
    let token = app.token("sync:write");
    let response = app.post_json_as(&token, "/v1/syncs", &json!({"users": [person("E1")]}));
    assert_eq!(response.status().as_u16(), 202);
    let invitation = json!({"email": "new@example.com", "first_name": "N", "last_name": "E"});
    assert_problem(
        app.post_json_as(&token, "/v1/users/invitations", &invitation),
        403,
    );
}

#[test]
fn another_organizations_run_is_404_never_403() {
    let app = spawn_app();
    let run = app.push("incremental", json!([person("E1")]));
    let (_, other_token) = app.other_organization();
    let id = run["id"].as_str().unwrap();
    assert_problem(app.get_as(&other_token, &format!("/v1/syncs/{id}")), 404);
    assert_problem(
        app.get_as(&other_token, &format!("/v1/syncs/{id}/events")),
        404,
    );
    let listed: serde_json::Value = app.get_as(&other_token, "/v1/syncs").json().unwrap();
    assert_eq!(listed["items"], json!([]));
}

#[test]
fn another_organizations_users_are_invisible() {
    let app = spawn_app();
    let run = app.sync("incremental", json!([person("E1")]));
    assert_eq!(run["counts"]["created"], 1);
    let user_id = app.users("")[0]["id"].as_str().unwrap().to_owned();
    let (_, other_token) = app.other_organization();
    assert_problem(
        app.get_as(&other_token, &format!("/v1/users/{user_id}")),
        404,
    );
    let listed: serde_json::Value = app.get_as(&other_token, "/v1/users").json().unwrap();
    assert_eq!(listed["items"], json!([]));
}
