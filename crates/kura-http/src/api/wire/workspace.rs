//! Folders, projects, files and versions.

use super::*;

#[derive(Serialize, JsonSchema)]
pub struct Folder {
    #[serde(flatten)]
    pub labels: Labels,
    pub id: FolderId,
    pub parent_id: Option<FolderId>,
    pub name: String,
    pub created_by: Option<UserId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<kura_store::workspace::Folder> for Folder {
    fn from(f: kura_store::workspace::Folder) -> Self {
        Folder {
            labels: f.labels.into(),
            id: f.id,
            parent_id: f.parent_id,
            name: f.name,
            created_by: f.created_by,
            created_at: f.created_at,
            updated_at: f.updated_at,
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct Project {
    #[serde(flatten)]
    pub labels: Labels,
    pub id: ProjectId,
    pub folder_id: FolderId,
    pub name: String,
    pub created_by: Option<UserId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<kura_store::workspace::Project> for Project {
    fn from(p: kura_store::workspace::Project) -> Self {
        Project {
            labels: p.labels.into(),
            id: p.id,
            folder_id: p.folder_id,
            name: p.name,
            created_by: p.created_by,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct File {
    #[serde(flatten)]
    pub labels: Labels,
    pub id: String,
    pub project_id: ProjectId,
    pub name: String,
    pub current_version: i64,
    /// Set while the file is in the trash.
    pub deleted_at: Option<Timestamp>,
    pub created_by: Option<UserId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<kura_store::files::File> for File {
    fn from(f: kura_store::files::File) -> Self {
        File {
            labels: f.labels.into(),
            id: f.id,
            project_id: f.project_id,
            name: f.name,
            current_version: f.current_version,
            deleted_at: f.deleted_at,
            created_by: f.created_by,
            created_at: f.created_at,
            updated_at: f.updated_at,
        }
    }
}

/// One version of a file (its blob and key stay inside).
#[derive(Serialize, JsonSchema)]
pub struct Version {
    pub file_id: String,
    pub version: i64,
    pub size: i64,
    /// SHA-256 of the plaintext, hex.
    pub sha256: String,
    pub content_type: String,
    pub created_by: Option<UserId>,
    pub created_at: Timestamp,
}

impl From<kura_store::files::Version> for Version {
    fn from(v: kura_store::files::Version) -> Self {
        Version {
            file_id: v.file_id,
            version: v.version,
            size: v.size,
            sha256: v.sha256,
            content_type: v.content_type,
            created_by: v.created_by,
            created_at: v.created_at,
        }
    }
}

/// A file found by a listing or search, with its effective classification level.
#[derive(Serialize, JsonSchema)]
pub struct FoundFile {
    #[serde(flatten)]
    pub file: File,
    pub effective_label: String,
}

impl From<kura_services::files::FoundFile> for FoundFile {
    fn from(f: kura_services::files::FoundFile) -> Self {
        FoundFile {
            file: f.file.into(),
            effective_label: f.effective_label,
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct FileWithVersions {
    pub file: File,
    pub versions: Vec<Version>,
}

#[derive(Serialize, JsonSchema)]
pub struct FileAndVersion {
    pub file: File,
    pub version: Version,
}
