#![allow(dead_code)]

#[allow(unused_imports)] // the SQLite tests use the scenarios only
pub use tasker_store::test_support as pg;
pub mod client_ops;
pub mod scenarios;
