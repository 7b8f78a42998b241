//! The "API access tokens" page: a user's tokens, making one (shown once) and revoking
//! one. What a token is and how it is stored is in `crate::tokens`.

use crate::authz::Action;
use crate::extract::{Posted, SignedIn};
use crate::routes::account::NoFields;
use crate::tokens::{self, Access, NewToken, Token};
use crate::users::{FieldError, Role, User};
use crate::view::{Csrf, ErrorSummary, Input, Layout, Markup, Radios, Url};
use crate::{App, Ctx, WebError, all_services, allowed, audit, auth, html, see_other};
use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;

/// A token as its row on the page reads.
struct TokenRow {
    name: String,
    access: &'static str,
    services: String,
    expires: String,
    last_used: String,
    status: &'static str,
    /// Where to revoke it, while it is live.
    revoke: Option<Url>,
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage<'a> {
    layout: Layout,
    made: Option<&'a str>,
    tokens: Vec<TokenRow>,
    csrf: Csrf<'a>,
    errors: ErrorSummary<'a>,
    name: Input<'a>,
    access: Radios<'a>,
    days: Input<'a>,
    services: Option<Input<'a>>,
}

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

fn row(t: Token, now: i64) -> TokenRow {
    let status = if t.revoked_at.is_some() {
        "Revoked"
    } else if !t.live(now) {
        "Expired"
    } else {
        "Active"
    };
    let revoke = t.live(now).then(|| {
        Url::path(&[
            "account",
            "tokens",
            t.token_id.to_string().as_str(),
            "revoke",
        ])
    });
    TokenRow {
        access: if t.access == Access::Write {
            "Read and write"
        } else {
            "Read only"
        },
        services: t
            .services
            .as_ref()
            .map_or("All of yours".into(), |s| s.join(", ")),
        expires: date(t.expires_at),
        last_used: t.last_used_at.map_or("Never".into(), date),
        status,
        revoke,
        name: t.name,
    }
}

/// The page: the user's tokens, the form (with what was typed and its errors) and, just
/// after one is made, the new token.
fn tokens_page_html(
    ctx: &Ctx,
    stored: Vec<Token>,
    n: &NewToken,
    errors: &[FieldError],
    made: Option<&str>,
) -> Response {
    let token = &ctx.session.csrf_token;
    let now = auth::now();
    let mut access: Vec<(&str, &str)> = vec![("read", "Read only")];
    if tokens::may_write(ctx.user.role) {
        access.push(("write", "Read and write"));
    }
    let narrow = matches!(ctx.user.role, Role::Commissioner | Role::Analyst);
    let page = TokensPage {
        layout: Layout::signed_in("API access tokens", &ctx.user, token).failed(errors),
        made,
        tokens: stored.into_iter().map(|t| row(t, now)).collect(),
        csrf: Csrf { token },
        errors: ErrorSummary { errors },
        name: Input::text("name", "Name", &n.name, errors)
            .hint("What it is for, such as \"monthly upload from the GP system\""),
        access: Radios::new("access", "Access", access, &n.access, errors),
        days: Input::text("days", "Days until it expires", &n.days, errors)
            .kind("number")
            .hint("From 1 to 366"),
        services: narrow.then(|| {
            Input::text("services", "Services (optional)", &n.services, errors).hint(
                "Service references separated by commas, to narrow the token to them. Leave blank for all your services.",
            )
        }),
    };
    html(Markup::render(&page).into_string())
}

fn fresh() -> NewToken {
    NewToken {
        access: "read".into(),
        days: "90".into(),
        ..Default::default()
    }
}

pub(crate) async fn tokens_page(
    State(app): State<App>,
    SignedIn(ctx): SignedIn,
) -> Result<Response, WebError> {
    let stored = tokens::of_user(app.db(), ctx.user.user_id).await?;
    Ok(tokens_page_html(&ctx, stored, &fresh(), &[], None))
}

#[derive(Deserialize)]
pub(crate) struct TokenForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    access: String,
    #[serde(default)]
    days: String,
    #[serde(default)]
    services: String,
}

pub(crate) async fn make_token(
    State(app): State<App>,
    Posted { ctx, form, .. }: Posted<TokenForm>,
) -> Result<Response, WebError> {
    let n = NewToken {
        name: form.name,
        access: form.access,
        days: form.days,
        services: form.services,
    };
    let visible = visible_services(&app, &ctx.user).await?;
    let checked = match tokens::check(&ctx.user, &n, &visible) {
        Err(errors) => {
            let stored = tokens::of_user(app.db(), ctx.user.user_id).await?;
            return Ok(tokens_page_html(&ctx, stored, &n, &errors, None));
        }
        Ok(checked) => checked,
    };
    let (id, secret) = tokens::create(app.db(), &ctx.user, &checked).await?;
    let detail = serde_json::json!({
        "token_id": id, "name": checked.0, "access": checked.1.code(),
        "days": checked.2, "services": checked.3,
    });
    let (user, service) = (&ctx.user.username, ctx.user.service_id);
    audit(
        &app,
        user,
        "token.create",
        service,
        Some(format!("token {id}")),
        detail,
    )
    .await?;
    let stored = tokens::of_user(app.db(), ctx.user.user_id).await?;
    Ok(tokens_page_html(&ctx, stored, &fresh(), &[], Some(&secret)))
}

pub(crate) async fn revoke_token(
    State(app): State<App>,
    Path(id): Path<i64>,
    Posted { ctx, .. }: Posted<NoFields>,
) -> Result<Response, WebError> {
    if !tokens::revoke(app.db(), ctx.user.user_id, id).await? {
        return Err(WebError::NotFound);
    }
    let detail = serde_json::json!({"token_id": id});
    let (user, service) = (&ctx.user.username, ctx.user.service_id);
    audit(
        &app,
        user,
        "token.revoke",
        service,
        Some(format!("token {id}")),
        detail,
    )
    .await?;
    Ok(see_other("/account/tokens"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::test_support::{HOSTILE, assert_hostile_escaped, ctx};

    #[tokio::test]
    async fn the_tokens_page() {
        let stored = vec![Token {
            token_id: 3,
            user_id: 7,
            name: HOSTILE.into(),
            access: Access::Read,
            services: Some(vec![HOSTILE.into()]),
            created_at: 1_700_000_000,
            expires_at: 4_000_000_000,
            revoked_at: None,
            last_used_at: None,
        }];
        let typed = NewToken {
            name: HOSTILE.into(),
            access: "read".into(),
            days: "400".into(),
            services: String::new(),
        };
        let errors = [FieldError {
            field: "days",
            message: "Enter a number of days from 1 to 366".into(),
        }];
        let res = tokens_page_html(&ctx(), stored, &typed, &errors, Some("dcrs_secret"));
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        let page = String::from_utf8(bytes.to_vec()).unwrap();
        assert_hostile_escaped(&page);
        insta::assert_snapshot!("tokens", page);
    }
}
