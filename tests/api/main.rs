//! Black-box tests over HTTP against the real server, each on its own fresh database: a
//! SQLite file, or a PostgreSQL database when `HRIS_SYNC_TEST_POSTGRES_URL` is set.

mod approval_gate;
mod auth;
mod cli;
mod csv_uploads;
mod deferred_indexes;
mod docs;
mod error_codes;
mod errors;
mod exports;
mod health;
mod helpers;
mod instances;
mod large_pushes;
mod openapi;
mod outcomes;
mod postgres;
mod provisioning_rules;
mod queue;
mod recovery;
mod reliability;
mod settings;
mod sync_approval;
mod sync_directory;
mod sync_push;
mod sync_reports;
mod sync_validation;
mod unchanged_pushes;
mod users;
