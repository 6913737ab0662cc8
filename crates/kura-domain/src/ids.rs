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
                Self(new_id())
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

/// A new random, time-ordered id for rows that have no typed id (mail, request ids, …):
/// a UUIDv7 whose 74 random bits come from the operating system's generator, drawn 4 KiB
/// at a time per thread (one system call per 400 ids instead of one per id — every request
/// takes one).
pub fn new_id() -> String {
    let millis = uuid::Timestamp::now(uuid::NoContext).to_unix();
    let millis = millis.0 * 1000 + u64::from(millis.1 / 1_000_000);
    let mut random = [0u8; 10];
    pooled_random(&mut random);
    uuid::Builder::from_unix_timestamp_millis(millis, &random)
        .into_uuid()
        .to_string()
}

/// Fills `out` (at most 4 KiB) from a per-thread pool of OS randomness. Never hands the same
/// bytes out twice: a used part of the pool is overwritten before it is returned.
fn pooled_random(out: &mut [u8]) {
    use std::cell::RefCell;
    const POOL: usize = 4096;
    thread_local! {
        static BYTES: RefCell<(Box<[u8; POOL]>, usize)> = RefCell::new((Box::new([0u8; POOL]), POOL));
    }
    BYTES.with(|b| {
        let mut b = b.borrow_mut();
        let (pool, used) = &mut *b;
        if *used + out.len() > POOL {
            // The operating system's generator does not fail on Linux once seeded; if it
            // ever did, ids must still never repeat, so this panics rather than reusing.
            #[allow(clippy::expect_used)]
            getrandom::fill(&mut pool[..]).expect("the operating system's random generator");
            *used = 0;
        }
        let part = &mut pool[*used..*used + out.len()];
        out.copy_from_slice(part);
        part.fill(0);
        *used += out.len();
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_version_7_and_never_repeat_across_pool_refills() {
        let mut seen = std::collections::HashSet::new();
        // 2,000 ids draw 20,000 random bytes: the 4 KiB pool refills several times.
        for _ in 0..2000 {
            let id = super::new_id();
            let u = uuid::Uuid::parse_str(&id).unwrap();
            assert_eq!(u.get_version_num(), 7);
            assert!(seen.insert(id), "an id repeated");
        }
    }
}
