//! Test helpers shared by the workspace's test suites, benches and examples (never a dependency of a
//! shipped crate): region-level helpers ([`region`]) and the TS side of `libtasker_worker` loaded with
//! libloading ([`ffi`]).
#![allow(missing_docs)]

pub mod ffi;
pub mod library_path;
pub mod region;
