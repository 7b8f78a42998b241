//! Passwords, sessions, second factor and tokens.
//!
//! - Passwords are Argon2id hashes (the crate's defaults), computed on a blocking thread
//!   so that sign-ins do not hold up other requests.
//! - A session id is 32 random bytes; the cookie carries it, the database only its
//!   SHA-256, so a copy of the database does not sign anyone in. Each session has its own
//!   CSRF token. Signing in always starts a new session.
//! - TOTP (RFC 6238: HMAC-SHA1, 30-second steps, 6 digits, one step of drift allowed).

use crate::WebError;
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};
use dcrs_store::Database;
use dcrs_store::WriteQuery as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Digest;
use sqlx::Row as _;

/// Random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("the operating system provides random bytes");
    b
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new random token (session id, CSRF token) as hex.
pub fn token() -> String {
    hex(&random_bytes::<32>())
}

/// SHA-256 of a token, as stored.
pub fn token_hash(token: &str) -> String {
    hex(&sha2::Sha256::digest(token.as_bytes()))
}

/// Password checks running at once, in the whole process. Each takes 19 MiB for its
/// second or so: 400 sign-ins at the same moment took the server to 2.2 GB; past this
/// many the rest queue, which costs no more time (the cores are busy either way).
fn argon2_turns() -> &'static tokio::sync::Semaphore {
    static TURNS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    TURNS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new(2 * cores)
    })
}

/// Hashes a password (on a blocking thread).
pub async fn hash_password(password: String) -> Result<String, WebError> {
    let _turn = argon2_turns()
        .acquire()
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?;
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| WebError::Internal(format!("password hashing failed: {e}")))
    })
    .await
    .map_err(|e| WebError::Internal(e.to_string()))?
}

/// Whether `password` matches the stored hash (on a blocking thread).
pub async fn verify_password(password: String, hash: String) -> bool {
    let Ok(_turn) = argon2_turns().acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

/// A dummy hash to verify against when the user name is unknown, so that an unknown name
/// takes as long to refuse as a wrong password.
pub const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Mq0D6uZ8Y6HoUu2KcR2tHq0LzJfF7l3kGmS3QwJwq9Y";

/// Unix seconds now.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// How stale the stored time a session was last seen may be, in seconds.
const LAST_SEEN_STEP: i64 = 30;

/// A session as stored.
#[derive(Debug, Clone)]
pub struct Session {
    pub session_hash: String,
    pub user_id: i64,
    pub csrf_token: String,
    pub second_factor_done: bool,
    pub last_seen_at: i64,
    pub created_at: i64,
}

/// Starts a session for a user; returns the id for the cookie.
pub async fn start_session(
    db: &Database,
    user_id: i64,
    second_factor_done: bool,
) -> Result<(String, Session), WebError> {
    let id = token();
    let s = Session {
        session_hash: token_hash(&id),
        user_id,
        csrf_token: token(),
        second_factor_done,
        last_seen_at: now(),
        created_at: now(),
    };
    sqlx::query(
        "INSERT INTO web_sessions (session_hash, user_id, csrf_token, second_factor_done, \
         created_at, last_seen_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(s.session_hash.clone())
    .bind(user_id)
    .bind(s.csrf_token.clone())
    .bind(i64::from(second_factor_done))
    .bind(s.last_seen_at)
    .bind(s.last_seen_at)
    .execute_write(db)
    .await?;
    Ok((id, s))
}

/// The live session with this id and its user (read together, in one statement, as
/// every page asks for both), touching it; `None` when there is none or it has been idle
/// longer than `idle_seconds` (it is then ended).
pub async fn find_session(
    db: &Database,
    id: &str,
    idle_seconds: i64,
) -> Result<Option<(Session, crate::users::User)>, WebError> {
    let hash = token_hash(id);
    let sql = format!(
        "SELECT {}, s.csrf_token, s.second_factor_done, s.last_seen_at, s.created_at \
         FROM web_sessions s JOIN users u ON u.user_id = s.user_id WHERE s.session_hash = $1",
        crate::users::columns_of("u")
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(hash.clone())
        .fetch_optional(db.pool())
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let user = crate::users::from_row(&row)?;
    let n = crate::users::COLUMN_COUNT;
    let csrf_token: String = row.try_get(n)?;
    let second: i64 = row.try_get(n + 1)?;
    let last: i64 = row.try_get(n + 2)?;
    let created: i64 = row.try_get(n + 3)?;
    let t = now();
    if t - last > idle_seconds || t - created > MAX_SESSION_SECONDS {
        end_session(db, id).await?;
        return Ok(None);
    }
    // The idle clock restarts with each request, but is written at most every
    // LAST_SEEN_STEP seconds: a write per page would queue every reader behind the
    // writers. A session can therefore end up to that much before its idle time is up.
    if t - last >= LAST_SEEN_STEP {
        sqlx::query("UPDATE web_sessions SET last_seen_at = $1 WHERE session_hash = $2")
            .bind(t)
            .bind(hash.clone())
            .execute_write(db)
            .await?;
    }
    let session = Session {
        session_hash: hash,
        user_id: user.user_id,
        csrf_token,
        second_factor_done: second != 0,
        last_seen_at: t,
        created_at: created,
    };
    Ok(Some((session, user)))
}

/// The longest a session lasts however busy it is: a working day.
pub const MAX_SESSION_SECONDS: i64 = 12 * 3600;

/// Ends a session.
pub async fn end_session(db: &Database, id: &str) -> Result<(), WebError> {
    sqlx::query("DELETE FROM web_sessions WHERE session_hash = $1")
        .bind(token_hash(id))
        .execute_write(db)
        .await?;
    Ok(())
}

/// Ends every session of a user (on disabling the account or changing its password).
pub async fn end_sessions_of(db: &Database, user_id: i64) -> Result<(), WebError> {
    sqlx::query("DELETE FROM web_sessions WHERE user_id = $1")
        .bind(user_id)
        .execute_write(db)
        .await?;
    Ok(())
}

/// Ends every session of a user but one (the one that made a change to the account).
pub async fn end_other_sessions(
    db: &Database,
    user_id: i64,
    keep_hash: &str,
) -> Result<(), WebError> {
    sqlx::query("DELETE FROM web_sessions WHERE user_id = $1 AND session_hash <> $2")
        .bind(user_id)
        .bind(keep_hash.to_string())
        .execute_write(db)
        .await?;
    Ok(())
}

/// Marks a session's second factor as done.
pub async fn second_factor_done(db: &Database, session_hash: &str) -> Result<(), WebError> {
    sqlx::query("UPDATE web_sessions SET second_factor_done = 1 WHERE session_hash = $1")
        .bind(session_hash.to_string())
        .execute_write(db)
        .await?;
    Ok(())
}

/// Compares two strings in time that does not depend on where they differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding (the form authenticator apps take).
pub fn base32(bytes: &[u8]) -> String {
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            out.push(BASE32[((buffer >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(BASE32[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Reads base32 (case and spaces ignored).
pub fn from_base32(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.chars().filter(|c| !c.is_whitespace() && *c != '=') {
        let v = BASE32
            .iter()
            .position(|&x| x as char == c.to_ascii_uppercase())? as u32;
        buffer = (buffer << 5) | v;
        bits += 5;
        if bits >= 8 {
            out.push((buffer >> (bits - 8)) as u8);
            bits -= 8;
        }
    }
    Some(out)
}

/// The HOTP value of `secret` at `counter` with `digits` digits (RFC 4226).
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(secret).expect("any key length");
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = (h[h.len() - 1] & 0x0f) as usize;
    let code = (u32::from(h[offset] & 0x7f) << 24)
        | (u32::from(h[offset + 1]) << 16)
        | (u32::from(h[offset + 2]) << 8)
        | u32::from(h[offset + 3]);
    code % 10u32.pow(digits)
}

/// The time step whose TOTP of `secret` (base32) is `code`, at `unix_time` or one
/// 30-second step either side; `None` when it matches none.
pub fn totp_step(secret: &str, code: &str, unix_time: i64) -> Option<u64> {
    let key = from_base32(secret)?;
    let code = code.trim().replace(' ', "");
    if code.len() != 6 || !code.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let step = unix_time.max(0) as u64 / 30;
    [step.saturating_sub(1), step, step + 1]
        .into_iter()
        .find(|&s| same(&format!("{:06}", hotp(&key, s, 6)), &code))
}

/// Whether `code` is the TOTP of `secret` (base32) at `unix_time`, or one 30-second step
/// either side.
pub fn totp_ok(secret: &str, code: &str, unix_time: i64) -> bool {
    totp_step(secret, code, unix_time).is_some()
}

/// A new TOTP secret (20 random bytes, base32).
pub fn new_totp_secret() -> String {
    base32(&random_bytes::<20>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totp_matches_the_rfc_6238_test_vectors() {
        // RFC 6238 appendix B, SHA-1, secret "12345678901234567890", 8 digits.
        let key = b"12345678901234567890";
        for (time, expected) in [
            (59u64, 94287082u32),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
        ] {
            assert_eq!(hotp(key, time / 30, 8), expected, "t = {time}");
        }
        let secret = base32(key);
        assert_eq!(secret, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert!(totp_ok(&secret, "287082", 59));
        assert!(
            totp_ok(&secret, "287082", 59 + 30),
            "one step late is accepted"
        );
        assert!(!totp_ok(&secret, "287082", 59 + 90));
        assert!(!totp_ok(&secret, "28708", 59));
    }

    #[test]
    fn base32_round_trips() {
        let b = random_bytes::<20>();
        assert_eq!(from_base32(&base32(&b)).unwrap(), b);
    }
}
