//! The caller's own account: profile, language, sessions, API tokens, second factors, passkeys.

use super::*;

pub(super) fn routes() -> Vec<(RouteDoc, MethodRouter<AppState>)> {
    vec![
        route!(get, "/api/v1/me/tokens", Auth, true, 200, "The caller's personal API tokens (never the secrets)", list_tokens, resp: wire::Items<wire::ApiToken>),
        route!(post, "/api/v1/me/tokens", Auth, true, 201, "Create a personal API token (scopes `<area>:read|write`, expires_in_days ≤ 365); the secret is returned once", create_token, body: TokenBody, resp: wire::NewApiToken),
        route!(
            delete,
            "/api/v1/me/tokens/{token_id}",
            Auth,
            true,
            204,
            "Revoke one of the caller's API tokens",
            revoke_token
        ),
        route!(get, "/api/v1/me/mfa", Auth, true, 200, "The caller's second factors and recovery codes left", mfa_status, resp: wire::MfaStatus),
        route!(post, "/api/v1/me/mfa/totp", Auth, true, 200, "Start authenticator-app enrolment: secret, otpauth URI and QR code (SVG)", totp_start, resp: wire::TotpEnrolment),
        route!(post, "/api/v1/me/mfa/totp/confirm", Auth, true, 200, "Confirm enrolment with a current code; returns 10 recovery codes, shown once", totp_confirm, body: CodeBody, resp: wire::RecoveryCodes),
        route!(post, "/api/v1/me/mfa/totp/disable", Auth, true, 204, "Turn the authenticator app off (a current or recovery code)", totp_disable, body: CodeBody),
        route!(get, "/api/v1/me/mfa/passkeys", Auth, true, 200, "The caller's passkeys", list_passkeys, resp: wire::Items<wire::Passkey>),
        route!(post, "/api/v1/me/mfa/passkeys/options", Auth, true, 200, "Start registering a passkey: `ceremony` and the options for navigator.credentials.create()", passkey_register_options, resp: wire::Ceremony),
        route!(post, "/api/v1/me/mfa/passkeys", Auth, true, 201, "Finish registering a passkey with the authenticator's answer; the first second factor comes with 10 recovery codes", passkey_register, body: RegisterBody, resp: wire::PasskeyAdded),
        route!(
            delete,
            "/api/v1/me/mfa/passkeys/{passkey_id}",
            Auth,
            true,
            204,
            "Remove one of the caller's passkeys",
            passkey_delete
        ),
        route!(get, "/api/v1/me", Me, true, 200, "The caller: user, tenant and grants", me, resp: wire::Me),
        route!(put, "/api/v1/me/locale", Me, true, 204, "Set the caller's console language (ja, en or null)", set_locale, body: LocaleBody),
        route!(get, "/api/v1/sessions", Auth, true, 200, "The caller's live sessions (device, address, last use; `current` marks this one)", list_my_sessions, resp: wire::Items<wire::Session>),
        route!(
            delete,
            "/api/v1/sessions/{session_id}",
            Auth,
            true,
            204,
            "End one of the caller's sessions",
            end_my_session
        ),
    ]
}

async fn list_passkeys(Call(s, a, _): Call) -> ApiResult {
    items::<wire::Passkey, _>(s.services.list_passkeys(&a).await?)
}

async fn passkey_register_options(Call(s, a, _): Call) -> ApiResult {
    ok(wire::Ceremony::from(
        s.services.start_passkey_registration(&a).await?,
    ))
}

#[derive(Deserialize, JsonSchema)]
struct RegisterBody {
    /// From `POST /me/mfa/passkeys/options`.
    ceremony: String,
    /// A label, e.g. the device.
    #[serde(default)]
    name: String,
    /// The PublicKeyCredential from `navigator.credentials.create()`, binary fields
    /// base64url.
    credential: Value,
}

async fn passkey_register(Call(s, a, ctx): Call, ApiJson(b): ApiJson<RegisterBody>) -> ApiResult {
    let added = s
        .services
        .finish_passkey_registration(&a, &b.ceremony, &b.name, b.credential, &ctx)
        .await?;
    created(wire::PasskeyAdded::from(added))
}

async fn passkey_delete(Call(s, a, ctx): Call, Path(id): Path<PasskeyId>) -> ApiResult {
    s.services.delete_passkey(&a, &id, &ctx).await?;
    no_content()
}

async fn list_tokens(Call(s, a, _): Call) -> ApiResult {
    items::<wire::ApiToken, _>(s.services.list_api_tokens(&a).await?)
}

async fn create_token(Call(s, a, ctx): Call, ApiJson(b): ApiJson<TokenBody>) -> ApiResult {
    let t = s
        .services
        .create_api_token(&a, &b.name, b.scopes, b.expires_in_days, &ctx)
        .await?;
    created(wire::NewApiToken::from(t))
}

async fn revoke_token(Call(s, a, ctx): Call, Path(id): Path<ApiTokenId>) -> ApiResult {
    s.services.revoke_api_token(&a, &id, &ctx).await?;
    no_content()
}

#[derive(Deserialize, JsonSchema)]
struct CodeBody {
    code: String,
}

async fn mfa_status(Call(s, a, _): Call) -> ApiResult {
    ok(wire::MfaStatus::from(s.services.mfa_status(&a).await?))
}

async fn totp_start(Call(s, a, ctx): Call) -> ApiResult {
    ok(wire::TotpEnrolment::from(
        s.services.start_totp(&a, &ctx).await?,
    ))
}

async fn totp_confirm(Call(s, a, ctx): Call, ApiJson(b): ApiJson<CodeBody>) -> ApiResult {
    let codes = s.services.confirm_totp(&a, &b.code, &ctx).await?;
    ok(wire::RecoveryCodes {
        recovery_codes: codes,
    })
}

async fn totp_disable(Call(s, a, ctx): Call, ApiJson(b): ApiJson<CodeBody>) -> ApiResult {
    s.services.disable_totp(&a, &b.code, &ctx).await?;
    no_content()
}

async fn me(Auth(a): Auth) -> ApiResult {
    // Everything is already in the authenticated context: no further query.
    ok(wire::Me {
        user: a.user.into(),
        tenant: wire::MeTenant {
            id: a.tenant.id,
            slug: a.tenant.slug,
            name: a.tenant.name,
            time_zone: a.tenant.settings.time_zone,
        },
        grants: a.grants.into_iter().map(Into::into).collect(),
    })
}

#[derive(Deserialize, JsonSchema)]
struct LocaleBody {
    /// `ja`, `en`, or null for the tenant's default.
    locale: Option<String>,
}

async fn set_locale(Call(s, a, ctx): Call, ApiJson(b): ApiJson<LocaleBody>) -> ApiResult {
    s.services
        .set_my_locale(&a, b.locale.as_deref(), &ctx)
        .await?;
    no_content()
}

async fn list_my_sessions(Call(s, a, _): Call) -> ApiResult {
    items::<wire::Session, _>(s.services.my_sessions(&a).await?)
}

async fn end_my_session(Call(s, a, ctx): Call, Path(id): Path<SessionId>) -> ApiResult {
    s.services.end_my_session(&a, &id, &ctx).await?;
    no_content()
}
