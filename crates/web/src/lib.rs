//! The web application's core: `dcrs serve`. Accounts and roles, sign-in with a second
//! factor, sessions, CSRF protection, authorisation in one place ([`authz`]), audit of
//! every view of identifiable data and every write, security headers, and the first
//! pages each role stands on. Pages work without JavaScript.

pub mod auth;
pub mod authz;
mod extract;
pub mod openapi;
mod pages;
mod routes;
pub mod sealed;
pub mod tokens;
pub mod users;
pub mod view;

use authz::{Action, ServiceScope, allowed};
use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use dcrs_store::WriteQuery as _;
use dcrs_store::{AuditEntry, Database};
use std::collections::HashMap;
use std::sync::Arc;
use users::User;

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
    /// A request no page of ours sends (a form that does not read as its fields).
    #[error("bad request")]
    BadRequest,
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
            (status, error_page(title, text, true)).into_response()
        };
        match self {
            WebError::NotFound => page(
                StatusCode::NOT_FOUND,
                "Page not found",
                "If you typed the web address, check it is correct. You may not have access to this page.",
            ),
            WebError::Forbidden(why) => page(StatusCode::FORBIDDEN, "You cannot do that", why),
            WebError::SignIn => see_other("/login"),
            WebError::BadRequest => page(
                StatusCode::BAD_REQUEST,
                "The request could not be read",
                BAD_REQUEST_TEXT,
            ),
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

/// A page that says what went wrong, for someone who may not be signed in, perhaps
/// with a link to the start page.
fn error_page(title: &str, text: &str, link_home: bool) -> Response {
    html(
        view::Markup::render(&routes::account::Message {
            layout: view::Layout::public(title),
            paragraphs: vec![text.to_string()],
            inset: false,
            link: link_home.then(|| (view::Url::path::<&str>(&[]), "Go to the start page")),
        })
        .into_string(),
    )
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
        let page = error_page("The request could not be read", BAD_REQUEST_TEXT, false);
        return (StatusCode::BAD_REQUEST, page).into_response();
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
    /// A fixed moment the pages take as now (today's date, the current quarter, the
    /// dates a form starts with), for tests that show pages exactly; `None` is the
    /// system clock. Sessions, second-factor codes and the audit log's times always
    /// follow the system clock.
    pub clock: Option<chrono::DateTime<chrono::Utc>>,
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
            clock: None,
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
    pub(crate) dashboards: std::sync::Mutex<HashMap<i64, Arc<routes::dashboard::Counted>>>,
    /// One dashboard count at a time per service: those asking meanwhile wait for it.
    pub(crate) dashboard_turns: std::sync::Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
    /// The dashboards' trends (their quarters before the latest complete one), by
    /// service, counted in the background.
    pub(crate) trends: std::sync::Mutex<HashMap<i64, routes::dashboard::TrendSlot>>,
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
            dashboard_turns: Default::default(),
            trends: Default::default(),
        })))
    }

    fn db(&self) -> &Database {
        &self.0.db
    }

    /// Now, as the pages take it: the settings' fixed clock, or the system's.
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.0.settings.clock.unwrap_or_else(chrono::Utc::now)
    }

    /// Today in the UK, as the pages take it.
    fn today(&self) -> chrono::NaiveDate {
        dcrs_domain::types::uk_today(self.now())
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
    use routes::{account, admin, clients, governance, reports, service};
    Router::new()
        .route("/static/app.css", get(stylesheet))
        .route("/login", get(account::login_page).post(account::login))
        .route(
            "/login/second-factor",
            get(account::second_factor_page).post(account::second_factor),
        )
        .route("/logout", post(account::logout))
        .route("/", get(routes::home::home))
        .route(
            "/account/password",
            get(account::password_page).post(account::change_password),
        )
        .route(
            "/account/second-factor",
            get(account::setup_page).post(account::setup_second_factor),
        )
        .route("/admin/users", get(admin::users_page).post(admin::add_user))
        .route("/admin/users/{id}/disable", post(admin::disable_user))
        .route("/services/{service}/clients", get(clients::clients))
        .route(
            "/services/{service}/clients/new",
            get(routes::capture::new_client_page).post(routes::capture::new_client),
        )
        .route(
            "/services/{service}/clients/{client}/episodes/new",
            get(routes::capture::referral_page).post(routes::capture::referral),
        )
        .route(
            "/services/{service}/episodes/{episode}",
            get(routes::caseload::episode_page),
        )
        .route(
            "/services/{service}/episodes/{episode}/plan-copy",
            get(routes::caseload::plan_copy),
        )
        .route(
            "/services/{service}/episodes/{episode}/{flow}",
            get(routes::capture::episode_flow_page).post(routes::capture::episode_flow_submit),
        )
        .route(
            "/services/{service}/episodes/{episode}/{flow}/{record}",
            get(routes::capture::change_page).post(routes::capture::change_submit),
        )
        .route(
            "/services/{service}/episodes/{episode}/{flow}/{record}/remove",
            get(routes::capture::remove_page).post(routes::capture::remove_submit),
        )
        .route(
            "/services/{service}/caseload",
            get(routes::caseload::caseload).post(routes::caseload::caseload_search),
        )
        .route("/drafts/{id}", get(routes::capture::draft))
        .route("/reports", get(reports::reports_page))
        .route("/reports/view", get(reports::report_view))
        .route("/patterns/view", get(reports::patterns_view))
        .route(
            "/services/{service}/dashboard",
            get(routes::dashboard::dashboard),
        )
        .route(
            "/services/{service}/dashboard/records",
            get(routes::dashboard::records),
        )
        .route(
            "/services/{service}/staff",
            get(service::staff_page).post(service::add_staff),
        )
        .route(
            "/services/{service}/staff/{id}/disable",
            post(service::disable_staff),
        )
        .route(
            "/services/{service}/staff/{id}/unlock",
            post(service::unlock_staff),
        )
        .route(
            "/services/{service}/configuration",
            get(service::configuration),
        )
        .route("/services/{service}/clients/{client}", get(clients::client))
        .route(
            "/services/{service}/clients/{client}/subject-access",
            get(governance::subject_access),
        )
        .route(
            "/services/{service}/clients/{client}/erase",
            get(governance::erase_form).post(governance::erase),
        )
        .route(
            "/services/{service}/clients/{client}/change",
            get(routes::capture::client_details_page).post(routes::capture::client_details_submit),
        )
        .route(
            "/services/{service}/duplicates",
            get(governance::duplicates).post(governance::merge),
        )
        .route(
            "/services/{service}/clients/{client}/restrict",
            get(governance::restrict_form).post(governance::restrict),
        )
        .route("/services/{service}/audit", get(clients::audit_trail))
        .route(
            "/services/{service}/reports/{kind}",
            get(reports::service_report),
        )
        .fallback(|| async { WebError::NotFound })
        .route(
            "/account/tokens",
            get(routes::tokens::tokens_page).post(routes::tokens::make_token),
        )
        .route(
            "/account/tokens/{id}/revoke",
            post(routes::tokens::revoke_token),
        )
        .route(
            "/admin/projects",
            get(routes::research::projects_page).post(routes::research::register_project),
        )
        .route("/admin/releases", get(routes::research::releases_page))
        .route(
            "/extracts",
            get(routes::research::extracts_page).post(routes::research::release_extract),
        )
        .merge(routes::api::routes())
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
#[derive(Clone)]
struct Ctx {
    user: User,
    session: auth::Session,
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
    let (session, user) = auth::find_session(app.db(), &id, idle)
        .await?
        .filter(|(_, u)| !u.disabled)
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
/// the session's token (see [`extract::Posted`]).
fn check_origin_and_token(
    headers: &HeaderMap,
    expected: &str,
    token: Option<&str>,
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
    match token {
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
