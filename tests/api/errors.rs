//! Every error class is RFC 9457 problem+json, including those actix produces by itself.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{assert_problem, spawn_app, spawn_app_with};

#[test]
fn unknown_paths_are_404_problems() {
    let app = spawn_app();
    assert_problem(app.get("/v1/nothing-here"), 404);
    assert_problem(app.client.get(app.url("/")).send().unwrap(), 404);
}

#[test]
fn a_known_path_with_a_wrong_method_is_405_with_allow() {
    let app = spawn_app();
    let response = app.request(Method::DELETE, "/v1/syncs").send().unwrap();
    assert_eq!(response.headers()["allow"], "GET, POST");
    assert_problem(response, 405);
    let response = app
        .request(Method::PUT, "/v1/syncs/abc/events")
        .send()
        .unwrap();
    assert_eq!(response.headers()["allow"], "GET");
    assert_problem(response, 405);
    let response = app.request(Method::POST, "/healthz").send().unwrap();
    assert_problem(response, 405);
}

#[test]
fn malformed_json_is_422_for_pushes_and_400_elsewhere() {
    let app = spawn_app();
    let push = app
        .request(Method::POST, "/v1/syncs")
        .header("Content-Type", "application/json")
        .body("{\"users\": [")
        .send()
        .unwrap();
    let problem = assert_problem(push, 422);
    assert_eq!(problem["errors"][0]["pointer"], "");
    let user_patch = app
        .request(Method::POST, "/v1/users/invitations")
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .unwrap();
    assert_problem(user_patch, 400);
}

#[test]
fn a_wrong_content_type_is_415() {
    let app = spawn_app();
    let response = app
        .request(Method::POST, "/v1/syncs")
        .header("Content-Type", "application/xml")
        .body("<users/>")
        .send()
        .unwrap();
    assert_problem(response, 415);
    let response = app
        .request(Method::POST, "/v1/users/invitations")
        .header("Content-Type", "text/plain")
        .body("{}")
        .send()
        .unwrap();
    assert_problem(response, 415);
}

#[test]
fn a_body_over_the_limit_is_413_and_nothing_is_stored() {
    let app = spawn_app_with(|config| config.body_limit_bytes = 1024);
    let users: Vec<_> = (0..100)
        .map(|i| crate::helpers::person(&format!("E{i}")))
        .collect();
    let response = app.post_json("/v1/syncs", &json!({"users": users}));
    assert_problem(response, 413);
    assert_eq!(app.get_json("/v1/syncs")["items"], json!([]));
}

#[test]
fn bad_query_parameters_are_400() {
    let app = spawn_app();
    for path in [
        "/v1/syncs?limit=0",
        "/v1/syncs?limit=1001",
        "/v1/syncs?limit=ten",
        "/v1/syncs?cursor=garbage",
        "/v1/syncs?status=done",
        "/v1/syncs?since=yesterday",
        "/v1/users?state=gone",
        "/v1/error-codes?limit=-1",
    ] {
        let problem = assert_problem(app.get(path), 400);
        assert!(!problem["detail"].as_str().unwrap().is_empty(), "{path}");
    }
}

#[test]
fn a_cursor_of_another_list_is_refused() {
    let app = spawn_app();
    for i in 0..3 {
        app.push(
            "incremental",
            json!([crate::helpers::person(&format!("E{i}"))]),
        );
    }
    let page = app.get_json("/v1/syncs?limit=1");
    let cursor = page["next_cursor"].as_str().unwrap();
    assert_problem(app.get(&format!("/v1/users?cursor={cursor}")), 400);
}

#[test]
fn an_internal_error_is_a_500_problem_without_internals() {
    use diesel::connection::SimpleConnection;
    let app = spawn_app();
    let run = app.sync("incremental", json!([crate::helpers::person("E1")]));
    // Break the database under the running server: the report's table disappears.
    let mut conn = hris_sync::store::connect(&app.database_url, 1)
        .unwrap()
        .get()
        .unwrap();
    conn.batch_execute("DROP TABLE sync_events;").unwrap();
    let response = app.get(&format!("/v1/syncs/{}/events", run["id"].as_str().unwrap()));
    let problem = assert_problem(response, 500);
    let detail = problem["detail"].as_str().unwrap();
    for secret in [
        "sync_events",
        "no such table",
        "relation",
        "diesel",
        "SQLite",
        "sqlite",
        "PostgreSQL",
        "postgres",
    ] {
        assert!(!detail.contains(secret), "{detail}");
    }
}

#[test]
fn unknown_http_methods_do_not_create_metric_series() {
    let app = spawn_app();
    for method in ["BREW", "PROPFIND", "X1"] {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        app.request(method, "/v1/syncs").send().unwrap();
    }
    let text = app.metrics();
    assert!(
        !text.contains("BREW") && !text.contains("PROPFIND"),
        "{text}"
    );
    assert!(text.contains(r#"method="OTHER""#), "{text}");
}
