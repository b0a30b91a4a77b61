//! GET|PUT /v1/settings/provisioning and its history.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, person, spawn_app, TestApp};

const PATH: &str = "/v1/settings/provisioning";

fn put(
    app: &TestApp,
    token: &str,
    body: &Value,
    if_match: Option<&str>,
) -> reqwest::blocking::Response {
    let mut request = app.client.put(app.url(PATH)).bearer_auth(token).json(body);
    if let Some(tag) = if_match {
        request = request.header("If-Match", tag);
    }
    request.send().expect("request sent")
}

fn etag(response: &reqwest::blocking::Response) -> String {
    response
        .headers()
        .get("etag")
        .expect("an ETag")
        .to_str()
        .expect("text")
        .to_owned()
}

#[test]
fn settings_start_as_the_documented_defaults_with_an_etag() {
    let app = spawn_app();
    let response = app.get(PATH);
    assert_eq!(response.status().as_u16(), 200);
    assert!(!etag(&response).is_empty());
    assert_eq!(response.headers()["x-settings-version"], "0");
    let body: Value = response.json().expect("JSON");
    assert_eq!(
        body,
        json!({
            "approval": {"mode": "never", "max_archive_percent": null, "max_archive_count": null,
                         "max_create_count": null, "max_update_percent": null, "expires_after_hours": 72},
            "required_fields": [], "allowed_genders": ["M", "F"], "seat_limit": null,
            "archive_grace_days": 0, "custom_fields": [], "group_rules": [], "sync_perimeter": null
        })
    );
}

#[test]
fn an_admin_replaces_the_whole_document_and_keys_left_out_take_their_defaults() {
    let app = spawn_app();
    let document = json!({
        "approval": {"mode": "threshold", "max_archive_percent": 10},
        "custom_fields": [{"key": "cost_center", "type": "string", "required": false}],
        "group_rules": [{"group": "Finance", "when": {"field": "custom.cost_center", "in": ["F1", "F2"]}}],
        "sync_perimeter": {"email_domains": ["example.com"]},
        "seat_limit": 250
    });
    let response = put(&app, &app.admin_token, &document, None);
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["x-settings-version"], "1");
    let saved: Value = response.json().expect("JSON");
    let read = app.get_json(PATH);
    assert_eq!(saved, read);
    assert_eq!(read["approval"]["mode"], "threshold");
    assert_eq!(read["approval"]["max_archive_percent"], 10);
    assert_eq!(read["approval"]["expires_after_hours"], 72);
    assert_eq!(read["allowed_genders"], json!(["M", "F"]));
    assert_eq!(read["seat_limit"], 250);
    assert_eq!(read["group_rules"], document["group_rules"]);
    assert_eq!(
        read["sync_perimeter"],
        json!({"email_domains": ["example.com"], "when": null})
    );
}

#[test]
fn every_problem_of_a_document_is_reported_at_once_and_nothing_changes() {
    let app = spawn_app();
    let before = app.get_json(PATH);
    let response = put(
        &app,
        &app.admin_token,
        &json!({
            "approval": {"mode": "sometimes", "max_archive_percent": 150, "max_update_percent": -5},
            "allowed_genders": "M",
            "seat_limit": -1,
            "custom_fields": [{"key": "cc", "type": "string"}, {"key": "cc", "type": "number"}],
            "group_rules": [{"group": "G", "when": {"field": "custom.unknown", "equals": "x"}}],
            "sync_perimeter": {"email_domains": ["example.com"], "when": {"field": "shoe_size", "equals": 42}},
            "colour": "blue"
        }),
        None,
    );
    let problem = assert_problem(response, 422);
    let pointers: Vec<&str> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["pointer"].as_str().expect("pointer"))
        .collect();
    for expected in [
        "/colour",
        "/approval/mode",
        "/approval/max_archive_percent",
        "/approval/max_update_percent",
        "/allowed_genders",
        "/seat_limit",
        "/custom_fields/1/key",
        "/group_rules/0/when/field",
        "/sync_perimeter/when/field",
    ] {
        assert!(
            pointers.contains(&expected),
            "{expected} missing from {pointers:?}"
        );
    }
    assert_eq!(pointers.len(), 9, "{pointers:?}");
    assert_eq!(app.get_json(PATH), before);
}

#[test]
fn a_body_that_is_not_json_is_a_4xx_problem() {
    let app = spawn_app();
    let response = app
        .request(Method::PUT, PATH)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .expect("sent");
    let status = response.status().as_u16();
    assert!(status == 400 || status == 422, "{status}");
    assert_problem(response, status);
    let response = put(&app, &app.admin_token, &json!([1, 2]), None);
    assert_problem(response, 422);
}

#[test]
fn a_stale_if_match_is_refused_with_412_and_the_current_one_is_accepted() {
    let app = spawn_app();
    let first = app.get(PATH);
    let original_tag = etag(&first);
    let changed = put(
        &app,
        &app.admin_token,
        &json!({"seat_limit": 10}),
        Some(&original_tag),
    );
    assert_eq!(changed.status().as_u16(), 200);
    let new_tag = etag(&changed);
    assert_ne!(new_tag, original_tag);

    // A second admin still holding the first version cannot overwrite the change.
    let stale = put(
        &app,
        &app.admin_token,
        &json!({"seat_limit": 99}),
        Some(&original_tag),
    );
    let problem = assert_problem(stale, 412);
    assert!(
        problem["detail"].as_str().unwrap().contains(&new_tag),
        "{problem}"
    );
    assert_eq!(app.get_json(PATH)["seat_limit"], 10);

    let garbage = put(
        &app,
        &app.admin_token,
        &json!({"seat_limit": 99}),
        Some("\"nope\""),
    );
    assert_problem(garbage, 412);

    let current = put(
        &app,
        &app.admin_token,
        &json!({"seat_limit": 20}),
        Some(&new_tag),
    );
    assert_eq!(current.status().as_u16(), 200);
    let any = put(
        &app,
        &app.admin_token,
        &json!({"seat_limit": 30}),
        Some("*"),
    );
    assert_eq!(any.status().as_u16(), 200);
    let without = put(&app, &app.admin_token, &json!({"seat_limit": 40}), None);
    assert_eq!(without.status().as_u16(), 200);
    assert_eq!(app.get_json(PATH)["seat_limit"], 40);
}

#[test]
fn a_get_with_the_current_etag_in_if_none_match_is_304_until_the_settings_change() {
    let app = spawn_app();
    let tag = etag(&app.get(PATH));
    let conditional = |tag: &str| {
        app.request(Method::GET, PATH)
            .header("If-None-Match", tag)
            .send()
            .expect("sent")
    };
    let unchanged = conditional(&tag);
    assert_eq!(unchanged.status().as_u16(), 304);
    assert_eq!(etag(&unchanged), tag);
    put(&app, &app.admin_token, &json!({"seat_limit": 1}), None);
    let changed = conditional(&tag);
    assert_eq!(changed.status().as_u16(), 200);
    assert_eq!(changed.json::<Value>().unwrap()["seat_limit"], 1);
}

#[test]
fn reading_needs_any_token_and_changing_needs_admin() {
    let app = spawn_app();
    let reader = app.token("sync:read");
    let writer = app.token("sync:write");
    assert_eq!(app.get_as(&reader, PATH).status().as_u16(), 200);
    assert_problem(put(&app, &writer, &json!({}), None), 403);
    assert_problem(put(&app, &reader, &json!({}), None), 403);
    assert_eq!(
        app.get_as(&reader, &format!("{PATH}/history"))
            .status()
            .as_u16(),
        200
    );
    let anonymous = app.client.get(app.url(PATH)).send().expect("sent");
    assert_problem(anonymous, 401);
}

#[test]
fn each_organization_has_its_own_settings() {
    let app = spawn_app();
    let (_, other_admin) = app.other_organization();
    assert_eq!(
        put(&app, &other_admin, &json!({"seat_limit": 3}), None)
            .status()
            .as_u16(),
        200
    );
    assert_eq!(app.get_json(PATH)["seat_limit"], Value::Null);
    assert_eq!(app.get_json(&format!("{PATH}/history"))["items"], json!([]));
}

#[test]
fn every_change_is_a_version_in_the_history_newest_first_with_who_and_when() {
    let app = spawn_app();
    for limit in [1, 2, 3] {
        let response = put(&app, &app.admin_token, &json!({"seat_limit": limit}), None);
        assert_eq!(response.status().as_u16(), 200);
    }
    // The same document again is no change.
    let same = put(&app, &app.admin_token, &json!({"seat_limit": 3}), None);
    assert_eq!(same.headers()["x-settings-version"], "3");

    let history = app.get_json(&format!("{PATH}/history"));
    let items = history["items"].as_array().expect("items");
    let versions: Vec<i64> = items
        .iter()
        .map(|i| i["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, [3, 2, 1]);
    assert_eq!(items[0]["document"]["seat_limit"], 3);
    assert_eq!(items[2]["document"]["seat_limit"], 1);
    assert_eq!(items[0]["changed_by"], "admin");
    assert!(items[0]["changed_at"].as_str().unwrap().ends_with('Z'));

    let first_page = app.get_json(&format!("{PATH}/history?limit=2"));
    assert_eq!(first_page["items"].as_array().unwrap().len(), 2);
    let cursor = first_page["next_cursor"].as_str().expect("a next page");
    let second_page = app.get_json(&format!("{PATH}/history?limit=2&cursor={cursor}"));
    assert_eq!(second_page["items"][0]["version"], 1);
    assert_eq!(second_page["next_cursor"], Value::Null);
    assert_problem(app.get(&format!("{PATH}/history?cursor=bogus")), 400);
}

#[test]
fn a_run_records_the_settings_version_it_was_planned_with() {
    let app = spawn_app();
    let run = app.sync("incremental", json!([person("E1")]));
    assert_eq!(run["settings_version"], 0);
    put(
        &app,
        &app.admin_token,
        &json!({"allowed_genders": ["M", "F", "X"]}),
        None,
    );
    put(
        &app,
        &app.admin_token,
        &json!({"allowed_genders": ["M", "F", "X", "D"]}),
        None,
    );
    let run = app.sync("incremental", json!([person("E2")]));
    assert_eq!(run["settings_version"], 2);
    let listed = app.get_json("/v1/syncs?limit=1");
    assert_eq!(listed["items"][0]["settings_version"], 2);
}

fn cli(database_url: &str, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_hris-sync"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env_remove("HRIS_SYNC_BIND")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.unwrap_or("").as_bytes())
        .expect("stdin written");
    drop(input);
    let output = child.wait_with_output().expect("the binary ends");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn operators_read_and_replace_settings_from_the_command_line_by_id_or_name() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cli.db").display());
    let (ok, stdout, stderr) = cli(&url, &["org", "create", "acme"], None);
    assert!(ok, "{stderr}");
    let org: Value = serde_json::from_str(&stdout).unwrap();
    let org_id = org["organization_id"].as_str().unwrap();

    let (ok, stdout, stderr) = cli(&url, &["settings", "get", "--org", org_id], None);
    assert!(ok, "{stderr}");
    let defaults: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(defaults["approval"]["mode"], "never");

    let file = dir.path().join("settings.json");
    std::fs::write(
        &file,
        r#"{"approval": {"mode": "always"}, "seat_limit": 5}"#,
    )
    .unwrap();
    let (ok, stdout, stderr) = cli(
        &url,
        &["settings", "set", "--org", "acme", file.to_str().unwrap()],
        None,
    );
    assert!(ok, "{stderr}");
    let saved: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(saved["version"], 1);
    assert_eq!(saved["settings"]["seat_limit"], 5);

    // From standard input; every problem is printed and nothing changes.
    let (ok, _, stderr) = cli(
        &url,
        &["settings", "set", "--org", "acme"],
        Some(r#"{"seat_limit": -1, "approval": {"mode": "sometimes"}}"#),
    );
    assert!(!ok);
    assert!(
        stderr.contains("/seat_limit") && stderr.contains("/approval/mode"),
        "{stderr}"
    );
    let (_, stdout, _) = cli(&url, &["settings", "get", "--org", "acme"], None);
    let read: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(read["approval"]["mode"], "always");

    let (ok, _, stderr) = cli(&url, &["settings", "get", "--org", "nobody"], None);
    assert!(!ok);
    assert!(stderr.contains("no organization"), "{stderr}");
}
