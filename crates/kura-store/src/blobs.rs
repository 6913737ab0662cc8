//! Blob storage on a local directory: `<root>/<tenant>/<blob id>`. Blobs are immutable and
//! already encrypted when they get here. A write goes to a temp file, is fsynced, renamed
//! into place, and the directory fsynced, before it is acknowledged. (S3 comes next behind
//! the same functions.)

use kura_domain::TenantId;
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

#[derive(Debug, Clone)]
pub struct LocalBlobs {
    root: PathBuf,
}

/// A blob being written; dropped without [`PendingBlob::commit`], its temp file is removed.
pub struct PendingBlob {
    file: Option<tokio::fs::File>,
    tmp: PathBuf,
    dest: PathBuf,
    written: u64,
}

fn safe(component: &str) -> std::io::Result<&str> {
    if !component.is_empty()
        && component
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        Ok(component)
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "bad blob path component",
        ))
    }
}

impl LocalBlobs {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn path(&self, tenant: &TenantId, blob_id: &str) -> std::io::Result<PathBuf> {
        Ok(self.root.join(safe(tenant.as_str())?).join(safe(blob_id)?))
    }

    pub async fn create(&self, tenant: &TenantId, blob_id: &str) -> std::io::Result<PendingBlob> {
        let dest = self.path(tenant, blob_id)?;
        let dir = dest
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.root.clone());
        tokio::fs::create_dir_all(&dir).await?;
        let tmp = dir.join(format!(".{blob_id}.tmp"));
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .await?;
        Ok(PendingBlob {
            file: Some(file),
            tmp,
            dest,
            written: 0,
        })
    }

    pub async fn open(&self, tenant: &TenantId, blob_id: &str) -> std::io::Result<tokio::fs::File> {
        tokio::fs::File::open(self.path(tenant, blob_id)?).await
    }

    pub async fn delete(&self, tenant: &TenantId, blob_id: &str) -> std::io::Result<()> {
        match tokio::fs::remove_file(self.path(tenant, blob_id)?).await {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    /// Every stored object: (tenant directory, file name, modified time in ms since the
    /// epoch). Temp files (`.<id>.tmp`) are included.
    pub async fn list_all(&self) -> std::io::Result<Vec<(String, String, i64)>> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            let Ok(tenants) = std::fs::read_dir(&root) else {
                return Ok(out);
            };
            for t in tenants.flatten() {
                if !t.path().is_dir() {
                    continue;
                }
                let tenant = t.file_name().to_string_lossy().to_string();
                for f in std::fs::read_dir(t.path())?.flatten() {
                    let modified = f
                        .metadata()
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
                        .map(|d| d.as_millis() as i64)
                        .unwrap_or(0);
                    out.push((
                        tenant.clone(),
                        f.file_name().to_string_lossy().to_string(),
                        modified,
                    ));
                }
            }
            Ok(out)
        })
        .await
        .map_err(std::io::Error::other)?
    }

    /// Removes one object by its listed name (a blob or a temp file).
    pub async fn remove_listed(&self, tenant: &str, name: &str) -> std::io::Result<()> {
        let name = name
            .strip_prefix('.')
            .and_then(|n| n.strip_suffix(".tmp"))
            .map(|id| (id, true))
            .unwrap_or((name, false));
        let file = if name.1 {
            format!(".{}.tmp", safe(name.0)?)
        } else {
            safe(name.0)?.to_string()
        };
        tokio::fs::remove_file(self.root.join(safe(tenant)?).join(file)).await
    }
}

impl PendingBlob {
    pub async fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        if let Some(f) = &mut self.file {
            f.write_all(data).await?;
            self.written += data.len() as u64;
        }
        Ok(())
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    /// fsync, rename into place, fsync the directory.
    pub async fn commit(mut self) -> std::io::Result<()> {
        if let Some(mut f) = self.file.take() {
            f.flush().await?;
            f.sync_all().await?;
        }
        tokio::fs::rename(&self.tmp, &self.dest).await?;
        if let Some(dir) = self.dest.parent() {
            tokio::fs::File::open(dir).await?.sync_all().await?;
        }
        self.tmp = PathBuf::new();
        Ok(())
    }
}

impl Drop for PendingBlob {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
