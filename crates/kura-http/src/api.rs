//! The JSON API, `/api/v1`. Every route is declared once in [`routes`], with the metadata the
//! OpenAPI document is generated from, so an undocumented route cannot exist.

use crate::error::ApiError;
use crate::extract::{ApiJson, Auth, Ctx};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put, MethodRouter};
use axum::{Json, Router};
use kura_domain::authz::Scope;
use kura_domain::tenant::TenantSettings;
use kura_domain::{ContactId, FolderId, GrantId, ProjectId, RoleId, UserId};
use kura_services::auth::{LoginResult, SessionKind};
use kura_services::files::DownloadOutcome;
use kura_services::mfa::SecondFactor;
use kura_services::users::{NewUser, UserChange};
use kura_services::workspace::Patch;
use serde::Deserialize;
use serde_json::{json, Value};

type ApiResult = Result<Response, ApiError>;

/// One documented route.
pub struct RouteDoc {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub tag: &'static str,
    /// Needs a session or bearer token.
    pub auth: bool,
    /// JSON schema of the request body, if any.
    pub body: Option<fn() -> Value>,
    /// Success status.
    pub ok: u16,
}

macro_rules! route {
    ($m:ident, $path:literal, $tag:literal, $auth:literal, $ok:literal, $summary:literal, $h:expr) => {
        (
            RouteDoc {
                method: stringify!($m),
                path: $path,
                summary: $summary,
                tag: $tag,
                auth: $auth,
                body: None,
                ok: $ok,
            },
            $m($h),
        )
    };
    ($m:ident, $path:literal, $tag:literal, $auth:literal, $ok:literal, $summary:literal, $h:expr, $body:expr) => {
        (
            RouteDoc {
                method: stringify!($m),
                path: $path,
                summary: $summary,
                tag: $tag,
                auth: $auth,
                body: Some($body),
                ok: $ok,
            },
            $m($h),
        )
    };
}

/// Every route of the API and the health endpoints.
pub fn routes() -> Vec<(RouteDoc, MethodRouter<AppState>)> {
    vec![
        route!(
            get,
            "/healthz",
            "health",
            false,
            200,
            "Liveness: the process answers",
            healthz
        ),
        route!(
            get,
            "/readyz",
            "health",
            false,
            200,
            "Readiness: the database answers",
            readyz
        ),
        route!(
            get,
            "/api/v1/openapi.json",
            "health",
            false,
            200,
            "This OpenAPI 3.1 document",
            openapi_doc
        ),
        route!(
            post,
            "/api/v1/auth/login",
            "auth",
            false,
            200,
            "Log in with tenant, e-mail and password; returns a bearer token, or `mfa_required` with a challenge for POST /auth/mfa",
            login,
            login_schema
        ),
        route!(
            post,
            "/api/v1/auth/mfa",
            "auth",
            false,
            200,
            "Second step of a log-in: the challenge and a TOTP or recovery code, or a passkey (`ceremony` + `credential`); returns a bearer token",
            login_mfa,
            mfa_schema
        ),
        route!(
            post,
            "/api/v1/signup",
            "auth",
            false,
            202,
            "Sign-up, step 1 (when enabled): mails a verification code to the address; the same answer for every address",
            signup_start,
            signup_start_schema
        ),
        route!(
            post,
            "/api/v1/signup/verify",
            "auth",
            false,
            200,
            "Sign-up, step 2: the code (15 minutes, 5 attempts); returns a single-use signup_token",
            signup_verify,
            signup_verify_schema
        ),
        route!(
            post,
            "/api/v1/signup/complete",
            "auth",
            false,
            200,
            "Sign-up, step 3: tenant ID and name, your name and password; provisions the tenant and returns a bearer token (a welcome mail follows)",
            signup_complete,
            signup_complete_schema
        ),
        route!(
            post,
            "/api/v1/auth/mfa/passkey/options",
            "auth",
            false,
            200,
            "Start answering a log-in challenge with a passkey: `ceremony` and the options for navigator.credentials.get()",
            mfa_passkey_options,
            challenge_schema
        ),
        route!(
            post,
            "/api/v1/auth/passkey/options",
            "auth",
            false,
            200,
            "Start a passwordless log-in into a tenant: `ceremony` and the options for navigator.credentials.get() (discoverable credentials)",
            passkey_login_options,
            tenant_schema
        ),
        route!(
            post,
            "/api/v1/auth/passkey",
            "auth",
            false,
            200,
            "Finish a passwordless log-in with the passkey's assertion; returns a bearer token",
            passkey_login,
            assertion_schema
        ),
        route!(
            get,
            "/api/v1/me/tokens",
            "auth",
            true,
            200,
            "The caller's personal API tokens (never the secrets)",
            list_tokens
        ),
        route!(
            post,
            "/api/v1/me/tokens",
            "auth",
            true,
            201,
            "Create a personal API token (scopes `<area>:read|write`, expires_in_days ≤ 365); the secret is returned once",
            create_token,
            token_schema
        ),
        route!(
            delete,
            "/api/v1/me/tokens/{token_id}",
            "auth",
            true,
            204,
            "Revoke one of the caller's API tokens",
            revoke_token
        ),
        route!(
            get,
            "/api/v1/me/mfa",
            "auth",
            true,
            200,
            "The caller's second factors and recovery codes left",
            mfa_status
        ),
        route!(
            post,
            "/api/v1/me/mfa/totp",
            "auth",
            true,
            200,
            "Start authenticator-app enrolment: secret, otpauth URI and QR code (SVG)",
            totp_start
        ),
        route!(
            post,
            "/api/v1/me/mfa/totp/confirm",
            "auth",
            true,
            200,
            "Confirm enrolment with a current code; returns 10 recovery codes, shown once",
            totp_confirm,
            code_schema
        ),
        route!(
            post,
            "/api/v1/me/mfa/totp/disable",
            "auth",
            true,
            204,
            "Turn the authenticator app off (a current or recovery code)",
            totp_disable,
            code_schema
        ),
        route!(
            get,
            "/api/v1/me/mfa/passkeys",
            "auth",
            true,
            200,
            "The caller's passkeys",
            list_passkeys
        ),
        route!(
            post,
            "/api/v1/me/mfa/passkeys/options",
            "auth",
            true,
            200,
            "Start registering a passkey: `ceremony` and the options for navigator.credentials.create()",
            passkey_register_options
        ),
        route!(
            post,
            "/api/v1/me/mfa/passkeys",
            "auth",
            true,
            201,
            "Finish registering a passkey with the authenticator's answer; the first second factor comes with 10 recovery codes",
            passkey_register,
            register_schema
        ),
        route!(
            delete,
            "/api/v1/me/mfa/passkeys/{passkey_id}",
            "auth",
            true,
            204,
            "Remove one of the caller's passkeys",
            passkey_delete
        ),
        route!(
            post,
            "/api/v1/auth/logout",
            "auth",
            true,
            204,
            "End the current session",
            logout
        ),
        route!(
            post,
            "/api/v1/invitations/accept",
            "auth",
            false,
            200,
            "Set a password with an invitation token; returns a bearer token",
            accept_invitation,
            accept_schema
        ),
        route!(
            post,
            "/api/v1/auth/password-reset",
            "auth",
            false,
            202,
            "Ask for a password-reset link by mail (same answer whether or not the account exists)",
            password_reset_request,
            reset_request_schema
        ),
        route!(
            post,
            "/api/v1/auth/password-reset/complete",
            "auth",
            false,
            204,
            "Set a new password with a reset token; every session of the user ends",
            password_reset_complete,
            accept_schema
        ),
        route!(
            get,
            "/api/v1/me",
            "me",
            true,
            200,
            "The caller: user, tenant and grants",
            me
        ),
        route!(
            put,
            "/api/v1/me/locale",
            "me",
            true,
            204,
            "Set the caller's console language (ja, en or null)",
            set_locale,
            locale_schema
        ),
        route!(
            get,
            "/api/v1/tenant",
            "tenant",
            true,
            200,
            "The caller's tenant and its settings",
            get_tenant
        ),
        route!(
            put,
            "/api/v1/tenant/settings",
            "tenant",
            true,
            200,
            "Replace the tenant's settings (contract admin): every setting must be given (422 names any missing or unknown key); use PATCH to change some",
            put_settings,
            settings_schema
        ),
        route!(
            patch,
            "/api/v1/tenant/settings",
            "tenant",
            true,
            200,
            "Change some of the tenant's settings (contract admin): the keys given are merged into the current settings (nested objects too); unknown keys are refused with 422 naming them",
            patch_settings,
            settings_schema
        ),
        route!(
            get,
            "/api/v1/tenant/usage",
            "tenant",
            true,
            200,
            "Usage: files, versions, bytes stored, uploads, downloads (tenant admin)",
            tenant_usage
        ),
        route!(
            get,
            "/api/v1/notices",
            "workspace",
            true,
            200,
            "Service notices for the caller's tenant that are still current (kind, titles and bodies in ja/en, effective time)",
            list_notices
        ),
        route!(
            get,
            "/api/v1/incidents",
            "workspace",
            true,
            200,
            "Open incidents the caller's tenant was notified of, with their updates",
            list_incidents
        ),
        route!(
            get,
            "/api/v1/tenant/backups",
            "tenant",
            true,
            200,
            "The newest verified backup generation holding this tenant, where backups are kept and how many generations",
            tenant_backups
        ),
        route!(
            get,
            "/api/v1/tenant/usage/daily",
            "tenant",
            true,
            200,
            "Usage per day (from, to: YYYY-MM-DD in the tenant's zone; default the last 30 days) or per month (by=month): logins, active users, uploads, downloads and bytes, folders, projects, files, bytes stored",
            usage_daily
        ),
        route!(
            get,
            "/api/v1/tenant/contacts",
            "tenant",
            true,
            200,
            "Additional contacts (contract admin)",
            list_contacts
        ),
        route!(
            post,
            "/api/v1/tenant/contacts",
            "tenant",
            true,
            201,
            "Add a contact (contract admin)",
            add_contact,
            contact_schema
        ),
        route!(
            delete,
            "/api/v1/tenant/contacts/{contact_id}",
            "tenant",
            true,
            204,
            "Remove a contact (contract admin)",
            delete_contact
        ),
        route!(
            get,
            "/api/v1/users",
            "users",
            true,
            200,
            "List users",
            list_users
        ),
        route!(
            post,
            "/api/v1/users",
            "users",
            true,
            201,
            "Invite a user (the link is mailed)",
            invite_user,
            invite_schema
        ),
        route!(
            post,
            "/api/v1/service-accounts",
            "users",
            true,
            201,
            "Create a service account: a user that cannot log in and acts only through API tokens issued for it, with the roles granted to it",
            create_service_account,
            service_account_schema
        ),
        route!(
            get,
            "/api/v1/users/{user_id}/tokens",
            "users",
            true,
            200,
            "A service account's API tokens (never the secrets)",
            list_service_tokens
        ),
        route!(
            post,
            "/api/v1/users/{user_id}/tokens",
            "users",
            true,
            201,
            "Issue an API token for a service account (scopes, expiry ≤ 365 days); the secret is returned once",
            create_service_token,
            token_schema
        ),
        route!(
            delete,
            "/api/v1/users/{user_id}/tokens/{token_id}",
            "users",
            true,
            204,
            "Revoke a service account's API token",
            revoke_service_token
        ),
        route!(
            get,
            "/api/v1/users/{user_id}",
            "users",
            true,
            200,
            "One user with grants",
            get_user
        ),
        route!(
            delete,
            "/api/v1/users/{user_id}",
            "users",
            true,
            204,
            "Delete a user",
            delete_user
        ),
        route!(
            get,
            "/api/v1/sessions",
            "auth",
            true,
            200,
            "The caller's live sessions (device, address, last use; `current` marks this one)",
            list_my_sessions
        ),
        route!(
            delete,
            "/api/v1/sessions/{session_id}",
            "auth",
            true,
            204,
            "End one of the caller's sessions",
            end_my_session
        ),
        route!(
            post,
            "/api/v1/users/{user_id}/sessions/end",
            "users",
            true,
            200,
            "End every session of a user (user management)",
            end_user_sessions
        ),
        route!(
            post,
            "/api/v1/users/{user_id}/freeze",
            "users",
            true,
            204,
            "Freeze a user; their sessions end at once",
            freeze_user
        ),
        route!(
            post,
            "/api/v1/users/{user_id}/unfreeze",
            "users",
            true,
            204,
            "Unfreeze a user",
            unfreeze_user
        ),
        route!(
            get,
            "/api/v1/users/{user_id}/grants",
            "users",
            true,
            200,
            "A user's role grants",
            list_grants
        ),
        route!(
            post,
            "/api/v1/users/{user_id}/grants",
            "users",
            true,
            201,
            "Grant a role at a scope",
            add_grant,
            grant_schema
        ),
        route!(
            delete,
            "/api/v1/users/{user_id}/grants/{grant_id}",
            "users",
            true,
            204,
            "Revoke a grant",
            remove_grant
        ),
        route!(
            get,
            "/api/v1/roles",
            "roles",
            true,
            200,
            "Built-in and custom roles",
            list_roles
        ),
        route!(
            post,
            "/api/v1/roles",
            "roles",
            true,
            201,
            "Define a custom role from actions",
            create_role,
            role_schema
        ),
        route!(
            get,
            "/api/v1/roles/{role_id}",
            "roles",
            true,
            200,
            "One custom role",
            get_role
        ),
        route!(
            delete,
            "/api/v1/roles/{role_id}",
            "roles",
            true,
            204,
            "Delete a custom role and its grants",
            delete_role
        ),
        route!(
            get,
            "/api/v1/folders",
            "workspace",
            true,
            200,
            "Folders the caller can view (filters: q, label, tag, attr=key:value)",
            list_folders
        ),
        route!(
            post,
            "/api/v1/folders",
            "workspace",
            true,
            201,
            "Create a folder",
            create_folder,
            folder_schema
        ),
        route!(
            get,
            "/api/v1/folders/{folder_id}",
            "workspace",
            true,
            200,
            "One folder",
            get_folder
        ),
        route!(
            patch,
            "/api/v1/folders/{folder_id}",
            "workspace",
            true,
            200,
            "Rename and/or move a folder",
            update_folder,
            folder_patch_schema
        ),
        route!(
            delete,
            "/api/v1/folders/{folder_id}",
            "workspace",
            true,
            204,
            "Delete an empty folder",
            delete_folder
        ),
        route!(
            get,
            "/api/v1/projects",
            "workspace",
            true,
            200,
            "Projects the caller can view (filters: q, label, tag, attr=key:value)",
            list_projects
        ),
        route!(
            post,
            "/api/v1/projects",
            "workspace",
            true,
            201,
            "Create a project in a folder",
            create_project,
            project_schema
        ),
        route!(
            get,
            "/api/v1/projects/{project_id}",
            "workspace",
            true,
            200,
            "One project",
            get_project
        ),
        route!(
            patch,
            "/api/v1/projects/{project_id}",
            "workspace",
            true,
            200,
            "Rename and/or move a project",
            update_project,
            project_patch_schema
        ),
        route!(
            delete,
            "/api/v1/projects/{project_id}",
            "workspace",
            true,
            204,
            "Delete a project",
            delete_project
        ),
        (
            RouteDoc {
                method: "post",
                path: "/api/v1/projects/{project_id}/files",
                summary: "Upload a file (raw body, ?name=); a new version if the name exists",
                tag: "files",
                auth: true,
                body: Some(upload_schema),
                ok: 201,
            },
            post(upload_file).layer(axum::extract::DefaultBodyLimit::disable()),
        ),
        route!(
            get,
            "/api/v1/projects/{project_id}/files",
            "files",
            true,
            200,
            "Files of a project (filters: q, tag, label, attr=key:value; sort, order, after, limit)",
            list_files
        ),
        route!(
            get,
            "/api/v1/search",
            "files",
            true,
            200,
            "Files in every project the caller can see (q, tag, label, attr=key:value; sort, order, after, limit)",
            search
        ),
        route!(
            get,
            "/api/v1/files/{file_id}",
            "files",
            true,
            200,
            "A file with its versions",
            file_info
        ),
        route!(
            get,
            "/api/v1/files/{file_id}/content",
            "files",
            true,
            200,
            "Download (?version=N); Range, ETag and If-None-Match supported",
            download_file
        ),
        route!(
            delete,
            "/api/v1/files/{file_id}",
            "files",
            true,
            204,
            "Move a file to the trash",
            delete_file
        ),
        route!(
            get,
            "/api/v1/projects/{project_id}/trash",
            "files",
            true,
            200,
            "Files in the project's trash",
            list_trash
        ),
        route!(
            post,
            "/api/v1/files/{file_id}/restore",
            "files",
            true,
            200,
            "Take a file out of the trash",
            restore_file
        ),
        route!(
            post,
            "/api/v1/files/{file_id}/purge",
            "files",
            true,
            204,
            "Delete a trashed file for good (versions and blobs)",
            purge_file
        ),
        route!(
            post,
            "/api/v1/files/{file_id}/versions/{version}/restore",
            "files",
            true,
            201,
            "Make an old version current again (as a new version)",
            restore_version
        ),
        route!(
            patch,
            "/api/v1/files/{file_id}",
            "files",
            true,
            200,
            "Rename, move (project_id), or set the label, tags and attributes of a file",
            patch_file,
            label_patch_schema
        ),
        route!(
            get,
            "/api/v1/audit",
            "logs",
            true,
            200,
            "Audit events, newest first: filters from, to (RFC 3339 or a date/time in the tenant's zone), user, action (`file.` for a prefix), ip, result; keyset paging with before=next_before",
            list_audit
        ),
        route!(
            get,
            "/api/v1/audit/export",
            "logs",
            true,
            200,
            "Export the audit log (same filters), streamed: format=jsonl (signed; `kura audit verify FILE --public-key K` checks it offline) or csv",
            export_audit
        ),
        route!(
            get,
            "/status.json",
            "health",
            false,
            200,
            "Public status: state, open incidents, planned maintenance, availability over 30 and 90 days measured by Kura's probes against the SLO, planned downtime against the yearly budget",
            status_json
        ),
        route!(
            get,
            "/.well-known/kura-audit-key",
            "health",
            false,
            200,
            "The deployment's Ed25519 public key that signs audit checkpoints and exports",
            audit_key
        ),
        route!(
            get,
            "/api/v1/audit/verify",
            "logs",
            true,
            200,
            "Verify the tenant's audit hash chain: every hash and link, and every signed checkpoint stored with it",
            verify_audit
        ),
        route!(
            post,
            "/api/v1/audit/verify",
            "logs",
            true,
            200,
            "Verify the tenant's audit hash chain against a signed checkpoint kept outside Kura (from the daily mail, the console or GET /audit/checkpoint) besides the stored ones",
            verify_audit_with,
            checkpoint_schema
        ),
        route!(
            get,
            "/api/v1/audit/checkpoint",
            "logs",
            true,
            200,
            "The newest signed checkpoint of the tenant's audit chain (seq, hash, time, signature): keep it outside Kura to detect a later cut or rewrite",
            newest_checkpoint
        ),
        route!(
            get,
            "/api/v1/access-log",
            "logs",
            true,
            200,
            "Access log, newest first: filters from, to, user, ip, status (`4xx` or exact), path (prefix); keyset paging with before=next_before",
            list_access
        ),
        route!(
            get,
            "/api/v1/access-log/export",
            "logs",
            true,
            200,
            "Export the access log (same filters), streamed: format=csv or jsonl",
            export_access
        ),
    ]
}

pub fn router() -> Router<AppState> {
    let mut r = Router::new();
    for (doc, mr) in routes() {
        r = r.route(doc.path, mr);
    }
    r.route("/api/{*rest}", axum::routing::any(api_not_found))
}

async fn api_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no_route", "no such API route")
}

fn created(v: impl serde::Serialize) -> ApiResult {
    Ok((StatusCode::CREATED, Json(v)).into_response())
}
fn ok(v: impl serde::Serialize) -> ApiResult {
    Ok(Json(v).into_response())
}
fn no_content() -> ApiResult {
    Ok(StatusCode::NO_CONTENT.into_response())
}
fn items(v: impl serde::Serialize) -> ApiResult {
    ok(json!({ "items": v }))
}

async fn healthz() -> ApiResult {
    ok(json!({ "status": "ok" }))
}

async fn readyz(State(s): State<AppState>) -> ApiResult {
    let (db, blobs) = s.services.readiness().await;
    let word = |up: bool| if up { "ok" } else { "unreachable" };
    let body = json!({
        "status": if db && blobs { "ready" } else { "unavailable" },
        "database": word(db),
        "storage": word(blobs),
    });
    if db && blobs {
        ok(body)
    } else {
        let mut res = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        Ok(res)
    }
}

async fn openapi_doc() -> ApiResult {
    ok(crate::openapi::document())
}

fn login_json(r: &LoginResult) -> Value {
    json!({
        "token": r.token,
        "token_type": "Bearer",
        "expires_at": r.expires_at.to_rfc3339(),
        "user": r.user,
        "tenant": { "id": r.tenant.id, "slug": r.tenant.slug, "name": r.tenant.name },
    })
}

#[derive(Deserialize)]
struct LoginBody {
    tenant: String,
    email: String,
    password: String,
}
fn login_schema() -> Value {
    json!({"type":"object","required":["tenant","email","password"],"properties":{"tenant":{"type":"string","description":"tenant slug"},"email":{"type":"string"},"password":{"type":"string"}}})
}
async fn login(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(b): ApiJson<LoginBody>,
) -> ApiResult {
    match s
        .services
        .login(&b.tenant, &b.email, &b.password, SessionKind::Api, &ctx)
        .await
    {
        Ok(r) => ok(login_json(&r)),
        Err(kura_services::ServiceError::MfaRequired { challenge, methods }) => ok(json!({
            "mfa_required": true,
            "challenge": challenge,
            "methods": methods,
        })),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct MfaBody {
    challenge: String,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    ceremony: Option<String>,
    #[serde(default)]
    credential: Option<Value>,
}
fn mfa_schema() -> Value {
    json!({"type":"object","required":["challenge"],"properties":{"challenge":{"type":"string"},"code":{"type":"string","description":"6-digit TOTP code or a recovery code"},"ceremony":{"type":"string","description":"from POST /auth/mfa/passkey/options, with `credential`"},"credential":{"type":"object","description":"the PublicKeyCredential from navigator.credentials.get(), binary fields base64url"}}})
}
async fn login_mfa(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(b): ApiJson<MfaBody>,
) -> ApiResult {
    let factor = match (&b.code, &b.ceremony, b.credential) {
        (Some(code), None, None) => SecondFactor::Code(code),
        (None, Some(ceremony), Some(credential)) => SecondFactor::Passkey {
            ceremony,
            credential,
        },
        _ => {
            return Err(ApiError::bad_request(
                "send either `code`, or `ceremony` and `credential`",
            ))
        }
    };
    let r = s
        .services
        .complete_mfa_login(&b.challenge, factor, &ctx)
        .await?;
    ok(login_json(&r))
}

#[derive(Deserialize)]
struct ChallengeBody {
    challenge: String,
}
fn challenge_schema() -> Value {
    json!({"type":"object","required":["challenge"],"properties":{"challenge":{"type":"string","description":"from POST /auth/login"}}})
}
async fn mfa_passkey_options(
    State(s): State<AppState>,
    ApiJson(b): ApiJson<ChallengeBody>,
) -> ApiResult {
    ok(s.services.start_passkey_mfa(&b.challenge).await?)
}

#[derive(Deserialize)]
struct TenantBody {
    tenant: String,
}
fn tenant_schema() -> Value {
    json!({"type":"object","required":["tenant"],"properties":{"tenant":{"type":"string","description":"tenant slug"}}})
}
async fn passkey_login_options(
    State(s): State<AppState>,
    ApiJson(b): ApiJson<TenantBody>,
) -> ApiResult {
    ok(s.services
        .start_passkey_login(&b.tenant, SessionKind::Api)
        .await?)
}

#[derive(Deserialize)]
struct AssertionBody {
    ceremony: String,
    credential: Value,
}
fn assertion_schema() -> Value {
    json!({"type":"object","required":["ceremony","credential"],"properties":{"ceremony":{"type":"string"},"credential":{"type":"object","description":"the PublicKeyCredential from navigator.credentials.get(), binary fields base64url"}}})
}
async fn passkey_login(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(b): ApiJson<AssertionBody>,
) -> ApiResult {
    let r = s
        .services
        .complete_passkey_login(&b.ceremony, b.credential, &ctx)
        .await?;
    ok(login_json(&r))
}

async fn list_passkeys(State(s): State<AppState>, Auth(a): Auth) -> ApiResult {
    items(s.services.list_passkeys(&a).await?)
}
async fn passkey_register_options(State(s): State<AppState>, Auth(a): Auth) -> ApiResult {
    ok(s.services.start_passkey_registration(&a).await?)
}
#[derive(Deserialize)]
struct RegisterBody {
    ceremony: String,
    #[serde(default)]
    name: String,
    credential: Value,
}
fn register_schema() -> Value {
    json!({"type":"object","required":["ceremony","credential"],"properties":{"ceremony":{"type":"string"},"name":{"type":"string","description":"a label, e.g. the device"},"credential":{"type":"object","description":"the PublicKeyCredential from navigator.credentials.create(), binary fields base64url"}}})
}
async fn passkey_register(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    ApiJson(b): ApiJson<RegisterBody>,
) -> ApiResult {
    let added = s
        .services
        .finish_passkey_registration(&a, &b.ceremony, &b.name, b.credential, &ctx)
        .await?;
    Ok((StatusCode::CREATED, Json(json!(added))).into_response())
}
async fn passkey_delete(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    s.services.delete_passkey(&a, &id, &ctx).await?;
    no_content()
}

#[derive(Deserialize)]
struct TokenBody {
    name: String,
    scopes: Vec<String>,
    #[serde(default = "default_token_days")]
    expires_in_days: i64,
}
fn default_token_days() -> i64 {
    90
}
fn token_schema() -> Value {
    json!({"type":"object","required":["name","scopes"],"properties":{"name":{"type":"string"},"scopes":{"type":"array","items":{"type":"string","example":"files:read"}},"expires_in_days":{"type":"integer","default":90}}})
}
async fn list_tokens(State(s): State<AppState>, Auth(a): Auth) -> ApiResult {
    items(s.services.list_api_tokens(&a).await?)
}
async fn create_token(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    ApiJson(b): ApiJson<TokenBody>,
) -> ApiResult {
    let t = s
        .services
        .create_api_token(&a, &b.name, b.scopes, b.expires_in_days, &ctx)
        .await?;
    Ok((StatusCode::CREATED, Json(json!(t))).into_response())
}
async fn revoke_token(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    s.services.revoke_api_token(&a, &id, &ctx).await?;
    no_content()
}

#[derive(Deserialize)]
struct CodeBody {
    code: String,
}
fn code_schema() -> Value {
    json!({"type":"object","required":["code"],"properties":{"code":{"type":"string"}}})
}
async fn mfa_status(State(s): State<AppState>, Auth(a): Auth) -> ApiResult {
    ok(s.services.mfa_status(&a).await?)
}
async fn totp_start(State(s): State<AppState>, Ctx(ctx): Ctx, Auth(a): Auth) -> ApiResult {
    ok(s.services.start_totp(&a, &ctx).await?)
}
async fn totp_confirm(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    ApiJson(b): ApiJson<CodeBody>,
) -> ApiResult {
    let codes = s.services.confirm_totp(&a, &b.code, &ctx).await?;
    ok(json!({ "recovery_codes": codes }))
}
async fn totp_disable(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    ApiJson(b): ApiJson<CodeBody>,
) -> ApiResult {
    s.services.disable_totp(&a, &b.code, &ctx).await?;
    no_content()
}

async fn logout(State(s): State<AppState>, Ctx(ctx): Ctx, Auth(a): Auth) -> ApiResult {
    s.services.logout(&a, &ctx).await?;
    no_content()
}

#[derive(Deserialize)]
struct AcceptBody {
    token: String,
    password: String,
}
fn accept_schema() -> Value {
    json!({"type":"object","required":["token","password"],"properties":{"token":{"type":"string"},"password":{"type":"string"}}})
}
async fn accept_invitation(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(b): ApiJson<AcceptBody>,
) -> ApiResult {
    let r = s
        .services
        .accept_invitation(&b.token, &b.password, SessionKind::Api, &ctx)
        .await?;
    ok(login_json(&r))
}

#[derive(Deserialize)]
struct ResetRequestBody {
    tenant: String,
    email: String,
}
fn reset_request_schema() -> Value {
    json!({"type":"object","required":["tenant","email"],"properties":{"tenant":{"type":"string"},"email":{"type":"string"}}})
}
async fn password_reset_request(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(b): ApiJson<ResetRequestBody>,
) -> ApiResult {
    s.services
        .request_password_reset(&b.tenant, &b.email, &ctx)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "status": "if the account exists, a reset link has been mailed" })),
    )
        .into_response())
}

async fn password_reset_complete(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(b): ApiJson<AcceptBody>,
) -> ApiResult {
    s.services
        .complete_password_reset(&b.token, &b.password, &ctx)
        .await?;
    no_content()
}

async fn me(Auth(a): Auth) -> ApiResult {
    // Everything is already in the authenticated context: no further query.
    ok(json!({
        "user": a.user,
        "tenant": { "id": a.tenant.id, "slug": a.tenant.slug, "name": a.tenant.name, "time_zone": a.tenant.settings.time_zone },
        "grants": a.grants,
    }))
}

#[derive(Deserialize)]
struct LocaleBody {
    locale: Option<String>,
}
fn locale_schema() -> Value {
    json!({"type":"object","properties":{"locale":{"type":["string","null"],"enum":["ja","en",null]}}})
}
async fn set_locale(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    ApiJson(b): ApiJson<LocaleBody>,
) -> ApiResult {
    s.services
        .set_my_locale(&a, b.locale.as_deref(), &ctx)
        .await?;
    no_content()
}

async fn get_tenant(State(s): State<AppState>, Auth(a): Auth) -> ApiResult {
    ok(s.services.tenant_of(&a).await?)
}

fn settings_schema() -> Value {
    json!({"type":"object","properties":{
        "time_zone":{"type":"string","example":"Asia/Tokyo"},
        "default_locale":{"type":"string","enum":["ja","en"]},
        "password_policy":{"type":"object","properties":{"min_length":{"type":"integer","minimum":6},"require_letter":{"type":"boolean"},"require_digit":{"type":"boolean"},"require_symbol":{"type":"boolean"},"require_mixed_case":{"type":"boolean"},"min_strength":{"type":"integer","minimum":0,"maximum":4}}},
        "session_policy":{"type":"object","properties":{"idle_timeout_secs":{"type":"integer"},"absolute_lifetime_secs":{"type":"integer"}}}}})
}
#[derive(Deserialize)]
struct SettingsQuery {
    /// Save an IP allowlist that excludes the caller's own current address.
    #[serde(default)]
    confirm_lockout: bool,
}

async fn put_settings(
    s: State<AppState>,
    ctx: Ctx,
    a: Auth,
    q: Query<SettingsQuery>,
    b: ApiJson<Value>,
) -> ApiResult {
    save_settings(s, ctx, a, q, b, true).await
}

async fn patch_settings(
    s: State<AppState>,
    ctx: Ctx,
    a: Auth,
    q: Query<SettingsQuery>,
    b: ApiJson<Value>,
) -> ApiResult {
    save_settings(s, ctx, a, q, b, false).await
}

/// PUT (`complete`: every setting named) and PATCH (a merge) of the tenant's settings.
async fn save_settings(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    Query(q): Query<SettingsQuery>,
    ApiJson(b): ApiJson<Value>,
    complete: bool,
) -> ApiResult {
    let settings = settings_from(&a.tenant.settings, &b, complete)?;
    ok(s.services
        .update_settings(&a, settings, q.confirm_lockout, &ctx)
        .await?)
}

/// The settings a request asks for: `given` merged into `current` (objects key by key).
/// Keys the settings do not have are refused, naming them — one misspelt key must not
/// pass silently; with `complete` (PUT) every key must be given, naming the missing ones.
fn settings_from(
    current: &TenantSettings,
    given: &Value,
    complete: bool,
) -> Result<TenantSettings, ApiError> {
    let invalid = |m: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", m);
    let mut merged = serde_json::to_value(current)
        .map_err(|e| ApiError::from(kura_services::ServiceError::internal(e.to_string())))?;
    if !given.is_object() {
        return Err(invalid("the settings must be a JSON object".into()));
    }
    let (mut unknown, mut missing) = (Vec::new(), Vec::new());
    compare_keys(&merged, given, "", &mut unknown, &mut missing);
    if !unknown.is_empty() {
        return Err(invalid(format!(
            "unknown settings: {} (nothing was changed)",
            unknown.join(", ")
        )));
    }
    if complete && !missing.is_empty() {
        return Err(invalid(format!(
            "PUT replaces every setting; missing: {} (use PATCH to change some)",
            missing.join(", ")
        )));
    }
    merge_json(&mut merged, given);
    serde_json::from_value(merged).map_err(|e| invalid(format!("settings: {e}")))
}

/// Keys of `given` that `known` lacks (`unknown`), and of `known` that `given` lacks
/// (`missing`), as dotted paths, into nested objects that both have.
fn compare_keys(
    known: &Value,
    given: &Value,
    prefix: &str,
    unknown: &mut Vec<String>,
    missing: &mut Vec<String>,
) {
    let (Some(k), Some(g)) = (known.as_object(), given.as_object()) else {
        return;
    };
    for (key, v) in g {
        let path = format!("{prefix}{key}");
        match k.get(key) {
            None => unknown.push(path),
            Some(kv) if kv.is_object() => {
                compare_keys(kv, v, &format!("{path}."), unknown, missing)
            }
            Some(_) => {}
        }
    }
    for key in k.keys() {
        if !g.contains_key(key) {
            missing.push(format!("{prefix}{key}"));
        }
    }
}

/// Merges `patch` into `base`: objects key by key, anything else replaced.
fn merge_json(base: &mut Value, patch: &Value) {
    match (base.as_object_mut(), patch.as_object()) {
        (Some(b), Some(p)) => {
            for (k, v) in p {
                match b.get_mut(k) {
                    Some(bv) if bv.is_object() && v.is_object() => merge_json(bv, v),
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        _ => *base = patch.clone(),
    }
}

async fn list_contacts(State(s): State<AppState>, Ctx(ctx): Ctx, Auth(a): Auth) -> ApiResult {
    items(s.services.list_contacts(&a, &ctx).await?)
}

#[derive(Deserialize)]
struct ContactBody {
    name: String,
    email: String,
    #[serde(default = "default_purpose")]
    purpose: String,
}
fn default_purpose() -> String {
    "notices".into()
}
fn contact_schema() -> Value {
    json!({"type":"object","required":["name","email"],"properties":{"name":{"type":"string"},"email":{"type":"string"},"purpose":{"type":"string","enum":["notices","security","billing","technical"]}}})
}
async fn add_contact(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    ApiJson(b): ApiJson<ContactBody>,
) -> ApiResult {
    created(
        s.services
            .add_contact(&a, &b.name, &b.email, &b.purpose, &ctx)
            .await?,
    )
}
async fn delete_contact(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    s.services
        .delete_contact(&a, &ContactId::from_string(id), &ctx)
        .await?;
    no_content()
}

async fn list_users(State(s): State<AppState>, Ctx(ctx): Ctx, Auth(a): Auth) -> ApiResult {
    items(s.services.list_users(&a, &ctx).await?)
}

#[derive(Deserialize)]
struct ScopeBody {
    #[serde(rename = "type")]
    kind: String,
    id: Option<String>,
}
fn parse_scope(s: Option<ScopeBody>) -> Result<Scope, ApiError> {
    match s {
        None => Ok(Scope::Tenant),
        Some(ScopeBody { kind, id }) => match (kind.as_str(), id) {
            ("tenant", None) => Ok(Scope::Tenant),
            ("folder", Some(id)) => Ok(Scope::Folder(FolderId::from_string(id))),
            ("project", Some(id)) => Ok(Scope::Project(ProjectId::from_string(id))),
            _ => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                "scope: type must be tenant (no id), folder or project (with id)",
            )),
        },
    }
}
fn scope_schema() -> Value {
    json!({"type":"object","required":["type"],"properties":{"type":{"type":"string","enum":["tenant","folder","project"]},"id":{"type":"string"}}})
}

#[derive(Deserialize)]
struct InviteBody {
    email: String,
    #[serde(default)]
    display_name: String,
    locale: Option<String>,
    role: Option<String>,
    scope: Option<ScopeBody>,
    max_label: Option<String>,
}
fn invite_schema() -> Value {
    json!({"type":"object","required":["email"],"properties":{"email":{"type":"string"},"display_name":{"type":"string"},"locale":{"type":"string","enum":["ja","en"]},"role":{"type":"string","description":"contract_admin, admin, member, guest or a custom role id"},"scope":scope_schema()}})
}
async fn invite_user(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    ApiJson(b): ApiJson<InviteBody>,
) -> ApiResult {
    let role = match b.role {
        Some(r) => Some((r, parse_scope(b.scope)?)),
        None => None,
    };
    let user = s
        .services
        .invite_user(
            &a,
            NewUser {
                email: b.email,
                display_name: b.display_name,
                locale: b.locale,
                role,
                max_label: b.max_label,
            },
            &ctx,
        )
        .await?;
    created(user)
}
#[derive(Deserialize)]
struct ServiceAccountBody {
    name: String,
    role: Option<String>,
    scope: Option<ScopeBody>,
    max_label: Option<String>,
}
fn service_account_schema() -> Value {
    json!({"type":"object","required":["name"],"properties":{"name":{"type":"string"},"role":{"type":"string","description":"admin, member, guest or a custom role id"},"scope":scope_schema(),"max_label":{"type":"string"}}})
}
async fn create_service_account(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    ApiJson(b): ApiJson<ServiceAccountBody>,
) -> ApiResult {
    let role = match b.role {
        Some(r) => Some((r, parse_scope(b.scope)?)),
        None => None,
    };
    let user = s
        .services
        .create_service_account(&a, &b.name, role, b.max_label, &ctx)
        .await?;
    created(user)
}
async fn list_service_tokens(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    items(
        s.services
            .list_service_tokens(&a, &UserId::from_string(id), &ctx)
            .await?,
    )
}
async fn create_service_token(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<TokenBody>,
) -> ApiResult {
    let t = s
        .services
        .create_service_token(
            &a,
            &UserId::from_string(id),
            &b.name,
            b.scopes,
            b.expires_in_days,
            &ctx,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(json!(t))).into_response())
}
async fn revoke_service_token(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    Path((id, token)): Path<(String, String)>,
) -> ApiResult {
    s.services
        .revoke_service_token(&a, &UserId::from_string(id), &token, &ctx)
        .await?;
    no_content()
}
async fn get_user(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    let (user, grants) = s
        .services
        .get_user(&a, &UserId::from_string(id), &ctx)
        .await?;
    ok(json!({ "user": user, "grants": grants }))
}
async fn change_user(
    s: AppState,
    ctx: kura_services::RequestCtx,
    a: kura_services::auth::AuthContext,
    id: String,
    c: UserChange,
) -> ApiResult {
    s.services
        .change_user(&a, &UserId::from_string(id), c, &ctx)
        .await?;
    no_content()
}
async fn delete_user(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    change_user(s, ctx, a, id, UserChange::Delete).await
}
async fn list_my_sessions(State(s): State<AppState>, Auth(a): Auth) -> ApiResult {
    items(s.services.my_sessions(&a).await?)
}

async fn end_my_session(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    s.services.end_my_session(&a, &id, &ctx).await?;
    no_content()
}

async fn end_user_sessions(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    let ended = s
        .services
        .end_user_sessions(&a, &UserId::from_string(id), &ctx)
        .await?;
    ok(json!({ "ended": ended }))
}

async fn freeze_user(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    change_user(s, ctx, a, id, UserChange::Freeze).await
}
async fn unfreeze_user(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    change_user(s, ctx, a, id, UserChange::Unfreeze).await
}
async fn list_grants(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    let (_, grants) = s
        .services
        .get_user(&a, &UserId::from_string(id), &ctx)
        .await?;
    items(grants)
}

#[derive(Deserialize)]
struct GrantBody {
    role: String,
    scope: Option<ScopeBody>,
    /// Classification cap (DATA-3), e.g. "internal".
    max_label: Option<String>,
}
fn grant_schema() -> Value {
    json!({"type":"object","required":["role"],"properties":{"role":{"type":"string"},"scope":scope_schema(),"max_label":{"type":"string","description":"classification cap, e.g. internal"}}})
}
async fn add_grant(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<GrantBody>,
) -> ApiResult {
    let scope = parse_scope(b.scope)?;
    created(
        s.services
            .add_grant(
                &a,
                &UserId::from_string(id),
                &b.role,
                scope,
                b.max_label.as_deref(),
                &ctx,
            )
            .await?,
    )
}
async fn remove_grant(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    Path((uid, gid)): Path<(String, String)>,
) -> ApiResult {
    s.services
        .remove_grant(
            &a,
            &UserId::from_string(uid),
            &GrantId::from_string(gid),
            &ctx,
        )
        .await?;
    no_content()
}

async fn list_roles(State(s): State<AppState>, Ctx(ctx): Ctx, Auth(a): Auth) -> ApiResult {
    let custom = s.services.list_roles(&a, &ctx).await?;
    let builtin: Vec<Value> = kura_domain::BuiltinRole::ALL
        .iter()
        .map(|r| json!({ "id": r.as_str(), "name": r.as_str(), "builtin": true, "actions": r.actions().actions() }))
        .collect();
    ok(json!({ "builtin": builtin, "items": custom }))
}

#[derive(Deserialize)]
struct RoleBody {
    name: String,
    actions: Vec<String>,
}
fn role_schema() -> Value {
    let actions: Vec<&str> = kura_domain::Action::ALL
        .iter()
        .map(|a| a.as_str())
        .collect();
    json!({"type":"object","required":["name","actions"],"properties":{"name":{"type":"string"},"actions":{"type":"array","items":{"type":"string","enum":actions}}}})
}
async fn create_role(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    ApiJson(b): ApiJson<RoleBody>,
) -> ApiResult {
    created(
        s.services
            .create_role(&a, &b.name, &b.actions, &ctx)
            .await?,
    )
}
async fn get_role(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    ok(s.services
        .get_role(&a, &RoleId::from_string(id), &ctx)
        .await?)
}
async fn delete_role(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    s.services
        .delete_role(&a, &RoleId::from_string(id), &ctx)
        .await?;
    no_content()
}

/// List filters: `q` (name contains, case-insensitive), `label` (own label), `tag`.
#[derive(Deserialize, Default)]
struct ListFilter {
    q: Option<String>,
    label: Option<String>,
    tag: Option<String>,
    /// `key:value`: a custom attribute.
    attr: Option<String>,
}

impl ListFilter {
    fn keeps(&self, name: &str, l: &kura_store::Labels) -> bool {
        self.q
            .as_deref()
            .is_none_or(|q| name.to_lowercase().contains(&q.to_lowercase()))
            && self
                .label
                .as_deref()
                .is_none_or(|x| l.label.as_deref() == Some(x))
            && self
                .tag
                .as_deref()
                .is_none_or(|t| l.tags.iter().any(|x| x == t))
            && self
                .attr
                .as_deref()
                .and_then(|a| a.split_once(':'))
                .is_none_or(|(k, v)| l.attribute_is(k, v))
    }
}

async fn list_folders(
    State(s): State<AppState>,
    Auth(a): Auth,
    Query(f): Query<ListFilter>,
) -> ApiResult {
    let mut list = s.services.workspace_tree(&a).await?.folders;
    list.retain(|x| f.keeps(&x.name, &x.labels));
    items(list)
}

#[derive(Deserialize)]
struct FolderBody {
    name: String,
    parent_id: Option<String>,
    #[serde(flatten)]
    labels: kura_store::Labels,
}
fn folder_schema() -> Value {
    json!({"type":"object","required":["name"],"properties":{"name":{"type":"string"},"parent_id":{"type":["string","null"]},"label":{"type":"string"},"tags":{"type":"array","items":{"type":"string"}},"attributes":{"type":"object"}}})
}
async fn create_folder(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    ApiJson(b): ApiJson<FolderBody>,
) -> ApiResult {
    let parent = b.parent_id.map(FolderId::from_string);
    created(
        s.services
            .create_folder(&a, &b.name, parent.as_ref(), b.labels, &ctx)
            .await?,
    )
}
async fn get_folder(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    ok(s.services
        .get_folder(&a, &FolderId::from_string(id), &ctx)
        .await?)
}

/// The label fields of a PATCH body: `label` (string, or null to inherit), `tags`,
/// `attributes`; absent fields stay as they are.
type LabelPatch = (
    Option<Option<String>>,
    Option<Vec<String>>,
    Option<serde_json::Map<String, Value>>,
);
fn label_fields(body: &Value) -> Result<LabelPatch, ApiError> {
    let obj = body
        .as_object()
        .ok_or_else(|| ApiError::bad_request("body must be a JSON object"))?;
    let label = match obj.get("label") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(s)) => Some(Some(s.clone())),
        Some(_) => return Err(ApiError::bad_request("label must be a string or null")),
    };
    let tags = match obj.get("tags") {
        None => None,
        Some(v) => Some(
            serde_json::from_value::<Vec<String>>(v.clone())
                .map_err(|_| ApiError::bad_request("tags must be an array of strings"))?,
        ),
    };
    let attributes = match obj.get("attributes") {
        None => None,
        Some(Value::Object(m)) => Some(m.clone()),
        Some(_) => return Err(ApiError::bad_request("attributes must be an object")),
    };
    Ok((label, tags, attributes))
}

/// Reads `name` and a nullable parent field from a PATCH body, telling "absent" from "null".
fn patch_fields(
    body: &Value,
    parent_field: &str,
) -> Result<(Option<String>, Option<Option<String>>), ApiError> {
    let obj = body
        .as_object()
        .ok_or_else(|| ApiError::bad_request("body must be a JSON object"))?;
    let name = match obj.get("name") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(ApiError::bad_request("name must be a string")),
    };
    let parent = match obj.get(parent_field) {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(s)) => Some(Some(s.clone())),
        Some(_) => {
            return Err(ApiError::bad_request(format!(
                "{parent_field} must be a string or null"
            )))
        }
    };
    Ok((name, parent))
}
fn folder_patch_schema() -> Value {
    json!({"type":"object","properties":{"name":{"type":"string"},"parent_id":{"type":["string","null"],"description":"null moves to the top level"},"label":{"type":["string","null"],"description":"null inherits the parent's"},"tags":{"type":"array","items":{"type":"string"}},"attributes":{"type":"object"}}})
}
async fn update_folder(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<Value>,
) -> ApiResult {
    let (name, parent) = patch_fields(&b, "parent_id")?;
    let (label, tags, attributes) = label_fields(&b)?;
    let patch = Patch {
        name,
        parent: parent.map(|p| p.map(FolderId::from_string)),
        label,
        tags,
        attributes,
    };
    ok(s.services
        .update_folder(&a, &FolderId::from_string(id), patch, &ctx)
        .await?)
}
async fn delete_folder(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    s.services
        .delete_folder(&a, &FolderId::from_string(id), &ctx)
        .await?;
    no_content()
}

async fn list_projects(
    State(s): State<AppState>,
    Auth(a): Auth,
    Query(f): Query<ListFilter>,
) -> ApiResult {
    let mut list = s.services.workspace_tree(&a).await?.projects;
    list.retain(|x| f.keeps(&x.name, &x.labels));
    items(list)
}

#[derive(Deserialize)]
struct ProjectBody {
    name: String,
    folder_id: String,
    #[serde(flatten)]
    labels: kura_store::Labels,
}
fn project_schema() -> Value {
    json!({"type":"object","required":["name","folder_id"],"properties":{"name":{"type":"string"},"folder_id":{"type":"string"},"label":{"type":"string"},"tags":{"type":"array","items":{"type":"string"}},"attributes":{"type":"object"}}})
}
async fn create_project(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    ApiJson(b): ApiJson<ProjectBody>,
) -> ApiResult {
    created(
        s.services
            .create_project(
                &a,
                &FolderId::from_string(b.folder_id),
                &b.name,
                b.labels,
                &ctx,
            )
            .await?,
    )
}
async fn get_project(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    ok(s.services
        .get_project(&a, &ProjectId::from_string(id), &ctx)
        .await?)
}
fn project_patch_schema() -> Value {
    json!({"type":"object","properties":{"name":{"type":"string"},"folder_id":{"type":"string"},"label":{"type":["string","null"]},"tags":{"type":"array","items":{"type":"string"}},"attributes":{"type":"object"}}})
}
async fn update_project(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<Value>,
) -> ApiResult {
    let (name, folder) = patch_fields(&b, "folder_id")?;
    let (label, tags, attributes) = label_fields(&b)?;
    let parent = match folder {
        None => None,
        Some(Some(f)) => Some(FolderId::from_string(f)),
        Some(None) => {
            return Err(ApiError::bad_request(
                "folder_id cannot be null: a project is always in a folder",
            ))
        }
    };
    ok(s.services
        .update_project(
            &a,
            &ProjectId::from_string(id),
            Patch {
                name,
                parent,
                label,
                tags,
                attributes,
            },
            &ctx,
        )
        .await?)
}
async fn delete_project(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    s.services
        .delete_project(&a, &ProjectId::from_string(id), &ctx)
        .await?;
    no_content()
}

#[derive(Deserialize, Default)]
pub struct LogQuery {
    pub before: Option<i64>,
    pub limit: Option<i64>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub user: Option<String>,
    pub action: Option<String>,
    pub ip: Option<String>,
    /// Audit: success / failure / denied. Access log: a status (`4xx`, `404`).
    #[serde(alias = "status")]
    pub result: Option<String>,
    pub path: Option<String>,
    pub format: Option<String>,
}

impl LogQuery {
    fn time(&self, field: &str, v: &Option<String>, zone: &str) -> Result<Option<i64>, ApiError> {
        match v.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => kura_domain::Timestamp::parse_in_zone(v, zone)
                .map(|t| Some(t.0))
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "{field}: use RFC 3339 (2026-11-21T09:00:00+09:00) or a date (2026-11-21)"
                    ))
                }),
        }
    }

    /// The access-log filter.
    pub fn access_filter(&self, zone: &str) -> Result<kura_store::access_log::Filter, ApiError> {
        let text = |v: &Option<String>| {
            v.clone()
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
        };
        let status = text(&self.result);
        if let Some(st) = &status {
            let ok = (st.len() == 3 && st.ends_with("xx") && st[..1].parse::<u8>().is_ok())
                || st.parse::<u16>().is_ok();
            if !ok {
                return Err(ApiError::bad_request("status: e.g. 4xx or 404"));
            }
        }
        Ok(kura_store::access_log::Filter {
            from: self.time("from", &self.from, zone)?,
            to: self.time("to", &self.to, zone)?,
            user: text(&self.user),
            ip: text(&self.ip),
            status,
            path: text(&self.path),
        })
    }

    /// The store filter; times in the tenant's zone unless they carry an offset.
    pub fn audit_filter(&self, zone: &str) -> Result<kura_store::audit::Filter, ApiError> {
        let time = |field: &str, v: &Option<String>| self.time(field, v, zone);
        let text = |v: &Option<String>| {
            v.clone()
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
        };
        let result = text(&self.result);
        if let Some(r) = &result {
            if !["success", "failure", "denied"].contains(&r.as_str()) {
                return Err(ApiError::bad_request("result: success, failure or denied"));
            }
        }
        Ok(kura_store::audit::Filter {
            from: time("from", &self.from)?,
            to: time("to", &self.to)?,
            actor: text(&self.user),
            action: text(&self.action),
            ip: text(&self.ip),
            result,
        })
    }
}

async fn export_audit(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    Query(q): Query<LogQuery>,
) -> ApiResult {
    let format = kura_services::audit::ExportFormat::parse(q.format.as_deref().unwrap_or("jsonl"))
        .ok_or_else(|| ApiError::bad_request("format: jsonl or csv"))?;
    let filter = q.audit_filter(&a.tenant.settings.time_zone)?;
    let stream = s.services.export_audit(&a, filter, format, &ctx).await?;
    let name = format!(
        "audit-{}-{}.{}",
        a.tenant.slug,
        s.services.now().day_in_zone(&a.tenant.settings.time_zone),
        format.extension()
    );
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                format.content_type().to_string(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}

#[derive(Deserialize)]
struct UsageQuery {
    from: Option<String>,
    to: Option<String>,
    by: Option<String>,
}
async fn usage_daily(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    Query(q): Query<UsageQuery>,
) -> ApiResult {
    let zone = &a.tenant.settings.time_zone;
    let now = s.services.now();
    let to = q.to.unwrap_or_else(|| now.day_in_zone(zone));
    let from = q
        .from
        .unwrap_or_else(|| kura_domain::Timestamp(now.0 - 29 * 86_400_000).day_in_zone(zone));
    let monthly = match q.by.as_deref() {
        None | Some("day") => false,
        Some("month") => true,
        Some(_) => return Err(ApiError::bad_request("by: day or month")),
    };
    let items = s
        .services
        .usage_report(&a, &from, &to, monthly, &ctx)
        .await?;
    ok(
        json!({ "from": from, "to": to, "by": if monthly { "month" } else { "day" }, "time_zone": zone, "items": items }),
    )
}

async fn list_notices(State(s): State<AppState>, Auth(a): Auth) -> ApiResult {
    items(s.services.current_notices(&a.tenant.id).await?)
}

async fn list_incidents(State(s): State<AppState>, Auth(a): Auth) -> ApiResult {
    items(s.services.current_incidents(&a.tenant.id).await?)
}

async fn tenant_backups(State(s): State<AppState>, Ctx(ctx): Ctx, Auth(a): Auth) -> ApiResult {
    ok(s.services.backup_summary(&a, &ctx).await?)
}

async fn status_json(State(s): State<AppState>) -> ApiResult {
    ok(s.services.status_report().await?)
}

#[derive(Deserialize)]
struct SignupStart {
    email: String,
    #[serde(default)]
    locale: String,
}
fn signup_start_schema() -> Value {
    json!({"type":"object","required":["email"],"properties":{"email":{"type":"string"},"locale":{"type":"string","enum":["ja","en"]}}})
}
async fn signup_start(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(b): ApiJson<SignupStart>,
) -> ApiResult {
    s.services.start_signup(&b.email, &b.locale, &ctx).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "status": "a verification code has been mailed" })),
    )
        .into_response())
}
#[derive(Deserialize)]
struct SignupVerify {
    email: String,
    code: String,
}
fn signup_verify_schema() -> Value {
    json!({"type":"object","required":["email","code"],"properties":{"email":{"type":"string"},"code":{"type":"string"}}})
}
async fn signup_verify(State(s): State<AppState>, ApiJson(b): ApiJson<SignupVerify>) -> ApiResult {
    let t = s.services.verify_signup(&b.email, &b.code).await?;
    ok(json!({ "signup_token": t }))
}
#[derive(Deserialize)]
struct SignupComplete {
    signup_token: String,
    tenant: String,
    tenant_name: String,
    #[serde(default)]
    display_name: String,
    password: String,
}
fn signup_complete_schema() -> Value {
    json!({"type":"object","required":["signup_token","tenant","tenant_name","password"],"properties":{"signup_token":{"type":"string"},"tenant":{"type":"string","description":"the tenant ID (slug) to create"},"tenant_name":{"type":"string"},"display_name":{"type":"string"},"password":{"type":"string"}}})
}
async fn signup_complete(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(b): ApiJson<SignupComplete>,
) -> ApiResult {
    let r = s
        .services
        .complete_signup(
            &b.signup_token,
            kura_services::signup::SignupDetails {
                tenant_slug: b.tenant,
                tenant_name: b.tenant_name,
                display_name: b.display_name,
                password: b.password,
            },
            SessionKind::Api,
            &ctx,
        )
        .await?;
    ok(login_json(&r))
}

async fn audit_key(State(s): State<AppState>) -> ApiResult {
    ok(json!({
        "alg": "Ed25519",
        "key_id": s.services.signing.key_id(),
        "public_key": s.services.signing.public_key_hex(),
    }))
}

async fn list_audit(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    Query(q): Query<LogQuery>,
) -> ApiResult {
    let filter = q.audit_filter(&a.tenant.settings.time_zone)?;
    let events = s
        .services
        .query_audit(&a, &filter, q.before, q.limit.unwrap_or(100), &ctx)
        .await?;
    let next = events.last().map(|e| e.record.seq);
    ok(json!({ "items": events, "next_before": next }))
}
async fn verify_audit(State(s): State<AppState>, Ctx(ctx): Ctx, Auth(a): Auth) -> ApiResult {
    match s.services.verify_own_audit(&a, &ctx).await? {
        Ok(report) => ok(json!({ "ok": true, "report": report })),
        Err(e) => ok(json!({ "ok": false, "error": e.to_string() })),
    }
}
fn checkpoint_schema() -> Value {
    json!({"type":"object","required":["checkpoint"],"additionalProperties":false,"properties":{"checkpoint":{"type":"object","required":["tenant_id","seq","hash","at","kind","key_id","signature"],"properties":{"tenant_id":{"type":"string"},"seq":{"type":"integer"},"hash":{"type":"string"},"at":{"type":"integer","description":"milliseconds since the epoch"},"kind":{"type":"string"},"key_id":{"type":"string"},"signature":{"type":"string"}}}}})
}
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointBody {
    checkpoint: kura_store::audit::Checkpoint,
}
async fn verify_audit_with(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    ApiJson(b): ApiJson<CheckpointBody>,
) -> ApiResult {
    match s
        .services
        .verify_own_audit_with(&a, &b.checkpoint, &ctx)
        .await?
    {
        Ok(report) => ok(json!({ "ok": true, "report": report })),
        Err(e) => ok(json!({ "ok": false, "error": e.to_string() })),
    }
}
async fn newest_checkpoint(State(s): State<AppState>, Ctx(ctx): Ctx, Auth(a): Auth) -> ApiResult {
    let cp = s.services.newest_checkpoint(&a, &ctx).await?;
    ok(json!({ "checkpoint": cp }))
}
async fn list_access(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    Query(q): Query<LogQuery>,
) -> ApiResult {
    let filter = q.access_filter(&a.tenant.settings.time_zone)?;
    let items = s
        .services
        .query_access(&a, &filter, q.before, q.limit.unwrap_or(100), &ctx)
        .await?;
    let next = items.last().map(|e| e.id);
    ok(json!({ "items": items, "next_before": next }))
}

async fn export_access(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    Query(q): Query<LogQuery>,
) -> ApiResult {
    let format = kura_services::audit::ExportFormat::parse(q.format.as_deref().unwrap_or("csv"))
        .ok_or_else(|| ApiError::bad_request("format: jsonl or csv"))?;
    let filter = q.access_filter(&a.tenant.settings.time_zone)?;
    let stream = s.services.export_access(&a, filter, format, &ctx).await?;
    Ok(attachment(&s, &a, "access", format, stream))
}

fn attachment(
    s: &AppState,
    a: &kura_services::auth::AuthContext,
    log: &str,
    format: kura_services::audit::ExportFormat,
    stream: kura_services::audit::ExportStream,
) -> Response {
    let name = format!(
        "{log}-{}-{}.{}",
        a.tenant.slug,
        s.services.now().day_in_zone(&a.tenant.settings.time_zone),
        format.extension()
    );
    (
        [
            (
                axum::http::header::CONTENT_TYPE,
                format.content_type().to_string(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response()
}

fn upload_schema() -> Value {
    json!({"type":"string","format":"binary","description":"the file's bytes; name in the ?name= query parameter, type in Content-Type"})
}

#[derive(Deserialize)]
struct UploadQuery {
    name: Option<String>,
    /// Classification level of the file (default: inherited from the project).
    label: Option<String>,
}

async fn upload_file(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    Path(project): Path<String>,
    Query(q): Query<UploadQuery>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> ApiResult {
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_string();
    let stream = body.into_data_stream();
    let (file, version) = s
        .services
        .upload_file(
            &a,
            &ProjectId::from_string(project),
            q.name.as_deref().unwrap_or_default(),
            &content_type,
            q.label.as_deref(),
            stream,
            s.http.max_upload_bytes,
            &ctx,
        )
        .await?;
    created(json!({ "file": file, "version": version }))
}

#[derive(Deserialize, Default)]
struct PageParams {
    /// `name` (default) or `updated`.
    sort: Option<String>,
    /// `asc` (default) or `desc`.
    order: Option<String>,
    /// The `next` cursor of the previous page.
    after: Option<String>,
    /// Page size, 1-1000 (default 100).
    limit: Option<i64>,
}

/// `GET /projects/{id}/files` and `GET /search`: filters, sort and keyset paging.
fn file_search(
    project: Option<ProjectId>,
    f: ListFilter,
    pg: PageParams,
) -> Result<kura_services::files::FileSearch, ApiError> {
    let sort = match pg.sort.as_deref() {
        None | Some("name") => kura_store::files::FileSort::Name,
        Some("updated") => kura_store::files::FileSort::Updated,
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                "sort: name or updated",
            ))
        }
    };
    let descending = match pg.order.as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                "order: asc or desc",
            ))
        }
    };
    let attributes = match f.attr.as_deref() {
        None | Some("") => Vec::new(),
        Some(a) => {
            let (k, v) = a.split_once(':').ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid",
                    "attr: key:value",
                )
            })?;
            vec![(k.to_string(), v.to_string())]
        }
    };
    Ok(kura_services::files::FileSearch {
        project,
        q: f.q,
        tag: f.tag,
        label: f.label.filter(|l| !l.is_empty()),
        attributes,
        sort: Some(sort),
        descending,
        after: pg.after,
        limit: pg.limit.unwrap_or(100),
    })
}

async fn list_files(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    Path(project): Path<String>,
    Query(f): Query<ListFilter>,
    Query(pg): Query<PageParams>,
) -> ApiResult {
    let q = file_search(Some(ProjectId::from_string(project)), f, pg)?;
    let (list, next) = s.services.search_files(&a, &q, &ctx).await?;
    ok(json!({ "items": list, "next": next }))
}

async fn search(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    Query(f): Query<ListFilter>,
    Query(pg): Query<PageParams>,
) -> ApiResult {
    let q = file_search(None, f, pg)?;
    let (list, next) = s.services.search_files(&a, &q, &ctx).await?;
    ok(json!({ "items": list, "next": next }))
}

async fn file_info(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    let (file, versions) = s.services.file_info(&a, &id, &ctx).await?;
    ok(json!({ "file": file, "versions": versions }))
}

#[derive(Deserialize)]
struct DownloadQuery {
    version: Option<i64>,
}

/// Parses `bytes=a-b`, `bytes=a-` or `bytes=-n` against a size. `Err` means unsatisfiable.
fn parse_range(h: &str, size: u64) -> Option<Result<kura_services::files::ByteRange, ()>> {
    let spec = h.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None; // multiple ranges: answer with the whole file
    }
    let (a, b) = spec.split_once('-')?;
    let r = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            if n == 0 || size == 0 {
                return Some(Err(()));
            }
            (size.saturating_sub(n), size - 1)
        }
        (a, "") => (a.parse().ok()?, size.saturating_sub(1)),
        (a, b) => (
            a.parse().ok()?,
            b.parse::<u64>().ok()?.min(size.saturating_sub(1)),
        ),
    };
    if size == 0 || r.0 > r.1 || r.0 >= size {
        return Some(Err(()));
    }
    Some(Ok(kura_services::files::ByteRange {
        start: r.0,
        end: r.1,
    }))
}

/// What is needed to record a download once its stream ends.
struct DownloadRecord {
    services: kura_services::Services,
    auth: kura_services::auth::AuthContext,
    file: kura_store::files::File,
    version: kura_store::files::Version,
    ctx: kura_services::RequestCtx,
}

/// The download's stream, counting what goes out; when it ends — completely, with an
/// integrity failure, or because the client went away (the stream is dropped) — the
/// outcome is recorded on a task of its own.
fn tracked_download(
    inner: kura_services::files::ByteStream,
    record: DownloadRecord,
    want: u64,
) -> kura_services::files::ByteStream {
    struct Tracker {
        record: Option<DownloadRecord>,
        sent: u64,
        want: u64,
    }
    impl Drop for Tracker {
        fn drop(&mut self) {
            // Still unrecorded: the client went away before the end.
            let Some(r) = self.record.take() else { return };
            let outcome = DownloadOutcome::Aborted;
            let sent = self.sent;
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    if let Err(e) = r
                        .services
                        .record_download(&r.auth, &r.file, &r.version, outcome, sent, &r.ctx)
                        .await
                    {
                        tracing::warn!(error = %e, "recording a download failed");
                    }
                });
            }
        }
    }
    let tracker = Tracker {
        record: Some(record),
        sent: 0,
        want,
    };
    /// Records the outcome once (the record is taken).
    async fn finish(t: &mut Tracker, outcome: DownloadOutcome) {
        if let Some(r) = t.record.take() {
            if let Err(e) = r
                .services
                .record_download(&r.auth, &r.file, &r.version, outcome, t.sent, &r.ctx)
                .await
            {
                tracing::warn!(error = %e, "recording a download failed");
            }
        }
    }
    Box::pin(futures_util::stream::unfold(
        (inner, tracker),
        |(mut inner, mut t)| async move {
            use futures_util::StreamExt;
            let Some(item) = inner.next().await else {
                // The end (an empty file sends nothing): complete if all was sent.
                let outcome = if t.sent >= t.want {
                    DownloadOutcome::Complete
                } else {
                    DownloadOutcome::Error
                };
                finish(&mut t, outcome).await;
                return None;
            };
            let outcome = match &item {
                Ok(b) => {
                    t.sent += b.len() as u64;
                    (t.sent >= t.want).then_some(DownloadOutcome::Complete)
                }
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                    Some(DownloadOutcome::IntegrityFailure)
                }
                Err(_) => Some(DownloadOutcome::Error),
            };
            // The end is recorded before the last piece goes out, so that the record is
            // there when the client has the file; an abort is recorded when dropped.
            if let Some(outcome) = outcome {
                finish(&mut t, outcome).await;
            }
            Some((item, (inner, t)))
        },
    ))
}

async fn download_file(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    Path(id): Path<String>,
    Query(q): Query<DownloadQuery>,
    headers: axum::http::HeaderMap,
) -> ApiResult {
    use axum::http::header;
    let (file, v) = s.services.open_download(&a, &id, q.version, &ctx).await?;
    let etag = format!("\"{}-{}\"", v.sha256, v.version);
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| h.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    let size = v.size as u64;
    let range = match headers
        .get(header::RANGE)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| parse_range(h, size))
    {
        Some(Err(())) => {
            s.services
                .record_download(&a, &file, &v, DownloadOutcome::RangeNotSatisfiable, 0, &ctx)
                .await?;
            return Ok((
                StatusCode::RANGE_NOT_SATISFIABLE,
                [(header::CONTENT_RANGE, format!("bytes */{size}"))],
            )
                .into_response());
        }
        Some(Ok(r)) => Some(r),
        None => None,
    };
    let body = match s.services.read_content(&a.tenant.id, &v, range).await {
        Ok(b) => b,
        Err(e) => {
            let outcome = match e {
                kura_services::ServiceError::Tampered => DownloadOutcome::IntegrityFailure,
                _ => DownloadOutcome::Error,
            };
            if let Err(re) = s
                .services
                .record_download(&a, &file, &v, outcome, 0, &ctx)
                .await
            {
                tracing::warn!(error = %re, "recording a failed download failed");
            }
            return Err(e.into());
        }
    };
    let want = range.map(|r| r.end - r.start + 1).unwrap_or(size);
    let body = tracked_download(
        body,
        DownloadRecord {
            services: s.services.clone(),
            auth: a.clone(),
            file: file.clone(),
            version: v.clone(),
            ctx: ctx.clone(),
        },
        want,
    );
    let disposition = format!(
        "attachment; filename*=UTF-8''{}",
        crate::web::encode(&file.name)
    );
    let mut res = axum::response::Response::new(axum::body::Body::from_stream(body));
    let h = res.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, k: header::HeaderName, v: String| {
        if let Ok(v) = axum::http::HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    };
    set(h, header::CONTENT_TYPE, v.content_type.clone());
    set(h, header::ETAG, etag);
    set(h, header::ACCEPT_RANGES, "bytes".into());
    set(h, header::CONTENT_DISPOSITION, disposition);
    set(h, header::CACHE_CONTROL, "private, no-cache".into());
    match range {
        Some(r) => {
            *res.status_mut() = StatusCode::PARTIAL_CONTENT;
            let h = res.headers_mut();
            set(
                h,
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{size}", r.start, r.end),
            );
            set(h, header::CONTENT_LENGTH, (r.end - r.start + 1).to_string());
        }
        None => set(res.headers_mut(), header::CONTENT_LENGTH, size.to_string()),
    }
    Ok(res)
}

async fn delete_file(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    s.services.delete_file(&a, &id, &ctx).await?;
    no_content()
}

fn label_patch_schema() -> Value {
    json!({"type":"object","properties":{"name":{"type":"string"},"project_id":{"type":"string"},"label":{"type":["string","null"]},"tags":{"type":"array","items":{"type":"string"}},"attributes":{"type":"object"}}})
}

async fn patch_file(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<Value>,
) -> ApiResult {
    let (label, tags, attributes) = label_fields(&b)?;
    let name = match b.get("name") {
        None => None,
        Some(Value::String(n)) => Some(n.clone()),
        Some(_) => return Err(ApiError::bad_request("name must be a string")),
    };
    let project = match b.get("project_id") {
        None => None,
        Some(Value::String(p)) => Some(ProjectId::from_string(p.clone())),
        Some(_) => return Err(ApiError::bad_request("project_id must be a string")),
    };
    let labels = if label.is_some() || tags.is_some() || attributes.is_some() {
        let (file, _) = s.services.file_info(&a, &id, &ctx).await?;
        let mut l = file.labels.clone();
        if let Some(x) = label {
            l.label = x;
        }
        if let Some(x) = tags {
            l.tags = x;
        }
        if let Some(x) = attributes {
            l.attributes = x;
        }
        Some(l)
    } else {
        None
    };
    let up = kura_services::files::FileUpdate {
        name,
        project,
        labels,
    };
    ok(s.services.update_file(&a, &id, up, &ctx).await?)
}

async fn list_trash(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    Path(project): Path<String>,
) -> ApiResult {
    items(
        s.services
            .list_trash(&a, &ProjectId::from_string(project), &ctx)
            .await?,
    )
}

async fn restore_file(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    ok(s.services.restore_file(&a, &id, &ctx).await?)
}

async fn purge_file(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    s.services.purge_file(&a, &id, &ctx).await?;
    no_content()
}

async fn restore_version(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Auth(a): Auth,
    Path((id, version)): Path<(String, String)>,
) -> ApiResult {
    let version: i64 = version.parse().map_err(|_| ApiError::not_found())?;
    let (file, v) = s.services.restore_version(&a, &id, version, &ctx).await?;
    created(json!({ "file": file, "version": v }))
}

async fn tenant_usage(State(s): State<AppState>, Ctx(ctx): Ctx, Auth(a): Auth) -> ApiResult {
    ok(s.services.usage(&a, &ctx).await?)
}

#[cfg(test)]
mod tests {
    use super::parse_range;
    use kura_services::files::ByteRange;

    #[test]
    fn ranges() {
        let r = |a, b| Some(Ok(ByteRange { start: a, end: b }));
        assert_eq!(parse_range("bytes=0-9", 100), r(0, 9));
        assert_eq!(parse_range("bytes=90-", 100), r(90, 99));
        assert_eq!(parse_range("bytes=-10", 100), r(90, 99));
        assert_eq!(parse_range("bytes=95-200", 100), r(95, 99));
        assert_eq!(parse_range("bytes=100-", 100), Some(Err(())));
        assert_eq!(parse_range("bytes=5-1", 100), Some(Err(())));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
    }
}
