//! PostgreSQL-specific guards (run only when `HRIS_SYNC_TEST_POSTGRES_URL` is set).

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;
use hris_sync::store::{begin_bulk_transaction, refresh_statistics_after_first_batch, DbConn};

use crate::helpers::{postgres_url, TestDatabase, POSTGRES_URL_VAR};

#[derive(QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    line: String,
}

/// The generic plan of PostgreSQL's check of the manager foreign key (the query its
/// referential-integrity trigger prepares once per connection and then reuses), planned on an
/// organization without users, as a run's transaction uses it after writing its first batch of
/// new users (managers first).
fn manager_check_plan(database_url: &str, organization_id: &str) -> String {
    use hris_sync::domain::{ApprovalProcess, Role, UserState};
    use hris_sync::store::models::UserRow;
    let mut conn = DbConn::Postgres(PgConnection::establish(database_url).expect("connection"));
    conn.transaction(|conn| {
        begin_bulk_transaction(conn)?;
        // Planned and cached while the organization has no user yet, as the check is when a
        // run's first new user is inserted.
        let DbConn::Postgres(pg) = &mut *conn else {
            unreachable!("a PostgreSQL connection")
        };
        pg.batch_execute(
            "SET LOCAL plan_cache_mode = force_generic_plan;
             PREPARE manager_check (text, text) AS
                 SELECT 1 FROM ONLY users x WHERE organization_id = $1 AND id = $2
                 FOR KEY SHARE OF x;
             EXECUTE manager_check('org', 'user');",
        )?;
        let now = hris_sync::store::now();
        let mut rows: Vec<UserRow> = Vec::new();
        for i in 0..1_000 {
            let mut row = UserRow::new(
                organization_id,
                UserState::Active,
                Role::Member,
                ApprovalProcess::None,
                &now,
            );
            row.external_id = Some(format!("E{i}"));
            row.email_key = format!("e{i}@example.com");
            row.email = row.email_key.clone();
            row.manager_id = (i > 0).then(|| rows[(i - 1) / 8].id.clone());
            rows.push(row);
        }
        hris_sync::store::users::insert_all(conn, &rows)?;
        refresh_statistics_after_first_batch(conn)?;
        let DbConn::Postgres(pg) = conn else {
            unreachable!("a PostgreSQL connection")
        };
        let lines: Vec<PlanLine> =
            diesel::sql_query("EXPLAIN EXECUTE manager_check('org', 'user')").load(pg)?;
        pg.batch_execute("DEALLOCATE manager_check;")?;
        diesel::QueryResult::Ok(
            lines
                .into_iter()
                .map(|l| l.line)
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })
    .expect("plan")
}

fn assert_looked_up_by_key(plan: &str) {
    assert!(plan.contains("Index"), "{plan}");
    assert!(
        plan.contains("users_pkey") || plan.contains("users_organization_id_id_key"),
        "{plan}"
    );
    assert!(!plan.contains("Filter"), "a scan with a filter: {plan}");
}

fn organization(database_url: &str) -> String {
    let pool = hris_sync::store::connect(database_url, 1).expect("database");
    let mut conn = pool.get().expect("connection");
    hris_sync::store::organizations::create(&mut conn, "acme")
        .expect("organization")
        .organization
        .id
}

#[test]
fn the_manager_foreign_key_check_looks_users_up_by_key_on_a_never_analysed_table() {
    if postgres_url().is_none() {
        eprintln!("skipped: needs PostgreSQL ({POSTGRES_URL_VAR}; see scripts/with-postgres)");
        return;
    }
    let database = TestDatabase::new();
    let organization = organization(database.url());
    assert_looked_up_by_key(&manager_check_plan(database.url(), &organization));
}

#[test]
fn the_manager_foreign_key_check_looks_users_up_by_key_on_a_table_analysed_empty() {
    if postgres_url().is_none() {
        eprintln!("skipped: needs PostgreSQL ({POSTGRES_URL_VAR}; see scripts/with-postgres)");
        return;
    }
    // As after autovacuum cleaned up an aborted first sync: statistics say 0 rows, and every
    // index costs the same to the planner.
    let database = TestDatabase::new();
    let organization = organization(database.url());
    let mut conn = PgConnection::establish(database.url()).expect("connection");
    conn.batch_execute("ANALYZE users;").unwrap();
    assert_looked_up_by_key(&manager_check_plan(database.url(), &organization));
}

#[derive(QueryableByName)]
struct Setting {
    #[diesel(sql_type = Text)]
    statement_timeout: String,
}

#[test]
fn the_statement_timeout_is_set_on_every_connection_of_the_pool() {
    if postgres_url().is_none() {
        eprintln!("skipped: needs PostgreSQL ({POSTGRES_URL_VAR}; see scripts/with-postgres)");
        return;
    }
    let database = TestDatabase::new();
    let options = hris_sync::store::PoolOptions {
        size: 2,
        timeout: std::time::Duration::from_secs(5),
        statement_timeout: Some(std::time::Duration::from_millis(1_500)),
    };
    let pool = hris_sync::store::connect_with(database.url(), &options).expect("pool");
    let connections = [pool.get().unwrap(), pool.get().unwrap()];
    for mut conn in connections {
        let DbConn::Postgres(pg) = &mut *conn else {
            unreachable!("a PostgreSQL connection")
        };
        let shown: Setting = diesel::sql_query("SHOW statement_timeout")
            .get_result(pg)
            .unwrap();
        assert_eq!(shown.statement_timeout, "1500ms");
        let slow = diesel::sql_query("SELECT pg_sleep(3)").execute(pg);
        let error = slow.expect_err("cancelled by the timeout").to_string();
        assert!(error.contains("statement timeout"), "{error}");
    }
}
