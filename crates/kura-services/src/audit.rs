//! Reading and verifying the audit log, and the access log (LOG-1, LOG-2, LOG-5).

use crate::auth::AuthContext;
use crate::{Actor, Event, RequestCtx, Result, ServiceError, Services};
use kura_crypto::ChainError;
use kura_domain::{Action, FolderId, ProjectId, Resource, TenantId};
use kura_store::access_log::AccessEntry;
use kura_store::audit::{Checkpoint, StoredEvent, VerifyReport};
use kura_store::SYSTEM_TENANT;
use std::collections::HashMap;

/// The highest label rank a reader of the audit log may see names at: `None` when one of
/// their tenant-wide grants with `audit.read` is uncapped (they see everything), else the
/// highest cap among those grants.
fn audit_cap(auth: &AuthContext) -> Option<u8> {
    let grants: Vec<&kura_domain::authz::Grant> = auth
        .principal
        .grants
        .iter()
        .filter(|g| {
            g.scope == kura_domain::authz::Scope::Tenant && g.actions.contains(Action::AuditRead)
        })
        .collect();
    if grants.iter().any(|g| g.max_level.is_none()) {
        return None;
    }
    grants.iter().filter_map(|g| g.max_level).max()
}

/// An entry about something above the reader's cap, as they are shown it: what happened,
/// when and by whom — not what it was done to.
fn redact(e: &mut StoredEvent) {
    e.record.target_id = None;
    e.record.details = serde_json::json!({ "redacted": "above your label cap" });
}

impl Services {
    /// The gate of every audit- and access-log read: `audit.read` on the caller's tenant.
    async fn require_audit_read(&self, auth: &AuthContext, ctx: &RequestCtx) -> Result<()> {
        self.require(
            &auth.principal,
            Action::AuditRead,
            &Resource::Tenant(auth.tenant.id.clone()),
            ctx,
        )
        .await
    }

    /// Tenant admin: the newest audit events (before `before`, for paging).
    pub async fn list_audit(
        &self,
        auth: &AuthContext,
        before: Option<i64>,
        limit: i64,
        ctx: &RequestCtx,
    ) -> Result<Vec<StoredEvent>> {
        let all = kura_store::audit::Filter::default();
        self.query_audit(auth, &all, before, limit, ctx).await
    }

    /// Tenant admin: verifies their own chain.
    pub async fn verify_own_audit(
        &self,
        auth: &AuthContext,
        ctx: &RequestCtx,
    ) -> Result<std::result::Result<VerifyReport, ChainError>> {
        let t = &auth.tenant.id;
        self.require_audit_read(auth, ctx).await?;
        let mut tx = self.store.tenant_read(t).await?;
        self.verify_chain(&mut tx, t, None).await
    }

    /// Tenant admin: verifies their chain against a checkpoint they kept outside Kura (from
    /// the daily mail, the console or an earlier export) besides the stored ones — which
    /// catches a chain cut back together with its stored checkpoints.
    pub async fn verify_own_audit_with(
        &self,
        auth: &AuthContext,
        published: &Checkpoint,
        ctx: &RequestCtx,
    ) -> Result<std::result::Result<VerifyReport, ChainError>> {
        let t = &auth.tenant.id;
        self.require_audit_read(auth, ctx).await?;
        let mut tx = self.store.tenant_read(t).await?;
        self.verify_chain(&mut tx, t, Some(published)).await
    }

    /// Tenant admin: the newest signed checkpoint of their chain (to keep outside Kura).
    pub async fn newest_checkpoint(
        &self,
        auth: &AuthContext,
        ctx: &RequestCtx,
    ) -> Result<Option<Checkpoint>> {
        let t = &auth.tenant.id;
        self.require_audit_read(auth, ctx).await?;
        let mut tx = self.store.tenant_read(t).await?;
        Ok(kura_store::audit::latest_checkpoint(&mut tx, t, None).await?)
    }

    /// **The** verification of a chain (API, console, CLI, backups, exports): every hash
    /// and link from the stored base (itself a genuine signed purge checkpoint) to the head;
    /// every stored checkpoint — and `published`, one kept outside Kura — carries this
    /// deployment's signature, the entry at its seq has its hash, and the chain reaches it.
    /// A forger with write access to the database can recompute hashes and move the head,
    /// but not sign: what they rewrote before the newest checkpoint contradicts it.
    pub async fn verify_chain(
        &self,
        tx: &mut kura_store::Tx,
        t: &TenantId,
        published: Option<&Checkpoint>,
    ) -> Result<std::result::Result<VerifyReport, ChainError>> {
        let mut cps = kura_store::audit::checkpoints_between(tx, t, 0, i64::MAX).await?;
        cps.extend(published.cloned());
        for c in &cps {
            if c.tenant_id != t.as_str() || !self.checkpoint_is_genuine(c) {
                return Ok(Err(ChainError::CheckpointSignature { seq: c.seq }));
            }
        }
        let anchors: Vec<(i64, String)> = cps.iter().map(|c| (c.seq, c.hash.clone())).collect();
        let r = kura_store::audit::verify(tx, t, &anchors).await?;
        self.check_base(t, r).await
    }

    /// A chain that verifies from a purge base verifies only if that base is a genuine
    /// signed purge checkpoint (else whoever deleted the head of the chain also moved it).
    async fn check_base(
        &self,
        t: &TenantId,
        r: std::result::Result<VerifyReport, ChainError>,
    ) -> Result<std::result::Result<VerifyReport, ChainError>> {
        match r {
            Ok(rep) if !self.base_is_genuine(t).await? => {
                Ok(Err(ChainError::Base { seq: rep.base_seq }))
            }
            other => Ok(other),
        }
    }

    /// Tenant admin: the newest access-log entries.
    pub async fn list_access(
        &self,
        auth: &AuthContext,
        limit: i64,
        ctx: &RequestCtx,
    ) -> Result<Vec<AccessEntry>> {
        let all = kura_store::access_log::Filter::default();
        self.query_access(auth, &all, None, limit, ctx).await
    }

    /// Tenant admin: access-log entries matching a filter, newest first, keyset-paged.
    pub async fn query_access(
        &self,
        auth: &AuthContext,
        filter: &kura_store::access_log::Filter,
        before: Option<i64>,
        limit: i64,
        ctx: &RequestCtx,
    ) -> Result<Vec<AccessEntry>> {
        let t = &auth.tenant.id;
        self.require_audit_read(auth, ctx).await?;
        let mut tx = self.store.tenant_read(t).await?;
        Ok(kura_store::access_log::query(
            &mut tx,
            t,
            filter,
            kura_store::access_log::Cursor::Before(before),
            limit,
        )
        .await?)
    }

    /// Operator: verifies one tenant's chain (by slug, or `_system`), or every chain.
    /// The verification is itself recorded in the system chain.
    /// `published`: a checkpoint kept outside Kura, checked besides the stored ones (with
    /// one tenant).
    pub async fn operator_verify_audit(
        &self,
        slug: Option<&str>,
        published: Option<&Checkpoint>,
        ctx: &RequestCtx,
    ) -> Result<Vec<(String, std::result::Result<VerifyReport, ChainError>)>> {
        let targets: Vec<(String, TenantId)> = match slug {
            Some(SYSTEM_TENANT) => {
                vec![(SYSTEM_TENANT.into(), TenantId::from_string(SYSTEM_TENANT))]
            }
            Some(s) => {
                let t = self.operator_find_tenant(s).await?;
                vec![(t.slug, t.id)]
            }
            None => {
                let mut tx = self.store.system_read().await?;
                let all = kura_store::tenants::list_all(&mut tx).await?;
                let mut v: Vec<(String, TenantId)> =
                    all.into_iter().map(|t| (t.slug, t.id)).collect();
                v.push((SYSTEM_TENANT.into(), TenantId::from_string(SYSTEM_TENANT)));
                v
            }
        };
        let mut out = Vec::new();
        for (label, id) in targets {
            let mut tx = self.store.system_read().await?;
            let r = self.verify_chain(&mut tx, &id, published).await?;
            drop(tx);
            out.push((label, r));
        }
        let failed: Vec<&str> = out
            .iter()
            .filter(|(_, r)| r.is_err())
            .map(|(l, _)| l.as_str())
            .collect();
        self.audit_alone(
            &TenantId::from_string(SYSTEM_TENANT),
            &Actor::Operator,
            ctx,
            Event::new("operator.audit.verify")
                .result(if failed.is_empty() {
                    "success"
                } else {
                    "failure"
                })
                .details(serde_json::json!({ "chains": out.len(), "failed": failed })),
        )
        .await
        .map_err(|e| ServiceError::internal(e.to_string()))?;
        Ok(out)
    }
}

/// How an export is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// JSON Lines, signed and verifiable offline (audit log).
    Jsonl,
    /// CSV for spreadsheets (times with the tenant zone's offset).
    Csv,
}

impl ExportFormat {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "jsonl" | "ndjson" | "json" => Some(Self::Jsonl),
            "csv" => Some(Self::Csv),
            _ => None,
        }
    }
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jsonl => "application/x-ndjson; charset=utf-8",
            Self::Csv => "text/csv; charset=utf-8",
        }
    }
    pub fn extension(self) -> &'static str {
        match self {
            Self::Jsonl => "jsonl",
            Self::Csv => "csv",
        }
    }
}

/// A streamed export: lines as they are produced, constant memory.
pub type ExportStream = std::pin::Pin<
    Box<dyn futures_util::Stream<Item = std::result::Result<bytes::Bytes, std::io::Error>> + Send>,
>;

/// One CSV field, quoted when it needs to be.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

const EXPORT_PAGE: i64 = 1000;

struct AuditExport {
    services: Services,
    tenant: TenantId,
    zone: String,
    filter: kura_store::audit::Filter,
    format: ExportFormat,
    after: i64,
    lines: u64,
    hasher: sha2::Sha256,
    /// The last (seq, hash) written.
    last: Option<(i64, String)>,
    stage: u8,
    /// The whole chain verified (against its stored checkpoints) when the export began:
    /// only then does the export sign new checkpoints (anchor, final) over it.
    verified: bool,
    /// A reader capped at this label rank: entries about items above it are left out (the
    /// export is then a filtered one), with the tenant's settings to place them.
    cap: Option<(u8, kura_domain::tenant::TenantSettings)>,
    seen: HashMap<(String, String), bool>,
}

impl AuditExport {
    /// Every entry (no filter but time) and nothing left out for a cap.
    fn contiguous(&self) -> bool {
        self.filter.is_contiguous() && self.cap.is_none()
    }
}

impl AuditExport {
    fn push(&mut self, out: &mut String, line: String) {
        use sha2::Digest;
        self.hasher.update(line.as_bytes());
        self.hasher.update(b"\n");
        self.lines += 1;
        out.push_str(&line);
        out.push('\n');
    }

    fn event_line(&self, e: &StoredEvent) -> String {
        match self.format {
            ExportFormat::Jsonl => {
                let mut v = serde_json::to_value(e).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.insert("type".into(), "event".into());
                    o.insert(
                        "time".into(),
                        kura_domain::Timestamp(e.record.at)
                            .to_rfc3339_in_zone(&self.zone)
                            .into(),
                    );
                }
                v.to_string()
            }
            ExportFormat::Csv => {
                let r = &e.record;
                [
                    kura_domain::Timestamp(r.at).to_rfc3339_in_zone(&self.zone),
                    r.seq.to_string(),
                    r.actor_kind.clone(),
                    r.actor_id.clone().unwrap_or_default(),
                    r.action.clone(),
                    r.target_kind.clone().unwrap_or_default(),
                    r.target_id.clone().unwrap_or_default(),
                    r.result.clone(),
                    r.ip.clone().unwrap_or_default(),
                    r.request_id.clone().unwrap_or_default(),
                    r.details.to_string(),
                    e.hash.clone(),
                ]
                .iter()
                .map(|f| csv_field(f))
                .collect::<Vec<_>>()
                .join(",")
            }
        }
    }

    /// The next chunk of the export, or `None` at the end.
    async fn next_chunk(&mut self) -> Result<Option<String>> {
        let mut out = String::new();
        let jsonl = self.format == ExportFormat::Jsonl;
        match self.stage {
            0 => {
                self.stage = 1;
                // Never sign what has not been verified: the chain is checked first.
                let mut tx = self.services.store.tenant_read(&self.tenant).await?;
                let check = self
                    .services
                    .verify_chain(&mut tx, &self.tenant, None)
                    .await?;
                drop(tx);
                self.verified = check.is_ok();
                if let Err(e) = &check {
                    tracing::error!(tenant = %self.tenant.as_str(), error = %e, "audit export of a chain that does not verify");
                }
                let line = if jsonl {
                    serde_json::json!({
                        "type": "header",
                        "format": "kura-audit-export/1",
                        "tenant_id": self.tenant.as_str(),
                        "exported_at": self.services.now().to_rfc3339_in_zone(&self.zone),
                        "time_zone": self.zone,
                        "contiguous": self.contiguous(),
                        "filters": {
                            "from": self.filter.from.map(|t| kura_domain::Timestamp(t).to_rfc3339()),
                            "to": self.filter.to.map(|t| kura_domain::Timestamp(t).to_rfc3339()),
                            "user": self.filter.actor, "action": self.filter.action,
                            "ip": self.filter.ip, "result": self.filter.result,
                        },
                        "key_id": self.services.signing.key_id(),
                        "chain_verified": self.verified,
                        "chain_error": check.as_ref().err().map(|e| e.to_string()),
                    })
                    .to_string()
                } else {
                    "time,seq,actor_kind,actor_id,action,target_kind,target_id,result,ip,request_id,details,hash".into()
                };
                self.push(&mut out, line);
                Ok(Some(out))
            }
            1 => {
                let mut tx = self.services.store.tenant_read(&self.tenant).await?;
                let page = kura_store::audit::query(
                    &mut tx,
                    &self.tenant,
                    &self.filter,
                    kura_store::audit::Cursor::After(self.after),
                    EXPORT_PAGE,
                )
                .await?;
                let cps = match (page.first(), page.last()) {
                    (Some(a), Some(b)) if jsonl => {
                        kura_store::audit::checkpoints_between(
                            &mut tx,
                            &self.tenant,
                            a.record.seq,
                            b.record.seq,
                        )
                        .await?
                    }
                    _ => Vec::new(),
                };
                drop(tx);
                if page.is_empty() {
                    self.stage = 2;
                    return Ok(Some(out));
                }
                for e in &page {
                    if let Some((cap, settings)) = &self.cap {
                        let within = self
                            .services
                            .within_cap(&self.tenant, settings, *cap, e, &mut self.seen)
                            .await?;
                        if !within {
                            continue;
                        }
                    }
                    if jsonl && self.verified && self.last.is_none() && self.contiguous() {
                        // The signed chain state just before the first entry.
                        let cp = self.services.sign_checkpoint(
                            self.tenant.as_str(),
                            e.record.seq - 1,
                            &e.record.prev_hash,
                            "anchor",
                        );
                        let mut v = serde_json::to_value(&cp).unwrap_or_default();
                        v["type"] = "anchor".into();
                        self.push(&mut out, v.to_string());
                    }
                    let line = self.event_line(e);
                    self.push(&mut out, line);
                    self.last = Some((e.record.seq, e.hash.clone()));
                    for cp in cps.iter().filter(|c| c.seq == e.record.seq) {
                        let mut v = serde_json::to_value(cp).unwrap_or_default();
                        v["type"] = "checkpoint".into();
                        self.push(&mut out, v.to_string());
                    }
                }
                self.after = page.last().map(|e| e.record.seq).unwrap_or(self.after);
                if (page.len() as i64) < EXPORT_PAGE {
                    self.stage = 2;
                }
                Ok(Some(out))
            }
            2 => {
                self.stage = 3;
                if !jsonl {
                    return Ok(None);
                }
                if let (Some((seq, hash)), true) =
                    (self.last.clone(), self.contiguous() && self.verified)
                {
                    let cp =
                        self.services
                            .sign_checkpoint(self.tenant.as_str(), seq, &hash, "export");
                    let mut v = serde_json::to_value(&cp).unwrap_or_default();
                    v["type"] = "checkpoint".into();
                    self.push(&mut out, v.to_string());
                }
                // The newest stored checkpoint, also when it is past the last exported entry
                // (a `to` filter): the chain reached at least that far, signed.
                let mut tx = self.services.store.tenant_read(&self.tenant).await?;
                let newest =
                    kura_store::audit::latest_checkpoint(&mut tx, &self.tenant, None).await?;
                drop(tx);
                if let Some(cp) =
                    newest.filter(|c| self.last.as_ref().is_none_or(|(seq, _)| c.seq > *seq))
                {
                    let mut v = serde_json::to_value(&cp).unwrap_or_default();
                    v["type"] = "newest_checkpoint".into();
                    self.push(&mut out, v.to_string());
                }
                use sha2::Digest;
                let sha = hex::encode(self.hasher.clone().finalize());
                let signature = self
                    .services
                    .signing
                    .sign(&kura_crypto::sign::export_message(self.lines, &sha));
                out.push_str(
                    &serde_json::json!({
                        "type": "trailer",
                        "lines": self.lines,
                        "sha256": sha,
                        "key_id": self.services.signing.key_id(),
                        "signature": signature,
                    })
                    .to_string(),
                );
                out.push('\n');
                Ok(Some(out))
            }
            _ => Ok(None),
        }
    }
}

impl Services {
    /// Tenant admin: audit events matching a filter, newest first, keyset-paged on seq.
    pub async fn query_audit(
        &self,
        auth: &AuthContext,
        filter: &kura_store::audit::Filter,
        before: Option<i64>,
        limit: i64,
        ctx: &RequestCtx,
    ) -> Result<Vec<StoredEvent>> {
        let t = &auth.tenant.id;
        self.require_audit_read(auth, ctx).await?;
        let mut tx = self.store.tenant_read(t).await?;
        let mut events = kura_store::audit::query(
            &mut tx,
            t,
            filter,
            kura_store::audit::Cursor::Before(before),
            limit,
        )
        .await?;
        drop(tx);
        if let Some(cap) = audit_cap(auth) {
            let mut seen = HashMap::new();
            for e in &mut events {
                if !self
                    .within_cap(t, &auth.tenant.settings, cap, e, &mut seen)
                    .await?
                {
                    redact(e);
                }
            }
        }
        Ok(events)
    }

    /// Whether an event's target (a file, project or folder) is at or below `cap` — what a
    /// reader whose audit access is capped may see named. A target that no longer exists
    /// cannot be placed and counts as above (fail closed). `seen` caches per target.
    async fn within_cap(
        &self,
        t: &TenantId,
        settings: &kura_domain::tenant::TenantSettings,
        cap: u8,
        e: &StoredEvent,
        seen: &mut HashMap<(String, String), bool>,
    ) -> Result<bool> {
        let (Some(kind), Some(id)) = (&e.record.target_kind, &e.record.target_id) else {
            return Ok(true);
        };
        if !matches!(kind.as_str(), "file" | "project" | "folder") {
            return Ok(true);
        }
        let key = (kind.clone(), id.clone());
        if let Some(v) = seen.get(&key) {
            return Ok(*v);
        }
        let mut tx = self.store.tenant_read(t).await?;
        let level = match kind.as_str() {
            "file" => match kura_store::files::get(&mut tx, t, id).await {
                Ok(f) => self
                    .project_as_resource(
                        &mut tx,
                        settings,
                        t,
                        &f.project_id,
                        Some(f.labels.label.as_deref()),
                    )
                    .await
                    .ok()
                    .map(|(_, r)| r.level()),
                Err(_) => None,
            },
            "project" => self
                .project_as_resource(&mut tx, settings, t, &ProjectId::from_string(id), None)
                .await
                .ok()
                .map(|(_, r)| r.level()),
            _ => self
                .folder_as_resource(&mut tx, settings, t, &FolderId::from_string(id))
                .await
                .ok()
                .map(|(_, r)| r.level()),
        };
        drop(tx);
        let ok = level.is_some_and(|l| l <= cap);
        seen.insert(key, ok);
        Ok(ok)
    }

    /// Tenant admin: the audit log (filtered) as a stream, CSV or signed JSON Lines that
    /// `kura audit verify FILE --public-key K` checks offline. The export is audited.
    pub async fn export_audit(
        &self,
        auth: &AuthContext,
        filter: kura_store::audit::Filter,
        format: ExportFormat,
        ctx: &RequestCtx,
    ) -> Result<ExportStream> {
        let t = &auth.tenant.id;
        self.require_audit_read(auth, ctx).await?;
        let mut tx = self.store.tenant_tx(t).await?;
        self.audit(
            &mut tx,
            t,
            &Actor::User(&auth.principal),
            ctx,
            Event::new("log.export").details(serde_json::json!({
                "log": "audit",
                "format": format.extension(),
                "contiguous": filter.is_contiguous() && audit_cap(auth).is_none(),
            })),
        )
        .await?;
        tx.commit().await?;
        // The export ends at the entry recording it, so its own audit entry is included.
        let mut stream =
            self.audit_export_state(t, &auth.tenant.settings.time_zone, filter, format);
        stream.cap = audit_cap(auth).map(|c| (c, auth.tenant.settings.clone()));
        Ok(export_stream(stream))
    }

    /// The audit export of `tenant` as a stream (no permission check: callers check).
    pub(crate) fn audit_export_stream(
        &self,
        t: &TenantId,
        zone: &str,
        filter: kura_store::audit::Filter,
        format: ExportFormat,
    ) -> ExportStream {
        export_stream(self.audit_export_state(t, zone, filter, format))
    }

    fn audit_export_state(
        &self,
        t: &TenantId,
        zone: &str,
        filter: kura_store::audit::Filter,
        format: ExportFormat,
    ) -> AuditExport {
        AuditExport {
            services: self.clone(),
            tenant: t.clone(),
            zone: zone.to_string(),
            filter,
            format,
            after: 0,
            lines: 0,
            hasher: <sha2::Sha256 as sha2::Digest>::new(),
            last: None,
            stage: 0,
            verified: false,
            cap: None,
            seen: HashMap::new(),
        }
    }
}

/// An audit export as a byte stream.
fn export_stream(state: AuditExport) -> ExportStream {
    Box::pin(futures_util::stream::unfold(state, |mut st| async move {
        match st.next_chunk().await {
            Ok(Some(chunk)) => Some((Ok(bytes::Bytes::from(chunk)), st)),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "audit export failed mid-stream");
                st.stage = 3;
                Some((Err(std::io::Error::other("export failed")), st))
            }
        }
    }))
}

impl Services {
    /// Tenant admin: the access log (filtered) as a stream, CSV or JSON Lines, oldest
    /// first, times with the tenant zone's offset. The export is audited.
    pub async fn export_access(
        &self,
        auth: &AuthContext,
        filter: kura_store::access_log::Filter,
        format: ExportFormat,
        ctx: &RequestCtx,
    ) -> Result<ExportStream> {
        let t = auth.tenant.id.clone();
        self.require_audit_read(auth, ctx).await?;
        let mut tx = self.store.tenant_tx(&t).await?;
        self.audit(
            &mut tx,
            &t,
            &Actor::User(&auth.principal),
            ctx,
            Event::new("log.export")
                .details(serde_json::json!({ "log": "access", "format": format.extension() })),
        )
        .await?;
        tx.commit().await?;
        Ok(self.access_export_stream(&t, &auth.tenant.settings.time_zone, filter, format))
    }

    /// The access-log export of `tenant` as a stream (no permission check: callers check).
    pub(crate) fn access_export_stream(
        &self,
        t: &TenantId,
        zone: &str,
        filter: kura_store::access_log::Filter,
        format: ExportFormat,
    ) -> ExportStream {
        let t = t.clone();
        let zone = zone.to_string();
        let services = self.clone();
        // (next id, header written, finished)
        let stream =
            futures_util::stream::unfold((0i64, false, false), move |(after, header, done)| {
                let services = services.clone();
                let t = t.clone();
                let zone = zone.clone();
                let filter = filter.clone();
                async move {
                    if done {
                        return None;
                    }
                    let mut out = String::new();
                    if !header && format == ExportFormat::Csv {
                        out.push_str(
                            "time,user_id,ip,method,path,status,latency_us,bytes,request_id\n",
                        );
                    }
                    let page = match services.store.tenant_read(&t).await {
                        Ok(mut tx) => {
                            kura_store::access_log::query(
                                &mut tx,
                                &t,
                                &filter,
                                kura_store::access_log::Cursor::After(after),
                                EXPORT_PAGE,
                            )
                            .await
                        }
                        Err(e) => Err(e),
                    };
                    let page = match page {
                        Ok(p) => p,
                        Err(e) => {
                            tracing::warn!(error = %e, "access-log export failed mid-stream");
                            return Some((
                                Err(std::io::Error::other("export failed")),
                                (after, true, true),
                            ));
                        }
                    };
                    for e in &page {
                        let time = e.at.to_rfc3339_in_zone(&zone);
                        match format {
                            ExportFormat::Csv => {
                                let fields = [
                                    time,
                                    e.user_id
                                        .as_ref()
                                        .map(|u| u.as_str().to_string())
                                        .unwrap_or_default(),
                                    e.ip.clone().unwrap_or_default(),
                                    e.method.clone(),
                                    e.path.clone(),
                                    e.status.to_string(),
                                    e.latency_us.to_string(),
                                    e.bytes.to_string(),
                                    e.request_id.clone().unwrap_or_default(),
                                ];
                                out.push_str(
                                    &fields
                                        .iter()
                                        .map(|f| csv_field(f))
                                        .collect::<Vec<_>>()
                                        .join(","),
                                );
                            }
                            ExportFormat::Jsonl => {
                                let mut v = serde_json::to_value(e).unwrap_or_default();
                                v["time"] = time.into();
                                out.push_str(&v.to_string());
                            }
                        }
                        out.push('\n');
                    }
                    let next = page.last().map(|e| e.id).unwrap_or(after);
                    let finished = (page.len() as i64) < EXPORT_PAGE;
                    Some((Ok(bytes::Bytes::from(out)), (next, true, finished)))
                }
            });
        Box::pin(stream)
    }
}
