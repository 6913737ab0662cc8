//! Encrypted files (DATA-1, CRY-1): streaming upload into a project, versions, download of
//! the whole file or a byte range, delete. Plaintext never touches the disk: each chunk is
//! encrypted with the tenant's data key before it is written.

use crate::auth::AuthContext;

use crate::{Actor, Event, RequestCtx, Result, ServiceError, Services};

use bytes::Bytes;

use futures_util::{Stream, StreamExt};

use kura_crypto::keys::SecretKey;

use kura_crypto::stream::{self, BlobContext, Decryptor, Encryptor};

use kura_domain::{validate_name, Action, ProjectId, Resource, TenantId};

use kura_store::files::{self, File, Version};

use kura_store::{keys, StoreError};

use std::collections::HashMap;

use std::sync::Mutex;

/// What `PATCH /files/{id}` changes; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct FileUpdate {
    pub name: Option<String>,
    pub project: Option<ProjectId>,
    pub labels: Option<kura_store::Labels>,
}

impl Services {
    pub(crate) async fn project_for(
        &self,
        auth: &AuthContext,
        project: &ProjectId,
        item_label: Option<Option<&str>>,
        action: Action,
        ctx: &RequestCtx,
    ) -> Result<Resource> {
        let t = &auth.tenant.id;
        let mut tx = self.store.tenant_read(t).await?;
        let r = match self
            .project_as_resource(&mut tx, &auth.tenant.settings, t, project, item_label)
            .await
        {
            Ok((_, r)) => r,
            Err(ServiceError::NotFound) => {
                drop(tx);
                return Err(self
                    .not_found(&auth.principal, "project", project.as_str(), ctx)
                    .await);
            }
            Err(e) => return Err(e),
        };
        drop(tx);
        self.require(&auth.principal, action, &r, ctx).await?;
        Ok(r)
    }

    /// A live (not trashed) file the principal may act on.
    pub(crate) async fn load_file(
        &self,
        auth: &AuthContext,
        id: &str,
        action: Action,
        ctx: &RequestCtx,
    ) -> Result<File> {
        self.load_file_in(auth, id, action, false, ctx).await
    }

    /// A file that is (`trashed`) or is not in the trash; the other kind is not found.
    pub(crate) async fn load_file_in(
        &self,
        auth: &AuthContext,
        id: &str,
        action: Action,
        trashed: bool,
        ctx: &RequestCtx,
    ) -> Result<File> {
        let (f, _) = self
            .load_file_and_version(auth, id, action, trashed, None, ctx)
            .await?;
        Ok(f)
    }

    /// A file the principal may act on and, when `version` is given, that version of it
    /// (`Some(None)`: the current one) — read in one transaction. A file is as visible as
    /// its project, at its own label; nothing about the version is told to a caller who
    /// may not act on the file.
    pub(crate) async fn load_file_and_version(
        &self,
        auth: &AuthContext,
        id: &str,
        action: Action,
        trashed: bool,
        version: Option<Option<i64>>,
        ctx: &RequestCtx,
    ) -> Result<(File, Option<Version>)> {
        let t = &auth.tenant.id;
        // SQLite: when the file, its project, folders and version are all there, they are
        // read in place (no sqlx round trips); anything else takes the path below, which
        // reports and audits what is missing.
        if let Some(found) = files::file_in_place(&self.store, t, id, version) {
            if found.file.deleted_at.is_some() == trashed {
                let r = crate::workspace::project_resource(
                    &auth.tenant.settings,
                    t,
                    &found.project,
                    &found.folders,
                    Some(found.file.labels.label.as_deref()),
                );
                self.require(&auth.principal, action, &r, ctx).await?;
                return Ok((found.file, found.version));
            }
        }
        let mut tx = self.store.tenant_read(t).await?;
        let f = match files::get(&mut tx, t, id).await {
            Ok(f) if f.deleted_at.is_some() == trashed => f,
            Ok(_) => {
                drop(tx);
                return Err(ServiceError::NotFound);
            }
            Err(StoreError::NotFound) => {
                drop(tx);
                return Err(self.not_found(&auth.principal, "file", id, ctx).await);
            }
            Err(e) => return Err(e.into()),
        };
        let r = match self
            .project_as_resource(
                &mut tx,
                &auth.tenant.settings,
                t,
                &f.project_id,
                Some(f.labels.label.as_deref()),
            )
            .await
        {
            Ok((_, r)) => r,
            Err(ServiceError::NotFound) => {
                drop(tx);
                return Err(self
                    .not_found(&auth.principal, "project", f.project_id.as_str(), ctx)
                    .await);
            }
            Err(e) => return Err(e),
        };
        let v = match version {
            Some(v) => {
                Some(files::get_version(&mut tx, t, id, v.unwrap_or(f.current_version)).await)
            }
            None => None,
        };
        drop(tx);
        self.require(&auth.principal, action, &r, ctx).await?;
        let v = match v {
            None => None,
            Some(Ok(v)) => Some(v),
            Some(Err(StoreError::NotFound)) => return Err(ServiceError::NotFound),
            Some(Err(e)) => return Err(e.into()),
        };
        Ok((f, v))
    }

    /// Whether the caller may do `action` in a project — a question the console asks to
    /// decide what to show, so a "no" is not audited as a denied access.
    pub async fn may_in_project(
        &self,
        auth: &AuthContext,
        project: &ProjectId,
        action: Action,
    ) -> bool {
        let t = &auth.tenant.id;
        let Ok(mut tx) = self.store.tenant_read(t).await else {
            return false;
        };
        match self
            .project_as_resource(&mut tx, &auth.tenant.settings, t, project, None)
            .await
        {
            Ok((_, r)) => {
                kura_domain::authorize(&auth.principal, action, &r) == kura_domain::Decision::Allow
            }
            Err(_) => false,
        }
    }

    pub async fn file_info(
        &self,
        auth: &AuthContext,
        id: &kura_domain::FileId,
        ctx: &RequestCtx,
    ) -> Result<(File, Vec<Version>)> {
        let id = id.as_str();
        let f = self.load_file(auth, id, Action::View, ctx).await?;
        let mut tx = self.store.tenant_read(&auth.tenant.id).await?;
        let versions = files::list_versions(&mut tx, &auth.tenant.id, id).await?;
        Ok((f, versions))
    }

    /// Renames a file, moves it to another project, and/or relabels it — in one
    /// transaction. Moving needs content-write on both projects; the file must stay within
    /// the caller's label cap where it lands, and a new label may not exceed the caller's
    /// cap (nobody can hide a file from themselves). Each change is audited.
    pub async fn update_file(
        &self,
        auth: &AuthContext,
        id: &kura_domain::FileId,
        up: FileUpdate,
        ctx: &RequestCtx,
    ) -> Result<File> {
        let id = id.as_str();
        let f = self.load_file(auth, id, Action::ContentWrite, ctx).await?;
        let t = &auth.tenant.id;
        let labels = up.labels.unwrap_or_else(|| f.labels.clone());
        self.check_labels(&auth.tenant.settings, &labels)?;
        let name = match &up.name {
            Some(n) => validate_name("name", n)?,
            None => f.name.clone(),
        };
        let project = up.project.clone().unwrap_or_else(|| f.project_id.clone());
        if project != f.project_id || labels.label != f.labels.label {
            self.project_for(
                auth,
                &project,
                Some(labels.label.as_deref()),
                Action::ContentWrite,
                ctx,
            )
            .await?;
        }
        let mut tx = self.store.tenant_tx(t).await?;
        let now = self.now();
        let actor = Actor::User(&auth.principal);
        if name != f.name || project != f.project_id {
            files::rename_move(&mut tx, t, id, &project, &name, now).await?;
            let action = if project != f.project_id {
                "file.move"
            } else {
                "file.rename"
            };
            self.audit(
                &mut tx,
                t,
                &actor,
                ctx,
                Event::new(action)
                    .target("file", id)
                    .details(serde_json::json!({
                        "from": { "project_id": f.project_id, "name": f.name },
                        "to": { "project_id": project, "name": name },
                    })),
            )
            .await?;
        }
        if labels != f.labels {
            files::set_labels(&mut tx, t, id, &labels, now).await?;
            let action = if f.labels.label != labels.label {
                "label.change"
            } else {
                "file.tags"
            };
            self.audit(
                &mut tx,
                t,
                &actor,
                ctx,
                Event::new(action)
                    .target("file", id)
                    .details(serde_json::json!({ "before": f.labels, "after": labels })),
            )
            .await?;
        }
        let updated = files::get(&mut tx, t, id).await?;
        tx.commit().await?;
        Ok(updated)
    }

    /// Tenant admin: usage figures (files, versions, bytes stored, uploads, downloads).
    pub async fn usage(
        &self,
        auth: &AuthContext,
        ctx: &RequestCtx,
    ) -> Result<kura_store::usage::Usage> {
        let t = &auth.tenant.id;
        self.require(
            &auth.principal,
            Action::AuditRead,
            &kura_domain::Resource::Tenant(t.clone()),
            ctx,
        )
        .await?;
        let mut tx = self.store.tenant_read(t).await?;
        Ok(kura_store::usage::get(&mut tx, t).await?)
    }
}

mod download;
mod keyring;
mod search;
mod sweep;
mod trash;
mod upload;
pub use download::*;
pub use keyring::*;
pub use search::*;
pub use sweep::*;
pub use upload::*;
