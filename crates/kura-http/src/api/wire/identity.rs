//! Users, grants, roles, tokens, sessions, log-in and second factors.

use super::*;

#[derive(Serialize, JsonSchema)]
pub struct User {
    pub id: UserId,
    pub tenant_id: TenantId,
    pub email: String,
    pub display_name: String,
    /// The user's console language, if they chose one.
    pub locale: Option<String>,
    pub status: UserStatus,
    pub kind: UserKind,
    pub created_at: Timestamp,
}

impl From<kura_store::users::User> for User {
    fn from(u: kura_store::users::User) -> Self {
        User {
            id: u.id,
            tenant_id: u.tenant_id,
            email: u.email,
            display_name: u.display_name,
            locale: u.locale,
            status: u.status,
            kind: u.kind,
            created_at: u.created_at,
        }
    }
}

/// Which role a grant gives.
#[derive(Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RoleRef {
    Builtin { role: BuiltinRole },
    Custom { role_id: RoleId, name: String },
}

impl From<kura_store::roles::RoleRef> for RoleRef {
    fn from(r: kura_store::roles::RoleRef) -> Self {
        match r {
            kura_store::roles::RoleRef::Builtin { role } => RoleRef::Builtin { role },
            kura_store::roles::RoleRef::Custom { role_id, name } => {
                RoleRef::Custom { role_id, name }
            }
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct Grant {
    pub id: GrantId,
    pub user_id: UserId,
    pub role: RoleRef,
    pub scope: Scope,
    /// Classification cap of this grant (DATA-3); null: no cap.
    pub max_label: Option<String>,
    pub created_at: Timestamp,
}

impl From<kura_store::roles::GrantRow> for Grant {
    fn from(g: kura_store::roles::GrantRow) -> Self {
        Grant {
            id: g.id,
            user_id: g.user_id,
            role: g.role.into(),
            scope: g.scope,
            max_label: g.max_label,
            created_at: g.created_at,
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct UserWithGrants {
    pub user: User,
    pub grants: Vec<Grant>,
}

#[derive(Serialize, JsonSchema)]
pub struct CustomRole {
    pub id: RoleId,
    pub name: String,
    pub actions: Vec<Action>,
    pub created_at: Timestamp,
}

impl From<kura_store::roles::CustomRole> for CustomRole {
    fn from(r: kura_store::roles::CustomRole) -> Self {
        CustomRole {
            id: r.id,
            name: r.name,
            actions: r.actions,
            created_at: r.created_at,
        }
    }
}

/// A built-in role: its name is its id.
#[derive(Serialize, JsonSchema)]
pub struct BuiltinRoleInfo {
    pub id: String,
    pub name: String,
    pub builtin: bool,
    pub actions: Vec<Action>,
}

#[derive(Serialize, JsonSchema)]
pub struct Roles {
    pub builtin: Vec<BuiltinRoleInfo>,
    /// The tenant's custom roles.
    pub items: Vec<CustomRole>,
}

/// An API token (never its secret).
#[derive(Serialize, JsonSchema)]
pub struct ApiToken {
    pub id: String,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub name: String,
    /// `area:read` / `area:write`.
    pub scopes: Vec<String>,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

impl From<kura_store::api_tokens::ApiToken> for ApiToken {
    fn from(t: kura_store::api_tokens::ApiToken) -> Self {
        ApiToken {
            id: t.id,
            tenant_id: t.tenant_id,
            user_id: t.user_id,
            name: t.name,
            scopes: t.scopes,
            created_at: t.created_at,
            expires_at: t.expires_at,
            last_used_at: t.last_used_at,
            revoked_at: t.revoked_at,
        }
    }
}

/// A new API token: the secret is in `token`, shown this once.
#[derive(Serialize, JsonSchema)]
pub struct NewApiToken {
    pub token: String,
    #[serde(flatten)]
    pub info: ApiToken,
}

impl From<kura_services::auth::NewApiToken> for NewApiToken {
    fn from(t: kura_services::auth::NewApiToken) -> Self {
        NewApiToken {
            token: t.token,
            info: t.info.into(),
        }
    }
}

/// One of the caller's sessions.
#[derive(Serialize, JsonSchema)]
pub struct Session {
    /// The session's public id (the SHA-256 of its secret).
    pub id: String,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    /// `console` or `api`.
    pub kind: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    /// The session this request came with.
    pub current: bool,
    /// When it ends unless used again (idle timeout).
    pub idle_expires_at: Timestamp,
    /// When it ends at the latest.
    pub expires_at: Timestamp,
}

impl From<kura_services::auth::SessionView> for Session {
    fn from(v: kura_services::auth::SessionView) -> Self {
        let s = v.session;
        Session {
            id: s.id,
            tenant_id: s.tenant_id,
            user_id: s.user_id,
            kind: s.kind,
            ip: s.ip,
            user_agent: s.user_agent,
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            current: v.current,
            idle_expires_at: v.idle_expires_at,
            expires_at: v.expires_at,
        }
    }
}

/// The tenant a session belongs to, briefly.
#[derive(Serialize, JsonSchema)]
pub struct TenantRef {
    pub id: TenantId,
    pub slug: String,
    pub name: String,
}

/// A session started: the bearer token (shown once) and who it is for.
#[derive(Serialize, JsonSchema)]
pub struct Login {
    pub token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// RFC 3339.
    pub expires_at: String,
    pub user: User,
    pub tenant: TenantRef,
}

impl From<&kura_services::auth::LoginResult> for Login {
    fn from(r: &kura_services::auth::LoginResult) -> Self {
        Login {
            token: r.token.clone(),
            token_type: "Bearer".into(),
            expires_at: r.expires_at.to_rfc3339(),
            user: r.user.clone().into(),
            tenant: TenantRef {
                id: r.tenant.id.clone(),
                slug: r.tenant.slug.clone(),
                name: r.tenant.name.clone(),
            },
        }
    }
}

/// The password was right and a second factor must follow.
#[derive(Serialize, JsonSchema)]
pub struct SecondFactorRequired {
    /// Always true.
    pub mfa_required: bool,
    /// Send with the second factor to `POST /api/v1/auth/mfa`.
    pub challenge: String,
    /// What the user can answer with: `totp`, `recovery_code`, `passkey`.
    pub methods: Vec<String>,
}

/// The answer to a password log-in: a session, or a second-factor challenge.
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
pub enum LoginAnswer {
    Session(Box<Login>),
    SecondFactor(SecondFactorRequired),
}

/// The caller, their tenant and their grants.
#[derive(Serialize, JsonSchema)]
pub struct Me {
    pub user: User,
    pub tenant: MeTenant,
    pub grants: Vec<Grant>,
}

#[derive(Serialize, JsonSchema)]
pub struct MeTenant {
    pub id: TenantId,
    pub slug: String,
    pub name: String,
    /// The zone times are shown in.
    pub time_zone: String,
}

#[derive(Serialize, JsonSchema)]
pub struct MfaStatus {
    pub totp: bool,
    /// Registered passkeys.
    pub passkeys: i64,
    pub recovery_codes_left: i64,
    /// The tenant requires a second factor.
    pub required: bool,
}

impl From<kura_services::mfa::MfaStatus> for MfaStatus {
    fn from(m: kura_services::mfa::MfaStatus) -> Self {
        MfaStatus {
            totp: m.totp,
            passkeys: m.passkeys,
            recovery_codes_left: m.recovery_codes_left,
            required: m.required,
        }
    }
}

/// What a user scans to enrol TOTP.
#[derive(Serialize, JsonSchema)]
pub struct TotpEnrolment {
    /// The secret in base32, for typing in by hand.
    pub secret: String,
    pub otpauth_uri: String,
    /// The URI as a QR code, an SVG document.
    pub qr_svg: String,
}

impl From<kura_services::mfa::TotpEnrolment> for TotpEnrolment {
    fn from(t: kura_services::mfa::TotpEnrolment) -> Self {
        TotpEnrolment {
            secret: t.secret,
            otpauth_uri: t.otpauth_uri,
            qr_svg: t.qr_svg,
        }
    }
}

/// Recovery codes, shown once.
#[derive(Serialize, JsonSchema)]
pub struct RecoveryCodes {
    pub recovery_codes: Vec<String>,
}

/// A WebAuthn ceremony started: its token, and the options for
/// `navigator.credentials.create()` / `.get()` (`{"publicKey": …}`).
#[derive(Serialize, JsonSchema)]
pub struct Ceremony {
    pub ceremony: String,
    pub options: Value,
}

impl From<kura_services::passkeys::CeremonyStart> for Ceremony {
    fn from(c: kura_services::passkeys::CeremonyStart) -> Self {
        Ceremony {
            ceremony: c.ceremony,
            options: c.options,
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct Passkey {
    pub id: String,
    pub name: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

impl From<kura_services::passkeys::PasskeyView> for Passkey {
    fn from(p: kura_services::passkeys::PasskeyView) -> Self {
        Passkey {
            id: p.id,
            name: p.name,
            created_at: p.created_at,
            last_used_at: p.last_used_at,
        }
    }
}

/// A passkey added; recovery codes when the user had none (shown once).
#[derive(Serialize, JsonSchema)]
pub struct PasskeyAdded {
    pub passkey: Passkey,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_codes: Option<Vec<String>>,
}

impl From<kura_services::passkeys::PasskeyAdded> for PasskeyAdded {
    fn from(p: kura_services::passkeys::PasskeyAdded) -> Self {
        PasskeyAdded {
            passkey: p.passkey.into(),
            recovery_codes: p.recovery_codes,
        }
    }
}

/// How many sessions ended.
#[derive(Serialize, JsonSchema)]
pub struct Ended {
    pub ended: u64,
}

/// A sign-up whose e-mail is verified: send this token to complete it.
#[derive(Serialize, JsonSchema)]
pub struct SignupToken {
    pub signup_token: String,
}
