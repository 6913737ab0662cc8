//! Password and session policies, set per tenant (IAM-3, IAM-8).

use crate::clock::Timestamp;
use crate::DomainError;
use serde::{Deserialize, Serialize};

/// A tenant's password rules. Length and character classes are what customers are used to
/// (KU's default is ≥ 6 with letters and digits); the strength estimate (zxcvbn) is what
/// actually stops `Password1`, keyboard walks and passwords built from the user's own name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct PasswordPolicy {
    /// Minimum length in characters (6–128).
    pub min_length: u32,
    pub require_letter: bool,
    pub require_digit: bool,
    pub require_symbol: bool,
    pub require_mixed_case: bool,
    /// Minimum zxcvbn score, 0 (anything) to 4 (very strong). Default 3.
    pub min_strength: u8,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_length: 10,
            require_letter: true,
            require_digit: true,
            require_symbol: false,
            require_mixed_case: false,
            min_strength: 3,
        }
    }
}

/// Why a password was refused. Each variant maps to a translated message in the console.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum PasswordProblem {
    TooShort {
        min: u32,
    },
    TooLong {
        max: u32,
    },
    NeedsLetter,
    NeedsDigit,
    NeedsSymbol,
    NeedsMixedCase,
    TooWeak {
        score: u8,
        min: u8,
    },
    /// Contains the user's e-mail, name, or the organisation's name or ID.
    Personal,
}

impl std::fmt::Display for PasswordProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooShort { min } => write!(f, "must be at least {min} characters"),
            Self::TooLong { max } => write!(f, "must be at most {max} characters"),
            Self::NeedsLetter => f.write_str("must contain a letter"),
            Self::NeedsDigit => f.write_str("must contain a digit"),
            Self::NeedsSymbol => f.write_str("must contain a symbol"),
            Self::NeedsMixedCase => f.write_str("must mix upper- and lower-case letters"),
            Self::Personal => f.write_str(
                "must not contain your e-mail address, your name or your organisation's name or ID",
            ),
            Self::TooWeak { .. } => f.write_str(
                "is too easy to guess (common word, pattern, or based on your name or e-mail)",
            ),
        }
    }
}

pub const MAX_PASSWORD_CHARS: u32 = 256;

impl PasswordPolicy {
    pub fn validate_settings(&self) -> Result<(), DomainError> {
        if !(6..=128).contains(&self.min_length) {
            return Err(DomainError::invalid(
                "min_length",
                "must be between 6 and 128",
            ));
        }
        if self.min_strength > 4 {
            return Err(DomainError::invalid(
                "min_strength",
                "must be between 0 and 4",
            ));
        }
        Ok(())
    }

    /// Checks a candidate password. `user_inputs` are words the password must not be built
    /// from (e-mail, name, tenant name).
    pub fn check(&self, password: &str, user_inputs: &[&str]) -> Result<(), PasswordProblem> {
        let len = password.chars().count() as u32;
        if len < self.min_length {
            return Err(PasswordProblem::TooShort {
                min: self.min_length,
            });
        }
        if len > MAX_PASSWORD_CHARS {
            return Err(PasswordProblem::TooLong {
                max: MAX_PASSWORD_CHARS,
            });
        }
        if self.require_letter && !password.chars().any(char::is_alphabetic) {
            return Err(PasswordProblem::NeedsLetter);
        }
        if self.require_digit && !password.chars().any(|c| c.is_ascii_digit()) {
            return Err(PasswordProblem::NeedsDigit);
        }
        if self.require_symbol
            && !password
                .chars()
                .any(|c| !c.is_alphanumeric() && !c.is_whitespace())
        {
            return Err(PasswordProblem::NeedsSymbol);
        }
        if self.require_mixed_case
            && !(password.chars().any(char::is_uppercase)
                && password.chars().any(char::is_lowercase))
        {
            return Err(PasswordProblem::NeedsMixedCase);
        }
        // The user's own words are refused outright, whatever the rest: the e-mail's local
        // part whole and joined (yamada.taro → yamadataro), its pieces, the display name,
        // the organisation's name and ID — any of at least 4 letters, case-insensitively.
        let words = personal_words(user_inputs);
        let lower = password.to_lowercase();
        if words.iter().any(|w| lower.contains(w.as_str())) {
            return Err(PasswordProblem::Personal);
        }
        if self.min_strength > 0 {
            let inputs: Vec<&str> = words.iter().map(String::as_str).collect();
            let score: u8 = zxcvbn::zxcvbn(password, &inputs).score().into();
            if score < self.min_strength {
                return Err(PasswordProblem::TooWeak {
                    score,
                    min: self.min_strength,
                });
            }
        }
        Ok(())
    }
}

/// The words of a user's own details a password must not contain (lower-case, each with at
/// least 4 letters): every input whole, an e-mail's local part and domain labels, the pieces
/// of each split at separators, and those pieces joined.
pub fn personal_words(user_inputs: &[&str]) -> Vec<String> {
    let letters = |w: &str| w.chars().filter(|c| c.is_alphabetic()).count();
    let mut out: Vec<String> = Vec::new();
    let mut add = |w: String| {
        if letters(&w) >= 4 && !out.contains(&w) {
            out.push(w);
        }
    };
    for input in user_inputs {
        let input = input.trim().to_lowercase();
        let local = input.split('@').next().unwrap_or_default().to_string();
        let pieces: Vec<&str> = local
            .split(|c: char| !c.is_alphanumeric())
            .filter(|p| !p.is_empty())
            .collect();
        add(input.clone());
        add(local.clone());
        add(pieces.concat());
        // Letters alone (taro2026 → taro) and every piece.
        for p in &pieces {
            add(p.to_string());
            add(p.chars().filter(|c| c.is_alphabetic()).collect());
        }
        if let Some(domain) = input.split('@').nth(1) {
            for label in domain.split('.') {
                add(label.to_string());
            }
        }
    }
    out
}

/// A tenant's session lifetimes (IAM-8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct SessionPolicy {
    /// A session unused this long ends (60 s – 24 h). Default 30 minutes.
    pub idle_timeout_secs: i64,
    /// A session ends this long after login whatever its use (5 min – 30 days). Default 12 h.
    pub absolute_lifetime_secs: i64,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle_timeout_secs: 30 * 60,
            absolute_lifetime_secs: 12 * 3600,
        }
    }
}

impl SessionPolicy {
    pub fn validate_settings(&self) -> Result<(), DomainError> {
        if !(60..=86_400).contains(&self.idle_timeout_secs) {
            return Err(DomainError::invalid(
                "idle_timeout_secs",
                "must be between 60 and 86400",
            ));
        }
        if !(300..=30 * 86_400).contains(&self.absolute_lifetime_secs) {
            return Err(DomainError::invalid(
                "absolute_lifetime_secs",
                "must be between 300 and 2592000",
            ));
        }
        Ok(())
    }

    /// Is a session created at `created` and last used at `last_seen` still valid at `now`?
    pub fn is_alive(&self, created: Timestamp, last_seen: Timestamp, now: Timestamp) -> bool {
        now < created.plus_secs(self.absolute_lifetime_secs)
            && now < last_seen.plus_secs(self.idle_timeout_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_from_ones_own_details_are_refused() {
        let p = PasswordPolicy::default();
        let me = [
            "yamada.taro@demo.example.jp",
            "山田 太郎",
            "デモ株式会社",
            "demo1",
        ];
        for bad in [
            "yamada.taro2026",
            "Yamadataro-Secure!9",
            "x-TARO-yamada-88-Lantern",
            "nakamura@demo1",
            "Quiet-Demo1-Otter-93",
        ] {
            let inputs: Vec<&str> = if bad.starts_with("nakamura") {
                vec!["nakamura@demo1.example.jp", "中村", "demo1"]
            } else {
                me.to_vec()
            };
            assert_eq!(
                p.check(bad, &inputs),
                Err(PasswordProblem::Personal),
                "{bad}"
            );
        }
        assert_eq!(p.check("Test-Otter-Lantern-93", &me), Ok(()));
        // Short pieces (under 4 letters) do not count.
        let w = personal_words(&["ab.cd@x.jp"]);
        assert!(
            w.iter()
                .all(|w| w.chars().filter(|c| c.is_alphabetic()).count() >= 4),
            "{w:?}"
        );
    }

    #[test]
    fn password_rules() {
        let p = PasswordPolicy::default();
        assert_eq!(
            p.check("short1", &[]),
            Err(PasswordProblem::TooShort { min: 10 })
        );
        assert_eq!(
            p.check("abcdefghijkl", &[]),
            Err(PasswordProblem::NeedsDigit)
        );
        assert_eq!(
            p.check("123456789012", &[]),
            Err(PasswordProblem::NeedsLetter)
        );
        assert!(matches!(
            p.check("password123", &[]),
            Err(PasswordProblem::TooWeak { .. })
        ));
        assert!(matches!(
            p.check("qwerty12345", &[]),
            Err(PasswordProblem::TooWeak { .. })
        ));
        assert_eq!(
            p.check("tanaka2026", &["tanaka@example.jp"]),
            Err(PasswordProblem::Personal)
        );
        assert_eq!(p.check("kura-vault-7-otter-lantern", &[]), Ok(()));
        let strict = PasswordPolicy {
            require_symbol: true,
            require_mixed_case: true,
            ..PasswordPolicy::default()
        };
        assert_eq!(
            strict.check("kuravault7otterlantern", &[]),
            Err(PasswordProblem::NeedsSymbol)
        );
        assert_eq!(
            strict.check("kura-vault-7-otter-lantern", &[]),
            Err(PasswordProblem::NeedsMixedCase)
        );
        assert!(PasswordPolicy {
            min_length: 5,
            ..p.clone()
        }
        .validate_settings()
        .is_err());
    }

    #[test]
    fn session_lifetimes() {
        let s = SessionPolicy {
            idle_timeout_secs: 600,
            absolute_lifetime_secs: 3600,
        };
        let t0 = Timestamp(0);
        assert!(s.is_alive(t0, t0, t0.plus_secs(599)));
        assert!(!s.is_alive(t0, t0, t0.plus_secs(600)));
        // Kept busy, it still ends at the absolute lifetime.
        assert!(s.is_alive(t0, t0.plus_secs(3500), t0.plus_secs(3599)));
        assert!(!s.is_alive(t0, t0.plus_secs(3599), t0.plus_secs(3600)));
        assert!(SessionPolicy {
            idle_timeout_secs: 10,
            ..s
        }
        .validate_settings()
        .is_err());
    }
}
