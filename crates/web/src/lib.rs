//! The web application's core: `dcrs serve`. Accounts and roles, sign-in with a second
//! factor, sessions, CSRF protection, authorisation in one place ([`authz`]), audit of
//! every view of identifiable data and every write, security headers, and the first
//! pages each role stands on. Pages work without JavaScript.

pub mod api;
pub mod auth;
pub mod authz;
mod capture;
mod manage;
pub mod openapi;
pub mod pages;
mod reports;
mod research;
pub mod sealed;
pub mod tokens;
pub mod users;

use authz::{Action, ServiceScope, allowed};
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use dcrs_store::WriteQuery as _;
use dcrs_store::{AuditEntry, Database};
use pages::{csrf_field, error_summary, esc, input, layout, select};
use std::collections::HashMap;
use std::sync::Arc;
use users::{FieldError, NewUser, Role, User};

/// What can go wrong serving a request. Messages shown to people never carry data.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("not found")]
    NotFound,
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("sign in needed")]
    SignIn,
    #[error("redirect to {0}")]
    Redirect(String),
    #[error("internal error: {0}")]
    Internal(String),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    #[error(transparent)]
    Store(#[from] dcrs_store::StoreError),
    #[error(transparent)]
    Report(#[from] dcrs_report::ReportError),
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let page = |status: StatusCode, title: &str, text: &str| {
            let body = layout(
                title,
                None,
                &format!(
                    "<p>{}</p><p><a href=\"/\">Go to the start page</a></p>",
                    esc(text)
                ),
            );
            (
                status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                body,
            )
                .into_response()
        };
        match self {
            WebError::NotFound => page(
                StatusCode::NOT_FOUND,
                "Page not found",
                "If you typed the web address, check it is correct. You may not have access to this page.",
            ),
            WebError::Forbidden(why) => page(StatusCode::FORBIDDEN, "You cannot do that", why),
            WebError::SignIn => see_other("/login"),
            WebError::Redirect(to) => see_other(&to),
            // PostgreSQL refuses text holding a NUL (which no one types) before any
            // comparison: the request was malformed, not the service at fault.
            WebError::Sql(e) | WebError::Store(dcrs_store::StoreError::Sql(e)) if holds_nul(&e) => {
                page(
                    StatusCode::BAD_REQUEST,
                    "The request could not be read",
                    BAD_REQUEST_TEXT,
                )
            }
            other => {
                // Errors are logged by kind only: SQL errors can quote values.
                tracing::error!(kind = error_kind(&other), "request failed");
                page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Sorry, there is a problem with the service",
                    "Try again later. Nothing you entered has been saved unless the page said so.",
                )
            }
        }
    }
}

const BAD_REQUEST_TEXT: &str =
    "The web address or form held a character that cannot be typed. Go back and try again.";

/// Whether the database refused a value because it held a NUL character.
fn holds_nul(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "22021")
}

/// Refuses a page address whose path or query holds an encoded NUL (`%00`): no page
/// has a use for one, and PostgreSQL cannot compare text holding it. (The API answers
/// such requests in JSON itself.)
async fn refuse_nul(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let nul = |s: &str| {
        s.as_bytes()
            .windows(3)
            .any(|w| w.eq_ignore_ascii_case(b"%00"))
    };
    let api = req.uri().path().starts_with("/api/");
    if !api && (nul(req.uri().path()) || req.uri().query().is_some_and(nul)) {
        let body = layout(
            "The request could not be read",
            None,
            &format!("<p>{BAD_REQUEST_TEXT}</p>"),
        );
        return (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response();
    }
    next.run(req).await
}

fn error_kind(e: &WebError) -> &'static str {
    match e {
        WebError::Sql(_) => "database",
        WebError::Store(_) => "store",
        WebError::Report(_) => "report",
        _ => "internal",
    }
}

fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response()
}

/// Settings of the web application.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The service is behind TLS: cookies are marked Secure.
    pub secure_cookies: bool,
    /// Minutes of inactivity after which a session ends (shared devices).
    pub idle_minutes: i64,
    /// Roles that see identifiable records must use a second factor.
    pub require_second_factor: bool,
    /// Failed sign-ins in a row, from any addresses, before an account is locked (each
    /// address may try an account only 5 times in 15 minutes before it must wait).
    pub lockout_after: i64,
    /// Wrong security codes, counted on their own, before an account is locked.
    pub code_lockout_after: i64,
    /// How long the lock lasts.
    pub lockout_minutes: i64,
    /// Folder of secrets kept outside the database (research projects' keys).
    pub secrets_dir: std::path::PathBuf,
    /// Requests come through a proxy the deployment trusts, which appends the client's
    /// address to `X-Forwarded-For`: sign-in throttling counts by that address.
    pub behind_proxy: bool,
    /// How long a connection may take to send a request's headers (and how long a
    /// kept-alive connection may sit idle) before it is closed.
    pub header_timeout: std::time::Duration,
    /// How long a request may take, from its headers to its answer, body included.
    pub request_timeout: std::time::Duration,
    /// Connections open at once; the next waits to be accepted.
    pub max_connections: usize,
    /// How long a service's dashboard figures are shown before they are counted again.
    /// Counting a dashboard takes some tens of milliseconds of the server's time, and
    /// managers reload it often; the page says when its figures were counted. Zero
    /// counts them on every view.
    pub dashboard_max_age: std::time::Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            secure_cookies: false,
            idle_minutes: 30,
            require_second_factor: false,
            lockout_after: 20,
            code_lockout_after: 5,
            lockout_minutes: 15,
            secrets_dir: "secrets".into(),
            behind_proxy: false,
            header_timeout: std::time::Duration::from_secs(10),
            request_timeout: std::time::Duration::from_secs(300),
            max_connections: 4096,
            dashboard_max_age: std::time::Duration::ZERO,
        }
    }
}

struct Inner {
    db: Database,
    settings: Settings,
    /// Seals TOTP secrets with the key in the secrets folder.
    sealer: sealed::Sealer,
    dummy_hash: String,
    /// Failed sign-ins in the current window, by network address and by account name
    /// and address.
    failures: std::sync::Mutex<Failures>,
    /// Passwords being checked for each network address: a few at a time, the rest
    /// wait their turn (see `App::check_turn`).
    checking: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>,
    /// Dashboards counted lately, by service (see `Settings::dashboard_max_age`).
    pub(crate) dashboards: std::sync::Mutex<HashMap<i64, Arc<reports::Counted>>>,
}

/// Failed sign-ins counted in windows: (count, window start).
#[derive(Default)]
struct Failures {
    by_address: HashMap<String, (u32, i64)>,
    by_pair: HashMap<(String, String), (u32, i64)>,
}

/// Failed sign-ins from one network address in a window before it must wait: enough for
/// people sharing an office's address, too few to try a password on many accounts.
const ADDRESS_FAILURES: u32 = 30;
/// Failed sign-ins to one account name from one address in a window before that address
/// must wait to try it again. The account itself is locked only after
/// `Settings::lockout_after` failures from anywhere, so one person guessing cannot lock a
/// colleague out.
const PAIR_FAILURES: u32 = 5;
const ADDRESS_WINDOW: i64 = 15 * 60;
/// Passwords checked at once for one address. Failures are counted once a check is
/// done, so this bounds how far a burst of parallel guesses can overshoot the limits,
/// while a burst of colleagues signing in at once only queues.
const CHECKS_PER_ADDRESS: usize = 4;

/// Why sign-in attempts from an address must wait.
enum Throttled {
    Address,
    Account,
}

/// The application's shared state.
#[derive(Clone)]
pub struct App(Arc<Inner>);

impl App {
    /// The application on a database.
    pub async fn new(db: Database, settings: Settings) -> Result<App, WebError> {
        let dummy_hash = auth::hash_password(auth::token()).await?;
        let sealer = sealed::Sealer::open_or_create(&settings.secrets_dir)?;
        // TOTP secrets stored before they were sealed are sealed now.
        let plain: Vec<(i64, String)> =
            sqlx::query_as("SELECT user_id, totp_secret FROM users WHERE totp_secret IS NOT NULL")
                .fetch_all(db.pool())
                .await?;
        for (id, secret) in plain.into_iter().filter(|(_, s)| !sealed::is_sealed(s)) {
            sqlx::query(
                "UPDATE users SET totp_secret = $1 WHERE user_id = $2 AND totp_secret = $3",
            )
            .bind(sealer.seal(&secret))
            .bind(id)
            .bind(secret)
            .execute_write(&db)
            .await?;
        }
        Ok(App(Arc::new(Inner {
            db,
            settings,
            sealer,
            dummy_hash,
            failures: Default::default(),
            checking: Default::default(),
            dashboards: Default::default(),
        })))
    }

    fn db(&self) -> &Database {
        &self.0.db
    }

    /// Whether the address, or the address for this account name, has failed too often
    /// in the current window.
    fn throttled(&self, address: &str, username: &str) -> Option<Throttled> {
        let now = auth::now();
        let f = self.0.failures.lock().expect("not poisoned");
        let over = |e: Option<&(u32, i64)>, limit: u32| {
            e.is_some_and(|(n, start)| now - start < ADDRESS_WINDOW && *n >= limit)
        };
        if over(f.by_address.get(address), ADDRESS_FAILURES) {
            return Some(Throttled::Address);
        }
        let pair = (username.to_string(), address.to_string());
        over(f.by_pair.get(&pair), PAIR_FAILURES).then_some(Throttled::Account)
    }

    /// Waits for a turn to check a password from this address.
    async fn check_turn(&self, address: &str) -> tokio::sync::OwnedSemaphorePermit {
        let semaphore = {
            let mut map = self.0.checking.lock().expect("not poisoned");
            map.retain(|_, s| Arc::strong_count(s) > 1);
            map.entry(address.to_string())
                .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(CHECKS_PER_ADDRESS)))
                .clone()
        };
        semaphore.acquire_owned().await.expect("never closed")
    }

    fn failed(&self, address: &str, username: &str) {
        let now = auth::now();
        let mut f = self.0.failures.lock().expect("not poisoned");
        f.by_address
            .retain(|_, (_, start)| now - *start < ADDRESS_WINDOW);
        f.by_pair
            .retain(|_, (_, start)| now - *start < ADDRESS_WINDOW);
        f.by_address
            .entry(address.to_string())
            .or_insert((0, now))
            .0 += 1;
        f.by_pair
            .entry((username.to_string(), address.to_string()))
            .or_insert((0, now))
            .0 += 1;
    }
}

const SESSION_COOKIE: &str = "dcrs_session";
const LOGIN_COOKIE: &str = "dcrs_login";
const STYLESHEET: &str = include_str!("app.css");

/// Every route.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/static/app.css", get(stylesheet))
        .route("/login", get(login_page).post(login))
        .route(
            "/login/second-factor",
            get(second_factor_page).post(second_factor),
        )
        .route("/logout", post(logout))
        .route("/", get(home))
        .route(
            "/account/password",
            get(password_page).post(change_password),
        )
        .route(
            "/account/second-factor",
            get(setup_page).post(setup_second_factor),
        )
        .route("/admin/users", get(users_page).post(add_user))
        .route("/admin/users/{id}/disable", post(disable_user))
        .route("/services/{service}/clients", get(clients))
        .route(
            "/services/{service}/clients/new",
            get(capture::new_client_page).post(capture::new_client),
        )
        .route(
            "/services/{service}/clients/{client}/episodes/new",
            get(capture::referral_page).post(capture::referral),
        )
        .route(
            "/services/{service}/episodes/{episode}",
            get(capture::episode_page),
        )
        .route(
            "/services/{service}/episodes/{episode}/{flow}",
            get(capture::episode_flow_page).post(capture::episode_flow_submit),
        )
        .route(
            "/services/{service}/caseload",
            get(capture::caseload).post(capture::caseload_search),
        )
        .route("/drafts/{id}", get(capture::draft))
        .route("/reports", get(reports::reports_page))
        .route("/reports/view", get(reports::report_view))
        .route("/patterns/view", get(reports::patterns_view))
        .route("/services/{service}/dashboard", get(reports::dashboard))
        .route(
            "/services/{service}/staff",
            get(manage::staff_page).post(manage::add_staff),
        )
        .route(
            "/services/{service}/staff/{id}/disable",
            post(manage::disable_staff),
        )
        .route(
            "/services/{service}/staff/{id}/unlock",
            post(manage::unlock_staff),
        )
        .route(
            "/services/{service}/configuration",
            get(manage::configuration),
        )
        .route("/services/{service}/clients/{client}", get(client))
        .route("/services/{service}/audit", get(audit_trail))
        .route("/services/{service}/reports/{kind}", get(report))
        .fallback(|| async { WebError::NotFound })
        .route(
            "/account/tokens",
            get(tokens::tokens_page).post(tokens::make_token),
        )
        .route("/account/tokens/{id}/revoke", post(tokens::revoke_token))
        .route(
            "/admin/projects",
            get(research::projects_page).post(research::register_project),
        )
        .route("/admin/releases", get(research::releases_page))
        .route(
            "/extracts",
            get(research::extracts_page).post(research::release_extract),
        )
        .merge(api::routes())
        .layer(axum::middleware::from_fn(refuse_nul))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(app)
}

/// Serves on `bind` until the process is stopped.
pub async fn serve(app: App, bind: &str) -> Result<(), WebError> {
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| WebError::Internal(format!("cannot listen on {bind}: {e}")))?;
    serve_on(app, listener).await
}

/// Serves on a listener already bound (tests bind port 0 and read the port).
///
/// The accept loop is our own rather than `axum::serve`, for what a server facing the
/// internet needs: a connection that has not sent a whole request's headers within
/// `Settings::header_timeout` (the first request or the next one on a kept-alive
/// connection) is closed; a request not answered within `Settings::request_timeout`
/// (a body sent a byte at a time, say) is answered 408 and its connection closed; and no
/// more than `Settings::max_connections` are open at once (the next waits to be accepted).
pub async fn serve_on(app: App, listener: tokio::net::TcpListener) -> Result<(), WebError> {
    let settings = app.0.settings.clone();
    let router = router(app);
    let open = Arc::new(tokio::sync::Semaphore::new(settings.max_connections));
    loop {
        let permit = open.clone().acquire_owned().await.expect("never closed");
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, or a connection reset before it was taken:
                // wait a moment rather than spin.
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let request_timeout = settings.request_timeout;
        let service =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                let router = router.clone();
                async move {
                    let answer = tower::ServiceExt::oneshot(router, req.map(axum::body::Body::new));
                    match tokio::time::timeout(request_timeout, answer).await {
                        Ok(res) => res,
                        Err(_) => Ok((
                            StatusCode::REQUEST_TIMEOUT,
                            [(header::CONNECTION, "close")],
                            "The request took too long to arrive.",
                        )
                            .into_response()),
                    }
                }
            });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(settings.header_timeout)
            .keep_alive(true);
        let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
        tokio::spawn(async move {
            // A connection's errors (reset, timed out) are the client's business.
            let _ = conn.await;
            drop(permit);
        });
    }
}

/// Security headers on every response; no caching of anything but the stylesheet.
async fn security_headers(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let is_static = req.uri().path().starts_with("/static/");
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    // Report pages carry their stylesheet inline: allowed by its hash, nothing else.
    let report_style = h.remove("x-dcrs-style-hash");
    let style = match &report_style {
        Some(hash) => format!("style-src 'self' '{}'", hash.to_str().unwrap_or("")),
        None => "style-src 'self'".into(),
    };
    let csp = format!(
        "default-src 'none'; {style}; img-src 'self' data:; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'"
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_str(&csp).expect("ascii"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if is_static {
            "public, max-age=3600"
        } else {
            "no-store"
        }),
    );
    res
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLESHEET,
    )
        .into_response()
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn set_cookie(app: &App, name: &str, value: &str, max_age: Option<i64>) -> String {
    format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict{}{}",
        if app.0.settings.secure_cookies {
            "; Secure"
        } else {
            ""
        },
        max_age
            .map(|a| format!("; Max-Age={a}"))
            .unwrap_or_default()
    )
}

fn html(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

/// The signed-in user of a request.
struct Ctx {
    user: User,
    session: auth::Session,
}

impl Ctx {
    fn page(&self, title: &str, body: &str) -> Response {
        html(layout(
            title,
            Some((&self.user, &self.session.csrf_token)),
            body,
        ))
    }
}

/// The signed-in user, or a redirect to sign in. A session whose second factor is
/// outstanding reaches only the second-factor pages (`second_factor_page`).
async fn signed_in_any(
    app: &App,
    headers: &HeaderMap,
    second_factor_page: bool,
) -> Result<Ctx, WebError> {
    let id = cookie(headers, SESSION_COOKIE).ok_or(WebError::SignIn)?;
    let idle = app.0.settings.idle_minutes * 60;
    let session = auth::find_session(app.db(), &id, idle)
        .await?
        .ok_or(WebError::SignIn)?;
    let user = users::by_id(app.db(), session.user_id)
        .await?
        .filter(|u| !u.disabled)
        .ok_or(WebError::SignIn)?;
    // Whether a second factor is needed is worked out on every request, so turning the
    // setting on reaches sessions that began before it.
    let needs_second = user.totp_secret.is_some()
        || (app.0.settings.require_second_factor && user.role.needs_second_factor());
    let second_missing =
        needs_second && (!session.second_factor_done || user.totp_secret.is_none());
    if second_missing && !second_factor_page {
        return Err(WebError::Redirect(if user.totp_secret.is_some() {
            "/login/second-factor".into()
        } else {
            "/account/second-factor".into()
        }));
    }
    Ok(Ctx { user, session })
}

/// The signed-in user, who must first change a password someone else chose.
async fn signed_in(app: &App, headers: &HeaderMap) -> Result<Ctx, WebError> {
    let ctx = signed_in_any(app, headers, false).await?;
    if ctx.user.must_change_password {
        return Err(WebError::Redirect("/account/password".into()));
    }
    Ok(ctx)
}

/// A state-changing request must come from our own pages: not cross-site, and carrying
/// the session's token.
fn check_csrf(
    headers: &HeaderMap,
    expected: &str,
    form: &HashMap<String, String>,
) -> Result<(), WebError> {
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site")
    {
        return Err(WebError::Forbidden("The request came from another site."));
    }
    if let (Some(origin), Some(host)) = (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) && origin != "null"
        && origin.split("://").nth(1) != Some(host)
    {
        return Err(WebError::Forbidden("The request came from another site."));
    }
    match form.get("csrf") {
        Some(t) if auth::same(t, expected) => Ok(()),
        _ => Err(WebError::Forbidden(
            "The form had expired or did not come from this service. Go back, reload the page and try again.",
        )),
    }
}

async fn audit(
    app: &App,
    actor: &str,
    action: &str,
    service_id: Option<i64>,
    record_ref: Option<String>,
    detail: serde_json::Value,
) -> Result<(), WebError> {
    app.db()
        .audit(&AuditEntry {
            actor: actor.to_string(),
            action: action.to_string(),
            service_id,
            record_ref,
            detail: Some(detail.to_string()),
            ..Default::default()
        })
        .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------
// Signing in and out.

fn login_form(token: &str, username: &str, errors: &[FieldError]) -> String {
    format!(
        "{}<div class=\"panel\"><form method=\"post\" action=\"/login\" novalidate>{}{}{}\
         <button class=\"button\" type=\"submit\">Sign in</button></form></div>",
        error_summary(errors),
        csrf_field(token),
        input(
            "username",
            "User name",
            "text",
            username,
            None,
            errors,
            "username"
        ),
        input(
            "password",
            "Password",
            "password",
            "",
            None,
            errors,
            "current-password"
        ),
    )
}

async fn login_page(State(app): State<App>) -> Response {
    let token = auth::token();
    let mut res = html(layout("Sign in", None, &login_form(&token, "", &[])));
    res.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_str(&set_cookie(&app, LOGIN_COOKIE, &token, Some(1800))).expect("ascii"),
    );
    res
}

/// The network address a request came from: its peer; or, behind a proxy the deployment
/// trusts (`Settings::behind_proxy`), the address that proxy appended last to
/// `X-Forwarded-For`. Only the last entry is the proxy's own: anything before it is
/// whatever the client sent.
fn client_address(app: &App, peer: Option<std::net::SocketAddr>, headers: &HeaderMap) -> String {
    if app.0.settings.behind_proxy
        && let Some(last) = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .next_back()
        && let Ok(ip) = last.parse::<std::net::IpAddr>()
    {
        return ip.to_string();
    }
    peer.map_or_else(|| "local".to_string(), |p| p.ip().to_string())
}

async fn login(
    State(app): State<App>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let address = client_address(&app, peer.map(|p| p.0.0), &headers);
    let typed = form
        .get("username")
        .map(|s| s.trim().to_lowercase())
        .unwrap_or_default();
    if let Some(why) = app.throttled(&address, &typed) {
        return Ok(too_many_attempts(why));
    }
    // Before a session exists the form's token must match the cookie set with the form.
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() {
        return Err(WebError::Forbidden(
            "The form had expired or did not come from this service. Go back, reload the page and try again.",
        ));
    }
    check_csrf(&headers, &expected, &form)?;
    let username = typed;
    let password = form.get("password").cloned().unwrap_or_default();
    let retry = |message: &str| {
        let token = auth::token();
        let errors = vec![FieldError {
            field: "username",
            message: message.to_string(),
        }];
        let mut res = html(layout(
            "Sign in",
            None,
            &login_form(&token, &username, &errors),
        ));
        *res.status_mut() = StatusCode::OK;
        res.headers_mut().append(
            header::SET_COOKIE,
            HeaderValue::from_str(&set_cookie(&app, LOGIN_COOKIE, &token, Some(1800)))
                .expect("ascii"),
        );
        res
    };
    // Only a few checks at a time for one address, and the throttle asked again after
    // waiting: a burst of guesses in parallel cannot all pass it, and a burst of people
    // signing in at once from one office waits a moment instead of being refused.
    let _turn = app.check_turn(&address).await;
    if let Some(why) = app.throttled(&address, &username) {
        return Ok(too_many_attempts(why));
    }
    let generic = format!(
        "The user name or password is not right. After {PAIR_FAILURES} failed attempts you must wait {} minutes to try again, and an account with many failed attempts is locked for that long.",
        app.0.settings.lockout_minutes
    );
    let user = users::by_username(app.db(), &username).await?;
    let now = auth::now();
    // The password is always checked (against a dummy hash for an unknown name), so an
    // unknown, locked or known account takes as long and reads the same.
    let hash = user
        .as_ref()
        .map_or_else(|| app.0.dummy_hash.clone(), |u| u.password_hash.clone());
    let ok = auth::verify_password(password, hash).await;
    if !ok || user.as_ref().is_none_or(|u| u.disabled) {
        app.failed(&address, &username);
    }
    let Some(user) = user else {
        audit(
            &app,
            "(unknown user name)",
            "auth.login.failed",
            None,
            None,
            serde_json::json!({"reason": "unknown user name"}),
        )
        .await?;
        return Ok(retry(&generic));
    };
    if user.locked_until.is_some_and(|t| t > now) {
        audit(
            &app,
            &user.username,
            "auth.login.refused",
            user.service_id,
            None,
            serde_json::json!({"reason": "locked"}),
        )
        .await?;
        return Ok(retry(&generic));
    }
    if !ok || user.disabled {
        let locked = count_failure(&app, &user, Failure::Password).await?;
        audit(
            &app,
            &user.username,
            "auth.login.failed",
            user.service_id,
            None,
            serde_json::json!({
                "reason": if user.disabled { "disabled" } else { "wrong password" },
                "locked": locked,
            }),
        )
        .await?;
        return Ok(retry(&generic));
    }
    sqlx::query("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE user_id = $1")
        .bind(user.user_id)
        .execute_write(app.db())
        .await?;
    // A new session at every sign-in; any session the browser had is ended.
    if let Some(old) = cookie(&headers, SESSION_COOKIE) {
        auth::end_session(app.db(), &old).await?;
    }
    let needs_second = user.totp_secret.is_some()
        || (app.0.settings.require_second_factor && user.role.needs_second_factor());
    let (id, _) = auth::start_session(app.db(), user.user_id, !needs_second).await?;
    audit(
        &app,
        &user.username,
        "auth.login",
        user.service_id,
        None,
        serde_json::json!({}),
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
    res.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_str(&set_cookie(&app, SESSION_COOKIE, &id, None)).expect("ascii"),
    );
    res.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_str(&set_cookie(&app, LOGIN_COOKIE, "", Some(0))).expect("ascii"),
    );
    Ok(res)
}

/// What a failure is counted as: wrong passwords and wrong security codes have counters
/// of their own, so that a correct password cannot set back the count of codes guessed.
#[derive(Clone, Copy)]
enum Failure {
    Password,
    Code,
}

/// The page for an address that must wait before trying again.
fn too_many_attempts(why: Throttled) -> Response {
    let text = match why {
        Throttled::Address => {
            "<p>There have been too many failed sign-ins from your network. Wait 15 minutes and try again.</p>"
        }
        Throttled::Account => {
            "<p>There have been too many failed sign-ins to this account from your network. Wait 15 minutes and try again, or ask your service manager to reset your password.</p>"
        }
    };
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        layout("Too many attempts", None, text),
    )
        .into_response()
}

/// Counts a failed sign-in or security code against the account, in one statement so
/// that guesses in parallel are all counted; locks it when there have been too many.
/// Returns whether it is now locked.
async fn count_failure(app: &App, user: &User, kind: Failure) -> Result<bool, WebError> {
    let sql = match kind {
        Failure::Password => {
            "UPDATE users SET failed_logins = failed_logins + 1 WHERE user_id = $1 RETURNING failed_logins"
        }
        Failure::Code => {
            "UPDATE users SET failed_codes = failed_codes + 1 WHERE user_id = $1 RETURNING failed_codes"
        }
    };
    let failed: i64 = sqlx::query_scalar(sql)
        .bind(user.user_id)
        .fetch_one(app.db().pool())
        .await?;
    let limit = match kind {
        Failure::Password => app.0.settings.lockout_after,
        Failure::Code => app.0.settings.code_lockout_after,
    };
    if failed < limit {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE users SET failed_logins = 0, failed_codes = 0, locked_until = $1 WHERE user_id = $2",
    )
    .bind(auth::now() + app.0.settings.lockout_minutes * 60)
    .bind(user.user_id)
    .execute_write(app.db())
    .await?;
    auth::end_sessions_of(app.db(), user.user_id).await?;
    Ok(true)
}

fn code_form(action: &str, csrf: &str, errors: &[FieldError], intro: &str) -> String {
    format!(
        "{}<div class=\"panel\">{intro}<form method=\"post\" action=\"{action}\" novalidate>{}{}\
         <button class=\"button\" type=\"submit\">Continue</button></form></div>",
        error_summary(errors),
        csrf_field(csrf),
        input(
            "code",
            "Security code",
            "text",
            "",
            Some("The 6-digit code from your authenticator app"),
            errors,
            "one-time-code"
        ),
    )
}

async fn second_factor_page(
    State(app): State<App>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let ctx = signed_in_any(&app, &headers, true).await?;
    if ctx.user.totp_secret.is_none() {
        return Err(WebError::Redirect("/account/second-factor".into()));
    }
    Ok(ctx.page(
        "Enter your security code",
        &code_form("/login/second-factor", &ctx.session.csrf_token, &[], ""),
    ))
}

async fn second_factor(
    State(app): State<App>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let ctx = signed_in_any(&app, &headers, true).await?;
    check_csrf(&headers, &ctx.session.csrf_token, &form)?;
    let stored = ctx
        .user
        .totp_secret
        .clone()
        .ok_or(WebError::Redirect("/account/second-factor".into()))?;
    // A secret that does not open means the key file is not the one it was sealed with.
    let secret = app
        .0
        .sealer
        .open(&stored)
        .ok_or_else(|| WebError::Internal("a TOTP secret does not open with web.key".into()))?;
    let code = form.get("code").cloned().unwrap_or_default();
    // A code is accepted once: a step at or before the last one accepted is refused. The
    // check and the move of the last step are one statement, so two uses of one code at
    // the same moment let exactly one in.
    let step = auth::totp_step(&secret, &code, auth::now()).map(|s| s as i64);
    let accepted = match step {
        Some(step) => {
            sqlx::query(
                "UPDATE users SET totp_last_step = $1, failed_codes = 0 WHERE user_id = $2 \
                 AND (totp_last_step IS NULL OR totp_last_step < $1) \
                 AND (locked_until IS NULL OR locked_until <= $3)",
            )
            .bind(step)
            .bind(ctx.user.user_id)
            .bind(auth::now())
            .execute_write(app.db())
            .await?
            .rows_affected()
                == 1
        }
        None => false,
    };
    if !accepted {
        let locked = count_failure(&app, &ctx.user, Failure::Code).await?;
        audit(
            &app,
            &ctx.user.username,
            "auth.second_factor.failed",
            ctx.user.service_id,
            None,
            serde_json::json!({"locked": locked}),
        )
        .await?;
        if locked {
            return Err(WebError::SignIn);
        }
        let errors = [FieldError {
            field: "code",
            message: "The security code is not right. Enter the code your app shows now".into(),
        }];
        return Ok(ctx.page(
            "Enter your security code",
            &code_form("/login/second-factor", &ctx.session.csrf_token, &errors, ""),
        ));
    }
    auth::second_factor_done(app.db(), &ctx.session.session_hash).await?;
    audit(
        &app,
        &ctx.user.username,
        "auth.second_factor",
        ctx.user.service_id,
        None,
        serde_json::json!({}),
    )
    .await?;
    Ok(see_other("/"))
}

async fn logout(
    State(app): State<App>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let ctx = signed_in_any(&app, &headers, true).await?;
    check_csrf(&headers, &ctx.session.csrf_token, &form)?;
    if let Some(id) = cookie(&headers, SESSION_COOKIE) {
        auth::end_session(app.db(), &id).await?;
    }
    audit(
        &app,
        &ctx.user.username,
        "auth.logout",
        ctx.user.service_id,
        None,
        serde_json::json!({}),
    )
    .await?;
    let mut res = see_other("/login");
    res.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_str(&set_cookie(&app, SESSION_COOKIE, "", Some(0))).expect("ascii"),
    );
    Ok(res)
}

// ---------------------------------------------------------------------------------
// Account.

async fn password_page(State(app): State<App>, headers: HeaderMap) -> Result<Response, WebError> {
    let ctx = signed_in_any(&app, &headers, false).await?;
    Ok(ctx.page(
        "Change your password",
        &password_form(&ctx.session.csrf_token, &[]),
    ))
}

fn password_form(csrf: &str, errors: &[FieldError]) -> String {
    format!(
        "{}<div class=\"panel\"><form method=\"post\" action=\"/account/password\" novalidate>{}{}{}\
         <button class=\"button\" type=\"submit\">Change password</button></form></div>",
        error_summary(errors),
        csrf_field(csrf),
        input(
            "current",
            "Current password",
            "password",
            "",
            None,
            errors,
            "current-password"
        ),
        input(
            "new",
            "New password",
            "password",
            "",
            Some(&format!(
                "At least {} characters. A few unrelated words make a strong password.",
                users::MIN_PASSWORD
            )),
            errors,
            "new-password"
        ),
    )
}

async fn change_password(
    State(app): State<App>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let ctx = signed_in_any(&app, &headers, false).await?;
    check_csrf(&headers, &ctx.session.csrf_token, &form)?;
    let current = form.get("current").cloned().unwrap_or_default();
    let new = form.get("new").cloned().unwrap_or_default();
    let mut errors = Vec::new();
    if !auth::verify_password(current, ctx.user.password_hash.clone()).await {
        errors.push(FieldError {
            field: "current",
            message: "Your current password is not right".into(),
        });
    }
    if new.chars().count() < users::MIN_PASSWORD {
        errors.push(FieldError {
            field: "new",
            message: format!(
                "Enter a new password of at least {} characters",
                users::MIN_PASSWORD
            ),
        });
    }
    if !errors.is_empty() {
        return Ok(ctx.page(
            "Change your password",
            &password_form(&ctx.session.csrf_token, &errors),
        ));
    }
    let hash = auth::hash_password(new).await?;
    sqlx::query(
        "UPDATE users SET password_hash = $1, password_changed_at = $2, must_change_password = 0 WHERE user_id = $3",
    )
        .bind(hash)
        .bind(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .bind(ctx.user.user_id)
        .execute_write(app.db())
        .await?;
    // Other sessions of the account end; this one carries on.
    sqlx::query("DELETE FROM web_sessions WHERE user_id = $1 AND session_hash <> $2")
        .bind(ctx.user.user_id)
        .bind(ctx.session.session_hash.clone())
        .execute_write(app.db())
        .await?;
    audit(
        &app,
        &ctx.user.username,
        "user.password.change",
        ctx.user.service_id,
        Some(ctx.user.username.clone()),
        serde_json::json!({}),
    )
    .await?;
    Ok(ctx.page("Password changed", "<div class=\"inset\"><p>Your password has been changed. You have been signed out everywhere else.</p></div><p><a href=\"/\">Continue</a></p>"))
}

async fn setup_page(State(app): State<App>, headers: HeaderMap) -> Result<Response, WebError> {
    let ctx = signed_in_any(&app, &headers, true).await?;
    if ctx.user.totp_secret.is_some() && ctx.session.second_factor_done {
        return Ok(ctx.page("Second factor", "<p>A second factor is set up for your account. Ask an admin to reset it if you lose your device.</p>"));
    }
    if ctx.user.totp_secret.is_some() {
        return Err(WebError::Redirect("/login/second-factor".into()));
    }
    Ok(ctx.page(
        "Set up a second factor",
        &setup_form(&ctx, &auth::new_totp_secret(), &[]),
    ))
}

fn setup_form(ctx: &Ctx, secret: &str, errors: &[FieldError]) -> String {
    let uri = format!(
        "otpauth://totp/dcrs:{}?secret={secret}&issuer=dcrs",
        ctx.user.username
    );
    format!(
        "{}<div class=\"panel\"><p>Add this key to an authenticator app on your phone, then enter the code it shows.</p>\
         <p class=\"secret\">{}</p><p class=\"hint\">Or open: {}</p>\
         <form method=\"post\" action=\"/account/second-factor\" novalidate>{}<input type=\"hidden\" name=\"secret\" value=\"{}\">{}\
         <button class=\"button\" type=\"submit\">Turn on</button></form></div>",
        error_summary(errors),
        esc(secret),
        esc(&uri),
        csrf_field(&ctx.session.csrf_token),
        esc(secret),
        input(
            "code",
            "Security code",
            "text",
            "",
            Some("The 6-digit code from your authenticator app"),
            errors,
            "one-time-code"
        ),
    )
}

async fn setup_second_factor(
    State(app): State<App>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let ctx = signed_in_any(&app, &headers, true).await?;
    check_csrf(&headers, &ctx.session.csrf_token, &form)?;
    if ctx.user.totp_secret.is_some() {
        return Err(WebError::Forbidden(
            "A second factor is already set up for this account.",
        ));
    }
    let secret = form.get("secret").cloned().unwrap_or_default();
    let code = form.get("code").cloned().unwrap_or_default();
    if auth::from_base32(&secret).is_none_or(|k| k.len() < 16)
        || !auth::totp_ok(&secret, &code, auth::now())
    {
        let errors = [FieldError {
            field: "code",
            message: "The security code is not right. Enter the code your app shows now".into(),
        }];
        let secret = if auth::from_base32(&secret).is_some_and(|k| k.len() >= 16) {
            secret
        } else {
            auth::new_totp_secret()
        };
        return Ok(ctx.page(
            "Set up a second factor",
            &setup_form(&ctx, &secret, &errors),
        ));
    }
    let step = auth::totp_step(&secret, &code, auth::now()).map(|s| s as i64);
    sqlx::query("UPDATE users SET totp_secret = $1, totp_last_step = $2 WHERE user_id = $3")
        .bind(app.0.sealer.seal(&secret))
        .bind(step)
        .bind(ctx.user.user_id)
        .execute_write(app.db())
        .await?;
    // Other sessions began without the factor: they end.
    sqlx::query("DELETE FROM web_sessions WHERE user_id = $1 AND session_hash <> $2")
        .bind(ctx.user.user_id)
        .bind(ctx.session.session_hash.clone())
        .execute_write(app.db())
        .await?;
    auth::second_factor_done(app.db(), &ctx.session.session_hash).await?;
    audit(
        &app,
        &ctx.user.username,
        "user.second_factor.set",
        ctx.user.service_id,
        Some(ctx.user.username.clone()),
        serde_json::json!({"before": {"second_factor": false}, "after": {"second_factor": true}}),
    )
    .await?;
    Ok(see_other("/"))
}

// ---------------------------------------------------------------------------------
// Home.

async fn service_scope(app: &App, service_ref: &str) -> Result<Option<ServiceScope>, WebError> {
    let row: Option<(i64, String, String)> = sqlx::query_as(
        "SELECT s.service_id, s.service_ref, o.org_ref FROM services s \
         JOIN organisations o ON o.org_id = s.commissioner_org_id WHERE s.service_ref = $1",
    )
    .bind(service_ref.to_string())
    .fetch_optional(app.db().pool())
    .await?;
    Ok(row.map(
        |(service_id, service_ref, commissioner_org_ref)| ServiceScope {
            service_id,
            service_ref,
            commissioner_org_ref,
        },
    ))
}

async fn all_services(app: &App) -> Result<Vec<(ServiceScope, String)>, WebError> {
    let rows: Vec<(i64, String, String, String)> = sqlx::query_as(
        "SELECT s.service_id, s.service_ref, o.org_ref, s.name FROM services s \
         JOIN organisations o ON o.org_id = s.commissioner_org_id ORDER BY s.service_ref",
    )
    .fetch_all(app.db().pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|(service_id, service_ref, commissioner_org_ref, name)| {
            (
                ServiceScope {
                    service_id,
                    service_ref,
                    commissioner_org_ref,
                },
                name,
            )
        })
        .collect())
}

async fn home(State(app): State<App>, headers: HeaderMap) -> Result<Response, WebError> {
    let ctx = signed_in(&app, &headers).await?;
    let mut items = Vec::new();
    for (s, name) in all_services(&app).await? {
        let r = esc(&s.service_ref);
        let mut links = Vec::new();
        if allowed(&ctx.user, Action::ViewClients, Some(&s)) {
            links.push(format!("<a href=\"/services/{r}/caseload\">Caseload</a>"));
            links.push(format!("<a href=\"/services/{r}/clients\">Clients</a>"));
        }
        if allowed(&ctx.user, Action::ViewReports, Some(&s)) {
            links.push(format!(
                "<a href=\"/services/{r}/reports/pack?period=2010-11\">Report pack</a>"
            ));
        }
        if allowed(&ctx.user, Action::ViewAudit, Some(&s)) {
            links.push(format!("<a href=\"/services/{r}/dashboard\">Dashboard</a>"));
            links.push(format!("<a href=\"/services/{r}/staff\">Staff</a>"));
            links.push(format!(
                "<a href=\"/services/{r}/configuration\">Configuration</a>"
            ));
            links.push(format!("<a href=\"/services/{r}/audit\">Audit trail</a>"));
        }
        if !links.is_empty() {
            items.push(format!(
                "<li><strong>{r} {}</strong>: {}</li>",
                esc(&name),
                links.join(" · ")
            ));
        }
    }
    let mut body = String::new();
    if matches!(
        ctx.user.role,
        Role::Commissioner | Role::Analyst | Role::ServiceManager
    ) {
        body.push_str("<p><a class=\"button\" href=\"/reports\">Reports</a></p>");
    }
    if ctx.user.role == Role::Analyst {
        body.push_str("<p><a href=\"/patterns/view\">Implementation patterns of your services, side by side</a></p>");
    }
    if allowed(&ctx.user, Action::ManageUsers, None) {
        body.push_str("<p><a href=\"/admin/users\">Manage user accounts</a></p>");
    }
    if allowed(&ctx.user, Action::ManageProjects, None) {
        body.push_str("<p><a href=\"/admin/projects\">Research projects</a> and <a href=\"/admin/releases\">the release register</a></p>");
    }
    if ctx.user.role == Role::Analyst {
        body.push_str("<p><a href=\"/extracts\">Research extracts</a>: pseudonymised records for an approved project</p>");
    }
    body.push_str("<p><a href=\"/account/tokens\">API access tokens</a> for scripts</p>");
    if !items.is_empty() {
        body.push_str(&format!(
            "<h2>Your services</h2><ul>{}</ul>",
            items.join("")
        ));
    }
    if ctx.user.totp_secret.is_none() {
        body.push_str(
            "<p><a href=\"/account/second-factor\">Set up a second factor for signing in</a></p>",
        );
    }
    Ok(ctx.page(&format!("Hello, {}", ctx.user.display_name), &body))
}

// ---------------------------------------------------------------------------------
// Admin: accounts.

fn user_form(csrf: &str, n: &NewUser, errors: &[FieldError]) -> String {
    let roles: Vec<(&str, &str)> = std::iter::once(("", "Select a role"))
        .chain(Role::ALL.iter().map(|r| (r.code(), r.label())))
        .collect();
    format!(
        "<h2>Add an account</h2>{}<div class=\"panel\"><form method=\"post\" action=\"/admin/users\" novalidate>{}{}{}{}{}{}{}{}{}\
         <button class=\"button\" type=\"submit\">Add account</button></form></div>",
        error_summary(errors),
        csrf_field(csrf),
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
        select("role", "Role", &roles, &n.role, errors),
        input(
            "service_ref",
            "Service reference",
            "text",
            n.service_ref.as_deref().unwrap_or(""),
            Some("Health trainers and service managers"),
            errors,
            "off"
        ),
        input(
            "worker_ref",
            "Worker reference",
            "text",
            n.worker_ref.as_deref().unwrap_or(""),
            Some("Health trainers: their worker record in the service"),
            errors,
            "off"
        ),
        input(
            "org_ref",
            "Organisation reference",
            "text",
            n.org_ref.as_deref().unwrap_or(""),
            Some("Commissioners: the organisation that commissions services"),
            errors,
            "off"
        ),
        input(
            "analyst_services",
            "Services an analyst may see",
            "text",
            n.analyst_services.as_deref().unwrap_or(""),
            Some("Analysts: service references separated by commas; leave empty for every service"),
            errors,
            "off"
        ),
        input(
            "password",
            "First password",
            "password",
            "",
            Some(&format!(
                "At least {} characters; the person changes it after signing in",
                users::MIN_PASSWORD
            )),
            errors,
            "new-password"
        ),
    )
}

async fn users_body(
    app: &App,
    ctx: &Ctx,
    n: &NewUser,
    errors: &[FieldError],
) -> Result<String, WebError> {
    let rows: Vec<Vec<String>> = users::all(app.db())
        .await?
        .into_iter()
        .map(|u| {
            let action = if u.disabled || u.user_id == ctx.user.user_id {
                String::new()
            } else {
                format!(
                    "<form method=\"post\" action=\"/admin/users/{}/disable\">{}<button class=\"button button--warning\" type=\"submit\">Disable<span class=\"visually-hidden\"> {}</span></button></form>",
                    u.user_id,
                    csrf_field(&ctx.session.csrf_token),
                    esc(&u.username)
                )
            };
            vec![
                esc(&u.username),
                esc(&u.display_name),
                esc(u.role.label()),
                if u.disabled { "Disabled".into() } else { "Active".into() },
                action,
            ]
        })
        .collect();
    Ok(format!(
        "{}{}",
        pages::table(
            "User accounts",
            &["User name", "Name", "Role", "Status", ""],
            &rows
        ),
        user_form(&ctx.session.csrf_token, n, errors)
    ))
}

async fn users_page(State(app): State<App>, headers: HeaderMap) -> Result<Response, WebError> {
    let ctx = signed_in(&app, &headers).await?;
    if !allowed(&ctx.user, Action::ManageUsers, None) {
        return Err(WebError::NotFound);
    }
    let body = users_body(&app, &ctx, &NewUser::default(), &[]).await?;
    Ok(ctx.page("User accounts", &body))
}

async fn add_user(
    State(app): State<App>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let ctx = signed_in(&app, &headers).await?;
    if !allowed(&ctx.user, Action::ManageUsers, None) {
        return Err(WebError::NotFound);
    }
    check_csrf(&headers, &ctx.session.csrf_token, &form)?;
    let get = |k: &str| form.get(k).cloned().filter(|v| !v.trim().is_empty());
    let n = NewUser {
        username: get("username").unwrap_or_default(),
        display_name: get("display_name").unwrap_or_default(),
        role: get("role").unwrap_or_default(),
        service_ref: get("service_ref"),
        worker_ref: get("worker_ref"),
        org_ref: get("org_ref"),
        analyst_services: get("analyst_services"),
        password: form.get("password").cloned().unwrap_or_default(),
    };
    match users::check(app.db(), &n).await? {
        Err(errors) => {
            let body = users_body(&app, &ctx, &n, &errors).await?;
            Ok(ctx.page("User accounts", &body))
        }
        Ok(checked) => {
            let hash = auth::hash_password(n.password.clone()).await?;
            let id = users::insert(app.db(), &checked, &hash, true).await?;
            audit(&app, &ctx.user.username, "user.add", checked.service_id, Some(checked.username.clone()), serde_json::json!({
                "before": null,
                "after": {
                    "user_id": id, "username": checked.username, "display_name": checked.display_name,
                    "role": checked.role.code(), "service_id": checked.service_id, "worker_ref": checked.worker_ref,
                    "org_ref": checked.org_ref, "analyst_services": checked.analyst_services,
                },
            })).await?;
            Ok(see_other("/admin/users"))
        }
    }
}

async fn disable_user(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let ctx = signed_in(&app, &headers).await?;
    if !allowed(&ctx.user, Action::ManageUsers, None) {
        return Err(WebError::NotFound);
    }
    check_csrf(&headers, &ctx.session.csrf_token, &form)?;
    let target = users::by_id(app.db(), id)
        .await?
        .ok_or(WebError::NotFound)?;
    if target.user_id == ctx.user.user_id {
        return Err(WebError::Forbidden("You cannot disable your own account."));
    }
    sqlx::query("UPDATE users SET disabled = 1 WHERE user_id = $1")
        .bind(id)
        .execute_write(app.db())
        .await?;
    auth::end_sessions_of(app.db(), id).await?;
    tokens::revoke_all(app.db(), id).await?;
    audit(
        &app,
        &ctx.user.username,
        "user.disable",
        target.service_id,
        Some(target.username.clone()),
        serde_json::json!({
            "before": {"disabled": target.disabled}, "after": {"disabled": true},
        }),
    )
    .await?;
    Ok(see_other("/admin/users"))
}

// ---------------------------------------------------------------------------------
// Service pages.

/// The service of a request when the user may take the action on it; otherwise "not
/// found", whether or not the service exists, so a refusal tells nothing.
async fn authorised(
    app: &App,
    ctx: &Ctx,
    service_ref: &str,
    action: Action,
) -> Result<ServiceScope, WebError> {
    match service_scope(app, service_ref).await? {
        Some(s) if allowed(&ctx.user, action, Some(&s)) => Ok(s),
        _ => {
            audit(
                app,
                &ctx.user.username,
                "access.denied",
                None,
                None,
                serde_json::json!({"action": format!("{action:?}")}),
            )
            .await?;
            Err(WebError::NotFound)
        }
    }
}

async fn clients(
    State(app): State<App>,
    headers: HeaderMap,
    Path(service): Path<String>,
) -> Result<Response, WebError> {
    let ctx = signed_in(&app, &headers).await?;
    let s = authorised(&app, &ctx, &service, Action::ViewClients).await?;
    let rows = app.db().client_list(s.service_id).await?;
    let refs: Vec<&str> = rows.iter().map(|r| r.client_ref.as_str()).collect();
    audit(
        &app,
        &ctx.user.username,
        "view.clients",
        Some(s.service_id),
        None,
        serde_json::json!({"records": refs}),
    )
    .await?;
    let table_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|c| {
            let (r, g, f, dob, pc) = (
                &c.client_ref,
                &c.given_name,
                &c.family_name,
                &c.date_of_birth,
                &c.postcode,
            );
            vec![
                format!(
                    "<a href=\"/services/{}/clients/{}\">{}</a>",
                    esc(&s.service_ref),
                    esc(r),
                    esc(r)
                ),
                esc(&format!(
                    "{} {}",
                    g.clone().unwrap_or_default(),
                    f.clone().unwrap_or_default()
                )),
                esc(dob),
                esc(pc.as_deref().unwrap_or("")),
            ]
        })
        .collect();
    let register = if allowed(&ctx.user, Action::EditClients, Some(&s)) {
        format!(
            "<p><a class=\"button\" href=\"/services/{}/clients/new\">Register a client</a></p>",
            esc(&s.service_ref)
        )
    } else {
        String::new()
    };
    let body = register
        + &pages::table(
            "Clients",
            &["Client", "Name", "Date of birth", "Postcode"],
            &table_rows,
        );
    Ok(ctx.page(&format!("Clients of {}", s.service_ref), &body))
}

async fn client(
    State(app): State<App>,
    headers: HeaderMap,
    Path((service, client_ref)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let ctx = signed_in(&app, &headers).await?;
    let s = authorised(&app, &ctx, &service, Action::ViewClients).await?;
    let c = app
        .db()
        .client_record(s.service_id, &client_ref)
        .await?
        .ok_or(WebError::NotFound)?;
    let (r, g, f, dob, sex, pc, nhs, quintile) = (
        c.client_ref,
        c.given_name,
        c.family_name,
        pages::uk_date(&c.date_of_birth),
        pages::words(dcrs_domain::Entity::Client, "sex", &c.sex),
        c.postcode,
        c.nhs_number,
        c.imd_quintile,
    );
    // An area by its name, with its code for analysts; the code alone where the
    // reference data have no name for it.
    let lad = c.lad_cd.map(|code| match c.lad_name {
        Some(name) => format!("{name} ({code})"),
        None => code,
    });
    let (g, f) = (g.unwrap_or_default(), f.unwrap_or_default());
    audit(
        &app,
        &ctx.user.username,
        "view.client",
        Some(s.service_id),
        Some(r.clone()),
        serde_json::json!({"records": [r.clone()]}),
    )
    .await?;
    let body = pages::summary(&[
        ("Client reference", r.clone()),
        ("Name", format!("{g} {f}")),
        ("Date of birth", dob),
        ("Sex", sex),
        ("Postcode", pc.clone().unwrap_or_default()),
        (
            "Area",
            match (&pc, lad, quintile) {
                (None, ..) => "No address".into(),
                (Some(_), Some(lad), Some(q)) => format!(
                    "{lad}, deprivation quintile {q} of 5 ({})",
                    if q == 1 {
                        "most deprived"
                    } else if q == 5 {
                        "least deprived"
                    } else {
                        "1 is the most deprived"
                    }
                ),
                (Some(_), Some(lad), None) => lad,
                (Some(_), None, _) => "Postcode not in the reference data".into(),
            },
        ),
        ("NHS number", nhs.unwrap_or_default()),
    ]);
    let episodes = app.db().client_episodes(s.service_id, &r).await?;
    let mut body = body;
    body.push_str("<h2>Episodes</h2>");
    if episodes.is_empty() {
        body.push_str("<p>None yet.</p>");
    } else {
        let items: String = episodes
            .iter()
            .map(|x| {
                let kind = pages::words(dcrs_domain::Entity::Episode, "kind", &x.kind);
                format!(
                    "<li><a href=\"/services/{}/episodes/{}\">{} from {}{}</a> <span class=\"hint\">({})</span></li>",
                    esc(&s.service_ref),
                    esc(&x.episode_ref),
                    esc(&kind),
                    esc(&pages::uk_date(&x.first_contact_on)),
                    x.closed_on
                        .as_ref()
                        .map(|c| format!(" to {}", esc(&pages::uk_date(c))))
                        .unwrap_or_else(|| ", open".into()),
                    esc(&x.episode_ref)
                )
            })
            .collect();
        body.push_str(&format!("<ul>{items}</ul>"));
    }
    if allowed(&ctx.user, Action::EditClients, Some(&s)) {
        body.push_str(&format!(
            "<p><a class=\"button\" href=\"/services/{}/clients/{}/episodes/new\">Refer and open an episode</a></p>",
            esc(&s.service_ref),
            esc(&r)
        ));
    }
    Ok(ctx.page(&format!("{g} {f}"), &body))
}

async fn audit_trail(
    State(app): State<App>,
    headers: HeaderMap,
    Path(service): Path<String>,
) -> Result<Response, WebError> {
    let ctx = signed_in(&app, &headers).await?;
    let s = authorised(&app, &ctx, &service, Action::ViewAudit).await?;
    let rows = app.db().audit_trail(s.service_id, 200).await?;
    audit(
        &app,
        &ctx.user.username,
        "view.audit",
        Some(s.service_id),
        None,
        serde_json::json!({
            "entries": rows.len(),
            "records": rows.iter().filter_map(|r| r.record_ref.clone()).collect::<Vec<_>>(),
        }),
    )
    .await?;
    let table_rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|e| {
            vec![
                esc(&e.at),
                esc(&e.actor),
                esc(&e.action),
                esc(&e.record_ref.unwrap_or_default()),
                esc(&e.detail.unwrap_or_default()),
            ]
        })
        .collect();
    let body = format!(
        "<p>The latest 200 entries about {}, newest first. The trail is hash-chained: <code>dcrs audit verify</code> detects any entry edited, deleted or reordered.</p>{}",
        esc(&s.service_ref),
        pages::table(
            "Audit trail",
            &["When", "Who", "What", "Record", "Detail"],
            &table_rows
        )
    );
    Ok(ctx.page(&format!("Audit trail of {}", s.service_ref), &body))
}

async fn report(
    State(app): State<App>,
    headers: HeaderMap,
    Path((service, kind)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let ctx = signed_in(&app, &headers).await?;
    let s = authorised(&app, &ctx, &service, Action::ViewReports).await?;
    let kind = dcrs_report::Kind::parse(&kind).map_err(|_| WebError::NotFound)?;
    let period = dcrs_report::Period::parse(q.get("period").map_or("2010-11", String::as_str))?;
    let exact = authz::exact_figures(&ctx.user, &s);
    let policy = if exact {
        dcrs_report::Policy::NONE
    } else {
        dcrs_report::Policy::NHS_SUB_NATIONAL
    };
    let req = dcrs_report::Request {
        kind,
        services: Some(vec![s.service_ref.clone()]),
        each_service: false,
        period,
        policy,
        fresh: false,
    };
    let reports = dcrs_report::run(app.db(), &req, chrono::Utc::now()).await?;
    let format = q.get("format").map_or("html", String::as_str);
    audit(&app, &ctx.user.username, if exact { "report.release.uncontrolled" } else { "report.release" }, Some(s.service_id), None, serde_json::json!({
        "report": kind.code(), "period": req.period.label, "policy": policy.kind.code(), "format": format,
    })).await?;
    let name = format!(
        "{}-{}-{}",
        s.service_ref,
        kind.code(),
        req.period.label.replace(' ', "")
    );
    let download = |ctype: &str, ext: &str, bytes: Vec<u8>| {
        (
            [
                (header::CONTENT_TYPE, ctype.to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!(
                        "attachment; filename=\"{}.{ext}\"",
                        name.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_")
                    ),
                ),
            ],
            bytes,
        )
            .into_response()
    };
    match format {
        "json" => Ok(download(
            "application/json",
            "json",
            dcrs_report::render::json(&reports).into_bytes(),
        )),
        "xlsx" => {
            let bytes = dcrs_report::xlsx::xlsx(&reports[0])
                .map_err(|e| WebError::Internal(e.to_string()))?;
            Ok(download(
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "xlsx",
                bytes,
            ))
        }
        _ => {
            let page = dcrs_report::html::html(&reports);
            let mut res = html(page);
            res.headers_mut().insert(
                "x-dcrs-style-hash",
                HeaderValue::from_str(&dcrs_report::html::style_hash()).expect("ascii"),
            );
            Ok(res)
        }
    }
}
