//! The tenant's hash-chained audit log (LOG-2, LOG-5). Appends happen inside the transaction
//! of the change they record; the chain head row (`audit_heads`, locked `FOR UPDATE` on
//! PostgreSQL, behind the single writer on SQLite) is the serialisation point.

use crate::{Result, StoreError, Tx};
use kura_crypto::chain::{self, AuditRecord, ChainError, GENESIS_HASH};
use kura_domain::{TenantId, Timestamp};
use sqlx::any::AnyRow;
use sqlx::Row;

/// An event to append. The store fills in tenant, sequence number and hashes.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub at: Timestamp,
    pub actor_kind: &'static str,
    pub actor_id: Option<String>,
    pub action: String,
    pub target_kind: Option<&'static str>,
    pub target_id: Option<String>,
    pub result: &'static str,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    pub details: serde_json::Value,
}

impl NewEvent {
    /// An event of the system itself (no actor, no request) about `target_id`.
    pub fn system(
        at: Timestamp,
        action: &str,
        target_id: String,
        details: serde_json::Value,
    ) -> NewEvent {
        NewEvent {
            at,
            actor_kind: "system",
            actor_id: None,
            action: action.into(),
            target_kind: None,
            target_id: Some(target_id),
            result: "success",
            ip: None,
            request_id: None,
            details,
        }
    }
}

/// A stored event with its hash.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub record: AuditRecord,
    pub hash: String,
}

/// Appends one event to `tenant`'s chain; returns its sequence number.
pub async fn append(tx: &mut Tx, tenant: &TenantId, ev: NewEvent) -> Result<i64> {
    tx.check(tenant)?;
    // One statement: the head is created on first use, and (PostgreSQL) locked until the
    // transaction ends, as `SELECT … FOR UPDATE` would.
    let head = sqlx::query(
        "INSERT INTO audit_heads (tenant_id, seq, hash) VALUES ($1, 0, $2) ON CONFLICT (tenant_id) DO UPDATE SET seq = audit_heads.seq RETURNING seq, hash",
    )
    .bind(tenant.as_str())
    .bind(GENESIS_HASH)
    .fetch_one(tx.conn())
    .await?;
    let prev_seq: i64 = head.try_get("seq")?;
    let prev_hash: String = head.try_get("hash")?;
    let record = AuditRecord {
        tenant_id: tenant.as_str().to_string(),
        seq: prev_seq + 1,
        at: ev.at.0,
        actor_kind: ev.actor_kind.to_string(),
        actor_id: ev.actor_id,
        action: ev.action,
        target_kind: ev.target_kind.map(str::to_string),
        target_id: ev.target_id,
        result: ev.result.to_string(),
        ip: ev.ip,
        request_id: ev.request_id,
        details: ev.details,
        prev_hash,
    };
    let hash = record.compute_hash();
    sqlx::query(
        "INSERT INTO audit_events (tenant_id, seq, at, actor_kind, actor_id, action, target_kind, target_id, result, ip, request_id, details, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(&record.tenant_id)
    .bind(record.seq)
    .bind(record.at)
    .bind(&record.actor_kind)
    .bind(record.actor_id.clone())
    .bind(&record.action)
    .bind(record.target_kind.clone())
    .bind(record.target_id.clone())
    .bind(&record.result)
    .bind(record.ip.clone())
    .bind(record.request_id.clone())
    .bind(record.details.to_string())
    .bind(&record.prev_hash)
    .bind(&hash)
    .execute(tx.conn())
    .await?;
    sqlx::query("UPDATE audit_heads SET seq = $1, hash = $2 WHERE tenant_id = $3")
        .bind(record.seq)
        .bind(&hash)
        .bind(tenant.as_str())
        .execute(tx.conn())
        .await?;
    Ok(record.seq)
}

/// Rows per INSERT in [`append_batch`] (PostgreSQL: one JSON array parameter).
const BATCH_ROWS: usize = 1000;

/// Rows per INSERT in [`append_batch`] on SQLite: 14 parameters each, within SQLite's
/// 32,766.
const SQLITE_BATCH_ROWS: usize = 1000;

pub(crate) const INSERT_EVENTS: &str = "INSERT INTO audit_events (tenant_id, seq, at, actor_kind, actor_id, action, target_kind, target_id, result, ip, request_id, details, prev_hash, hash)";

/// Appends many events to `tenant`'s chain in the caller's transaction: the head is
/// locked and moved once, hashes are chained in memory, rows go in multi-row INSERTs.
/// Returns the last sequence number.
pub async fn append_batch(tx: &mut Tx, tenant: &TenantId, events: Vec<NewEvent>) -> Result<i64> {
    tx.check(tenant)?;
    sqlx::query("INSERT INTO audit_heads (tenant_id, seq, hash) VALUES ($1, 0, $2) ON CONFLICT (tenant_id) DO NOTHING")
        .bind(tenant.as_str())
        .bind(GENESIS_HASH)
        .execute(tx.conn())
        .await?;
    let sql = format!(
        "SELECT seq, hash FROM audit_heads WHERE tenant_id = $1{}",
        tx.for_update()
    );
    let head = sqlx::query(&sql)
        .bind(tenant.as_str())
        .fetch_one(tx.conn())
        .await?;
    let rows = chain_on(tenant, head.try_get("seq")?, head.try_get("hash")?, events);
    let (seq, prev) = match rows.last() {
        Some((r, h)) => (r.seq, h.clone()),
        None => (head.try_get("seq")?, head.try_get("hash")?),
    };
    match tx.backend() {
        // SQLite: multi-row VALUES with anonymous `?` placeholders (SQLite looks a numbered
        // `$n` up by a linear scan, which is quadratic over a statement this size; a JSON
        // array unpacked with json_extract parses every row's text 14 times).
        crate::Backend::Sqlite => {
            for chunk in rows.chunks(SQLITE_BATCH_ROWS) {
                let sql = crate::sqlite_values(INSERT_EVENTS, chunk.len(), 14);
                let mut q = sqlx::query(&sql);
                for (r, h) in chunk {
                    q = q
                        .bind(r.tenant_id.as_str())
                        .bind(r.seq)
                        .bind(r.at)
                        .bind(r.actor_kind.as_str())
                        .bind(r.actor_id.as_deref())
                        .bind(r.action.as_str())
                        .bind(r.target_kind.as_deref())
                        .bind(r.target_id.as_deref())
                        .bind(r.result.as_str())
                        .bind(r.ip.as_deref())
                        .bind(r.request_id.as_deref())
                        .bind(r.details.to_string())
                        .bind(r.prev_hash.as_str())
                        .bind(h.as_str());
                }
                q.execute(tx.conn()).await?;
            }
        }
        // PostgreSQL: the rows travel as one JSON array per statement (one parameter
        // instead of 14 per row) and are unpacked by the database.
        crate::Backend::Postgres => {
            let sql = format!(
                "{INSERT_EVENTS} SELECT r->>0, (r->>1)::bigint, (r->>2)::bigint, r->>3, r->>4, r->>5, r->>6, r->>7, r->>8, r->>9, r->>10, r->>11, r->>12, r->>13 \
                 FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS a(r, n) ORDER BY n"
            );
            for chunk in rows.chunks(BATCH_ROWS) {
                let payload: Vec<serde_json::Value> = chunk
                    .iter()
                    .map(|(r, h)| {
                        serde_json::json!([
                            r.tenant_id,
                            r.seq,
                            r.at,
                            r.actor_kind,
                            r.actor_id,
                            r.action,
                            r.target_kind,
                            r.target_id,
                            r.result,
                            r.ip,
                            r.request_id,
                            r.details.to_string(),
                            r.prev_hash,
                            h
                        ])
                    })
                    .collect();
                sqlx::query(&sql)
                    .bind(serde_json::Value::Array(payload).to_string())
                    .execute(tx.conn())
                    .await?;
            }
        }
    }
    sqlx::query("UPDATE audit_heads SET seq = $1, hash = $2 WHERE tenant_id = $3")
        .bind(seq)
        .bind(&prev)
        .bind(tenant.as_str())
        .execute(tx.conn())
        .await?;
    Ok(seq)
}

/// `events` as records chained on the head (`seq`, `hash`), each with its hash.
fn chain_on(
    tenant: &TenantId,
    mut seq: i64,
    mut prev: String,
    events: Vec<NewEvent>,
) -> Vec<(AuditRecord, String)> {
    let mut rows: Vec<(AuditRecord, String)> = Vec::with_capacity(events.len());
    for ev in events {
        seq += 1;
        let record = AuditRecord {
            tenant_id: tenant.as_str().to_string(),
            seq,
            at: ev.at.0,
            actor_kind: ev.actor_kind.to_string(),
            actor_id: ev.actor_id,
            action: ev.action,
            target_kind: ev.target_kind.map(str::to_string),
            target_id: ev.target_id,
            result: ev.result.to_string(),
            ip: ev.ip,
            request_id: ev.request_id,
            details: ev.details,
            prev_hash: prev,
        };
        let hash = record.compute_hash();
        prev = hash.clone();
        rows.push((record, hash));
    }
    rows
}

/// Appends many events to `tenant`'s chain in a transaction of their own (an import, a
/// bulk change); returns the last sequence number. On a SQLite database file it runs in
/// place on the writer ([`crate::Store::in_place_write`]: the head read and moved once,
/// hashes chained in memory, rows bound straight into SQLite's multi-row INSERTs);
/// elsewhere it is [`append_batch`] in a tenant transaction.
pub async fn append_many(
    store: &crate::Store,
    tenant: &TenantId,
    events: Vec<NewEvent>,
) -> Result<i64> {
    if !store.can_write_in_place() {
        let mut tx = store.tenant_tx(tenant).await?;
        let seq = append_batch(&mut tx, tenant, events).await?;
        tx.commit().await?;
        return Ok(seq);
    }
    let tenant = tenant.clone();
    store
        .in_place_write(move |tx| append_in_place(tx, &tenant, events))
        .await
}

/// Appends `events` to `tenant`'s chain inside a plain SQLite write transaction (the head
/// read and moved once, hashes chained in memory, rows bound straight into multi-row
/// INSERTs); returns the last sequence number (the head's when `events` is empty).
pub(crate) fn append_in_place(
    tx: &rusqlite::Transaction<'_>,
    tenant: &TenantId,
    events: Vec<NewEvent>,
) -> Result<i64> {
    use crate::writer::write_error;
    tx.execute(
        "INSERT INTO audit_heads (tenant_id, seq, hash) VALUES (?1, 0, ?2) ON CONFLICT (tenant_id) DO NOTHING",
        (tenant.as_str(), GENESIS_HASH),
    )
    .map_err(write_error)?;
    let (seq, hash): (i64, String) = tx
        .query_row(
            "SELECT seq, hash FROM audit_heads WHERE tenant_id = ?1",
            [tenant.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(write_error)?;
    let rows = chain_on(tenant, seq, hash, events);
    let Some((last, last_hash)) = rows.last().map(|(r, h)| (r.seq, h.clone())) else {
        return Ok(seq);
    };
    // Each row's details are written into one kept buffer (SQLite copies a bound text).
    let details = std::cell::RefCell::new(String::new());
    crate::writer::insert_values(
        tx,
        INSERT_EVENTS,
        14,
        SQLITE_BATCH_ROWS,
        &rows,
        |b, (r, h)| {
            b.bind(&r.tenant_id.as_str())?;
            b.bind(&r.seq)?;
            b.bind(&r.at)?;
            b.bind(&r.actor_kind.as_str())?;
            b.bind(&r.actor_id.as_deref())?;
            b.bind(&r.action.as_str())?;
            b.bind(&r.target_kind.as_deref())?;
            b.bind(&r.target_id.as_deref())?;
            b.bind(&r.result.as_str())?;
            b.bind(&r.ip.as_deref())?;
            b.bind(&r.request_id.as_deref())?;
            {
                use std::fmt::Write;
                let mut d = details.borrow_mut();
                d.clear();
                // The same text as `to_string()`; writing to a String cannot fail.
                let _ = write!(d, "{}", r.details);
                b.bind(&d.as_str())?;
            }
            b.bind(&r.prev_hash.as_str())?;
            b.bind(&h.as_str())
        },
    )?;
    tx.execute(
        "UPDATE audit_heads SET seq = ?1, hash = ?2 WHERE tenant_id = ?3",
        (last, last_hash.as_str(), tenant.as_str()),
    )
    .map_err(write_error)?;
    Ok(last)
}

const COLS: &str = "tenant_id, seq, at, actor_kind, actor_id, action, target_kind, target_id, result, ip, request_id, details, prev_hash, hash";

fn from_row(r: &AnyRow) -> Result<StoredEvent> {
    let details: String = r.try_get("details")?;
    Ok(StoredEvent {
        record: AuditRecord {
            tenant_id: r.try_get("tenant_id")?,
            seq: r.try_get("seq")?,
            at: r.try_get("at")?,
            actor_kind: r.try_get("actor_kind")?,
            actor_id: r.try_get("actor_id")?,
            action: r.try_get("action")?,
            target_kind: r.try_get("target_kind")?,
            target_id: r.try_get("target_id")?,
            result: r.try_get("result")?,
            ip: r.try_get("ip")?,
            request_id: r.try_get("request_id")?,
            // An unparsable details column is kept as a string so verification reports the
            // altered entry instead of failing to read it.
            details: serde_json::from_str(&details).unwrap_or(serde_json::Value::String(details)),
            prev_hash: r.try_get("prev_hash")?,
        },
        hash: r.try_get("hash")?,
    })
}

/// Events with `seq < before` (or the newest when `before` is None), newest first.
pub async fn list(
    tx: &mut Tx,
    tenant: &TenantId,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<StoredEvent>> {
    tx.check(tenant)?;
    let sql = format!(
        "SELECT {COLS} FROM audit_events WHERE tenant_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"
    );
    let rows = sqlx::query(&sql)
        .bind(tenant.as_str())
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit.clamp(1, 1000))
        .fetch_all(tx.conn())
        .await?;
    rows.iter().map(from_row).collect()
}

/// The result of verifying a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub tenant_id: String,
    pub events: i64,
    /// The chain is verified from here (0 unless older entries were purged).
    pub base_seq: i64,
    pub head_seq: i64,
    pub head_hash: String,
}

/// Verifies `tenant`'s whole chain in the database: every hash, every link, no gap, the
/// head row agrees with the last entry (so a removed tail is caught too), and the entry at
/// each anchor's seq has the anchor's hash (`anchors`: (seq, hash) of signed checkpoints the
/// caller has already checked; those before the stored base are skipped).
pub async fn verify(
    tx: &mut Tx,
    tenant: &TenantId,
    anchors: &[(i64, String)],
) -> Result<std::result::Result<VerifyReport, ChainError>> {
    tx.check(tenant)?;
    // After a purge the stored chain starts at the base (a signed `purge` checkpoint, which
    // the services check against the deployment key).
    let h = head(tx, tenant).await?;
    Ok(walk(tx, tenant, &h, h.base_seq, &h.base_hash, anchors)
        .await?
        .map(|count| VerifyReport {
            tenant_id: tenant.as_str().to_string(),
            events: count,
            base_seq: h.base_seq,
            head_seq: h.seq,
            head_hash: h.hash.clone(),
        }))
}

/// Every entry after `from_seq` (whose hash must be `from_hash`) up to the head verifies,
/// and the head row agrees with the last one: the part of the chain a new checkpoint would
/// vouch for. Returns the (seq, hash) reached.
pub async fn verify_since(
    tx: &mut Tx,
    tenant: &TenantId,
    from_seq: i64,
    from_hash: &str,
) -> Result<std::result::Result<(i64, String), ChainError>> {
    tx.check(tenant)?;
    let h = head(tx, tenant).await?;
    if h.seq < from_seq {
        return Ok(Err(ChainError::BehindCheckpoint {
            head_seq: h.seq,
            checkpoint_seq: from_seq,
        }));
    }
    Ok(walk(tx, tenant, &h, from_seq, from_hash, &[])
        .await?
        .map(|_| (h.seq, h.hash.clone())))
}

/// Walks the stored entries after (`from_seq`, `from_hash`) to the end, checking hashes,
/// links, the anchors and that `head` names the last entry. Returns the entries walked.
async fn walk(
    tx: &mut Tx,
    tenant: &TenantId,
    head: &Head,
    from_seq: i64,
    from_hash: &str,
    anchors: &[(i64, String)],
) -> Result<std::result::Result<i64, ChainError>> {
    let mut anchors: Vec<&(i64, String)> = anchors.iter().collect();
    anchors.sort_by_key(|a| a.0);
    let mut next_anchor = 0usize;
    let sql = format!(
        "SELECT {COLS} FROM audit_events WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT 5000"
    );
    let mut last_seq = from_seq;
    let mut last_hash = from_hash.to_string();
    let mut count = 0_i64;
    loop {
        let rows = sqlx::query(&sql)
            .bind(tenant.as_str())
            .bind(last_seq)
            .fetch_all(tx.conn())
            .await?;
        if rows.is_empty() {
            break;
        }
        let events: Vec<(AuditRecord, String)> = rows
            .iter()
            .map(|r| from_row(r).map(|e| (e.record, e.hash)))
            .collect::<Result<_>>()?;
        count += events.len() as i64;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let first_seq = last_seq + 1;
        match chain::verify_parallel(&events, last_seq, &last_hash, threads) {
            Ok((s, h)) => {
                last_seq = s;
                last_hash = h;
            }
            Err(e) => return Ok(Err(e)),
        }
        // The batch is contiguous from `first_seq`: the entry at seq n is events[n - first].
        while let Some((seq, hash)) = anchors.get(next_anchor).copied() {
            if *seq > last_seq {
                break;
            }
            next_anchor += 1;
            if *seq < first_seq {
                // At or before the starting point: vouched for by that point's own
                // checkpoint; at it, the hashes must agree.
                if *seq == from_seq && *hash != from_hash {
                    return Ok(Err(ChainError::Checkpoint { seq: *seq }));
                }
                continue;
            }
            let idx = (*seq - first_seq) as usize;
            if events.get(idx).is_none_or(|(_, h)| h != hash) {
                return Ok(Err(ChainError::Checkpoint { seq: *seq }));
            }
        }
    }
    // Anchors beyond the last entry: the chain was cut after they were signed.
    if let Some((seq, _)) = anchors.last() {
        if *seq > last_seq {
            return Ok(Err(ChainError::BehindCheckpoint {
                head_seq: last_seq,
                checkpoint_seq: *seq,
            }));
        }
    }
    if head.seq != last_seq || head.hash != last_hash {
        return Ok(Err(ChainError::Head {
            head_seq: head.seq,
            head_hash: head.hash.clone(),
            last_seq,
        }));
    }
    Ok(Ok(count))
}

/// Tenants that have a chain (operator `audit verify` over all of them).
pub async fn chain_tenants(tx: &mut Tx) -> Result<Vec<TenantId>> {
    if tx.scope() != &crate::TxScope::System {
        return Err(StoreError::ScopeViolation);
    }
    let rows = sqlx::query("SELECT tenant_id FROM audit_heads ORDER BY tenant_id")
        .fetch_all(tx.conn())
        .await?;
    rows.iter()
        .map(|r| Ok(TenantId::from_string(r.try_get::<String, _>("tenant_id")?)))
        .collect()
}

/// A chain's head and where its stored part starts (after purges).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub seq: i64,
    pub hash: String,
    pub base_seq: i64,
    pub base_hash: String,
}

pub async fn head(tx: &mut Tx, tenant: &TenantId) -> Result<Head> {
    tx.check(tenant)?;
    let row =
        sqlx::query("SELECT seq, hash, base_seq, base_hash FROM audit_heads WHERE tenant_id = $1")
            .bind(tenant.as_str())
            .fetch_optional(tx.conn())
            .await?;
    Ok(match row {
        Some(r) => Head {
            seq: r.try_get("seq")?,
            hash: r.try_get("hash")?,
            base_seq: r.try_get("base_seq")?,
            base_hash: r.try_get("base_hash")?,
        },
        None => Head {
            seq: 0,
            hash: GENESIS_HASH.into(),
            base_seq: 0,
            base_hash: GENESIS_HASH.into(),
        },
    })
}

/// A signed statement that a tenant's chain had `hash` at `seq` (LOG-5). A signed document
/// as much as a row: exports and mails carry it in this form and verifiers read it back, so
/// it serializes (the API sends its own wire type).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    pub tenant_id: String,
    pub seq: i64,
    pub hash: String,
    pub at: i64,
    /// `interval` (scheduled), `purge` (the last entry a purge removed: where the stored
    /// chain now starts).
    pub kind: String,
    pub key_id: String,
    pub signature: String,
}

const CP_COLS: &str = "tenant_id, seq, hash, at, kind, key_id, signature";

fn cp_from_row(r: &AnyRow) -> Result<Checkpoint> {
    Ok(Checkpoint {
        tenant_id: r.try_get("tenant_id")?,
        seq: r.try_get("seq")?,
        hash: r.try_get("hash")?,
        at: r.try_get("at")?,
        kind: r.try_get("kind")?,
        key_id: r.try_get("key_id")?,
        signature: r.try_get("signature")?,
    })
}

/// Stores a checkpoint; false if one of this kind exists at this seq.
pub async fn insert_checkpoint(tx: &mut Tx, c: &Checkpoint) -> Result<bool> {
    tx.check(&TenantId::from_string(c.tenant_id.clone()))?;
    Ok(sqlx::query(&format!(
        "INSERT INTO audit_checkpoints ({CP_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id, seq, kind) DO NOTHING"
    ))
    .bind(&c.tenant_id)
    .bind(c.seq)
    .bind(&c.hash)
    .bind(c.at)
    .bind(&c.kind)
    .bind(&c.key_id)
    .bind(&c.signature)
    .execute(tx.conn())
    .await?
    .rows_affected()
        == 1)
}

/// The newest checkpoint of `kind` (any kind when `None`).
pub async fn latest_checkpoint(
    tx: &mut Tx,
    tenant: &TenantId,
    kind: Option<&str>,
) -> Result<Option<Checkpoint>> {
    tx.check(tenant)?;
    let row = sqlx::query(&format!(
        "SELECT {CP_COLS} FROM audit_checkpoints WHERE tenant_id = $1 AND ($2 = '' OR kind = $2) ORDER BY seq DESC, kind LIMIT 1"
    ))
    .bind(tenant.as_str())
    .bind(kind.unwrap_or(""))
    .fetch_optional(tx.conn())
    .await?;
    row.as_ref().map(cp_from_row).transpose()
}

/// The seq of the newest checkpoint mailed to the tenant's contract admins (0: none yet).
pub async fn published_seq(tx: &mut Tx, tenant: &TenantId) -> Result<i64> {
    tx.check(tenant)?;
    let v: Option<i64> =
        sqlx::query_scalar("SELECT published_seq FROM audit_heads WHERE tenant_id = $1")
            .bind(tenant.as_str())
            .fetch_optional(tx.conn())
            .await?;
    Ok(v.unwrap_or(0))
}

/// Records that the checkpoint at `seq` was mailed.
pub async fn set_published_seq(tx: &mut Tx, tenant: &TenantId, seq: i64) -> Result<()> {
    tx.check(tenant)?;
    sqlx::query("UPDATE audit_heads SET published_seq = $1 WHERE tenant_id = $2")
        .bind(seq)
        .bind(tenant.as_str())
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Checkpoints with `from <= seq <= to`, oldest first.
pub async fn checkpoints_between(
    tx: &mut Tx,
    tenant: &TenantId,
    from: i64,
    to: i64,
) -> Result<Vec<Checkpoint>> {
    tx.check(tenant)?;
    let rows = sqlx::query(&format!(
        "SELECT {CP_COLS} FROM audit_checkpoints WHERE tenant_id = $1 AND seq >= $2 AND seq <= $3 ORDER BY seq, kind"
    ))
    .bind(tenant.as_str())
    .bind(from)
    .bind(to)
    .fetch_all(tx.conn())
    .await?;
    rows.iter().map(cp_from_row).collect()
}

/// What to show of a tenant's audit log.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// From this time (ms, inclusive).
    pub from: Option<i64>,
    /// Before this time (ms, exclusive).
    pub to: Option<i64>,
    /// The acting user.
    pub actor: Option<String>,
    /// An action, or a prefix ending in `.` (`file.` for every file action).
    pub action: Option<String>,
    pub ip: Option<String>,
    /// `success`, `failure` or `denied`.
    pub result: Option<String>,
}

impl Filter {
    /// Only a time range (or nothing): the export is a contiguous piece of the chain.
    pub fn is_contiguous(&self) -> bool {
        self.actor.is_none() && self.action.is_none() && self.ip.is_none() && self.result.is_none()
    }
}

/// Events matching `f`, by seq: newest first with `before` (listing), or oldest first
/// with `after` (export). Keyset pagination on seq.
pub async fn query(
    tx: &mut Tx,
    tenant: &TenantId,
    f: &Filter,
    cursor: Cursor,
    limit: i64,
) -> Result<Vec<StoredEvent>> {
    tx.check(tenant)?;
    let (cmp, order, bound) = match cursor {
        Cursor::Before(s) => ("<", "DESC", s.unwrap_or(i64::MAX)),
        Cursor::After(s) => (">", "ASC", s),
    };
    let action_like = f.action.as_ref().map(|a| {
        if a.ends_with('.') {
            format!("{}%", a.replace('%', "").replace('_', "\\_"))
        } else {
            a.clone()
        }
    });
    let sql = format!(
        "SELECT {COLS} FROM audit_events WHERE tenant_id = $1 AND seq {cmp} $2 \
         AND at >= $3 AND at < $4 \
         AND ($5 = '' OR actor_id = $5) \
         AND ($6 = '' OR action LIKE $6 ESCAPE '\\') \
         AND ($7 = '' OR ip = $7) \
         AND ($8 = '' OR result = $8) \
         ORDER BY seq {order} LIMIT $9"
    );
    let rows = sqlx::query(&sql)
        .bind(tenant.as_str())
        .bind(bound)
        .bind(f.from.unwrap_or(i64::MIN))
        .bind(f.to.unwrap_or(i64::MAX))
        .bind(f.actor.clone().unwrap_or_default())
        .bind(action_like.unwrap_or_default())
        .bind(f.ip.clone().unwrap_or_default())
        .bind(f.result.clone().unwrap_or_default())
        .bind(limit.clamp(1, 5000))
        .fetch_all(tx.conn())
        .await?;
    rows.iter().map(from_row).collect()
}

/// A keyset position in a listing.
#[derive(Debug, Clone, Copy)]
pub enum Cursor {
    /// Newest first, below this seq (or from the newest).
    Before(Option<i64>),
    /// Oldest first, above this seq.
    After(i64),
}

/// Removes events older than `cutoff` (ms) after recording the last removed one as a
/// signed `purge` checkpoint (made by `sign`); the stored chain then starts there. Returns
/// the number removed. Runs in the caller's transaction.
pub async fn purge_before(
    tx: &mut Tx,
    tenant: &TenantId,
    cutoff: i64,
    sign: impl Fn(&str, i64, &str) -> Checkpoint,
) -> Result<i64> {
    tx.check(tenant)?;
    let last = sqlx::query(
        "SELECT seq, hash FROM audit_events WHERE tenant_id = $1 AND at < $2 ORDER BY seq DESC LIMIT 1",
    )
    .bind(tenant.as_str())
    .bind(cutoff)
    .fetch_optional(tx.conn())
    .await?;
    let Some(last) = last else {
        return Ok(0);
    };
    let seq: i64 = last.try_get("seq")?;
    let hash: String = last.try_get("hash")?;
    // Keep the head row locked while the base moves.
    let sql = format!(
        "SELECT seq FROM audit_heads WHERE tenant_id = $1{}",
        tx.for_update()
    );
    sqlx::query(&sql)
        .bind(tenant.as_str())
        .fetch_optional(tx.conn())
        .await?;
    insert_checkpoint(tx, &sign(tenant.as_str(), seq, &hash)).await?;
    let removed = sqlx::query("DELETE FROM audit_events WHERE tenant_id = $1 AND seq <= $2")
        .bind(tenant.as_str())
        .bind(seq)
        .execute(tx.conn())
        .await?
        .rows_affected() as i64;
    sqlx::query("UPDATE audit_heads SET base_seq = $1, base_hash = $2 WHERE tenant_id = $3")
        .bind(seq)
        .bind(&hash)
        .bind(tenant.as_str())
        .execute(tx.conn())
        .await?;
    Ok(removed)
}
