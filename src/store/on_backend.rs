//! `on_backend!`: a query run on the backend's own connection instead of through the
//! `MultiConnection`, for the reads every request makes.
//!
//! Through the `MultiConnection`, every execution writes the query's SQL out again: its wrapper
//! renders the whole statement even when Diesel only collects the bind values, and for a row of
//! 25 columns that was ~14 % of the CPU of `GET /v1/syncs/{id}`. The backend's own connection
//! finds the prepared statement of a query whose SQL is static by the query's type, and only
//! binds the values.

/// `on_backend!(conn, |c| expression)`: the expression with `c` the SQLite or PostgreSQL
/// connection inside `conn` (a `&mut DbConn`). The expression is written out once per
/// backend, so that its types (a `Selectable`'s backend) are inferred for each.
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::store::DbConn::Sqlite($c) => $body,
            $crate::store::DbConn::Postgres($c) => $body,
        }
    };
}

pub(crate) use on_backend;
