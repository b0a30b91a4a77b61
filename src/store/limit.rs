//! `LIMIT n` written into the SQL text rather than bound as a parameter.
//!
//! The SQLite bundled by libsqlite3-sys 0.38 reads a bound `LIMIT` while it plans a statement
//! (`sqlite3ExprIsInteger` marks the parameter in the statement's `expmask`) and so plans the
//! statement again whenever that parameter is bound anew: Diesel binds it at
//! every execution, so every page query was parsed and planned again each time (a third of
//! the CPU time of `GET /v1/syncs/{id}` went there, through `.first()`). Point lookups use
//! `.get_result()` (no `LIMIT` at all); pages use [`LimitInline::limit_inline`]: each distinct
//! limit is its own cached statement, prepared once.

use diesel::backend::Backend;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::{QueryResult, RunQueryDsl};

/// A query with its `LIMIT` in the SQL text.
#[derive(Debug, Clone)]
pub struct Limited<Q> {
    query: Q,
    limit: i64,
}

impl<Q: Query> Query for Limited<Q> {
    type SqlType = Q::SqlType;
}

/// The SQL text depends on the limit's value, so the statement cache must key it by its text.
impl<Q> QueryId for Limited<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q, DB> QueryFragment<DB> for Limited<Q>
where
    DB: Backend,
    Q: QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.query.walk_ast(out.reborrow())?;
        out.push_sql(&format!(" LIMIT {}", self.limit));
        Ok(())
    }
}

impl<Q, Conn> RunQueryDsl<Conn> for Limited<Q> {}

pub trait LimitInline: Query + Sized {
    /// At most `limit` rows (a query without a `LIMIT` of its own).
    fn limit_inline(self, limit: i64) -> Limited<Self> {
        Limited {
            query: self,
            limit: limit.max(0),
        }
    }
}

impl<Q: Query> LimitInline for Q {}
