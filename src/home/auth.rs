//! Who may see the home page: a login form takes the admin token and sets
//! a session cookie (HttpOnly, SameSite=Strict, Secure under TLS); every
//! form carries a CSRF token tied to the session (the OWASP "synchronizer
//! token" pattern, with SameSite=Strict as a second line).
//!
//! Both values are derived from the admin token (SHA-256 with a purpose
//! prefix), so they survive daemon restarts and change when the token does.

use sha2::{Digest, Sha256};

/// The session cookie's name.
pub const COOKIE: &str = "substrate_session";

fn derive(purpose: &str, token: &str) -> String {
    let mut h = Sha256::new();
    h.update(purpose.as_bytes());
    h.update([0]);
    h.update(token.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The session cookie's value for `token`.
pub fn session_value(token: &str) -> String {
    derive("substrate-session", token)
}

/// The CSRF token forms carry for `token`.
pub fn csrf_value(token: &str) -> String {
    derive("substrate-csrf", token)
}

/// Compares in time independent of where the first difference is.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether the request's cookies hold a valid session.
pub fn has_session(headers: &http::HeaderMap, token: &str) -> bool {
    let expected = session_value(token);
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .any(|(name, value)| name == COOKIE && same(value, &expected))
}

/// The `Set-Cookie` value that logs in (`secure` under TLS).
pub fn login_cookie(token: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict{}",
        session_value(token),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that logs out.
pub fn logout_cookie(secure: bool) -> String {
    format!(
        "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_derived_cookie_is_a_session() {
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::COOKIE,
            format!("a=1; {COOKIE}={}", session_value("t")).parse().unwrap(),
        );
        assert!(has_session(&h, "t"));
        assert!(!has_session(&h, "other"));
        h.insert(http::header::COOKIE, format!("{COOKIE}=t").parse().unwrap());
        assert!(!has_session(&h, "t"), "the raw token is not a session");
        assert_ne!(csrf_value("t"), session_value("t"));
        assert!(login_cookie("t", true).ends_with("; Secure"));
        assert!(login_cookie("t", false).contains("HttpOnly; SameSite=Strict"));
    }
}
