//! `kura backup`: run, list, verify and restore generations.

use super::*;

#[derive(Subcommand, Debug)]
pub enum BackupCmd {
    /// Write a generation now, verify it, expire the ones beyond `backup_keep`.
    Run,
    /// Generations, newest first, with their verification.
    List,
    /// Verify a generation again (the newest when none is named); exit 1 if it fails.
    Verify {
        #[arg(long)]
        generation: Option<String>,
    },
    /// Restore a generation (the newest verified one by default): every tenant in it, or
    /// only --tenant (the others are not touched). Also into an empty database.
    Restore {
        #[arg(long)]
        generation: Option<String>,
        /// Tenant slug.
        #[arg(long)]
        tenant: Option<String>,
        /// Restore a generation whose verification failed (or that does not verify now).
        #[arg(long)]
        force: bool,
    },
}

pub(super) async fn run(cfg: &Config, cmd: BackupCmd) -> anyhow::Result<i32> {
    match cmd {
        BackupCmd::Run => {
            let s = services(cfg).await?;
            let g = s
                .run_backup(&|line| eprintln!("  {line}"))
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "generation {}: {} tenants, {} rows, {} blobs ({} copied now, {} bytes written), verification {}",
                g.id,
                g.tenants,
                g.rows_saved,
                g.blobs,
                g.blobs_copied,
                g.bytes,
                g.verify_status.as_deref().unwrap_or("-")
            );
            Ok(if g.verify_status.as_deref() == Some("ok") {
                0
            } else {
                1
            })
        }
        BackupCmd::Restore {
            generation,
            tenant,
            force,
        } => {
            let s = services(cfg).await?;
            let r = s
                .restore_backup(generation.as_deref(), tenant.as_deref(), force, &|line| {
                    eprintln!("  {line}")
                })
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "restored generation {}: {} ({} rows, {} blobs copied back, {} damaged blobs replaced, {} blobs of rolled-back uploads removed; audit logs kept and the restore recorded in them)",
                r.generation,
                r.tenants.join(", "),
                r.rows,
                r.blobs_restored,
                r.blobs_repaired,
                r.blobs_orphaned
            );
            Ok(0)
        }
        BackupCmd::List => {
            let s = services(cfg).await?;
            let list = s.list_backups().await?;
            if list.is_empty() {
                println!("(no backups yet)");
            }
            for g in list {
                println!(
                    "{}  {:<8} {}  tenants {}  rows {}  blobs {}  verified {} {}",
                    g.id,
                    g.status,
                    g.started_at.to_rfc3339(),
                    g.tenants,
                    g.rows_saved,
                    g.blobs,
                    g.verify_status.as_deref().unwrap_or("-"),
                    g.verify_detail.as_deref().unwrap_or("")
                );
            }
            Ok(0)
        }
        BackupCmd::Verify { generation } => {
            let s = services(cfg).await?;
            let id = match generation {
                Some(g) => g,
                None => s
                    .list_backups()
                    .await?
                    .into_iter()
                    .find(|g| g.status == "ok")
                    .map(|g| g.id)
                    .ok_or_else(|| anyhow::anyhow!("no backup generation to verify"))?,
            };
            let (ok, detail) = s.verify_backup(&id).await?;
            println!("{}  {id}: {detail}", if ok { "ok  " } else { "FAIL" });
            Ok(if ok { 0 } else { 1 })
        }
    }
}
