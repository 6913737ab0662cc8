//! The tenant: its details, settings (PUT/PATCH with key checks) and contacts.

use super::*;

pub(super) fn routes() -> Vec<(RouteDoc, MethodRouter<AppState>)> {
    vec![
        route!(get, "/api/v1/tenant", Tenant, true, 200, "The caller's tenant and its settings", get_tenant, resp: wire::Tenant),
        route!(put, "/api/v1/tenant/settings", Tenant, true, 200, "Replace the tenant's settings (contract admin): every setting must be given (422 names any missing or unknown key); use PATCH to change some", put_settings, body: TenantSettings, query: [SettingsQuery], resp: wire::Tenant),
        route!(patch, "/api/v1/tenant/settings", Tenant, true, 200, "Change some of the tenant's settings (contract admin): the keys given are merged into the current settings (nested objects too); unknown keys are refused with 422 naming them", patch_settings, body: TenantSettings, query: [SettingsQuery], resp: wire::Tenant),
        route!(get, "/api/v1/tenant/contacts", Tenant, true, 200, "Additional contacts (contract admin)", list_contacts, resp: wire::Items<wire::Contact>),
        route!(post, "/api/v1/tenant/contacts", Tenant, true, 201, "Add a contact (contract admin)", add_contact, body: ContactBody, resp: wire::Contact),
        route!(
            delete,
            "/api/v1/tenant/contacts/{contact_id}",
            Tenant,
            true,
            204,
            "Remove a contact (contract admin)",
            delete_contact
        ),
    ]
}

async fn get_tenant(Call(s, a, _): Call) -> ApiResult {
    ok(wire::Tenant::from(s.services.tenant_of(&a).await?))
}

#[derive(Deserialize, JsonSchema)]
struct SettingsQuery {
    /// Save an IP allowlist that excludes the caller's own current address.
    #[serde(default)]
    confirm_lockout: bool,
}

async fn put_settings(call: Call, q: Query<SettingsQuery>, b: ApiJson<Value>) -> ApiResult {
    save_settings(call, q, b, true).await
}

async fn patch_settings(call: Call, q: Query<SettingsQuery>, b: ApiJson<Value>) -> ApiResult {
    save_settings(call, q, b, false).await
}

/// PUT (`complete`: every setting named) and PATCH (a merge) of the tenant's settings.
async fn save_settings(
    Call(s, a, ctx): Call,
    Query(q): Query<SettingsQuery>,
    ApiJson(b): ApiJson<Value>,
    complete: bool,
) -> ApiResult {
    let settings = settings_from(&a.tenant.settings, &b, complete)?;
    ok(wire::Tenant::from(
        s.services
            .update_settings(&a, settings, q.confirm_lockout, &ctx)
            .await?,
    ))
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

async fn list_contacts(Call(s, a, ctx): Call) -> ApiResult {
    items::<wire::Contact, _>(s.services.list_contacts(&a, &ctx).await?)
}

#[derive(Deserialize, JsonSchema)]
struct ContactBody {
    name: String,
    email: String,
    /// `notices` (default), `security`, `billing` or `technical`.
    #[serde(default = "default_purpose")]
    purpose: String,
}

async fn add_contact(Call(s, a, ctx): Call, ApiJson(b): ApiJson<ContactBody>) -> ApiResult {
    created(wire::Contact::from(
        s.services
            .add_contact(&a, &b.name, &b.email, &b.purpose, &ctx)
            .await?,
    ))
}

async fn delete_contact(Call(s, a, ctx): Call, Path(id): Path<ContactId>) -> ApiResult {
    s.services.delete_contact(&a, &id, &ctx).await?;
    no_content()
}
