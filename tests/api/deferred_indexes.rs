//! SQLite: the first sync of an organization that at least doubles the users table drops the
//! table's secondary indexes and builds them after its inserts (`store::deferred_indexes`). It
//! must end exactly as a run that inserts into them, leave a directory that later runs find the
//! same, and leave the indexes in place if it fails. The threshold (10,000 new users) is
//! lowered here so that small pushes take that path; on PostgreSQL the path is never taken, and
//! these tests check the runs alone.

use serde_json::{json, Value};

use crate::helpers::{person, spawn_app_with, with, TestApp};
use crate::outcomes::{differences, outcome};

/// A server that builds the users' indexes after the inserts of any first sync that doubles
/// the table (`Some(1)`), or never (`None`).
fn server(defer_from: Option<usize>) -> TestApp {
    spawn_app_with(|config| {
        config.test_hooks.defer_user_indexes_from = Some(defer_from.unwrap_or(usize::MAX));
    })
}

/// The `CREATE INDEX` statements of `users`, by name; `None` on PostgreSQL.
fn user_indexes(app: &TestApp) -> Option<Vec<(String, String)>> {
    if crate::helpers::postgres_url().is_some() {
        return None;
    }
    let conn = rusqlite::Connection::open(&app.db_path).expect("the test's SQLite file");
    let mut statement = conn
        .prepare(
            "SELECT name, sql FROM sqlite_schema \
             WHERE type = 'index' AND tbl_name = 'users' AND sql IS NOT NULL ORDER BY name",
        )
        .expect("query");
    let indexes = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .expect("rows")
        .collect::<Result<Vec<(String, String)>, _>>()
        .expect("index definitions");
    Some(indexes)
}

/// `count` people from `first` on, a manager for every eight (the first of each eight), some
/// in teams; person 13 of a push names a manager nobody has, person 21 has no valid e-mail.
fn people(first: usize, count: usize) -> Vec<Value> {
    (first..first + count)
        .map(|i| {
            let mut record = person(&format!("E{i:03}"));
            let manager = i - i % 8;
            if manager != i {
                record = with(
                    record,
                    json!({"manager_external_id": format!("E{manager:03}")}),
                );
            }
            if i % 5 == 0 {
                record = with(record, json!({"teams": [format!("Team {}", i % 3)]}));
            }
            match i - first {
                13 => with(record, json!({"manager_external_id": "NOBODY"})),
                21 => with(record, json!({"email": "not an address"})),
                _ => record,
            }
        })
        .collect()
}

#[test]
fn runs_with_the_indexes_built_after_their_inserts_end_as_runs_inserting_into_them() {
    let building = server(Some(1));
    let inserting = server(None);
    let migrated = user_indexes(&inserting);
    let mut changed = people(0, 40);
    changed[3] = with(changed[3].clone(), json!({"last_name": "Renamed"}));
    changed[9] = with(changed[9].clone(), json!({"manager_external_id": "E016"}));
    changed.extend(people(40, 48));
    // The first sync builds the indexes after its inserts on one server; the runs after it
    // update, create and archive users the same way on both.
    let pushes = [
        ("full", people(0, 40)),
        ("full", changed.clone()),
        ("incremental", people(88, 3)),
        ("full", changed),
    ];
    for (step, (mode, records)) in pushes.into_iter().enumerate() {
        let ours = building.sync(mode, json!(records.clone()));
        let theirs = inserting.sync(mode, json!(records));
        assert!(
            ours["status"].as_str().unwrap().starts_with("succeeded"),
            "{ours}"
        );
        let (a, b) = (outcome(&building, &ours), outcome(&inserting, &theirs));
        assert!(
            a == b,
            "step {step}: differs at {:?}",
            differences(&a, &b, "")
        );
        assert_eq!(user_indexes(&building), migrated, "step {step}");
    }
    let users = building.users("");
    assert_eq!(users.len(), 87, "91 people, 4 of them never valid");
    let mut reports_of_e016: Vec<&str> = users
        .iter()
        .filter(|user| user["manager_external_id"] == "E016")
        .map(|user| user["external_id"].as_str().unwrap())
        .collect();
    reports_of_e016.sort_unstable();
    assert_eq!(
        reports_of_e016,
        ["E009", "E017", "E018", "E019", "E020", "E022", "E023"]
    );
}

#[test]
fn a_run_failing_after_dropping_the_indexes_leaves_them_and_the_directory_as_they_were() {
    let app = spawn_app_with(|config| {
        config.test_hooks.defer_user_indexes_from = Some(1);
        config.test_hooks.fail_apply_after_writes = Some(5);
    });
    let migrated = user_indexes(&app);
    let run = app.sync("full", json!(people(0, 40)));
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(app.users(""), Vec::<Value>::new());
    assert_eq!(user_indexes(&app), migrated);

    // Under the failure hook's five writes: applied, the indexes built again.
    let run = app.sync("incremental", json!(people(0, 3)));
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(app.users("").len(), 3);
    assert_eq!(user_indexes(&app), migrated);
}
