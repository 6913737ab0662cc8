//! A terminated tenant's full export (OPS-3, DATA-4): one tar archive, streamed, with
//! `metadata.json` (folders, projects, files and versions, users without credentials,
//! roles, grants, contacts, usage), `audit.jsonl` (the signed audit export, verifiable
//! offline), `access.csv`, `files.json` (archive path → file id, folders, project, name,
//! version, SHA-256), every live file's current version under
//! `files/<folder>/…/<project>/<name>` and its older versions under
//! `versions/<same path>/v<N>`. The logs are spooled (sealed with
//! a per-download key) to learn their size; nothing is held in memory whole.

use crate::audit::ExportFormat;
use crate::{Result, ServiceError, Services};
use bytes::Bytes;
use futures_util::StreamExt;
use kura_domain::TenantId;
use kura_store::backup;

/// Tables in `metadata.json`, and columns left out (credentials).
const METADATA: &[(&str, &[&str])] = &[
    ("tenants", &[]),
    ("tenant_contacts", &[]),
    ("users", &["password_hash"]),
    ("roles", &[]),
    ("grants", &[]),
    ("folders", &[]),
    ("projects", &[]),
    ("files", &[]),
    ("file_versions", &["blob_id"]),
    ("usage_daily", &[]),
];

/// A ustar header for a regular file.
fn tar_header(name: &str, size: u64, mtime_secs: i64) -> [u8; 512] {
    tar_header_typed(name, size, mtime_secs, b'0')
}

/// A ustar header of a type (`0` file, `x` PAX extended header for the next member).
fn tar_header_typed(name: &str, size: u64, mtime_secs: i64, kind: u8) -> [u8; 512] {
    let mut h = [0u8; 512];
    // Names are cut at a character boundary to fit the 100-byte field.
    let mut cut = name.len().min(99);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    h[..cut].copy_from_slice(&name.as_bytes()[..cut]);
    let octal = |h: &mut [u8; 512], at: usize, len: usize, v: u64| {
        let s = format!("{v:0width$o}", width = len - 1);
        h[at..at + len - 1].copy_from_slice(s.as_bytes());
    };
    octal(&mut h, 100, 8, 0o644);
    octal(&mut h, 108, 8, 0);
    octal(&mut h, 116, 8, 0);
    octal(&mut h, 124, 12, size);
    octal(&mut h, 136, 12, mtime_secs.max(0) as u64);
    h[156] = kind;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    h
}

fn padding(size: u64) -> Vec<u8> {
    vec![0u8; ((512 - size % 512) % 512) as usize]
}

/// The header(s) of one member: a plain ustar header, preceded by a PAX extended header
/// carrying the full path when it does not fit the 100-byte name field (GNU tar, bsdtar and
/// Python's tarfile read it; older readers see a truncated name, never another file's).
fn entry_header(path: &str, size: u64, mtime: i64) -> Vec<u8> {
    let mut out = Vec::new();
    if path.len() > 99 {
        let record = pax_record("path", path);
        out.extend_from_slice(&tar_header_typed(
            "././@PaxHeader",
            record.len() as u64,
            mtime,
            b'x',
        ));
        out.extend_from_slice(record.as_bytes());
        out.extend_from_slice(&padding(record.len() as u64));
    }
    out.extend_from_slice(&tar_header(path, size, mtime));
    out
}

/// One PAX record, `"<len> <key>=<value>\n"`, whose length counts its own digits.
fn pax_record(key: &str, value: &str) -> String {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + body.to_string().len();
    if len.to_string().len() != body.to_string().len() {
        len = body + len.to_string().len();
    }
    format!("{len} {key}={value}\n")
}

/// Where each folder sits: its names from the outermost folder in, made safe as path parts.
fn folder_paths(
    folders: &[serde_json::Map<String, serde_json::Value>],
) -> std::collections::HashMap<String, Vec<String>> {
    let get = |r: &serde_json::Map<String, serde_json::Value>, k: &str| {
        r.get(k).and_then(|v| v.as_str()).map(str::to_string)
    };
    let by_id: std::collections::HashMap<String, (Option<String>, String)> = folders
        .iter()
        .filter_map(|r| Some((get(r, "id")?, (get(r, "parent_id"), get(r, "name")?))))
        .collect();
    by_id
        .keys()
        .map(|id| {
            let mut parts = Vec::new();
            let mut at = Some(id.clone());
            // Folders nest at most 16 deep; the bound also stops a cycle in damaged data.
            while let Some(cur) = at.take().filter(|_| parts.len() < 32) {
                if let Some((parent, name)) = by_id.get(&cur) {
                    parts.push(safe_component(name));
                    at = parent.clone();
                }
            }
            parts.reverse();
            (id.clone(), parts)
        })
        .collect()
}

/// A path part that extracts as itself: no separators or control characters, not `.`/`..`.
fn safe_component(s: &str) -> String {
    let c = safe_name(s);
    if c.is_empty() || c == "." || c == ".." {
        format!("_{c}")
    } else {
        c
    }
}

/// `name` with a file id before its extension: `quote~0192….txt`.
fn with_id(name: &str, id: &str) -> String {
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem}~{id}.{ext}"),
        _ => format!("{name}~{id}"),
    }
}

/// One file version in the archive.
struct Wanted {
    path: String,
    file_id: String,
    folders: Vec<String>,
    project: String,
    name: String,
    current: bool,
    v: kura_store::files::Version,
}

fn member(name: &str, data: Vec<u8>, mtime: i64) -> Vec<Bytes> {
    let size = data.len() as u64;
    vec![
        Bytes::from(entry_header(name, size, mtime)),
        Bytes::from(data),
        Bytes::from(padding(size)),
    ]
}

fn safe_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// A log export spooled to a temporary file while its size (which the tar header needs
/// first) is counted: sealed in 64 KiB chunks (AES-256-GCM) with a key that lives only in
/// memory for this one download, so nothing readable is left at rest and memory stays
/// constant however long the logs are. The file is removed when the stream ends or is
/// dropped.
struct Spool {
    file: SpoolFile,
    key: kura_crypto::keys::SecretKey,
    size: u64,
}

/// Removes the spool file when dropped.
struct SpoolFile(std::path::PathBuf);

impl Drop for SpoolFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The spool is sealed like a blob (`kura_crypto::stream`) under its per-download key.
const SPOOL_CTX: kura_crypto::stream::BlobContext<'static> = kura_crypto::stream::BlobContext {
    tenant_id: "",
    blob_id: "export-spool",
    key_version: 0,
};

fn spool_err(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::internal(format!("export spool: {e}"))
}

async fn spool(mut s: crate::audit::ExportStream, name: &str) -> Result<Spool> {
    use tokio::io::AsyncWriteExt;
    let key = kura_crypto::keys::SecretKey::generate().map_err(spool_err)?;
    let file = SpoolFile(
        std::env::temp_dir().join(format!("kura-export-{}-{name}", kura_domain::ids::new_id())),
    );
    let mut opts = tokio::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut out = tokio::io::BufWriter::new(opts.open(&file.0).await.map_err(spool_err)?);
    let (mut enc, mut buf) =
        kura_crypto::stream::Encryptor::new(&key, SPOOL_CTX).map_err(spool_err)?;
    let mut size = 0u64;
    while let Some(chunk) = s.next().await {
        let chunk = chunk.map_err(spool_err)?;
        size += chunk.len() as u64;
        enc.update(&chunk, &mut buf).map_err(spool_err)?;
        let n = enc.sealed_len(&buf);
        if n > 0 {
            out.write_all(&buf[..n]).await.map_err(spool_err)?;
            buf.drain(..n);
        }
    }
    enc.finish(&mut buf).map_err(spool_err)?;
    out.write_all(&buf).await.map_err(spool_err)?;
    out.flush().await.map_err(spool_err)?;
    Ok(Spool { file, key, size })
}

/// The spooled bytes again, piece by piece, authenticated chunk by chunk (reordered,
/// dropped or altered chunks do not open; a truncated spool fails at its end).
fn unspool(sp: Spool) -> crate::files::ByteStream {
    use tokio::io::AsyncReadExt;
    let bad = |e: kura_crypto::CryptoError| std::io::Error::other(format!("export spool: {e}"));
    let dec = match kura_crypto::stream::Decryptor::new(&sp.key, SPOOL_CTX, sp.size) {
        Ok(d) => d,
        Err(e) => {
            let e = bad(e);
            return Box::pin(futures_util::stream::once(async move { Err(e) }));
        }
    };
    let state = (sp, None::<tokio::fs::File>, Some(dec));
    Box::pin(futures_util::stream::try_unfold(
        state,
        move |(sp, file, mut dec)| async move {
            let mut file = match file {
                Some(f) => f,
                None => tokio::fs::File::open(&sp.file.0).await?,
            };
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let Some(d) = dec.as_mut() else {
                    return Ok(None);
                };
                let n = file.read(&mut buf).await?;
                if n == 0 {
                    dec.take().map(|d| d.finish()).transpose().map_err(bad)?;
                    return Ok(None);
                }
                let mut plain = Vec::with_capacity(n);
                d.update(&buf[..n], &mut plain).map_err(bad)?;
                if !plain.is_empty() {
                    return Ok(Some((Bytes::from(plain), (sp, Some(file), dec))));
                }
            }
        },
    ))
}

/// A tar member whose body is a spooled stream.
fn spooled_member(name: &str, sp: Spool, mtime: i64) -> crate::files::ByteStream {
    let header = Bytes::copy_from_slice(&tar_header(name, sp.size, mtime));
    let pad = Bytes::from(padding(sp.size));
    Box::pin(
        futures_util::stream::once(async move { Ok(header) })
            .chain(unspool(sp))
            .chain(futures_util::stream::once(async move { Ok(pad) })),
    )
}

impl Services {
    /// The tenant's full export as a tar stream (files decrypted on the fly).
    pub async fn tenant_archive(&self, tenant: &TenantId) -> Result<crate::files::ByteStream> {
        let mtime = self.now().0 / 1000;
        let mut parts: Vec<Bytes> = Vec::new();
        let mut tx = self.store.tenant_read(tenant).await?;
        let mut meta = serde_json::Map::new();
        let (mut files, mut projects, mut folders) = (Vec::new(), Vec::new(), Vec::new());
        for (table, hidden) in METADATA {
            let rows = backup::dump_table(&mut tx, tenant, table).await?;
            match *table {
                "files" => files = rows.clone(),
                "projects" => projects = rows.clone(),
                "folders" => folders = rows.clone(),
                _ => {}
            }
            let rows: Vec<serde_json::Value> = rows
                .into_iter()
                .map(|mut r| {
                    for h in *hidden {
                        r.remove(*h);
                    }
                    serde_json::Value::Object(r)
                })
                .collect();
            meta.insert(table.to_string(), rows.into());
        }
        // Paths follow the workspace: files/<folder>/…/<project>/<name> for each live
        // file's current version, versions/<same path>/v<N> for its older versions. Names
        // that would collide (also case-insensitively, for case-insensitive file systems)
        // get the file's full id; every path is unique, long ones go in PAX headers.
        let folder_paths = folder_paths(&folders);
        let mut used = std::collections::HashSet::new();
        let mut wanted = Vec::new();
        for f in files
            .iter()
            .filter(|f| f.get("deleted_at").is_none_or(|d| d.is_null()))
        {
            let text = |k: &str| {
                f.get(k)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string()
            };
            let (id, name, project) = (text("id"), text("name"), text("project_id"));
            let current = f
                .get("current_version")
                .and_then(|v| v.as_i64())
                .unwrap_or(1);
            let p = projects
                .iter()
                .find(|p| p.get("id").and_then(|v| v.as_str()) == Some(project.as_str()));
            let project_name = p
                .and_then(|p| p.get("name").and_then(|v| v.as_str()))
                .unwrap_or("project")
                .to_string();
            let folder_path = p
                .and_then(|p| p.get("folder_id").and_then(|v| v.as_str()))
                .and_then(|fid| folder_paths.get(fid))
                .cloned()
                .unwrap_or_default();
            let mut dir: Vec<String> = folder_path.clone();
            dir.push(safe_component(&project_name));
            let mut rel = format!("{}/{}", dir.join("/"), safe_component(&name));
            if !used.insert(rel.to_lowercase()) {
                rel = format!("{}/{}", dir.join("/"), with_id(&safe_component(&name), &id));
                used.insert(rel.to_lowercase());
            }
            for v in kura_store::files::list_versions(&mut tx, tenant, &id).await? {
                let path = if v.version == current {
                    format!("kura-export/files/{rel}")
                } else {
                    format!("kura-export/versions/{rel}/v{}", v.version)
                };
                wanted.push(Wanted {
                    path,
                    file_id: id.clone(),
                    folders: folder_path.clone(),
                    project: project_name.clone(),
                    name: name.clone(),
                    current: v.version == current,
                    v,
                });
            }
        }
        drop(tx);
        let index: Vec<serde_json::Value> = wanted
            .iter()
            .map(|w| {
                serde_json::json!({
                    "path": w.path, "file_id": w.file_id, "folders": w.folders,
                    "project": w.project, "name": w.name, "version": w.v.version,
                    "current": w.current, "size": w.v.size, "sha256": w.v.sha256,
                })
            })
            .collect();
        let zone = {
            let mut tx = self.store.system_read().await?;
            kura_store::tenants::get(&mut tx, tenant)
                .await?
                .settings
                .time_zone
        };
        let audit = spool(
            self.audit_export_stream(tenant, &zone, Default::default(), ExportFormat::Jsonl),
            "audit",
        )
        .await?;
        let access = spool(
            self.access_export_stream(tenant, &zone, Default::default(), ExportFormat::Csv),
            "access",
        )
        .await?;
        let json = |v: serde_json::Value| serde_json::to_vec_pretty(&v).unwrap_or_default();
        parts.extend(member(
            "kura-export/metadata.json",
            json(meta.into()),
            mtime,
        ));
        parts.extend(member("kura-export/files.json", json(index.into()), mtime));
        let head = futures_util::stream::iter(parts.into_iter().map(Ok))
            .chain(spooled_member("kura-export/audit.jsonl", audit, mtime))
            .chain(spooled_member("kura-export/access.csv", access, mtime));
        let services = self.clone();
        let tenant = tenant.clone();
        let files = futures_util::stream::iter(wanted)
            .then(move |w| {
                let services = services.clone();
                let tenant = tenant.clone();
                async move {
                    let Wanted { path, v, .. } = w;
                    let header = Bytes::from(entry_header(&path, v.size as u64, mtime));
                    let body: crate::files::ByteStream =
                        match services.read_content(&tenant, &v, None).await {
                            Ok(s) => s,
                            Err(e) => Box::pin(futures_util::stream::once(async move {
                                Err(std::io::Error::other(e.to_string()))
                            })),
                        };
                    let pad = Bytes::from(padding(v.size as u64));
                    futures_util::stream::once(async move { Ok(header) })
                        .chain(body)
                        .chain(futures_util::stream::once(async move { Ok(pad) }))
                }
            })
            .flatten();
        // Two empty blocks end the archive.
        let end = futures_util::stream::once(async { Ok(Bytes::from(vec![0u8; 1024])) });
        Ok(Box::pin(head.chain(files).chain(end)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn spooled_logs_come_back_byte_for_byte_and_leave_nothing_readable() {
        // Uneven pieces across several 64 KiB chunks.
        let data: Vec<u8> = (0..300_001u32)
            .map(|i| b"kura-export-marker "[(i % 19) as usize])
            .collect();
        let pieces: Vec<std::io::Result<Bytes>> = data
            .chunks(7_777)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let sp = spool(Box::pin(futures_util::stream::iter(pieces)), "test")
            .await
            .unwrap();
        assert_eq!(sp.size, data.len() as u64);
        let path = sp.file.0.clone();
        let at_rest = std::fs::read(&path).unwrap();
        assert!(!at_rest.windows(19).any(|w| w == b"kura-export-marker "));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "only the owner may read the spool");
        }
        let mut back = Vec::new();
        let mut s = unspool(sp);
        while let Some(chunk) = s.next().await {
            back.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(back, data);
        drop(s);
        assert!(!path.exists(), "the spool file is removed");
    }
}
