//! Exporting the logs as CSV or JSON Lines: streamed page by page, signed only over what
//! verified.

use super::*;

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

pub(crate) const EXPORT_PAGE: i64 = 1000;

pub(crate) struct AuditExport {
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
                let mut v = serde_json::to_value(&e.record).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.insert("hash".into(), e.hash.clone().into());
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

/// An audit export as a byte stream.
pub(crate) fn export_stream(state: AuditExport) -> ExportStream {
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

    pub(crate) fn audit_export_state(
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
                                let mut v = access_json(e);
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

/// An access-log entry as a JSON Lines export writes it.
fn access_json(e: &AccessEntry) -> serde_json::Value {
    serde_json::json!({
        "id": e.id,
        "tenant_id": e.tenant_id,
        "user_id": e.user_id,
        "at": e.at,
        "ip": e.ip,
        "method": e.method,
        "path": e.path,
        "status": e.status,
        "latency_us": e.latency_us,
        "bytes": e.bytes,
        "request_id": e.request_id,
    })
}
