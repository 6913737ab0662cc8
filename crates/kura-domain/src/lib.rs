//! Kura's domain: pure types and rules, no I/O.
//!
//! Everything that decides something — who may do what ([`authz::authorize`]), whether a
//! password is acceptable ([`policy::PasswordPolicy`]), when a session expires
//! ([`policy::SessionPolicy`]) — lives here so it can be tested as a table, without a
//! database or a server. Time comes from an injected [`clock::Clock`].

pub mod authz;
pub mod calendar;
pub mod clock;
pub mod ids;
pub mod notice;
pub mod policy;
pub mod tenant;
pub mod user;

pub use authz::{authorize, Action, BuiltinRole, Decision, Grant, Principal, Resource, Scope};
pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use ids::{
    ApiTokenId, ContactId, FileId, FolderId, GrantId, PasskeyId, ProjectId, RoleId, SessionId,
    TenantId, UserId,
};

/// A rule of the domain was broken by the input. The message is safe to show to a user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

impl DomainError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }
}

/// Validates a display name for folders, projects, tenants and roles: 1–200 characters, no
/// control characters, no slash (names are shown as paths).
pub fn validate_name(field: &'static str, name: &str) -> Result<String, DomainError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    if name.chars().count() > 200 {
        return Err(DomainError::invalid(
            field,
            "must be at most 200 characters",
        ));
    }
    if name
        .chars()
        .any(|c| c.is_control() || c == '/' || c == '\\')
    {
        return Err(DomainError::invalid(
            field,
            "must not contain control characters or slashes",
        ));
    }
    if name.chars().any(spoofs) {
        return Err(DomainError::invalid(
            field,
            "must not contain invisible or direction-changing characters (zero-width, bidi controls, BOM, line separators) or U+FFFD (text that was not valid UTF-8)",
        ));
    }
    if name == "." || name == ".." {
        return Err(DomainError::invalid(field, "must not be . or .."));
    }
    Ok(name.to_string())
}

/// Characters that change how a name is displayed without being seen: bidi overrides and
/// isolates (`invoice<U+202E>fdp.exe` shows as `invoiceexe.pdf`), zero-width characters, the
/// byte-order mark, line and paragraph separators, interlinear annotation, and U+FFFD —
/// the mark of bytes that were not UTF-8. ZWJ and ZWNJ stay allowed: emoji sequences and
/// several scripts need them.
fn spoofs(c: char) -> bool {
    matches!(c,
        '\u{061C}'                       // Arabic letter mark
        | '\u{180E}'                     // Mongolian vowel separator
        | '\u{200B}'                     // zero-width space
        | '\u{200E}' | '\u{200F}'         // LRM, RLM
        | '\u{2028}'..='\u{202E}'        // line/paragraph separators, bidi embeddings and overrides
        | '\u{2060}'..='\u{2064}'        // word joiner, invisible operators
        | '\u{2066}'..='\u{2069}'        // bidi isolates
        | '\u{FEFF}'                     // BOM / zero-width no-break space
        | '\u{FFF9}'..='\u{FFFB}'        // interlinear annotation
        | '\u{FFFD}'                     // replacement character
    )
}

/// Validates and normalises an e-mail address (lower-cased; one `@`, a dot in the domain).
pub fn validate_email(email: &str) -> Result<String, DomainError> {
    let email = email.trim().to_lowercase();
    let bad = || DomainError::invalid("email", "is not a valid e-mail address");
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    if local.is_empty() || domain.contains('@') || !domain.contains('.') {
        return Err(bad());
    }
    if domain.starts_with('.') || domain.ends_with('.') || domain.contains("..") {
        return Err(bad());
    }
    Ok(email)
}

/// Validates a tenant slug: 3–40 characters of `a-z`, `0-9` and `-`, not starting or ending
/// with `-`.
pub fn validate_slug(slug: &str) -> Result<String, DomainError> {
    let slug = slug.trim().to_lowercase();
    let ok = (3..=40).contains(&slug.len())
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !slug.starts_with('-')
        && !slug.ends_with('-');
    if ok {
        Ok(slug)
    } else {
        Err(DomainError::invalid(
            "slug",
            "must be 3-40 characters of a-z, 0-9 and '-'",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_emails_slugs() {
        assert_eq!(validate_name("name", "  設計 ").unwrap(), "設計");
        assert!(validate_name("name", "").is_err());
        assert!(validate_name("name", "a/b").is_err());
        assert!(validate_name("name", &"x".repeat(201)).is_err());
        // Names that display as something else are refused.
        for bad in [
            "invoice\u{202E}fdp.exe",
            "a\u{200B}b",
            "\u{FEFF}memo.txt",
            "line\u{2028}break",
            "iso\u{2066}late\u{2069}",
            "bad\u{FFFD}utf8",
            ".",
            "..",
        ] {
            assert!(validate_name("name", bad).is_err(), "{bad:?}");
        }
        // Emoji sequences with ZWJ, and dotted names, are fine.
        assert!(validate_name("name", "👨\u{200D}👩\u{200D}👧 家族.jpg").is_ok());
        assert!(validate_name("name", "...notes").is_ok());
        assert_eq!(validate_email(" A@Example.JP ").unwrap(), "a@example.jp");
        for bad in [
            "a", "a@b", "@b.jp", "a@b@c.jp", "a b@c.jp", "a@.jp", "a@b..jp",
        ] {
            assert!(validate_email(bad).is_err(), "{bad}");
        }
        assert_eq!(validate_slug("Acme-1").unwrap(), "acme-1");
        for bad in ["ab", "-abc", "abc-", "a_b_c", "日本語です"] {
            assert!(validate_slug(bad).is_err(), "{bad}");
        }
    }
}
