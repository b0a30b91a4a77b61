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
