//! Pushes larger than a stored chunk: streamed to storage as they arrive, stored in chunks,
//! read back chunk by chunk by the run, with the limits that bound them named in the answers.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, person, spawn_app, spawn_app_with, with, TestApp};

/// Chunks stored for a run's body.
fn stored_chunks(app: &TestApp, run_id: &str) -> i64 {
    let pool = hris_sync::store::connect(&app.database_url, 1).expect("db");
    let mut conn = pool.get().expect("conn");
    hris_sync::store::payloads::chunk_count(&mut conn, run_id).expect("chunks")
}

/// A CSV file of `people` lines with long cells, so that lines cross chunk boundaries.
fn long_csv(people: usize, broken: usize) -> String {
    let mut text = String::from("external_id,email,first_name,last_name,start_date,note\n");
    for i in 0..people {
        let extra = if i == broken { ",extra" } else { "" };
        text.push_str(&format!(
            "E{i:06},person.{i}@example.com,Fïrst {i},\"Last, {i}\",2024-01-01,\"{}\nsecond line of the note\"{extra}\n",
            "a long note ".repeat(8)
        ));
    }
    text
}

#[test]
fn a_json_push_larger_than_a_chunk_is_stored_in_chunks_and_applied_whole() {
    let app = spawn_app();
    let people = 12_000;
    let users: Vec<Value> = (0..people)
        .map(|i| {
            with(
                person(&format!("E{i:06}")),
                json!({"first_name": "Fïrst ünïcode name to cut characters at chunk ends", "phone": "+44 2071838750"}),
            )
        })
        .collect();
    let body = json!({"mode": "full", "users": users}).to_string();
    assert!(body.len() > 2 * 1024 * 1024, "{} bytes", body.len());
    let response = app
        .request(Method::POST, "/v1/syncs")
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let run: Value = response.json().unwrap();
    let run_id = run["id"].as_str().unwrap();
    assert_eq!(run["records"], people);
    assert!(stored_chunks(&app, run_id) >= 3);
    let run = app.wait_for_run(run_id);
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["counts"]["created"], people);
    let users = app.users("q=E011999");
    assert_eq!(
        users[0]["first_name"],
        "Fïrst ünïcode name to cut characters at chunk ends"
    );
}

#[test]
fn a_csv_upload_larger_than_a_chunk_keeps_its_line_numbers_across_chunks() {
    let app = spawn_app();
    let people = 12_000;
    let index = people - 6;
    let text = long_csv(people, index);
    assert!(text.len() > 2 * 1024 * 1024, "{} bytes", text.len());
    let response = app
        .request(Method::POST, "/v1/syncs?mode=full")
        .header("Content-Type", "text/csv")
        .body(text.clone())
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let run: Value = response.json().unwrap();
    let run_id = run["id"].as_str().unwrap().to_owned();
    assert_eq!(run["records"], people);
    assert!(stored_chunks(&app, &run_id) >= 3);
    let run = app.wait_for_run(&run_id);
    assert_eq!(run["counts"]["created"], people - 1, "{run}");
    // Each person takes two lines of the file (the note wraps): the broken person is on
    // line 2 + 2 × (index).
    let issues = app.events(&run_id, "kind=issue");
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_eq!(issues[0]["code"], "CSV_LINE_UNREADABLE");
    assert_eq!(issues[0]["row"], 2 + 2 * index, "{issues:?}");

    let log = app
        .get(&format!("/v1/syncs/{run_id}/log.csv"))
        .text()
        .unwrap();
    let logged: Vec<csv::StringRecord> = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(log.trim_start_matches('\u{feff}').as_bytes())
        .records()
        .map(|record| record.expect("readable"))
        .collect();
    assert_eq!(logged.len(), people + 1);
    assert_ne!(
        &logged[index + 1][0],
        "UserCreated",
        "{:?}",
        logged[index + 1]
    );
    assert!(
        logged[index + 1][1].contains("CSV_LINE_UNREADABLE"),
        "{:?}",
        logged[index + 1]
    );
    assert_eq!(&logged[index + 1][2], format!("E{index:06}"));
    assert_eq!(&logged[index + 2][0], "UserCreated");
}

#[test]
fn limits_name_the_setting_that_raises_them_and_nothing_is_stored() {
    let app = spawn_app_with(|config| {
        config.body_limit_bytes = 4096;
        config.max_records_per_push = 2;
    });
    let users: Vec<Value> = (0..3).map(|i| person(&format!("E{i}"))).collect();
    let problem = assert_problem(app.post_json("/v1/syncs", &json!({"users": users})), 422);
    assert!(
        problem.to_string().contains("--max-records-per-push"),
        "{problem}"
    );
    let file =
        "external_id,email,first_name,last_name\nE1,a@b.co,A,B\nE2,b@b.co,B,C\nE3,c@b.co,C,D\n";
    let response = app
        .request(Method::POST, "/v1/syncs")
        .header("Content-Type", "text/csv")
        .body(file)
        .send()
        .unwrap();
    let problem = assert_problem(response, 422);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("--max-records-per-push"),
        "{problem}"
    );
    // Sent without Content-Length (chunked), so that the limit is found while reading.
    let big = format!("{{\"users\": [], \"source\": \"{}\"}}", "x".repeat(8192));
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big
        .into_bytes()
        .chunks(1000)
        .map(|chunk| Ok(chunk.to_vec()))
        .collect();
    let response = app
        .request(Method::POST, "/v1/syncs")
        .header("Content-Type", "application/json")
        .body(reqwest::blocking::Body::new(ChunkedBody::new(chunks)))
        .send()
        .unwrap();
    let problem = assert_problem(response, 413);
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("--max-body-bytes"), "{problem}");
    assert!(detail.contains("HRIS_SYNC_MAX_BODY_BYTES"), "{problem}");
    assert_eq!(app.get_json("/v1/syncs")["items"], json!([]));
}

/// A body of unknown length: reqwest sends it chunked.
struct ChunkedBody {
    chunks: std::vec::IntoIter<Result<Vec<u8>, std::io::Error>>,
    current: std::io::Cursor<Vec<u8>>,
}

impl ChunkedBody {
    fn new(chunks: Vec<Result<Vec<u8>, std::io::Error>>) -> ChunkedBody {
        ChunkedBody {
            chunks: chunks.into_iter(),
            current: std::io::Cursor::new(Vec::new()),
        }
    }
}

impl std::io::Read for ChunkedBody {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let n = self.current.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            match self.chunks.next() {
                Some(chunk) => self.current = std::io::Cursor::new(chunk?),
                None => return Ok(0),
            }
        }
    }
}
