//! A fresh, empty database per server: a file in a temporary directory on
//! SQLite, a new database on PostgreSQL (dropped afterwards).

use sea_orm::{ConnectionTrait, Database as Connect};

use crate::BenchError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    Sqlite,
    Postgres,
}

impl std::fmt::Display for StoreKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StoreKind::Sqlite => "SQLite",
            StoreKind::Postgres => "PostgreSQL",
        })
    }
}

pub struct Database {
    pub url: String,
    dropped: Option<Dropped>,
    _dir: Option<tempfile::TempDir>,
}

/// What to drop on PostgreSQL.
struct Dropped {
    admin_url: String,
    name: String,
}

impl Database {
    pub async fn fresh(kind: StoreKind, postgres_url: &str) -> Result<Self, BenchError> {
        match kind {
            StoreKind::Sqlite => {
                let dir = tempfile::tempdir()?;
                let url = format!("sqlite://{}/roster.db?mode=rwc", dir.path().display());
                Ok(Self {
                    url,
                    dropped: None,
                    _dir: Some(dir),
                })
            }
            StoreKind::Postgres => {
                let name = format!("roster_bench_{}", uuid::Uuid::now_v7().simple());
                let admin = Connect::connect(postgres_url).await?;
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await?;
                admin.close().await?;
                let base = postgres_url
                    .rsplit_once('/')
                    .map_or(postgres_url, |(base, _)| base);
                Ok(Self {
                    url: format!("{base}/{name}"),
                    dropped: Some(Dropped {
                        admin_url: postgres_url.to_owned(),
                        name,
                    }),
                    _dir: None,
                })
            }
        }
    }

    /// Drops a PostgreSQL database (a temporary directory goes by itself).
    pub async fn drop(mut self) -> Result<(), BenchError> {
        if let Some(Dropped { admin_url, name }) = self.dropped.take() {
            let admin = Connect::connect(&admin_url).await?;
            admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await?;
            admin.close().await?;
        }
        Ok(())
    }
}
