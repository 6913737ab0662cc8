//! Searching files.

use super::*;

#[derive(Template)]
#[template(path = "search.html")]
struct SearchTpl {
    p: Page,
    files: Vec<FileView>,
    labels: Vec<String>,
    filter: FileFilter,
    /// The next page of files (same filters), when there is one.
    next_page: Option<String>,
    filtering: bool,
}

/// Files in every project the user can see, by name, tag and label.
pub async fn search_page(
    c: Console,
    Query(flash): Query<Flash>,
    Query(filter): Query<FileFilter>,
) -> Response {
    let s = c.state.clone();
    let mut views = Vec::new();
    let mut next = None;
    let mut flash = flash;
    if filter.active() {
        match s
            .services
            .search_files(&c.auth, &filter.search(None), &c.ctx)
            .await
        {
            Ok((found, n)) => {
                next = n;
                let names: HashMap<String, String> = match s.services.workspace_tree(&c.auth).await
                {
                    Ok(t) => t
                        .projects
                        .into_iter()
                        .map(|p| (p.id.to_string(), p.name))
                        .collect(),
                    Err(_) => HashMap::new(),
                };
                let zone = c.auth.tenant.settings.time_zone.clone();
                views = found
                    .into_iter()
                    .map(|f| file_view(f, -1, &zone, &names))
                    .collect();
            }
            Err(_) => flash.err = Some("invalid".into()),
        }
    }
    let body = SearchTpl {
        next_page: filter.next_page("/search", next),
        p: page(&c, "search.title", "search", "/search", &flash),
        files: views,
        labels: c.auth.tenant.settings.labels.clone(),
        filtering: filter.active(),
        filter,
    }
    .render();
    html(StatusCode::OK, body)
}
