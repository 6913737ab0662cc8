//! Tenants (contracts) and their settings.

use crate::policy::{PasswordPolicy, SessionPolicy};
use crate::DomainError;
use serde::{Deserialize, Serialize};

/// A tenant's lifecycle state. Only `Active` tenants can log in; termination comes with the
/// lifecycle issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    Active,
    Suspended,
    /// The contract ended (OPS-3): no log-in, no API, no download; deleted and then
    /// crypto-shredded on schedule.
    Terminated,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Active => "active",
            TenantStatus::Suspended => "suspended",
            TenantStatus::Terminated => "terminated",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "suspended" => Some(Self::Suspended),
            "terminated" => Some(Self::Terminated),
            _ => None,
        }
    }
}

/// Settings a tenant's contract admin controls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct TenantSettings {
    /// IANA time zone in which times are shown (LOG-6). Default `Asia/Tokyo`.
    pub time_zone: String,
    /// Default console language for users who chose none: `ja` or `en`.
    pub default_locale: String,
    pub password_policy: PasswordPolicy,
    pub session_policy: SessionPolicy,
    /// Classification levels, lowest first (DATA-2). Default public / internal /
    /// confidential / secret.
    pub labels: Vec<String>,
    /// The level of anything with no label of its own and no labelled ancestor.
    pub default_label: String,
    /// Plaintext bytes the tenant may store (all versions); `None`: no quota.
    pub storage_quota_bytes: Option<u64>,
    /// Client addresses (IPv4/IPv6 CIDR, e.g. `203.0.113.0/24`) the console, API and API
    /// tokens accept (IAM-7). Empty: any address.
    pub ip_allowlist: Vec<String>,
    /// Apply the allowlist only to users holding one of these built-in roles (e.g.
    /// `contract_admin`); empty: to everyone.
    pub ip_allowlist_roles: Vec<String>,
    /// Everyone must use a second factor (IAM-5): a user without one must enrol at the next
    /// log-in before anything else.
    pub mfa_required: bool,
    /// Users holding any of these built-in roles must use a second factor, even when
    /// `mfa_required` is off (e.g. `["contract_admin", "admin"]`).
    pub mfa_required_roles: Vec<String>,
    /// How long audit-log entries are kept (LOG-4), in days: presets 90, 365, 730, or any
    /// value from [`MIN_RETENTION_DAYS`]. Older entries are purged by an hourly job.
    pub audit_retention_days: i64,
    /// How long access-log entries are kept, in days (same rules).
    pub access_log_retention_days: i64,
}

/// The shortest retention a tenant may choose (the Japanese cloud checklists' 90 days).
pub const MIN_RETENTION_DAYS: i64 = 90;
/// The longest (100 years: effectively "keep").
pub const MAX_RETENTION_DAYS: i64 = 36_500;

impl Default for TenantSettings {
    fn default() -> Self {
        Self {
            time_zone: "Asia/Tokyo".into(),
            default_locale: "ja".into(),
            password_policy: PasswordPolicy::default(),
            session_policy: SessionPolicy::default(),
            labels: ["public", "internal", "confidential", "secret"]
                .map(String::from)
                .to_vec(),
            default_label: "internal".into(),
            storage_quota_bytes: None,
            mfa_required: false,
            mfa_required_roles: Vec::new(),
            ip_allowlist: Vec::new(),
            ip_allowlist_roles: Vec::new(),
            audit_retention_days: 730,
            access_log_retention_days: 365,
        }
    }
}

/// Whether `ip` is inside `cidr` (`a.b.c.d/n`, `x:y::/n`, or a bare address). `None` for a
/// malformed range.
pub fn cidr_contains(cidr: &str, ip: std::net::IpAddr) -> Option<bool> {
    use std::net::IpAddr;
    let (addr, len) = match cidr.trim().split_once('/') {
        Some((a, l)) => (a.parse::<IpAddr>().ok()?, Some(l.parse::<u32>().ok()?)),
        None => (cidr.trim().parse::<IpAddr>().ok()?, None),
    };
    // An IPv4-mapped IPv6 client (::ffff:a.b.c.d) is its IPv4 address.
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    match (addr, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let len = len.unwrap_or(32);
            if len > 32 {
                return None;
            }
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            Some(u32::from(n) & mask == u32::from(i) & mask)
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let len = len.unwrap_or(128);
            if len > 128 {
                return None;
            }
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            Some(u128::from(n) & mask == u128::from(i) & mask)
        }
        _ => Some(false),
    }
}

impl TenantSettings {
    /// Whether a user with `roles` (built-in role names) must use a second factor.
    pub fn mfa_required_for(&self, roles: &[&str]) -> bool {
        self.mfa_required
            || roles
                .iter()
                .any(|r| self.mfa_required_roles.iter().any(|x| x == r))
    }

    /// Whether the allowlist admits `ip` for a user with `roles` (built-in role names).
    pub fn ip_allowed(&self, ip: Option<std::net::IpAddr>, roles: &[&str]) -> bool {
        if self.ip_allowlist.is_empty() {
            return true;
        }
        if !self.ip_allowlist_roles.is_empty()
            && !roles
                .iter()
                .any(|r| self.ip_allowlist_roles.iter().any(|x| x == r))
        {
            return true;
        }
        let Some(ip) = ip else {
            return false;
        };
        self.ip_allowlist
            .iter()
            .any(|c| cidr_contains(c, ip) == Some(true))
    }

    pub fn validate(&self) -> Result<(), DomainError> {
        for (field, days) in [
            ("audit_retention_days", self.audit_retention_days),
            ("access_log_retention_days", self.access_log_retention_days),
        ] {
            if !(MIN_RETENTION_DAYS..=MAX_RETENTION_DAYS).contains(&days) {
                return Err(DomainError::invalid(
                    field,
                    format!("must be {MIN_RETENTION_DAYS} to {MAX_RETENTION_DAYS} days (presets: 90, 365, 730)"),
                ));
            }
        }
        for r in self
            .mfa_required_roles
            .iter()
            .chain(&self.ip_allowlist_roles)
        {
            if crate::authz::BuiltinRole::parse(r).is_none() {
                return Err(DomainError::invalid(
                    "roles",
                    format!("{r:?} is not a built-in role (contract_admin, admin, member, guest)"),
                ));
            }
        }
        for c in &self.ip_allowlist {
            if cidr_contains(c, std::net::IpAddr::from([127, 0, 0, 1])).is_none() {
                return Err(DomainError::invalid(
                    "ip_allowlist",
                    format!("{c:?} is not an IPv4/IPv6 address or CIDR range"),
                ));
            }
        }
        if jiff::tz::TimeZone::get(&self.time_zone).is_err() {
            return Err(DomainError::invalid(
                "time_zone",
                "is not a known IANA time zone (e.g. Asia/Tokyo)",
            ));
        }
        validate_locale(&self.default_locale)?;
        self.password_policy.validate_settings()?;
        self.session_policy.validate_settings()?;
        if !(2..=10).contains(&self.labels.len()) {
            return Err(DomainError::invalid(
                "labels",
                "define between 2 and 10 levels",
            ));
        }
        for (i, l) in self.labels.iter().enumerate() {
            crate::validate_name("labels", l)?;
            if l.chars().count() > 40 || self.labels[..i].contains(l) {
                return Err(DomainError::invalid(
                    "labels",
                    "levels must be unique names of at most 40 characters",
                ));
            }
        }
        if self.storage_quota_bytes == Some(0) {
            return Err(DomainError::invalid(
                "storage_quota_bytes",
                "must be positive (or null for no quota)",
            ));
        }
        if !self.labels.contains(&self.default_label) {
            return Err(DomainError::invalid(
                "default_label",
                "must be one of the labels",
            ));
        }
        Ok(())
    }

    /// The rank of a label (0 = lowest). An unknown label ranks above everything, so that
    /// nothing becomes more visible by a label that no longer exists (fails closed).
    pub fn label_rank(&self, name: &str) -> u8 {
        self.labels
            .iter()
            .position(|l| l == name)
            .map(|p| p as u8)
            .unwrap_or(u8::MAX)
    }

    /// The rank of the first label along an item's chain (its own, then its ancestors'
    /// from the nearest outward), or of the default label.
    pub fn effective_rank<'a>(
        &self,
        nearest_first: impl IntoIterator<Item = Option<&'a str>>,
    ) -> u8 {
        let label = nearest_first
            .into_iter()
            .flatten()
            .next()
            .unwrap_or(&self.default_label);
        self.label_rank(label)
    }

    pub fn check_label(&self, label: &str) -> Result<(), DomainError> {
        if self.labels.iter().any(|l| l == label) {
            Ok(())
        } else {
            Err(DomainError::invalid(
                "label",
                format!("must be one of: {}", self.labels.join(", ")),
            ))
        }
    }
}

/// The console languages.
pub const LOCALES: [&str; 2] = ["ja", "en"];

pub fn validate_locale(l: &str) -> Result<(), DomainError> {
    if LOCALES.contains(&l) {
        Ok(())
    } else {
        Err(DomainError::invalid("locale", "must be 'ja' or 'en'"))
    }
}

#[cfg(test)]
mod cidr_tests {
    use super::*;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_ranges() {
        assert_eq!(
            cidr_contains("203.0.113.0/24", ip("203.0.113.77")),
            Some(true)
        );
        assert_eq!(
            cidr_contains("203.0.113.0/24", ip("203.0.114.1")),
            Some(false)
        );
        assert_eq!(cidr_contains("10.0.0.1", ip("10.0.0.1")), Some(true));
        assert_eq!(cidr_contains("0.0.0.0/0", ip("8.8.8.8")), Some(true));
        assert_eq!(
            cidr_contains("2001:db8::/32", ip("2001:db8:1::5")),
            Some(true)
        );
        assert_eq!(
            cidr_contains("2001:db8::/32", ip("2001:db9::5")),
            Some(false)
        );
        assert_eq!(
            cidr_contains("127.0.0.0/8", ip("::ffff:127.0.0.1")),
            Some(true)
        );
        assert_eq!(cidr_contains("10.0.0.0/8", ip("::1")), Some(false));
        assert_eq!(cidr_contains("10.0.0.0/33", ip("10.0.0.1")), None);
        assert_eq!(cidr_contains("nonsense", ip("10.0.0.1")), None);
        let s = TenantSettings {
            ip_allowlist: vec!["192.0.2.0/24".into()],
            ip_allowlist_roles: vec!["contract_admin".into()],
            ..TenantSettings::default()
        };
        assert!(s.ip_allowed(Some(ip("192.0.2.9")), &["contract_admin"]));
        assert!(!s.ip_allowed(Some(ip("198.51.100.1")), &["contract_admin"]));
        assert!(
            s.ip_allowed(Some(ip("198.51.100.1")), &["member"]),
            "roles not listed"
        );
        assert!(
            !s.ip_allowed(None, &["contract_admin"]),
            "no address: refused"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_validate() {
        assert!(TenantSettings::default().validate().is_ok());
        let bad_tz = TenantSettings {
            time_zone: "Mars/Olympus".into(),
            ..Default::default()
        };
        assert!(bad_tz.validate().is_err());
        let bad_locale = TenantSettings {
            default_locale: "fr".into(),
            ..Default::default()
        };
        assert!(bad_locale.validate().is_err());
        let s = TenantSettings::default();
        assert_eq!(s.label_rank("public"), 0);
        assert_eq!(s.label_rank("secret"), 3);
        assert_eq!(s.label_rank("gone"), u8::MAX);
        assert_eq!(
            s.effective_rank([None, Some("confidential"), Some("public")]),
            2
        );
        assert_eq!(s.effective_rank([None, None]), 1, "default internal");
        let dup = TenantSettings {
            labels: vec!["a".into(), "a".into()],
            default_label: "a".into(),
            ..Default::default()
        };
        assert!(dup.validate().is_err());
        let bad_default = TenantSettings {
            default_label: "x".into(),
            ..Default::default()
        };
        assert!(bad_default.validate().is_err());
    }
}
