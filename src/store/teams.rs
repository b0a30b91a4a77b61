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

pub fn insert_all(conn: &mut DbConn, rows: &[TeamRow]) -> QueryResult<()> {
    for row in rows {
        diesel::insert_into(teams::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}
