//! Values the database must not hold in the clear (TOTP secrets), sealed with a key kept
//! outside it: `<secrets>/web.key`, 32 random bytes made on first start (readable by
//! its owner only, never overwritten). A sealed value is `v1:` + nonce + ciphertext
//! (ChaCha20-Poly1305, hex), so a copy of the database alone cannot pass anyone's second
//! factor, and a value changed in the database fails to open instead of being trusted.

use crate::WebError;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use dcrs_extract::secret_file::{self, from_hex};
use std::path::Path;

const PREFIX: &str = "v1:";

/// The key and what it seals.
#[derive(Clone)]
pub struct Sealer {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer")
    }
}

/// The key file in a secrets folder.
pub fn key_path(secrets: &Path) -> std::path::PathBuf {
    secrets.join("web.key")
}

impl Sealer {
    /// Reads the key from the secrets folder, making it (and the folder) on first use.
    pub fn open_or_create(secrets: &Path) -> Result<Sealer, WebError> {
        let path = key_path(secrets);
        let bad = |what: &str| WebError::Internal(format!("{what} {}", path.display()));
        let hex = match secret_file::read_hex(&path) {
            Ok(hex) => hex,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(secrets).map_err(|_| bad("cannot create the folder of"))?;
                let key: [u8; 32] = crate::auth::random_bytes();
                secret_file::create(&path, &key).map_err(|_| bad("cannot write the key file"))?;
                secret_file::hex(&key)
            }
            Err(_) => return Err(bad("cannot read the key file")),
        };
        let key = from_hex(&hex)
            .and_then(|k| Key::try_from(k.as_slice()).ok())
            .ok_or_else(|| bad("the key file is not 64 hex digits:"))?;
        Ok(Sealer {
            cipher: ChaCha20Poly1305::new(&key),
        })
    }

    /// Seals a value.
    pub fn seal(&self, plain: &str) -> String {
        let nonce: [u8; 12] = crate::auth::random_bytes();
        let sealed = self
            .cipher
            .encrypt(&Nonce::from(nonce), plain.as_bytes())
            .expect("sealing a short value cannot fail");
        format!(
            "{PREFIX}{}:{}",
            crate::auth::hex(&nonce),
            crate::auth::hex(&sealed)
        )
    }

    /// Opens a sealed value: `None` when it is not sealed, was sealed with another key,
    /// or was changed.
    pub fn open(&self, stored: &str) -> Option<String> {
        let (nonce, sealed) = stored.strip_prefix(PREFIX)?.split_once(':')?;
        let nonce = Nonce::try_from(from_hex(nonce)?.as_slice()).ok()?;
        let plain = self
            .cipher
            .decrypt(&nonce, from_hex(sealed)?.as_slice())
            .ok()?;
        String::from_utf8(plain).ok()
    }
}

/// Whether a stored value is sealed (values from before sealing are not).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let a = Sealer::open_or_create(dir.path()).unwrap();
        let again = Sealer::open_or_create(dir.path()).unwrap();
        let sealed = a.seal("JBSWY3DPEHPK3PXP");
        assert!(is_sealed(&sealed) && !sealed.contains("JBSWY3DPEHPK3PXP"));
        assert_ne!(sealed, a.seal("JBSWY3DPEHPK3PXP"), "a new nonce each time");
        assert_eq!(
            again.open(&sealed).as_deref(),
            Some("JBSWY3DPEHPK3PXP"),
            "the key is kept"
        );
        let other = Sealer::open_or_create(tempfile::tempdir().unwrap().path()).unwrap();
        assert_eq!(other.open(&sealed), None, "another key opens nothing");
        let mut changed = sealed.clone().into_bytes();
        let last = changed.len() - 1;
        changed[last] = if changed[last] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            a.open(&String::from_utf8(changed).unwrap()),
            None,
            "a changed value fails"
        );
        assert_eq!(
            a.open("JBSWY3DPEHPK3PXP"),
            None,
            "a value never sealed is not opened"
        );
    }
}
