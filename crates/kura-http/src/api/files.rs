//! Files: upload, download (ranges, outcome recorded), versions, trash, labels and tags.

use super::*;

pub(super) fn routes() -> Vec<(RouteDoc, MethodRouter<AppState>)> {
    vec![
        (
            RouteDoc {
                method: "post",
                path: "/api/v1/projects/{project_id}/files",
                summary: "Upload a file (raw body, ?name=); a new version if the name exists",
                area: ApiArea::Files,
                auth: true,
                body: Some(BodyDoc {
                    schema: schema_of::<wire::Binary>,
                    content_type: "application/octet-stream",
                }),
                query: vec![schema_of::<UploadQuery> as SchemaFn],
                ok: 201,
                response: Some(BodyDoc {
                    schema: schema_of::<wire::FileAndVersion>,
                    content_type: "application/json",
                }),
            },
            post(upload_file).layer(axum::extract::DefaultBodyLimit::disable()),
        ),
        route!(get, "/api/v1/projects/{project_id}/files", Files, true, 200, "Files of a project (filters: q, tag, label, attr=key:value; sort, order, after, limit)", list_files, query: [ListFilter, PageParams], resp: wire::Page<wire::FoundFile>),
        route!(get, "/api/v1/files/{file_id}", Files, true, 200, "A file with its versions", file_info, resp: wire::FileWithVersions),
        route!(get, "/api/v1/files/{file_id}/content", Files, true, 200, "Download (?version=N); Range, ETag and If-None-Match supported", download_file, query: [DownloadQuery], raw: "application/octet-stream"),
        route!(
            delete,
            "/api/v1/files/{file_id}",
            Files,
            true,
            204,
            "Move a file to the trash",
            delete_file
        ),
        route!(get, "/api/v1/projects/{project_id}/trash", Files, true, 200, "Files in the project's trash", list_trash, resp: wire::Items<wire::File>),
        route!(post, "/api/v1/files/{file_id}/restore", Files, true, 200, "Take a file out of the trash", restore_file, resp: wire::File),
        route!(
            post,
            "/api/v1/files/{file_id}/purge",
            Files,
            true,
            204,
            "Delete a trashed file for good (versions and blobs)",
            purge_file
        ),
        route!(post, "/api/v1/files/{file_id}/versions/{version}/restore", Files, true, 201, "Make an old version current again (as a new version)", restore_version, resp: wire::FileAndVersion),
        route!(patch, "/api/v1/files/{file_id}", Files, true, 200, "Rename, move (project_id), or set the label, tags and attributes of a file", patch_file, body: FilePatch, resp: wire::File),
    ]
}

/// The file's bytes are the request body (its type in `Content-Type`).
#[derive(Deserialize, JsonSchema)]
struct UploadQuery {
    /// The file's name.
    name: Option<String>,
    /// Classification level of the file (default: inherited from the project).
    label: Option<String>,
}

async fn upload_file(
    Call(s, a, ctx): Call,
    Path(project): Path<ProjectId>,
    Query(q): Query<UploadQuery>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> ApiResult {
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_string();
    let stream = body.into_data_stream();
    let (file, version) = s
        .services
        .upload_file(
            &a,
            &project,
            q.name.as_deref().unwrap_or_default(),
            &content_type,
            q.label.as_deref(),
            stream,
            s.http.max_upload_bytes,
            &ctx,
        )
        .await?;
    created(wire::FileAndVersion {
        file: file.into(),
        version: version.into(),
    })
}

async fn list_files(
    Call(s, a, ctx): Call,
    Path(project): Path<ProjectId>,
    Query(f): Query<ListFilter>,
    Query(pg): Query<PageParams>,
) -> ApiResult {
    let q = file_search(Some(project), f, pg)?;
    let (list, next) = s.services.search_files(&a, &q, &ctx).await?;
    ok(wire::Page::<wire::FoundFile> {
        items: list.into_iter().map(Into::into).collect(),
        next,
    })
}

async fn file_info(Call(s, a, ctx): Call, Path(id): Path<FileId>) -> ApiResult {
    let (file, versions) = s.services.file_info(&a, &id, &ctx).await?;
    ok(wire::FileWithVersions {
        file: file.into(),
        versions: versions.into_iter().map(Into::into).collect(),
    })
}

#[derive(Deserialize, JsonSchema)]
struct DownloadQuery {
    /// A version number (default: the current one).
    version: Option<i64>,
}

/// Parses `bytes=a-b`, `bytes=a-` or `bytes=-n` against a size. `Err` means unsatisfiable.
fn parse_range(h: &str, size: u64) -> Option<Result<kura_services::files::ByteRange, ()>> {
    let spec = h.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None; // multiple ranges: answer with the whole file
    }
    let (a, b) = spec.split_once('-')?;
    let r = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            if n == 0 || size == 0 {
                return Some(Err(()));
            }
            (size.saturating_sub(n), size - 1)
        }
        (a, "") => (a.parse().ok()?, size.saturating_sub(1)),
        (a, b) => (
            a.parse().ok()?,
            b.parse::<u64>().ok()?.min(size.saturating_sub(1)),
        ),
    };
    if size == 0 || r.0 > r.1 || r.0 >= size {
        return Some(Err(()));
    }
    Some(Ok(kura_services::files::ByteRange {
        start: r.0,
        end: r.1,
    }))
}

/// A body already in memory, of known length: it goes out with the response head, and the
/// access log has its size at once.
struct Frames {
    frames: std::collections::VecDeque<bytes::Bytes>,
    left: u64,
}

impl http_body::Body for Frames {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        let this = self.get_mut();
        std::task::Poll::Ready(this.frames.pop_front().map(|b| {
            this.left -= b.len() as u64;
            Ok(http_body::Frame::data(b))
        }))
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.left)
    }
}

/// What is needed to record a download once its stream ends.
struct DownloadRecord {
    services: kura_services::Services,
    auth: kura_services::auth::AuthContext,
    file: kura_store::files::File,
    version: kura_store::files::Version,
    ctx: kura_services::RequestCtx,
}

/// The download's stream, counting what goes out; when it ends — completely, with an
/// integrity failure, or because the client went away (the stream is dropped) — the
/// outcome is recorded on a task of its own.
fn tracked_download(
    inner: kura_services::files::ByteStream,
    record: DownloadRecord,
    want: u64,
) -> kura_services::files::ByteStream {
    struct Tracker {
        record: Option<DownloadRecord>,
        sent: u64,
        want: u64,
    }
    impl Drop for Tracker {
        fn drop(&mut self) {
            // Still unrecorded: the client went away before the end.
            let Some(r) = self.record.take() else { return };
            let outcome = DownloadOutcome::Aborted;
            let sent = self.sent;
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    if let Err(e) = r
                        .services
                        .record_download(&r.auth, &r.file, &r.version, outcome, sent, &r.ctx)
                        .await
                    {
                        tracing::warn!(error = %e, "recording a download failed");
                    }
                });
            }
        }
    }
    let tracker = Tracker {
        record: Some(record),
        sent: 0,
        want,
    };
    /// Records the outcome once (the record is taken); false when it could not be
    /// recorded.
    async fn finish(t: &mut Tracker, outcome: DownloadOutcome) -> bool {
        let Some(r) = t.record.take() else {
            return true;
        };
        match r
            .services
            .record_download(&r.auth, &r.file, &r.version, outcome, t.sent, &r.ctx)
            .await
        {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "recording a download failed; its end is withheld");
                false
            }
        }
    }
    /// What the client gets instead of the last piece of a download that could not be
    /// recorded: the response breaks off, so no download is ever complete and unaudited.
    fn unrecorded() -> std::io::Error {
        std::io::Error::other("the download could not be recorded")
    }
    Box::pin(futures_util::stream::unfold(
        (inner, tracker),
        |(mut inner, mut t)| async move {
            use futures_util::StreamExt;
            let Some(item) = inner.next().await else {
                // The end: complete if all was sent (an error, if the stream ended early).
                let outcome = if t.sent >= t.want {
                    DownloadOutcome::Complete
                } else {
                    DownloadOutcome::Error
                };
                if !finish(&mut t, outcome).await && outcome == DownloadOutcome::Complete {
                    return Some((Err(unrecorded()), (inner, t)));
                }
                return None;
            };
            let outcome = match &item {
                Ok(b) => {
                    t.sent += b.len() as u64;
                    (t.sent >= t.want).then_some(DownloadOutcome::Complete)
                }
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                    Some(DownloadOutcome::IntegrityFailure)
                }
                Err(_) => Some(DownloadOutcome::Error),
            };
            // The end is recorded before the last piece goes out, so that the record is
            // there when the client has the file — and if it cannot be, the last piece
            // does not go out; an abort is recorded when dropped.
            if let Some(outcome) = outcome {
                if !finish(&mut t, outcome).await && outcome == DownloadOutcome::Complete {
                    return Some((Err(unrecorded()), (inner, t)));
                }
            }
            Some((item, (inner, t)))
        },
    ))
}

async fn download_file(
    method: axum::http::Method,
    Call(s, a, ctx): Call,
    Path(id): Path<FileId>,
    Query(q): Query<DownloadQuery>,
    headers: axum::http::HeaderMap,
) -> ApiResult {
    use axum::http::header;
    let d = s.services.open_download(&a, &id, q.version, &ctx).await?;
    let (file, v) = (d.file.clone(), d.version.clone());
    let etag = format!("\"{}-{}\"", v.sha256, v.version);
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| h.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    let size = v.size as u64;
    let range = match headers
        .get(header::RANGE)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| parse_range(h, size))
    {
        Some(Err(())) => {
            if method != axum::http::Method::HEAD {
                s.services
                    .record_download(&a, &file, &v, DownloadOutcome::RangeNotSatisfiable, 0, &ctx)
                    .await?;
            }
            return Ok((
                StatusCode::RANGE_NOT_SATISFIABLE,
                [(header::CONTENT_RANGE, format!("bytes */{size}"))],
            )
                .into_response());
        }
        Some(Ok(r)) => Some(r),
        None => None,
    };
    let want = range.map(|r| r.end - r.start + 1).unwrap_or(size);
    let body = if method == axum::http::Method::HEAD {
        // The head only: nothing is read, decrypted or served, so nothing is recorded.
        axum::body::Body::empty()
    } else {
        let content = match s.services.download_content(&d, range).await {
            Ok(c) => c,
            Err(e) => {
                let outcome = match e {
                    kura_services::ServiceError::Tampered => DownloadOutcome::IntegrityFailure,
                    _ => DownloadOutcome::Error,
                };
                if let Err(re) = s
                    .services
                    .record_download(&a, &file, &v, outcome, 0, &ctx)
                    .await
                {
                    tracing::warn!(error = %re, "recording a failed download failed");
                }
                return Err(e.into());
            }
        };
        match content {
            // Small content is already decrypted and checked: nothing can fail any more, so
            // it is recorded before its first byte goes out (if it cannot be, the caller
            // gets the error instead of the file), and the response is sent in one piece.
            Content::Whole { frames, len } => {
                s.services
                    .record_download(&a, &file, &v, DownloadOutcome::Complete, len, &ctx)
                    .await?;
                axum::body::Body::new(Frames {
                    frames: frames.into(),
                    left: len,
                })
            }
            Content::Stream(stream) => axum::body::Body::from_stream(tracked_download(
                stream,
                DownloadRecord {
                    services: s.services.clone(),
                    auth: a.clone(),
                    file: file.clone(),
                    version: v.clone(),
                    ctx: ctx.clone(),
                },
                want,
            )),
        }
    };
    let disposition = format!(
        "attachment; filename*=UTF-8''{}",
        crate::common::encode(&file.name)
    );
    let mut res = axum::response::Response::new(body);
    let h = res.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, k: header::HeaderName, v: String| {
        if let Ok(v) = axum::http::HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    };
    set(h, header::CONTENT_TYPE, v.content_type.clone());
    set(h, header::ETAG, etag);
    set(h, header::ACCEPT_RANGES, "bytes".into());
    set(h, header::CONTENT_DISPOSITION, disposition);
    set(h, header::CACHE_CONTROL, "private, no-cache".into());
    match range {
        Some(r) => {
            *res.status_mut() = StatusCode::PARTIAL_CONTENT;
            let h = res.headers_mut();
            set(
                h,
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{size}", r.start, r.end),
            );
            set(h, header::CONTENT_LENGTH, (r.end - r.start + 1).to_string());
        }
        None => set(res.headers_mut(), header::CONTENT_LENGTH, size.to_string()),
    }
    Ok(res)
}

async fn delete_file(Call(s, a, ctx): Call, Path(id): Path<FileId>) -> ApiResult {
    s.services.delete_file(&a, &id, &ctx).await?;
    no_content()
}

/// `PATCH /files/{id}`: rename, move to another project, relabel; what is absent stays.
#[derive(JsonSchema)]
#[allow(dead_code)] // documents the body `patch_file` reads field by field
struct FilePatch {
    name: Option<String>,
    /// The project to move the file to.
    project_id: Option<String>,
    /// Own classification level (null: inherit the parent's).
    #[serde(default)]
    label: Option<Option<String>>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    /// Custom attributes (replace the current ones).
    #[serde(default)]
    attributes: Option<serde_json::Map<String, Value>>,
}

async fn patch_file(
    Call(s, a, ctx): Call,
    Path(id): Path<FileId>,
    ApiJson(b): ApiJson<Value>,
) -> ApiResult {
    let (label, tags, attributes) = label_fields(&b)?;
    let name = match b.get("name") {
        None => None,
        Some(Value::String(n)) => Some(n.clone()),
        Some(_) => return Err(ApiError::bad_request("name must be a string")),
    };
    let project = match b.get("project_id") {
        None => None,
        Some(Value::String(p)) => Some(ProjectId::from_string(p.clone())),
        Some(_) => return Err(ApiError::bad_request("project_id must be a string")),
    };
    let labels = if label.is_some() || tags.is_some() || attributes.is_some() {
        let (file, _) = s.services.file_info(&a, &id, &ctx).await?;
        let mut l = file.labels.clone();
        if let Some(x) = label {
            l.label = x;
        }
        if let Some(x) = tags {
            l.tags = x;
        }
        if let Some(x) = attributes {
            l.attributes = x;
        }
        Some(l)
    } else {
        None
    };
    let up = kura_services::files::FileUpdate {
        name,
        project,
        labels,
    };
    ok(wire::File::from(
        s.services.update_file(&a, &id, up, &ctx).await?,
    ))
}

async fn list_trash(Call(s, a, ctx): Call, Path(project): Path<ProjectId>) -> ApiResult {
    items::<wire::File, _>(s.services.list_trash(&a, &project, &ctx).await?)
}

async fn restore_file(Call(s, a, ctx): Call, Path(id): Path<FileId>) -> ApiResult {
    ok(wire::File::from(
        s.services.restore_file(&a, &id, &ctx).await?,
    ))
}

async fn purge_file(Call(s, a, ctx): Call, Path(id): Path<FileId>) -> ApiResult {
    s.services.purge_file(&a, &id, &ctx).await?;
    no_content()
}

async fn restore_version(
    Call(s, a, ctx): Call,
    Path((id, version)): Path<(FileId, String)>,
) -> ApiResult {
    let version: i64 = version.parse().map_err(|_| ApiError::not_found())?;
    let (file, v) = s.services.restore_version(&a, &id, version, &ctx).await?;
    created(wire::FileAndVersion {
        file: file.into(),
        version: v.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::parse_range;
    use kura_services::files::ByteRange;

    #[test]
    fn ranges() {
        let r = |a, b| Some(Ok(ByteRange { start: a, end: b }));
        assert_eq!(parse_range("bytes=0-9", 100), r(0, 9));
        assert_eq!(parse_range("bytes=90-", 100), r(90, 99));
        assert_eq!(parse_range("bytes=-10", 100), r(90, 99));
        assert_eq!(parse_range("bytes=95-200", 100), r(95, 99));
        assert_eq!(parse_range("bytes=100-", 100), Some(Err(())));
        assert_eq!(parse_range("bytes=5-1", 100), Some(Err(())));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
    }
}
