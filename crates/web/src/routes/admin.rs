//! User accounts: the list, adding an account and disabling one (admins only).

use crate::authz::Action;
use crate::extract::{Posted, SignedIn, require};
use crate::routes::account::NoFields;
use crate::users::{self, CheckedUser, FieldError, NewUser, User};
use crate::view::{Csrf, ErrorSummary, Input, Layout, Markup, Select, Url};
use crate::{App, Ctx, WebError, audit, auth, html, see_other};
use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage<'a> {
    layout: Layout,
    accounts: Vec<User>,
    me: i64,
    csrf: Csrf<'a>,
    errors: ErrorSummary<'a>,
    fields: Vec<Markup>,
}

/// The list of accounts and the form to add one, with what was typed and its errors.
async fn users_page_html(
    app: &App,
    ctx: &Ctx,
    n: &NewUser,
    errors: &[FieldError],
) -> Result<Response, WebError> {
    let token = &ctx.session.csrf_token;
    let page = UsersPage {
        layout: Layout::signed_in("User accounts", &ctx.user, token).failed(errors),
        accounts: users::all(app.db()).await?,
        me: ctx.user.user_id,
        csrf: Csrf { token },
        errors: ErrorSummary { errors },
        fields: user_fields(n, errors),
    };
    Ok(html(Markup::render(&page).into_string()))
}

/// The new account form's fields, with what was typed and its errors.
fn user_fields(n: &NewUser, errors: &[FieldError]) -> Vec<Markup> {
    let roles: Vec<(&str, &str)> = std::iter::once(("", "Select a role"))
        .chain(users::Role::ALL.iter().map(|r| (r.code(), r.label())))
        .collect();
    let text = |name, label, value: &Option<String>, hint| {
        let value = value.as_deref().unwrap_or("");
        Markup::render(&Input::text(name, label, value, errors).hint(hint))
    };
    let password_hint = format!(
        "At least {} characters; the person changes it after signing in",
        users::MIN_PASSWORD
    );
    vec![
        Markup::render(&Input::text("username", "User name", &n.username, errors)),
        Markup::render(&Input::text(
            "display_name",
            "Name",
            &n.display_name,
            errors,
        )),
        Markup::render(&Select::new("role", "Role", roles, &n.role, errors)),
        text(
            "service_ref",
            "Service reference",
            &n.service_ref,
            "Health trainers and service managers",
        ),
        text(
            "worker_ref",
            "Worker reference",
            &n.worker_ref,
            "Health trainers: their worker record in the service",
        ),
        text(
            "org_ref",
            "Organisation reference",
            &n.org_ref,
            "Commissioners: the organisation that commissions services",
        ),
        text(
            "analyst_services",
            "Services an analyst may see",
            &n.analyst_services,
            "Analysts: service references separated by commas; leave empty for every service",
        ),
        Markup::render(
            &Input::password("password", "First password", errors)
                .hint(&password_hint)
                .autocomplete("new-password"),
        ),
    ]
}

pub(crate) async fn users_page(
    State(app): State<App>,
    SignedIn(ctx): SignedIn,
) -> Result<Response, WebError> {
    require(&ctx.user, Action::ManageUsers)?;
    users_page_html(&app, &ctx, &NewUser::default(), &[]).await
}

#[derive(Deserialize)]
pub(crate) struct UserForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    service_ref: String,
    #[serde(default)]
    worker_ref: String,
    #[serde(default)]
    org_ref: String,
    #[serde(default)]
    analyst_services: String,
    #[serde(default)]
    password: String,
}

impl From<UserForm> for NewUser {
    fn from(f: UserForm) -> NewUser {
        let given = |v: String| Some(v).filter(|v| !v.trim().is_empty());
        NewUser {
            username: given(f.username).unwrap_or_default(),
            display_name: given(f.display_name).unwrap_or_default(),
            role: given(f.role).unwrap_or_default(),
            service_ref: given(f.service_ref),
            worker_ref: given(f.worker_ref),
            org_ref: given(f.org_ref),
            analyst_services: given(f.analyst_services),
            password: f.password,
        }
    }
}

pub(crate) async fn add_user(
    State(app): State<App>,
    Posted { ctx, form, .. }: Posted<UserForm>,
) -> Result<Response, WebError> {
    require(&ctx.user, Action::ManageUsers)?;
    let n = NewUser::from(form);
    let checked = match users::check(app.db(), &n).await? {
        Err(errors) => return users_page_html(&app, &ctx, &n, &errors).await,
        Ok(checked) => checked,
    };
    add_account(&app, &ctx, &n, &checked).await?;
    Ok(see_other("/admin/users"))
}

/// Stores a checked new account (its password must be changed at first sign-in) and
/// audits it, by the signed-in user.
pub(crate) async fn add_account(
    app: &App,
    ctx: &Ctx,
    n: &NewUser,
    checked: &CheckedUser,
) -> Result<(), WebError> {
    let hash = auth::hash_password(n.password.clone()).await?;
    let id = users::insert(app.db(), checked, &hash, true).await?;
    let detail = serde_json::json!({
        "before": null,
        "after": {
            "user_id": id, "username": checked.username, "display_name": checked.display_name,
            "role": checked.role.code(), "service_id": checked.service_id, "worker_ref": checked.worker_ref,
            "org_ref": checked.org_ref, "analyst_services": checked.analyst_services,
        },
    });
    let (actor, service, name) = (&ctx.user.username, checked.service_id, &checked.username);
    audit(app, actor, "user.add", service, Some(name.clone()), detail).await
}

pub(crate) async fn disable_user(
    State(app): State<App>,
    Path(id): Path<i64>,
    Posted { ctx, .. }: Posted<NoFields>,
) -> Result<Response, WebError> {
    require(&ctx.user, Action::ManageUsers)?;
    let target = users::by_id(app.db(), id)
        .await?
        .ok_or(WebError::NotFound)?;
    if target.user_id == ctx.user.user_id {
        return Err(WebError::Forbidden("You cannot disable your own account."));
    }
    users::disable(app.db(), id).await?;
    let detail = serde_json::json!({
        "before": {"disabled": target.disabled}, "after": {"disabled": true},
    });
    let (actor, service) = (&ctx.user.username, target.service_id);
    audit(
        &app,
        actor,
        "user.disable",
        service,
        Some(target.username.clone()),
        detail,
    )
    .await?;
    Ok(see_other("/admin/users"))
}
