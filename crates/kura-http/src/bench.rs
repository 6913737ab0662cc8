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
use tokio::io::AsyncWriteExt;

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/bench/plain",
        post(upload)
            .get(download)
            .layer(axum::extract::DefaultBodyLimit::disable()),
    )
}

fn path(s: &AppState) -> Option<std::path::PathBuf> {
    s.http.bench_dir.as_ref().map(|d| d.join("plain.bin"))
}

async fn upload(State(s): State<AppState>, body: Body) -> Response {
    let Some(p) = path(&s) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Ok(mut f) = tokio::fs::File::create(&p).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut stream = body.into_data_stream();
    let mut n = 0u64;
    while let Some(Ok(chunk)) = stream.next().await {
        n += chunk.len() as u64;
        if f.write_all(&chunk).await.is_err() {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    }
    if f.sync_all().await.is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (StatusCode::CREATED, n.to_string()).into_response()
}

async fn download(State(s): State<AppState>) -> Response {
    let Some(p) = path(&s) else {
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
