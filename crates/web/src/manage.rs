//! A service manager's pages about the service itself: its staff accounts (add a health
//! trainer linked to a worker record, disable the account of someone who leaves) and the
//! configuration timeline as recorded, with who entered each change and when.

use crate::pages::{csrf_field, error_summary, esc, input, table};
use crate::users::{self, FieldError, NewUser, Role};
use crate::{
    Action, App, Ctx, ServiceScope, WebError, audit, authorised, check_csrf, see_other, signed_in,
};
use axum::extract::{Form, Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use dcrs_store::WriteQuery as _;
use std::collections::HashMap;

async fn staff_body(
    app: &App,
    ctx: &Ctx,
    s: &ServiceScope,
    n: &NewUser,
    errors: &[FieldError],
) -> Result<String, WebError> {
    let rows: Vec<Vec<String>> = users::all(app.db())
        .await?
        .into_iter()
        .filter(|u| u.service_id == Some(s.service_id))
        .map(|u| {
            let locked = u.locked_until.is_some_and(|t| t > crate::auth::now());
            let unlock = if locked && u.role == Role::HealthTrainer && !u.disabled {
                format!(
                    "<form method=\"post\" action=\"/services/{}/staff/{}/unlock\">{}<button class=\"button button--secondary\" type=\"submit\">Unlock<span class=\"visually-hidden\"> {}</span></button></form>",
                    esc(&s.service_ref),
                    u.user_id,
                    csrf_field(&ctx.session.csrf_token),
                    esc(&u.username)
                )
            } else {
                String::new()
            };
            let action = if u.disabled || u.role != Role::HealthTrainer {
                String::new()
            } else {
                format!(
                    "<form method=\"post\" action=\"/services/{}/staff/{}/disable\">{}<button class=\"button button--warning\" type=\"submit\">Disable<span class=\"visually-hidden\"> {}</span></button></form>",
                    esc(&s.service_ref),
                    u.user_id,
                    csrf_field(&ctx.session.csrf_token),
                    esc(&u.username)
                )
            };
            vec![
                esc(&u.username),
                esc(&u.display_name),
                esc(u.role.label()),
                esc(u.worker_ref.as_deref().unwrap_or("")),
                if u.disabled {
                    "Disabled".into()
                } else if locked {
                    "Locked after failed sign-ins".into()
                } else {
                    "Active".into()
                },
                format!("{unlock}{action}"),
            ]
        })
        .collect();
    Ok(format!(
        "{}<h2>Add a health trainer's account</h2>{}<div class=\"panel\"><form method=\"post\" action=\"/services/{}/staff\" novalidate>{}{}{}{}{}\
         <button class=\"button\" type=\"submit\">Add account</button></form></div>",
        table(
            "Staff accounts",
            &["User name", "Name", "Role", "Worker", "Status", ""],
            &rows
        ),
        error_summary(errors),
        esc(&s.service_ref),
        csrf_field(&ctx.session.csrf_token),
        input(
            "username",
            "User name",
            "text",
            &n.username,
            None,
            errors,
            "off"
        ),
        input(
            "display_name",
            "Name",
            "text",
            &n.display_name,
            None,
            errors,
            "off"
        ),
        input(
            "worker_ref",
            "Worker reference",
            "text",
            n.worker_ref.as_deref().unwrap_or(""),
            Some("Their worker record in this service"),
            errors,
            "off"
        ),
        input(
            "password",
            "First password",
            "password",
            "",
            Some("At least 12 characters; they must change it when they first sign in"),
            errors,
            "new-password"
        ),
    ))
}

pub(crate) async fn staff_page(
    State(app): State<App>,
    headers: HeaderMap,
    Path(service): Path<String>,
) -> Result<Response, WebError> {
    let ctx = signed_in(&app, &headers).await?;
    let s = authorised(&app, &ctx, &service, Action::ManageStaff).await?;
    let body = staff_body(&app, &ctx, &s, &NewUser::default(), &[]).await?;
    Ok(ctx.page(&format!("Staff of {}", s.service_ref), &body))
}

pub(crate) async fn add_staff(
    State(app): State<App>,
    headers: HeaderMap,
    Path(service): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let ctx = signed_in(&app, &headers).await?;
    let s = authorised(&app, &ctx, &service, Action::ManageStaff).await?;
    check_csrf(&headers, &ctx.session.csrf_token, &form)?;
    let get = |k: &str| form.get(k).cloned().filter(|v| !v.trim().is_empty());
    // A manager adds health trainers of their own service only.
    let n = NewUser {
        username: get("username").unwrap_or_default(),
        display_name: get("display_name").unwrap_or_default(),
        role: Role::HealthTrainer.code().into(),
        service_ref: Some(s.service_ref.clone()),
        worker_ref: get("worker_ref"),
        org_ref: None,
        analyst_services: None,
        password: form.get("password").cloned().unwrap_or_default(),
    };
    match users::check(app.db(), &n).await? {
        Err(errors) => {
            let body = staff_body(&app, &ctx, &s, &n, &errors).await?;
            Ok(ctx.page(&format!("Staff of {}", s.service_ref), &body))
        }
        Ok(checked) => {
            let hash = crate::auth::hash_password(n.password.clone()).await?;
            let id = users::insert(app.db(), &checked, &hash, true).await?;
            audit(&app, &ctx.user.username, "user.add", Some(s.service_id), Some(checked.username.clone()), serde_json::json!({
                "before": null,
                "after": {"user_id": id, "username": checked.username, "display_name": checked.display_name,
                          "role": checked.role.code(), "service_id": checked.service_id, "worker_ref": checked.worker_ref},
            }))
            .await?;
            Ok(see_other(&format!("/services/{}/staff", s.service_ref)))
        }
    }
}

/// A health trainer's account in the service; "not found" for any other account.
async fn trainer_of(app: &App, s: &ServiceScope, id: i64) -> Result<users::User, WebError> {
    users::by_id(app.db(), id)
        .await?
        .filter(|u| u.service_id == Some(s.service_id) && u.role == Role::HealthTrainer)
        .ok_or(WebError::NotFound)
}

pub(crate) async fn disable_staff(
    State(app): State<App>,
    headers: HeaderMap,
    Path((service, id)): Path<(String, i64)>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let ctx = signed_in(&app, &headers).await?;
    let s = authorised(&app, &ctx, &service, Action::ManageStaff).await?;
    check_csrf(&headers, &ctx.session.csrf_token, &form)?;
    let target = trainer_of(&app, &s, id).await?;
    sqlx::query("UPDATE users SET disabled = 1 WHERE user_id = $1")
        .bind(id)
        .execute_write(app.db())
        .await?;
    crate::auth::end_sessions_of(app.db(), id).await?;
    crate::tokens::revoke_all(app.db(), id).await?;
    audit(
        &app,
        &ctx.user.username,
        "user.disable",
        Some(s.service_id),
        Some(target.username.clone()),
        serde_json::json!({
            "before": {"disabled": target.disabled}, "after": {"disabled": true},
        }),
    )
    .await?;
    Ok(see_other(&format!("/services/{}/staff", s.service_ref)))
}

type ConfigRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
);

/// The configuration timeline as recorded, newest first, with who entered each and when.
pub(crate) async fn configuration(
    State(app): State<App>,
    headers: HeaderMap,
    Path(service): Path<String>,
) -> Result<Response, WebError> {
    let ctx = signed_in(&app, &headers).await?;
    let s = authorised(&app, &ctx, &service, Action::ViewAudit).await?;
    let rows: Vec<ConfigRow> = sqlx::query_as(
        "SELECT configuration_ref, effective_from, provider_model, funding, senior_buy_in, primary_referral_routes, \
         worker_profile, targeting, formal_performance_management, interaction_model, entered_via, created_at \
         FROM service_configurations WHERE service_id = $1 ORDER BY effective_from DESC, configuration_ref",
    )
    .bind(s.service_id)
    .fetch_all(app.db().pool())
    .await?;
    let mut out = String::from(
        "<p>What the service was commissioned to be, as recorded, newest first. Compare it with what the records show in the <a href=\"/patterns/view?services=",
    );
    out.push_str(&esc(&s.service_ref));
    out.push_str("\">implementation patterns</a>.</p>");
    for r in &rows {
        let who: Option<(String, String, String)> = sqlx::query_as(
            "SELECT actor, at, action FROM audit_log WHERE service_id = $1 AND entity = 'service_configuration' \
             AND record_ref = $2 ORDER BY audit_id DESC LIMIT 1",
        )
        .bind(s.service_id)
        .bind(r.0.clone())
        .fetch_optional(app.db().pool())
        .await?;
        let entered = match who {
            Some((actor, at, action)) => format!(
                "{} by {actor} on {at}",
                if action == "record.update" {
                    "changed"
                } else {
                    "entered"
                }
            ),
            None => format!(
                "entered by {} on {}",
                if r.10 == "import" {
                    "file import"
                } else {
                    "the application"
                },
                r.11
            ),
        };
        out.push_str(&format!("<h2>{} from {}</h2>", esc(&r.0), esc(&r.1)));
        out.push_str(&crate::pages::summary(&[
            ("Provider model", r.2.replace('_', " ")),
            ("Funding", r.3.replace('_', " ")),
            ("Senior buy-in", r.4.replace('_', " ")),
            (
                "Main referral routes",
                r.5.replace(';', ", ").replace('_', " "),
            ),
            ("Worker profile", r.6.replace('_', " ")),
            ("Targeting", r.7.replace('_', " ")),
            ("Formal performance management", r.8.clone()),
            ("Interaction model", r.9.replace('_', " ")),
            ("Recorded", entered),
        ]));
    }
    if rows.is_empty() {
        out.push_str("<p>No configuration has been recorded.</p>");
    }
    audit(
        &app,
        &ctx.user.username,
        "view.configuration",
        Some(s.service_id),
        None,
        serde_json::json!({"configurations": rows.len()}),
    )
    .await?;
    Ok(ctx.page(&format!("How {} is configured", s.service_ref), &out))
}

/// Lifts the lock put on a health trainer's account by failed sign-ins or security codes
/// (the person has been spoken to), before it runs out by itself.
pub(crate) async fn unlock_staff(
    State(app): State<App>,
    headers: HeaderMap,
    Path((service, id)): Path<(String, i64)>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let ctx = signed_in(&app, &headers).await?;
    let s = authorised(&app, &ctx, &service, Action::ManageStaff).await?;
    check_csrf(&headers, &ctx.session.csrf_token, &form)?;
    let target = trainer_of(&app, &s, id).await?;
    users::unlock(app.db(), id).await?;
    audit(
        &app,
        &ctx.user.username,
        "user.unlock",
        Some(s.service_id),
        Some(target.username.clone()),
        serde_json::json!({
            "before": {"locked_until": target.locked_until}, "after": {"locked_until": null},
        }),
    )
    .await?;
    Ok(see_other(&format!("/services/{}/staff", s.service_ref)))
}
