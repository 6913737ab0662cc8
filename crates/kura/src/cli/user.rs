//! `kura user`: create and change users of a tenant.

use super::*;

#[derive(Subcommand, Debug)]
pub enum UserCmd {
    /// Create a user by invitation.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "")]
        name: String,
        /// Built-in role (contract_admin, admin, member, guest) or a custom role id.
        #[arg(long, default_value = "member")]
        role: String,
        #[arg(long)]
        locale: Option<String>,
    },
    /// Freeze a user: they cannot log in and their sessions end at once.
    Freeze {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
    },
    /// Unfreeze a user.
    Unfreeze {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
    },
    /// Delete a user.
    Delete {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
    },
}

pub(super) async fn run(cfg: &Config, cmd: UserCmd) -> anyhow::Result<i32> {
    let s = services(cfg).await?;
    let (tenant, email, change) = match cmd {
        UserCmd::Create {
            tenant,
            email,
            name,
            role,
            locale,
        } => {
            let (user, link) = s
                .operator_create_user(
                    &tenant,
                    NewUser {
                        email,
                        display_name: name,
                        locale,
                        role: Some((role, Scope::Tenant)),
                        max_label: None,
                    },
                    &ctx(),
                )
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "invited {} ({}); link also in the mail outbox:",
                user.email, user.id
            );
            println!("{link}");
            return Ok(0);
        }
        UserCmd::Freeze { tenant, email } => (tenant, email, UserChange::Freeze),
        UserCmd::Unfreeze { tenant, email } => (tenant, email, UserChange::Unfreeze),
        UserCmd::Delete { tenant, email } => (tenant, email, UserChange::Delete),
    };
    match s
        .operator_change_user(&tenant, &email, change, &ctx())
        .await
    {
        Ok(u) => {
            println!("{:?}: {} ({})", change, u.email, u.id);
            Ok(0)
        }
        Err(kura_services::ServiceError::NotFound) => {
            bail!("no tenant {tenant} or no user {email} in it")
        }
        Err(e) => Err(anyhow::anyhow!("{e}")).context("changing the user"),
    }
}
