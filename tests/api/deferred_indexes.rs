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

/// `count` people from `first` on: E000 manages E001–E007, E008 manages E009–E015, and so on
/// (from a multiple of eight, every manager is in the push); some in teams; person 13 of the
/// push names a manager nobody has, person 21 has no valid e-mail.
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

/// SQLite's schema version: it moves when an index is dropped or created. `None` on
/// PostgreSQL.
fn schema_version(app: &TestApp) -> Option<i64> {
    if crate::helpers::postgres_url().is_some() {
        return None;
    }
    let conn = rusqlite::Connection::open(&app.db_path).expect("the test's SQLite file");
    Some(
        conn.query_row("PRAGMA schema_version", [], |row| row.get(0))
            .expect("schema version"),
    )
}

/// Runs `work` against `app` as another organization (its id and admin token).
fn as_organization<T>(
    app: &mut TestApp,
    (organization_id, token): &(String, String),
    work: impl FnOnce(&TestApp) -> T,
) -> T {
    let own = (app.organization_id.clone(), app.admin_token.clone());
    app.organization_id = organization_id.clone();
    app.admin_token = token.clone();
    let result = work(app);
    (app.organization_id, app.admin_token) = own;
    result
}

/// Pushes to both servers, checks that both runs end the same way and that only `building`'s
/// schema moved, and only when `deferred` says so (SQLite).
fn sync_both(
    building: &TestApp,
    inserting: &TestApp,
    mode: &str,
    records: &[Value],
    deferred: bool,
) {
    let versions = (schema_version(building), schema_version(inserting));
    let ours = building.sync(mode, json!(records));
    let theirs = inserting.sync(mode, json!(records));
    assert!(
        ours["status"].as_str().unwrap().starts_with("succeeded"),
        "{ours}"
    );
    let (a, b) = (outcome(building, &ours), outcome(inserting, &theirs));
    assert!(
        a == b,
        "{mode} push differs at {:?}",
        differences(&a, &b, "")
    );
    if let (Some(building_before), Some(inserting_before)) = versions {
        assert_eq!(
            schema_version(building).unwrap() > building_before,
            deferred,
            "{mode} push: indexes built after the inserts"
        );
        assert_eq!(schema_version(inserting), Some(inserting_before));
    }
}

/// Both servers hold the same people (every field but ids and times), managers included.
#[test]
fn runs_with_the_indexes_built_after_their_inserts_end_as_runs_inserting_into_them() {
    let mut building = server(Some(1));
    let mut inserting = server(None);
    let migrated = user_indexes(&inserting);

    sync_both(&building, &inserting, "full", &people(0, 40), true);
    assert_eq!(user_indexes(&building), migrated);

    // Another organization's first sync: 38 people to create, 38 rows in the table (the first
    // organization's), so it builds the indexes after its inserts too, over every row.
    let others = (
        building.other_organization(),
        inserting.other_organization(),
    );
    as_organization(&mut building, &others.0, |building| {
        as_organization(&mut inserting, &others.1, |inserting| {
            sync_both(building, inserting, "full", &people(104, 40), true);
        })
    });
    assert_eq!(user_indexes(&building), migrated);

    // The runs after a first sync update, create and archive users the same way on both.
    let mut changed = people(0, 40);
    changed[3] = with(changed[3].clone(), json!({"last_name": "Renamed"}));
    changed[9] = with(changed[9].clone(), json!({"manager_external_id": "E016"}));
    changed.extend(people(40, 48));
    sync_both(&building, &inserting, "full", &changed, false);
    sync_both(&building, &inserting, "incremental", &people(88, 3), false);
    sync_both(&building, &inserting, "full", &changed, false);
    assert_eq!(user_indexes(&building), migrated);

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
    let theirs = as_organization(&mut building, &others.0, |building| building.users(""));
    assert_eq!(
        theirs.len(),
        38,
        "the other organization's people, found by its indexes"
    );
}

#[test]
fn a_run_failing_after_dropping_the_indexes_leaves_them_and_the_directory_as_they_were() {
    let app = spawn_app_with(|config| {
        config.test_hooks.defer_user_indexes_from = Some(1);
        config.test_hooks.fail_apply_after_writes = Some(5);
    });
    let migrated = user_indexes(&app);
    let version = schema_version(&app);
    // The planner fails after five writes; the writer stops there, without building the
    // indexes again: the rollback is what puts them back.
    let run = app.sync("full", json!(people(0, 40)));
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(app.users(""), Vec::<Value>::new());
    assert_eq!(user_indexes(&app), migrated);
    assert_eq!(schema_version(&app), version, "nothing of the run kept");

    // Under the failure hook's five writes: applied, the indexes built again.
    let run = app.sync("incremental", json!(people(0, 3)));
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(app.users("").len(), 3);
    assert_eq!(user_indexes(&app), migrated);
    assert!(schema_version(&app) > version || version.is_none());
}

/// A first sync held for approval writes nothing; approved, it is applied as any first sync,
/// its indexes built after its inserts.
#[test]
fn a_first_sync_approved_later_builds_the_indexes_when_it_is_applied() {
    let app = server(Some(1));
    let response = app
        .client
        .put(app.url("/v1/settings/provisioning"))
        .bearer_auth(&app.admin_token)
        .json(&json!({"approval": {"mode": "always"}}))
        .send()
        .expect("settings");
    assert_eq!(response.status().as_u16(), 200);
    let migrated = user_indexes(&app);
    let version = schema_version(&app);

    let run = app.sync("full", json!(people(0, 40)));
    assert_eq!(run["status"], "awaiting_approval", "{run}");
    assert_eq!(
        schema_version(&app),
        version,
        "a waiting run writes only its report"
    );

    let id = run["id"].as_str().unwrap();
    let response = app
        .client
        .post(app.url(&format!("/v1/syncs/{id}/approve")))
        .bearer_auth(&app.admin_token)
        .send()
        .expect("approve");
    assert_eq!(response.status().as_u16(), 200);
    let run: Value = response.json().expect("the run");
    assert_eq!(run["status"], "approved", "{run}");
    assert_eq!(run["counts"]["created"], 38, "{run}");
    assert_eq!(app.users("").len(), 38);
    assert_eq!(user_indexes(&app), migrated);
    if let (Some(before), Some(after)) = (version, schema_version(&app)) {
        assert!(after > before, "the indexes built after the inserts");
    }
}
