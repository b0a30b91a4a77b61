//! hris-sync: keeps a company's user directory in step with its HR system.
//!
//! The layers, from the edge in: `cli` and `startup` assemble the service; `http` turns
//! requests into calls and answers; `sync` is the engine that turns a push into a run's
//! updates and issues; `domain` and `catalogue` are the vocabulary; `store` is the database.

// Unsafe code is refused everywhere but in `allocator`, which makes one call into mimalloc.
#![deny(unsafe_code)]

pub mod allocator;
pub mod catalogue;
pub mod cli;
pub mod config;
pub mod domain;
pub mod error;
pub mod export;
pub mod http;
pub mod openapi;
pub mod startup;
pub mod store;
pub mod sync;
pub mod telemetry;
