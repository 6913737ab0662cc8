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
        let until = l.delete_after.format_in_zone(&t.settings.time_zone);
        self.mail_contract_admins(&mut tx, &t, l.delete_after, |locale| {
            if locale == "ja" {
                (
                    format!("[Kura] {} のご契約終了とデータのエクスポート", t.name),
                    format!("{} のご契約は終了しました。ログインはできません。\n\nすべてのファイル・記録・ログのエクスポートを次のリンクからダウンロードできます（{until} まで）:\n{link}\n\nこの日時を過ぎるとデータは削除され、その後暗号鍵が破棄されます。", t.name),
                )
            } else {
                (
                    format!("[Kura] {}: contract ended — export your data", t.name),
                    format!("The contract of {} has ended; logging in is no longer possible.\n\nDownload the export of every file, record and log here (until {until}):\n{link}\n\nAfter that the data is deleted, and then its keys are destroyed.", t.name),
                )
            }
        })
        .await?;
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
        self.mail_contract_admins(
            &mut tx,
            &t,
            now.plus_secs(crate::mail::KEEP_SECS),
            |locale| {
                if locale == "ja" {
                    (
                        format!("[Kura] {} のご契約を再開しました", t.name),
                        format!("{} のご契約の終了を取り消し、ご利用を再開しました。これまでどおりログインできます。\n\nデータの削除は行われません。お送りしたエクスポートのリンクは使えなくなりました。", t.name),
                    )
                } else {
                    (
                        format!("[Kura] {}: contract resumed", t.name),
                        format!("The termination of {} has been withdrawn and the service resumed: you can log in as before.\n\nNo data will be deleted. The export link sent earlier no longer works.", t.name),
                    )
                }
            },
        )
        .await?;
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
            "time_zone": tenant.settings.time_zone,
            "terminated_at": l.terminated_at.to_rfc3339(),
            "data_deleted_at": l.deleted_at.map(|d| d.to_rfc3339()),
            "keys_destroyed_at": now.to_rfc3339(),
            "data_deleted": deleted,
            "key_versions_destroyed": versions,
            "backup_generations_shredded": generations,
            "issued_by": self.config.provider_name,
            "service_url": self.config.public_url_configured.then(|| self.config.public_url.clone()),
            "key_id": self.signing.key_id(),
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

/// What a deletion removed, in words: (table, Japanese, English).
const DELETED_WORDS: &[(&str, &str, &str)] = &[
    ("users", "利用者アカウント", "user accounts"),
    ("tenant_contacts", "連絡先", "contacts"),
    ("roles", "ロール", "roles"),
    ("grants", "権限の付与", "role grants"),
    ("folders", "フォルダー", "folders"),
    ("projects", "プロジェクト", "projects"),
    ("files", "ファイル", "files"),
    ("file_versions", "ファイルの版", "file versions"),
    (
        "blobs",
        "暗号化されたファイル本体",
        "encrypted file contents",
    ),
    ("tenant_usage", "利用量の記録", "usage counters"),
    ("usage_daily", "日次の利用量", "daily usage figures"),
    (
        "user_totp",
        "認証アプリの設定",
        "authenticator app settings",
    ),
    ("recovery_codes", "リカバリーコード", "recovery codes"),
    ("api_tokens", "API トークン", "API tokens"),
    ("passkeys", "パスキー", "passkeys"),
    (
        "invitations",
        "招待・再設定リンク",
        "invitation and reset links",
    ),
    ("audit_heads", "監査ログの先頭記録", "audit chain heads"),
    ("audit_events", "監査ログの記録", "audit log entries"),
    (
        "audit_checkpoints",
        "監査ログの署名チェックポイント",
        "signed audit checkpoints",
    ),
    ("access_log", "アクセスログの記録", "access log entries"),
];

/// A readable rendering of a signed certificate (`{"certificate", "key_id", "signature"}`)
/// in Japanese or English: a document a customer files — times in the tenant's zone, what
/// was deleted in words, who issued it, and how to check its signature.
pub fn render_certificate(signed: &serde_json::Value, lang: &str) -> String {
    let cert = &signed["certificate"];
    let ja = lang == "ja";
    let s = |k: &str| cert[k].as_str().unwrap_or("-").to_string();
    let zone = cert["time_zone"].as_str().unwrap_or("Asia/Tokyo");
    let when = |k: &str| {
        cert[k]
            .as_str()
            .and_then(|v| kura_domain::Timestamp::parse_in_zone(v, zone))
            .map(|t| t.format_document(zone, ja))
            .unwrap_or_else(|| "-".into())
    };
    let mut deleted = Vec::new();
    if let Some(m) = cert["data_deleted"].as_object() {
        for (table, n) in m {
            let words = DELETED_WORDS.iter().find(|(t, _, _)| t == table);
            let label = match words {
                Some((_, j, e)) => {
                    if ja {
                        *j
                    } else {
                        *e
                    }
                }
                None => table.as_str(),
            };
            deleted.push(if ja {
                format!("  ・{label}: {n} 件")
            } else {
                format!("  - {label}: {n}")
            });
        }
    }
    let deleted = deleted.join("\n");
    let versions = cert["key_versions_destroyed"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let gens = cert["backup_generations_shredded"]
        .as_array()
        .map(|a| a.len())
        .unwrap_or(0);
    let issuer = match cert["service_url"].as_str() {
        Some(u) => format!("{} ({u})", s("issued_by")),
        None => s("issued_by"),
    };
    let key_id = signed["key_id"].as_str().unwrap_or("-");
    let sig = signed["signature"].as_str().unwrap_or("-");
    let sig_short = sig.get(..32).unwrap_or(sig);
    if ja {
        format!(
            "データ削除証明書\n\n             テナント: {} (テナント ID: {})\n             ご契約の終了: {}\n             データの削除: {}\n             暗号鍵の破棄: {}\n\n             削除したデータ:\n{deleted}\n\n             破棄した暗号鍵: データ鍵 第 {versions} 版（鍵保管庫から破棄）\n             暗号鍵を破棄したバックアップ世代: {gens} 世代\n\n             上記テナントのデータは削除され、その暗号鍵は鍵保管庫とすべてのバックアップ世代から破棄されました。\n             バックアップに残る複製は復号できません（暗号学的消去）。\n\n             発行者: {issuer}\n             署名: Ed25519（鍵 ID {key_id}）署名値の先頭 {sig_short}…\n             検証方法: 本証明書の JSON と発行者の公開鍵（/.well-known/kura-audit-key）で\n             kura certificate verify <証明書.json> --public-key <公開鍵> を実行すると、改ざんの有無を確認できます。",
            s("tenant_name"),
            s("slug"),
            when("terminated_at"),
            when("data_deleted_at"),
            when("keys_destroyed_at"),
        )
    } else {
        format!(
            "Certificate of data deletion\n\n             Tenant: {} (tenant ID: {})\n             Contract ended: {}\n             Data deleted: {}\n             Keys destroyed: {}\n\n             Data deleted:\n{deleted}\n\n             Keys destroyed: data key version(s) {versions} (in the key vault)\n             Backup generations whose keys were destroyed: {gens}\n\n             The data of this tenant was deleted, and its encryption keys were destroyed in the key vault\n             and in every backup generation: copies left in backups cannot be decrypted (crypto-shredding).\n\n             Issued by: {issuer}\n             Signature: Ed25519 (key ID {key_id}), beginning {sig_short}…\n             To verify: with this certificate's JSON and the issuer's public key (/.well-known/kura-audit-key),\n             run kura certificate verify <certificate.json> --public-key <key>.",
            s("tenant_name"),
            s("slug"),
            when("terminated_at"),
            when("data_deleted_at"),
            when("keys_destroyed_at"),
        )
    }
}
