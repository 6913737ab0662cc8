//! Self-service sign-up.

use super::*;

pub(super) fn routes() -> Vec<(RouteDoc, MethodRouter<AppState>)> {
    vec![
        route!(post, "/api/v1/signup", Auth, false, 202, "Sign-up, step 1 (when enabled): mails a verification code to the address; the same answer for every address", signup_start, body: SignupStart, resp: wire::Status),
        route!(post, "/api/v1/signup/verify", Auth, false, 200, "Sign-up, step 2: the code (15 minutes, 5 attempts); returns a single-use signup_token", signup_verify, body: SignupVerify, resp: wire::SignupToken),
        route!(post, "/api/v1/signup/complete", Auth, false, 200, "Sign-up, step 3: tenant ID and name, your name and password; provisions the tenant and returns a bearer token (a welcome mail follows)", signup_complete, body: SignupComplete, resp: wire::Login),
    ]
}

#[derive(Deserialize, JsonSchema)]
struct SignupStart {
    email: String,
    /// `ja` or `en`.
    #[serde(default)]
    locale: String,
}

async fn signup_start(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(b): ApiJson<SignupStart>,
) -> ApiResult {
    s.services.start_signup(&b.email, &b.locale, &ctx).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(wire::Status {
            status: "a verification code has been mailed".into(),
        }),
    )
        .into_response())
}

#[derive(Deserialize, JsonSchema)]
struct SignupVerify {
    email: String,
    code: String,
}

async fn signup_verify(State(s): State<AppState>, ApiJson(b): ApiJson<SignupVerify>) -> ApiResult {
    let t = s.services.verify_signup(&b.email, &b.code).await?;
    ok(wire::SignupToken { signup_token: t })
}

#[derive(Deserialize, JsonSchema)]
struct SignupComplete {
    signup_token: String,
    /// The tenant ID (slug) to create.
    tenant: String,
    tenant_name: String,
    #[serde(default)]
    display_name: String,
    password: String,
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
