//! Kura's integration suite: one test binary (each binary links everything; on 2 cores that
//! is minutes), modules by area. Every store-touching test runs on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod account;
mod api;
mod blobs;
mod browser;
mod cli;
mod evidence;
mod files;
mod isolation;
mod resilience;
mod store;
mod tamper;
