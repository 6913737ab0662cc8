//! The OpenAPI 3.1 document, generated from [`crate::api::routes`].

use serde_json::{json, Map, Value};

pub fn document() -> Value {
    let mut paths = Map::new();
    for (doc, _) in crate::api::routes() {
        let params: Vec<Value> = doc
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        let mut responses = Map::new();
        let ok_desc = if doc.ok == 204 {
            "No content"
        } else {
            "Success"
        };
        let mut ok = json!({ "description": ok_desc });
        if doc.ok != 204 {
            ok["content"] = json!({ "application/json": { "schema": { "type": "object" } } });
        }
        responses.insert(doc.ok.to_string(), ok);
        let err = |d: &str| json!({ "description": d, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } });
        if doc.body.is_some() {
            responses.insert("400".into(), err("Malformed request body"));
            responses.insert("422".into(), err("Invalid input"));
        }
        if doc.auth {
            responses.insert("401".into(), err("Not authenticated"));
            responses.insert("403".into(), err("Not allowed"));
            responses.insert("404".into(), err("Not found (also for other tenants' ids)"));
        }
        let method = doc.method.to_string();
        let op_id = format!(
            "{}{}",
            method,
            doc.path
                .split('/')
                .filter(|s| !s.is_empty() && *s != "api" && *s != "v1")
                .map(|s| {
                    let s = s.trim_matches(|c| c == '{' || c == '}');
                    let mut c = s.chars();
                    c.next()
                        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                        .unwrap_or_default()
                        .replace(['-', '_', '.'], "")
                })
                .collect::<String>()
        );
        let mut op = json!({
            "summary": doc.summary,
            "operationId": op_id,
            "tags": [doc.area.tag()],
            "parameters": params,
            "responses": responses,
        });
        if let Some(schema) = doc.body {
            op["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": schema() } } });
        }
        op["security"] = if doc.auth {
            json!([{ "bearer": [] }, { "cookie": [] }])
        } else {
            json!([])
        };
        let entry = paths
            .entry(doc.path.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = entry {
            m.insert(method, op);
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Kura API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Multi-tenant secure workspace. Authenticate with POST /api/v1/auth/login and send the token as `Authorization: Bearer <token>`. Errors are `{\"error\":{\"code\",\"message\"}}` with an `x-request-id` header."
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer" },
                "cookie": { "type": "apiKey", "in": "cookie", "name": "__Host-kura_session", "description": "Console session; state-changing requests also need the x-csrf-token header" }
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": { "error": { "type": "object", "required": ["code", "message"], "properties": { "code": { "type": "string" }, "message": { "type": "string" } } } }
                }
            }
        }
    })
}
