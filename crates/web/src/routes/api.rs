//! The JSON API under `/api/v1`, for scripts: every entity of the dataset (list with paging
//! and filters, read, create, update), every report and the implementation patterns.
//!
//! It is the pages' twin, not a second system. A request carries an access token
//! (`tokens`) that acts as the user who made it, so authorisation is the pages' own
//! `authz::allowed` (narrowed by the token); every write goes through the import's
//! pipeline (`dcrs_exchange::write_records`), so the same rules reject the same values and
//! each change is audited with its values before and after; reports go through the same
//! release function as the report pages, so disclosure control and audit are the same.
//! Reads of records are audited with the records listed, as the pages' are.
//!
//! Errors are JSON: `{"error", "message", "problems": [{"record", "field", "value",
//! "reason"}]}`. A service or record the token may not see is "not found", as on the
//! pages, so a refusal tells nothing about what exists.

use crate::authz::{Action, ServiceScope, allowed};
use crate::routes::reports;
use crate::tokens::{self, Token};
use crate::users::{self, Role, User};
use crate::{App, WebError, auth, openapi};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use dcrs_domain::Entity;
use dcrs_domain::record::FieldKind;
use dcrs_report::ReportError;
use dcrs_store::Condition;
use serde::Serialize;
use serde_json::{Map, Value, json};

/// Records per page when the request does not say, and at most.
pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 500;

/// The API's routes.
pub(crate) fn routes() -> Router<App> {
    Router::new()
        .route("/api/v1/openapi.json", get(document))
        .route("/api/v1/token", get(whoami))
        .route(
            "/api/v1/organisations",
            get(|s, h, q| list(s, h, Entity::Organisation, None, q))
                .post(|s, h, b| write(s, h, Entity::Organisation, None, None, b)),
        )
        .route(
            "/api/v1/organisations/{reference}",
            get(|s, h, P(r): P<String>| read(s, h, Entity::Organisation, None, r)).put(
                |s, h, P(r): P<String>, b| write(s, h, Entity::Organisation, None, Some(r), b),
            ),
        )
        .route(
            "/api/v1/services",
            get(|s, h, q| list(s, h, Entity::Service, None, q))
                .post(|s, h, b| write(s, h, Entity::Service, None, None, b)),
        )
        .route(
            "/api/v1/services/{service}",
            get(|s, h, P(r): P<String>| read(s, h, Entity::Service, None, r))
                .put(|s, h, P(r): P<String>, b| write(s, h, Entity::Service, None, Some(r), b)),
        )
        .route(
            "/api/v1/services/{service}/{collection}",
            get(list_tenant).post(create_tenant),
        )
        .route(
            "/api/v1/services/{service}/{collection}/{reference}",
            get(read_tenant).put(update_tenant),
        )
        .route(
            "/api/v1/fhir/services/{service}/clients/{client}",
            get(fhir_client),
        )
        .route("/api/v1/reports/{kind}", get(report))
        .route("/api/v1/patterns", get(patterns))
        .route("/api/v1/{*rest}", get(not_found).fallback(not_found))
        .layer(axum::middleware::from_fn(log_request))
}

/// Logs each API request by its route (the template, such as
/// `/api/v1/services/{service}/clients`, never the address itself, whose references and
/// filters can be personal), method, status and time taken.
async fn log_request(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("(unknown)".to_string(), |m| m.as_str().to_string());
    let method = req.method().clone();
    let start = std::time::Instant::now();
    let res = next.run(req).await;
    tracing::info!(
        target: "dcrs::api",
        %method,
        route,
        status = res.status().as_u16(),
        ms = start.elapsed().as_millis() as u64,
        "api request"
    );
    res
}

// ---------------------------------------------------------------------------------
// Errors.

/// One problem with a request: the record, field and value at fault, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub record: Option<String>,
    /// A JSON pointer to the value at fault in the request's body (`/date_of_birth`), or
    /// `None` when the fault is in another record (a rule across records).
    pub pointer: Option<String>,
    pub field: String,
    pub value: String,
    pub reason: String,
}

impl Problem {
    fn new(field: &str, value: &str, reason: impl Into<String>) -> Problem {
        Problem {
            record: None,
            pointer: Some(format!("/{field}")),
            field: field.to_string(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

/// Why a request failed.
#[derive(Debug)]
pub enum ApiError {
    /// No token, or one that is unknown, expired or revoked.
    Unauthorised,
    /// The token may read here but not do this.
    Forbidden(String),
    /// Not there, or not for this token.
    NotFound,
    /// The request itself is malformed (a parameter, the body).
    BadRequest(Vec<Problem>),
    /// The record exists already.
    Conflict(String),
    /// The record breaks the dataset's rules.
    Invalid(Vec<Problem>),
    /// An `Idempotency-Key` sent before with a different request.
    KeyReused,
    /// Something failed on our side; logged by kind only.
    Internal(&'static str),
}

impl From<WebError> for ApiError {
    fn from(e: WebError) -> ApiError {
        match e {
            WebError::NotFound => ApiError::NotFound,
            WebError::Forbidden(why) => ApiError::Forbidden(why.into()),
            WebError::SignIn | WebError::Redirect(_) => ApiError::Unauthorised,
            WebError::Report(r) => r.into(),
            other => ApiError::Internal(crate::error_kind(&other)),
        }
    }
}

impl From<ReportError> for ApiError {
    fn from(e: ReportError) -> ApiError {
        match &e {
            ReportError::BadPeriod(p, _) | ReportError::NotWholePeriod(p) => {
                ApiError::BadRequest(vec![Problem::new("period", p, e.to_string())])
            }
            ReportError::UnknownKind(k) => {
                ApiError::BadRequest(vec![Problem::new("kind", k, e.to_string())])
            }
            ReportError::UnknownService(_) => ApiError::NotFound,
            ReportError::Store(_) => ApiError::Internal("report"),
        }
    }
}

impl From<dcrs_store::StoreError> for ApiError {
    fn from(_: dcrs_store::StoreError) -> ApiError {
        ApiError::Internal("store")
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(_: sqlx::Error) -> ApiError {
        ApiError::Internal("database")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message, problems) = match self {
            ApiError::Unauthorised => (
                StatusCode::UNAUTHORIZED,
                "unauthorised",
                "Send a live access token in the header `Authorization: Bearer …`. This one is missing, unknown, expired or revoked.".to_string(),
                vec![],
            ),
            ApiError::Forbidden(why) => (StatusCode::FORBIDDEN, "forbidden", why, vec![]),
            ApiError::NotFound => (
                StatusCode::NOT_FOUND,
                "not_found",
                "There is nothing here, or nothing this token may see.".into(),
                vec![],
            ),
            ApiError::BadRequest(p) => (
                StatusCode::BAD_REQUEST,
                "bad_request",
                "The request could not be read; see the problems.".into(),
                p,
            ),
            ApiError::Conflict(why) => (StatusCode::CONFLICT, "conflict", why, vec![]),
            ApiError::Invalid(p) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                "Nothing was saved: the record breaks the dataset's rules; see the problems.".into(),
                p,
            ),
            ApiError::KeyReused => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "This Idempotency-Key was sent before with a different request. Nothing was saved: send a new key for each record written.".into(),
                vec![],
            ),
            ApiError::Internal(kind) => {
                tracing::error!(kind, "api request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Something went wrong on our side. Nothing was saved.".into(),
                    vec![],
                )
            }
        };
        let mut res = (
            status,
            axum::Json(json!({"error": code, "message": message, "problems": problems})),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

type ApiResult = Result<Response, ApiError>;

/// Path parameters; an address that cannot be read is "not found", in JSON.
pub(crate) struct P<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> FromRequestParts<S> for P<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| P(t))
            .map_err(|_| ApiError::NotFound)
    }
}

/// Query parameters in order; a query that cannot be read is a bad request, in JSON.
pub(crate) struct Q(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Q {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| Q(q))
            .map_err(|r| ApiError::BadRequest(vec![Problem::new("(query)", "", r.body_text())]))
    }
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

// ---------------------------------------------------------------------------------
// Who is asking.

/// The token of a request and the user it acts as.
pub(crate) struct Caller {
    pub user: User,
    pub token: Token,
}

impl Caller {
    /// Whether both the user and the token allow the action.
    fn may(&self, action: Action, service: Option<&ServiceScope>) -> bool {
        allowed(&self.user, action, service) && self.token.permits(action, service)
    }
}

async fn caller(app: &App, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let secret = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or(ApiError::Unauthorised)?;
    let token = tokens::find(app.db(), secret)
        .await?
        .ok_or(ApiError::Unauthorised)?;
    let now = auth::now();
    let user = users::by_id(app.db(), token.user_id)
        .await?
        .ok_or(ApiError::Unauthorised)?;
    if !token.live(now) || user.disabled {
        let reason = if token.revoked_at.is_some() {
            "revoked"
        } else if user.disabled {
            "account disabled"
        } else {
            "expired"
        };
        crate::audit(
            app,
            &user.username,
            "access.denied",
            None,
            None,
            json!({"token_id": token.token_id, "reason": reason}),
        )
        .await?;
        return Err(ApiError::Unauthorised);
    }
    tokens::used(app.db(), &token, now).await?;
    Ok(Caller { user, token })
}

/// The service of a request when the caller may take one of `actions` on it; otherwise
/// "not found" (audited), or "forbidden" when only the token's narrowing stands in the
/// way of a user who could.
async fn service_for(
    app: &App,
    caller: &Caller,
    service_ref: &str,
    actions: &[Action],
) -> Result<ServiceScope, ApiError> {
    let scope = if service_ref.chars().any(char::is_control) {
        None
    } else {
        crate::service_scope(app, service_ref).await?
    };
    if let Some(s) = &scope {
        if actions.iter().any(|a| caller.may(*a, Some(s))) {
            return Ok(s.clone());
        }
        if actions.iter().any(|a| allowed(&caller.user, *a, Some(s))) {
            return Err(ApiError::Forbidden(
                "This token does not allow that: it only reads, or is narrowed to other services."
                    .into(),
            ));
        }
    }
    crate::audit(
        app,
        &caller.user.username,
        "access.denied",
        None,
        None,
        json!({"action": format!("{:?}", actions[0]), "token_id": caller.token.token_id}),
    )
    .await?;
    Err(ApiError::NotFound)
}

/// What reading an entity's records needs (any one of them).
fn read_actions(e: Entity) -> &'static [Action] {
    match e {
        Entity::ServiceConfiguration => &[Action::ViewClients, Action::ViewReports],
        _ => &[Action::ViewClients],
    }
}

/// What changing an entity's records needs.
fn write_action(e: Entity) -> Action {
    match e {
        Entity::Organisation | Entity::Service => Action::ManageServices,
        Entity::ServiceConfiguration | Entity::Worker => Action::ManageStaff,
        _ => Action::EditClients,
    }
}

// ---------------------------------------------------------------------------------
// Records.

/// The collection name of an entity in paths: its file name without `.csv`.
pub fn collection(e: Entity) -> &'static str {
    e.file_name().trim_end_matches(".csv")
}

fn tenant_entity(name: &str) -> Result<Entity, ApiError> {
    Entity::ALL
        .into_iter()
        .find(|e| e.is_tenant() && collection(*e) == name)
        .ok_or(ApiError::NotFound)
}

/// Whether a text field holds a date (and so may be filtered by range).
pub fn is_date(name: &str) -> bool {
    name.ends_with("_on") || name == "date_of_birth" || name == "effective_from"
}

/// Whether listings may filter on a field: text and references, not the record's own
/// reference (read it instead) or its service (it is in the path).
pub fn filterable(kind: FieldKind) -> bool {
    matches!(kind, FieldKind::Text | FieldKind::Ref(_))
}

/// A stored record as JSON: numbers as numbers, blanks as null.
fn to_json(e: Entity, fields: &[(&'static str, String)]) -> Value {
    let mut m = Map::new();
    for (f, (name, text)) in e.fields().iter().zip(fields) {
        let v = if text.is_empty() {
            Value::Null
        } else {
            match f.kind {
                FieldKind::Int => text
                    .parse::<i64>()
                    .map(Value::from)
                    .unwrap_or_else(|_| number(text)),
                FieldKind::Real => number(text),
                _ => Value::String(text.clone()),
            }
        };
        m.insert(name.to_string(), v);
    }
    Value::Object(m)
}

fn number(text: &str) -> Value {
    text.parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

fn service_id(scope: &Option<ServiceScope>) -> Option<i64> {
    scope.as_ref().map(|s| s.service_id)
}

async fn list_tenant(
    State(app): State<App>,
    headers: HeaderMap,
    P((service, name)): P<(String, String)>,
    Q(q): Q,
) -> ApiResult {
    let e = tenant_entity(&name)?;
    list(State(app), headers, e, Some(service), Q(q)).await
}

async fn read_tenant(
    State(app): State<App>,
    headers: HeaderMap,
    P((service, name, reference)): P<(String, String, String)>,
) -> ApiResult {
    let e = tenant_entity(&name)?;
    read(State(app), headers, e, Some(service), reference).await
}

async fn create_tenant(
    State(app): State<App>,
    headers: HeaderMap,
    P((service, name)): P<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let e = tenant_entity(&name)?;
    write(State(app), headers, e, Some(service), None, body).await
}

async fn update_tenant(
    State(app): State<App>,
    headers: HeaderMap,
    P((service, name, reference)): P<(String, String, String)>,
    body: Bytes,
) -> ApiResult {
    let e = tenant_entity(&name)?;
    write(State(app), headers, e, Some(service), Some(reference), body).await
}

/// The service a tenant request is about, checked for `actions`; `None` for
/// organisations and services, which every token may read.
async fn scope_of(
    app: &App,
    caller: &Caller,
    e: Entity,
    service: Option<String>,
    actions: &[Action],
) -> Result<Option<ServiceScope>, ApiError> {
    match (e.is_tenant(), service) {
        (true, Some(s)) => Ok(Some(service_for(app, caller, &s, actions).await?)),
        _ => Ok(None),
    }
}

/// Audits a read of records that belong to a service (organisations and services are
/// not personal and are not audited).
async fn audit_read(
    app: &App,
    caller: &Caller,
    e: Entity,
    scope: &Option<ServiceScope>,
    action: &str,
    refs: Vec<String>,
) -> Result<(), ApiError> {
    if let Some(s) = scope {
        crate::audit(
            app,
            &caller.user.username,
            action,
            Some(s.service_id),
            (refs.len() == 1).then(|| refs[0].clone()),
            json!({"entity": collection(e), "records": refs, "token_id": caller.token.token_id}),
        )
        .await?;
    }
    Ok(())
}

async fn list(
    State(app): State<App>,
    headers: HeaderMap,
    e: Entity,
    service: Option<String>,
    Q(q): Q,
) -> ApiResult {
    let caller = caller(&app, &headers).await?;
    let scope = scope_of(&app, &caller, e, service, read_actions(e)).await?;
    let asked = read_listing(e, &q)?;
    let limit = asked.limit;
    let (conditions, after) = (&asked.conditions, asked.after.as_deref());
    let mut rows = app
        .db()
        .list_records(e, service_id(&scope), conditions, after, limit + 1)
        .await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let refs: Vec<String> = rows.iter().map(|r| r[0].1.clone()).collect();
    let next = if more { refs.last().cloned() } else { None };
    audit_read(&app, &caller, e, &scope, "view.records", refs).await?;
    let items: Vec<Value> = rows.iter().map(|r| to_json(e, r)).collect();
    Ok(axum::Json(json!({"items": items, "next_after": next})).into_response())
}

/// What a listing asks for: the filters, where to start and how many.
struct Listing {
    conditions: Vec<Condition>,
    after: Option<String>,
    limit: i64,
}

/// A listing's query read into filters, or every problem with it.
fn read_listing(e: Entity, q: &[(String, String)]) -> Result<Listing, ApiError> {
    let mut asked = Listing {
        conditions: Vec::new(),
        after: None,
        limit: DEFAULT_LIMIT,
    };
    let mut problems = Vec::new();
    for (k, v) in q {
        if v.chars().any(char::is_control) {
            let why = "contains a control character; no stored value has one";
            problems.push(Problem::new(k, &v.escape_debug().to_string(), why));
            continue;
        }
        match k.as_str() {
            "limit" => match v.parse::<i64>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => asked.limit = n,
                _ => {
                    let why = format!("must be a whole number from 1 to {MAX_LIMIT}");
                    problems.push(Problem::new("limit", v, why));
                }
            },
            "after" => asked.after = Some(v.clone()),
            _ => match filter(e, k, v) {
                Some(c) => asked.conditions.push(c),
                None => {
                    let why = format!(
                        "is not a filter of {}s; see the API description for the filters",
                        e.label()
                    );
                    problems.push(Problem::new(k, v, why));
                }
            },
        }
    }
    if problems.is_empty() {
        Ok(asked)
    } else {
        Err(ApiError::BadRequest(problems))
    }
}

/// A filter of a listing: a field equal to a value, or a date field from or to a day.
fn filter(e: Entity, key: &str, value: &str) -> Option<Condition> {
    let field = |name: &str| {
        e.fields()
            .iter()
            .find(|f| f.name == name && filterable(f.kind))
    };
    let date = |name: Option<&str>| name.and_then(field).filter(|f| is_date(f.name));
    if let Some(f) = field(key) {
        Some(Condition::Equals(f.name.into(), value.to_string()))
    } else if let Some(f) = date(key.strip_suffix("_from")) {
        Some(Condition::From(f.name.into(), value.to_string()))
    } else {
        date(key.strip_suffix("_to")).map(|f| Condition::To(f.name.into(), value.to_string()))
    }
}

/// One stored record, as file fields.
async fn stored(
    app: &App,
    e: Entity,
    scope: &Option<ServiceScope>,
    reference: &str,
) -> Result<Option<Vec<(&'static str, String)>>, ApiError> {
    // A reference with a control character cannot be stored, so it is not there (and
    // PostgreSQL refuses to compare text holding a NUL).
    if reference.chars().any(char::is_control) {
        return Ok(None);
    }
    let cond = [Condition::Equals(
        e.ref_field().to_string(),
        reference.to_string(),
    )];
    Ok(app
        .db()
        .list_records(e, service_id(scope), &cond, None, 1)
        .await?
        .into_iter()
        .next())
}

async fn read(
    State(app): State<App>,
    headers: HeaderMap,
    e: Entity,
    service: Option<String>,
    reference: String,
) -> ApiResult {
    let caller = caller(&app, &headers).await?;
    let scope = scope_of(&app, &caller, e, service, read_actions(e)).await?;
    let row = stored(&app, e, &scope, &reference)
        .await?
        .ok_or(ApiError::NotFound)?;
    audit_read(&app, &caller, e, &scope, "view.record", vec![reference]).await?;
    Ok(axum::Json(to_json(e, &row)).into_response())
}

/// Reads a request body into the record's fields as file text, or the problems.
fn fields_of(e: Entity, body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|err| {
        ApiError::BadRequest(vec![Problem::new(
            "(body)",
            "",
            format!("is not JSON: {err}"),
        )])
    })?;
    match value {
        Value::Object(m) => Ok(m),
        _ => Err(ApiError::BadRequest(vec![Problem::new(
            "(body)",
            "",
            format!("must be a JSON object with the fields of a {}", e.label()),
        )])),
    }
}

/// The text of one field as a file would hold it, or why the JSON value cannot be one.
fn field_text(kind: FieldKind, v: &Value) -> Result<String, &'static str> {
    match (kind, v) {
        (_, Value::Null) => Ok(String::new()),
        (FieldKind::Int, Value::Number(n)) => n
            .as_i64()
            .map(|i| i.to_string())
            .ok_or("must be a whole number"),
        (FieldKind::Real, Value::Number(n)) => Ok(n.to_string()),
        (FieldKind::Int | FieldKind::Real, _) => Err("must be a number or null"),
        (_, Value::String(s)) => Ok(s.clone()),
        _ => Err("must be text or null"),
    }
}

async fn write(
    State(app): State<App>,
    headers: HeaderMap,
    e: Entity,
    service: Option<String>,
    reference: Option<String>,
    body: Bytes,
) -> ApiResult {
    let caller = caller(&app, &headers).await?;
    let action = write_action(e);
    let scope = scope_of(&app, &caller, e, service, &[action]).await?;
    if !e.is_tenant() && !caller.may(action, None) {
        return Err(ApiError::Forbidden(
            "Only an admin's read-and-write token adds or changes organisations and services."
                .into(),
        ));
    }
    let updating = reference.is_some();
    let key = idempotency_key(&headers)?;
    let (texts, reference) = read_record(e, &body, reference, scope.as_ref())?;
    let location = record_url(e, scope.as_ref(), &reference).to_string();
    // A key's first use is kept with a digest of what was asked: the same request sent
    // again is answered as the first was, writing nothing; the key sent with another
    // request is refused.
    let asked = request_digest(updating, &location, &body);
    let once = key.map(|key| dcrs_exchange::OnceKey {
        key: format!("api:{key}"),
        answer: format!("{asked} {location}"),
    });
    let first = match &once {
        Some(k) => dcrs_exchange::answered_before(app.db(), &caller.user.username, &k.key)
            .await
            .map_err(|_| ApiError::Internal("store"))?,
        None => None,
    };
    let warnings: Vec<Problem> = match first {
        Some(first) => {
            let warnings = replayed(&first, &asked)?;
            // Answered again from what is stored: a read of the record.
            let refs = vec![reference.clone()];
            audit_read(&app, &caller, e, &scope, "view.record", refs).await?;
            warnings
        }
        None => {
            if updating != stored(&app, e, &scope, &reference).await?.is_some() {
                return Err(not_as_asked(e, updating, &reference));
            }
            let report =
                write_record(&app, &caller, e, texts, updating, &reference, once.as_ref()).await?;
            match report.already {
                // Sent twice at once: the other copy wrote it.
                Some(first) => replayed(&first, &asked)?,
                None => report
                    .warnings
                    .iter()
                    .map(|r| problem(r, &reference))
                    .collect(),
            }
        }
    };
    let row = stored(&app, e, &scope, &reference).await?;
    let row = row.ok_or(ApiError::NotFound)?;
    let body = json!({"record": to_json(e, &row), "warnings": warnings});
    if updating {
        return Ok(axum::Json(body).into_response());
    }
    Ok(created(body, &location))
}

/// A request's `Idempotency-Key` header, if it has one: 1 to 100 visible ASCII
/// characters (a quoted string's quotes aside).
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("").trim();
    let text = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    if (1..=100).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_graphic()) {
        return Ok(Some(text.to_string()));
    }
    Err(ApiError::BadRequest(vec![Problem::new(
        "Idempotency-Key",
        "",
        "must be 1 to 100 visible ASCII characters, new for each record written",
    )]))
}

/// What a request asked, as a digest: its method, the record's address and the body.
fn request_digest(updating: bool, location: &str, body: &[u8]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(if updating { "PUT " } else { "POST " });
    h.update(location.as_bytes());
    h.update([0]);
    h.update(body);
    crate::auth::hex(&h.finalize())
}

/// A repeat of a request already answered: no warnings again, or refused when the key
/// came with another request.
fn replayed(first: &str, asked: &str) -> Result<Vec<Problem>, ApiError> {
    match first.split_once(' ') {
        Some((digest, _)) if digest == asked => Ok(Vec::new()),
        _ => Err(ApiError::KeyReused),
    }
}

/// The answer to a PUT of a record that is not stored (404), or a POST of one that is
/// (409).
fn not_as_asked(e: Entity, updating: bool, reference: &str) -> ApiError {
    if updating {
        return ApiError::NotFound;
    }
    ApiError::Conflict(format!(
        "A {} with the reference {reference} exists already; change it with PUT to its address.",
        e.label()
    ))
}

/// 201 with the new record's address.
fn created(body: serde_json::Value, location: &str) -> Response {
    let mut res = (StatusCode::CREATED, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

/// A record sent as JSON, as the text of each field (in the entity's field order) and
/// its reference; its reference and service come from the address where it has them,
/// and must agree with the body where the body gives them too.
fn read_record(
    e: Entity,
    body: &Bytes,
    reference: Option<String>,
    scope: Option<&ServiceScope>,
) -> Result<(Vec<String>, String), ApiError> {
    let given = fields_of(e, body)?;
    let mut problems = Vec::new();
    let mut texts: Vec<String> = vec![String::new(); e.fields().len()];
    for (k, v) in &given {
        let Some(i) = e.fields().iter().position(|f| f.name == k) else {
            let why = format!("is not a field of a {}", e.label());
            problems.push(Problem::new(k, &v.to_string(), why));
            continue;
        };
        match field_text(e.fields()[i].kind, v) {
            Ok(t) => texts[i] = t,
            Err(why) => problems.push(Problem::new(k, &v.to_string(), why)),
        }
    }
    let own = e.ref_field();
    let mut pin = |name: &str, value: &str, texts: &mut Vec<String>| {
        let i = e
            .fields()
            .iter()
            .position(|f| f.name == name)
            .expect("field");
        if !texts[i].is_empty() && texts[i] != value {
            let why = format!("must be {value}, as in the address, or left out");
            problems.push(Problem::new(name, &texts[i], why));
        }
        texts[i] = value.to_string();
    };
    if let Some(r) = &reference {
        pin(own, r, &mut texts);
    }
    if let Some(s) = scope {
        pin("service_ref", &s.service_ref, &mut texts);
    }
    let reference = reference.unwrap_or_else(|| texts[0].trim().to_string());
    if reference.is_empty() {
        problems.push(Problem::new(own, "", "is required"));
    }
    if !problems.is_empty() {
        return Err(ApiError::Invalid(problems));
    }
    Ok((texts, reference))
}

/// Writes one record through the write path: its report, or the problems found.
async fn write_record(
    app: &App,
    caller: &Caller,
    e: Entity,
    texts: Vec<String>,
    updating: bool,
    reference: &str,
    once: Option<&dcrs_exchange::OnceKey>,
) -> Result<dcrs_exchange::ImportReport, ApiError> {
    let fields: dcrs_exchange::Fields = e.fields().iter().map(|f| f.name).zip(texts).collect();
    let options = dcrs_exchange::ImportOptions {
        dry_run: false,
        today: app.today(),
        rules: Default::default(),
        actor: caller.user.username.clone(),
        only_new: !updating,
    };
    let records = [(e, vec![fields])];
    let report = dcrs_exchange::write_records(app.db(), &records, &options, "application", once)
        .await
        .map_err(|err| match err {
            // Two creates of one reference at once: the database's unique key stops the
            // second, which is a conflict, not a failure.
            dcrs_exchange::ImportError::Store(dcrs_store::StoreError::Sql(
                sqlx::Error::Database(d),
            )) if d.is_unique_violation() => ApiError::Conflict(format!(
                "A {} with the reference {reference} was stored at the same moment.",
                e.label()
            )),
            dcrs_exchange::ImportError::Store(_) => ApiError::Internal("store"),
            _ => ApiError::Internal("import"),
        })?;
    if report.committed || report.already.is_some() {
        return Ok(report);
    }
    if report.rejections.is_empty() {
        return Err(ApiError::Internal("import"));
    }
    let problems = report
        .rejections
        .iter()
        .map(|r| problem(r, reference))
        .collect();
    Err(ApiError::Invalid(problems))
}

/// A problem with the record sent points into the body; one found in another record (a
/// rule across the client's records) names that record instead.
fn problem(r: &dcrs_exchange::Rejection, reference: &str) -> Problem {
    Problem {
        record: r.record.clone(),
        pointer: r
            .record
            .as_deref()
            .is_none_or(|rec| rec == reference)
            .then(|| format!("/{}", r.field)),
        field: r.field.clone(),
        value: r.value.clone(),
        reason: r.reason.clone(),
    }
}

/// A record's address in the API.
fn record_url(e: Entity, scope: Option<&ServiceScope>, reference: &str) -> crate::view::Url {
    use crate::view::Url;
    match scope {
        Some(s) => Url::path(&[
            "api",
            "v1",
            "services",
            s.service_ref.as_str(),
            collection(e),
            reference,
        ]),
        None => Url::path(&["api", "v1", collection(e), reference]),
    }
}

/// A client's records as one FHIR R4 Bundle (`application/fhir+json`).
async fn fhir_client(
    State(app): State<App>,
    headers: HeaderMap,
    P((service, client)): P<(String, String)>,
) -> ApiResult {
    let caller = caller(&app, &headers).await?;
    let scope = service_for(&app, &caller, &service, &[Action::ViewClients]).await?;
    if client.chars().any(char::is_control) {
        return Err(ApiError::NotFound);
    }
    let now = app.now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let bundle = dcrs_exchange::client_fhir(app.db(), &scope.service_ref, &client, &now)
        .await?
        .ok_or(ApiError::NotFound)?;
    audit_read(
        &app,
        &caller,
        Entity::Client,
        &Some(scope),
        "view.record",
        vec![client],
    )
    .await?;
    let mut res = axum::Json(bundle).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/fhir+json"),
    );
    Ok(res)
}

// ---------------------------------------------------------------------------------
// Reports, patterns and the token itself.

/// The services named in `services` (comma-separated), each one the caller may see
/// reports of, or all of those when none is named.
async fn chosen_services(
    app: &App,
    caller: &Caller,
    q: &[(String, String)],
) -> Result<Vec<ServiceScope>, ApiError> {
    let visible: Vec<ServiceScope> = reports::scope(app, &caller.user)
        .await?
        .into_iter()
        .map(|(s, _)| s)
        .filter(|s| caller.token.permits(Action::ViewReports, Some(s)))
        .collect();
    let wanted: Vec<&str> = q
        .iter()
        .filter(|(k, _)| k == "services")
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let chosen: Vec<ServiceScope> = if wanted.is_empty() {
        visible
    } else {
        let mut out = Vec::new();
        for w in wanted {
            out.push(
                visible
                    .iter()
                    .find(|s| s.service_ref == w)
                    .cloned()
                    .ok_or(ApiError::NotFound)?,
            );
        }
        out
    };
    if chosen.is_empty() {
        return Err(ApiError::NotFound);
    }
    Ok(chosen)
}

fn unknown_params(q: &[(String, String)], known: &[&str]) -> Result<(), ApiError> {
    let problems: Vec<Problem> = q
        .iter()
        .filter(|(k, _)| !known.contains(&k.as_str()))
        .map(|(k, v)| {
            Problem::new(
                k,
                v,
                format!("is not a parameter here; they are {}", known.join(", ")),
            )
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ApiError::BadRequest(problems))
    }
}

async fn report(
    State(app): State<App>,
    headers: HeaderMap,
    P(kind): P<String>,
    Q(q): Q,
) -> ApiResult {
    let caller = caller(&app, &headers).await?;
    unknown_params(&q, &["services", "period", "each_service"])?;
    let kind = dcrs_report::Kind::parse(&kind)?;
    let each = each_service(&q)?;
    let chosen = chosen_services(&app, &caller, &q).await?;
    let period_text = match q.iter().find(|(k, _)| k == "period") {
        Some((_, p)) if !p.trim().is_empty() => p.trim().to_string(),
        _ => {
            let ids: Vec<i64> = chosen.iter().map(|s| s.service_id).collect();
            reports::latest_year(&app, &ids).await?
        }
    };
    let period = dcrs_report::Period::parse(&period_text)?;
    let documents = reports::release(
        &app,
        &caller.user,
        Some(caller.token.token_id),
        kind,
        &chosen,
        period,
        each,
        "api",
    )
    .await?;
    Ok(axum::Json(json!({"documents": documents})).into_response())
}

/// The `each_service` parameter: false when left out.
fn each_service(q: &[(String, String)]) -> Result<bool, ApiError> {
    match q.iter().find(|(k, _)| k == "each_service") {
        None => Ok(false),
        Some((_, v)) if v == "false" => Ok(false),
        Some((_, v)) if v == "true" => Ok(true),
        Some((_, other)) => Err(ApiError::BadRequest(vec![Problem::new(
            "each_service",
            other,
            "must be true or false",
        )])),
    }
}

async fn patterns(State(app): State<App>, headers: HeaderMap, Q(q): Q) -> ApiResult {
    let caller = caller(&app, &headers).await?;
    unknown_params(&q, &["services"])?;
    if !matches!(caller.user.role, Role::Analyst | Role::ServiceManager) {
        return Err(ApiError::NotFound);
    }
    let chosen = chosen_services(&app, &caller, &q).await?;
    let document = reports::release_patterns(
        &app,
        &caller.user,
        Some(caller.token.token_id),
        &chosen,
        "api",
    )
    .await?;
    Ok(axum::Json(json!({"documents": [document]})).into_response())
}

fn rfc3339(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

async fn whoami(State(app): State<App>, headers: HeaderMap) -> ApiResult {
    let caller = caller(&app, &headers).await?;
    let t = &caller.token;
    Ok(axum::Json(json!({
        "username": caller.user.username,
        "role": caller.user.role.code(),
        "token": {
            "id": t.token_id,
            "name": t.name,
            "access": t.access.code(),
            "services": t.services,
            "expires_at": rfc3339(t.expires_at),
        },
    }))
    .into_response())
}

async fn document() -> Response {
    axum::Json(openapi::document()).into_response()
}
