//! The caseload (what needs doing first, drafts to finish, search) and one episode's
//! page (what has been recorded and what can be recorded next). Both are views of
//! identifiable data: each is audited with the clients it showed.

use crate::authz::{Action, ServiceScope, allowed};
use crate::extract::{OnService, Posted, ViewClients};
use crate::pages::{full_name, typed_date, uk_date, words};
use crate::routes::capture::{EpisodeInfo, Flow, Subject, episode, episode_actions, subject};
use crate::users::Role;
use crate::view::{Cell, ChangeLink, Csrf, Layout, Link, Markup, SummaryList, Table, Url};
use crate::{App, Ctx, WebError, html};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use dcrs_domain::Entity;
use dcrs_store::pages::{ClientHit, EpisodeEvent, EventKind, Whose};

/// A dated line of an episode's record: the date, the record in words, and where it is
/// changed (for those who may).
type Line = (String, String, Option<Url>);

#[derive(Template)]
#[template(path = "episode.html")]
struct EpisodePage<'a> {
    layout: Layout,
    summary: SummaryList<'a>,
    actions: Vec<(Url, &'static str)>,
    before_goals: Vec<(&'static str, Vec<Line>)>,
    /// When each plan was agreed, changed or removed from its own form.
    plans: Vec<Line>,
    goals: Option<Table<'a>>,
    /// The copy of the plan to print for the client, once there are goals.
    plan_copy: Option<Url>,
    after_goals: Vec<(&'static str, Vec<Line>)>,
    back: Url,
}

#[derive(Template)]
#[template(path = "plan_copy.html")]
struct PlanCopy<'a> {
    layout: Layout,
    client: &'a str,
    worker: &'a str,
    first_contact: String,
    goals: Vec<GoalCopy>,
}

/// A goal as the client's copy says it.
struct GoalCopy {
    area: String,
    what: String,
    by: Option<String>,
    status: String,
}

/// The client's copy of their plan: their goals in words, to print and hand over. The
/// view is audited like the episode's page.
pub(crate) async fn plan_copy(
    State(app): State<App>,
    OnService {
        ctx, service: s, ..
    }: OnService<ViewClients>,
    Path((_, ep)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let e = viewed_episode(&app, &ctx, s.service_id, &ep, Some("plan")).await?;
    let goals = app.db().episode_goals(s.service_id, &ep).await?;
    let goals = goals
        .into_iter()
        .map(|g| GoalCopy {
            area: words(Entity::Goal, "domain", &g.domain),
            what: g.description,
            by: g.target_on.as_deref().map(uk_date),
            status: words(Entity::Goal, "status", &g.status),
        })
        .collect();
    let episode_page = service_url(&s.service_ref, &["episodes", &e.episode_ref]);
    let page = PlanCopy {
        layout: Layout::signed_in("Your plan", &ctx.user, &ctx.session.csrf_token)
            .back(&episode_page, "Back to the episode"),
        client: &e.client_name,
        worker: &e.lead_worker_name,
        first_contact: uk_date(&e.first_contact_on),
        goals,
    };
    Ok(html(Markup::render(&page).into_string()))
}

/// An episode of the service opened to be shown (or a copy of part of it, named), with
/// the view audited: the client and the episode are the records shown.
async fn viewed_episode(
    app: &App,
    ctx: &Ctx,
    service_id: i64,
    episode_ref: &str,
    copy: Option<&str>,
) -> Result<EpisodeInfo, WebError> {
    let e = episode(app, service_id, episode_ref)
        .await?
        .ok_or(WebError::NotFound)?;
    let mut detail = serde_json::json!({"records": [e.client_ref.clone(), e.episode_ref.clone()]});
    if let Some(copy) = copy {
        detail["copy"] = copy.into();
    }
    let (user, sid, record) = (
        &ctx.user.username,
        Some(service_id),
        Some(e.episode_ref.clone()),
    );
    crate::audit(app, user, "view.episode", sid, record, detail).await?;
    Ok(e)
}

/// Each record in words: the catalogue's words for its codes, the date as people write
/// it, and a BMI where one was worked out.
fn lines(
    entity: Entity,
    fields: &[&str],
    rows: &[EpisodeEvent],
    change: impl Fn(&EpisodeEvent) -> Option<Url>,
) -> Vec<Line> {
    rows.iter()
        .map(|r| {
            let mut parts: Vec<String> = fields
                .iter()
                .zip(&r.codes)
                .filter_map(|(f, c)| c.as_deref().map(|c| words(entity, f, c)))
                .collect();
            if let Some(bmi) = r.number {
                parts.push(format!("BMI {bmi:.1}"));
            }
            (uk_date(&r.on), parts.join(", "), change(r))
        })
        .collect()
}

/// Where a recorded item of an episode is changed: its flow's form with the record's
/// reference after it. An assessment's flow is its occasion.
fn change_url(service_ref: &str, episode_ref: &str, flow: Flow, reference: &str) -> Url {
    Url::path(&[
        "services",
        service_ref,
        "episodes",
        episode_ref,
        flow.code(),
        reference,
    ])
}

/// One episode: what has been recorded and what can be recorded next.
pub(crate) async fn episode_page(
    State(app): State<App>,
    OnService {
        ctx, service: s, ..
    }: OnService<ViewClients>,
    Path((_, ep)): Path<(String, String)>,
    notice: Notice,
) -> Result<Response, WebError> {
    let e = viewed_episode(&app, &ctx, s.service_id, &ep, None).await?;
    let db = app.db();
    let events = |kind| db.episode_events(s.service_id, &ep, kind);
    let recorded = Recorded {
        assessments: events(EventKind::Assessment).await?,
        plans: events(EventKind::Plan).await?,
        sessions: events(EventKind::Session).await?,
        onward: events(EventKind::Onward).await?,
        wider: events(EventKind::WiderIssue).await?,
        goals: db.episode_goals(s.service_id, &ep).await?,
    };
    let page = episode_html(&ctx, &s, &e, recorded, notice.0);
    Ok(notice.shown(&app, html(page.into_string())))
}

/// The cookie that carries what a form just saved to the page it leads to, for one
/// look: the flow's code, nothing about the record.
const NOTICE_COOKIE: &str = "dcrs_notice";

/// A response that goes on to show "Session saved" (or the like) once.
pub(crate) fn with_notice(app: &App, res: Response, flow: Flow) -> Response {
    notice_cookie(app, res, flow.code(), 120)
}

/// A response that goes on to show "Session removed as entered in error" (or the like)
/// once.
pub(crate) fn with_removed_notice(app: &App, res: Response, flow: Flow) -> Response {
    notice_cookie(app, res, &format!("{REMOVED}{}", flow.code()), 120)
}

/// The response with the notice cookie set to `value` for `seconds` (0 clears it).
fn notice_cookie(app: &App, mut res: Response, value: &str, seconds: i64) -> Response {
    let cookie = crate::set_cookie(app, NOTICE_COOKIE, value, Some(seconds));
    if let Ok(v) = axum::http::HeaderValue::from_str(&cookie) {
        res.headers_mut().append(axum::http::header::SET_COOKIE, v);
    }
    res
}

/// A response that goes on to show "This session was already saved: nothing was saved
/// twice" (or the like) once: a form sent again after its first save.
pub(crate) fn with_already_notice(app: &App, res: Response, flow: Flow) -> Response {
    notice_cookie(app, res, &format!("{ALREADY}{}", flow.code()), 120)
}

/// What the notice cookie's value starts with after a removal.
const REMOVED: &str = "removed.";

/// What the notice cookie's value starts with after a repeat of a saved form.
const ALREADY: &str = "already.";

/// What a form just saved, if this request follows its save: the words of the
/// notification ("Session saved").
pub(crate) struct Notice(pub Option<&'static str>);

impl axum::extract::FromRequestParts<App> for Notice {
    type Rejection = WebError;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &App,
    ) -> Result<Self, WebError> {
        let code = crate::cookie(&parts.headers, NOTICE_COOKIE).unwrap_or_default();
        Ok(Notice(
            match (code.strip_prefix(REMOVED), code.strip_prefix(ALREADY)) {
                (Some(flow), _) => Flow::parse(flow).map(Flow::removed),
                (_, Some(flow)) => Flow::parse(flow).map(Flow::already),
                _ => Flow::parse(&code).map(Flow::saved),
            },
        ))
    }
}

impl Notice {
    /// The page, the notification cleared once shown.
    pub(crate) fn shown(&self, app: &App, res: Response) -> Response {
        match self.0 {
            Some(_) => notice_cookie(app, res, "", 0),
            None => res,
        }
    }
}

/// What has been recorded in an episode, as the store reads it.
struct Recorded {
    assessments: Vec<EpisodeEvent>,
    plans: Vec<EpisodeEvent>,
    sessions: Vec<EpisodeEvent>,
    onward: Vec<EpisodeEvent>,
    wider: Vec<EpisodeEvent>,
    goals: Vec<dcrs_store::pages::GoalRow>,
}

fn episode_html(
    ctx: &Ctx,
    scope: &ServiceScope,
    e: &EpisodeInfo,
    r: Recorded,
    saved: Option<&str>,
) -> Markup {
    let service_ref = scope.service_ref.as_str();
    let may_change = allowed(&ctx.user, Action::EditClients, Some(scope));
    let change_goal = |g: &dcrs_store::pages::GoalRow| {
        may_change.then(|| change_url(service_ref, &e.episode_ref, Flow::Goal, &g.goal_ref))
    };
    let goal_rows = goal_rows(r.goals, change_goal);
    let headings: &[&str] = match may_change {
        true => &["Goal", "Area", "By", "Status", "Change"],
        false => &["Goal", "Area", "By", "Status"],
    };
    let title = match e.client_name.is_empty() {
        true => format!("Episode {}", e.episode_ref),
        false => format!(
            "{}: support from {}",
            e.client_name,
            uk_date(&e.first_contact_on)
        ),
    };
    let session_fields = ["purpose", "mode", "attended"];
    let changeable = |flow: Flow, x: &EpisodeEvent| {
        may_change.then(|| change_url(service_ref, &e.episode_ref, flow, &x.reference))
    };
    let onward_fields = ["action", "destination", "outcome"];
    let mut layout = Layout::signed_in(title, &ctx.user, &ctx.session.csrf_token).back(
        &service_url(service_ref, &["caseload"]),
        "Back to the caseload",
    );
    if let Some(text) = saved {
        layout = layout.notice(text);
    }
    Markup::render(&EpisodePage {
        layout,
        summary: episode_summary(e),
        actions: episode_actions(service_ref, &e.episode_ref, e.closed_on.is_none()),
        before_goals: vec![(
            "Assessments",
            lines(Entity::Assessment, &["occasion"], &r.assessments, |a| {
                let occasion = a.codes.first().cloned().flatten().unwrap_or_default();
                changeable(Flow::parse(&occasion.replace('_', "-"))?, a)
            }),
        )],
        plans: lines(Entity::Plan, &[], &r.plans, |x| {
            changeable(Flow::PlanAgreed, x)
        }),
        plan_copy: (!goal_rows.is_empty())
            .then(|| service_url(service_ref, &["episodes", &e.episode_ref, "plan-copy"])),
        goals: (!goal_rows.is_empty()).then_some(Table {
            caption: "Goals",
            headings,
            rows: goal_rows,
        }),
        after_goals: vec![
            (
                "Sessions",
                lines(Entity::Session, &session_fields, &r.sessions, |x| {
                    changeable(Flow::Session, x)
                }),
            ),
            (
                "Signposting and onward referrals",
                lines(Entity::OnwardReferral, &onward_fields, &r.onward, |x| {
                    changeable(Flow::Onward, x)
                }),
            ),
            (
                "Wider issues",
                lines(Entity::WiderIssue, &["issue"], &r.wider, |x| {
                    changeable(Flow::WiderIssue, x)
                }),
            ),
        ],
        back: Url::path(&["services", service_ref, "clients", &e.client_ref]),
    })
}

/// An episode's goals: what, the area of life, by when and how far achieved, and where
/// each is changed (for those who may).
fn goal_rows(
    goals: Vec<dcrs_store::pages::GoalRow>,
    change: impl Fn(&dcrs_store::pages::GoalRow) -> Option<Url>,
) -> Vec<Vec<Cell>> {
    goals
        .into_iter()
        .map(|g| {
            let link = change(&g).map(|href| {
                let what = format!("the goal {}", g.description);
                Cell::Markup(Markup::render(&ChangeLink {
                    href: &href,
                    what: &what,
                }))
            });
            let mut row = vec![
                Cell::Text(g.description),
                Cell::Text(words(Entity::Goal, "domain", &g.domain)),
                Cell::Text(g.target_on.as_deref().map(uk_date).unwrap_or_default()),
                Cell::Text(words(Entity::Goal, "status", &g.status)),
            ];
            row.extend(link);
            row
        })
        .collect()
}

/// Who the episode is for, what support, since when, led by whom, and whether it is open.
fn episode_summary(e: &EpisodeInfo) -> SummaryList<'static> {
    let status = match (&e.closed_on, &e.exit_reason) {
        (Some(d), r) => {
            let why = r
                .as_deref()
                .map(|r| words(Entity::Episode, "exit_reason", r));
            format!("Closed on {} ({})", uk_date(d), why.unwrap_or_default())
        }
        _ => "Open".into(),
    };
    let kind = words(Entity::Episode, "kind", &e.kind);
    SummaryList {
        rows: vec![
            ("Client", format!("{} ({})", e.client_name, e.client_ref)),
            ("Support", format!("{kind} (episode {})", e.episode_ref)),
            (
                "Main reason",
                words(Entity::Episode, "primary_issue", &e.primary_issue),
            ),
            ("First contact", uk_date(&e.first_contact_on)),
            ("Lead health trainer", e.lead_worker_name.clone()),
            ("Status", status),
        ],
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct CaseloadQuery {
    q: Option<String>,
    saved: Option<String>,
}

/// The caseload as a worklist: what needs doing first, then search.
pub(crate) async fn caseload(
    State(app): State<App>,
    on: OnService<ViewClients>,
    Query(q): Query<CaseloadQuery>,
) -> Result<Response, WebError> {
    caseload_page(app, on, q).await
}

#[derive(serde::Deserialize)]
pub(crate) struct SearchForm {
    #[serde(default)]
    q: String,
}

/// A search of the caseload: sent as a form post, so names and dates of birth stay out
/// of addresses and the logs of anything in between.
pub(crate) async fn caseload_search(
    State(app): State<App>,
    on: OnService<ViewClients>,
    Posted { form, .. }: Posted<SearchForm>,
) -> Result<Response, WebError> {
    let q = CaseloadQuery {
        q: Some(form.q),
        saved: None,
    };
    caseload_page(app, on, q).await
}

/// A draft as the caseload lists it: "Form: Client, saved 7 December 2026 at 14:05".
struct DraftItem {
    href: Url,
    form: &'static str,
    whom: String,
    saved: String,
}

#[derive(Template)]
#[template(path = "caseload.html")]
struct CaseloadPage<'a> {
    layout: Layout,
    saved_draft: bool,
    search: Url,
    csrf: Csrf<'a>,
    query: String,
    found: Option<Table<'a>>,
    not_found: Option<String>,
    register: Url,
    drafts: Vec<DraftItem>,
    work: Option<Table<'a>>,
}

/// What is due on an open episode, in words; empty when nothing is.
fn due(r: &dcrs_store::pages::CaseRow, today: chrono::NaiveDate) -> Vec<String> {
    let days = |d: Option<&str>| {
        d.and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            .map(|d| (today - d).num_days())
    };
    let mut due = Vec::new();
    let since = days(r.last_attended_on.as_deref()).or_else(|| days(Some(&r.first_contact_on)));
    if let Some(d) = since.filter(|d| *d > 30) {
        due.push(format!("no session for {d} days"));
    }
    // A plan agreed 12 weeks ago with no review session since.
    let full = r.kind == "full";
    if full && r.review_sessions == 0 && days(r.plan_agreed_on.as_deref()).is_some_and(|d| d > 84) {
        due.push("review due".to_string());
    }
    if days(r.earliest_target_on.as_deref()).is_some_and(|d| d > 0) {
        due.push("a goal is past its target date".to_string());
    }
    if r.kind == "brief" {
        due.push("open brief episode: close it".to_string());
    }
    if full && r.plan_agreed_on.is_none() {
        due.push("no plan yet".to_string());
    }
    due
}

/// The drafts of the user in the service, each named by its form and its client (the
/// client counted as shown).
async fn named_drafts(
    app: &App,
    ctx: &Ctx,
    service_id: i64,
    shown: &mut Vec<String>,
) -> Result<Vec<DraftItem>, WebError> {
    let mut out = Vec::new();
    for d in app.db().drafts(ctx.user.user_id, service_id).await? {
        let flow = Flow::parse(&d.flow);
        let whom = match flow {
            Some(f) => subject(app, service_id, f, &d.subject_ref).await.ok(),
            None => None,
        };
        let whom = match whom {
            Some(Subject::New) => "a new client".to_string(),
            Some(Subject::Client(r, name)) => {
                shown.push(r);
                name
            }
            Some(Subject::Episode(e)) => {
                shown.push(e.client_ref.clone());
                e.client_name.clone()
            }
            None => d.subject_ref.clone(),
        };
        let saved = chrono::DateTime::parse_from_rfc3339(&d.updated_at).map_or_else(
            |_| d.updated_at.clone(),
            |t| {
                let uk = dcrs_domain::types::uk_time(t.with_timezone(&chrono::Utc));
                uk.format("%-d %B %Y at %H:%M").to_string()
            },
        );
        out.push(DraftItem {
            href: Url::path(&["drafts", d.draft_id.to_string().as_str()]),
            form: flow.map_or("Form", |f| f.title()),
            whom,
            saved,
        });
    }
    Ok(out)
}

async fn caseload_page(
    app: App,
    OnService {
        ctx, service: s, ..
    }: OnService<ViewClients>,
    q: CaseloadQuery,
) -> Result<Response, WebError> {
    let today = app.today();
    let worker = ctx.user.worker_ref.clone().unwrap_or_default();
    let whose = match ctx.user.role {
        Role::HealthTrainer => Whose::Worker(&worker),
        _ => Whose::Service,
    };
    let db = app.db();
    let open = db.caseload(s.service_id, whose).await?;
    let (from, to) = (
        today - chrono::Months::new(6),
        today - chrono::Months::new(3),
    );
    let follow = db
        .follow_ups_due(s.service_id, whose, &from.to_string(), &to.to_string())
        .await?;
    let mut shown = Vec::new();
    let work = worklist(&s.service_ref, open, follow, today, &mut shown);
    let drafts = named_drafts(&app, &ctx, s.service_id, &mut shown).await?;
    // Search by name, reference or date of birth.
    let query = q.q.clone().unwrap_or_default().trim().to_string();
    let hits = match query.is_empty() {
        true => Vec::new(),
        false => {
            let asked = typed_date(&query).map_or(query.clone(), |d| d.to_string());
            db.find_clients(s.service_id, &asked).await?
        }
    };
    shown.extend(hits.iter().map(|h| h.client_ref.clone()));
    let detail = serde_json::json!({"records": shown});
    let (user, sid) = (&ctx.user.username, Some(s.service_id));
    crate::audit(&app, user, "view.caseload", sid, None, detail).await?;
    let page = CaseloadView {
        query,
        found: found_rows(&s.service_ref, hits),
        drafts,
        work,
        saved_draft: q.saved.as_deref() == Some("draft"),
    };
    let page = caseload_html(&ctx, &s.service_ref, page);
    Ok(html(page.into_string()))
}

/// The clients a search found: name (a link to the client), reference, date of birth.
fn found_rows(service_ref: &str, hits: Vec<ClientHit>) -> Vec<Vec<Cell>> {
    hits.into_iter()
        .map(|h| {
            let href = service_url(service_ref, &["clients", &h.client_ref]);
            let name = full_name(&h.given_name, &h.family_name);
            let dob = Cell::Text(uk_date(&h.date_of_birth));
            vec![
                Cell::Markup(Link::markup(&href, &name)),
                Cell::Text(h.client_ref),
                dob,
            ]
        })
        .collect()
}

fn service_url(service_ref: &str, tail: &[&str]) -> Url {
    let mut parts = vec!["services", service_ref];
    parts.extend_from_slice(tail);
    Url::path(&parts)
}

/// The work of a caseload: each open episode with what is due on it, then the
/// follow-ups due; the clients counted as shown.
fn worklist(
    service_ref: &str,
    open: Vec<dcrs_store::pages::CaseRow>,
    follow: Vec<dcrs_store::pages::FollowUpRow>,
    today: chrono::NaiveDate,
    shown: &mut Vec<String>,
) -> Vec<Vec<Cell>> {
    let mut work = Vec::new();
    let mut row = |href: Url, name: String, client_ref: String, due: String| {
        shown.push(client_ref.clone());
        work.push(vec![
            Cell::Markup(Link::markup(&href, &name)),
            Cell::Text(client_ref),
            Cell::Text(due),
        ]);
    };
    for r in open {
        let due = due(&r, today);
        let due = if due.is_empty() {
            "nothing due".into()
        } else {
            due.join("; ")
        };
        let href = service_url(service_ref, &["episodes", &r.episode_ref]);
        row(
            href,
            full_name(&r.given_name, &r.family_name),
            r.client_ref,
            due,
        );
    }
    // Full episodes closed 3 to 6 months ago with no follow-up yet.
    for r in follow {
        let due = format!("follow-up due (closed {})", uk_date(&r.closed_on));
        let href = service_url(service_ref, &["episodes", &r.episode_ref, "follow-up"]);
        row(
            href,
            full_name(&r.given_name, &r.family_name),
            r.client_ref,
            due,
        );
    }
    work
}

/// What a caseload page shows, read and counted.
struct CaseloadView {
    query: String,
    found: Vec<Vec<Cell>>,
    drafts: Vec<DraftItem>,
    work: Vec<Vec<Cell>>,
    saved_draft: bool,
}

fn caseload_html(ctx: &Ctx, service_ref: &str, v: CaseloadView) -> Markup {
    let token = &ctx.session.csrf_token;
    let title = if ctx.user.role == Role::HealthTrainer {
        "My caseload"
    } else {
        "Caseload"
    };
    Markup::render(&CaseloadPage {
        layout: Layout::signed_in(title, &ctx.user, token),
        saved_draft: v.saved_draft,
        search: service_url(service_ref, &["caseload"]),
        csrf: Csrf { token },
        not_found: (!v.query.is_empty() && v.found.is_empty()).then(|| v.query.clone()),
        found: (!v.found.is_empty()).then_some(Table {
            caption: "Clients found",
            headings: &["Name", "Client", "Date of birth"],
            rows: v.found,
        }),
        query: v.query,
        register: service_url(service_ref, &["clients", "new"]),
        drafts: v.drafts,
        work: (!v.work.is_empty()).then_some(Table {
            caption: "To do",
            headings: &["Client", "Reference", "Due"],
            rows: v.work,
        }),
    })
}
