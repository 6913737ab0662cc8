//! Usage and backups as the tenant sees them.

use super::*;

/// The tenant's usage now (OPS-4).
#[derive(Serialize, JsonSchema)]
pub struct Usage {
    pub files: i64,
    pub versions: i64,
    /// Plaintext bytes of every stored version (each blob counted once).
    pub bytes_stored: i64,
    pub uploads: i64,
    pub upload_bytes: i64,
    pub downloads: i64,
    pub download_bytes: i64,
}

impl From<kura_store::usage::Usage> for Usage {
    fn from(u: kura_store::usage::Usage) -> Self {
        Usage {
            files: u.files,
            versions: u.versions,
            bytes_stored: u.bytes_stored,
            uploads: u.uploads,
            upload_bytes: u.upload_bytes,
            downloads: u.downloads,
            download_bytes: u.download_bytes,
        }
    }
}

/// One day's (or month's) figures.
#[derive(Serialize, JsonSchema)]
pub struct UsageDay {
    /// `YYYY-MM-DD` (or `YYYY-MM`) in the tenant's time zone.
    pub day: String,
    pub logins: i64,
    pub active_users: i64,
    pub uploads: i64,
    pub upload_bytes: i64,
    pub downloads: i64,
    pub download_bytes: i64,
    pub folders: i64,
    pub projects: i64,
    pub files: i64,
    pub bytes_stored: i64,
}

impl From<kura_store::usage::Daily> for UsageDay {
    fn from(d: kura_store::usage::Daily) -> Self {
        UsageDay {
            day: d.day,
            logins: d.logins,
            active_users: d.active_users,
            uploads: d.uploads,
            upload_bytes: d.upload_bytes,
            downloads: d.downloads,
            download_bytes: d.download_bytes,
            folders: d.folders,
            projects: d.projects,
            files: d.files,
            bytes_stored: d.bytes_stored,
        }
    }
}

/// Daily (or monthly) usage over a period.
#[derive(Serialize, JsonSchema)]
pub struct UsageReport {
    pub from: String,
    pub to: String,
    /// `day` or `month`.
    pub by: String,
    pub time_zone: String,
    pub items: Vec<UsageDay>,
}

/// What a tenant admin sees of backups (OPS-1).
#[derive(Serialize, JsonSchema)]
pub struct BackupSummary {
    pub last_verified_generation: Option<String>,
    pub last_verified_at: Option<Timestamp>,
    /// Where backups are kept.
    pub region: String,
    pub generations_kept: usize,
}

impl From<kura_services::backup::BackupSummary> for BackupSummary {
    fn from(b: kura_services::backup::BackupSummary) -> Self {
        BackupSummary {
            last_verified_generation: b.last_verified_generation,
            last_verified_at: b.last_verified_at,
            region: b.region,
            generations_kept: b.generations_kept,
        }
    }
}
