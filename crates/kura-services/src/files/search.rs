//! Listing and searching files the caller may see.

use super::*;

/// A file listing or search (`GET /projects/{id}/files`, `GET /search`).
#[derive(Debug, Clone, Default)]
pub struct FileSearch {
    /// One project (`None`: every project the caller can see).
    pub project: Option<ProjectId>,
    /// Case-insensitive part of the name.
    pub q: Option<String>,
    /// An exact tag.
    pub tag: Option<String>,
    /// The effective label (the file's own, else inherited from its project and folders).
    pub label: Option<String>,
    /// Custom attributes that must all match exactly.
    pub attributes: Vec<(String, String)>,
    pub sort: Option<files::FileSort>,
    pub descending: bool,
    /// The opaque cursor of the previous page's `next`.
    pub after: Option<String>,
    pub limit: i64,
}

/// A file found by a search, with where it is and its effective label.
#[derive(Debug, Clone)]
pub struct FoundFile {
    pub file: File,
    pub effective_label: String,
}

impl Services {
    /// Keeps the files the principal may view: a file's own label, if it has one, decides
    /// its level; otherwise it has its project's (DATA-3).
    pub(crate) fn visible_files(
        &self,
        auth: &AuthContext,
        project: &Resource,
        list: Vec<File>,
    ) -> Vec<File> {
        let Resource::Project {
            tenant_id,
            folders,
            project_id,
            level,
        } = project
        else {
            return Vec::new();
        };
        list.into_iter()
            .filter(|f| {
                let level = match &f.labels.label {
                    Some(l) => auth.tenant.settings.label_rank(l),
                    None => *level,
                };
                let r = Resource::Project {
                    tenant_id: tenant_id.clone(),
                    folders: folders.clone(),
                    project_id: project_id.clone(),
                    level,
                };
                kura_domain::authorize(&auth.principal, Action::View, &r)
                    == kura_domain::Decision::Allow
            })
            .collect()
    }

    /// A page of a project's files matching `query` with their current sizes (the
    /// console's file table), and the cursor of the next page. `query.project` must be set.
    pub async fn list_files_with_sizes(
        &self,
        auth: &AuthContext,
        query: &FileSearch,
        ctx: &RequestCtx,
    ) -> Result<(Vec<(FoundFile, i64)>, Option<String>)> {
        if query.project.is_none() {
            return Err(ServiceError::invalid("project", "is required"));
        }
        let (list, next) = self.search_files(auth, query, ctx).await?;
        let t = &auth.tenant.id;
        let mut tx = self.store.tenant_read(t).await?;
        let ids: Vec<&str> = list.iter().map(|f| f.file.id.as_str()).collect();
        let sizes = files::current_sizes(&mut tx, t, &ids).await?;
        let list = list
            .into_iter()
            .map(|f| {
                let size = sizes.get(&f.file.id).copied().unwrap_or(0);
                (f, size)
            })
            .collect();
        Ok((list, next))
    }

    /// One page of files, keyset-paginated: name and tag are filtered in SQL; label cap,
    /// effective label and attributes per file, here. Files the caller may not see are
    /// skipped without a trace (DATA-3): the page is filled from further rows, and the
    /// cursor comes from the rows examined, so hidden files never stop paging.
    pub async fn search_files(
        &self,
        auth: &AuthContext,
        query: &FileSearch,
        ctx: &RequestCtx,
    ) -> Result<(Vec<FoundFile>, Option<String>)> {
        let t = &auth.tenant.id;
        let settings = &auth.tenant.settings;
        if let Some(l) = &query.label {
            settings.check_label(l)?;
        }
        if let Some(p) = &query.project {
            self.project_for(auth, p, None, Action::View, ctx).await?;
        }
        let sort = query.sort.unwrap_or(files::FileSort::Name);
        let bad_cursor = || ServiceError::invalid("after", "is not a cursor from this listing");
        let mut after = match query.after.as_deref() {
            None | Some("") => None,
            Some(c) => {
                let raw = hex::decode(c).map_err(|_| bad_cursor())?;
                let text = String::from_utf8(raw).map_err(|_| bad_cursor())?;
                let (k, id) = text.split_once('\0').ok_or_else(bad_cursor)?;
                // An update-time cursor carries a number (the database compares it as one).
                if sort == files::FileSort::Updated && k.parse::<i64>().is_err() {
                    return Err(bad_cursor());
                }
                Some((k.to_string(), id.to_string()))
            }
        };
        let limit = query.limit.clamp(1, 1000);
        let mut out: Vec<FoundFile> = Vec::new();
        let mut projects: HashMap<String, Option<Resource>> = HashMap::new();
        let mut tx = self.store.tenant_read(t).await?;
        let mut exhausted = false;
        let rare_name = match query.q.as_deref().filter(|q| !q.is_empty()) {
            Some(q) => files::name_is_rare(&mut tx, q).await?,
            None => false,
        };
        // Bounded work per request: at most 10 batches are examined. The first asks for one
        // row more than a page (enough when nothing is hidden: the common case, and the
        // extra row says whether a next page exists); later ones, needed only when files
        // were skipped, twice a page.
        for round in 0..10 {
            let batch_limit = if round == 0 {
                (limit + 1).min(1000)
            } else {
                (limit * 2).min(1000)
            };
            let batch = files::page_files(
                &mut tx,
                t,
                &files::FileQuery {
                    project: query.project.as_ref(),
                    name_contains: query.q.as_deref(),
                    tag: query.tag.as_deref(),
                    sort,
                    descending: query.descending,
                    after: after.clone(),
                    limit: batch_limit,
                    rare_name,
                },
            )
            .await?;
            let n = batch.len() as i64;
            for f in batch {
                after = Some((files::sort_key(&f, sort), f.id.clone()));
                let pid = f.project_id.as_str().to_string();
                if !projects.contains_key(&pid) {
                    let r = match self
                        .project_as_resource(&mut tx, settings, t, &f.project_id, None)
                        .await
                    {
                        Ok((_, r)) => Some(r),
                        Err(ServiceError::NotFound) => None,
                        Err(e) => return Err(e),
                    };
                    projects.insert(pid.clone(), r);
                }
                let Some(Some(Resource::Project {
                    tenant_id,
                    folders,
                    project_id,
                    level,
                })) = projects.get(&pid)
                else {
                    continue;
                };
                let level = match &f.labels.label {
                    Some(l) => settings.label_rank(l),
                    None => *level,
                };
                let r = Resource::Project {
                    tenant_id: tenant_id.clone(),
                    folders: folders.clone(),
                    project_id: project_id.clone(),
                    level,
                };
                if kura_domain::authorize(&auth.principal, Action::View, &r)
                    != kura_domain::Decision::Allow
                {
                    continue;
                }
                let effective = settings
                    .labels
                    .get(level as usize)
                    .cloned()
                    .unwrap_or_default();
                if query.label.as_ref().is_some_and(|l| *l != effective) {
                    continue;
                }
                if !query
                    .attributes
                    .iter()
                    .all(|(k, v)| f.labels.attribute_is(k, v))
                {
                    continue;
                }
                out.push(FoundFile {
                    file: f,
                    effective_label: effective,
                });
                if out.len() as i64 == limit {
                    break;
                }
            }
            if out.len() as i64 == limit {
                break;
            }
            if n < batch_limit {
                exhausted = true;
                break;
            }
        }
        let next = (!exhausted)
            .then(|| after.map(|(k, id)| hex::encode(format!("{k}\0{id}"))))
            .flatten();
        Ok((out, next))
    }
}
