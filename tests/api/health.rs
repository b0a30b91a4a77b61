use crate::helpers::spawn_app;

#[test]
fn healthz_answers_ok_without_a_token() {
    let app = spawn_app();
    let response = app.client.get(app.url("/healthz")).send().unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    assert_eq!(
        response.json::<serde_json::Value>().unwrap()["status"],
        "ok"
    );
}

#[test]
fn readyz_reports_a_reachable_migrated_database() {
    let app = spawn_app();
    let response = app.client.get(app.url("/readyz")).send().unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.json::<serde_json::Value>().unwrap()["status"],
        "ready"
    );
}

#[test]
fn metrics_count_requests_by_route_and_status_and_show_the_pool() {
    let app = spawn_app();
    app.get("/v1/syncs");
    app.get("/v1/syncs/does-not-exist");
    let response = app.client.get(app.url("/metrics")).send().unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = response.text().unwrap();
    assert!(
        text.contains(
            r#"hris_sync_http_requests_total{method="GET",route="/v1/syncs",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"route="/v1/syncs/{id}",status="404""#),
        "{text}"
    );
    assert!(
        text.contains("hris_sync_http_request_duration_seconds_bucket"),
        "{text}"
    );
    for pool in ["read", "write"] {
        assert!(
            text.contains(&format!(
                r#"hris_sync_db_pool_connections{{pool="{pool}",state="idle"}}"#
            )),
            "{text}"
        );
    }
}

#[test]
fn a_client_request_id_is_echoed_back() {
    let app = spawn_app();
    let response = app
        .client
        .get(app.url("/healthz"))
        .header("X-Request-Id", "trace-42")
        .send()
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-42");
}
