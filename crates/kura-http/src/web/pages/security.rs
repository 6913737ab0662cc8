//! The tenant's security settings (contract admins).

use super::*;

// ---------------------------------------------------------------- security settings

#[derive(Template)]
#[template(path = "security.html")]
struct SecurityTpl {
    p: Page,
    ip_allowlist: String,
    /// (role, applies)
    ip_roles: Vec<(&'static str, bool)>,
    current_ip: String,
    /// (role, MFA required for it)
    mfa_roles: Vec<(&'static str, bool)>,
    mfa_required: bool,
    idle_minutes: i64,
    absolute_hours: i64,
    min_length: u32,
    require_symbol: bool,
    require_mixed_case: bool,
    min_strength: u8,
    audit_retention_days: i64,
    access_log_retention_days: i64,
    lifecycle_policy: String,
}

/// Tenant admins: MFA requirement, session timeouts, password policy.
pub async fn security_page(c: Console, Query(flash): Query<Flash>) -> Response {
    let s = c.state.clone();
    let st = match s.services.settings_for_edit(&c.auth, &c.ctx).await {
        Ok(st) => st,
        Err(e) => return message(&c, StatusCode::FORBIDDEN, &e),
    };
    let st = &st;
    let body = SecurityTpl {
        p: page(&c, "security.title", "security", "/security", &flash),
        ip_allowlist: st.ip_allowlist.join("\n"),
        ip_roles: kura_domain::authz::BuiltinRole::ALL
            .iter()
            .map(|r| {
                (
                    r.as_str(),
                    st.ip_allowlist_roles.iter().any(|x| x == r.as_str()),
                )
            })
            .collect(),
        current_ip: c.ctx.ip.clone().unwrap_or_default(),
        mfa_roles: kura_domain::authz::BuiltinRole::ALL
            .iter()
            .map(|r| {
                (
                    r.as_str(),
                    st.mfa_required_roles.iter().any(|x| x == r.as_str()),
                )
            })
            .collect(),
        mfa_required: st.mfa_required,
        idle_minutes: st.session_policy.idle_timeout_secs / 60,
        absolute_hours: st.session_policy.absolute_lifetime_secs / 3600,
        min_length: st.password_policy.min_length,
        require_symbol: st.password_policy.require_symbol,
        require_mixed_case: st.password_policy.require_mixed_case,
        min_strength: st.password_policy.min_strength,
        lifecycle_policy: c
            .tr
            .t("lifecycle.policy")
            .replace("{delete}", &s.services.config.delete_after_days.to_string())
            .replace("{shred}", &s.services.config.shred_after_days.to_string())
            .replace("{keep}", &s.services.config.backup_keep.to_string()),
        audit_retention_days: st.audit_retention_days,
        access_log_retention_days: st.access_log_retention_days,
    }
    .render();
    html(StatusCode::OK, body)
}

#[derive(Deserialize)]
pub struct SecurityForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
    #[serde(default)]
    mfa_required: Option<String>,
    #[serde(default)]
    ip_allowlist: String,
    #[serde(default)]
    ip_role_contract_admin: Option<String>,
    #[serde(default)]
    ip_role_admin: Option<String>,
    #[serde(default)]
    ip_role_member: Option<String>,
    #[serde(default)]
    ip_role_guest: Option<String>,
    #[serde(default)]
    confirm_lockout: Option<String>,
    #[serde(default)]
    mfa_role_contract_admin: Option<String>,
    #[serde(default)]
    mfa_role_admin: Option<String>,
    #[serde(default)]
    mfa_role_member: Option<String>,
    #[serde(default)]
    mfa_role_guest: Option<String>,
    idle_minutes: i64,
    absolute_hours: i64,
    min_length: u32,
    #[serde(default)]
    require_symbol: Option<String>,
    #[serde(default)]
    require_mixed_case: Option<String>,
    min_strength: u8,
    #[serde(default)]
    audit_retention_days: Option<i64>,
    #[serde(default)]
    access_log_retention_days: Option<i64>,
}

pub async fn security_submit(c: Console, Form(f): Form<SecurityForm>) -> Response {
    let s = c.state.clone();
    let mut st = c.auth.tenant.settings.clone();
    st.mfa_required = f.mfa_required.is_some();
    st.mfa_required_roles = [
        ("contract_admin", &f.mfa_role_contract_admin),
        ("admin", &f.mfa_role_admin),
        ("member", &f.mfa_role_member),
        ("guest", &f.mfa_role_guest),
    ]
    .iter()
    .filter(|(_, on)| on.is_some())
    .map(|(r, _)| r.to_string())
    .collect();
    st.ip_allowlist = f
        .ip_allowlist
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    st.ip_allowlist_roles = [
        ("contract_admin", &f.ip_role_contract_admin),
        ("admin", &f.ip_role_admin),
        ("member", &f.ip_role_member),
        ("guest", &f.ip_role_guest),
    ]
    .iter()
    .filter(|(_, on)| on.is_some())
    .map(|(r, _)| r.to_string())
    .collect();
    st.session_policy.idle_timeout_secs = f.idle_minutes.saturating_mul(60);
    st.session_policy.absolute_lifetime_secs = f.absolute_hours.saturating_mul(3600);
    st.password_policy.min_length = f.min_length;
    st.password_policy.require_symbol = f.require_symbol.is_some();
    st.password_policy.require_mixed_case = f.require_mixed_case.is_some();
    st.password_policy.min_strength = f.min_strength;
    if let Some(d) = f.audit_retention_days {
        st.audit_retention_days = d;
    }
    if let Some(d) = f.access_log_retention_days {
        st.access_log_retention_days = d;
    }
    act(
        &c,
        &f.csrf,
        "/security",
        "settings_saved",
        s.services
            .update_settings(&c.auth, st, f.confirm_lockout.is_some(), &c.ctx),
    )
    .await
}
