//! Keys kept outside the database, one per file in the secrets folder: the key as hex
//! digits, in a file made new (never overwriting one) and readable by its owner only.
//! Research projects keep their keys this way, and so does the web application (its key
//! for sealing TOTP secrets).

use std::io::Write;
use std::path::Path;

/// The hex digits of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes from hex digits; `None` for anything else.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len() / 2)
        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
        .collect()
}

/// Writes a new key file holding `key` as hex, readable by its owner only; fails if the
/// file exists.
pub fn create(path: &Path, key: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    f.write_all(hex(key).as_bytes())?;
    f.write_all(b"\n")
}

/// The hex text of a key file, trimmed.
pub fn read_hex(path: &Path) -> std::io::Result<String> {
    Ok(std::fs::read_to_string(path)?.trim().to_string())
}
