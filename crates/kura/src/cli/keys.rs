//! `kura keys`: rotate, inspect and rewrap tenant data keys.

use super::*;

#[derive(Subcommand, Debug)]
pub enum KeysCmd {
    /// New data-key version for a tenant. New data uses it at once; existing blobs are
    /// re-encrypted under it in the background by the running server(s), or here with
    /// `--wait`.
    Rotate {
        #[arg(long)]
        tenant: String,
        /// Re-encrypt every existing blob now, before returning.
        #[arg(long)]
        wait: bool,
    },
    /// A tenant's current data-key version and how many blobs each version encrypts.
    Status {
        #[arg(long)]
        tenant: String,
    },
    /// Rewrap every tenant data key under a new master key (then configure that key).
    Rewrap {
        /// File with the new master key (64 hex characters, mode 600).
        #[arg(long)]
        new_master_key_file: std::path::PathBuf,
    },
}

pub(super) async fn run(cfg: &Config, cmd: KeysCmd) -> anyhow::Result<i32> {
    match cmd {
        KeysCmd::Rotate { tenant, wait } => {
            let s = services(cfg).await?;
            let r = s
                .operator_rotate_key(&tenant, &ctx())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "tenant {tenant}: data key version {} is current for new data; {} blobs under older versions",
                r.new_version, r.pending
            );
            if !wait {
                println!("the running server(s) re-encrypt them in the background; `kura keys status --tenant {tenant}` shows progress");
                return Ok(0);
            }
            let t = s
                .operator_find_tenant(&tenant)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut total = 0;
            loop {
                let n = s
                    .reencrypt_tenant(&t.id, 100, &ctx())
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                total += n;
                if n == 0 {
                    break;
                }
            }
            let st = s
                .operator_key_status(&tenant)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "{total} blobs re-encrypted; {} left under older versions",
                st.pending()
            );
            Ok(if st.pending() == 0 { 0 } else { 1 })
        }
        KeysCmd::Status { tenant } => {
            let s = services(cfg).await?;
            let st = s
                .operator_key_status(&tenant)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "tenant {tenant}: current data key version {}",
                st.current_version
            );
            for (v, n) in &st.blobs_by_version {
                println!("  version {v}: {n} blobs");
            }
            println!("{} blobs waiting for re-encryption", st.pending());
            Ok(0)
        }
        KeysCmd::Rewrap {
            new_master_key_file,
        } => {
            let new = kura_crypto::keys::read_key_file(&new_master_key_file)
                .map_err(|e| anyhow::anyhow!("{}: {e}", new_master_key_file.display()))?;
            let s = services(cfg).await?;
            let n = s
                .operator_rewrap_keys(&new, &ctx())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "rewrapped {n} data keys under master key {}; configure it as master_key_file and restart every node",
                new.fingerprint()
            );
            Ok(0)
        }
    }
}
