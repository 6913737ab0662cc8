//! Typed identifiers. They are opaque strings (UUIDv7 text) so that both database backends
//! store them the same way, and typed so that a `FolderId` can never be passed as a
//! `TenantId`.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A new random, time-ordered id.
            pub fn generate() -> Self {
                Self(uuid::Uuid::now_v7().to_string())
            }
            /// Wraps an id read from storage or from a request. Ids from requests are only
            /// ever used as lookup keys together with a tenant id, so any text is safe here;
            /// an id that does not exist simply finds nothing.
            pub fn from_string(s: impl Into<String>) -> Self {
                Self(s.into())
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A tenant (one customer contract).
    TenantId
);
id_type!(
    /// A user inside one tenant.
    UserId
);
id_type!(
    /// A folder in a tenant's workspace.
    FolderId
);
id_type!(
    /// A project inside a folder.
    ProjectId
);
id_type!(
    /// A custom role defined by a tenant.
    RoleId
);
id_type!(
    /// One role granted to one user at one scope.
    GrantId
);
id_type!(
    /// An additional tenant contact (TEN-5).
    ContactId
);

id_type!(
    /// A file (its versions share it).
    FileId
);
id_type!(
    /// A personal or service-account API token (not its secret).
    ApiTokenId
);
id_type!(
    /// A session (not its secret).
    SessionId
);
id_type!(
    /// A registered passkey.
    PasskeyId
);

/// A new random, time-ordered id for rows that have no typed id (mail, …).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
