//! The command line, run as the real binary on a fresh database.

use std::process::Command;

use serde_json::Value;

fn hris_sync(database_url: &str, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_hris-sync"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env_remove("HRIS_SYNC_BIND")
        .output()
        .expect("the binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

#[test]
fn org_and_token_commands_work_on_a_fresh_file_and_print_json() {
    let database = crate::helpers::TestDatabase::new();
    let url = database.url().to_owned();

    let (ok, stdout, stderr) = hris_sync(&url, &["org", "create", "acme"]);
    assert!(ok, "{stderr}");
    let org = json(&stdout);
    let org_id = org["organization_id"].as_str().unwrap().to_owned();
    assert!(org["token"].as_str().unwrap().starts_with("hsk_"));

    let (ok, stdout, stderr) = hris_sync(
        &url,
        &[
            "token",
            "create",
            "--org",
            &org_id,
            "--scope",
            "sync:write",
            "--name",
            "bamboohr",
        ],
    );
    assert!(ok, "{stderr}");
    let token = json(&stdout);
    assert_eq!(token["organization_id"], org_id.as_str());
    assert_eq!(token["scope"], "sync:write");
    let token_id = token["token_id"].as_str().unwrap().to_owned();

    let (ok, stdout, _) = hris_sync(&url, &["token", "list", "--org", &org_id]);
    assert!(ok);
    let listed = json(&stdout);
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "bamboohr"]);
    assert!(
        !stdout.contains(token["token"].as_str().unwrap()),
        "secrets are never listed"
    );

    let (ok, stdout, _) = hris_sync(&url, &["token", "revoke", &token_id]);
    assert!(ok);
    assert!(json(&stdout)["revoked_at"].is_string());
}

#[test]
fn bad_arguments_fail_with_a_message_and_a_non_zero_status() {
    let database = crate::helpers::TestDatabase::new();
    let url = database.url().to_owned();
    let (ok, _, stderr) = hris_sync(
        &url,
        &["token", "create", "--org", "nope", "--scope", "admin"],
    );
    assert!(!ok);
    assert!(stderr.contains("no organization"), "{stderr}");
    let (ok, _, stderr) = hris_sync(&url, &["token", "create", "--org", "x", "--scope", "root"]);
    assert!(!ok);
    assert!(stderr.contains("sync:read"), "{stderr}");
    let (ok, _, stderr) = hris_sync("mysql://db/hris", &["migrate"]);
    assert!(!ok);
    assert!(stderr.contains("unsupported database URL"), "{stderr}");
}

#[test]
fn migrate_and_openapi_commands_print_what_they_did() {
    let database = crate::helpers::TestDatabase::new();
    let url = database.url().to_owned();
    let (ok, stdout, _) = hris_sync(&url, &["migrate"]);
    assert!(ok);
    assert_eq!(json(&stdout)["migrated"], true);
    let (ok, stdout, _) = hris_sync(&url, &["openapi"]);
    assert!(ok);
    assert_eq!(json(&stdout)["openapi"], "3.1.0");
    let (ok, stdout, _) = hris_sync(&url, &["--help"]);
    assert!(ok);
    for command in ["serve", "migrate", "org", "token", "openapi"] {
        assert!(
            stdout.contains(command),
            "{command} missing from --help: {stdout}"
        );
    }
}

#[test]
fn serve_on_an_empty_database_prints_the_admin_token_once_and_stops_on_sigterm() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let database = crate::helpers::TestDatabase::new();
    let url = database.url().to_owned();
    let start = || {
        Command::new(env!("CARGO_BIN_EXE_hris-sync"))
            .args(["serve", "--bind", "127.0.0.1:0", "--database-url", &url])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("the binary starts")
    };
    let mut server = start();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let mut printed = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if line.starts_with("Swagger UI:") {
            break;
        }
    }
    assert!(
        printed.contains("Created the organization \"default\""),
        "{printed}"
    );
    let token = printed
        .split_whitespace()
        .find(|w| w.starts_with("hsk_"))
        .expect("a token");
    assert!(
        printed.contains(&format!("curl -H \"Authorization: Bearer {token}\"")),
        "{printed}"
    );
    assert!(printed.contains("/swagger-ui/"), "{printed}");

    // Signals are handled once the server runs, which /healthz answering shows.
    let base = printed
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .and_then(|url| url.split("/v1").next())
        .expect("a URL")
        .to_owned();
    let client = reqwest::blocking::Client::new();
    for _ in 0..100 {
        if client.get(format!("{base}/healthz")).send().is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let status = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = server.wait().unwrap();
    assert!(exit.success(), "a SIGTERM stop is a clean exit: {exit:?}");

    // The second start finds the organization and prints no token.
    let mut again = start();
    std::thread::sleep(std::time::Duration::from_millis(1000));
    Command::new("kill")
        .args(["-TERM", &again.id().to_string()])
        .status()
        .unwrap();
    again.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut again.stdout.take().unwrap(), &mut rest).unwrap();
    assert!(!rest.contains("hsk_"), "{rest}");
    assert!(
        rest.contains("To get one: hris-sync token create --org default --scope admin"),
        "a start without a new token says how to create one: {rest}"
    );
}

#[test]
fn org_list_shows_ids_names_and_times_and_org_accepts_a_name_or_an_id() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cli.db").display());
    let (ok, stdout, stderr) = hris_sync(&url, &["org", "create", "acme"]);
    assert!(ok, "{stderr}");
    let acme = json(&stdout);
    let secret = acme["token"].as_str().unwrap().to_owned();
    hris_sync(&url, &["org", "create", "globex"]);

    let (ok, stdout, stderr) = hris_sync(&url, &["org", "list"]);
    assert!(ok, "{stderr}");
    let listed = json(&stdout);
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["acme", "globex"]);
    assert_eq!(listed[0]["organization_id"], acme["organization_id"]);
    assert!(listed[0]["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(!stdout.contains(&secret), "org list never shows a token");
    assert!(!stdout.contains("hsk_"), "{stdout}");

    // By name and by id, the same organization.
    let by_name = json(
        &hris_sync(
            &url,
            &["token", "create", "--org", "acme", "--scope", "sync:read"],
        )
        .1,
    );
    assert_eq!(by_name["organization_id"], acme["organization_id"]);
    let id = acme["organization_id"].as_str().unwrap();
    let (ok, stdout, _) = hris_sync(&url, &["token", "list", "--org", id]);
    assert!(ok);
    assert_eq!(json(&stdout).as_array().unwrap().len(), 2);
    let (ok, stdout, _) = hris_sync(&url, &["token", "list", "--org", "globex"]);
    assert!(ok);
    assert_eq!(json(&stdout).as_array().unwrap().len(), 1);

    // A name is unique, so that it can stand for the organization.
    let (ok, _, stderr) = hris_sync(&url, &["org", "create", "acme"]);
    assert!(!ok);
    assert!(stderr.contains("already named"), "{stderr}");
    let (ok, _, stderr) = hris_sync(&url, &["token", "list", "--org", "initech"]);
    assert!(!ok);
    assert!(stderr.contains("org list"), "{stderr}");
}

#[test]
fn a_database_file_that_cannot_be_written_stops_the_start_with_advice_for_docker() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/missing/hris-sync.db", dir.path().display());
    let (ok, _, stderr) = hris_sync(&url, &["migrate"]);
    assert!(!ok);
    assert!(stderr.contains("must exist and be writable"), "{stderr}");
    assert!(stderr.contains("uid 10001"), "{stderr}");
}

#[test]
fn a_spool_directory_that_cannot_be_written_stops_the_start_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/hris-sync.db", dir.path().display());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hris-sync"))
        .args(["serve", "--bind", "127.0.0.1:0", "--database-url", &url])
        .env("HRIS_SYNC_SPOOL_DIR", dir.path().join("missing"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the service started with a spool directory it cannot write");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(!status.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("--spool-dir"), "{stderr}");
}
