//! Bulk import jobs and their reports.

use std::str::FromStr;

use chrono::{DateTime, Utc};

use super::ImportJobId;
use crate::error::{ParseError, Reason};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImportStatus {
    Uploading,
    Completed,
    CompletedWithErrors,
    Failed,
}

impl ImportStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ImportStatus::Uploading => "uploading",
            ImportStatus::Completed => "completed",
            ImportStatus::CompletedWithErrors => "completed_with_errors",
            ImportStatus::Failed => "failed",
        }
    }
}

impl FromStr for ImportStatus {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        [
            ImportStatus::Uploading,
            ImportStatus::Completed,
            ImportStatus::CompletedWithErrors,
            ImportStatus::Failed,
        ]
        .into_iter()
        .find(|status| status.as_str() == s)
        .ok_or_else(|| {
            ParseError::new(
                Reason::InvalidArgument,
                format!("unknown import status {s:?}"),
            )
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportJob {
    pub id: ImportJobId,
    pub file_name: String,
    pub uploaded_at: DateTime<Utc>,
    /// Id of the user or API key that uploaded the file.
    pub uploaded_by: String,
    pub status: ImportStatus,
    pub total_rows: u64,
    pub imported_rows: u64,
    pub failed_rows: u64,
    pub finished_at: Option<DateTime<Utc>>,
    pub dry_run: bool,
}

/// One problem of an import, at a line of the file (0: the whole file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportLine {
    pub line_no: u64,
    pub text: String,
}

impl ReportLine {
    pub fn new(line_no: u64, text: impl Into<String>) -> Self {
        Self {
            line_no,
            text: text.into(),
        }
    }
}
