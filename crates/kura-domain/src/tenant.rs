//! Tenants (contracts) and their settings.

use crate::policy::{PasswordPolicy, SessionPolicy};
use crate::DomainError;
use serde::{Deserialize, Serialize};

/// A tenant's lifecycle state. Only `Active` tenants can log in; termination comes with the
/// lifecycle issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    Active,
    Suspended,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Active => "active",
            TenantStatus::Suspended => "suspended",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "suspended" => Some(Self::Suspended),
            _ => None,
        }
    }
}

/// Settings a tenant's contract admin controls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TenantSettings {
    /// IANA time zone in which times are shown (LOG-6). Default `Asia/Tokyo`.
    pub time_zone: String,
    /// Default console language for users who chose none: `ja` or `en`.
    pub default_locale: String,
    pub password_policy: PasswordPolicy,
    pub session_policy: SessionPolicy,
}

impl Default for TenantSettings {
    fn default() -> Self {
        Self {
            time_zone: "Asia/Tokyo".into(),
            default_locale: "ja".into(),
            password_policy: PasswordPolicy::default(),
            session_policy: SessionPolicy::default(),
        }
    }
}

impl TenantSettings {
    pub fn validate(&self) -> Result<(), DomainError> {
        if jiff::tz::TimeZone::get(&self.time_zone).is_err() {
            return Err(DomainError::invalid(
                "time_zone",
                "is not a known IANA time zone (e.g. Asia/Tokyo)",
            ));
        }
        validate_locale(&self.default_locale)?;
        self.password_policy.validate_settings()?;
        self.session_policy.validate_settings()
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
    }
}
