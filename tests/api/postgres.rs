//! PostgreSQL-specific guards (run only when `HRIS_SYNC_TEST_POSTGRES_URL` is set).

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;
use hris_sync::store::{begin_bulk_transaction, DbConn};

use crate::helpers::{postgres_url, TestDatabase, POSTGRES_URL_VAR};

#[derive(QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    line: String,
}

/// The generic plan of PostgreSQL's check of the manager foreign key (the query its
/// referential-integrity trigger prepares once per connection and then reuses), as a run's
/// transaction sees it.
fn manager_check_plan(database_url: &str) -> String {
    let mut conn = DbConn::Postgres(PgConnection::establish(database_url).expect("connection"));
    conn.transaction(|conn| {
        begin_bulk_transaction(conn)?;
        let DbConn::Postgres(pg) = conn else {
            unreachable!("a PostgreSQL connection")
        };
        pg.batch_execute(
            "SET LOCAL plan_cache_mode = force_generic_plan;
             PREPARE manager_check (text, text) AS
                 SELECT 1 FROM ONLY users x WHERE organization_id = $1 AND id = $2
                 FOR KEY SHARE OF x;",
        )?;
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

#[test]
fn the_manager_foreign_key_check_looks_users_up_by_key_even_on_a_fresh_table() {
    if postgres_url().is_none() {
        eprintln!("skipped: needs PostgreSQL ({POSTGRES_URL_VAR}; see scripts/with-postgres)");
        return;
    }
    let database = TestDatabase::new();
    // A fresh, never analysed table is where the planner went wrong: it picked an index on
    // (organization_id, …) with `id` as a filter, a scan of the whole organization for each
    // inserted user, and a first sync of 100,000 users took 503 s.
    let plan = manager_check_plan(database.url());
    assert!(plan.contains("Index"), "{plan}");
    assert!(
        plan.contains("users_pkey") || plan.contains("users_organization_id_id_key"),
        "{plan}"
    );
    assert!(!plan.contains("Filter"), "a scan with a filter: {plan}");
    assert!(!plan.contains("Seq Scan"), "{plan}");
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
