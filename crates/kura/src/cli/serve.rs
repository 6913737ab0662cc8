//! `kura serve`, `kura demo` and `kura migrate`.

use super::*;

#[derive(Args, Debug, Default)]
pub struct ServeArgs {
    /// Address to listen on (overrides the config).
    #[arg(long)]
    pub listen: Option<String>,
}

/// Serves the API and console until a signal; the demo also creates its tenant.
pub(super) async fn serve(mut cfg: Config, a: ServeArgs, is_demo: bool) -> anyhow::Result<i32> {
    if let Some(l) = a.listen {
        cfg.listen = l;
    }
    let store = crate::open_store(&cfg).await?;
    let running = crate::start(&cfg, store, None, true).await?;
    let url = cfg.public_url(running.addr.port());
    if is_demo {
        let created = crate::demo::ensure(&running.services).await?;
        if created {
            tracing::info!("demo tenant created");
        }
        // The dashboard shows the demo's first figures at once, not within the hour.
        if let Err(e) = running.services.rollup_usage().await {
            tracing::warn!(error = %e, "usage roll-up failed");
        }
        crate::demo::print_banner(&url);
    } else {
        println!("Kura listening on {} ({url})", running.addr);
    }
    running.wait().await?;
    Ok(0)
}

/// Brings the schema up to date and says which version it is at.
pub(super) async fn migrate(cfg: &Config) -> anyhow::Result<i32> {
    let store = crate::open_store(cfg).await?;
    println!(
        "database ({}) at schema version {}",
        store.backend().name(),
        store.current_version().await?
    );
    Ok(0)
}
