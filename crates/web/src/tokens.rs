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

// ---------------------------------------------------------------------------------
// The page.

use crate::pages::{csrf_field, error_summary, esc, input, select, table};
use crate::{App, Ctx, all_services, allowed, audit, check_csrf, see_other, signed_in};
use axum::extract::{Form, Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use std::collections::HashMap;

/// Every service the user may act on in any way.
async fn visible_services(app: &App, user: &User) -> Result<Vec<String>, WebError> {
    Ok(all_services(app)
        .await?
        .into_iter()
        .filter(|(s, _)| {
            [Action::ViewClients, Action::ViewReports]
                .iter()
                .any(|a| allowed(user, *a, Some(s)))
        })
        .map(|(s, _)| s.service_ref)
        .collect())
}

fn date(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|d| d.format("%d %b %Y %H:%M UTC").to_string())
        .unwrap_or_default()
}

async fn tokens_body(
    app: &App,
    ctx: &Ctx,
    n: &NewToken,
    errors: &[FieldError],
    made: Option<&str>,
) -> Result<String, WebError> {
    let now = auth::now();
    let mut body = String::new();
    if let Some(secret) = made {
        body.push_str(&format!(
            "<div class=\"panel\" role=\"status\"><h2>Your new token</h2>\
             <p>Copy it now and keep it somewhere safe, such as a password manager. It will not be shown again; \
             if you lose it, revoke it and make another.</p>\
             <p><code class=\"token\">{}</code></p></div>",
            esc(secret)
        ));
    }
    body.push_str(
        "<p>A token lets a script use the JSON API (<a href=\"/api/v1/openapi.json\">its description</a>) \
         as you: it can never do more than you can, and you can narrow it. Send it in the \
         <code>Authorization: Bearer</code> header. Anyone who has it can act as you, so never put it in \
         a web address, an email or shared code.</p>",
    );
    let rows: Vec<Vec<String>> = of_user(app.db(), ctx.user.user_id)
        .await?
        .into_iter()
        .map(|t| {
            let status = if t.revoked_at.is_some() {
                "Revoked".to_string()
            } else if !t.live(now) {
                "Expired".into()
            } else {
                "Active".into()
            };
            let action = if t.live(now) {
                format!(
                    "<form method=\"post\" action=\"/account/tokens/{}/revoke\">{}<button class=\"button button--warning\" type=\"submit\">Revoke<span class=\"visually-hidden\"> {}</span></button></form>",
                    t.token_id,
                    csrf_field(&ctx.session.csrf_token),
                    esc(&t.name)
                )
            } else {
                String::new()
            };
            vec![
                esc(&t.name),
                esc(if t.access == Access::Write { "Read and write" } else { "Read only" }),
                esc(&t.services.as_ref().map_or("All of yours".into(), |s| s.join(", "))),
                esc(&date(t.expires_at)),
                esc(&t.last_used_at.map_or("Never".into(), date)),
                status,
                action,
            ]
        })
        .collect();
    if !rows.is_empty() {
        body.push_str(&table(
            "Your tokens",
            &[
                "Name",
                "Access",
                "Services",
                "Expires",
                "Last used",
                "Status",
                "",
            ],
            &rows,
        ));
    }
    let mut access: Vec<(&str, &str)> = vec![("read", "Read only")];
    if may_write(ctx.user.role) {
        access.push(("write", "Read and write"));
    }
    let services_field = if matches!(ctx.user.role, Role::Commissioner | Role::Analyst) {
        input(
            "services",
            "Services (optional)",
            "text",
            &n.services,
            Some(
                "Service references separated by commas, to narrow the token to them. Leave blank for all your services.",
            ),
            errors,
            "off",
        )
    } else {
        String::new()
    };
    body.push_str(&format!(
        "<h2>Make a token</h2>{}<form method=\"post\" action=\"/account/tokens\" novalidate>{}{}{}{}{}\
         <button class=\"button\" type=\"submit\">Make token</button></form>",
        error_summary(errors),
        csrf_field(&ctx.session.csrf_token),
        input(
            "name",
            "Name",
            "text",
            &n.name,
            Some("What it is for, such as \"monthly upload from the GP system\""),
            errors,
            "off"
        ),
        select("access", "Access", &access, &n.access, errors),
        input(
            "days",
            "Days until it expires",
            "number",
            &n.days,
            Some("From 1 to 366"),
            errors,
            "off"
        ),
        services_field,
    ));
    Ok(body)
}

pub(crate) async fn tokens_page(
    State(app): State<App>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let ctx = signed_in(&app, &headers).await?;
    let n = NewToken {
        access: "read".into(),
        days: "90".into(),
        ..Default::default()
    };
    let body = tokens_body(&app, &ctx, &n, &[], None).await?;
    Ok(ctx.page("API access tokens", &body))
}

pub(crate) async fn make_token(
    State(app): State<App>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let ctx = signed_in(&app, &headers).await?;
    check_csrf(&headers, &ctx.session.csrf_token, &form)?;
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    let n = NewToken {
        name: get("name"),
        access: get("access"),
        days: get("days"),
        services: get("services"),
    };
    let visible = visible_services(&app, &ctx.user).await?;
    match check(&ctx.user, &n, &visible) {
        Err(errors) => {
            let body = tokens_body(&app, &ctx, &n, &errors, None).await?;
            Ok(ctx.page("API access tokens", &body))
        }
        Ok(checked) => {
            let (id, secret) = create(app.db(), &ctx.user, &checked).await?;
            audit(
                &app,
                &ctx.user.username,
                "token.create",
                ctx.user.service_id,
                Some(format!("token {id}")),
                serde_json::json!({
                    "token_id": id, "name": checked.0, "access": checked.1.code(),
                    "days": checked.2, "services": checked.3,
                }),
            )
            .await?;
            let fresh = NewToken {
                access: "read".into(),
                days: "90".into(),
                ..Default::default()
            };
            let body = tokens_body(&app, &ctx, &fresh, &[], Some(&secret)).await?;
            Ok(ctx.page("API access tokens", &body))
        }
    }
}

pub(crate) async fn revoke_token(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let ctx = signed_in(&app, &headers).await?;
    check_csrf(&headers, &ctx.session.csrf_token, &form)?;
    if !revoke(app.db(), ctx.user.user_id, id).await? {
        return Err(WebError::NotFound);
    }
    audit(
        &app,
        &ctx.user.username,
        "token.revoke",
        ctx.user.service_id,
        Some(format!("token {id}")),
        serde_json::json!({"token_id": id}),
    )
    .await?;
    Ok(see_other("/account/tokens"))
}
