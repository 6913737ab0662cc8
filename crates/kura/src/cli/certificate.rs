//! `kura certificate`: verify a deletion certificate.

use super::*;

#[derive(Subcommand, Debug)]
pub enum CertificateCmd {
    /// Check a deletion certificate's signature with the deployment's public key; exit 1 if
    /// it does not verify.
    Verify {
        file: std::path::PathBuf,
        /// 64 hex characters, a file holding them, or the /.well-known/kura-audit-key JSON.
        #[arg(long)]
        public_key: String,
    },
}

pub(super) async fn run(cmd: CertificateCmd) -> anyhow::Result<i32> {
    match cmd {
        CertificateCmd::Verify { file, public_key } => {
            let pk = public_key_arg(&public_key)?;
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            match kura_services::lifecycle::verify_certificate(&text, &pk) {
                Ok(c) => {
                    println!(
                        "ok    {}: tenant {} deleted {}, keys destroyed {}",
                        file.display(),
                        c["slug"].as_str().unwrap_or("-"),
                        c["data_deleted_at"].as_str().unwrap_or("-"),
                        c["keys_destroyed_at"].as_str().unwrap_or("-")
                    );
                    Ok(0)
                }
                Err(e) => {
                    println!("FAIL  {}: {e}", file.display());
                    Ok(1)
                }
            }
        }
    }
}
