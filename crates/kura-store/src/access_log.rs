//! The access log (LOG-1): one row per HTTP request, not chained, written in batches.

use crate::{Result, StoreError, Tx, TxScope};
use kura_domain::{TenantId, Timestamp, UserId};
use sqlx::Row;

#[derive(Debug, Clone)]
pub struct AccessEntry {
    /// Row id (keyset paging); 0 before it is stored.
    pub id: i64,
    pub tenant_id: Option<TenantId>,
    pub user_id: Option<UserId>,
    pub at: Timestamp,
    pub ip: Option<String>,
    pub method: String,
    pub path: String,
    pub status: i64,
    pub latency_us: i64,
    pub bytes: i64,
    pub request_id: Option<String>,
}

/// Rows per INSERT statement on SQLite. Its placeholders are anonymous (`?`): SQLite finds
/// a numbered parameter's name by a linear scan, so binding a many-row VALUES list of `$n`
/// takes quadratic time — with `?` it is linear, and the statement (one per chunk size) is
/// prepared once and cached.
const ROWS_PER_STATEMENT: usize = 100;

const INSERT: &str = "INSERT INTO access_log (tenant_id, user_id, at, ip, method, path, status, latency_us, bytes, request_id)";

/// Writes a batch of entries (system scope: one batch spans tenants). SQLite: multi-row
/// INSERTs with anonymous placeholders; PostgreSQL: one JSON array per statement, unpacked
/// by the database (one round trip for the batch).
pub async fn insert_batch(tx: &mut Tx, entries: &[AccessEntry]) -> Result<()> {
    if tx.scope() != &TxScope::System {
        return Err(StoreError::ScopeViolation);
    }
    match tx.backend() {
        crate::Backend::Sqlite => {
            for chunk in entries.chunks(ROWS_PER_STATEMENT) {
                let sql = crate::sqlite_values(INSERT, chunk.len(), 10);
                let mut q = sqlx::query(&sql);
                for e in chunk {
                    q = q
                        .bind(e.tenant_id.as_ref().map(|t| t.as_str()))
                        .bind(e.user_id.as_ref().map(|u| u.as_str()))
                        .bind(e.at.0)
                        .bind(e.ip.as_deref())
                        .bind(e.method.as_str())
                        .bind(e.path.as_str())
                        .bind(e.status)
                        .bind(e.latency_us)
                        .bind(e.bytes)
                        .bind(e.request_id.as_deref());
                }
                q.execute(tx.conn()).await?;
            }
        }
        crate::Backend::Postgres => {
            let sql = format!(
                "{INSERT} SELECT r->>0, r->>1, (r->>2)::bigint, r->>3, r->>4, r->>5, (r->>6)::bigint, \
                 (r->>7)::bigint, (r->>8)::bigint, r->>9 \
                 FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS a(r, n) ORDER BY n"
            );
            for chunk in entries.chunks(1000) {
                // Each row a JSON array written straight from borrowed fields (tuples
                // serialise as arrays): no JSON value tree per entry.
                let rows: Vec<_> = chunk
                    .iter()
                    .map(|e| {
                        (
                            e.tenant_id.as_ref().map(|t| t.as_str()),
                            e.user_id.as_ref().map(|u| u.as_str()),
                            e.at.0,
                            e.ip.as_deref(),
                            e.method.as_str(),
                            e.path.as_str(),
                            e.status,
                            e.latency_us,
                            e.bytes,
                            e.request_id.as_deref(),
                        )
                    })
                    .collect();
                let payload = serde_json::to_string(&rows)
                    .map_err(|e| StoreError::Corrupt(format!("access log batch: {e}")))?;
                sqlx::query(&sql).bind(payload).execute(tx.conn()).await?;
            }
        }
    }
    Ok(())
}

/// Writes a batch of entries in one transaction of its own. On a SQLite database file the
/// rows go in place on the writer ([`crate::Store::in_place_write`]: no message to sqlx's
/// connection thread per statement, no copy of every value bound); elsewhere (PostgreSQL,
/// an in-memory SQLite) through [`insert_batch`].
pub async fn write_batch(
    store: &crate::Store,
    entries: std::sync::Arc<[AccessEntry]>,
) -> Result<()> {
    if store.can_write_in_place() {
        return store
            .in_place_write(move |tx| {
                crate::writer::insert_values(
                    tx,
                    INSERT,
                    10,
                    ROWS_PER_STATEMENT,
                    &entries,
                    |b, e| {
                        b.bind(&e.tenant_id.as_ref().map(|t| t.as_str()))?;
                        b.bind(&e.user_id.as_ref().map(|u| u.as_str()))?;
                        b.bind(&e.at.0)?;
                        b.bind(&e.ip.as_deref())?;
                        b.bind(&e.method.as_str())?;
                        b.bind(&e.path.as_str())?;
                        b.bind(&e.status)?;
                        b.bind(&e.latency_us)?;
                        b.bind(&e.bytes)?;
                        b.bind(&e.request_id.as_deref())
                    },
                )
            })
            .await;
    }
    let mut tx = store.system_tx().await?;
    insert_batch(&mut tx, &entries).await?;
    tx.commit().await
}

/// A tenant's newest entries first.
pub async fn list(tx: &mut Tx, tenant: &TenantId, limit: i64) -> Result<Vec<AccessEntry>> {
    query(tx, tenant, &Filter::default(), Cursor::Before(None), limit).await
}

/// What to show of a tenant's access log.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub user: Option<String>,
    pub ip: Option<String>,
    /// `2xx`, `4xx`, `5xx`… or an exact status.
    pub status: Option<String>,
    /// A path prefix.
    pub path: Option<String>,
}

/// A keyset position: newest first below an id, or oldest first above one.
#[derive(Debug, Clone, Copy)]
pub enum Cursor {
    Before(Option<i64>),
    After(i64),
}

/// Entries matching `f`, keyset-paged on the row id.
pub async fn query(
    tx: &mut Tx,
    tenant: &TenantId,
    f: &Filter,
    cursor: Cursor,
    limit: i64,
) -> Result<Vec<AccessEntry>> {
    tx.check(tenant)?;
    let (cmp, order, bound) = match cursor {
        Cursor::Before(b) => ("<", "DESC", b.unwrap_or(i64::MAX)),
        Cursor::After(a) => (">", "ASC", a),
    };
    let (lo, hi) = match f.status.as_deref().map(str::trim) {
        Some(s) if s.len() == 3 && s.ends_with("xx") => {
            let d = s[..1].parse::<i64>().unwrap_or(0) * 100;
            (d, d + 99)
        }
        Some(s) if !s.is_empty() => {
            let n = s.parse::<i64>().unwrap_or(-1);
            (n, n)
        }
        _ => (0, 999),
    };
    let path_like = f
        .path
        .as_ref()
        .map(|p| format!("{}%", p.replace('%', "").replace('_', "\\_")))
        .unwrap_or_default();
    let sql = format!(
        "SELECT id, tenant_id, user_id, at, ip, method, path, status, latency_us, bytes, request_id FROM access_log \
         WHERE tenant_id = $1 AND id {cmp} $2 AND at >= $3 AND at < $4 \
         AND ($5 = '' OR user_id = $5) AND ($6 = '' OR ip = $6) AND status >= $7 AND status <= $8 \
         AND ($9 = '' OR path LIKE $9 ESCAPE '\\') ORDER BY id {order} LIMIT $10"
    );
    let rows = sqlx::query(&sql)
        .bind(tenant.as_str())
        .bind(bound)
        .bind(f.from.unwrap_or(i64::MIN))
        .bind(f.to.unwrap_or(i64::MAX))
        .bind(f.user.clone().unwrap_or_default())
        .bind(f.ip.clone().unwrap_or_default())
        .bind(lo)
        .bind(hi)
        .bind(path_like)
        .bind(limit.clamp(1, 5000))
        .fetch_all(tx.conn())
        .await?;
    rows.iter()
        .map(|r| {
            Ok(AccessEntry {
                id: r.try_get("id")?,
                tenant_id: r
                    .try_get::<Option<String>, _>("tenant_id")?
                    .map(TenantId::from_string),
                user_id: r
                    .try_get::<Option<String>, _>("user_id")?
                    .map(UserId::from_string),
                at: Timestamp(r.try_get("at")?),
                ip: r.try_get("ip")?,
                method: r.try_get("method")?,
                path: r.try_get("path")?,
                status: r.try_get("status")?,
                latency_us: r.try_get("latency_us")?,
                bytes: r.try_get("bytes")?,
                request_id: r.try_get("request_id")?,
            })
        })
        .collect()
}

/// Removes a tenant's entries older than `cutoff` (ms) (LOG-4); returns how many.
pub async fn purge_before(tx: &mut Tx, tenant: &TenantId, cutoff: i64) -> Result<i64> {
    tx.check(tenant)?;
    Ok(
        sqlx::query("DELETE FROM access_log WHERE tenant_id = $1 AND at < $2")
            .bind(tenant.as_str())
            .bind(cutoff)
            .execute(tx.conn())
            .await?
            .rows_affected() as i64,
    )
}
