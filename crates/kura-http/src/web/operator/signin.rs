//! Operator sign-in by one-time link, and sign-out.

use super::*;

// ---------------------------------------------------------------- sign-in

#[derive(Template)]
#[template(path = "op_login.html")]
struct LoginTpl {
    p: OpPage,
    /// The link being confirmed, when it can still be used.
    link: Option<String>,
    used: bool,
}

fn anon(tr: Tr, title: &'static str, csrf: &str, flash: &Flash) -> OpPage {
    OpPage {
        tr,
        title,
        name: None,
        csrf: csrf.to_string(),
        nav: "",
        notice: flash.notice(&tr),
        error: flash.error(&tr),
        back: "/operator/login".into(),
    }
}

/// How to sign in (there is no password: the CLI makes a link).
pub(super) async fn login_info(v: Visitor, Query(flash): Query<Flash>) -> Response {
    let p = anon(v.tr, "op.login.title", "", &flash);
    html(
        StatusCode::OK,
        LoginTpl {
            p,
            link: None,
            used: false,
        }
        .render(),
    )
}

pub(super) async fn login_confirm(
    State(s): State<AppState>,
    v: Visitor,
    Path(link): Path<String>,
    Query(flash): Query<Flash>,
) -> Response {
    let pending = s
        .services
        .operator_link_pending(&link)
        .await
        .unwrap_or(false);
    if !pending {
        let p = anon(v.tr, "op.login.title", "", &flash);
        return html(
            StatusCode::GONE,
            LoginTpl {
                p,
                link: None,
                used: true,
            }
            .render(),
        );
    }
    let (token, pre) = pre_csrf(&s);
    let p = anon(v.tr, "op.login.title", &token, &flash);
    let mut res = html(
        StatusCode::OK,
        LoginTpl {
            p,
            link: Some(link),
            used: false,
        }
        .render(),
    );
    set_cookie(&mut res, &pre);
    res
}

pub(super) async fn login_submit(
    State(s): State<AppState>,
    v: Visitor,
    Path(link): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if !pre_csrf_ok(&v, &f.csrf) {
        return csrf_rejected(&format!("/operator/login/{link}"));
    }
    match s.services.operator_redeem_link(&link, &v.ctx).await {
        Ok((_, token)) => {
            let secure = if s.http.secure_cookies {
                "; Secure"
            } else {
                ""
            };
            let mut res = Redirect::to("/operator").into_response();
            set_cookie(
                &mut res,
                &format!(
                    "{}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECS}{secure}",
                    cookie_name(&s)
                ),
            );
            set_cookie(&mut res, &clear_cookie(s.csrf_cookie_name()));
            res
        }
        Err(_) => Redirect::to("/operator/login?err=op_link").into_response(),
    }
}

pub(super) async fn logout(
    State(s): State<AppState>,
    c: OpConsole,
    Form(f): Form<CsrfForm>,
) -> Response {
    if !c.csrf_ok(&f.csrf) {
        return csrf_rejected("/operator");
    }
    if let Err(e) = s.services.operator_logout(&c.auth, &c.ctx).await {
        tracing::error!(error = %e, "operator log-out failed");
    }
    let mut res = Redirect::to("/operator/login?out=1").into_response();
    set_cookie(&mut res, &clear_cookie(cookie_name(&s)));
    res
}
