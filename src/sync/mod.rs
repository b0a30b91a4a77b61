//! The sync engine: parse → validate → check → plan (diff against the directory) → apply →
//! report. `engine::process_run` drives one run; `worker` runs the queue.

pub mod apply;
pub mod approval;
pub mod candidate;
pub mod conflicts;
pub mod directory;
pub mod duplicates;
pub mod engine;
pub mod faults;
pub mod plan;
pub mod push;
pub mod record;
#[cfg(test)]
mod test_fixtures;
pub mod validate;
pub mod worker;
