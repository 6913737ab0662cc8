//! Tenant termination (OPS-3, DATA-4, CRY-3). Terminating locks the tenant at once (no
//! log-in, API or download: every session ends and the tenant is no longer active). After
//! `delete_after_days` its data is deleted (rows and blobs); `shred_after_days` later its
//! data keys are destroyed in the key vault and in every backup generation's vault copy, so
//! what remains in backups cannot be decrypted; a deletion certificate signed with the
//! deployment key records what was destroyed and when (`kura certificate verify`).

use crate::{Actor, Event, RequestCtx, Result, ServiceError, Services};
use kura_domain::tenant::TenantStatus;
use kura_store::lifecycle::{self, Lifecycle};
use kura_store::{backup, tenants};

impl Services {
    /// Operator: terminates a tenant now. Its contract admins get a link to the full
    /// export, valid until the data is deleted (also returned here). Audited.
    pub async fn operator_terminate_tenant(
        &self,
        slug: &str,
        ctx: &RequestCtx,
    ) -> Result<(Lifecycle, String)> {
        let t = self.operator_find_tenant(slug).await?;
        if t.status == TenantStatus::Terminated {
            return Err(ServiceError::Conflict(
                "the tenant is already terminated".into(),
            ));
        }
        let now = self.now();
        let delete_after = now.plus_secs(self.config.delete_after_days * 86_400);
        let l = Lifecycle {
            tenant_id: t.id.clone(),
            slug: t.slug.clone(),
            terminated_at: now,
            delete_after,
            shred_after: delete_after.plus_secs(self.config.shred_after_days * 86_400),
            deleted_at: None,
            deletion: None,
            shredded_at: None,
            certificate: None,
        };
        // The tenant's data key exists before it is terminated: its backups need one, and
        // none is ever created afterwards.
        self.current_key(&t.id).await?;
        let token =
            kura_crypto::token::generate("kex").map_err(|_| ServiceError::internal("rng"))?;
        let link = format!(
            "{}/export/{}",
            self.config.public_url.trim_end_matches('/'),
            token.secret
        );
        let mut tx = self.store.system_tx().await?;
        lifecycle::insert(&mut tx, &l).await?;
        lifecycle::set_export_token(&mut tx, &t.id, &token.hash).await?;
        for u in &kura_store::users::contract_admins(&mut tx, &t.id).await? {
            let locale = u
                .locale
                .clone()
                .unwrap_or_else(|| t.settings.default_locale.clone());
            let until = l.delete_after.format_in_zone(&t.settings.time_zone);
            let (subject, body) = if locale == "ja" {
                (
                    format!("[Kura] {} のご契約終了とデータのエクスポート", t.name),
                    format!("{} のご契約は終了しました。ログインはできません。\n\nすべてのファイル・記録・ログのエクスポートを次のリンクからダウンロードできます（{until} まで）:\n{link}\n\nこの日時を過ぎるとデータは削除され、その後暗号鍵が破棄されます。", t.name),
                )
            } else {
                (
                    format!("[Kura] {}: contract ended — export your data", t.name),
                    format!("The contract of {} has ended; logging in is no longer possible.\n\nDownload the export of every file, record and log here (until {until}):\n{link}\n\nAfter that the data is deleted, and then its keys are destroyed.", t.name),
                )
            };
            self.enqueue_mail(
                &mut tx,
                Some(&t.id),
                &u.email,
                subject,
                body,
                now,
                l.delete_after,
            )
            .await?;
        }
        lifecycle::set_tenant_status(&mut tx, &t.id, TenantStatus::Terminated.as_str(), now)
            .await?;
        backup::clear_sessions(&mut tx, &t.id).await?;
        self.audit(
            &mut tx,
            &t.id,
            &Actor::Operator,
            ctx,
            Event::new("tenant.terminate").details(serde_json::json!({
                "delete_after": l.delete_after.to_rfc3339(),
                "shred_after": l.shred_after.to_rfc3339(),
            })),
        )
        .await?;
        tx.commit().await?;
        Ok((l, link))
    }

    /// Operator: undoes a termination during its grace period — before the tenant's data is
    /// deleted. The tenant is active again (its users log in again; sessions ended at the
    /// termination stay ended), the lifecycle and its export link are gone, its contract
    /// admins are mailed (ja/en). Audited.
    pub async fn operator_reactivate_tenant(&self, slug: &str, ctx: &RequestCtx) -> Result<()> {
        let t = self.operator_find_tenant(slug).await?;
        let l = self
            .list_lifecycles()
            .await?
            .into_iter()
            .find(|l| l.tenant_id == t.id);
        let Some(l) = l.filter(|_| t.status == TenantStatus::Terminated) else {
            return Err(ServiceError::Conflict(
                "the tenant is not terminated".into(),
            ));
        };
        if l.deleted_at.is_some() || self.now() >= l.delete_after {
            return Err(ServiceError::Conflict(
                "the grace period is over: the tenant's data is deleted or due for deletion".into(),
            ));
        }
        let now = self.now();
        let mut tx = self.store.system_tx().await?;
        lifecycle::remove(&mut tx, &t.id).await?;
        lifecycle::set_tenant_status(&mut tx, &t.id, TenantStatus::Active.as_str(), now).await?;
        for u in &kura_store::users::contract_admins(&mut tx, &t.id).await? {
            let locale = u
                .locale
                .clone()
                .unwrap_or_else(|| t.settings.default_locale.clone());
            let (subject, body) = if locale == "ja" {
                (
                    format!("[Kura] {} のご契約を再開しました", t.name),
                    format!("{} のご契約の終了を取り消し、ご利用を再開しました。これまでどおりログインできます。\n\nデータの削除は行われません。お送りしたエクスポートのリンクは使えなくなりました。", t.name),
                )
            } else {
                (
                    format!("[Kura] {}: contract resumed", t.name),
                    format!("The termination of {} has been withdrawn and the service resumed: you can log in as before.\n\nNo data will be deleted. The export link sent earlier no longer works.", t.name),
                )
            };
            self.enqueue_mail(
                &mut tx,
                Some(&t.id),
                &u.email,
                subject,
                body,
                now,
                now.plus_secs(crate::mail::KEEP_SECS),
            )
            .await?;
        }
        self.audit(
            &mut tx,
            &t.id,
            &Actor::Operator,
            ctx,
            Event::new("tenant.reactivate").details(serde_json::json!({
                "terminated_at": l.terminated_at.to_rfc3339(),
            })),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The export behind a termination link: while the data still exists. Audited.
    pub async fn export_by_link(
        &self,
        token: &str,
        ctx: &RequestCtx,
    ) -> Result<(String, crate::files::ByteStream)> {
        let hash = kura_crypto::token::hash(token);
        let mut tx = self.store.system_read().await?;
        let tenant = lifecycle::find_by_export_token(&mut tx, &hash)
            .await?
            .ok_or(ServiceError::NotFound)?;
        drop(tx);
        let l = self
            .list_lifecycles()
            .await?
            .into_iter()
            .find(|l| l.tenant_id == tenant)
            .ok_or(ServiceError::NotFound)?;
        if l.deleted_at.is_some() || self.now() >= l.delete_after {
            return Err(ServiceError::NotFound);
        }
        self.audit_alone(
            &tenant,
            &Actor::Anonymous,
            ctx,
            Event::new("tenant.export.download"),
        )
        .await?;
        Ok((l.slug.clone(), self.tenant_archive(&tenant).await?))
    }

    pub async fn list_lifecycles(&self) -> Result<Vec<Lifecycle>> {
        let mut tx = self.store.system_read().await?;
        Ok(lifecycle::list(&mut tx).await?)
    }

    /// The `lifecycle.run` job: deletes the data of tenants past `delete_after` and
    /// crypto-shreds those past `shred_after`. Returns how many steps it took.
    pub async fn advance_lifecycles(&self) -> Result<usize> {
        let now = self.now();
        let mut steps = 0;
        for l in self.list_lifecycles().await? {
            if l.deleted_at.is_none() && now >= l.delete_after {
                self.delete_tenant_data(&l).await?;
                steps += 1;
            }
        }
        for l in self.list_lifecycles().await? {
            if l.deleted_at.is_some() && l.shredded_at.is_none() && now >= l.shred_after {
                self.shred_tenant(&l).await?;
                steps += 1;
            }
        }
        Ok(steps)
    }

    async fn delete_tenant_data(&self, l: &Lifecycle) -> Result<()> {
        let t = &l.tenant_id;
        let mut tx = self.store.system_tx().await?;
        let counts = backup::count_rows(&mut tx, t).await?;
        let blobs = backup::tenant_blobs(&mut tx, t).await?;
        backup::clear_tenant(&mut tx, t).await?;
        backup::clear_outbox(&mut tx, t).await?;
        tx.commit().await?;
        let mut removed = 0;
        for b in &blobs {
            if self.blobs.delete(t, b).await.is_ok() {
                removed += 1;
            }
        }
        let mut counts: serde_json::Map<String, serde_json::Value> = counts
            .into_iter()
            .filter(|(table, n)| table != "tenants" && *n > 0)
            .map(|(table, n)| (table, n.into()))
            .collect();
        counts.insert("blobs".into(), removed.into());
        let deletion = serde_json::Value::Object(counts).to_string();
        let mut tx = self.store.system_tx().await?;
        lifecycle::mark_deleted(&mut tx, t, self.now(), &deletion).await?;
        tx.commit().await?;
        tracing::info!(tenant = %l.slug, "terminated tenant's data deleted");
        Ok(())
    }

    async fn shred_tenant(&self, l: &Lifecycle) -> Result<()> {
        let t = &l.tenant_id;
        let mut tx = self.store.system_tx().await?;
        let versions = lifecycle::destroy_keys(&mut tx, t).await?;
        // Anything written for the tenant since its data was deleted goes too.
        backup::clear_tenant(&mut tx, t).await?;
        backup::clear_outbox(&mut tx, t).await?;
        tx.commit().await?;
        if let Ok(mut c) = self.keys.cache.lock() {
            c.retain(|(tenant, _), _| tenant != t.as_str());
        }
        let generations = self.shred_backups(t).await?;
        let mut tx = self.store.system_read().await?;
        let tenant = tenants::get(&mut tx, t).await?;
        drop(tx);
        let now = self.now();
        let deleted: serde_json::Value = l
            .deletion
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or_default();
        let cert = serde_json::json!({
            "format": "kura-deletion-certificate/1",
            "tenant_id": t.as_str(),
            "slug": l.slug,
            "tenant_name": tenant.name,
            "terminated_at": l.terminated_at.to_rfc3339(),
            "data_deleted_at": l.deleted_at.map(|d| d.to_rfc3339()),
            "keys_destroyed_at": now.to_rfc3339(),
            "data_deleted": deleted,
            "key_versions_destroyed": versions,
            "backup_generations_shredded": generations,
            "issued_by": self.config.public_url,
        });
        let body = cert.to_string();
        let signed = serde_json::json!({
            "certificate": cert,
            "key_id": self.signing.key_id(),
            "signature": self.signing.sign(body.as_bytes()),
        })
        .to_string();
        let mut tx = self.store.system_tx().await?;
        lifecycle::mark_shredded(&mut tx, t, now, &signed).await?;
        tx.commit().await?;
        tracing::info!(tenant = %l.slug, "terminated tenant crypto-shredded; certificate issued");
        Ok(())
    }

    /// The signed deletion certificate of a crypto-shredded tenant.
    pub async fn deletion_certificate(&self, slug: &str) -> Result<String> {
        self.list_lifecycles()
            .await?
            .into_iter()
            .find(|l| l.slug == slug)
            .and_then(|l| l.certificate)
            .ok_or(ServiceError::NotFound)
    }
}

/// Checks a deletion certificate against a public key; returns the certificate.
pub fn verify_certificate(
    text: &str,
    public_key_hex: &str,
) -> std::result::Result<serde_json::Value, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let cert = v["certificate"].clone();
    if cert["format"] != "kura-deletion-certificate/1" {
        return Err("not a Kura deletion certificate".into());
    }
    if !kura_crypto::sign::verify(
        public_key_hex,
        cert.to_string().as_bytes(),
        v["signature"].as_str().unwrap_or_default(),
    ) {
        return Err("the signature does not verify with this public key".into());
    }
    Ok(cert)
}

/// A readable rendering of a certificate in Japanese or English.
pub fn render_certificate(cert: &serde_json::Value, lang: &str) -> String {
    let s = |k: &str| cert[k].as_str().unwrap_or("-").to_string();
    let deleted = cert["data_deleted"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let versions = cert["key_versions_destroyed"].to_string();
    let gens = cert["backup_generations_shredded"]
        .as_array()
        .map(|a| a.len())
        .unwrap_or(0);
    if lang == "ja" {
        format!(
            "データ削除証明書\n\nテナント: {} ({})\n契約終了: {}\nデータ削除: {}\n暗号鍵破棄: {}\n削除した記録: {deleted}\n破棄した鍵のバージョン: {versions}\n鍵を破棄したバックアップ世代: {gens}\n\nこのテナントのデータの暗号鍵は鍵保管庫とすべてのバックアップ世代から破棄されました。残存するバックアップ中の複製は復号できません。\n発行: {}",
            s("tenant_name"),
            s("slug"),
            s("terminated_at"),
            s("data_deleted_at"),
            s("keys_destroyed_at"),
            s("issued_by"),
        )
    } else {
        format!(
            "Certificate of data deletion\n\nTenant: {} ({})\nContract terminated: {}\nData deleted: {}\nKeys destroyed: {}\nRecords deleted: {deleted}\nKey versions destroyed: {versions}\nBackup generations whose keys were destroyed: {gens}\n\nThe data keys of this tenant were destroyed in the key vault and in every backup generation; copies left in backups cannot be decrypted.\nIssued by: {}",
            s("tenant_name"),
            s("slug"),
            s("terminated_at"),
            s("data_deleted_at"),
            s("keys_destroyed_at"),
            s("issued_by"),
        )
    }
}
