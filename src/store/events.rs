//! The report of a run: its events, in planned order.

use diesel::prelude::*;

use crate::domain::{EntityKind, EventKind, UpdateAction};
use crate::store::models::EventRow;
use crate::store::schema::sync_events;
use crate::store::users::like_pattern;
use crate::store::DbConn;

/// SQLite: a cached prepared statement per row; PostgreSQL: one binary `COPY … FROM STDIN`.
pub fn insert_all(conn: &mut DbConn, rows: &[EventRow]) -> QueryResult<()> {
    match conn {
        DbConn::Sqlite(c) => {
            for row in rows {
                diesel::insert_into(sync_events::table)
                    .values(row)
                    .execute(c)?;
            }
        }
        DbConn::Postgres(c) => {
            if !rows.is_empty() {
                diesel::copy_from(sync_events::table)
                    .from_insertable(rows)
                    .execute(c)?;
            }
        }
    }
    Ok(())
}

/// Filters of `GET /v1/syncs/{id}/events`.
#[derive(Debug, Default, Clone)]
pub struct EventFilter {
    pub kind: Option<EventKind>,
    pub entity: Option<EntityKind>,
    pub action: Option<UpdateAction>,
    pub code: Option<String>,
    /// Matched, folded, against the person's names, e-mail and external id, and the team.
    pub query: Option<String>,
}

/// Events of a run in planned order, after the `after_seq` cursor.
pub fn list(
    conn: &mut DbConn,
    run_id: &str,
    filter: &EventFilter,
    after_seq: Option<i32>,
    limit: Option<i64>,
) -> QueryResult<Vec<EventRow>> {
    let mut query = sync_events::table
        .filter(sync_events::run_id.eq(run_id))
        .select(EventRow::as_select())
        .order(sync_events::seq)
        .into_boxed();
    if let Some(limit) = limit {
        query = query.limit(limit);
    }
    if let Some(kind) = filter.kind {
        query = query.filter(sync_events::kind.eq(kind.as_str()));
    }
    if let Some(entity) = filter.entity {
        query = query.filter(sync_events::entity.eq(entity.as_str()));
    }
    if let Some(action) = filter.action {
        query = query.filter(sync_events::action.eq(action.as_str()));
    }
    if let Some(code) = &filter.code {
        query = query.filter(sync_events::code.eq(code.clone()));
    }
    if let Some(text) = &filter.query {
        query = query.filter(
            sync_events::search_key
                .like(like_pattern(text))
                .escape('\\'),
        );
    }
    if let Some(after_seq) = after_seq {
        query = query.filter(sync_events::seq.gt(after_seq));
    }
    query.load(conn)
}
