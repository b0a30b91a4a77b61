//! Black-box tests over HTTP against the real server, each on its own fresh SQLite file.

mod auth;
mod cli;
mod csv_uploads;
mod error_codes;
mod errors;
mod health;
mod helpers;
mod openapi;
mod recovery;
mod sync_approval;
mod sync_directory;
mod sync_push;
mod sync_reports;
mod sync_validation;
mod users;
