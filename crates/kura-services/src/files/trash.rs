//! The trash: moving files in and out, purging, restoring an old version.

use super::*;

impl Services {
    /// Moves a file to the trash: it disappears from lists and downloads until restored
    /// or purged.
    pub async fn delete_file(
        &self,
        auth: &AuthContext,
        id: &kura_domain::FileId,
        ctx: &RequestCtx,
    ) -> Result<()> {
        let id = id.as_str();
        let f = self.load_file(auth, id, Action::ContentWrite, ctx).await?;
        let t = &auth.tenant.id;
        let mut tx = self.store.tenant_tx(t).await?;
        files::set_deleted(&mut tx, t, id, Some(self.now())).await?;
        self.audit(
            &mut tx,
            t,
            &Actor::User(&auth.principal),
            ctx,
            Event::new("file.trash")
                .target("file", id)
                .details(serde_json::json!({ "name": f.name })),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The project's trash.
    pub async fn list_trash(
        &self,
        auth: &AuthContext,
        project: &ProjectId,
        ctx: &RequestCtx,
    ) -> Result<Vec<File>> {
        let r = self
            .project_for(auth, project, None, Action::ContentWrite, ctx)
            .await?;
        let mut tx = self.store.tenant_read(&auth.tenant.id).await?;
        let list = files::list_in_project(&mut tx, &auth.tenant.id, project, true).await?;
        Ok(self.visible_files(auth, &r, list))
    }

    /// Takes a file out of the trash.
    pub async fn restore_file(
        &self,
        auth: &AuthContext,
        id: &kura_domain::FileId,
        ctx: &RequestCtx,
    ) -> Result<File> {
        let id = id.as_str();
        let f = self
            .load_file_in(auth, id, Action::ContentWrite, true, ctx)
            .await?;
        let t = &auth.tenant.id;
        let mut tx = self.store.tenant_tx(t).await?;
        files::set_deleted(&mut tx, t, id, None).await?;
        self.audit(
            &mut tx,
            t,
            &Actor::User(&auth.principal),
            ctx,
            Event::new("file.restore")
                .target("file", id)
                .details(serde_json::json!({ "name": f.name })),
        )
        .await?;
        let f = files::get(&mut tx, t, id).await?;
        tx.commit().await?;
        Ok(f)
    }

    /// Deletes a trashed file for good, with every version and blob.
    pub async fn purge_file(
        &self,
        auth: &AuthContext,
        id: &kura_domain::FileId,
        ctx: &RequestCtx,
    ) -> Result<()> {
        let id = id.as_str();
        let f = self
            .load_file_in(auth, id, Action::ContentWrite, true, ctx)
            .await?;
        let t = &auth.tenant.id;
        let mut tx = self.store.tenant_tx(t).await?;
        let blobs = files::delete(&mut tx, t, id).await?;
        self.audit(
            &mut tx,
            t,
            &Actor::User(&auth.principal),
            ctx,
            Event::new("file.purge")
                .target("file", id)
                .details(serde_json::json!({ "name": f.name, "blobs": blobs.len() })),
        )
        .await?;
        tx.commit().await?;
        for b in blobs {
            if let Err(e) = self.blobs.delete(t, &b).await {
                tracing::warn!(error = %e, blob = %b, "could not remove a purged file's blob");
            }
        }
        Ok(())
    }

    /// Makes an old version current again, as a new version (history is never rewritten).
    pub async fn restore_version(
        &self,
        auth: &AuthContext,
        id: &kura_domain::FileId,
        version: i64,
        ctx: &RequestCtx,
    ) -> Result<(File, Version)> {
        let id = id.as_str();
        self.load_file(auth, id, Action::ContentWrite, ctx).await?;
        let t = &auth.tenant.id;
        let mut tx = self.store.tenant_tx(t).await?;
        let old = match files::get_version(&mut tx, t, id, version).await {
            Ok(v) => v,
            Err(StoreError::NotFound) => return Err(ServiceError::NotFound),
            Err(e) => return Err(e.into()),
        };
        let now = self.now();
        let v = Version {
            version: files::max_version(&mut tx, t, id).await? + 1,
            created_by: Some(auth.user.id.clone()),
            created_at: now,
            ..old
        };
        files::insert_version(&mut tx, t, &v).await?;
        files::set_current(&mut tx, t, id, v.version, now).await?;
        self.audit(
            &mut tx,
            t,
            &Actor::User(&auth.principal),
            ctx,
            Event::new("file.version.restore")
                .target("file", id)
                .details(serde_json::json!({ "from_version": version, "new_version": v.version })),
        )
        .await?;
        let f = files::get(&mut tx, t, id).await?;
        tx.commit().await?;
        Ok((f, v))
    }
}
