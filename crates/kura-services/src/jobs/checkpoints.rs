//! Signed audit checkpoints (LOG-5): signing only what verifies, and mailing each tenant its
//! newest one.

use super::*;

impl Services {
    /// A signed checkpoint of `tenant`'s chain at (`seq`, `hash`).
    pub fn sign_checkpoint(&self, tenant: &str, seq: i64, hash: &str, kind: &str) -> Checkpoint {
        let at = self.now().0;
        Checkpoint {
            tenant_id: tenant.to_string(),
            seq,
            hash: hash.to_string(),
            at,
            kind: kind.to_string(),
            key_id: self.signing.key_id(),
            signature: self
                .signing
                .sign(&sign::checkpoint_message(tenant, seq, hash, at)),
        }
    }

    /// Checks a checkpoint's signature against this deployment's key.
    pub fn checkpoint_is_genuine(&self, c: &Checkpoint) -> bool {
        sign::verify(
            &self.signing.public_key_hex(),
            &sign::checkpoint_message(&c.tenant_id, c.seq, &c.hash, c.at),
            &c.signature,
        )
    }

    /// Checkpoints every chain whose head moved since its last checkpoint — but signs only
    /// what verifies: the part of the chain since the previous genuine checkpoint (or the
    /// stored base) must hash and link up to the head. A chain that does not is left
    /// unsigned, recorded in the system audit chain (`audit.checkpoint.refused`), and the
    /// job run fails naming it, so the forgery is reported instead of being vouched for.
    pub async fn checkpoint_all(&self) -> Result<usize> {
        let mut tx = self.store.system_read().await?;
        let chains = audit::chain_tenants(&mut tx).await?;
        drop(tx);
        let mut n = 0;
        let mut refused: Vec<(TenantId, kura_crypto::ChainError)> = Vec::new();
        for t in chains {
            let mut tx = self.store.system_tx().await?;
            let head = audit::head(&mut tx, &t).await?;
            let last = audit::latest_checkpoint(&mut tx, &t, None).await?;
            if last.as_ref().is_some_and(|c| c.seq >= head.seq) {
                if let Some(c) = last.filter(|c| c.seq > head.seq) {
                    refused.push((
                        t.clone(),
                        kura_crypto::ChainError::BehindCheckpoint {
                            head_seq: head.seq,
                            checkpoint_seq: c.seq,
                        },
                    ));
                }
                continue;
            }
            if head.seq == 0 {
                continue;
            }
            // Verify from the newest point already vouched for.
            let from = match last.filter(|c| c.seq >= head.base_seq) {
                Some(c) if self.checkpoint_is_genuine(&c) && c.tenant_id == t.as_str() => {
                    Ok((c.seq, c.hash))
                }
                Some(c) => Err(kura_crypto::ChainError::CheckpointSignature { seq: c.seq }),
                None if self.base_is_genuine(&t).await? => Ok((head.base_seq, head.base_hash)),
                None => Err(kura_crypto::ChainError::Base { seq: head.base_seq }),
            };
            let verified = match from {
                Ok((seq, hash)) => audit::verify_since(&mut tx, &t, seq, &hash).await?,
                Err(e) => Err(e),
            };
            match verified {
                Ok((seq, hash)) => {
                    let cp = self.sign_checkpoint(t.as_str(), seq, &hash, "interval");
                    if audit::insert_checkpoint(&mut tx, &cp).await? {
                        n += 1;
                    }
                    tx.commit().await?;
                }
                Err(e) => refused.push((t.clone(), e)),
            }
        }
        if refused.is_empty() {
            return Ok(n);
        }
        for (t, e) in &refused {
            tracing::error!(tenant = %t.as_str(), error = %e, "audit chain does not verify; no checkpoint signed");
        }
        self.audit_alone(
            &TenantId::from_string(kura_store::SYSTEM_TENANT),
            &Actor::System("audit.checkpoint"),
            &RequestCtx::default(),
            Event::new("audit.checkpoint.refused")
                .result("failure")
                .details(serde_json::json!({
                    "chains": refused
                        .iter()
                        .map(|(t, e)| serde_json::json!({ "tenant_id": t.as_str(), "error": e.to_string() }))
                        .collect::<Vec<_>>(),
                })),
        )
        .await?;
        Err(ServiceError::internal(format!(
            "{} audit chain(s) do not verify, not checkpointed: {}",
            refused.len(),
            refused
                .iter()
                .map(|(t, e)| format!("{}: {e}", t.as_str()))
                .collect::<Vec<_>>()
                .join("; ")
        )))
    }

    /// Mails each active tenant's contract admins the newest signed checkpoint of its audit
    /// chain when there is a newer one than last mailed (LOG-5): a copy outside the database,
    /// so that deleting checkpoints together with entries is detectable too. Returns how
    /// many tenants were mailed.
    pub async fn publish_checkpoints(&self) -> Result<usize> {
        let mut tx = self.store.system_read().await?;
        let all = tenants::list_all(&mut tx).await?;
        drop(tx);
        let mut mailed = 0;
        for t in all.iter().filter(|t| t.status != TenantStatus::Terminated) {
            let mut tx = self.store.tenant_tx(&t.id).await?;
            let Some(cp) = audit::latest_checkpoint(&mut tx, &t.id, Some("interval")).await? else {
                continue;
            };
            if cp.seq <= audit::published_seq(&mut tx, &t.id).await? {
                continue;
            }
            if !self.checkpoint_is_genuine(&cp) {
                tracing::error!(tenant = %t.slug, seq = cp.seq, "newest checkpoint is not genuine; not published");
                continue;
            }
            let json = serde_json::to_string_pretty(&cp)
                .map_err(|e| ServiceError::internal(e.to_string()))?;
            let when = Timestamp(cp.at).format_in_zone(&t.settings.time_zone);
            self.mail_contract_admins(
                &mut tx,
                t,
                self.now().plus_secs(crate::mail::KEEP_SECS),
                |locale| {
                    crate::mail::checkpoint(&crate::mail::CheckpointMail {
                        locale,
                        tenant_name: &t.name,
                        seq: cp.seq,
                        when: &when,
                        json: &json,
                    })
                },
            )
            .await?;
            audit::set_published_seq(&mut tx, &t.id, cp.seq).await?;
            tx.commit().await?;
            mailed += 1;
        }
        Ok(mailed)
    }

    /// The tenant chains' purge base must be a genuine purge checkpoint.
    pub(crate) async fn base_is_genuine(&self, t: &TenantId) -> Result<bool> {
        let mut tx = self.store.system_read().await?;
        let head = audit::head(&mut tx, t).await?;
        if head.base_seq == 0 {
            return Ok(head.base_hash == kura_crypto::GENESIS_HASH);
        }
        let cps = audit::checkpoints_between(&mut tx, t, head.base_seq, head.base_seq).await?;
        Ok(cps.iter().any(|c| {
            c.kind == "purge" && c.hash == head.base_hash && self.checkpoint_is_genuine(c)
        }))
    }
}
