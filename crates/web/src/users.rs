//! User accounts: roles, what each belongs to, and their storage.

use crate::WebError;
use dcrs_store::{Database, WriteQuery as _};
use sqlx::Row;

/// The roles of brief.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    HealthTrainer,
    ServiceManager,
    Commissioner,
    Analyst,
    Admin,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::HealthTrainer,
        Role::ServiceManager,
        Role::Commissioner,
        Role::Analyst,
        Role::Admin,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Role::HealthTrainer => "health_trainer",
            Role::ServiceManager => "service_manager",
            Role::Commissioner => "commissioner",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Role::HealthTrainer => "Health trainer",
            Role::ServiceManager => "Service manager",
            Role::Commissioner => "Commissioner",
            Role::Analyst => "Analyst",
            Role::Admin => "Admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.code() == text)
    }

    /// Whether the role sees identifiable client records.
    pub fn sees_identifiable(self) -> bool {
        matches!(self, Role::HealthTrainer | Role::ServiceManager)
    }

    /// Whether the setting that requires a second factor applies: the roles that see
    /// identifiable records, and admins, who could otherwise create such an account.
    pub fn needs_second_factor(self) -> bool {
        self.sees_identifiable() || self == Role::Admin
    }
}

/// A signed-in person's account.
#[derive(Debug, Clone)]
pub struct User {
    pub user_id: i64,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    /// Health trainers and service managers: their service.
    pub service_id: Option<i64>,
    /// Health trainers: their worker record in that service.
    pub worker_ref: Option<String>,
    /// Commissioners: their organisation.
    pub org_ref: Option<String>,
    /// Analysts: the services they may see; `None` for every service.
    pub analyst_services: Option<Vec<String>>,
    pub password_hash: String,
    pub totp_secret: Option<String>,
    pub disabled: bool,
    pub failed_logins: i64,
    pub locked_until: Option<i64>,
    /// The last TOTP time step accepted (a code is never accepted twice).
    pub totp_last_step: Option<i64>,
    /// The password was chosen by someone else: it must be changed before anything else.
    pub must_change_password: bool,
}

const COLUMNS: &str = "user_id, username, display_name, role, service_id, worker_ref, org_ref, \
     analyst_services, password_hash, totp_secret, disabled, failed_logins, locked_until, \
     totp_last_step, must_change_password";

/// The columns of [`COLUMNS`], each taken from the table named `alias`.
pub(crate) fn columns_of(alias: &str) -> String {
    COLUMNS
        .split(',')
        .map(|c| format!("{alias}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The number of columns in [`COLUMNS`]: a query's own columns follow them.
pub(crate) const COLUMN_COUNT: usize = 15;

pub(crate) fn from_row(r: &sqlx::any::AnyRow) -> Result<User, WebError> {
    let role: String = r.try_get(3)?;
    let analyst: Option<String> = r.try_get(7)?;
    Ok(User {
        user_id: r.try_get(0)?,
        username: r.try_get(1)?,
        display_name: r.try_get(2)?,
        role: Role::parse(&role)
            .ok_or_else(|| WebError::Internal(format!("unknown role {role}")))?,
        service_id: r.try_get(4)?,
        worker_ref: r.try_get(5)?,
        org_ref: r.try_get(6)?,
        analyst_services: analyst.map(|a| {
            a.split(';')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        }),
        password_hash: r.try_get(8)?,
        totp_secret: r.try_get(9)?,
        disabled: r.try_get::<i64, _>(10)? != 0,
        failed_logins: r.try_get(11)?,
        locked_until: r.try_get(12)?,
        totp_last_step: r.try_get(13)?,
        must_change_password: r.try_get::<i64, _>(14)? != 0,
    })
}

/// The account with this user name.
pub async fn by_username(db: &Database, username: &str) -> Result<Option<User>, WebError> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE username = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(username.to_string())
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// The account with this id.
pub async fn by_id(db: &Database, user_id: i64) -> Result<Option<User>, WebError> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE user_id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(user_id)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Every account, by user name.
pub async fn all(db: &Database) -> Result<Vec<User>, WebError> {
    let sql = format!("SELECT {COLUMNS} FROM users ORDER BY username");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(from_row)
        .collect()
}

/// A new account as asked for, before it is checked.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub service_ref: Option<String>,
    pub worker_ref: Option<String>,
    pub org_ref: Option<String>,
    /// Analysts: service references separated by commas or semicolons; empty for all.
    pub analyst_services: Option<String>,
    pub password: String,
}

/// A problem with a field of a form, for the error summary and the field.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    /// The message for a field of the form.
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

fn blank(v: &Option<String>) -> bool {
    v.as_deref().is_none_or(|s| s.trim().is_empty())
}

/// The shortest password accepted (NCSC guidance favours length over composition).
pub const MIN_PASSWORD: usize = 12;

/// Checks a new account against the rest of the data; returns the row's values or the
/// problems, field by field.
pub async fn check(
    db: &Database,
    n: &NewUser,
) -> Result<Result<CheckedUser, Vec<FieldError>>, WebError> {
    let mut errors = Vec::new();
    let mut err = |field, message: &str| {
        errors.push(FieldError {
            field,
            message: message.to_string(),
        })
    };
    let username = n.username.trim().to_lowercase();
    if username.is_empty()
        || !username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
    {
        err(
            "username",
            "Enter a user name of letters, numbers, dots, hyphens or underscores",
        );
    } else if by_username(db, &username).await?.is_some() {
        err("username", "That user name is already taken");
    }
    if n.display_name.trim().is_empty() {
        err("display_name", "Enter the person's name");
    }
    if n.password.chars().count() < MIN_PASSWORD {
        err(
            "password",
            &format!("Enter a password of at least {MIN_PASSWORD} characters"),
        );
    }
    let role = Role::parse(&n.role);
    let mut service_id = None;
    let mut worker_ref = None;
    let mut org_ref = None;
    let mut analyst = None;
    match role {
        None => err("role", "Select a role"),
        Some(Role::HealthTrainer | Role::ServiceManager) => {
            if blank(&n.service_ref) {
                err("service_ref", "Enter the reference of the person's service");
            } else {
                let sref = n.service_ref.clone().unwrap_or_default();
                let id: Option<i64> =
                    sqlx::query_scalar("SELECT service_id FROM services WHERE service_ref = $1")
                        .bind(sref.trim().to_string())
                        .fetch_optional(db.pool())
                        .await?;
                match id {
                    None => err("service_ref", "There is no service with that reference"),
                    Some(id) => service_id = Some(id),
                }
            }
            if role == Some(Role::HealthTrainer) {
                if blank(&n.worker_ref) {
                    err("worker_ref", "Enter the health trainer's worker reference");
                } else if let Some(id) = service_id {
                    let w = n.worker_ref.clone().unwrap_or_default().trim().to_string();
                    let found: Option<i64> = sqlx::query_scalar(
                        "SELECT worker_id FROM workers WHERE service_id = $1 AND worker_ref = $2",
                    )
                    .bind(id)
                    .bind(w.clone())
                    .fetch_optional(db.pool())
                    .await?;
                    if found.is_none() {
                        err(
                            "worker_ref",
                            "There is no worker with that reference in the service",
                        );
                    } else {
                        worker_ref = Some(w);
                    }
                }
            }
        }
        Some(Role::Commissioner) => {
            if blank(&n.org_ref) {
                err(
                    "org_ref",
                    "Enter the reference of the commissioning organisation",
                );
            } else {
                let o = n.org_ref.clone().unwrap_or_default().trim().to_string();
                let found: Option<i64> =
                    sqlx::query_scalar("SELECT org_id FROM organisations WHERE org_ref = $1")
                        .bind(o.clone())
                        .fetch_optional(db.pool())
                        .await?;
                if found.is_none() {
                    err("org_ref", "There is no organisation with that reference");
                } else {
                    org_ref = Some(o);
                }
            }
        }
        Some(Role::Analyst) => {
            let list: Vec<String> = n
                .analyst_services
                .clone()
                .unwrap_or_default()
                .split([',', ';'])
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            for sref in &list {
                let found: Option<i64> =
                    sqlx::query_scalar("SELECT service_id FROM services WHERE service_ref = $1")
                        .bind(sref.clone())
                        .fetch_optional(db.pool())
                        .await?;
                if found.is_none() {
                    err(
                        "analyst_services",
                        &format!("There is no service with the reference {sref}"),
                    );
                }
            }
            analyst = (!list.is_empty()).then(|| list.join(";"));
        }
        Some(Role::Admin) => {}
    }
    if !errors.is_empty() {
        return Ok(Err(errors));
    }
    Ok(Ok(CheckedUser {
        username,
        display_name: n.display_name.trim().to_string(),
        role: role.expect("checked"),
        service_id,
        worker_ref,
        org_ref,
        analyst_services: analyst,
    }))
}

/// An account that passed [`check`].
#[derive(Debug, Clone)]
pub struct CheckedUser {
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub service_id: Option<i64>,
    pub worker_ref: Option<String>,
    pub org_ref: Option<String>,
    pub analyst_services: Option<String>,
}

/// Stores a checked account with its password hash; returns its id. `must_change` when
/// someone other than the person chose the password.
pub async fn insert(
    db: &Database,
    u: &CheckedUser,
    password_hash: &str,
    must_change: bool,
) -> Result<i64, WebError> {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO users (username, display_name, role, service_id, worker_ref, org_ref, \
         analyst_services, password_hash, created_at, password_changed_at, must_change_password) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10) RETURNING user_id",
    )
    .bind(u.username.clone())
    .bind(u.display_name.clone())
    .bind(u.role.code())
    .bind(u.service_id)
    .bind(u.worker_ref.clone())
    .bind(u.org_ref.clone())
    .bind(u.analyst_services.clone())
    .bind(password_hash.to_string())
    .bind(now)
    .bind(i64::from(must_change))
    .fetch_one(db.pool())
    .await?;
    Ok(id)
}

/// Lifts an account's lock and sets its counts of failed passwords and codes to zero.
pub async fn unlock(db: &Database, user_id: i64) -> Result<(), WebError> {
    sqlx::query(
        "UPDATE users SET locked_until = NULL, failed_logins = 0, failed_codes = 0 WHERE user_id = $1",
    )
    .bind(user_id)
    .execute_write(db)
    .await?;
    Ok(())
}

/// Which count a failed attempt adds to: wrong passwords and wrong security codes are
/// counted apart, so that a correct password cannot set back the count of codes guessed.
#[derive(Clone, Copy)]
pub enum Failure {
    Password,
    Code,
}

/// Adds a failure to an account's count in one statement (so guesses in parallel are
/// all counted) and returns the count.
pub async fn count_failure(db: &Database, user_id: i64, kind: Failure) -> Result<i64, WebError> {
    let sql = match kind {
        Failure::Password => {
            "UPDATE users SET failed_logins = failed_logins + 1 WHERE user_id = $1 RETURNING failed_logins"
        }
        Failure::Code => {
            "UPDATE users SET failed_codes = failed_codes + 1 WHERE user_id = $1 RETURNING failed_codes"
        }
    };
    Ok(sqlx::query_scalar(sql)
        .bind(user_id)
        .fetch_one(db.pool())
        .await?)
}

/// Locks an account until a time (seconds since 1970), its counts of failures cleared.
pub async fn lock(db: &Database, user_id: i64, until: i64) -> Result<(), WebError> {
    sqlx::query(
        "UPDATE users SET failed_logins = 0, failed_codes = 0, locked_until = $1 WHERE user_id = $2",
    )
    .bind(until)
    .bind(user_id)
    .execute_write(db)
    .await?;
    Ok(())
}

/// After a right password: the count of wrong ones and any lock are cleared.
pub async fn clear_failures(db: &Database, user_id: i64) -> Result<(), WebError> {
    sqlx::query("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE user_id = $1")
        .bind(user_id)
        .execute_write(db)
        .await?;
    Ok(())
}

/// Accepts a security code's time step once: refused when a step at or after it was
/// accepted before or the account is locked at `now`. The check and the move of the
/// last step are one statement, so two uses of one code at the same moment let exactly
/// one in.
pub async fn accept_code_step(
    db: &Database,
    user_id: i64,
    step: i64,
    now: i64,
) -> Result<bool, WebError> {
    Ok(sqlx::query(
        "UPDATE users SET totp_last_step = $1, failed_codes = 0 WHERE user_id = $2 \
         AND (totp_last_step IS NULL OR totp_last_step < $1) \
         AND (locked_until IS NULL OR locked_until <= $3)",
    )
    .bind(step)
    .bind(user_id)
    .bind(now)
    .execute_write(db)
    .await?
    .rows_affected()
        == 1)
}

/// A new password (its hash), chosen by the account's user: no change is outstanding.
pub async fn set_own_password(db: &Database, user_id: i64, hash: String) -> Result<(), WebError> {
    sqlx::query(
        "UPDATE users SET password_hash = $1, password_changed_at = $2, must_change_password = 0 WHERE user_id = $3",
    )
    .bind(hash)
    .bind(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    .bind(user_id)
    .execute_write(db)
    .await?;
    Ok(())
}

/// Turns on a second factor: the sealed secret and the step of the code that proved it.
pub async fn set_second_factor(
    db: &Database,
    user_id: i64,
    sealed_secret: String,
    step: Option<i64>,
) -> Result<(), WebError> {
    sqlx::query("UPDATE users SET totp_secret = $1, totp_last_step = $2 WHERE user_id = $3")
        .bind(sealed_secret)
        .bind(step)
        .bind(user_id)
        .execute_write(db)
        .await?;
    Ok(())
}

/// Disables an account: it can no longer sign in, its sessions end and its API tokens
/// are revoked.
pub async fn disable(db: &Database, user_id: i64) -> Result<(), WebError> {
    sqlx::query("UPDATE users SET disabled = 1 WHERE user_id = $1")
        .bind(user_id)
        .execute_write(db)
        .await?;
    crate::auth::end_sessions_of(db, user_id).await?;
    crate::tokens::revoke_all(db, user_id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_count_matches_the_columns() {
        assert_eq!(COLUMNS.split(',').count(), COLUMN_COUNT);
        assert!(columns_of("u").starts_with("u.user_id, u.username, "));
    }
}
