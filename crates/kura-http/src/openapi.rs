//! The OpenAPI 3.1 document, generated from [`crate::api::routes`]: every route's request
//! body, query parameters and response body come from its wire types (JSON Schema 2020-12,
//! which OpenAPI 3.1 uses as is). Response types are components (`$ref`); request bodies and
//! query parameters are inlined.

use schemars::generate::SchemaSettings;
use serde_json::{json, Map, Value};

/// The query parameters a wire type describes: one per property.
fn query_params(schema: &Value) -> Vec<Value> {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(props) = schema["properties"].as_object() else {
        return Vec::new();
    };
    props
        .iter()
        .map(|(name, p)| {
            let mut p = p.clone();
            let description = p
                .as_object_mut()
                .and_then(|o| o.remove("description"))
                .unwrap_or(Value::Null);
            // A parameter is absent rather than null.
            if let Some(types) = p["type"].as_array().cloned() {
                let kept: Vec<Value> = types.into_iter().filter(|t| t != "null").collect();
                p["type"] = if kept.len() == 1 {
                    kept[0].clone()
                } else {
                    Value::Array(kept)
                };
            }
            let mut param = json!({
                "name": name,
                "in": "query",
                "required": required.contains(&name.as_str()),
                "schema": p,
            });
            if !description.is_null() {
                param["description"] = description;
            }
            param
        })
        .collect()
}

pub fn document() -> Value {
    let mut paths = Map::new();
    // Responses: what the server writes, named types as components.
    let mut out_gen = SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        })
        .for_serialize()
        .into_generator();
    // Requests and query strings: what the server reads, inlined.
    let mut in_gen = SchemaSettings::draft2020_12()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .for_deserialize()
        .into_generator();
    for (doc, _) in crate::api::routes() {
        let mut params: Vec<Value> = doc
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        for q in &doc.query {
            params.extend(query_params(&Value::from(q(&mut in_gen))));
        }
        let mut responses = Map::new();
        let ok_desc = if doc.ok == 204 {
            "No content"
        } else {
            "Success"
        };
        let mut ok = json!({ "description": ok_desc });
        if let Some(r) = &doc.response {
            ok["content"] =
                json!({ r.content_type: { "schema": Value::from((r.schema)(&mut out_gen)) } });
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
        if let Some(b) = &doc.body {
            op["requestBody"] = json!({ "required": true, "content": { b.content_type: { "schema": Value::from((b.schema)(&mut in_gen)) } } });
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
    let mut schemas = out_gen.take_definitions(true);
    schemas.insert(
        "Error".into(),
        json!({
            "type": "object",
            "required": ["error"],
            "properties": { "error": { "type": "object", "required": ["code", "message"], "properties": { "code": { "type": "string" }, "message": { "type": "string" } } } }
        }),
    );
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
            "schemas": schemas
        }
    })
}
