//! Access tokens for scripts that use the JSON API.
//!
//! A signed-in user makes a token on the "API access tokens" page. The token acts as that
//! user: it can never do more than their role allows on their services, and it can be
//! narrowed to reading only and to some of those services. It has an expiry (at most a
//! year), can be revoked at any time, and is shown once: only its SHA-256 is stored, so
//! neither the database nor the audit log holds anything that would let someone use it.

use crate::authz::{Action, ServiceScope};
use crate::users::{FieldError, Role, User};
use crate::{WebError, auth};
use dcrs_store::Database;
use dcrs_store::WriteQuery as _;

/// What a token may do within its user's rights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read records, reports and patterns.
    Read,
    /// Also create and update records.
    Write,
}

impl Access {
    pub fn code(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
        }
    }
    pub fn parse(text: &str) -> Option<Access> {
        match text {
            "read" => Some(Access::Read),
            "write" => Some(Access::Write),
            _ => None,
        }
    }
}

/// Longest life of a token, in days.
pub const MAX_DAYS: i64 = 366;

/// Text every token starts with, so that a leaked one is easy to recognise (and to search
/// for in places it should not be).
pub const PREFIX: &str = "dcrs_";

/// A stored token (never the token itself).
#[derive(Debug, Clone)]
pub struct Token {
    pub token_id: i64,
    pub user_id: i64,
    pub name: String,
    pub access: Access,
    /// The services it is narrowed to; `None` for all of the user's.
    pub services: Option<Vec<String>>,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

type Row = (
    i64,
    i64,
    String,
    String,
    Option<String>,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
);

const COLUMNS: &str =
    "token_id, user_id, name, access, services, created_at, expires_at, revoked_at, last_used_at";

fn from_row(r: Row) -> Token {
    Token {
        token_id: r.0,
        user_id: r.1,
        name: r.2,
        access: Access::parse(&r.3).unwrap_or(Access::Read),
        services: r
            .4
            .map(|s| s.split(';').map(str::to_string).collect::<Vec<_>>()),
        created_at: r.5,
        expires_at: r.6,
        revoked_at: r.7,
        last_used_at: r.8,
    }
}

impl Token {
    /// Whether the token is usable at `now`.
    pub fn live(&self, now: i64) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }

    /// Whether the token's own narrowing lets it take `action` on `service` (the user's
    /// rights are checked separately, by `authz::allowed`).
    pub fn permits(&self, action: Action, service: Option<&ServiceScope>) -> bool {
        let reading = matches!(
            action,
            Action::ViewClients | Action::ViewAudit | Action::ViewReports
        );
        if !reading && self.access != Access::Write {
            return false;
        }
        match (&self.services, service) {
            (Some(list), Some(s)) => list.contains(&s.service_ref),
            _ => true,
        }
    }
}

/// What a person asks for on the page.
#[derive(Debug, Clone, Default)]
pub struct NewToken {
    pub name: String,
    pub access: String,
    pub days: String,
    /// Service references separated by commas or spaces; blank for all.
    pub services: String,
}

/// A checked request: name, access, days, services.
type Checked = (String, Access, i64, Option<Vec<String>>);

/// Checks a request against what the user may do. `visible` is every service the user
/// may act on at all.
pub fn check(user: &User, n: &NewToken, visible: &[String]) -> Result<Checked, Vec<FieldError>> {
    let mut errors = Vec::new();
    let name = n.name.trim().to_string();
    if name.is_empty() {
        errors.push(FieldError {
            field: "name",
            message: "Enter a name that says what the token is for".into(),
        });
    } else if name.chars().count() > 80 {
        errors.push(FieldError {
            field: "name",
            message: "Name must be 80 characters or fewer".into(),
        });
    }
    let access = match Access::parse(n.access.trim()) {
        Some(Access::Write) if !may_write(user.role) => {
            errors.push(FieldError {
                field: "access",
                message: "Your role only reads: choose read only".into(),
            });
            Access::Read
        }
        Some(a) => a,
        None => {
            errors.push(FieldError {
                field: "access",
                message: "Choose read only or read and write".into(),
            });
            Access::Read
        }
    };
    let days = match n.days.trim().parse::<i64>() {
        Ok(d) if (1..=MAX_DAYS).contains(&d) => d,
        _ => {
            errors.push(FieldError {
                field: "days",
                message: format!("Enter a whole number of days from 1 to {MAX_DAYS}"),
            });
            0
        }
    };
    let wanted: Vec<String> = n
        .services
        .split([',', ' ', ';'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let services = if wanted.is_empty() {
        None
    } else {
        if let Some(bad) = wanted.iter().find(|w| !visible.contains(w)) {
            errors.push(FieldError {
                field: "services",
                message: format!("{bad} is not one of your services"),
            });
        }
        Some(wanted)
    };
    if errors.is_empty() {
        Ok((name, access, days, services))
    } else {
        Err(errors)
    }
}

/// Whether a role changes anything through the API at all.
pub fn may_write(role: Role) -> bool {
    matches!(
        role,
        Role::HealthTrainer | Role::ServiceManager | Role::Admin
    )
}

/// Stores a checked token for `user`; returns its id and the token, to be shown once.
pub async fn create(
    db: &Database,
    user: &User,
    checked: &Checked,
) -> Result<(i64, String), WebError> {
    let (name, access, days, services) = checked;
    let secret = format!("{PREFIX}{}", auth::token());
    let now = auth::now();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO api_tokens (user_id, name, token_hash, access, services, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING token_id",
    )
    .bind(user.user_id)
    .bind(name.clone())
    .bind(auth::token_hash(&secret))
    .bind(access.code())
    .bind(services.as_ref().map(|s| s.join(";")))
    .bind(now)
    .bind(now + days * 86_400)
    .fetch_one(db.pool())
    .await?;
    Ok((id, secret))
}

/// The stored token matching `secret`, live or not.
pub async fn find(db: &Database, secret: &str) -> Result<Option<Token>, WebError> {
    if !secret.starts_with(PREFIX) || secret.len() > 200 {
        return Ok(None);
    }
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM api_tokens WHERE token_hash = $1"
    )))
    .bind(auth::token_hash(secret))
    .fetch_optional(db.pool())
    .await?;
    Ok(row.map(from_row))
}

/// Notes that a token was used (at most once a minute, to keep reads cheap).
pub async fn used(db: &Database, token: &Token, now: i64) -> Result<(), WebError> {
    if token.last_used_at.is_none_or(|t| now - t >= 60) {
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE token_id = $2")
            .bind(now)
            .bind(token.token_id)
            .execute_write(db)
            .await?;
    }
    Ok(())
}

/// A user's tokens, newest first.
pub async fn of_user(db: &Database, user_id: i64) -> Result<Vec<Token>, WebError> {
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM api_tokens WHERE user_id = $1 ORDER BY token_id DESC"
    )))
    .bind(user_id)
    .fetch_all(db.pool())
    .await?;
    Ok(rows.into_iter().map(from_row).collect())
}

/// Revokes one of the user's tokens; false when they have no such live token.
pub async fn revoke(db: &Database, user_id: i64, token_id: i64) -> Result<bool, WebError> {
    let done = sqlx::query(
        "UPDATE api_tokens SET revoked_at = $1 WHERE token_id = $2 AND user_id = $3 AND revoked_at IS NULL",
    )
    .bind(auth::now())
    .bind(token_id)
    .bind(user_id)
    .execute_write(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Revokes every token of a user (when their account is disabled).
pub async fn revoke_all(db: &Database, user_id: i64) -> Result<(), WebError> {
    sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
        .bind(auth::now())
        .bind(user_id)
        .execute_write(db)
        .await?;
    Ok(())
}
