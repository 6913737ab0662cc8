//! User states (IAM-1).

use serde::{Deserialize, Serialize};

/// A person, or a service account (no password, no log-in: API tokens only, with the
/// roles granted to it like anyone else).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum UserKind {
    #[default]
    Person,
    Service,
}

impl UserKind {
    pub fn as_str(self) -> &'static str {
        match self {
            UserKind::Person => "person",
            UserKind::Service => "service",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "person" => Some(Self::Person),
            "service" => Some(Self::Service),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    /// Invited; has not set a password yet.
    Invited,
    Active,
    /// Suspended by an admin: cannot log in; sessions and tokens stop at once.
    Frozen,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Invited => "invited",
            UserStatus::Active => "active",
            UserStatus::Frozen => "frozen",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "invited" => Some(Self::Invited),
            "active" => Some(Self::Active),
            "frozen" => Some(Self::Frozen),
            _ => None,
        }
    }
}
