//! What the API and the console share: percent-encoding for URLs they build, and the
//! parsing of log queries (the audit and access log filters both read). Neither `api` nor
//! `web` imports the other; both import this.

use crate::error::ApiError;
use serde::Deserialize;

/// Minimal percent-encoding for a query value.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Log filters and paging (audit log and access log).
#[derive(Deserialize, Default, schemars::JsonSchema)]
pub struct LogQuery {
    /// The `next_before` of the previous page.
    pub before: Option<i64>,
    /// Page size (default 100).
    pub limit: Option<i64>,
    /// From (RFC 3339, or a date in the tenant's zone).
    pub from: Option<String>,
    /// To (RFC 3339, or a date in the tenant's zone).
    pub to: Option<String>,
    /// A user id.
    pub user: Option<String>,
    /// Audit: an action, e.g. `auth.login`.
    pub action: Option<String>,
    /// A client address.
    pub ip: Option<String>,
    /// Audit: success / failure / denied. Access log: a status (`4xx`, `404`).
    #[serde(alias = "status")]
    pub result: Option<String>,
    /// Access log: a path prefix.
    pub path: Option<String>,
    /// Exports: `jsonl` or `csv`.
    pub format: Option<String>,
}

impl LogQuery {
    fn time(&self, field: &str, v: &Option<String>, zone: &str) -> Result<Option<i64>, ApiError> {
        match v.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => kura_domain::Timestamp::parse_in_zone(v, zone)
                .map(|t| Some(t.0))
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "{field}: use RFC 3339 (2026-11-21T09:00:00+09:00) or a date (2026-11-21)"
                    ))
                }),
        }
    }

    /// The access-log filter.
    pub fn access_filter(&self, zone: &str) -> Result<kura_store::access_log::Filter, ApiError> {
        let text = |v: &Option<String>| {
            v.clone()
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
        };
        let status = text(&self.result);
        if let Some(st) = &status {
            let ok = (st.len() == 3 && st.ends_with("xx") && st[..1].parse::<u8>().is_ok())
                || st.parse::<u16>().is_ok();
            if !ok {
                return Err(ApiError::bad_request("status: e.g. 4xx or 404"));
            }
        }
        Ok(kura_store::access_log::Filter {
            from: self.time("from", &self.from, zone)?,
            to: self.time("to", &self.to, zone)?,
            user: text(&self.user),
            ip: text(&self.ip),
            status,
            path: text(&self.path),
        })
    }

    /// The store filter; times in the tenant's zone unless they carry an offset.
    pub fn audit_filter(&self, zone: &str) -> Result<kura_store::audit::Filter, ApiError> {
        let time = |field: &str, v: &Option<String>| self.time(field, v, zone);
        let text = |v: &Option<String>| {
            v.clone()
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
        };
        let result = text(&self.result);
        if let Some(r) = &result {
            if !["success", "failure", "denied"].contains(&r.as_str()) {
                return Err(ApiError::bad_request("result: success, failure or denied"));
            }
        }
        Ok(kura_store::audit::Filter {
            from: time("from", &self.from)?,
            to: time("to", &self.to)?,
            actor: text(&self.user),
            action: text(&self.action),
            ip: text(&self.ip),
            result,
        })
    }
}
