//! `kura audit`: the public key, and verifying a tenant's chain or an exported log.

use super::*;

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// Verify hash chains in the database (one tenant, or all). Exits 1 naming the first bad
    /// entry if any chain is broken.
    Verify {
        /// An exported audit log (JSON Lines) to verify offline instead of the database;
        /// needs --public-key. Exits 1 naming the first bad line.
        file: Option<std::path::PathBuf>,
        /// The deployment's public key: 64 hex characters, a file holding them, or the JSON
        /// from /.well-known/kura-audit-key.
        #[arg(long)]
        public_key: Option<String>,
        /// Tenant slug (or `_system`); all chains when omitted.
        #[arg(long)]
        tenant: Option<String>,
        /// A signed checkpoint kept outside Kura (JSON, from the daily mail, the console or
        /// `GET /api/v1/audit/checkpoint`): the chain must still contain it. Needs --tenant.
        #[arg(long)]
        checkpoint: Option<std::path::PathBuf>,
    },
    /// Print the deployment's audit signing public key (as /.well-known/kura-audit-key).
    PublicKey,
}

pub(super) async fn run(cfg: &Config, cmd: AuditCmd) -> anyhow::Result<i32> {
    match cmd {
        AuditCmd::PublicKey => {
            let k = cfg.signing_key()?;
            println!(
                "{}",
                serde_json::json!({ "alg": "Ed25519", "key_id": k.key_id(), "public_key": k.public_key_hex() })
            );
            Ok(0)
        }
        AuditCmd::Verify {
            file: Some(file),
            public_key,
            ..
        } => {
            let Some(pk) = public_key else {
                anyhow::bail!(
                    "--public-key is needed to verify an export (see `kura audit public-key`)"
                );
            };
            let pk = public_key_arg(&pk)?;
            let f = std::fs::File::open(&file)
                .with_context(|| format!("opening {}", file.display()))?;
            match kura_crypto::export::verify_export(std::io::BufReader::new(f), &pk) {
                Ok(s) => {
                    println!(
                        "ok    {}: {} entries (seq {}–{}), {} signed checkpoints, {}",
                        file.display(),
                        s.events,
                        s.first_seq
                            .map(|x| x.to_string())
                            .unwrap_or_else(|| "-".into()),
                        s.last_seq
                            .map(|x| x.to_string())
                            .unwrap_or_else(|| "-".into()),
                        s.checkpoints,
                        if s.contiguous {
                            "a contiguous piece of the chain"
                        } else {
                            "filtered (each entry and the whole file are signed)"
                        }
                    );
                    Ok(0)
                }
                Err(e) => {
                    println!("FAIL  {}: {e}", file.display());
                    Ok(1)
                }
            }
        }
        AuditCmd::Verify {
            tenant, checkpoint, ..
        } => {
            let published: Option<kura_store::audit::Checkpoint> = match &checkpoint {
                Some(f) => {
                    if tenant.is_none() {
                        anyhow::bail!("--checkpoint needs --tenant");
                    }
                    let text = std::fs::read_to_string(f)
                        .with_context(|| format!("reading {}", f.display()))?;
                    // The checkpoint itself, or as saved from GET /api/v1/audit/checkpoint.
                    let mut v: serde_json::Value = serde_json::from_str(&text)
                        .with_context(|| format!("{} is not JSON", f.display()))?;
                    if let Some(inner) = v.get_mut("checkpoint") {
                        v = inner.take();
                    }
                    Some(
                        serde_json::from_value(v)
                            .with_context(|| format!("{} is not a checkpoint", f.display()))?,
                    )
                }
                None => None,
            };
            let s = services(cfg).await?;
            let results = s
                .operator_verify_audit(tenant.as_deref(), published.as_ref(), &ctx())
                .await?;
            let mut bad = 0;
            for (label, r) in results {
                match r {
                    Ok(rep) => println!(
                        "ok    {label}: {} events, head {} {}",
                        rep.events, rep.head_seq, rep.head_hash
                    ),
                    Err(e) => {
                        bad += 1;
                        println!("FAIL  {label}: {e}");
                    }
                }
            }
            Ok(if bad == 0 { 0 } else { 1 })
        }
    }
}
