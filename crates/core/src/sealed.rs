//! Project secrets at rest: AES-256-GCM with a key shared by the nodes (`secrets.encryption_key`).
//! Each value gets a fresh random nonce, and the ciphertext is bound to where it belongs (the
//! "associated data", e.g. `project:3/secret:DB_PASSWORD`), so a sealed value copied to another
//! row does not open.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// An encryption key; its `Debug` never shows it.
#[derive(Clone)]
pub struct SealKey(Aes256Gcm);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(********)")
    }
}

impl SealKey {
    /// A key from its base64 form (32 bytes).
    pub fn from_base64(s: &str) -> Result<SealKey, String> {
        let bytes = STANDARD.decode(s.trim()).map_err(|_| "is not base64".to_owned())?;
        let cipher =
            Aes256Gcm::new_from_slice(&bytes).map_err(|_| format!("is {} bytes; it must be 32", bytes.len()))?;
        Ok(SealKey(cipher))
    }

    /// A new random key in base64.
    pub fn generate() -> String {
        STANDARD.encode(rand::random::<[u8; 32]>())
    }

    /// Encrypts `plain` for the place `aad`; returns base64 of nonce ‖ ciphertext.
    pub fn seal(&self, plain: &str, aad: &str) -> String {
        let nonce: [u8; 12] = rand::random();
        let payload = Payload { msg: plain.as_bytes(), aad: aad.as_bytes() };
        // Encryption with a valid key and nonce cannot fail; an empty result would not open.
        let ct = self.0.encrypt(Nonce::from_slice(&nonce), payload).unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend(ct);
        STANDARD.encode(out)
    }

    /// Decrypts what [`SealKey::seal`] made for the same `aad`.
    pub fn open(&self, sealed: &str, aad: &str) -> Result<String, String> {
        let bytes = STANDARD.decode(sealed).map_err(|_| "sealed value is not base64".to_owned())?;
        if bytes.len() < 12 {
            return Err("sealed value is too short".into());
        }
        let (nonce, ct) = bytes.split_at(12);
        let plain = self
            .0
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: aad.as_bytes() })
            .map_err(|_| "cannot decrypt: wrong secrets.encryption_key, or the value was tampered with".to_owned())?;
        String::from_utf8(plain).map_err(|_| "decrypted value is not UTF-8".to_owned())
    }
}

/// The associated data of a project secret.
pub fn secret_aad(project_id: i64, name: &str) -> String {
    format!("project:{project_id}/secret:{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_open_only_with_their_key_and_place() {
        let key = SealKey::from_base64(&SealKey::generate()).unwrap();
        let sealed = key.seal("hunter2", "project:1/secret:A");
        assert!(!sealed.contains("hunter2"));
        assert_ne!(sealed, key.seal("hunter2", "project:1/secret:A"), "nonces must differ");
        assert_eq!(key.open(&sealed, "project:1/secret:A").unwrap(), "hunter2");
        assert!(key.open(&sealed, "project:2/secret:A").is_err());
        let other = SealKey::from_base64(&SealKey::generate()).unwrap();
        assert!(other.open(&sealed, "project:1/secret:A").is_err());
        assert!(key.open("AAAA", "x").is_err());
    }

    #[test]
    fn bad_keys_say_what_is_wrong() {
        assert!(SealKey::from_base64("not base64!").unwrap_err().contains("base64"));
        assert!(SealKey::from_base64(&STANDARD.encode([0u8; 16])).unwrap_err().contains("16 bytes"));
        assert!(!format!("{:?}", SealKey::from_base64(&SealKey::generate()).unwrap()).contains('='));
    }
}
