//! `kura demo`: a demo tenant with folders, projects, and one user per role, created through
//! the same services (and policies) as real data.

use anyhow::Context;
use kura_domain::authz::Scope;
use kura_services::auth::SessionKind;
use kura_services::tenants::NewTenant;
use kura_services::users::NewUser;
use kura_services::{RequestCtx, Services};

pub const DEMO_TENANT: &str = "demo";
pub const DEMO_PASSWORD: &str = "Kura-Sakura-Lantern-2026";

/// (e-mail, display name, role, scope folder name)
pub const DEMO_USERS: &[(&str, &str, &str, Option<&str>)] = &[
    ("owner@demo.example.jp", "契約 太郎", "contract_admin", None),
    ("admin@demo.example.jp", "管理 花子", "admin", None),
    ("member@demo.example.jp", "一般 次郎", "member", None),
    ("guest@demo.example.jp", "ゲスト 三郎", "guest", None),
    (
        "drone@demo.example.jp",
        "操縦 四郎",
        "ドローン操縦者",
        Some("現場写真"),
    ),
    ("approver@demo.example.jp", "承認 五郎", "承認者", None),
];

fn token_of(link: &str) -> anyhow::Result<&str> {
    link.rsplit('/')
        .next()
        .context("invitation link without token")
}

/// Creates the demo tenant unless it exists. Returns true when it was created now.
pub async fn ensure(services: &Services) -> anyhow::Result<bool> {
    let ctx = RequestCtx {
        ip: None,
        request_id: None,
        user_agent: Some("kura demo".into()),
    };
    if services.operator_find_tenant(DEMO_TENANT).await.is_ok() {
        return Ok(false);
    }
    let (owner_email, owner_name, _, _) = DEMO_USERS[0];
    let created = services
        .create_tenant(
            NewTenant {
                slug: DEMO_TENANT.into(),
                name: "デモ株式会社".into(),
                admin_email: owner_email.into(),
                admin_name: owner_name.into(),
                locale: "ja".into(),
                time_zone: None,
            },
            &ctx,
        )
        .await?;
    services
        .accept_invitation(
            token_of(&created.invitation_link)?,
            DEMO_PASSWORD,
            SessionKind::Api,
            &ctx,
        )
        .await?;
    let login = match services
        .login(
            DEMO_TENANT,
            owner_email,
            DEMO_PASSWORD,
            SessionKind::Api,
            &ctx,
        )
        .await?
    {
        kura_services::auth::LoginOutcome::Session(s) => s,
        kura_services::auth::LoginOutcome::SecondFactor { .. } => {
            anyhow::bail!("the demo owner unexpectedly has a second factor")
        }
    };
    let owner = services.authenticate(&login.token).await?;

    let label = |l: &str| kura_store::Labels {
        label: Some(l.to_string()),
        ..Default::default()
    };
    let none = kura_store::Labels::default;
    let hq = services
        .create_folder(&owner, "本社", None, label("internal"), &ctx)
        .await?;
    services
        .create_project(&owner, &hq.id, "2026年度 予算", label("confidential"), &ctx)
        .await?;
    services
        .create_project(&owner, &hq.id, "社内規程", none(), &ctx)
        .await?;
    let site = services
        .create_folder(&owner, "現場写真", None, label("public"), &ctx)
        .await?;
    let tokyo = services
        .create_folder(&owner, "東京現場", Some(&site.id), none(), &ctx)
        .await?;
    services
        .create_project(&owner, &tokyo.id, "ドローン測量 A区画", none(), &ctx)
        .await?;

    let drone = services
        .create_role(
            &owner,
            "ドローン操縦者",
            &["view".into(), "project_create".into()],
            &ctx,
        )
        .await?;
    let approver = services
        .create_role(&owner, "承認者", &["view".into(), "approve".into()], &ctx)
        .await?;

    for (email, name, role, folder) in &DEMO_USERS[1..] {
        let role_spec = match *role {
            "ドローン操縦者" => drone.id.to_string(),
            "承認者" => approver.id.to_string(),
            other => other.to_string(),
        };
        let scope = match folder {
            Some(_) => Scope::Folder(site.id.clone()),
            None => Scope::Tenant,
        };
        let (_, link) = services
            .operator_create_user(
                DEMO_TENANT,
                NewUser {
                    email: (*email).into(),
                    display_name: (*name).into(),
                    locale: None,
                    role: Some((role_spec, scope)),
                    // Guests see nothing above "internal" (e.g. not the budget).
                    max_label: (*role == "guest").then(|| "internal".to_string()),
                },
                &ctx,
            )
            .await?;
        services
            .accept_invitation(token_of(&link)?, DEMO_PASSWORD, SessionKind::Api, &ctx)
            .await?;
    }
    Ok(true)
}

pub fn print_banner(url: &str) {
    println!();
    println!("  Kura demo is running.");
    println!();
    println!("  Console:  {url}/login?tenant={DEMO_TENANT}");
    println!("  API:      {url}/api/v1/openapi.json");
    println!("  Mail:     {url}/outbox   (invitations and reset links; this machine only)");
    println!(
        "  Operator: {url}/operator   (sign in with: cargo run --release -- --data-dir ./kura-demo operator login-link --name you)"
    );
    println!();
    println!("  Tenant ID: {DEMO_TENANT}    Password for every demo user: {DEMO_PASSWORD}");
    for (email, _, role, folder) in DEMO_USERS {
        let scope = folder.map(|f| format!(" (folder {f})")).unwrap_or_default();
        println!("    {email:<28} {role}{scope}");
    }
    println!();
    println!("  Stop with Ctrl-C.");
}
