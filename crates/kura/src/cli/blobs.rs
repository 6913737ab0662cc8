//! `kura blobs`: sweep orphaned blobs.

use super::*;

#[derive(Subcommand, Debug)]
pub enum BlobsCmd {
    /// Remove blobs that no file version references and abandoned upload temp files.
    Sweep {
        /// Only objects older than this (uploads in flight are younger).
        #[arg(long, default_value_t = 60)]
        older_than_minutes: i64,
    },
}

pub(super) async fn run(cfg: &Config, cmd: BlobsCmd) -> anyhow::Result<i32> {
    match cmd {
        BlobsCmd::Sweep { older_than_minutes } => {
            let s = services(cfg).await?;
            let r = s
                .operator_sweep_blobs(older_than_minutes.max(0) * 60, &ctx())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "removed {} orphaned blobs and {} temp files; kept {}",
                r.orphans_removed, r.temp_files_removed, r.kept
            );
            Ok(0)
        }
    }
}
