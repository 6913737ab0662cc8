//! Routes that exist only inside `kura bench`: a plain, unencrypted upload and download of
//! the same process, as the baseline the encrypted file path is measured against. Never
//! mounted by `kura serve` or `kura demo`.

use crate::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use futures_util::StreamExt;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::AsyncWriteExt;

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/bench/plain",
        post(upload)
            .get(download)
            .layer(axum::extract::DefaultBodyLimit::disable()),
    )
}

/// Each upload writes a new file (as every upload of the file service writes a new blob,
/// never over an old one), kept until the bench ends; a download reads the latest complete
/// one. `STARTED` numbers uploads, `DONE` is one more than the latest complete one.
static STARTED: AtomicU64 = AtomicU64::new(0);
static DONE: AtomicU64 = AtomicU64::new(0);

fn path(s: &AppState, n: u64) -> Option<std::path::PathBuf> {
    s.http
        .bench_dir
        .as_ref()
        .map(|d| d.join(format!("plain-{n}.bin")))
}

#[derive(serde::Deserialize)]
struct UploadQuery {
    /// Also compute the content's SHA-256 beside the write, as the file service does.
    #[serde(default)]
    digest: bool,
}

async fn upload(
    State(s): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<UploadQuery>,
    body: Body,
) -> Response {
    let seq = STARTED.fetch_add(1, Ordering::SeqCst);
    let Some(p) = path(&s, seq) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Ok(mut f) = tokio::fs::File::create_new(&p).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    // The same hand-over as the file service: batches of about 1 MiB to a blocking thread.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<bytes::Bytes>>(8);
    let hasher = q.digest.then(|| {
        tokio::task::spawn_blocking(move || {
            let mut sha = kura_crypto::Sha256Stream::default();
            while let Some(batch) = rx.blocking_recv() {
                for piece in batch {
                    sha.update(&piece);
                }
            }
            sha.finish_hex()
        })
    });
    let mut batch = Vec::new();
    let mut batch_len = 0usize;
    let mut stream = body.into_data_stream();
    let mut n = 0u64;
    while let Some(Ok(chunk)) = stream.next().await {
        n += chunk.len() as u64;
        if f.write_all(&chunk).await.is_err() {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        if hasher.is_some() {
            batch_len += chunk.len();
            batch.push(chunk);
            if batch_len >= 1024 * 1024 {
                batch_len = 0;
                let _ = tx.send(std::mem::take(&mut batch)).await;
            }
        }
    }
    if !batch.is_empty() {
        let _ = tx.send(batch).await;
    }
    drop(tx);
    if f.sync_all().await.is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    if let Some(h) = hasher {
        if h.await.is_err() {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    }
    DONE.fetch_max(seq + 1, Ordering::SeqCst);
    (StatusCode::CREATED, n.to_string()).into_response()
}

async fn download(State(s): State<AppState>) -> Response {
    let Some(last) = DONE.load(Ordering::SeqCst).checked_sub(1) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(p) = path(&s, last) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Ok(f) = tokio::fs::File::open(&p).await else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let stream = futures_util::stream::unfold(f, |mut f| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 64 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(bytes::Bytes::from(buf)), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    });
    Body::from_stream(stream).into_response()
}
