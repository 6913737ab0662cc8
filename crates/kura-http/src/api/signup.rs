//! Self-service sign-up.

use super::*;

pub(super) fn routes() -> Vec<(RouteDoc, MethodRouter<AppState>)> {
    vec![
        route!(
            post,
            "/api/v1/signup",
            Auth,
            false,
            202,
            "Sign-up, step 1 (when enabled): mails a verification code to the address; the same answer for every address",
            signup_start,
            signup_start_schema
        ),
        route!(
            post,
            "/api/v1/signup/verify",
            Auth,
            false,
            200,
            "Sign-up, step 2: the code (15 minutes, 5 attempts); returns a single-use signup_token",
            signup_verify,
            signup_verify_schema
        ),
        route!(
            post,
            "/api/v1/signup/complete",
            Auth,
            false,
            200,
            "Sign-up, step 3: tenant ID and name, your name and password; provisions the tenant and returns a bearer token (a welcome mail follows)",
            signup_complete,
            signup_complete_schema
        ),
    ]
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
