//! CSV uploads: a file of employees as a sync, its file-level failures, gzip, and the per-line
//! CSV log.

use std::io::Write as _;
use std::time::Duration;

use diesel::prelude::*;
use reqwest::blocking::Response;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, spawn_app_with, TestApp};

/// Uploads `body` as `content_type` to `/v1/syncs?{query}`.
fn upload_as(app: &TestApp, query: &str, content_type: &str, body: Vec<u8>) -> Response {
    app.request(Method::POST, &format!("/v1/syncs?{query}"))
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .expect("request sent")
}

fn upload(app: &TestApp, query: &str, text: &str) -> Response {
    upload_as(app, query, "text/csv", text.as_bytes().to_vec())
}

/// Uploads a file and waits for its run to end.
fn sync_csv(app: &TestApp, query: &str, text: &str) -> Value {
    let response = upload(app, query, text);
    assert_eq!(response.status().as_u16(), 202, "upload accepted");
    let run: Value = response.json().expect("run");
    app.wait_for_run(run["id"].as_str().expect("run id"))
}

fn log_csv(app: &TestApp, run_id: &str) -> Response {
    app.get(&format!("/v1/syncs/{run_id}/log.csv"))
}

/// Every record of a CSV text, as the `csv` crate reads it.
fn records(text: &str, delimiter: u8) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.trim_start_matches('\u{feff}').as_bytes())
        .records()
        .map(|record| {
            record
                .expect("readable")
                .iter()
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("compressed");
    encoder.finish().expect("compressed")
}

/// Sets the organization's custom field definitions through the library, on the app's own
/// database.
fn define_custom_fields(app: &TestApp, definitions: Value) {
    use hris_sync::store::schema::organizations;
    let mut conn = hris_sync::store::connect(&app.database_url, 1)
        .expect("db")
        .get()
        .expect("conn");
    let settings = json!({"custom_fields": definitions}).to_string();
    diesel::update(organizations::table.find(&app.organization_id))
        .set(organizations::settings.eq(settings))
        .execute(&mut conn)
        .expect("settings stored");
}

fn runs(app: &TestApp) -> Vec<Value> {
    app.get_json("/v1/syncs")["items"]
        .as_array()
        .expect("items")
        .clone()
}

const HEADER: &str = "external_id,email,first_name,last_name,start_date";

#[test]
fn each_file_level_failure_is_a_422_naming_it_and_nothing_is_stored() {
    let app = spawn_app();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            // Latin-1, as an old spreadsheet program saves it: é is the byte E9.
            b"external_id,email,first_name,last_name\nE1,a@example.com,Ada,Lovelace\nE2,b@example.com,Jos\xe9,Smith\n".to_vec(),
            "File encoding is not supported. Please make sure the file is encoded using UTF-8. The first byte that is not UTF-8 is on line 3.",
        ),
        (Vec::new(), "File contains no data."),
        (format!("{HEADER}\r\n").into_bytes(), "File contains no data."),
        (
            b"External_ID;Email;Start_Date\nE1;a@example.com;2024-01-01\n".to_vec(),
            "The required columns \"first_name\", \"last_name\" are missing from the header.",
        ),
        (
            format!("{HEADER},Email \nE1,a@example.com,Ada,Lovelace,2024-01-01,b@example.com\n")
                .into_bytes(),
            "The column \"email\" appears more than once in the header.",
        ),
    ];
    for (body, message) in cases {
        let problem = assert_problem(upload_as(&app, "mode=full", "text/csv", body), 422);
        assert_eq!(problem["detail"], message);
    }
    assert!(runs(&app).is_empty(), "nothing was stored");
    assert!(app.users("").is_empty(), "nothing was applied");
}

#[test]
fn a_stored_file_that_fails_a_file_level_check_fails_its_run_with_one_log_line() {
    let app = spawn_app();
    let mut conn = hris_sync::store::connect(&app.database_url, 1)
        .expect("db")
        .get()
        .expect("conn");
    // A file stored without the checks of the push (by an older version, say).
    let stored = hris_sync::store::runs::insert(
        &mut conn,
        &hris_sync::store::runs::NewRun {
            organization_id: &app.organization_id,
            mode: hris_sync::domain::SyncMode::Full,
            source: "hris",
            dry_run: false,
            content_type: "text/csv",
            body: &hris_sync::store::payloads::WholeBody(format!("{HEADER}\n").as_bytes()),
            record_count: 0,
            retry_of: None,
            idempotency: None,
        },
    )
    .expect("stored");
    let hris_sync::store::runs::Stored::Created(run) = stored else {
        panic!("a new run");
    };
    let run = app.wait_for_run(&run.id);
    assert_eq!(run["status"], "failed", "{run}");
    let logs = run["logs"].as_array().expect("logs");
    assert_eq!(logs.len(), 1, "{run}");
    assert_eq!(logs[0]["level"], "error");
    assert_eq!(logs[0]["message"], "File contains no data.");
    assert!(app.users("").is_empty());
    let log = log_csv(&app, run["id"].as_str().unwrap());
    assert_eq!(log.status().as_u16(), 200);
    assert_eq!(
        log.text().unwrap(),
        format!("ImportStatus,ImportDetail,{HEADER}\nError,File contains no data.,,,,,\n")
    );
}

/// A file as a spreadsheet program exports it on a French Windows machine.
const MESSY: &str = "\u{feff}External_ID ; EMAIL;First_Name;Last_Name;Start_Date;Teams;Custom.Cost_Center;Badge colour\r\n\
E1;zoe.martin@example.com;Zoé;\"Martin, Jr.\";2024-01-15;Sales | Paris;CC-1;red\r\n\
E2;jurgen.muller@example.com;\"Jürgen\r\nHans\";Müller;2024-02-01;Engineering;CC-2;\"blue; green\"\r\n\
E3;sean.obrien@example.com;\"Seán \"\"Sean\"\"\";O'Brien;2023-12-01;;;\r\n\
;;;;;;;\r\n";

#[test]
fn a_messy_spreadsheet_export_imports_correctly() {
    let app = spawn_app();
    define_custom_fields(&app, json!([{"key": "cost_center", "type": "string"}]));
    let run = sync_csv(&app, "source=hris&mode=full", MESSY);
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["source"], "hris");
    assert_eq!(run["mode"], "full");
    assert_eq!(run["records"], 3);
    assert_eq!(run["counts"]["created"], 3);
    let logs = run["logs"].as_array().expect("logs");
    assert_eq!(logs.len(), 1, "{run}");
    assert_eq!(logs[0]["level"], "warning");
    assert!(
        logs[0]["message"]
            .as_str()
            .unwrap()
            .contains("\"Badge colour\""),
        "{run}"
    );

    let users = app.users("");
    let user = |external_id: &str| {
        users
            .iter()
            .find(|u| u["external_id"] == external_id)
            .unwrap_or_else(|| panic!("{external_id} in {users:?}"))
            .clone()
    };
    let zoe = user("E1");
    assert_eq!(zoe["first_name"], "Zoé");
    assert_eq!(zoe["last_name"], "Martin, Jr.");
    assert_eq!(zoe["email"], "zoe.martin@example.com");
    assert_eq!(zoe["teams"], json!(["Paris", "Sales"]));
    assert_eq!(zoe["custom_fields"], json!({"cost_center": "CC-1"}));
    let jurgen = user("E2");
    assert_eq!(jurgen["first_name"], "Jürgen Hans");
    assert_eq!(jurgen["last_name"], "Müller");
    let sean = user("E3");
    assert_eq!(sean["first_name"], "Seán \"Sean\"");
    assert_eq!(sean["teams"], json!([]));

    let events = app.events(run["id"].as_str().unwrap(), "action=USER_CREATED");
    let rows: Vec<(Value, Value)> = events
        .iter()
        .map(|e| (e["external_id"].clone(), e["row"].clone()))
        .collect();
    assert_eq!(
        rows,
        [
            (json!("E1"), json!(2)),
            (json!("E2"), json!(3)),
            (json!("E3"), json!(5))
        ],
        "rows are the file's lines"
    );
}

#[test]
fn a_tab_separated_upload_with_an_unreadable_line_goes_on_and_names_the_line() {
    let app = spawn_app();
    let text = "external_id\temail\tfirst_name\tlast_name\tstart_date\n\
E1\ta@example.com\tAda\tLovelace\t2024-01-01\n\
E2\tb@example.com\tBob\tSmith\t2024-01-01\textra\n\
E3\tc@example.com\tCy\tYoung\t2024-01-01\n";
    let response = upload_as(
        &app,
        "",
        "text/tab-separated-values",
        text.as_bytes().to_vec(),
    );
    assert_eq!(response.status().as_u16(), 202);
    let run: Value = response.json().unwrap();
    assert_eq!(run["source"], "api");
    assert_eq!(run["mode"], "incremental");
    let run = app.wait_for_run(run["id"].as_str().unwrap());
    assert_eq!(run["status"], "succeeded_with_errors", "{run}");
    assert_eq!(run["counts"]["created"], 2);
    assert_eq!(run["counts"]["skipped"], 1);
    let issues = app.events(run["id"].as_str().unwrap(), "kind=issue");
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_eq!(issues[0]["code"], "CSV_LINE_UNREADABLE");
    assert_eq!(issues[0]["row"], 3);
    assert!(issues[0]["message"]
        .as_str()
        .unwrap()
        .starts_with("Line 3 has 6 field(s) where the header has 5"));
    let entry = app.get_json("/v1/error-codes/CSV_LINE_UNREADABLE");
    assert_eq!(entry["category"], "file");
}

#[test]
fn a_gzip_upload_is_decoded() {
    let app = spawn_app();
    let text = format!("{HEADER}\nE1,a@example.com,Ada,Lovelace,2024-01-01\n");
    let response = app
        .request(Method::POST, "/v1/syncs?mode=full")
        .header("Content-Type", "text/csv; charset=utf-8")
        .header("Content-Encoding", "gzip")
        .body(gzip(text.as_bytes()))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let run: Value = response.json().unwrap();
    let run = app.wait_for_run(run["id"].as_str().unwrap());
    assert_eq!(run["counts"]["created"], 1, "{run}");
    // The stored file is the decoded one: its log repeats it.
    let log = log_csv(&app, run["id"].as_str().unwrap()).text().unwrap();
    assert_eq!(
        log,
        format!("ImportStatus,ImportDetail,{HEADER}\nUserCreated,,E1,a@example.com,Ada,Lovelace,2024-01-01\n")
    );

    // A JSON push may be compressed the same way.
    let body = json!({"users": [crate::helpers::person("E2")]}).to_string();
    let response = app
        .request(Method::POST, "/v1/syncs")
        .header("Content-Type", "application/json")
        .header("Content-Encoding", "gzip")
        .body(gzip(body.as_bytes()))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let run: Value = response.json().unwrap();
    let run = app.wait_for_run(run["id"].as_str().unwrap());
    assert_eq!(run["counts"]["created"], 1, "{run}");
}

#[test]
fn a_gzip_bomb_is_413_and_nothing_is_stored() {
    let app = spawn_app_with(|config| config.body_limit_bytes = 64 * 1024);
    let mut text = format!("{HEADER}\n").into_bytes();
    text.extend(std::iter::repeat_n(b' ', 20 * 1024 * 1024));
    let bomb = gzip(&text);
    assert!(bomb.len() < 64 * 1024, "{} bytes compressed", bomb.len());
    let response = app
        .request(Method::POST, "/v1/syncs")
        .header("Content-Type", "text/csv")
        .header("Content-Encoding", "gzip")
        .body(bomb)
        .send()
        .unwrap();
    let problem = assert_problem(response, 413);
    assert!(
        problem["detail"].as_str().unwrap().contains("decompressed"),
        "{problem}"
    );
    let corrupt = app
        .request(Method::POST, "/v1/syncs")
        .header("Content-Type", "text/csv")
        .header("Content-Encoding", "gzip")
        .body("not gzip at all")
        .send()
        .unwrap();
    assert_problem(corrupt, 400);
    let brotli = app
        .request(Method::POST, "/v1/syncs")
        .header("Content-Type", "text/csv")
        .header("Content-Encoding", "br")
        .body("x")
        .send()
        .unwrap();
    assert_problem(brotli, 415);
    assert!(runs(&app).is_empty());
}

#[test]
fn bad_query_parameters_of_an_upload_and_query_parameters_of_a_json_push_are_400() {
    let app = spawn_app();
    let text = format!("{HEADER}\nE1,a@example.com,Ada,Lovelace,2024-01-01\n");
    for query in ["mode=everything", "dry_run=yes", "source=%20"] {
        let problem = assert_problem(upload(&app, query, &text), 400);
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains(query.split('=').next().unwrap()),
            "{query}: {problem}"
        );
    }
    let json_push = app
        .request(Method::POST, "/v1/syncs?mode=full")
        .json(&json!({"users": []}))
        .send()
        .unwrap();
    assert_problem(json_push, 400);
    assert!(runs(&app).is_empty());
}

#[test]
fn a_dry_run_upload_applies_nothing() {
    let app = spawn_app();
    let text = format!("{HEADER}\nE1,a@example.com,Ada,Lovelace,2024-01-01\n");
    let run = sync_csv(&app, "dry_run=true", &text);
    assert_eq!(run["dry_run"], true);
    assert_eq!(run["counts"]["created"], 1);
    assert!(app.users("").is_empty());
}

#[test]
fn an_idempotency_key_returns_the_same_run_for_the_same_upload_only() {
    let app = spawn_app();
    let text = format!("{HEADER}\nE1,a@example.com,Ada,Lovelace,2024-01-01\n");
    let send = |query: &str, body: &str| {
        app.request(Method::POST, &format!("/v1/syncs?{query}"))
            .header("Content-Type", "text/csv")
            .header("Idempotency-Key", "upload-2026-11-30")
            .body(body.to_owned())
            .send()
            .unwrap()
    };
    let first = send("mode=full", &text);
    assert_eq!(first.status().as_u16(), 202);
    let first: Value = first.json().unwrap();
    let again = send("mode=full", &text);
    assert_eq!(again.status().as_u16(), 200);
    assert_eq!(again.json::<Value>().unwrap()["id"], first["id"]);
    // The same file as another mode is another request.
    assert_problem(send("mode=incremental", &text), 422);
    let other_file = text.replace("Ada", "Ava");
    assert_problem(send("mode=full", &other_file), 422);
    assert_eq!(runs(&app).len(), 1);
}

/// The people of the equivalence test, as cells; `teams` separated by `|`.
const PEOPLE_COLUMNS: &[&str] = &[
    "external_id",
    "email",
    "first_name",
    "last_name",
    "start_date",
    "manager_external_id",
    "role",
    "phone",
    "gender",
    "date_of_birth",
    "teams",
];

fn people(version: u32) -> Vec<Vec<String>> {
    let mut rows = vec![
        vec![
            "M1",
            "grace@example.com",
            "Grace",
            "Hopper",
            "2019-05-01",
            "",
            "admin",
            "+44 2071838750",
            "F",
            "12/09/1906",
            "Engineering",
        ],
        vec![
            "E2",
            "ada@example.com",
            "Ada",
            "Lovelace",
            "2024-03-01",
            "M1",
            "member",
            "",
            "F",
            "",
            "Engineering|Research",
        ],
        vec![
            "E3",
            "alan@example.com",
            "Alan",
            "Turing",
            "2024-03-01",
            "M1",
            "guest",
            "",
            "M",
            "",
            "",
        ],
        vec![
            "E4",
            "not-an-email",
            "Bad",
            "Email",
            "2024-03-01",
            "",
            "",
            "",
            "",
            "",
            "",
        ],
        vec![
            "E5",
            "no.start@example.com",
            "No",
            "Start",
            "",
            "",
            "",
            "",
            "",
            "",
            "Sales",
        ],
        vec![
            "E6",
            "cycle@example.com",
            "Own",
            "Manager",
            "2024-03-01",
            "E6",
            "",
            "",
            "",
            "",
            "",
        ],
        vec![
            "E7",
            "phone@example.com",
            "Bad",
            "Phone",
            "2024-03-01",
            "",
            "",
            "+442071838750",
            "X",
            "",
            "",
        ],
    ];
    if version == 2 {
        rows[1][3] = "Byron";
        rows[1][10] = "Research";
        rows.remove(2);
    }
    rows.into_iter()
        .map(|row| row.into_iter().map(str::to_owned).collect())
        .collect()
}

fn as_csv(rows: &[Vec<String>]) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(PEOPLE_COLUMNS).unwrap();
    for row in rows {
        writer.write_record(row).unwrap();
    }
    String::from_utf8(writer.into_inner().unwrap()).unwrap()
}

fn as_json(rows: &[Vec<String>]) -> Value {
    let users: Vec<Value> = rows
        .iter()
        .map(|row| {
            let mut record = serde_json::Map::new();
            for (column, cell) in PEOPLE_COLUMNS.iter().zip(row) {
                let value = if *column == "teams" {
                    json!(cell
                        .split('|')
                        .filter(|t| !t.is_empty())
                        .collect::<Vec<_>>())
                } else {
                    json!(cell)
                };
                record.insert((*column).to_owned(), value);
            }
            Value::Object(record)
        })
        .collect();
    json!({"source": "hris", "mode": "full", "users": users})
}

/// Events without what differs by construction between two databases (user ids) and
/// between the formats (rows: a record's position, a CSV line).
fn comparable(events: Vec<Value>, row_offset: i64) -> Vec<Value> {
    events
        .into_iter()
        .map(|mut event| {
            let object = event.as_object_mut().unwrap();
            object.remove("user_id");
            if let Some(row) = object["row"].as_i64() {
                object.insert("row".into(), json!(row - row_offset));
            }
            event
        })
        .collect()
}

#[test]
fn csv_and_json_pushes_of_the_same_people_give_the_same_events() {
    let json_app = spawn_app();
    let csv_app = spawn_app();
    for version in [1, 2] {
        let rows = people(version);
        let json_run =
            json_app.wait_for_run(json_app.push_body(&as_json(&rows))["id"].as_str().unwrap());
        let csv_run = sync_csv(&csv_app, "source=hris&mode=full", &as_csv(&rows));
        for key in ["status", "counts", "issues", "records"] {
            assert_eq!(json_run[key], csv_run[key], "version {version}: {key}");
        }
        let json_events = comparable(json_app.events(json_run["id"].as_str().unwrap(), ""), 0);
        let csv_events = comparable(csv_app.events(csv_run["id"].as_str().unwrap(), ""), 1);
        assert!(json_events.len() > 5, "{json_events:?}");
        assert_eq!(json_events, csv_events, "version {version}");
    }
}

#[test]
fn log_csv_repeats_the_file_cell_for_cell_with_a_status_on_every_line() {
    let app = spawn_app();
    define_custom_fields(&app, json!([{"key": "level", "type": "number"}]));
    let first = format!(
        "{HEADER};custom.level\n\
E1;a@example.com;Ada;Lovelace;2024-01-01;1\n\
E2;b@example.com;Bob;Smith;2024-01-01;2\n\
E3;c@example.com;Cy;Young;2024-01-01;3\n"
    )
    .replace(',', ";");
    let run = sync_csv(&app, "mode=full", &first);
    assert_eq!(run["counts"]["created"], 3, "{run}");

    let second = format!(
        "\u{feff}{};custom.level;Note\r\n\
E1;a@example.com;Ada;Lovelace;2024-01-01;1;\"unchanged; really\"\r\n\
E2;b@example.com;Bob;\"Smith-Jones\";2024-01-01;2;married\r\n\
E5;e@example.com;Eve;Adams;2024-01-01;two;new\r\n\
E6;;Fay;Nomail;2024-01-01;;\r\n\
E7;same@example.com;Gil;One;2024-01-01;;\r\n\
E8;SAME@example.com;Hal;Two;2024-01-01;;\r\n\
E9;i@example.com;Ivy;Extra;2024-01-01;;x;y\r\n\
;;;;;;\r\n\
E10;j@example.com;Jo;\"Multi\r\nLine\";2024-01-01;;\"a, b\"\r\n",
        HEADER.replace(',', ";")
    );
    let run = sync_csv(&app, "mode=full", &second);
    let run_id = run["id"].as_str().unwrap();
    let response = log_csv(&app, run_id);
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    assert!(response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains(&format!("sync-{run_id}-log.csv")));
    let log = response.text().unwrap();
    assert!(log.starts_with('\u{feff}'), "the byte order mark is kept");
    assert!(
        !log.replace("\r\n", "").contains('\n'),
        "the file's CRLF line ends are kept"
    );

    let original = records(&second, b';');
    let logged = records(&log, b';');
    assert_eq!(logged.len(), original.len() + 1, "one line appended: {log}");
    assert_eq!(logged[0][..2], ["ImportStatus", "ImportDetail"]);
    for (line, original) in logged.iter().zip(&original) {
        assert_eq!(line[2..], original[..], "cell for cell");
    }
    let status = |external_id: &str| -> (String, String) {
        let line = logged
            .iter()
            .find(|line| line.get(2).map(String::as_str) == Some(external_id))
            .unwrap_or_else(|| panic!("{external_id} in {log}"));
        (line[0].clone(), line[1].clone())
    };
    assert_eq!(status("E1"), ("NoActionDone".into(), String::new()));
    assert_eq!(status("E2").0, "UserUpdated");
    let (eve, eve_detail) = status("E5");
    assert_eq!(eve, "CustomFieldSyncIssue");
    assert!(
        eve_detail.starts_with("CUSTOM_FIELD_TYPE_MISMATCH: "),
        "{eve_detail}"
    );
    let (fay, fay_detail) = status("E6");
    assert_eq!(fay, "InvalidUser");
    assert!(fay_detail.starts_with("MISSING_EMAIL: "), "{fay_detail}");
    assert_eq!(status("E7").0, "DuplicateUser");
    assert_eq!(status("E8").0, "DuplicateUser");
    let (ivy, ivy_detail) = status("E9");
    assert_eq!(ivy, "Error");
    assert!(
        ivy_detail.starts_with("CSV_LINE_UNREADABLE: Line 8 has 8 field(s)"),
        "{ivy_detail}"
    );
    assert_eq!(status("E10").0, "UserCreated");
    assert_eq!(status("").0, "NoActionDone", "the blank line");
    let archived = logged.last().unwrap();
    assert_eq!(archived[0], "UserArchived");
    assert_eq!(archived[2..6], ["E3", "c@example.com", "Cy", "Young"]);
    assert_eq!(archived.len(), original[0].len() + 2);
}

#[test]
fn log_csv_is_404_for_a_json_run_and_409_with_retry_after_while_a_run_is_pending() {
    let app = spawn_app_with(|config| config.worker_poll_interval = Duration::from_secs(3600));
    let json_run = app.wait_for_run(
        app.push("full", json!([crate::helpers::person("E1")]))["id"]
            .as_str()
            .unwrap(),
    );
    let problem = assert_problem(log_csv(&app, json_run["id"].as_str().unwrap()), 404);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("only for CSV uploads"),
        "{problem}"
    );
    assert_problem(log_csv(&app, "no-such-run"), 404);

    // Stored without waking the worker, which polls once an hour here: it stays pending. (The
    // pause lets the worker go back to sleep after the JSON run.)
    std::thread::sleep(Duration::from_millis(300));
    let mut conn = hris_sync::store::connect(&app.database_url, 1)
        .expect("db")
        .get()
        .expect("conn");
    let body = format!("{HEADER}\nE2,b@example.com,Bob,Smith,2024-01-01\n");
    let stored = hris_sync::store::runs::insert(
        &mut conn,
        &hris_sync::store::runs::NewRun {
            organization_id: &app.organization_id,
            mode: hris_sync::domain::SyncMode::Incremental,
            source: "hris",
            dry_run: false,
            content_type: "text/csv",
            body: &hris_sync::store::payloads::WholeBody(body.as_bytes()),
            record_count: 1,
            retry_of: None,
            idempotency: None,
        },
    )
    .expect("stored");
    let hris_sync::store::runs::Stored::Created(pending) = stored else {
        panic!("a new run");
    };
    let response = log_csv(&app, &pending.id);
    assert_eq!(response.headers()["retry-after"], "2");
    let problem = assert_problem(response, 409);
    assert!(
        problem["detail"].as_str().unwrap().contains("pending"),
        "{problem}"
    );
}

#[test]
fn the_openapi_document_shows_both_request_bodies_and_the_csv_log() {
    let app = spawn_app();
    let spec = app.get_json("/api-docs/openapi.json");
    let push = &spec["paths"]["/v1/syncs"]["post"];
    assert_eq!(push["operationId"], "pushSync");
    let content = &push["requestBody"]["content"];
    assert!(
        content["application/json"]["schema"].is_object(),
        "{content}"
    );
    assert!(
        content["text/csv"]["example"]
            .as_str()
            .unwrap()
            .starts_with("external_id,email,first_name,last_name"),
        "{content}"
    );
    let log = &spec["paths"]["/v1/syncs/{id}/log.csv"]["get"];
    assert_eq!(log["operationId"], "getSyncRunLogCsv");
    assert!(
        log["responses"]["200"]["content"]["text/csv"].is_object(),
        "{log}"
    );
    assert!(log["description"]
        .as_str()
        .unwrap()
        .contains("DuplicateUser"));
}

#[test]
fn a_large_log_csv_streams_every_line_in_order_and_a_retry_of_an_upload_reads_the_file_again() {
    let app = spawn_app();
    let people = 3_000;
    let mut text = String::from("external_id,email,first_name,last_name,start_date,teams,note\n");
    for i in 0..people {
        text.push_str(&format!(
            "E{i:05},person.{i}@example.com,Fïrst {i},\"Last, {i}\",2024-01-01,Team {}|All,\"a note long enough to fill the chunks of the stream, {i}\"\n",
            i % 7
        ));
    }
    let run = sync_csv(&app, "mode=full", &text);
    assert_eq!(run["counts"]["created"], people, "{run}");
    let log = log_csv(&app, run["id"].as_str().unwrap()).text().unwrap();
    assert!(
        log.len() > 256 * 1024,
        "several chunks: {} bytes",
        log.len()
    );
    let original = records(&text, b',');
    let logged = records(&log, b',');
    assert_eq!(logged.len(), original.len());
    for (line, original) in logged.iter().zip(&original).skip(1) {
        assert_eq!(line[0], "UserCreated");
        assert_eq!(line[2..], original[..]);
    }

    let response = app
        .request(
            Method::POST,
            &format!("/v1/syncs/{}/retry", run["id"].as_str().unwrap()),
        )
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let retry: Value = response.json().unwrap();
    let retry = app.wait_for_run(retry["id"].as_str().unwrap());
    assert_eq!(retry["status"], "succeeded", "{retry}");
    assert_eq!(retry["counts"]["unchanged"], people);
    let log = log_csv(&app, retry["id"].as_str().unwrap()).text().unwrap();
    let logged = records(&log, b',');
    assert_eq!(logged.len(), original.len());
    assert!(logged.iter().skip(1).all(|line| line[0] == "NoActionDone"));
}

#[test]
fn export_zip_includes_the_log_csv_of_an_upload_and_only_of_an_upload() {
    use std::io::Read as _;
    let app = spawn_app();
    let upload = sync_csv(
        &app,
        "source=hris",
        "external_id,email,first_name,last_name,start_date\r\nZ1,z1@example.com,Zoé,One,2024-01-15\r\n",
    );
    let upload_id = upload["id"].as_str().unwrap().to_owned();
    let json_run = app.sync("incremental", json!([crate::helpers::person("Z2")]));
    let json_id = json_run["id"].as_str().unwrap().to_owned();

    let response = app.get(&format!("/v1/syncs/export.zip?ids={upload_id},{json_id}"));
    assert_eq!(response.status().as_u16(), 200);
    let body = response.bytes().unwrap().to_vec();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(body)).expect("a zip");
    let names: Vec<String> = archive
        .file_names()
        .map(|name| name.expect("a readable name").into_owned())
        .collect();
    assert!(
        names.contains(&format!("sync-{upload_id}/log.csv")),
        "{names:?}"
    );
    assert!(
        !names.contains(&format!("sync-{json_id}/log.csv")),
        "{names:?}"
    );

    let mut archived = Vec::new();
    archive
        .by_name(&format!("sync-{upload_id}/log.csv"))
        .unwrap()
        .read_to_end(&mut archived)
        .unwrap();
    let served = log_csv(&app, &upload_id).bytes().unwrap().to_vec();
    assert_eq!(
        archived, served,
        "the archive holds the log.csv the API serves"
    );
}
