//! Wire types: what the API sends. Each is built here from a store row or a service result
//! (`From`), so what leaves the server is decided in kura-http — a field a row gains stays
//! inside until a wire type names it. Each derives `JsonSchema`; the OpenAPI document's
//! response schemas are generated from them, and the suite checks real responses against
//! those schemas.

use kura_domain::authz::{Action, BuiltinRole, Scope};
use kura_domain::tenant::{TenantSettings, TenantStatus};
use kura_domain::user::{UserKind, UserStatus};
use kura_domain::{ContactId, FolderId, GrantId, ProjectId, RoleId, TenantId, Timestamp, UserId};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};

/// File content or an export: bytes of the media type the route names.
pub struct Binary;

impl JsonSchema for Binary {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Binary".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "format": "binary" })
    }
}

/// A list.
#[derive(Serialize, JsonSchema)]
pub struct Items<T> {
    pub items: Vec<T>,
}

impl<T> Items<T> {
    pub fn of<R: Into<T>>(rows: impl IntoIterator<Item = R>) -> Self {
        Items {
            items: rows.into_iter().map(Into::into).collect(),
        }
    }
}

/// A page of a keyset-paged list: `next` is the cursor for the following page (`after=`),
/// absent at the end.
#[derive(Serialize, JsonSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// A page of a log: `next_before` is the `before=` of the following page.
#[derive(Serialize, JsonSchema)]
pub struct LogPage<T> {
    pub items: Vec<T>,
    pub next_before: Option<i64>,
}

/// A short answer for a request that was accepted.
#[derive(Serialize, JsonSchema)]
pub struct Status {
    pub status: String,
}

/// Labels, tags and custom attributes of a folder, project or file (DATA-2).
#[derive(Serialize, JsonSchema)]
pub struct Labels {
    /// Own classification level; null inherits from the parent.
    pub label: Option<String>,
    pub tags: Vec<String>,
    pub attributes: Map<String, Value>,
}

impl From<kura_store::Labels> for Labels {
    fn from(l: kura_store::Labels) -> Self {
        Labels {
            label: l.label,
            tags: l.tags,
            attributes: l.attributes,
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct Folder {
    #[serde(flatten)]
    pub labels: Labels,
    pub id: FolderId,
    pub parent_id: Option<FolderId>,
    pub name: String,
    pub created_by: Option<UserId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<kura_store::workspace::Folder> for Folder {
    fn from(f: kura_store::workspace::Folder) -> Self {
        Folder {
            labels: f.labels.into(),
            id: f.id,
            parent_id: f.parent_id,
            name: f.name,
            created_by: f.created_by,
            created_at: f.created_at,
            updated_at: f.updated_at,
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct Project {
    #[serde(flatten)]
    pub labels: Labels,
    pub id: ProjectId,
    pub folder_id: FolderId,
    pub name: String,
    pub created_by: Option<UserId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<kura_store::workspace::Project> for Project {
    fn from(p: kura_store::workspace::Project) -> Self {
        Project {
            labels: p.labels.into(),
            id: p.id,
            folder_id: p.folder_id,
            name: p.name,
            created_by: p.created_by,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct File {
    #[serde(flatten)]
    pub labels: Labels,
    pub id: String,
    pub project_id: ProjectId,
    pub name: String,
    pub current_version: i64,
    /// Set while the file is in the trash.
    pub deleted_at: Option<Timestamp>,
    pub created_by: Option<UserId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<kura_store::files::File> for File {
    fn from(f: kura_store::files::File) -> Self {
        File {
            labels: f.labels.into(),
            id: f.id,
            project_id: f.project_id,
            name: f.name,
            current_version: f.current_version,
            deleted_at: f.deleted_at,
            created_by: f.created_by,
            created_at: f.created_at,
            updated_at: f.updated_at,
        }
    }
}

/// One version of a file (its blob and key stay inside).
#[derive(Serialize, JsonSchema)]
pub struct Version {
    pub file_id: String,
    pub version: i64,
    pub size: i64,
    /// SHA-256 of the plaintext, hex.
    pub sha256: String,
    pub content_type: String,
    pub created_by: Option<UserId>,
    pub created_at: Timestamp,
}

impl From<kura_store::files::Version> for Version {
    fn from(v: kura_store::files::Version) -> Self {
        Version {
            file_id: v.file_id,
            version: v.version,
            size: v.size,
            sha256: v.sha256,
            content_type: v.content_type,
            created_by: v.created_by,
            created_at: v.created_at,
        }
    }
}

/// A file found by a listing or search, with its effective classification level.
#[derive(Serialize, JsonSchema)]
pub struct FoundFile {
    #[serde(flatten)]
    pub file: File,
    pub effective_label: String,
}

impl From<kura_services::files::FoundFile> for FoundFile {
    fn from(f: kura_services::files::FoundFile) -> Self {
        FoundFile {
            file: f.file.into(),
            effective_label: f.effective_label,
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct FileWithVersions {
    pub file: File,
    pub versions: Vec<Version>,
}

#[derive(Serialize, JsonSchema)]
pub struct FileAndVersion {
    pub file: File,
    pub version: Version,
}

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

#[derive(Serialize, JsonSchema)]
pub struct Tenant {
    pub id: TenantId,
    pub slug: String,
    pub name: String,
    pub status: TenantStatus,
    pub settings: TenantSettings,
    pub created_at: Timestamp,
}

impl From<kura_store::tenants::Tenant> for Tenant {
    fn from(t: kura_store::tenants::Tenant) -> Self {
        Tenant {
            id: t.id,
            slug: t.slug,
            name: t.name,
            status: t.status,
            settings: t.settings,
            created_at: t.created_at,
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct Contact {
    pub id: ContactId,
    pub name: String,
    pub email: String,
    /// What the contact is for: `notices`, `security`, `billing`, `technical`.
    pub purpose: String,
    pub created_at: Timestamp,
}

impl From<kura_store::tenants::Contact> for Contact {
    fn from(c: kura_store::tenants::Contact) -> Self {
        Contact {
            id: c.id,
            name: c.name,
            email: c.email,
            purpose: c.purpose,
            created_at: c.created_at,
        }
    }
}

/// One audit event as stored, with its hash (LOG-2).
#[derive(Serialize, JsonSchema)]
pub struct AuditEvent {
    /// The tenant whose chain this is.
    pub tenant_id: String,
    /// Position in the chain, from 1.
    pub seq: i64,
    /// Milliseconds since the epoch, UTC.
    pub at: i64,
    /// `user`, `operator` or `system`.
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub action: String,
    pub target_kind: Option<String>,
    pub target_id: Option<String>,
    /// `success`, `failure` or `denied`.
    pub result: String,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    pub details: Value,
    pub prev_hash: String,
    pub hash: String,
}

impl From<kura_store::audit::StoredEvent> for AuditEvent {
    fn from(e: kura_store::audit::StoredEvent) -> Self {
        let r = e.record;
        AuditEvent {
            tenant_id: r.tenant_id,
            seq: r.seq,
            at: r.at,
            actor_kind: r.actor_kind,
            actor_id: r.actor_id,
            action: r.action,
            target_kind: r.target_kind,
            target_id: r.target_id,
            result: r.result,
            ip: r.ip,
            request_id: r.request_id,
            details: r.details,
            prev_hash: r.prev_hash,
            hash: e.hash,
        }
    }
}

/// What a verified chain covers.
#[derive(Serialize, JsonSchema)]
pub struct VerifyReport {
    pub tenant_id: String,
    pub events: i64,
    /// The chain is verified from here (0 unless older entries were purged).
    pub base_seq: i64,
    pub head_seq: i64,
    pub head_hash: String,
}

/// The outcome of verifying the caller's audit chain: `report` when it verifies, `error`
/// naming the first problem when it does not.
#[derive(Serialize, JsonSchema)]
pub struct Verification {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<VerifyReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl<E: std::fmt::Display> From<Result<kura_store::audit::VerifyReport, E>> for Verification {
    fn from(r: Result<kura_store::audit::VerifyReport, E>) -> Self {
        match r {
            Ok(v) => Verification {
                ok: true,
                report: Some(VerifyReport {
                    tenant_id: v.tenant_id,
                    events: v.events,
                    base_seq: v.base_seq,
                    head_seq: v.head_seq,
                    head_hash: v.head_hash,
                }),
                error: None,
            },
            Err(e) => Verification {
                ok: false,
                report: None,
                error: Some(e.to_string()),
            },
        }
    }
}

/// A signed statement that a tenant's chain had `hash` at `seq` (LOG-5).
#[derive(Serialize, JsonSchema)]
pub struct Checkpoint {
    pub tenant_id: String,
    pub seq: i64,
    pub hash: String,
    /// Milliseconds since the epoch.
    pub at: i64,
    /// `interval` or `purge`.
    pub kind: String,
    pub key_id: String,
    pub signature: String,
}

impl From<kura_store::audit::Checkpoint> for Checkpoint {
    fn from(c: kura_store::audit::Checkpoint) -> Self {
        Checkpoint {
            tenant_id: c.tenant_id,
            seq: c.seq,
            hash: c.hash,
            at: c.at,
            kind: c.kind,
            key_id: c.key_id,
            signature: c.signature,
        }
    }
}

/// The newest signed checkpoint of the caller's chain, if there is one yet.
#[derive(Serialize, JsonSchema)]
pub struct NewestCheckpoint {
    pub checkpoint: Option<Checkpoint>,
}

/// One HTTP request (LOG-1).
#[derive(Serialize, JsonSchema)]
pub struct AccessEntry {
    /// Row id (for paging with `before=`).
    pub id: i64,
    pub tenant_id: Option<TenantId>,
    pub user_id: Option<UserId>,
    pub at: Timestamp,
    pub ip: Option<String>,
    pub method: String,
    pub path: String,
    pub status: i64,
    pub latency_us: i64,
    pub bytes: i64,
    pub request_id: Option<String>,
}

impl From<kura_store::access_log::AccessEntry> for AccessEntry {
    fn from(e: kura_store::access_log::AccessEntry) -> Self {
        AccessEntry {
            id: e.id,
            tenant_id: e.tenant_id,
            user_id: e.user_id,
            at: e.at,
            ip: e.ip,
            method: e.method,
            path: e.path,
            status: e.status,
            latency_us: e.latency_us,
            bytes: e.bytes,
            request_id: e.request_id,
        }
    }
}

/// The tenant's usage now (OPS-4).
#[derive(Serialize, JsonSchema)]
pub struct Usage {
    pub files: i64,
    pub versions: i64,
    /// Plaintext bytes of every stored version (each blob counted once).
    pub bytes_stored: i64,
    pub uploads: i64,
    pub upload_bytes: i64,
    pub downloads: i64,
    pub download_bytes: i64,
}

impl From<kura_store::usage::Usage> for Usage {
    fn from(u: kura_store::usage::Usage) -> Self {
        Usage {
            files: u.files,
            versions: u.versions,
            bytes_stored: u.bytes_stored,
            uploads: u.uploads,
            upload_bytes: u.upload_bytes,
            downloads: u.downloads,
            download_bytes: u.download_bytes,
        }
    }
}

/// One day's (or month's) figures.
#[derive(Serialize, JsonSchema)]
pub struct UsageDay {
    /// `YYYY-MM-DD` (or `YYYY-MM`) in the tenant's time zone.
    pub day: String,
    pub logins: i64,
    pub active_users: i64,
    pub uploads: i64,
    pub upload_bytes: i64,
    pub downloads: i64,
    pub download_bytes: i64,
    pub folders: i64,
    pub projects: i64,
    pub files: i64,
    pub bytes_stored: i64,
}

impl From<kura_store::usage::Daily> for UsageDay {
    fn from(d: kura_store::usage::Daily) -> Self {
        UsageDay {
            day: d.day,
            logins: d.logins,
            active_users: d.active_users,
            uploads: d.uploads,
            upload_bytes: d.upload_bytes,
            downloads: d.downloads,
            download_bytes: d.download_bytes,
            folders: d.folders,
            projects: d.projects,
            files: d.files,
            bytes_stored: d.bytes_stored,
        }
    }
}

/// Daily (or monthly) usage over a period.
#[derive(Serialize, JsonSchema)]
pub struct UsageReport {
    pub from: String,
    pub to: String,
    /// `day` or `month`.
    pub by: String,
    pub time_zone: String,
    pub items: Vec<UsageDay>,
}

/// What a tenant admin sees of backups (OPS-1).
#[derive(Serialize, JsonSchema)]
pub struct BackupSummary {
    pub last_verified_generation: Option<String>,
    pub last_verified_at: Option<Timestamp>,
    /// Where backups are kept.
    pub region: String,
    pub generations_kept: usize,
}

impl From<kura_services::backup::BackupSummary> for BackupSummary {
    fn from(b: kura_services::backup::BackupSummary) -> Self {
        BackupSummary {
            last_verified_generation: b.last_verified_generation,
            last_verified_at: b.last_verified_at,
            region: b.region,
            generations_kept: b.generations_kept,
        }
    }
}

/// A service notice (OPS-5).
#[derive(Serialize, JsonSchema)]
pub struct Notice {
    pub id: String,
    /// `spec_change`, `major_ui_change`, `planned_maintenance` or `emergency`.
    pub kind: String,
    pub title_ja: String,
    pub title_en: String,
    pub body_ja: String,
    pub body_en: String,
    pub published_at: Timestamp,
    pub effective_at: Timestamp,
    pub show_until: Timestamp,
    /// Tenant ids; empty: every tenant.
    pub tenants: Vec<String>,
    pub withdrawn_at: Option<Timestamp>,
}

impl From<kura_store::notices::Notice> for Notice {
    fn from(n: kura_store::notices::Notice) -> Self {
        Notice {
            id: n.id,
            kind: n.kind,
            title_ja: n.title_ja,
            title_en: n.title_en,
            body_ja: n.body_ja,
            body_en: n.body_en,
            published_at: n.published_at,
            effective_at: n.effective_at,
            show_until: n.show_until,
            tenants: n.tenants,
            withdrawn_at: n.withdrawn_at,
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct IncidentUpdate {
    pub at: Timestamp,
    pub status: String,
    pub text_ja: String,
    pub text_en: String,
}

/// An incident (OPS-6).
#[derive(Serialize, JsonSchema)]
pub struct Incident {
    pub id: String,
    pub title_ja: String,
    pub title_en: String,
    /// `low`, `medium`, `high`, `critical`.
    pub severity: String,
    pub scope: String,
    /// Affected tenant ids; empty: every tenant.
    pub tenants: Vec<String>,
    pub detected_at: Timestamp,
    /// When the affected tenants must have been notified.
    pub deadline_at: Timestamp,
    /// `1bd` (one Japanese business day) or `<n>h`.
    pub target: String,
    pub notified_at: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    pub updates: Vec<IncidentUpdate>,
}

impl From<kura_store::incidents::Incident> for Incident {
    fn from(i: kura_store::incidents::Incident) -> Self {
        Incident {
            id: i.id,
            title_ja: i.title_ja,
            title_en: i.title_en,
            severity: i.severity,
            scope: i.scope,
            tenants: i.tenants,
            detected_at: i.detected_at,
            deadline_at: i.deadline_at,
            target: i.target,
            notified_at: i.notified_at,
            resolved_at: i.resolved_at,
            updates: i
                .updates
                .into_iter()
                .map(|u| IncidentUpdate {
                    at: u.at,
                    status: u.status,
                    text_ja: u.text_ja,
                    text_en: u.text_en,
                })
                .collect(),
        }
    }
}

/// Readiness: the database and the blob storage answer.
#[derive(Serialize, JsonSchema)]
pub struct Readiness {
    /// `ready` or `unavailable`.
    pub status: String,
    /// `ok` or `unreachable`.
    pub database: String,
    /// `ok` or `unreachable`.
    pub storage: String,
}

#[derive(Serialize, JsonSchema)]
pub struct Availability {
    pub days: i64,
    pub samples: i64,
    /// Percent of probes that found the service up; null without samples.
    pub percent: Option<f64>,
    pub meets_slo: Option<bool>,
}

/// The public status (OPS-7).
#[derive(Serialize, JsonSchema)]
pub struct StatusReport {
    /// `operational`, `degraded` (an open incident) or `down` (the last probe failed).
    pub state: String,
    pub checked_at: Option<Timestamp>,
    pub slo_percent: f64,
    pub availability: Vec<Availability>,
    pub planned_downtime_hours_this_year: f64,
    pub planned_downtime_budget_hours: f64,
    /// Open incidents: [title ja, title en, severity, detected at].
    pub incidents: Vec<(String, String, String, Timestamp)>,
    /// Upcoming planned maintenance for every tenant: [title ja, title en, from, until].
    pub maintenance: Vec<(String, String, Timestamp, Timestamp)>,
}

impl From<kura_services::status::StatusReport> for StatusReport {
    fn from(r: kura_services::status::StatusReport) -> Self {
        StatusReport {
            state: r.state,
            checked_at: r.checked_at,
            slo_percent: r.slo_percent,
            availability: r
                .availability
                .into_iter()
                .map(|a| Availability {
                    days: a.days,
                    samples: a.samples,
                    percent: a.percent,
                    meets_slo: a.meets_slo,
                })
                .collect(),
            planned_downtime_hours_this_year: r.planned_downtime_hours_this_year,
            planned_downtime_budget_hours: r.planned_downtime_budget_hours,
            incidents: r.incidents,
            maintenance: r.maintenance,
        }
    }
}

/// The deployment's audit signing key.
#[derive(Serialize, JsonSchema)]
pub struct AuditKey {
    /// Always `Ed25519`.
    pub alg: String,
    pub key_id: String,
    /// Hex.
    pub public_key: String,
}

/// This OpenAPI document.
#[derive(Serialize, JsonSchema)]
#[schemars(transparent)]
pub struct OpenApiDocument(pub Map<String, Value>);
