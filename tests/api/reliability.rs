//! The service under faults and next to long runs: reads do not wait for a run's write lock,
//! a full disk is a 507 that stores nothing (and `/readyz` says so), and every response carries
//! the security headers.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{person, spawn_app, spawn_app_with, start};

#[test]
fn every_response_carries_the_security_headers() {
    let app = spawn_app();
    for path in [
        "/v1/syncs",
        "/v1/nothing-here",
        "/healthz",
        "/api-docs/openapi.json",
    ] {
        let response = app.get(path);
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(headers["cache-control"], "no-store", "{path}");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
    }
    let unauthenticated = app.client.get(app.url("/v1/users")).send().unwrap();
    assert_eq!(unauthenticated.status().as_u16(), 401);
    assert_eq!(unauthenticated.headers()["cache-control"], "no-store");
}

#[test]
fn swagger_ui_has_a_content_security_policy_that_forbids_framing() {
    let app = spawn_app();
    let page = app.client.get(app.url("/swagger-ui/")).send().unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    // The policy allows no inline script: the page must not need one.
    let html = page.text().unwrap();
    for script in html.split("<script").skip(1) {
        assert!(
            script.trim_start().starts_with("src="),
            "inline script in Swagger UI: {script}"
        );
    }
}

#[test]
fn a_read_with_a_fresh_token_does_not_wait_for_a_run_holding_the_write_lock() {
    let app = spawn_app_with(|config| {
        config.test_hooks.hold_run_transaction = Some(Duration::from_secs(4));
    });
    // A token never used before: authenticating it once meant writing its last use.
    let reader = app.token("sync:read");
    let run = app.push("incremental", json!([person("E1"), person("E2")]));
    let id = run["id"].as_str().unwrap().to_owned();
    wait_until_running(&app, &id);
    std::thread::sleep(Duration::from_millis(500));

    let started = Instant::now();
    let response = app.get_as(&reader, "/v1/users?limit=1");
    let elapsed = started.elapsed();
    assert_eq!(response.status().as_u16(), 200);
    let still = app.get_json(&format!("/v1/syncs/{id}"));
    assert_eq!(
        still["status"], "running",
        "the run must still hold its transaction"
    );
    // Generous bound for a loaded CI machine; the run holds the lock for 4 s.
    assert!(
        elapsed < Duration::from_millis(1_000),
        "read took {elapsed:?}"
    );
    assert_eq!(app.wait_for_run(&id)["status"], "succeeded");
}

fn wait_until_running(app: &crate::helpers::TestApp, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let run = app.get_json(&format!("/v1/syncs/{id}"));
        if run["status"] == "running" {
            return;
        }
        assert!(Instant::now() < deadline, "run never started: {run}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A small file system of its own (tmpfs), unmounted when dropped. `None` where this machine
/// does not let the tests mount one (not root, or no CAP_SYS_ADMIN).
struct SmallDisk {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().ok()?;
        let path = dir.path().to_path_buf();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(&path)
            .status()
            .ok()?
            .success();
        mounted.then_some(SmallDisk { _dir: dir, path })
    }

    /// Fills the disk with one file, until the file system says no.
    fn fill(&self) -> PathBuf {
        use std::io::Write as _;
        let filler = self.path.join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
        let _ = file.sync_all();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

fn company(size: usize, prefix: &str) -> Value {
    // Distinct, hard-to-compress values, so that the stored push needs fresh pages.
    let people: Vec<Value> = (0..size)
        .map(|i| {
            let noise = uuid::Uuid::now_v7().simple().to_string();
            json!({"external_id": format!("{prefix}{i}-{noise}"),
                   "email": format!("{prefix}{i}.{noise}@example.com"),
                   "first_name": format!("F{noise}"), "last_name": format!("L{noise}"),
                   "start_date": "2024-01-01"})
        })
        .collect();
    json!({"source": "test", "mode": "incremental", "users": people})
}

#[test]
fn a_full_disk_refuses_pushes_with_507_makes_the_instance_not_ready_and_loses_no_accepted_run() {
    let Some(disk) = SmallDisk::mount(64) else {
        eprintln!("skipped: this machine does not let the test mount a tmpfs");
        return;
    };
    let database_url = format!("sqlite://{}", disk.path.join("hris-sync.db").display());
    let mut app = start(&database_url, |_| {});
    assert_eq!(app.get("/readyz").status().as_u16(), 200);
    let first = app.sync("incremental", json!([person("E1")]));
    assert_eq!(first["status"], "succeeded");

    let filler = disk.fill();
    let ready = app.get("/readyz");
    assert_eq!(ready.status().as_u16(), 503);
    let problem: Value = ready.json().unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains("disk"),
        "{problem}"
    );

    let mut accepted = Vec::new();
    let mut refused = None;
    for attempt in 0..20 {
        let response = app.post_json("/v1/syncs", &company(2_000, &format!("A{attempt}-")));
        match response.status().as_u16() {
            202 => accepted.push(
                response.json::<Value>().unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            ),
            status => {
                refused = Some((status, response));
                break;
            }
        }
    }
    let (status, response) = refused.expect("a full disk must refuse a push at some point");
    assert_eq!(status, 507, "a full disk is 507, never another status");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert!(response.headers().contains_key("retry-after"));
    let runs: Value = app.get_json("/v1/syncs?limit=100");
    assert_eq!(
        runs["items"].as_array().unwrap().len(),
        1 + accepted.len(),
        "only the accepted pushes are stored"
    );

    std::fs::remove_file(&filler).unwrap();
    assert_eq!(app.get("/readyz").status().as_u16(), 200);
    // A push accepted before the disk filled up is never lost: its run meets the full disk,
    // goes back to the queue, and succeeds once there is room again.
    for id in &accepted {
        assert_eq!(app.wait_for_run(id)["status"], "succeeded", "run {id}");
    }
    let after = app.sync("incremental", json!([person("E2")]));
    assert_eq!(after["counts"]["created"], 1);
    app.stop();
    drop(disk);
}

#[test]
fn pushes_past_the_queue_limit_get_429_and_are_not_stored_while_other_organizations_go_on() {
    let app = spawn_app_with(|config| config.queue_limits.runs_per_organization = 2);
    // A run awaiting approval holds the organization's queue: later pushes wait behind it.
    set_approval_mode(&app, "always");
    let first = app.sync("incremental", json!([person("Q1")]));
    assert_eq!(first["status"], "awaiting_approval");
    for id in ["Q2", "Q3"] {
        app.push("incremental", json!([person(id)]));
    }

    let refused = app.post_json(
        "/v1/syncs",
        &json!({"source": "test", "mode": "incremental", "users": [person("Q4")]}),
    );
    assert_eq!(refused.status().as_u16(), 429);
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    assert_eq!(refused.headers()["retry-after"], "30");
    let problem: Value = refused.json().unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("2 runs waiting"),
        "{problem}"
    );
    let listed = app.get_json("/v1/syncs?limit=100");
    assert_eq!(
        listed["items"].as_array().unwrap().len(),
        3,
        "the refused push was not stored"
    );

    // The limit is per organization: another one pushes as usual.
    let (_, other_token) = app.other_organization();
    let other = app.post_json_as(
        &other_token,
        "/v1/syncs",
        &json!({"source": "test", "mode": "incremental", "users": [person("O1")]}),
    );
    assert_eq!(other.status().as_u16(), 202);

    // Once the queue has drained, the organization pushes again.
    set_approval_mode(&app, "never");
    let first_id = first["id"].as_str().unwrap();
    let rejected = app.post_json(&format!("/v1/syncs/{first_id}/reject"), &json!({}));
    assert_eq!(rejected.status().as_u16(), 200);
    for run in listed["items"].as_array().unwrap() {
        let status = app.wait_for_run(run["id"].as_str().unwrap())["status"].clone();
        assert!(status == "succeeded" || status == "rejected", "{status}");
    }
    let again = app.post_json(
        "/v1/syncs",
        &json!({"source": "test", "mode": "incremental", "users": [person("Q4")]}),
    );
    assert_eq!(again.status().as_u16(), 202);
}

fn set_approval_mode(app: &crate::helpers::TestApp, mode: &str) {
    let response = app
        .client
        .put(app.url("/v1/settings/provisioning"))
        .bearer_auth(&app.admin_token)
        .json(&json!({"approval": {"mode": mode}}))
        .send()
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        200,
        "settings: {}",
        response.text().unwrap()
    );
}

#[test]
fn reads_do_not_queue_behind_pushes_waiting_for_a_runs_write_lock() {
    let app = spawn_app_with(|config| {
        config.pool_size = 2;
        config.test_hooks.hold_run_transaction = Some(Duration::from_secs(3));
    });
    let run = app.push("incremental", json!([person("E1")]));
    let id = run["id"].as_str().unwrap().to_owned();
    wait_until_running(&app, &id);
    // More pushes than reads have connections: on SQLite each waits for the run's write lock,
    // holding a connection of the writers' own pool while it waits.
    let pushes: Vec<_> = (0..3)
        .map(|i| {
            let request = app
                .request(reqwest::Method::POST, "/v1/syncs")
                .json(&json!({"users": [person(&format!("P{i}"))]}));
            std::thread::spawn(move || request.send().map(|response| response.status().as_u16()))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));

    let started = Instant::now();
    for path in [
        "/v1/users?limit=1",
        "/v1/syncs?limit=5",
        "/v1/error-codes?limit=1",
    ] {
        assert_eq!(app.get(path).status().as_u16(), 200, "{path}");
    }
    let elapsed = started.elapsed();
    assert_eq!(
        app.get_json(&format!("/v1/syncs/{id}"))["status"],
        "running",
        "the run must still hold its transaction"
    );
    assert!(
        elapsed < Duration::from_millis(1_500),
        "three reads took {elapsed:?}"
    );
    for push in pushes {
        assert_eq!(push.join().unwrap().unwrap(), 202);
    }
}
