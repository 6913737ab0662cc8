//! Folders and projects (DATA-1): create, rename, move, delete — each through `authorize`.

use crate::auth::AuthContext;
use crate::{Actor, Event, RequestCtx, Result, ServiceError, Services};
use kura_domain::authz::Scope;
use kura_domain::tenant::TenantSettings;
use kura_domain::{validate_name, Action, Decision, FolderId, ProjectId, Resource, TenantId};
use kura_store::workspace::{self, Folder, Project, MAX_FOLDER_DEPTH};
use kura_store::{roles, Labels, Tx};

/// A change to a folder or project: a new name and/or a new parent.
#[derive(Debug, Clone)]
pub struct Patch<P> {
    pub name: Option<String>,
    /// For folders `Some(None)` moves to the top level.
    pub parent: Option<P>,
    /// `Some(None)` removes the own label (the item inherits again).
    pub label: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
    pub attributes: Option<serde_json::Map<String, serde_json::Value>>,
}

impl<P> Default for Patch<P> {
    fn default() -> Self {
        Self {
            name: None,
            parent: None,
            label: None,
            tags: None,
            attributes: None,
        }
    }
}

impl<P> Patch<P> {
    fn apply_labels(&self, l: &mut Labels) {
        if let Some(label) = &self.label {
            l.label = label.clone();
        }
        if let Some(t) = &self.tags {
            l.tags = t.clone();
        }
        if let Some(a) = &self.attributes {
            l.attributes = a.clone();
        }
    }
}

/// What a principal sees of the workspace: the folders and projects they can view.
#[derive(Debug, Clone)]
pub struct Tree {
    pub folders: Vec<Folder>,
    pub projects: Vec<Project>,
}

impl Services {
    /// The folders from the outermost down to `id`.
    async fn folder_chain(&self, tx: &mut Tx, t: &TenantId, id: &FolderId) -> Result<Vec<Folder>> {
        let mut chain = Vec::new();
        let mut cur = Some(id.clone());
        while let Some(fid) = cur {
            if chain.len() > MAX_FOLDER_DEPTH {
                return Err(ServiceError::internal("folder nesting too deep or cyclic"));
            }
            let f = workspace::get_folder(tx, t, &fid).await?;
            cur = f.parent_id.clone();
            chain.push(f);
        }
        chain.reverse();
        Ok(chain)
    }

    /// A folder as a resource: its path and effective classification.
    pub(crate) async fn folder_as_resource(
        &self,
        tx: &mut Tx,
        settings: &TenantSettings,
        t: &TenantId,
        id: &FolderId,
    ) -> Result<(Folder, Resource)> {
        let chain = self.folder_chain(tx, t, id).await?;
        let level = settings.effective_rank(chain.iter().rev().map(|f| f.labels.label.as_deref()));
        let path = chain.iter().map(|f| f.id.clone()).collect();
        let folder = chain.last().cloned().ok_or(ServiceError::NotFound)?;
        Ok((
            folder,
            Resource::Folder {
                tenant_id: t.clone(),
                path,
                level,
            },
        ))
    }

    /// A project (or, with `item_label`, a file in it) as a resource.
    pub(crate) async fn project_as_resource(
        &self,
        tx: &mut Tx,
        settings: &TenantSettings,
        t: &TenantId,
        id: &ProjectId,
        item_label: Option<Option<&str>>,
    ) -> Result<(Project, Resource)> {
        let p = workspace::get_project(tx, t, id).await?;
        let chain = self.folder_chain(tx, t, &p.folder_id).await?;
        let r = project_resource(settings, t, &p, &chain, item_label);
        Ok((p, r))
    }

    /// The resource a scope denotes (for grants), with its ancestry.
    pub(crate) async fn scope_resource(
        &self,
        tx: &mut Tx,
        settings: &TenantSettings,
        tenant: &TenantId,
        scope: &Scope,
    ) -> Result<Resource> {
        Ok(match scope {
            Scope::Tenant => Resource::Tenant(tenant.clone()),
            Scope::Folder(f) => self.folder_as_resource(tx, settings, tenant, f).await?.1,
            Scope::Project(p) => {
                self.project_as_resource(tx, settings, tenant, p, None)
                    .await?
                    .1
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
        match self
            .folder_as_resource(tx, &auth.tenant.settings, &auth.tenant.id, id)
            .await
        {
            Err(ServiceError::NotFound) => Err(self
                .not_found(&auth.principal, "folder", id.as_str(), ctx)
                .await),
            other => other,
        }
    }

    async fn project_resource(
        &self,
        auth: &AuthContext,
        tx: &mut Tx,
        id: &ProjectId,
        ctx: &RequestCtx,
    ) -> Result<(Project, Resource)> {
        match self
            .project_as_resource(tx, &auth.tenant.settings, &auth.tenant.id, id, None)
            .await
        {
            Err(ServiceError::NotFound) => Err(self
                .not_found(&auth.principal, "project", id.as_str(), ctx)
                .await),
            other => other,
        }
    }

    /// Everything the principal may view, for the console tree and the API lists. Items
    /// above a principal's label cap are simply absent (DATA-3).
    pub async fn workspace_tree(&self, auth: &AuthContext) -> Result<Tree> {
        let t = &auth.tenant.id;
        let settings = &auth.tenant.settings;
        let mut tx = self.store.tenant_read(t).await?;
        let folders = workspace::list_folders(&mut tx, t).await?;
        let projects = workspace::list_projects(&mut tx, t).await?;
        drop(tx);
        // Ancestry from the in-memory list (one query each instead of one per folder).
        let by_id: std::collections::HashMap<&FolderId, &Folder> =
            folders.iter().map(|f| (&f.id, f)).collect();
        // (path outermost first, labels nearest first)
        let chain_of = |id: &FolderId| {
            let mut path = Vec::new();
            let mut labels = Vec::new();
            let mut cur = by_id.get(id).copied();
            while let Some(f) = cur {
                if path.len() > MAX_FOLDER_DEPTH {
                    break;
                }
                path.push(f.id.clone());
                labels.push(f.labels.label.as_deref());
                cur = f.parent_id.as_ref().and_then(|p| by_id.get(p).copied());
            }
            path.reverse();
            (path, labels)
        };
        let visible_folders: Vec<Folder> = folders
            .iter()
            .filter(|f| {
                let (path, labels) = chain_of(&f.id);
                let r = Resource::Folder {
                    tenant_id: t.clone(),
                    path,
                    level: settings.effective_rank(labels),
                };
                kura_domain::authorize(&auth.principal, Action::View, &r) == Decision::Allow
            })
            .cloned()
            .collect();
        let visible_projects: Vec<Project> = projects
            .into_iter()
            .filter(|p| {
                let (folders, labels) = chain_of(&p.folder_id);
                let level = settings
                    .effective_rank(std::iter::once(p.labels.label.as_deref()).chain(labels));
                let r = Resource::Project {
                    tenant_id: t.clone(),
                    folders,
                    project_id: p.id.clone(),
                    level,
                };
                kura_domain::authorize(&auth.principal, Action::View, &r) == Decision::Allow
            })
            .collect();
        Ok(Tree {
            folders: visible_folders,
            projects: visible_projects,
        })
    }

    /// Nobody sets a label above their own cap (DATA-3): an item given the label `label`
    /// under `at` (where `action` is checked) needs `action` there up to that label's level.
    /// A refusal is audited and answered like any missing permission.
    pub(crate) async fn require_label_within_cap(
        &self,
        auth: &AuthContext,
        at: &Resource,
        label: Option<&str>,
        action: Action,
        ctx: &RequestCtx,
    ) -> Result<()> {
        let Some(l) = label else { return Ok(()) };
        let rank = auth.tenant.settings.label_rank(l);
        if auth
            .principal
            .actions_on_up_to(at, Some(rank))
            .contains(action)
        {
            return Ok(());
        }
        self.audit_alone(
            &auth.tenant.id,
            &Actor::User(&auth.principal),
            ctx,
            Event::new("access.denied")
                .result("denied")
                .details(serde_json::json!({ "action": action.as_str(), "reason": "label above the caller's cap", "label": l })),
        )
        .await?;
        Err(ServiceError::Forbidden)
    }

    /// Checks labels, tags and attributes against the tenant's scheme and limits.
    pub(crate) fn check_labels(&self, settings: &TenantSettings, l: &Labels) -> Result<()> {
        if let Some(label) = &l.label {
            settings.check_label(label)?;
        }
        if l.tags.len() > 20
            || l.tags
                .iter()
                .any(|t| t.trim().is_empty() || t.chars().count() > 50)
        {
            return Err(ServiceError::invalid(
                "tags",
                "at most 20 tags of 1-50 characters",
            ));
        }
        if l.attributes.len() > 20
            || l.attributes
                .iter()
                .any(|(k, v)| k.is_empty() || k.chars().count() > 50 || v.to_string().len() > 500)
        {
            return Err(ServiceError::invalid(
                "attributes",
                "at most 20 attributes, keys of 1-50 characters, values under 500 bytes",
            ));
        }
        Ok(())
    }

    pub async fn create_folder(
        &self,
        auth: &AuthContext,
        name: &str,
        parent: Option<&FolderId>,
        labels: Labels,
        ctx: &RequestCtx,
    ) -> Result<Folder> {
        let t = &auth.tenant.id;
        let name = validate_name("name", name)?;
        self.check_labels(&auth.tenant.settings, &labels)?;
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
        self.require_label_within_cap(
            auth,
            &resource,
            labels.label.as_deref(),
            Action::FolderCreate,
            ctx,
        )
        .await?;
        let now = self.now();
        let folder = Folder {
            labels,
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
        patch.apply_labels(&mut folder.labels);
        self.check_labels(&auth.tenant.settings, &folder.labels)?;
        if folder.labels.label != before.labels.label {
            self.require_label_within_cap(
                auth,
                &r,
                folder.labels.label.as_deref(),
                Action::FolderManage,
                ctx,
            )
            .await?;
        }
        if let Some(p) = patch.parent {
            folder.parent_id = p;
        }
        folder.updated_at = self.now();
        let mut tx = self.store.tenant_tx(t).await?;
        workspace::update_folder(&mut tx, t, &folder).await?;
        // Re-check depth after the move (the subtree moves with it).
        workspace::folder_path(&mut tx, t, id).await?;
        let action = if before.labels.label != folder.labels.label {
            "label.change"
        } else if before.parent_id != folder.parent_id {
            "folder.move"
        } else if before.name != folder.name {
            "folder.rename"
        } else {
            "folder.update"
        };
        self.audit(
            &mut tx,
            t,
            &Actor::User(&auth.principal),
            ctx,
            Event::new(action)
                .target("folder", id)
                .details(serde_json::json!({
                    "before": { "name": before.name, "parent_id": before.parent_id, "labels": before.labels },
                    "after": { "name": folder.name, "parent_id": folder.parent_id, "labels": folder.labels },
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
        labels: Labels,
        ctx: &RequestCtx,
    ) -> Result<Project> {
        let t = &auth.tenant.id;
        let name = validate_name("name", name)?;
        self.check_labels(&auth.tenant.settings, &labels)?;
        let mut tx = self.store.tenant_read(t).await?;
        let (_, r) = self.folder_resource(auth, &mut tx, folder_id, ctx).await?;
        drop(tx);
        self.require(&auth.principal, Action::ProjectCreate, &r, ctx)
            .await?;
        self.require_label_within_cap(
            auth,
            &r,
            labels.label.as_deref(),
            Action::ProjectCreate,
            ctx,
        )
        .await?;
        let now = self.now();
        let project = Project {
            labels,
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
        patch.apply_labels(&mut project.labels);
        self.check_labels(&auth.tenant.settings, &project.labels)?;
        if project.labels.label != before.labels.label {
            self.require_label_within_cap(
                auth,
                &r,
                project.labels.label.as_deref(),
                Action::ProjectManage,
                ctx,
            )
            .await?;
        }
        if let Some(f) = patch.parent {
            project.folder_id = f;
        }
        project.updated_at = self.now();
        let mut tx = self.store.tenant_tx(t).await?;
        workspace::update_project(&mut tx, t, &project).await?;
        let action = if before.labels.label != project.labels.label {
            "label.change"
        } else if before.folder_id != project.folder_id {
            "project.move"
        } else if before.name != project.name {
            "project.rename"
        } else {
            "project.update"
        };
        self.audit(
            &mut tx,
            t,
            &Actor::User(&auth.principal),
            ctx,
            Event::new(action)
                .target("project", id)
                .details(serde_json::json!({
                    "before": { "name": before.name, "folder_id": before.folder_id, "labels": before.labels },
                    "after": { "name": project.name, "folder_id": project.folder_id, "labels": project.labels },
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

/// A project (in its folders, outermost first) as a resource: its path and effective
/// classification — with that of an item in it (`item_label`) when one is asked about.
pub(crate) fn project_resource(
    settings: &TenantSettings,
    t: &TenantId,
    p: &Project,
    chain: &[Folder],
    item_label: Option<Option<&str>>,
) -> Resource {
    let labels = item_label
        .into_iter()
        .chain(std::iter::once(p.labels.label.as_deref()))
        .chain(chain.iter().rev().map(|f| f.labels.label.as_deref()));
    Resource::Project {
        tenant_id: t.clone(),
        folders: chain.iter().map(|f| f.id.clone()).collect(),
        project_id: p.id.clone(),
        level: settings.effective_rank(labels),
    }
}
