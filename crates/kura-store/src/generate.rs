//! Synthetic data for `kura bench --files N --tenants M`: tenants, folders, projects, files
//! and their versions written straight into the database (rows only — no blobs), so that
//! listing and search can be measured at a million files. Every row it writes has an id
//! starting with `gen-`; it is for throw-away bench databases, never a deployment's.

use crate::{Result, Store, StoreError, TxScope};
use kura_domain::{ProjectId, TenantId};

/// Rows per transaction.
const CHUNK: u64 = 50_000;

/// Words the generated names are made of (so that searches find some and not others).
const WORDS: [&str; 8] = [
    "invoice", "report", "drawing", "minutes", "contract", "photo", "estimate", "manual",
];

/// What [`fill`] writes.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Part of every generated id (`gen-<tag>-…`), so that several plans fill one database.
    pub tag: String,
    /// The tenant whose settings the generated tenants copy, and which gets `big_files`.
    pub template: TenantId,
    /// A project of `template` that receives `big_files` files.
    pub big_project: ProjectId,
    pub big_files: u64,
    /// Further tenants (one folder and one project each) sharing `spread_files` files.
    pub tenants: u64,
    pub spread_files: u64,
    /// Files named `needle-<n>.txt` added to `big_project` (a rare search term).
    pub needles: u64,
    pub now_ms: i64,
}

/// The generated name of file `n`: `file-<n>-<word>.<ext>`.
pub fn file_name(n: u64) -> String {
    format!(
        "file-{n:07}-{}.txt",
        WORDS[(n % WORDS.len() as u64) as usize]
    )
}

/// The id of generated file `n` of a plan's big project.
pub fn big_file_id(tag: &str, n: u64) -> String {
    format!("gen-{tag}-big-{n:07}")
}

/// A `1..=hi` sequence starting at `lo`, as a recursive CTE both backends run.
fn seq(lo: u64, hi: u64) -> String {
    format!("WITH RECURSIVE seq(i) AS (SELECT {lo} UNION ALL SELECT i + 1 FROM seq WHERE i < {hi})")
}

/// The SQL for a word picked by `i` (CASE over [`WORDS`]).
fn word_of(i: &str) -> String {
    let mut s = format!("CASE ({i}) % {}", WORDS.len());
    for (k, w) in WORDS.iter().enumerate() {
        s.push_str(&format!(" WHEN {k} THEN '{w}'"));
    }
    s.push_str(" END");
    s
}

/// The SQL of a generation step for a run of `seq` (see [`seq`]).
type StepSql<'a> = dyn Fn(&str) -> String + 'a;

/// Writes the plan's rows, `CHUNK` per transaction; `progress` is told the rows written so far.
pub async fn fill(store: &Store, plan: &Plan, progress: impl Fn(u64)) -> Result<()> {
    let now = plan.now_ms;
    let t = plan.template.as_str().replace('\'', "");
    let p = plan.big_project.as_str().replace('\'', "");
    let g = format!("gen-{}", plan.tag.replace('\'', ""));
    let run = |sql: String| async move {
        let mut tx = store.system_tx().await?;
        if tx.scope() != &TxScope::System {
            return Err(StoreError::ScopeViolation);
        }
        sqlx::raw_sql(&sql).execute(tx.conn()).await?;
        tx.commit().await
    };
    // Tenants, each with one folder and one project.
    let tenants = |s: &str| {
        format!(
            "{s} INSERT INTO tenants (id, slug, name, status, settings, created_at, updated_at) \
             SELECT '{g}-t-' || i, '{g}-' || i, 'Generated ' || i, t.status, t.settings, {now}, {now} \
             FROM seq, tenants t WHERE t.id = '{t}';\n\
             {s} INSERT INTO folders (id, tenant_id, parent_id, name, created_by, created_at, updated_at) \
             SELECT '{g}-f-' || i, '{g}-t-' || i, NULL, 'Folder ' || i, NULL, {now}, {now} FROM seq;\n\
             {s} INSERT INTO projects (id, tenant_id, folder_id, name, created_by, created_at, updated_at) \
             SELECT '{g}-p-' || i, '{g}-t-' || i, '{g}-f-' || i, 'Project ' || i, NULL, {now}, {now} FROM seq;"
        )
    };
    let files = |s: &str, id: &str, tenant: &str, project: &str, name: &str| {
        format!(
            "{s} INSERT INTO files (id, tenant_id, project_id, name, current_version, created_by, created_at, updated_at) \
             SELECT {id}, {tenant}, {project}, {name}, 1, NULL, {now} - i, {now} - i FROM seq;\n\
             {s} INSERT INTO file_versions (tenant_id, file_id, version, blob_id, key_version, size, sha256, content_type, created_by, created_at) \
             SELECT {tenant}, {id}, 1, 'gen-blob-' || {id}, 1, i % 100000, '', 'text/plain', NULL, {now} - i FROM seq;"
        )
    };
    // Files spread over the generated tenants.
    let owner = format!("(i % {} + 1)", plan.tenants.max(1));
    let spread = |s: &str| {
        files(
            s,
            &format!("'{g}-s-' || i"),
            &format!("'{g}-t-' || {owner}"),
            &format!("'{g}-p-' || {owner}"),
            &format!("'doc-' || i || '-' || {} || '.pdf'", word_of("i")),
        )
    };
    // The big project's: the same names as `file_name` and ids as `big_file_id`.
    let padded = match store.backend() {
        crate::Backend::Sqlite => "printf('%07d', i)",
        crate::Backend::Postgres => "lpad(i::text, 7, '0')",
    };
    let in_big_project =
        |s: &str, id: &str, name: &str| files(s, id, &format!("'{t}'"), &format!("'{p}'"), name);
    let big = |s: &str| {
        in_big_project(
            s,
            &format!("'{g}-big-' || {padded}"),
            &format!("'file-' || {padded} || '-' || {} || '.txt'", word_of("i")),
        )
    };
    let needles = |s: &str| {
        in_big_project(
            s,
            &format!("'{g}-needle-' || i"),
            "'needle-' || i || '.txt'",
        )
    };
    let spread_files = if plan.tenants > 0 {
        plan.spread_files
    } else {
        0
    };
    // Each step: how many `i`, the rows written per `i`, and its SQL for a run of them.
    let steps: [(u64, u64, &StepSql); 4] = [
        (plan.tenants, 3, &tenants),
        (spread_files, 2, &spread),
        (plan.big_files, 2, &big),
        (plan.needles, 2, &needles),
    ];
    let mut written = 0u64;
    for (count, rows, sql) in steps {
        let mut lo = 1;
        while lo <= count {
            let hi = (lo + CHUNK - 1).min(count);
            run(sql(&seq(lo, hi))).await?;
            written += (hi - lo + 1) * rows;
            progress(written);
            lo = hi + 1;
        }
    }
    // As a deployment's database would be by the time it is read: the write-ahead log
    // checkpointed (SQLite), the planner's statistics current (PostgreSQL).
    let settle = match store.backend() {
        crate::Backend::Sqlite => "PRAGMA wal_checkpoint(TRUNCATE)",
        crate::Backend::Postgres => "ANALYZE files, file_versions",
    };
    store
        .one_statement(move |conn| Box::pin(async move { sqlx::query(settle).execute(conn).await }))
        .await?;
    Ok(())
}

/// SQLite's own ceiling for the audit batches `kura bench` times: `events` rows shaped like
/// the bench's events written into a fresh file next to `store`'s database, with the
/// `audit_events` table and indexes copied from it, the writer's pragmas
/// (`synchronous=FULL`, WAL) and the multi-row INSERT of [`crate::audit::append_many`],
/// 1,000 per transaction — but no chain head, no hashing (the hash columns get a fixed
/// value) and no store around it. Events per second; `None` without a SQLite database file
/// (PostgreSQL, in memory). The file is removed. Blocking.
pub fn audit_insert_ceiling(store: &Store, tenant: &str, events: usize) -> Result<Option<f64>> {
    use crate::writer::write_error;
    let Some(source) = store.sync_readers().map(|r| r.path().to_path_buf()) else {
        return Ok(None);
    };
    let path = source.with_file_name(format!("ceiling-{}.db", std::process::id()));
    let result = (|| {
        let mut conn = rusqlite::Connection::open(&path).map_err(write_error)?;
        conn.execute_batch("PRAGMA journal_mode = WAL;")
            .map_err(write_error)?;
        // The writer's own connection settings (`synchronous=FULL` among them).
        crate::writer::configure_writer(&conn).map_err(write_error)?;
        // The table and its indexes exactly as the store's migrations made them.
        let ddl: Vec<String> = {
            let src = rusqlite::Connection::open_with_flags(
                &source,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .map_err(write_error)?;
            let mut st = src
                .prepare("SELECT sql FROM sqlite_master WHERE tbl_name = 'audit_events' AND sql IS NOT NULL ORDER BY type DESC")
                .map_err(write_error)?;
            let rows = st.query_map([], |r| r.get(0)).map_err(write_error)?;
            rows.collect::<rusqlite::Result<_>>().map_err(write_error)?
        };
        for sql in &ddl {
            conn.execute_batch(sql).map_err(write_error)?;
        }
        let hash = "0".repeat(64);
        let watch = kura_domain::clock::Stopwatch::start();
        let mut start = 0;
        while start < events {
            let rows: Vec<usize> = (start..(start + 1_000).min(events)).collect();
            start += rows.len();
            let tx = conn.transaction().map_err(write_error)?;
            crate::writer::insert_values(
                &tx,
                crate::audit::INSERT_EVENTS,
                14,
                1_000,
                &rows,
                |b, i| {
                    b.bind(&tenant)?;
                    b.bind(&(*i as i64 + 1))?;
                    b.bind(&(1_733_600_000_000 + *i as i64))?;
                    b.bind(&"system")?;
                    b.bind(&None::<&str>)?;
                    b.bind(&"bench.event")?;
                    b.bind(&None::<&str>)?;
                    b.bind(&i.to_string())?;
                    b.bind(&"success")?;
                    b.bind(&None::<&str>)?;
                    b.bind(&None::<&str>)?;
                    b.bind(&format!("{{\"i\":{i}}}"))?;
                    b.bind(&hash.as_str())?;
                    b.bind(&hash.as_str())
                },
            )?;
            tx.commit().map_err(write_error)?;
        }
        Ok(Some(events as f64 / watch.elapsed().as_secs_f64()))
    })();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    result
}
