//! Teams, created on demand by syncs.

use diesel::prelude::*;

use crate::store::models::TeamRow;
use crate::store::schema::teams;
use crate::store::DbConn;

pub fn load_all(conn: &mut DbConn, organization_id: &str) -> QueryResult<Vec<TeamRow>> {
    teams::table
        .filter(teams::organization_id.eq(organization_id))
        .select(TeamRow::as_select())
        .load(conn)
}

/// Rows per multi-row INSERT on PostgreSQL (5 columns).
const POSTGRES_INSERT_CHUNK: usize = 5_000;

/// SQLite: a cached prepared statement per row (as fast as a multi-row insert inside a
/// transaction); PostgreSQL: multi-row inserts, since every statement is a round trip.
pub fn insert_all(conn: &mut DbConn, rows: &[TeamRow]) -> QueryResult<()> {
    match conn {
        DbConn::Sqlite(c) => {
            for row in rows {
                diesel::insert_into(teams::table).values(row).execute(c)?;
            }
        }
        DbConn::Postgres(c) => {
            for chunk in rows.chunks(POSTGRES_INSERT_CHUNK) {
                diesel::insert_into(teams::table).values(chunk).execute(c)?;
            }
        }
    }
    Ok(())
}
