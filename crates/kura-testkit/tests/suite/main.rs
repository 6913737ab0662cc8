//! Kura's integration suite: one test binary (each binary links everything; on 2 cores that
//! is minutes), modules by area. Every store-touching test runs on SQLite and PostgreSQL
//! (and the file suites on S3) as one test per backend, named after it — `name::sqlite`,
//! `name::postgres`, `name::sqlite_s3` — by `kura_testkit::{per_backend, per_setup,
//! per_storage}!`, so that a failure says which backend failed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod account;
mod api;
mod audit_log;
mod backups;
mod blobs;
mod browser;
mod cli;
mod files;
mod isolation;
mod jobs;
mod lifecycle;
mod notices;
mod operator;
mod resilience;
mod signup;
mod store;
mod tamper;
mod usage;

/// The `kura` command, built by this same `cargo test` (the testkit's `kura-for-tests`
/// binary: the same entry point as `kura`), for tests that run real processes.
pub fn kura_binary() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_kura-for-tests"))
}
