//! Integration tests: the real server on 127.0.0.1:0 with a fresh database
//! per test, driven through the generated tonic clients. Set
//! `ROSTER_TEST_DATABASE_URL=postgres://…/db` to run them on PostgreSQL.

mod access;
mod api_keys;
mod audit;
mod auth;
mod cached_reads;
mod cli;
mod export;
mod faults;
mod hardening;
mod helpers;
mod import;
mod invites;
mod lifecycle;
mod org;
mod passwords;
mod platform;
mod presence;
mod reports;
mod search;
mod server;
mod smtp;
mod telemetry;
mod tls;
mod users;
mod wire;
