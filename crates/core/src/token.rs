//! Secrets that are only ever compared (API tokens, session ids, runner secrets) are random,
//! high-entropy strings stored as SHA-256 digests: a slow password hash adds nothing for 256 random
//! bits, and a digest lets the store find the row by index. Comparisons run in constant time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A new random secret: `prefix` + 43 characters of URL-safe base64 (256 bits).
/// The prefix says what the secret is for when one turns up in a shell history.
pub fn generate(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The hex SHA-256 digest under which a secret is stored.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether `secret` hashes to `stored_digest`, compared in constant time.
pub fn verify(secret: &str, stored_digest: &str) -> bool {
    digest(secret).as_bytes().ct_eq(stored_digest.as_bytes()).into()
}

/// Constant-time equality of two secrets given in the clear (such as the cluster secret).
pub fn equal(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_unique_and_prefixed() {
        let a = generate("bt_");
        let b = generate("bt_");
        assert_ne!(a, b);
        assert!(a.starts_with("bt_"));
        assert_eq!(a.len(), 3 + 43);
        assert!(a[3..].chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }

    #[test]
    fn verify_accepts_only_the_right_secret() {
        let secret = generate("x");
        let stored = digest(&secret);
        assert!(verify(&secret, &stored));
        assert!(!verify("x-wrong", &stored));
        assert!(equal("abc", "abc"));
        assert!(!equal("abc", "abd"));
        assert!(!equal("abc", "abcd"));
    }
}
