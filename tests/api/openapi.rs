//! The spec is code: the served document is the checked-in one, and Swagger UI works offline.

use serde_json::Value;

use crate::helpers::spawn_app;

#[test]
fn the_served_spec_equals_the_checked_in_file() {
    let app = spawn_app();
    let served: Value = app
        .client
        .get(app.url("/api-docs/openapi.json"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let checked_in: Value = serde_json::from_str(
        &std::fs::read_to_string("openapi/openapi.json").expect("openapi/openapi.json exists"),
    )
    .unwrap();
    assert!(
        served == checked_in,
        "openapi/openapi.json is stale: run `cargo run -- openapi > openapi/openapi.json`"
    );
    assert_eq!(served["openapi"], "3.1.0");
}

#[test]
fn the_checked_in_file_is_what_the_openapi_command_prints() {
    let printed = hris_sync::openapi::json().unwrap();
    let checked_in = std::fs::read_to_string("openapi/openapi.json").unwrap();
    assert!(
        printed == checked_in,
        "openapi/openapi.json is stale: run `cargo run -- openapi > openapi/openapi.json`"
    );
}

#[test]
fn the_spec_declares_bearer_auth_and_every_path_of_the_design() {
    let spec: Value = serde_json::from_str(&hris_sync::openapi::json().unwrap()).unwrap();
    assert_eq!(
        spec["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    for path in [
        "/v1/syncs",
        "/v1/syncs/{id}",
        "/v1/syncs/{id}/events",
        "/v1/error-codes",
        "/v1/error-codes/{code}",
        "/v1/users",
        "/v1/users/{id}",
        "/v1/users/invitations",
        "/v1/users/{id}/revoke-invitation",
        "/v1/syncs/{id}/approve",
        "/v1/syncs/{id}/reject",
        "/v1/syncs/{id}/report.csv",
        "/v1/syncs/{id}/log.json",
        "/v1/sync-log.csv",
        "/v1/sync-log.xlsx",
        "/v1/syncs/export.zip",
        "/v1/settings/provisioning",
        "/v1/settings/provisioning/history",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(spec["paths"][path].is_object(), "{path} is not documented");
    }
}

#[test]
fn swagger_ui_loads_with_its_assets_and_the_bare_path_redirects() {
    let app = spawn_app();
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let redirect = client.get(app.url("/swagger-ui")).send().unwrap();
    assert!(redirect.status().is_redirection());
    assert_eq!(redirect.headers()["location"], "/swagger-ui/");
    let page = app.client.get(app.url("/swagger-ui/")).send().unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    for asset in [
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
        "swagger-initializer.js",
    ] {
        let response = app
            .client
            .get(app.url(&format!("/swagger-ui/{asset}")))
            .send()
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{asset}");
        assert!(response.bytes().unwrap().len() > 100, "{asset}");
    }
    let initializer = app
        .client
        .get(app.url("/swagger-ui/swagger-initializer.js"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        initializer.contains("/api-docs/openapi.json"),
        "{initializer}"
    );
}

#[test]
fn both_backends_have_the_same_migrations() {
    let names = |backend: &str| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(format!("migrations/{backend}"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert!(!names("sqlite").is_empty());
    assert_eq!(names("sqlite"), names("postgres"));
    for name in names("sqlite") {
        for file in ["up.sql", "down.sql"] {
            for backend in ["sqlite", "postgres"] {
                let path = format!("migrations/{backend}/{name}/{file}");
                assert!(std::path::Path::new(&path).is_file(), "{path} is missing");
            }
        }
    }
}

fn spec() -> Value {
    serde_json::from_str(&hris_sync::openapi::json().unwrap()).unwrap()
}

/// Every operation of the document, as (method, path, operation).
fn operations(spec: &Value) -> Vec<(String, String, Value)> {
    let mut found = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            found.push((method.clone(), path.clone(), operation.clone()));
        }
    }
    found
}

/// The schema a `$ref` points at, or the schema itself.
fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.trim_start_matches("#/components/schemas/");
            &spec["components"]["schemas"][name]
        }
        None => schema,
    }
}

#[test]
fn every_operation_has_a_unique_lower_camel_case_operation_id_and_a_description() {
    let spec = spec();
    let mut seen = std::collections::BTreeMap::new();
    for (method, path, operation) in operations(&spec) {
        let id = operation["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
        assert!(
            id.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && id.chars().all(|c| c.is_ascii_alphanumeric())
                && id.chars().any(|c| c.is_ascii_uppercase()),
            "{method} {path}: operationId {id:?} is not lowerCamelCase verbNoun"
        );
        if let Some(other) = seen.insert(id.to_owned(), format!("{method} {path}")) {
            panic!("operationId {id:?} is used by {other} and by {method} {path}");
        }
        for field in ["summary", "description"] {
            assert!(
                operation[field]
                    .as_str()
                    .is_some_and(|s| !s.trim().is_empty()),
                "{method} {path} ({id}) has no {field}"
            );
        }
        assert!(
            operation["tags"].as_array().is_some_and(|t| !t.is_empty()),
            "{method} {path} has no tag"
        );
    }
    for id in [
        "pushSync",
        "listSyncRuns",
        "getSyncRun",
        "retrySyncRun",
        "listSyncEvents",
        "listErrorCodes",
        "getErrorCode",
        "listUsers",
        "getUser",
        "updateUser",
        "inviteUser",
        "revokeInvitation",
        "approveSyncRun",
        "rejectSyncRun",
        "getSyncRunReportCsv",
        "getSyncRunLogJson",
        "getSyncLogCsv",
        "getSyncLogXlsx",
        "exportSyncRuns",
        "getProvisioningSettings",
        "replaceProvisioningSettings",
        "listProvisioningSettingsHistory",
        "getHealth",
        "getReadiness",
        "getMetrics",
    ] {
        assert!(seen.contains_key(id), "no operation {id}");
    }
}

#[test]
fn only_the_operations_endpoints_are_open_and_they_say_so_with_an_empty_security_list() {
    let spec = spec();
    assert_eq!(
        spec["servers"],
        serde_json::json!([{"url": "/", "description": "The server that serves this document"}])
    );
    assert_eq!(spec["security"], serde_json::json!([{"bearer": []}]));
    for (method, path, operation) in operations(&spec) {
        if ["/healthz", "/readyz", "/metrics"].contains(&path.as_str()) {
            assert_eq!(
                operation["security"],
                serde_json::json!([]),
                "{method} {path}"
            );
        } else {
            assert!(
                operation.get("security").is_none(),
                "{method} {path} overrides the bearer requirement: {}",
                operation["security"]
            );
            assert!(
                operation["responses"]["401"].is_object(),
                "{method} {path} does not declare its 401"
            );
        }
    }
}

#[test]
fn every_response_declares_x_request_id_and_every_problem_has_an_example_of_its_own_status() {
    let spec = spec();
    assert!(spec["components"]["headers"]["X-Request-Id"].is_object());
    for (method, path, operation) in operations(&spec) {
        for (status, response) in operation["responses"].as_object().unwrap() {
            assert_eq!(
                response["headers"]["X-Request-Id"]["$ref"], "#/components/headers/X-Request-Id",
                "{method} {path} {status}"
            );
            let problem = &response["content"]["application/problem+json"];
            if status.starts_with('4') || status.starts_with('5') {
                assert!(
                    problem.is_object(),
                    "{method} {path} {status} is not a problem"
                );
                assert_eq!(
                    problem["example"]["status"].as_u64().map(|s| s.to_string()),
                    Some(status.clone()),
                    "{method} {path} {status}: {}",
                    problem["example"]
                );
            }
        }
    }
}

#[test]
fn every_page_schema_references_its_item_schema_and_always_has_next_cursor() {
    let spec = spec();
    let schemas = spec["components"]["schemas"].as_object().unwrap();
    let pages: Vec<&String> = schemas.keys().filter(|n| n.ends_with("Page")).collect();
    for expected in ["RunPage", "EventPage", "UserPage", "ErrorCodePage"] {
        assert!(pages.iter().any(|n| *n == expected), "no {expected}");
    }
    for name in pages {
        let page = &schemas[name];
        let item = page["properties"]["items"]["items"]["$ref"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}.items is not a list of a $ref: {page}"));
        assert!(
            name.starts_with(
                &item
                    .replace("#/components/schemas/", "")
                    .replace("View", "")
            ),
            "{name} lists {item}"
        );
        assert_eq!(
            page["required"],
            serde_json::json!(["items", "next_cursor"]),
            "{name}"
        );
        assert_eq!(
            page["properties"]["next_cursor"]["type"],
            serde_json::json!(["string", "null"])
        );
    }
    // Every list operation answers a page schema, never an anonymous one.
    for (method, path, operation) in operations(&spec) {
        if operation["operationId"]
            .as_str()
            .unwrap()
            .starts_with("list")
        {
            let schema = &operation["responses"]["200"]["content"]["application/json"]["schema"];
            assert!(
                schema["$ref"].as_str().is_some_and(|r| r.ends_with("Page")),
                "{method} {path} answers {schema}"
            );
        }
    }
}

#[test]
fn times_ids_dates_and_emails_declare_their_format() {
    let spec = spec();
    for (name, schema) in spec["components"]["schemas"].as_object().unwrap() {
        let Some(properties) = schema["properties"].as_object() else {
            continue;
        };
        // Records as pushed are read leniently (a bad value is an issue of the run).
        if name == "UserRecord" {
            continue;
        }
        for (property, definition) in properties {
            let format = definition["format"].as_str();
            let expected = if property.ends_with("_at") || property == "at" {
                Some("date-time")
            } else if property == "id"
                || property == "retry_of"
                || (property.ends_with("_id") && !property.ends_with("external_id"))
            {
                Some("uuid")
            } else if property.ends_with("_date") {
                Some("date")
            } else if property == "email" && name != "EventView" {
                Some("email")
            } else {
                None
            };
            if let Some(expected) = expected {
                assert_eq!(format, Some(expected), "{name}.{property}: {definition}");
            }
        }
    }
}

/// Checks that `value` has exactly the properties `schema` declares, all of them required,
/// recursively; nullable properties may be null.
fn assert_conforms(spec: &Value, schema: &Value, value: &Value, at: &str) {
    if let Some(variants) = schema["oneOf"].as_array() {
        if value.is_null() && variants.iter().any(|v| v["type"] == "null") {
            return;
        }
        let variant = variants.iter().find(|v| v["type"] != "null").unwrap();
        return assert_conforms(spec, variant, value, at);
    }
    let schema = resolve(spec, schema);
    if let Some(properties) = schema["properties"].as_object() {
        let object = value
            .as_object()
            .unwrap_or_else(|| panic!("{at}: {value} is not an object"));
        let mut declared: Vec<&String> = properties.keys().collect();
        let mut sent: Vec<&String> = object.keys().collect();
        declared.sort();
        sent.sort();
        assert_eq!(sent, declared, "{at}: sent keys vs declared properties");
        let mut required: Vec<&str> = schema["required"]
            .as_array()
            .unwrap_or_else(|| panic!("{at}: nothing is required"))
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        required.sort();
        let declared: Vec<&str> = declared.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            required, declared,
            "{at}: a field always sent is not required"
        );
        for (key, property) in properties {
            let inner = &object[key];
            let nullable = property["type"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t == "null"))
                || property["oneOf"]
                    .as_array()
                    .is_some_and(|v| v.iter().any(|v| v["type"] == "null"));
            if inner.is_null() {
                assert!(
                    nullable
                        || property == &serde_json::json!({})
                        || property.get("type").is_none()
                            && property.get("$ref").is_none()
                            && property.get("oneOf").is_none(),
                    "{at}.{key} is null but not nullable: {property}"
                );
                continue;
            }
            assert_conforms(spec, property, inner, &format!("{at}.{key}"));
        }
    } else if let Some(items) = schema.get("items") {
        for (index, item) in value.as_array().into_iter().flatten().enumerate() {
            assert_conforms(spec, items, item, &format!("{at}[{index}]"));
        }
    } else if let Some(allowed) = schema["enum"].as_array() {
        assert!(
            allowed.contains(value),
            "{at}: {value} is not one of {allowed:?}"
        );
    }
}

#[test]
fn the_push_example_is_a_safe_dry_run_whose_report_shows_one_issue() {
    let app = spawn_app();
    let spec = spec();
    let example = &spec["paths"]["/v1/syncs"]["post"]["requestBody"]["content"]["application/json"]
        ["example"];
    assert_eq!(example["mode"], "incremental");
    assert_eq!(example["dry_run"], true);
    let run = app.push_body(example);
    let run = app.wait_for_run(run["id"].as_str().unwrap());
    assert_eq!(run["counts"]["created"], 2, "{run}");
    assert_eq!(run["issues"]["total"], 1, "{run}");
    let issues = app.events(run["id"].as_str().unwrap(), "kind=issue");
    assert_eq!(issues[0]["field"], "date_of_birth", "{issues:?}");
    assert!(app.users("").is_empty(), "a dry run changed the directory");
}

#[test]
fn real_answers_send_exactly_the_required_fields_their_schemas_declare() {
    let app = spawn_app();
    let spec = spec();
    let schema = |name: &str| serde_json::json!({"$ref": format!("#/components/schemas/{name}")});
    let example = spec["paths"]["/v1/syncs"]["post"]["requestBody"]["content"]["application/json"]
        ["example"]
        .clone();
    let mut real = example.clone();
    real["dry_run"] = serde_json::json!(false);
    let pushed = app.push_body(&real);
    assert_conforms(&spec, &schema("RunView"), &pushed, "pushSync");
    let run = app.wait_for_run(pushed["id"].as_str().unwrap());
    assert_conforms(&spec, &schema("RunView"), &run, "getSyncRun");
    // A second push changes a manager, so the report holds updates with old/new values.
    let mut second = real.clone();
    second["users"][1]["manager_external_id"] = serde_json::json!(null);
    second["users"][1]["teams"] = serde_json::json!(["Research", "Engineering"]);
    let second = app.wait_for_run(app.push_body(&second)["id"].as_str().unwrap());
    for (path, page) in [
        ("/v1/syncs?limit=1", "RunPage"),
        (
            &format!("/v1/syncs/{}/events?limit=2", run["id"].as_str().unwrap()) as &str,
            "EventPage",
        ),
        (
            &format!("/v1/syncs/{}/events", second["id"].as_str().unwrap()),
            "EventPage",
        ),
        ("/v1/users?limit=1", "UserPage"),
        ("/v1/error-codes?limit=3", "ErrorCodePage"),
    ] {
        let body = app.get_json(path);
        assert!(
            !body["items"].as_array().unwrap().is_empty(),
            "{path}: {body}"
        );
        assert_conforms(&spec, &schema(page), &body, path);
    }
    let user = app.users("")[0].clone();
    let one = app.get_json(&format!("/v1/users/{}", user["id"].as_str().unwrap()));
    assert_conforms(&spec, &schema("UserView"), &one, "getUser");
    let code = app.get_json("/v1/error-codes/MANAGER_DOES_NOT_EXIST");
    assert_conforms(&spec, &schema("ErrorCode"), &code, "getErrorCode");
}

#[test]
fn every_issue_code_of_the_catalogue_is_in_the_issue_code_enum() {
    let spec = spec();
    let listed: Vec<&str> = spec["components"]["schemas"]["IssueCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let catalogue: Vec<&str> = hris_sync::catalogue::ENTRIES
        .iter()
        .map(|e| e.code.as_str())
        .collect();
    assert_eq!(listed, catalogue);
}

#[test]
fn every_schema_with_fields_has_an_example_for_each_of_them() {
    let spec = spec();
    for (name, schema) in spec["components"]["schemas"].as_object().unwrap() {
        if schema.get("example").is_some() {
            continue;
        }
        for (property, definition) in schema["properties"].as_object().into_iter().flatten() {
            let referenced = definition.get("$ref").is_some()
                || definition.get("oneOf").is_some()
                || definition["items"].get("$ref").is_some();
            assert!(
                referenced || definition.get("example").is_some(),
                "{name}.{property} has no example (give one, or the schema a whole example)"
            );
        }
    }
}

#[test]
fn the_settings_example_is_a_document_the_server_accepts_and_answers_as_it_is() {
    let app = spawn_app();
    let spec = spec();
    let example = &spec["components"]["schemas"]["ProvisioningSettings"]["example"];
    assert!(example.is_object(), "no whole example: {example}");
    let response = app
        .request(reqwest::Method::PUT, "/v1/settings/provisioning")
        .json(example)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let saved: Value = response.json().unwrap();
    assert_eq!(&saved, example);
    let decision = &spec["components"]["schemas"]["DecisionBody"]["example"];
    assert!(decision["reason"].is_string(), "{decision}");
}

#[test]
fn runs_awaiting_approval_and_decided_send_exactly_the_required_fields_of_run_view() {
    let app = spawn_app();
    let spec = spec();
    let schema = serde_json::json!({"$ref": "#/components/schemas/RunView"});
    let settings = serde_json::json!({"approval": {"mode": "always"}});
    let response = app
        .request(reqwest::Method::PUT, "/v1/settings/provisioning")
        .json(&settings)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    for verb in ["approve", "reject"] {
        let users = serde_json::json!([crate::helpers::person(&format!("E-{verb}"))]);
        let waiting = app.wait_for_run(app.push("incremental", users)["id"].as_str().unwrap());
        assert_eq!(waiting["status"], "awaiting_approval", "{waiting}");
        assert!(!waiting["approval_reasons"].as_array().unwrap().is_empty());
        assert_conforms(&spec, &schema, &waiting, "awaiting run");
        let id = waiting["id"].as_str().unwrap();
        let decided = app.post_json(
            &format!("/v1/syncs/{id}/{verb}"),
            &spec["components"]["schemas"]["DecisionBody"]["example"],
        );
        assert_eq!(decided.status().as_u16(), 200, "{verb}");
        let decided: Value = decided.json().unwrap();
        assert!(decided["decided_at"].is_string(), "{decided}");
        assert_conforms(&spec, &schema, &decided, verb);
    }
}

#[test]
fn a_decision_with_a_null_body_has_no_reason_and_a_body_of_another_shape_is_a_422() {
    let app = spawn_app();
    let response = app
        .request(reqwest::Method::PUT, "/v1/settings/provisioning")
        .json(&serde_json::json!({"approval": {"mode": "always"}}))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let users = serde_json::json!([crate::helpers::person("E1")]);
    let waiting = app.wait_for_run(app.push("incremental", users)["id"].as_str().unwrap());
    let id = waiting["id"].as_str().unwrap();
    let refused = app.post_json(&format!("/v1/syncs/{id}/reject"), &serde_json::json!([]));
    crate::helpers::assert_problem(refused, 422);
    let decided = app.post_json(&format!("/v1/syncs/{id}/reject"), &Value::Null);
    assert_eq!(decided.status().as_u16(), 200);
    let decided: Value = decided.json().unwrap();
    assert_eq!(decided["status"], "rejected");
    assert_eq!(decided["decision_reason"], Value::Null);
}

#[test]
fn every_download_declares_its_media_type_and_content_disposition_and_its_409_a_retry_after() {
    let spec = spec();
    for (path, media_type) in [
        ("/v1/syncs/{id}/report.csv", "text/csv"),
        ("/v1/syncs/{id}/log.json", "application/json"),
        ("/v1/sync-log.csv", "text/csv"),
        (
            "/v1/sync-log.xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
        ("/v1/syncs/export.zip", "application/zip"),
    ] {
        let responses = &spec["paths"][path]["get"]["responses"];
        let ok = &responses["200"];
        let content = ok["content"].as_object().unwrap();
        assert_eq!(
            content.keys().collect::<Vec<_>>(),
            vec![media_type],
            "{path}"
        );
        assert!(
            ok["headers"]["Content-Disposition"]["description"]
                .as_str()
                .is_some_and(|d| d.contains("attachment; filename=")),
            "{path}: {ok}"
        );
        if media_type.starts_with("text/") {
            assert!(
                content[media_type]["example"]
                    .as_str()
                    .is_some_and(|e| e.starts_with('\u{feff}')),
                "{path}: no CSV example with its byte order mark"
            );
        }
        if responses.get("409").is_some() {
            assert!(
                responses["409"]["headers"]["Retry-After"].is_object(),
                "{path}"
            );
        }
    }
}

#[test]
fn the_condition_field_pattern_names_exactly_the_fields_a_condition_may_test() {
    let spec = spec();
    let pattern = spec["components"]["schemas"]["FieldCondition"]["properties"]["field"]["pattern"]
        .as_str()
        .unwrap();
    let listed: Vec<&str> = pattern
        .trim_start_matches("^(")
        .trim_end_matches(")$")
        .split('|')
        .filter(|alternative| !alternative.starts_with("custom"))
        .collect();
    assert_eq!(listed, hris_sync::domain::CONDITION_FIELDS);
}
