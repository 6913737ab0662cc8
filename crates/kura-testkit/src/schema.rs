//! Checks real API answers against the OpenAPI document Kura publishes: the operation is
//! found by method and path template, and a success body is validated against the
//! documented JSON Schema — strictly: an object may carry no property the schema does not
//! name (unless the schema allows any). Every answer that passes through
//! [`crate::TestServer::call`] is checked, and the routes checked are recorded so that a
//! test can prove every documented response was exercised.
//!
//! The validator covers what the schemas Kura generates use: `$ref` (to
//! `#/components/schemas/…`), `type` (one or several), `properties`, `required`,
//! `additionalProperties`, `items`, `prefixItems`, `enum`, `const`, `anyOf`, `oneOf`,
//! `allOf`, `minimum`, `maximum`; `format` is not checked.

use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::{Mutex, OnceLock};

fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(kura_http::openapi::document)
}

fn checked() -> &'static Mutex<BTreeSet<String>> {
    static CHECKED: OnceLock<Mutex<BTreeSet<String>>> = OnceLock::new();
    CHECKED.get_or_init(|| Mutex::new(BTreeSet::new()))
}

/// `METHOD /path/{template}` of every documented operation whose success answer is JSON.
pub fn documented_json_responses() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (path, ops) in document()["paths"].as_object().into_iter().flatten() {
        for (method, op) in ops.as_object().into_iter().flatten() {
            let json_ok = op["responses"]
                .as_object()
                .into_iter()
                .flatten()
                .any(|(st, r)| st.starts_with('2') && r["content"]["application/json"].is_object());
            if json_ok {
                out.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    out
}

/// The operations whose answers have been checked so far in this process.
pub fn checked_routes() -> BTreeSet<String> {
    checked().lock().map(|c| c.clone()).unwrap_or_default()
}

/// `METHOD /template` of the documented operation a request goes to.
pub fn route_key(method: &str, path: &str) -> Option<String> {
    operation(method, path).map(|(k, _)| k)
}

/// Whether some documented operation has this path (any method).
pub fn documented_path(path: &str) -> bool {
    ["GET", "POST", "PUT", "PATCH", "DELETE"]
        .iter()
        .any(|m| operation(m, path).is_some())
}

/// The documented operation for a request: (`METHOD /template`, the operation).
fn operation(method: &str, path: &str) -> Option<(String, &'static Value)> {
    let path = path.split('?').next().unwrap_or(path);
    let segs: Vec<&str> = path.split('/').collect();
    let mut best: Option<(usize, String, &'static Value)> = None;
    for (template, ops) in document()["paths"].as_object()? {
        let t: Vec<&str> = template.split('/').collect();
        if t.len() != segs.len() {
            continue;
        }
        let mut literal = 0;
        let fits = t.iter().zip(&segs).all(|(a, b)| {
            if a.starts_with('{') {
                true
            } else {
                literal += 1;
                a == b
            }
        });
        let Some(op) = ops.get(method.to_lowercase()) else {
            continue;
        };
        if fits && best.as_ref().is_none_or(|(l, _, _)| literal > *l) {
            best = Some((literal, template.clone(), op));
        }
    }
    best.map(|(_, t, op)| (format!("{} {t}", method.to_uppercase()), op))
}

/// Checks a success answer against the document: `Err` says what does not match.
pub fn check_response(method: &str, path: &str, status: u16, body: &Value) -> Result<(), String> {
    if !(200..300).contains(&status) {
        return Ok(());
    }
    let Some((key, op)) = operation(method, path) else {
        return Err(format!("{method} {path}: not in the OpenAPI document"));
    };
    let response = &op["responses"][status.to_string()];
    if response.is_null() {
        return Err(format!("{key}: status {status} is not documented"));
    }
    match response["content"].get("application/json") {
        Some(media) => {
            validate(&media["schema"], body, "$").map_err(|e| format!("{key}: {e}"))?;
        }
        None if body.is_null() => {}
        None if response["content"].is_object() => {}
        None => {
            return Err(format!(
                "{key}: answered a body the document does not describe"
            ))
        }
    }
    if let Ok(mut c) = checked().lock() {
        c.insert(key);
    }
    Ok(())
}

fn resolve(schema: &Value) -> &Value {
    let mut s = schema;
    for _ in 0..16 {
        match s.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let name = r.trim_start_matches("#/components/schemas/");
                s = &document()["components"]["schemas"][name];
            }
            None => break,
        }
    }
    s
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_fits(want: &str, v: &Value) -> bool {
    let got = type_of(v);
    want == got || (want == "number" && got == "integer")
}

/// Validates `v` against `schema` (strictly for objects); `at` names the place.
pub fn validate(schema: &Value, v: &Value, at: &str) -> Result<(), String> {
    let s = resolve(schema);
    if s == &Value::Bool(true) || s.as_object().is_some_and(|o| o.is_empty()) {
        return Ok(());
    }
    if s == &Value::Bool(false) {
        return Err(format!("{at}: nothing is allowed here"));
    }
    if let Some(all) = s["allOf"].as_array() {
        for sub in all {
            validate(sub, v, at)?;
        }
    }
    if let Some(any) = s["anyOf"].as_array() {
        let errs: Vec<String> = any
            .iter()
            .filter_map(|sub| validate(sub, v, at).err())
            .collect();
        if errs.len() == any.len() {
            return Err(format!("{at}: matches none of anyOf ({})", errs.join("; ")));
        }
    }
    if let Some(one) = s["oneOf"].as_array() {
        let fits = one
            .iter()
            .filter(|sub| validate(sub, v, at).is_ok())
            .count();
        if fits != 1 {
            return Err(format!(
                "{at}: matches {fits} of oneOf, not exactly one: {v}"
            ));
        }
    }
    if let Some(c) = s.get("const") {
        if c != v {
            return Err(format!("{at}: {v} is not {c}"));
        }
    }
    if let Some(e) = s["enum"].as_array() {
        if !e.contains(v) {
            return Err(format!(
                "{at}: {v} is not one of {}",
                Value::from(e.clone())
            ));
        }
    }
    match &s["type"] {
        Value::String(t) if !type_fits(t, v) => {
            return Err(format!("{at}: {} where {t} is documented", type_of(v)));
        }
        Value::Array(ts) if !ts.iter().filter_map(Value::as_str).any(|t| type_fits(t, v)) => {
            return Err(format!(
                "{at}: {} where {} is documented",
                type_of(v),
                s["type"]
            ));
        }
        _ => {}
    }
    if let Some(n) = v.as_f64() {
        if s["minimum"].as_f64().is_some_and(|m| n < m)
            || s["maximum"].as_f64().is_some_and(|m| n > m)
        {
            return Err(format!("{at}: {n} is out of the documented range"));
        }
    }
    if let Value::Object(o) = v {
        let props = s["properties"].as_object();
        for r in s["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !o.contains_key(r) {
                return Err(format!("{at}: required property `{r}` is missing"));
            }
        }
        for (k, x) in o {
            match props.and_then(|p| p.get(k)) {
                Some(ps) => validate(ps, x, &format!("{at}.{k}"))?,
                None => match s.get("additionalProperties") {
                    Some(Value::Bool(true)) => {}
                    Some(extra) if extra.is_object() => validate(extra, x, &format!("{at}.{k}"))?,
                    // Strict: a property the schema does not name is undocumented, unless
                    // the schema only combines others (their properties are checked there).
                    _ if props.is_none()
                        && (s.get("anyOf").is_some()
                            || s.get("oneOf").is_some()
                            || s.get("allOf").is_some()) => {}
                    _ if props.is_none()
                        && s.get("type") == Some(&Value::from("object"))
                        && s.get("additionalProperties").is_none() => {}
                    _ => return Err(format!("{at}: property `{k}` is not documented")),
                },
            }
        }
    }
    if let Value::Array(a) = v {
        let prefix = s["prefixItems"].as_array();
        for (i, x) in a.iter().enumerate() {
            let sub = match prefix.and_then(|p| p.get(i)) {
                Some(p) => p,
                None => &s["items"],
            };
            if !sub.is_null() {
                validate(sub, x, &format!("{at}[{i}]"))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::validate;
    use serde_json::json;

    /// The validator refuses what it should (else every check built on it proves nothing).
    #[test]
    fn refuses_mismatches() {
        let s = json!({"type":"object","required":["a"],"properties":{"a":{"type":"integer"},"b":{"type":["string","null"]},"c":{"type":"array","items":{"enum":["x","y"]}}}});
        assert!(validate(&s, &json!({"a": 1, "b": null, "c": ["x"]}), "$").is_ok());
        assert!(
            validate(&s, &json!({"b": "x"}), "$").is_err(),
            "missing required"
        );
        assert!(validate(&s, &json!({"a": "1"}), "$").is_err(), "wrong type");
        assert!(
            validate(&s, &json!({"a": 1, "d": 2}), "$").is_err(),
            "undocumented"
        );
        assert!(
            validate(&s, &json!({"a": 1, "c": ["z"]}), "$").is_err(),
            "enum"
        );
        assert!(validate(&s, &json!({"a": 1.5}), "$").is_err(), "integer");
        let any = json!({"anyOf":[{"type":"string"},{"type":"null"}]});
        assert!(validate(&any, &json!(null), "$").is_ok());
        assert!(validate(&any, &json!(3), "$").is_err());
        let tagged = json!({"oneOf":[
            {"type":"object","properties":{"kind":{"const":"a"},"x":{"type":"integer"}},"required":["kind","x"]},
            {"type":"object","properties":{"kind":{"const":"b"}},"required":["kind"]}]});
        assert!(validate(&tagged, &json!({"kind":"a","x":1}), "$").is_ok());
        assert!(validate(&tagged, &json!({"kind":"c"}), "$").is_err());
        let free = json!({"type":"object","additionalProperties":true});
        assert!(validate(&free, &json!({"any": [1]}), "$").is_ok());
    }
}
