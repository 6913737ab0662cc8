//! Self-service sign-up.

use super::*;

// ---------------------------------------------------------------- sign-up

#[derive(Template)]
#[template(path = "signup.html")]
struct SignupTpl {
    p: Page,
    /// `email`, `code` or `details`.
    step: &'static str,
    email: String,
    token: String,
}

#[derive(Deserialize, Default)]
pub struct SignupForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    locale: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    tenant_name: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    password: String,
}

fn signup_view(
    s: &AppState,
    v: &Visitor,
    step: &'static str,
    email: String,
    token: String,
    error: Option<&str>,
) -> Response {
    let (csrf, cookie) = pre_csrf(s);
    let mut p = anon_page(v.tr, "signup.title", &csrf, "/signup");
    p.error = error.map(|e| v.tr.t(e).to_string());
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let mut res = html(
        status,
        SignupTpl {
            p,
            step,
            email,
            token,
        }
        .render(),
    );
    set_cookie(&mut res, &cookie);
    res
}

/// Sign-up (TEN-2), when enabled: e-mail → code → tenant and password.
pub async fn signup_page(State(s): State<AppState>, v: Visitor) -> Response {
    if !s.services.config.signup_enabled {
        return not_found(v).await;
    }
    signup_view(&s, &v, "email", String::new(), String::new(), None)
}

pub async fn signup_submit(
    State(s): State<AppState>,
    v: Visitor,
    Form(f): Form<SignupForm>,
) -> Response {
    if !s.services.config.signup_enabled {
        return not_found(v).await;
    }
    if !pre_csrf_ok(&v, &f.csrf) {
        return Redirect::to("/signup").into_response();
    }
    if !f.token.is_empty() {
        let r = s
            .services
            .complete_signup(
                &f.token,
                kura_services::signup::SignupDetails {
                    tenant_slug: f.tenant.clone(),
                    tenant_name: f.tenant_name.clone(),
                    display_name: f.display_name.clone(),
                    password: f.password.clone(),
                },
                SessionKind::Console,
                &v.ctx,
            )
            .await;
        return match r {
            Ok(r) => logged_in(&s, &r),
            Err(kura_services::ServiceError::Rejected { .. }) => signup_view(
                &s,
                &v,
                "email",
                String::new(),
                String::new(),
                Some("signup.expired"),
            ),
            Err(_) => signup_view(&s, &v, "details", f.email, f.token, Some("signup.rejected")),
        };
    }
    if !f.code.is_empty() {
        return match s.services.verify_signup(&f.email, &f.code).await {
            Ok(token) => signup_view(&s, &v, "details", f.email, token, None),
            Err(e) => {
                // Say what happened: wrong, expired, or tried too often.
                let key = match e {
                    kura_services::ServiceError::Rejected {
                        code: "code_expired" | "code_used",
                        ..
                    } => "signup.code_expired",
                    kura_services::ServiceError::Rejected {
                        code: "code_exhausted",
                        ..
                    } => "signup.code_exhausted",
                    _ => "signup.bad_code",
                };
                signup_view(&s, &v, "code", f.email, String::new(), Some(key))
            }
        };
    }
    match s.services.start_signup(&f.email, &f.locale, &v.ctx).await {
        Ok(()) => signup_view(&s, &v, "code", f.email, String::new(), None),
        Err(kura_services::ServiceError::RateLimited { .. }) => signup_view(
            &s,
            &v,
            "email",
            f.email,
            String::new(),
            Some("signup.rate_limited"),
        ),
        Err(_) => signup_view(
            &s,
            &v,
            "email",
            f.email,
            String::new(),
            Some("signup.bad_email"),
        ),
    }
}
