//! Log-in (password, second factor, passkeys), log-out, invitations and password resets.

use super::*;

pub(super) fn routes() -> Vec<(RouteDoc, MethodRouter<AppState>)> {
    vec![
        route!(post, "/api/v1/auth/login", Auth, false, 200, "Log in with tenant, e-mail and password; returns a bearer token, or `mfa_required` with a challenge for POST /auth/mfa", login, body: LoginBody, resp: wire::LoginAnswer),
        route!(post, "/api/v1/auth/mfa", Auth, false, 200, "Second step of a log-in: the challenge and a TOTP or recovery code, or a passkey (`ceremony` + `credential`); returns a bearer token", login_mfa, body: MfaBody, resp: wire::Login),
        route!(post, "/api/v1/auth/mfa/passkey/options", Auth, false, 200, "Start answering a log-in challenge with a passkey: `ceremony` and the options for navigator.credentials.get()", mfa_passkey_options, body: ChallengeBody, resp: wire::Ceremony),
        route!(post, "/api/v1/auth/passkey/options", Auth, false, 200, "Start a passwordless log-in into a tenant: `ceremony` and the options for navigator.credentials.get() (discoverable credentials)", passkey_login_options, body: TenantBody, resp: wire::Ceremony),
        route!(post, "/api/v1/auth/passkey", Auth, false, 200, "Finish a passwordless log-in with the passkey's assertion; returns a bearer token", passkey_login, body: AssertionBody, resp: wire::Login),
        route!(
            post,
            "/api/v1/auth/logout",
            Auth,
            true,
            204,
            "End the current session",
            logout
        ),
        route!(post, "/api/v1/invitations/accept", Auth, false, 200, "Set a password with an invitation token; returns a bearer token", accept_invitation, body: AcceptBody, resp: wire::Login),
        route!(post, "/api/v1/auth/password-reset", Auth, false, 202, "Ask for a password-reset link by mail (same answer whether or not the account exists)", password_reset_request, body: ResetRequestBody, resp: wire::Status),
        route!(post, "/api/v1/auth/password-reset/complete", Auth, false, 204, "Set a new password with a reset token; every session of the user ends", password_reset_complete, body: AcceptBody),
    ]
}

#[derive(Deserialize, JsonSchema)]
struct LoginBody {
    tenant: String,
    email: String,
    password: String,
}

async fn login(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(b): ApiJson<LoginBody>,
) -> ApiResult {
    match s
        .services
        .login(&b.tenant, &b.email, &b.password, SessionKind::Api, &ctx)
        .await?
    {
        LoginOutcome::Session(r) => ok(wire::LoginAnswer::Session(Box::new(login_json(&r)))),
        LoginOutcome::SecondFactor { challenge, methods } => ok(wire::LoginAnswer::SecondFactor(
            wire::SecondFactorRequired {
                mfa_required: true,
                challenge,
                methods: methods.into_iter().map(String::from).collect(),
            },
        )),
    }
}

#[derive(Deserialize, JsonSchema)]
struct MfaBody {
    /// From `POST /auth/login`.
    challenge: String,
    /// A 6-digit TOTP code or a recovery code.
    #[serde(default)]
    code: Option<String>,
    /// From `POST /auth/mfa/passkey/options`, with `credential`.
    #[serde(default)]
    ceremony: Option<String>,
    /// The PublicKeyCredential from `navigator.credentials.get()`, binary fields base64url.
    #[serde(default)]
    credential: Option<Value>,
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

#[derive(Deserialize, JsonSchema)]
struct ChallengeBody {
    challenge: String,
}

async fn mfa_passkey_options(
    State(s): State<AppState>,
    ApiJson(b): ApiJson<ChallengeBody>,
) -> ApiResult {
    ok(wire::Ceremony::from(
        s.services.start_passkey_mfa(&b.challenge).await?,
    ))
}

#[derive(Deserialize, JsonSchema)]
struct TenantBody {
    /// The tenant ID (slug).
    tenant: String,
}

async fn passkey_login_options(
    State(s): State<AppState>,
    ApiJson(b): ApiJson<TenantBody>,
) -> ApiResult {
    ok(wire::Ceremony::from(
        s.services
            .start_passkey_login(&b.tenant, SessionKind::Api)
            .await?,
    ))
}

#[derive(Deserialize, JsonSchema)]
struct AssertionBody {
    ceremony: String,
    credential: Value,
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

async fn logout(Call(s, a, ctx): Call) -> ApiResult {
    s.services.logout(&a, &ctx).await?;
    no_content()
}

#[derive(Deserialize, JsonSchema)]
struct AcceptBody {
    token: String,
    password: String,
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

#[derive(Deserialize, JsonSchema)]
struct ResetRequestBody {
    tenant: String,
    email: String,
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
        Json(wire::Status {
            status: "if the account exists, a reset link has been mailed".into(),
        }),
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
