//! `kura tenant`: create, list, terminate, reactivate tenants, deletion certificates.

use super::*;

#[derive(Subcommand, Debug)]
pub enum TenantCmd {
    /// Create a tenant and invite its contract admin.
    Create {
        #[arg(long)]
        slug: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        admin_email: String,
        #[arg(long, default_value = "")]
        admin_name: String,
        /// ja or en.
        #[arg(long, default_value = "ja")]
        locale: String,
        #[arg(long)]
        time_zone: Option<String>,
    },
    /// List tenants.
    List,
    /// Show one tenant.
    Show { slug: String },
    /// Terminate a tenant's contract: locked at once; its data is deleted after
    /// `termination_delete_days`, its keys destroyed `termination_shred_days` later.
    Terminate {
        #[arg(long)]
        slug: String,
        /// Do not ask: the tenant ID is not typed again to confirm.
        #[arg(long)]
        yes: bool,
    },
    /// Undo a termination during its grace period (before the data is deleted): the tenant
    /// is active again, its export link stops working, its contract admins are mailed.
    Reactivate {
        #[arg(long)]
        slug: String,
    },
    /// A crypto-shredded tenant's deletion certificate: signed JSON, or a ja/en rendering.
    Certificate {
        #[arg(long)]
        slug: String,
        /// json, ja or en.
        #[arg(long, default_value = "json")]
        format: String,
    },
}

pub(super) async fn run(cfg: &Config, cmd: TenantCmd) -> anyhow::Result<i32> {
    let s = services(cfg).await?;
    match cmd {
        TenantCmd::Terminate { slug, yes } => {
            if !yes {
                // Asked on the terminal, or read from a pipe (`echo acme | kura …`).
                use std::io::{BufRead, Write};
                eprint!(
                    "Terminating {slug} locks it at once and deletes its data after {} days.\nType the tenant ID to confirm: ",
                    cfg.termination_delete_days
                );
                let _ = std::io::stderr().flush();
                let mut answer = String::new();
                std::io::stdin().lock().read_line(&mut answer)?;
                if answer.trim() != slug {
                    eprintln!("not confirmed: nothing was changed (use --yes in scripts)");
                    return Ok(1);
                }
            }
            let (l, link) = s
                .operator_terminate_tenant(&slug, &ctx())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "tenant {slug} terminated: locked now; data deleted after {}; keys destroyed after {}",
                l.delete_after.to_rfc3339(),
                l.shred_after.to_rfc3339()
            );
            println!("export for its contract admins (mailed to them; valid until the deletion):\n{link}");
        }
        TenantCmd::Reactivate { slug } => {
            s.operator_reactivate_tenant(&slug, &ctx())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("tenant {slug} is active again; its contract admins were mailed; the export link no longer works");
        }
        TenantCmd::Certificate { slug, format } => {
            let text = s.deletion_certificate(&slug).await.map_err(|_| {
                anyhow::anyhow!("no deletion certificate for {slug} (not crypto-shredded yet?)")
            })?;
            match format.as_str() {
                "json" => println!("{text}"),
                lang @ ("ja" | "en") => {
                    let v: serde_json::Value = serde_json::from_str(&text)?;
                    println!("{}", kura_services::lifecycle::render_certificate(&v, lang));
                }
                other => bail!("--format json, ja or en, not {other:?}"),
            }
        }
        TenantCmd::Create {
            slug,
            name,
            admin_email,
            admin_name,
            locale,
            time_zone,
        } => {
            let created = s
                .create_tenant(
                    NewTenant {
                        slug,
                        name,
                        admin_email,
                        admin_name,
                        locale,
                        time_zone,
                    },
                    &ctx(),
                )
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "created tenant {} ({}) id {}",
                created.tenant.slug, created.tenant.name, created.tenant.id
            );
            println!(
                "contract admin {} invited; the invitation was also put in the mail outbox.",
                created.admin.email
            );
            println!(
                "invitation link (valid {} hours):",
                cfg.invitation_ttl_hours
            );
            println!("{}", created.invitation_link);
        }
        TenantCmd::List => {
            let list = s
                .operator_list_tenants(&ctx())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{:<20} {:<10} {:<30} CREATED", "SLUG", "STATUS", "NAME");
            for t in list {
                println!(
                    "{:<20} {:<10} {:<30} {}",
                    t.slug,
                    t.status.as_str(),
                    t.name,
                    t.created_at.to_rfc3339()
                );
            }
        }
        TenantCmd::Show { slug } => {
            let (t, users) = s
                .operator_show_tenant(&slug, &ctx())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("id:         {}", t.id);
            println!("slug:       {}", t.slug);
            println!("name:       {}", t.name);
            println!("status:     {}", t.status.as_str());
            println!(
                "created:    {} ({})",
                t.created_at.format_in_zone(&t.settings.time_zone),
                t.created_at.to_rfc3339()
            );
            println!("users:      {users}");
            println!("settings:   {}", serde_json::to_string_pretty(&t.settings)?);
        }
    }
    Ok(0)
}
