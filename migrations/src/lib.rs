//! Roster's database schema, as sea-orm migrations that run at start-up on
//! SQLite and PostgreSQL alike. An applied migration is never edited: a change
//! is a new migration.

pub use sea_orm_migration::prelude::*;

mod m20261123_000001_initial;
mod m20261123_000002_user_lifecycle;
mod m20261123_000003_presence;
mod m20261123_000004_imports;
mod m20261123_000005_seat_index;
mod m20261123_000006_user_search_index;
mod m20261201_000007_presence_history;
mod m20261202_000008_tombstone_index;
mod m20261202_000009_platform;
mod m20261204_000010_sort_key_bytewise;
mod m20261204_000011_users_org_id;

/// Applies every migration in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_initial::Migration),
            Box::new(m20261123_000002_user_lifecycle::Migration),
            Box::new(m20261123_000003_presence::Migration),
            Box::new(m20261123_000004_imports::Migration),
            Box::new(m20261123_000005_seat_index::Migration),
            Box::new(m20261123_000006_user_search_index::Migration),
            Box::new(m20261201_000007_presence_history::Migration),
            Box::new(m20261202_000008_tombstone_index::Migration),
            Box::new(m20261202_000009_platform::Migration),
            Box::new(m20261204_000010_sort_key_bytewise::Migration),
            Box::new(m20261204_000011_users_org_id::Migration),
        ]
    }
}
