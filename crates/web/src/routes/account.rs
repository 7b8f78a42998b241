//! Signing in and out, the second factor, and changing one's own password.

use crate::extract::{PasswordDue, Posted, SecondFactorDue};
use crate::users::{self, Failure, FieldError, User};
use crate::view::{Csrf, ErrorSummary, Input, Layout, Markup, Url};
use crate::{
    App, Ctx, LOGIN_COOKIE, PAIR_FAILURES, SESSION_COOKIE, Throttled, WebError, audit, auth,
    check_origin_and_token, client_address, cookie, html, see_other, set_cookie,
};
use askama::Template;
use axum::extract::{ConnectInfo, Extension, Form, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

const CODE_HINT: &str = "The 6-digit code from your authenticator app";
const CODE_WRONG: &str = "The security code is not right. Enter the code your app shows now";

#[derive(Template)]
#[template(path = "account/login.html")]
struct LoginPage<'a> {
    layout: Layout,
    errors: ErrorSummary<'a>,
    csrf: Csrf<'a>,
    username: Input<'a>,
    password: Input<'a>,
}

#[derive(Template)]
#[template(path = "account/code.html")]
struct CodePage<'a> {
    layout: Layout,
    errors: ErrorSummary<'a>,
    csrf: Csrf<'a>,
    code: Input<'a>,
}

#[derive(Template)]
#[template(path = "account/password.html")]
struct PasswordPage<'a> {
    layout: Layout,
    errors: ErrorSummary<'a>,
    csrf: Csrf<'a>,
    current: Input<'a>,
    new: Input<'a>,
}

#[derive(Template)]
#[template(path = "account/setup.html")]
struct SetupPage<'a> {
    layout: Layout,
    errors: ErrorSummary<'a>,
    csrf: Csrf<'a>,
    secret: &'a str,
    uri: String,
    code: Input<'a>,
}

/// A page of a few sentences and perhaps a link on.
#[derive(Template)]
#[template(path = "message.html")]
pub(crate) struct Message {
    pub layout: Layout,
    pub paragraphs: Vec<String>,
    pub inset: bool,
    pub link: Option<(Url, &'static str)>,
}

fn login_page_html(token: &str, username: &str, errors: &[FieldError]) -> Response {
    html(
        Markup::render(&LoginPage {
            layout: Layout::public("Sign in").failed(errors),
            errors: ErrorSummary { errors },
            csrf: Csrf { token },
            username: Input::text("username", "User name", username, errors)
                .autocomplete("username"),
            password: Input::password("password", "Password", errors)
                .autocomplete("current-password"),
        })
        .into_string(),
    )
}

/// The sign-in page, with a new token in a cookie: before a session exists, the form's
/// token must match it.
fn with_login_cookie(app: &App, mut res: Response, token: &str) -> Response {
    res.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_str(&set_cookie(app, LOGIN_COOKIE, token, Some(1800))).expect("ascii"),
    );
    res
}

pub(crate) async fn login_page(State(app): State<App>) -> Response {
    let token = auth::token();
    with_login_cookie(&app, login_page_html(&token, "", &[]), &token)
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

pub(crate) async fn login(
    State(app): State<App>,
    peer: Option<Extension<ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, WebError> {
    let address = client_address(&app, peer.map(|p| p.0.0), &headers);
    let username = form.username.trim().to_lowercase();
    if let Some(why) = app.throttled(&address, &username) {
        return Ok(too_many_attempts(why));
    }
    check_login_form(&headers, form.csrf.as_deref())?;
    // Only a few checks at a time for one address, and the throttle asked again after
    // waiting: a burst of guesses in parallel cannot all pass it, and a burst of people
    // signing in at once from one office waits a moment instead of being refused.
    let _turn = app.check_turn(&address).await;
    if let Some(why) = app.throttled(&address, &username) {
        return Ok(too_many_attempts(why));
    }
    match check_password(&app, &address, &username, form.password).await? {
        Ok(user) => start_session(&app, &headers, user).await,
        Err(()) => Ok(wrong_password(&app, &username)),
    }
}

/// Before a session exists, the form's token must match the sign-in page's cookie.
fn check_login_form(headers: &HeaderMap, token: Option<&str>) -> Result<(), WebError> {
    let expected = cookie(headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() {
        return Err(WebError::Forbidden(
            "The form had expired or did not come from this service. Go back, reload the page and try again.",
        ));
    }
    check_origin_and_token(headers, &expected, token)
}

/// The sign-in page again, saying the name or password was not right (never which).
fn wrong_password(app: &App, username: &str) -> Response {
    let message = format!(
        "The user name or password is not right. After {PAIR_FAILURES} failed attempts you must wait {} minutes to try again, and an account with many failed attempts is locked for that long.",
        app.0.settings.lockout_minutes
    );
    let token = auth::token();
    let errors = [FieldError::new("username", message)];
    with_login_cookie(app, login_page_html(&token, username, &errors), &token)
}

/// The account a user name and password open, or `Err` (audited, counted) when they
/// open none. The password is always checked (against a dummy hash for an unknown
/// name), so an unknown, locked or known account takes as long and reads the same.
async fn check_password(
    app: &App,
    address: &str,
    username: &str,
    password: String,
) -> Result<Result<User, ()>, WebError> {
    let user = users::by_username(app.db(), username).await?;
    let hash = user
        .as_ref()
        .map_or_else(|| app.0.dummy_hash.clone(), |u| u.password_hash.clone());
    let ok = auth::verify_password(password, hash).await;
    if !ok || user.as_ref().is_none_or(|u| u.disabled) {
        app.failed(address, username);
    }
    let refused = |actor: &str, action: &str, service, detail| {
        let (actor, action) = (actor.to_string(), action.to_string());
        async move { audit(app, &actor, &action, service, None, detail).await }
    };
    let Some(user) = user else {
        let detail = serde_json::json!({"reason": "unknown user name"});
        refused("(unknown user name)", "auth.login.failed", None, detail).await?;
        return Ok(Err(()));
    };
    if user.locked_until.is_some_and(|t| t > auth::now()) {
        let detail = serde_json::json!({"reason": "locked"});
        refused(
            &user.username,
            "auth.login.refused",
            user.service_id,
            detail,
        )
        .await?;
        return Ok(Err(()));
    }
    if !ok || user.disabled {
        let locked = count_failure(app, &user, Failure::Password).await?;
        let reason = if user.disabled {
            "disabled"
        } else {
            "wrong password"
        };
        let detail = serde_json::json!({"reason": reason, "locked": locked});
        refused(&user.username, "auth.login.failed", user.service_id, detail).await?;
        return Ok(Err(()));
    }
    users::clear_failures(app.db(), user.user_id).await?;
    Ok(Ok(user))
}

/// A new session at every sign-in (any session the browser had is ended), sent on to
/// the second factor where one is needed.
async fn start_session(app: &App, headers: &HeaderMap, user: User) -> Result<Response, WebError> {
    if let Some(old) = cookie(headers, SESSION_COOKIE) {
        auth::end_session(app.db(), &old).await?;
    }
    let needs_second = user.totp_secret.is_some()
        || (app.0.settings.require_second_factor && user.role.needs_second_factor());
    let (id, _) = auth::start_session(app.db(), user.user_id, !needs_second).await?;
    let no_detail = serde_json::json!({});
    audit(
        app,
        &user.username,
        "auth.login",
        user.service_id,
        None,
        no_detail,
    )
    .await?;
    let to = if !needs_second {
        "/"
    } else if user.totp_secret.is_some() {
        "/login/second-factor"
    } else {
        "/account/second-factor"
    };
    let mut res = see_other(to);
    for cookie in [
        set_cookie(app, SESSION_COOKIE, &id, None),
        set_cookie(app, LOGIN_COOKIE, "", Some(0)),
    ] {
        let value = HeaderValue::from_str(&cookie).expect("ascii");
        res.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(res)
}

/// The page for an address that must wait before trying again.
fn too_many_attempts(why: Throttled) -> Response {
    let text = match why {
        Throttled::Address => {
            "There have been too many failed sign-ins from your network. Wait 15 minutes and try again."
        }
        Throttled::Account => {
            "There have been too many failed sign-ins to this account from your network. Wait 15 minutes and try again, or ask your service manager to reset your password."
        }
    };
    let page = Message {
        layout: Layout::public("Too many attempts"),
        paragraphs: vec![text.to_string()],
        inset: false,
        link: None,
    };
    (
        StatusCode::TOO_MANY_REQUESTS,
        html(Markup::render(&page).into_string()),
    )
        .into_response()
}

/// Counts a failed sign-in or security code against the account, and locks it (ending
/// its sessions) when there have been too many. Returns whether it is now locked.
async fn count_failure(app: &App, user: &User, kind: Failure) -> Result<bool, WebError> {
    let failed = users::count_failure(app.db(), user.user_id, kind).await?;
    let limit = match kind {
        Failure::Password => app.0.settings.lockout_after,
        Failure::Code => app.0.settings.code_lockout_after,
    };
    if failed < limit {
        return Ok(false);
    }
    let until = auth::now() + app.0.settings.lockout_minutes * 60;
    users::lock(app.db(), user.user_id, until).await?;
    auth::end_sessions_of(app.db(), user.user_id).await?;
    Ok(true)
}

fn code_page(ctx: &Ctx, errors: &[FieldError]) -> Response {
    let token = &ctx.session.csrf_token;
    html(
        Markup::render(&CodePage {
            layout: Layout::signed_in("Enter your security code", &ctx.user, token).failed(errors),
            errors: ErrorSummary { errors },
            csrf: Csrf { token },
            code: Input::text("code", "Security code", "", errors)
                .hint(CODE_HINT)
                .autocomplete("one-time-code"),
        })
        .into_string(),
    )
}

pub(crate) async fn second_factor_page(
    SecondFactorDue(ctx): SecondFactorDue,
) -> Result<Response, WebError> {
    if ctx.user.totp_secret.is_none() {
        return Err(WebError::Redirect("/account/second-factor".into()));
    }
    Ok(code_page(&ctx, &[]))
}

#[derive(Deserialize)]
pub(crate) struct CodeForm {
    #[serde(default)]
    code: String,
}

pub(crate) async fn second_factor(
    State(app): State<App>,
    Posted { ctx, form, .. }: Posted<CodeForm, SecondFactorDue>,
) -> Result<Response, WebError> {
    let (user, service) = (&ctx.user.username, ctx.user.service_id);
    if !code_accepted(&app, &ctx.user, &form.code).await? {
        let locked = count_failure(&app, &ctx.user, Failure::Code).await?;
        let detail = serde_json::json!({"locked": locked});
        let action = "auth.second_factor.failed";
        audit(&app, user, action, service, None, detail).await?;
        if locked {
            return Err(WebError::SignIn);
        }
        return Ok(code_page(&ctx, &[FieldError::new("code", CODE_WRONG)]));
    }
    auth::second_factor_done(app.db(), &ctx.session.session_hash).await?;
    let detail = serde_json::json!({});
    audit(&app, user, "auth.second_factor", service, None, detail).await?;
    Ok(see_other("/"))
}

/// Whether the code is the account's current one, not used before (a code opens one
/// sign-in only).
async fn code_accepted(app: &App, user: &User, code: &str) -> Result<bool, WebError> {
    let stored = user.totp_secret.clone();
    let stored = stored.ok_or(WebError::Redirect("/account/second-factor".into()))?;
    // A secret that does not open means the key file is not the one it was sealed with.
    let secret = app.0.sealer.open(&stored);
    let secret = secret.ok_or(WebError::Internal(
        "a TOTP secret does not open with web.key".into(),
    ))?;
    match auth::totp_step(&secret, code, auth::now()) {
        Some(step) => {
            Ok(users::accept_code_step(app.db(), user.user_id, step as i64, auth::now()).await?)
        }
        None => Ok(false),
    }
}

#[derive(Deserialize)]
pub(crate) struct NoFields {}

pub(crate) async fn logout(
    State(app): State<App>,
    headers: HeaderMap,
    Posted { ctx, .. }: Posted<NoFields, SecondFactorDue>,
) -> Result<Response, WebError> {
    if let Some(id) = cookie(&headers, SESSION_COOKIE) {
        auth::end_session(app.db(), &id).await?;
    }
    let (user, service) = (&ctx.user.username, ctx.user.service_id);
    audit(
        &app,
        user,
        "auth.logout",
        service,
        None,
        serde_json::json!({}),
    )
    .await?;
    let mut res = see_other("/login");
    let gone = set_cookie(&app, SESSION_COOKIE, "", Some(0));
    res.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_str(&gone).expect("ascii"),
    );
    Ok(res)
}

fn password_page_html(ctx: &Ctx, errors: &[FieldError]) -> Response {
    let token = &ctx.session.csrf_token;
    let hint = format!(
        "At least {} characters. A few unrelated words make a strong password.",
        users::MIN_PASSWORD
    );
    html(
        Markup::render(&PasswordPage {
            layout: Layout::signed_in("Change your password", &ctx.user, token).failed(errors),
            errors: ErrorSummary { errors },
            csrf: Csrf { token },
            current: Input::password("current", "Current password", errors)
                .autocomplete("current-password"),
            new: Input::password("new", "New password", errors)
                .hint(&hint)
                .autocomplete("new-password"),
        })
        .into_string(),
    )
}

pub(crate) async fn password_page(PasswordDue(ctx): PasswordDue) -> Response {
    password_page_html(&ctx, &[])
}

#[derive(Deserialize)]
pub(crate) struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
}

pub(crate) async fn change_password(
    State(app): State<App>,
    Posted { ctx, form, .. }: Posted<PasswordForm, PasswordDue>,
) -> Result<Response, WebError> {
    let errors = password_errors(&ctx.user, &form).await;
    if !errors.is_empty() {
        return Ok(password_page_html(&ctx, &errors));
    }
    let hash = auth::hash_password(form.new).await?;
    users::set_own_password(app.db(), ctx.user.user_id, hash).await?;
    // Other sessions of the account end; this one carries on.
    auth::end_other_sessions(app.db(), ctx.user.user_id, &ctx.session.session_hash).await?;
    let (user, service) = (&ctx.user.username, ctx.user.service_id);
    let (action, detail) = ("user.password.change", serde_json::json!({}));
    audit(&app, user, action, service, Some(user.clone()), detail).await?;
    Ok(message_page(
        &ctx,
        "Password changed",
        "Your password has been changed. You have been signed out everywhere else.",
        true,
    ))
}

/// What is wrong with a new password form: the current password, the new one's length.
async fn password_errors(user: &User, form: &PasswordForm) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if !auth::verify_password(form.current.clone(), user.password_hash.clone()).await {
        errors.push(FieldError::new(
            "current",
            "Your current password is not right",
        ));
    }
    if form.new.chars().count() < users::MIN_PASSWORD {
        let message = format!(
            "Enter a new password of at least {} characters",
            users::MIN_PASSWORD
        );
        errors.push(FieldError::new("new", message));
    }
    errors
}

fn message_page(ctx: &Ctx, title: &str, text: &str, link_on: bool) -> Response {
    html(
        Markup::render(&Message {
            layout: Layout::signed_in(title, &ctx.user, &ctx.session.csrf_token),
            paragraphs: vec![text.to_string()],
            inset: link_on,
            link: link_on.then(|| (Url::path::<&str>(&[]), "Continue")),
        })
        .into_string(),
    )
}

fn setup_page_html(ctx: &Ctx, secret: &str, errors: &[FieldError]) -> Response {
    let token = &ctx.session.csrf_token;
    html(
        Markup::render(&SetupPage {
            layout: Layout::signed_in("Set up a second factor", &ctx.user, token).failed(errors),
            errors: ErrorSummary { errors },
            csrf: Csrf { token },
            secret,
            uri: format!(
                "otpauth://totp/dcrs:{}?secret={secret}&issuer=dcrs",
                ctx.user.username
            ),
            code: Input::text("code", "Security code", "", errors)
                .hint(CODE_HINT)
                .autocomplete("one-time-code"),
        })
        .into_string(),
    )
}

pub(crate) async fn setup_page(
    SecondFactorDue(ctx): SecondFactorDue,
) -> Result<Response, WebError> {
    if ctx.user.totp_secret.is_some() && ctx.session.second_factor_done {
        return Ok(message_page(
            &ctx,
            "Second factor",
            "A second factor is set up for your account. Ask an admin to reset it if you lose your device.",
            false,
        ));
    }
    if ctx.user.totp_secret.is_some() {
        return Err(WebError::Redirect("/login/second-factor".into()));
    }
    Ok(setup_page_html(&ctx, &auth::new_totp_secret(), &[]))
}

#[derive(Deserialize)]
pub(crate) struct SetupForm {
    #[serde(default)]
    secret: String,
    #[serde(default)]
    code: String,
}

pub(crate) async fn setup_second_factor(
    State(app): State<App>,
    Posted { ctx, form, .. }: Posted<SetupForm, SecondFactorDue>,
) -> Result<Response, WebError> {
    if ctx.user.totp_secret.is_some() {
        return Err(WebError::Forbidden(
            "A second factor is already set up for this account.",
        ));
    }
    let usable = auth::from_base32(&form.secret).is_some_and(|k| k.len() >= 16);
    if !usable || !auth::totp_ok(&form.secret, &form.code, auth::now()) {
        let errors = [FieldError {
            field: "code",
            message: CODE_WRONG.into(),
        }];
        let secret = if usable {
            form.secret
        } else {
            auth::new_totp_secret()
        };
        return Ok(setup_page_html(&ctx, &secret, &errors));
    }
    let step = auth::totp_step(&form.secret, &form.code, auth::now()).map(|s| s as i64);
    let sealed = app.0.sealer.seal(&form.secret);
    users::set_second_factor(app.db(), ctx.user.user_id, sealed, step).await?;
    // Other sessions began without the factor: they end.
    auth::end_other_sessions(app.db(), ctx.user.user_id, &ctx.session.session_hash).await?;
    auth::second_factor_done(app.db(), &ctx.session.session_hash).await?;
    let (user, service) = (&ctx.user.username, ctx.user.service_id);
    let detail =
        serde_json::json!({"before": {"second_factor": false}, "after": {"second_factor": true}});
    let action = "user.second_factor.set";
    audit(&app, user, action, service, Some(user.clone()), detail).await?;
    Ok(see_other("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::test_support::{HOSTILE, assert_hostile_escaped, ctx};

    async fn body(res: Response) -> String {
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn the_account_pages() {
        let errors = [FieldError {
            field: "username",
            message: format!("Not right: {HOSTILE}"),
        }];
        let login = body(login_page_html("token", HOSTILE, &errors)).await;
        assert_hostile_escaped(&login);
        insta::assert_snapshot!("login_with_error", login);
        let code_errors = [FieldError {
            field: "code",
            message: CODE_WRONG.into(),
        }];
        let code = body(code_page(&ctx(), &code_errors)).await;
        assert_hostile_escaped(&code);
        insta::assert_snapshot!("second_factor_code", code);
        let password = body(password_page_html(&ctx(), &[])).await;
        insta::assert_snapshot!("change_password", password);
        let setup = body(setup_page_html(&ctx(), "JBSWY3DPEHPK3PXPJBSWY3DP", &[])).await;
        insta::assert_snapshot!("set_up_second_factor", setup);
        let done = body(message_page(&ctx(), "Password changed", "Changed.", true)).await;
        insta::assert_snapshot!("password_changed", done);
        let wait = body(too_many_attempts(Throttled::Account)).await;
        insta::assert_snapshot!("too_many_attempts", wait);
    }
}
