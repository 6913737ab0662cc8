//! Folders and projects (DATA-1): create, rename, move, delete — each through `authorize`.

use crate::auth::AuthContext;
use crate::{Actor, Event, RequestCtx, Result, ServiceError, Services};
use kura_domain::authz::Scope;
use kura_domain::{validate_name, Action, Decision, FolderId, ProjectId, Resource, TenantId};
use kura_store::workspace::{self, Folder, Project, MAX_FOLDER_DEPTH};
use kura_store::{roles, StoreError, Tx};

/// A change to a folder or project: a new name and/or a new parent.
#[derive(Debug, Clone, Default)]
pub struct Patch<P> {
    pub name: Option<String>,
    /// For folders `Some(None)` moves to the top level.
    pub parent: Option<P>,
}

/// What a principal sees of the workspace: the folders and projects they can view.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Tree {
    pub folders: Vec<Folder>,
    pub projects: Vec<Project>,
}

impl Services {
    /// The resource a scope denotes (for grants), with its ancestry.
    pub(crate) async fn scope_resource(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        scope: &Scope,
    ) -> Result<Resource> {
        Ok(match scope {
            Scope::Tenant => Resource::Tenant(tenant.clone()),
            Scope::Folder(f) => Resource::Folder {
                tenant_id: tenant.clone(),
                path: workspace::folder_path(tx, tenant, f).await?,
            },
            Scope::Project(p) => {
                let project = workspace::get_project(tx, tenant, p).await?;
                Resource::Project {
                    tenant_id: tenant.clone(),
                    folders: workspace::folder_path(tx, tenant, &project.folder_id).await?,
                    project_id: p.clone(),
                }
            }
        })
    }

    async fn folder_resource(
        &self,
        auth: &AuthContext,
        tx: &mut Tx,
        id: &FolderId,
        ctx: &RequestCtx,
    ) -> Result<(Folder, Resource)> {
        let t = &auth.tenant.id;
        match workspace::get_folder(tx, t, id).await {
            Ok(f) => {
                let path = workspace::folder_path(tx, t, id).await?;
                Ok((
                    f,
                    Resource::Folder {
                        tenant_id: t.clone(),
                        path,
                    },
                ))
            }
            Err(StoreError::NotFound) => Err(self
                .not_found(&auth.principal, "folder", id.as_str(), ctx)
                .await),
            Err(e) => Err(e.into()),
        }
    }

    async fn project_resource(
        &self,
        auth: &AuthContext,
        tx: &mut Tx,
        id: &ProjectId,
        ctx: &RequestCtx,
    ) -> Result<(Project, Resource)> {
        let t = &auth.tenant.id;
        match workspace::get_project(tx, t, id).await {
            Ok(p) => {
                let folders = workspace::folder_path(tx, t, &p.folder_id).await?;
                Ok((
                    p,
                    Resource::Project {
                        tenant_id: t.clone(),
                        folders,
                        project_id: id.clone(),
                    },
                ))
            }
            Err(StoreError::NotFound) => Err(self
                .not_found(&auth.principal, "project", id.as_str(), ctx)
                .await),
            Err(e) => Err(e.into()),
        }
    }

    /// Everything the principal may view, for the console tree and the API lists.
    pub async fn workspace_tree(&self, auth: &AuthContext) -> Result<Tree> {
        let t = &auth.tenant.id;
        let mut tx = self.store.tenant_read(t).await?;
        let folders = workspace::list_folders(&mut tx, t).await?;
        let projects = workspace::list_projects(&mut tx, t).await?;
        drop(tx);
        // Ancestry from the in-memory list (one query each instead of one per folder).
        let parent: std::collections::HashMap<&FolderId, Option<&FolderId>> = folders
            .iter()
            .map(|f| (&f.id, f.parent_id.as_ref()))
            .collect();
        let path_of = |id: &FolderId| {
            let mut path = vec![id.clone()];
            let mut cur = parent.get(id).copied().flatten();
            while let Some(p) = cur {
                if path.len() > MAX_FOLDER_DEPTH {
                    break;
                }
                path.push(p.clone());
                cur = parent.get(p).copied().flatten();
            }
            path.reverse();
            path
        };
        let visible_folders: Vec<Folder> = folders
            .iter()
            .filter(|f| {
                let r = Resource::Folder {
                    tenant_id: t.clone(),
                    path: path_of(&f.id),
                };
                kura_domain::authorize(&auth.principal, Action::View, &r) == Decision::Allow
            })
            .cloned()
            .collect();
        let visible_projects: Vec<Project> = projects
            .into_iter()
            .filter(|p| {
                let r = Resource::Project {
                    tenant_id: t.clone(),
                    folders: path_of(&p.folder_id),
                    project_id: p.id.clone(),
                };
                kura_domain::authorize(&auth.principal, Action::View, &r) == Decision::Allow
            })
            .collect();
        Ok(Tree {
            folders: visible_folders,
            projects: visible_projects,
        })
    }

    pub async fn create_folder(
        &self,
        auth: &AuthContext,
        name: &str,
        parent: Option<&FolderId>,
        ctx: &RequestCtx,
    ) -> Result<Folder> {
        let t = &auth.tenant.id;
        let name = validate_name("name", name)?;
        let mut tx = self.store.tenant_read(t).await?;
        let resource = match parent {
            None => Resource::Tenant(t.clone()),
            Some(p) => {
                let (_, r) = self.folder_resource(auth, &mut tx, p, ctx).await?;
                if let Resource::Folder { path, .. } = &r {
                    if path.len() >= MAX_FOLDER_DEPTH {
                        return Err(ServiceError::invalid(
                            "parent_id",
                            "folders nest at most 16 deep",
                        ));
                    }
                }
                r
            }
        };
        drop(tx);
        self.require(&auth.principal, Action::FolderCreate, &resource, ctx)
            .await?;
        let now = self.now();
        let folder = Folder {
            id: FolderId::generate(),
            parent_id: parent.cloned(),
            name,
            created_by: Some(auth.user.id.clone()),
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.store.tenant_tx(t).await?;
        workspace::insert_folder(&mut tx, t, &folder).await?;
        self.audit(
            &mut tx,
            t,
            &Actor::User(&auth.principal),
            ctx,
            Event::new("folder.create")
                .target("folder", &folder.id)
                .details(serde_json::json!({
                    "name": folder.name, "parent_id": folder.parent_id,
                })),
        )
        .await?;
        tx.commit().await?;
        Ok(folder)
    }

    pub async fn get_folder(
        &self,
        auth: &AuthContext,
        id: &FolderId,
        ctx: &RequestCtx,
    ) -> Result<Folder> {
        let mut tx = self.store.tenant_read(&auth.tenant.id).await?;
        let (folder, r) = self.folder_resource(auth, &mut tx, id, ctx).await?;
        drop(tx);
        self.require(&auth.principal, Action::View, &r, ctx).await?;
        Ok(folder)
    }

    /// Renames and/or moves a folder. Moving needs `folder_manage` on the folder and
    /// `folder_create` at the destination; a folder cannot move into itself or below itself.
    pub async fn update_folder(
        &self,
        auth: &AuthContext,
        id: &FolderId,
        patch: Patch<Option<FolderId>>,
        ctx: &RequestCtx,
    ) -> Result<Folder> {
        let t = &auth.tenant.id;
        let mut tx = self.store.tenant_read(t).await?;
        let (mut folder, r) = self.folder_resource(auth, &mut tx, id, ctx).await?;
        let dest = match &patch.parent {
            Some(Some(p)) => {
                let (_, dr) = self.folder_resource(auth, &mut tx, p, ctx).await?;
                if let Resource::Folder { path, .. } = &dr {
                    if path.contains(id) {
                        return Err(ServiceError::invalid(
                            "parent_id",
                            "a folder cannot move into itself or its own sub-folder",
                        ));
                    }
                }
                Some(dr)
            }
            Some(None) => Some(Resource::Tenant(t.clone())),
            None => None,
        };
        drop(tx);
        self.require(&auth.principal, Action::FolderManage, &r, ctx)
            .await?;
        if let Some(dr) = &dest {
            self.require(&auth.principal, Action::FolderCreate, dr, ctx)
                .await?;
        }
        let before = folder.clone();
        if let Some(name) = &patch.name {
            folder.name = validate_name("name", name)?;
        }
        if let Some(p) = patch.parent {
            folder.parent_id = p;
        }
        folder.updated_at = self.now();
        let mut tx = self.store.tenant_tx(t).await?;
        workspace::update_folder(&mut tx, t, &folder).await?;
        // Re-check depth after the move (the subtree moves with it).
        workspace::folder_path(&mut tx, t, id).await?;
        let action = if before.parent_id != folder.parent_id {
            "folder.move"
        } else {
            "folder.rename"
        };
        self.audit(
            &mut tx,
            t,
            &Actor::User(&auth.principal),
            ctx,
            Event::new(action)
                .target("folder", id)
                .details(serde_json::json!({
                    "before": { "name": before.name, "parent_id": before.parent_id },
                    "after": { "name": folder.name, "parent_id": folder.parent_id },
                })),
        )
        .await?;
        tx.commit().await?;
        Ok(folder)
    }

    /// Deletes an empty folder (sub-folders and projects must be moved or deleted first).
    pub async fn delete_folder(
        &self,
        auth: &AuthContext,
        id: &FolderId,
        ctx: &RequestCtx,
    ) -> Result<()> {
        let t = &auth.tenant.id;
        let mut tx = self.store.tenant_read(t).await?;
        let (folder, r) = self.folder_resource(auth, &mut tx, id, ctx).await?;
        drop(tx);
        self.require(&auth.principal, Action::FolderManage, &r, ctx)
            .await?;
        let mut tx = self.store.tenant_tx(t).await?;
        if workspace::folder_children(&mut tx, t, id).await? > 0 {
            return Err(ServiceError::Conflict("the folder is not empty".into()));
        }
        roles::delete_grants_on_scope(&mut tx, t, &Scope::Folder(id.clone())).await?;
        workspace::delete_folder(&mut tx, t, id).await?;
        self.audit(
            &mut tx,
            t,
            &Actor::User(&auth.principal),
            ctx,
            Event::new("folder.delete")
                .target("folder", id)
                .details(serde_json::json!({ "name": folder.name })),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn create_project(
        &self,
        auth: &AuthContext,
        folder_id: &FolderId,
        name: &str,
        ctx: &RequestCtx,
    ) -> Result<Project> {
        let t = &auth.tenant.id;
        let name = validate_name("name", name)?;
        let mut tx = self.store.tenant_read(t).await?;
        let (_, r) = self.folder_resource(auth, &mut tx, folder_id, ctx).await?;
        drop(tx);
        self.require(&auth.principal, Action::ProjectCreate, &r, ctx)
            .await?;
        let now = self.now();
        let project = Project {
            id: ProjectId::generate(),
            folder_id: folder_id.clone(),
            name,
            created_by: Some(auth.user.id.clone()),
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.store.tenant_tx(t).await?;
        workspace::insert_project(&mut tx, t, &project).await?;
        self.audit(
            &mut tx,
            t,
            &Actor::User(&auth.principal),
            ctx,
            Event::new("project.create")
                .target("project", &project.id)
                .details(serde_json::json!({
                    "name": project.name, "folder_id": project.folder_id,
                })),
        )
        .await?;
        tx.commit().await?;
        Ok(project)
    }

    pub async fn get_project(
        &self,
        auth: &AuthContext,
        id: &ProjectId,
        ctx: &RequestCtx,
    ) -> Result<Project> {
        let mut tx = self.store.tenant_read(&auth.tenant.id).await?;
        let (p, r) = self.project_resource(auth, &mut tx, id, ctx).await?;
        drop(tx);
        self.require(&auth.principal, Action::View, &r, ctx).await?;
        Ok(p)
    }

    /// Renames and/or moves a project to another folder.
    pub async fn update_project(
        &self,
        auth: &AuthContext,
        id: &ProjectId,
        patch: Patch<FolderId>,
        ctx: &RequestCtx,
    ) -> Result<Project> {
        let t = &auth.tenant.id;
        let mut tx = self.store.tenant_read(t).await?;
        let (mut project, r) = self.project_resource(auth, &mut tx, id, ctx).await?;
        let dest = match &patch.parent {
            Some(f) => Some(self.folder_resource(auth, &mut tx, f, ctx).await?.1),
            None => None,
        };
        drop(tx);
        self.require(&auth.principal, Action::ProjectManage, &r, ctx)
            .await?;
        if let Some(dr) = &dest {
            self.require(&auth.principal, Action::ProjectCreate, dr, ctx)
                .await?;
        }
        let before = project.clone();
        if let Some(name) = &patch.name {
            project.name = validate_name("name", name)?;
        }
        if let Some(f) = patch.parent {
            project.folder_id = f;
        }
        project.updated_at = self.now();
        let mut tx = self.store.tenant_tx(t).await?;
        workspace::update_project(&mut tx, t, &project).await?;
        let action = if before.folder_id != project.folder_id {
            "project.move"
        } else {
            "project.rename"
        };
        self.audit(
            &mut tx,
            t,
            &Actor::User(&auth.principal),
            ctx,
            Event::new(action)
                .target("project", id)
                .details(serde_json::json!({
                    "before": { "name": before.name, "folder_id": before.folder_id },
                    "after": { "name": project.name, "folder_id": project.folder_id },
                })),
        )
        .await?;
        tx.commit().await?;
        Ok(project)
    }

    pub async fn delete_project(
        &self,
        auth: &AuthContext,
        id: &ProjectId,
        ctx: &RequestCtx,
    ) -> Result<()> {
        let t = &auth.tenant.id;
        let mut tx = self.store.tenant_read(t).await?;
        let (project, r) = self.project_resource(auth, &mut tx, id, ctx).await?;
        drop(tx);
        self.require(&auth.principal, Action::ProjectManage, &r, ctx)
            .await?;
        let mut tx = self.store.tenant_tx(t).await?;
        if kura_store::files::count_in_project(&mut tx, t, id).await? > 0 {
            return Err(ServiceError::Conflict("the project still has files".into()));
        }
        roles::delete_grants_on_scope(&mut tx, t, &Scope::Project(id.clone())).await?;
        workspace::delete_project(&mut tx, t, id).await?;
        self.audit(
            &mut tx,
            t,
            &Actor::User(&auth.principal),
            ctx,
            Event::new("project.delete")
                .target("project", id)
                .details(serde_json::json!({ "name": project.name })),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
