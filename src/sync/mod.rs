//! The sync engine: parse → validate → check → plan (diff against the directory) → apply →
//! report. `engine::process_run` drives one run; `worker` runs the queue.

pub mod apply;
pub mod approval;
pub mod candidate;
pub mod condition;
pub mod conflicts;
pub mod csv_log;
pub mod directory;
pub mod duplicates;
pub mod engine;
pub mod faults;
pub mod gate;
pub mod grace;
pub mod groups;
pub mod intake;
pub mod lifecycle;
pub mod perimeter;
pub mod plan;
pub mod push;
pub mod record;
pub mod seats;
pub mod spool;
#[cfg(test)]
mod test_fixtures;
pub mod unchanged;
pub mod validate;
pub mod worker;
