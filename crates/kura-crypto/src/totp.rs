//! TOTP (RFC 6238) over HMAC-SHA-1, 6 digits, 30-second steps — what authenticator apps
//! expect — plus base32 (RFC 4648, no padding) for the shared secret. Checking allows one
//! step either side and returns the step that matched, so the caller can refuse a code used
//! before (replay within the window).

use aws_lc_rs::hmac;

pub const DIGITS: u32 = 6;
pub const STEP_SECS: i64 = 30;

/// The code for a time step, RFC 4226 dynamic truncation.
pub fn code_at_step(secret: &[u8], step: u64, digits: u32) -> u32 {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &step.to_be_bytes());
    let h = tag.as_ref();
    let offset = (h[h.len() - 1] & 0x0f) as usize;
    let bin = (u32::from(h[offset] & 0x7f) << 24)
        | (u32::from(h[offset + 1]) << 16)
        | (u32::from(h[offset + 2]) << 8)
        | u32::from(h[offset + 3]);
    bin % 10u32.pow(digits)
}

/// The step of a Unix time in seconds.
pub fn step_of(unix_secs: i64) -> u64 {
    (unix_secs.max(0) / STEP_SECS) as u64
}

/// The 6-digit code at a Unix time, zero-padded.
pub fn code(secret: &[u8], unix_secs: i64) -> String {
    format!(
        "{:0width$}",
        code_at_step(secret, step_of(unix_secs), DIGITS),
        width = DIGITS as usize
    )
}

/// Checks a code against the steps `now-1 ..= now+1` and returns the matching step, only
/// if it is later than `last_used_step` (a code is accepted once). Constant-time compare.
pub fn verify(
    secret: &[u8],
    code: &str,
    unix_secs: i64,
    last_used_step: Option<u64>,
) -> Option<u64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = step_of(unix_secs);
    let mut found = None;
    for step in [now.saturating_sub(1), now, now + 1] {
        let want = format!(
            "{:0width$}",
            code_at_step(secret, step, DIGITS),
            width = DIGITS as usize
        );
        if crate::ct_eq(want.as_bytes(), code.as_bytes()) && found.is_none() {
            found = Some(step);
        }
    }
    found.filter(|s| last_used_step.is_none_or(|last| *s > last))
}

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

pub fn base32_encode(data: &[u8]) -> String {
    let mut out = String::new();
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in data {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            out.push(ALPHABET[((buf >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

pub fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut buf, mut bits) = (0u32, 0u32);
    for c in s.trim_end_matches('=').bytes() {
        if c == b' ' || c == b'-' {
            continue;
        }
        let v = ALPHABET.iter().position(|a| *a == c.to_ascii_uppercase())? as u32;
        buf = (buf << 5) | v;
        bits += 5;
        if bits >= 8 {
            out.push((buf >> (bits - 8)) as u8);
            bits -= 8;
        }
    }
    Some(out)
}

/// A new 160-bit secret (RFC 4226 recommends at least 128 bits).
pub fn new_secret() -> Result<[u8; 20], crate::CryptoError> {
    crate::random_bytes::<20>()
}

/// The `otpauth://` URI authenticator apps read from the QR code.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        enc(issuer),
        enc(account),
        base32_encode(secret),
        enc(issuer)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 (8 digits), secret "12345678901234567890".
    #[test]
    fn rfc6238_test_vectors() {
        let secret = b"12345678901234567890";
        for (t, want) in [
            (59i64, 94287082u32),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ] {
            assert_eq!(code_at_step(secret, step_of(t), 8), want, "t={t}");
        }
    }

    #[test]
    fn window_and_replay() {
        let secret = b"12345678901234567890";
        let t = 1_111_111_111;
        let now_code = code(secret, t);
        let step = verify(secret, &now_code, t, None).unwrap();
        assert_eq!(step, step_of(t));
        assert_eq!(verify(secret, &now_code, t, Some(step)), None, "used once");
        // ±1 step, not more.
        assert!(verify(secret, &code(secret, t - 30), t, None).is_some());
        assert!(verify(secret, &code(secret, t + 30), t, None).is_some());
        assert!(verify(secret, &code(secret, t - 60), t, None).is_none());
        assert!(verify(secret, &code(secret, t + 60), t, None).is_none());
        assert!(verify(secret, "12345", t, None).is_none());
        assert!(verify(secret, "abcdef", t, None).is_none());
    }

    #[test]
    fn base32_round_trips_rfc4648() {
        assert_eq!(base32_encode(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32_decode("MZXW6YTBOI").unwrap(), b"foobar");
        assert_eq!(base32_decode("mzxw 6ytb-oi======").unwrap(), b"foobar");
        assert!(base32_decode("MZ1").is_none());
        let s = new_secret().unwrap();
        assert_eq!(base32_decode(&base32_encode(&s)).unwrap(), s);
    }

    /// The independent implementation: oathtool (Debian `oathtool`), when installed.
    #[test]
    fn agrees_with_oathtool() {
        let Ok(out) = std::process::Command::new("oathtool")
            .args(["--totp", "--base32", "--now", "2026-11-22 00:00:00 UTC"])
            .arg(base32_encode(b"kura-totp-test-secret"))
            .output()
        else {
            assert!(
                std::env::var_os("KURA_TEST_PEERS").is_none(),
                "KURA_TEST_PEERS is set but oathtool is not installed"
            );
            eprintln!("NOTE: oathtool not installed; CI installs it and sets KURA_TEST_PEERS");
            return;
        };
        let theirs = String::from_utf8_lossy(&out.stdout).trim().to_string();
        // 2026-11-22T00:00:00Z
        assert_eq!(code(b"kura-totp-test-secret", 1_795_305_600), theirs);
    }
}
