//! A read of a row or two, run on the request's own worker thread when SQLite can answer it at
//! once, for `GET /v1/syncs/{id}`, which every integrator polls after each push.
//!
//! `web::block` hands work to a pooled thread and back: two thread wake-ups per request, which
//! for a read of one row by its key cost more than the read (measured with `wrk`, 64
//! connections: 20–26 µs of the server's CPU per request through `web::block`, 16 µs on the
//! worker, together with `store::on_backend!`). Only when the store is SQLite and a read
//! connection is idle: a reader of SQLite in WAL mode does not wait for writers, so the worker
//! is held for the read alone. PostgreSQL (a network round trip per query) and a pool with no
//! idle connection (the wait for one) go through `web::block`.

use actix_web::web;

use crate::error::AppError;
use crate::store::{DbConn, DbPool};

pub async fn point_read<T, F>(pool: &DbPool, read: F) -> Result<T, AppError>
where
    F: FnOnce(&mut DbConn) -> Result<T, AppError> + Send + 'static,
    T: Send + 'static,
{
    match pool.try_get() {
        Some(mut conn) if matches!(*conn, DbConn::Sqlite(_)) => read(&mut conn),
        Some(mut conn) => web::block(move || read(&mut conn)).await?,
        None => {
            let pool = pool.clone();
            web::block(move || read(&mut *pool.get()?)).await?
        }
    }
}
