//! Roster: the agent directory and presence service of a customer-support
//! chat platform, served over gRPC (`roster.v1`).
//!
//! Dependencies point one way: `api` → use cases (`users`, `auth`,
//! `presence`, `audit`) → `domain`; only `store` touches the database.

pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
mod batch;
pub mod config;
pub mod domain;
pub mod error;
pub mod mail;
pub mod metrics;
mod named;
pub mod operator;
pub mod org;
pub mod platform;
pub mod presence;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod users;
