//! The manager's dashboard: this quarter by the calendar against the latest complete
//! one, each figure with its trend over eight quarters, the same figures per health
//! trainer, and from each count the list of the records it counted.

use crate::extract::{OnService, ViewAudit};
use crate::pages::{full_name, uk_date};
use crate::view::{Cell, Layout, Link, Markup, Pagination, Table, Url};
use crate::{App, Ctx, ServiceScope, WebError, html};
use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use dcrs_domain::types::Quarter;
use dcrs_report::trainers::TrainerFigures;
use dcrs_report::{Period, Report};
use dcrs_store::pages::Behind;
use std::sync::Arc;

/// How many quarters a figure's trend shows, this one included.
const TREND_QUARTERS: usize = 8;

/// How long the trend's earlier quarters (those before the latest complete one) are
/// kept once counted, when dashboards are kept at all: records of quarters past change
/// rarely, and counting six more quarters on each recount would cost three times the
/// two that change.
const TREND_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// A service's dashboard figures as counted at one moment.
pub(crate) struct Counted {
    at: chrono::DateTime<chrono::Utc>,
    /// The day of the service's latest record, if it has any.
    last_record: Option<chrono::NaiveDate>,
    /// This quarter first, then each before it: [`TREND_QUARTERS`] of them.
    quarters: Vec<Quarter>,
    /// The figures of this quarter and the latest complete one.
    docs: Vec<Report>,
    /// The figures of the quarters before those, when counted.
    trend: Option<Arc<Trend>>,
    /// Per health trainer: this quarter's and the latest complete one's.
    trainers: [Vec<TrainerFigures>; 2],
    /// The page's content as first shown: the same for every manager of the service
    /// until the figures are counted again, so it is written once.
    content: std::sync::OnceLock<Markup>,
    /// The retention period: its years, the clients past it today, and those whose
    /// period ends by the end of next quarter (that day too).
    retention: (u32, usize, usize, chrono::NaiveDate),
}

impl Counted {
    /// The figures of the `i`th quarter back from this one, when counted.
    fn doc(&self, i: usize) -> Option<&Report> {
        match i {
            0 | 1 => self.docs.get(i),
            _ => self.trend.as_ref()?.docs.get(i - 2),
        }
    }
}

/// A dashboard's earlier quarters as counted at one moment.
pub(crate) struct Trend {
    at: chrono::DateTime<chrono::Utc>,
    quarters: Vec<Quarter>,
    docs: Vec<Report>,
}

/// A service's trend: the latest counted, and whether a count is under way.
#[derive(Default)]
pub(crate) struct TrendSlot {
    trend: Option<Arc<Trend>>,
    counting: bool,
}

/// The dashboard's figures: counted afresh, or as counted less than
/// `Settings::dashboard_max_age` ago. One count at a time per service: a request that
/// finds one under way waits for it and shows its figures. Where dashboards are kept,
/// the trend's earlier quarters are counted in the background (the page shows them from
/// the next count on) and kept for [`TREND_MAX_AGE`]; otherwise with the rest.
async fn dashboard_figures(app: &App, s: &ServiceScope) -> Result<Arc<Counted>, WebError> {
    let max_age = app.0.settings.dashboard_max_age;
    let kept = |now: chrono::DateTime<chrono::Utc>| {
        let kept = app.0.dashboards.lock().expect("dashboards");
        kept.get(&s.service_id)
            .filter(|c| younger(now, c.at, max_age))
            .cloned()
    };
    if !max_age.is_zero()
        && let Some(c) = kept(app.now())
    {
        return Ok(c);
    }
    let turn = app
        .0
        .dashboard_turns
        .lock()
        .expect("dashboard turns")
        .entry(s.service_id)
        .or_default()
        .clone();
    let _turn = turn.lock().await;
    let now = app.now();
    if !max_age.is_zero()
        && let Some(c) = kept(now)
    {
        return Ok(c);
    }
    // This quarter by the calendar, and the ones before it.
    let last = app.db().latest_activity_on(s.service_id).await?;
    let last_record = last.and_then(|d| chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok());
    let mut quarters = vec![Quarter::containing(app.today())];
    while quarters.len() < TREND_QUARTERS {
        let earlier = quarters[quarters.len() - 1].first_day() - chrono::Days::new(1);
        quarters.push(Quarter::containing(earlier));
    }
    let periods: Vec<Period> = quarters.iter().map(|q| Period::quarter(*q)).collect();
    let db = app.db();
    let docs = dcrs_report::dashboard(db, &s.service_ref, &periods[..2], false, now).await?;
    let per_trainer = dcrs_report::trainers::per_trainer;
    let trainers = [
        per_trainer(db, s.service_id, &periods[0]).await?,
        per_trainer(db, s.service_id, &periods[1]).await?,
    ];
    // What the retention period removes: now, and by the end of next quarter.
    let next_end = Quarter::containing(quarters[0].last_day() + chrono::Days::new(1)).last_day();
    let (years, by_next) = db.retention_due(s.service_id, next_end).await?;
    let today = app.today();
    let due_now = by_next.iter().filter(|(_, _, ends)| *ends <= today).count();
    let retention = (years, due_now, by_next.len() - due_now, next_end);
    let trend = match max_age.is_zero() {
        true => {
            let earlier = dcrs_report::dashboard(db, &s.service_ref, &periods[2..], false, now);
            Some(Arc::new(Trend {
                at: now,
                quarters: quarters[2..].to_vec(),
                docs: earlier.await?,
            }))
        }
        false => trend_of(app, s, &quarters[2..], now),
    };
    let counted = Arc::new(Counted {
        at: now,
        last_record,
        quarters,
        docs,
        trend,
        trainers,
        content: std::sync::OnceLock::new(),
        retention,
    });
    if !max_age.is_zero() {
        app.0
            .dashboards
            .lock()
            .expect("dashboards")
            .insert(s.service_id, counted.clone());
    }
    Ok(counted)
}

/// Whether `at` is less than `than` before `now`.
fn younger(
    now: chrono::DateTime<chrono::Utc>,
    at: chrono::DateTime<chrono::Utc>,
    than: std::time::Duration,
) -> bool {
    (now - at).to_std().is_ok_and(|age| age < than)
}

/// The service's trend for the quarters `earlier`, as kept; when it is missing, of other
/// quarters or older than [`TREND_MAX_AGE`], a count of it is started in the background
/// (one at a time per service) for the dashboard's next count.
fn trend_of(
    app: &App,
    s: &ServiceScope,
    earlier: &[Quarter],
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Arc<Trend>> {
    let mut trends = app.0.trends.lock().expect("trends");
    let slot = trends.entry(s.service_id).or_default();
    let same = slot.trend.clone().filter(|t| t.quarters == earlier);
    if same
        .as_ref()
        .is_some_and(|t| younger(now, t.at, TREND_MAX_AGE))
        || slot.counting
    {
        return same;
    }
    slot.counting = true;
    let (app, service_id, service_ref) = (app.clone(), s.service_id, s.service_ref.clone());
    let quarters = earlier.to_vec();
    tokio::spawn(async move {
        let periods: Vec<Period> = quarters.iter().map(|q| Period::quarter(*q)).collect();
        let counted = dcrs_report::dashboard(app.db(), &service_ref, &periods, false, now).await;
        let mut trends = app.0.trends.lock().expect("trends");
        let slot = trends.entry(service_id).or_default();
        slot.counting = false;
        // A failed count leaves the last trend; the next dashboard count tries again.
        if let Ok(docs) = counted {
            slot.trend = Some(Arc::new(Trend {
                at: now,
                quarters,
                docs,
            }));
        }
    });
    same
}

/// The records behind a dashboard figure, by its label in
/// [`dcrs_report::DASHBOARD_FIGURES`]; `None` for shares and rates.
fn behind(label: &str) -> Option<Behind> {
    Some(match label {
        "Referrals received" => Behind::Referrals,
        "New clients" => Behind::NewClients,
        "Episodes opened" => Behind::Opened,
        "Sessions attended" => Behind::Attended,
        "Full episodes closed" => Behind::ClosedFull,
        "Open caseload at the end" => Behind::OpenAtEnd,
        "Open episodes with no session in 90 days" => Behind::Idle,
        _ => return None,
    })
}

/// Each list of records behind a count: its name in addresses, its heading, and what
/// its day column holds.
const BEHIND: [(Behind, &str, &str, &str); 8] = [
    (
        Behind::Referrals,
        "referrals",
        "Referrals received",
        "Received",
    ),
    (
        Behind::NewClients,
        "new-clients",
        "New clients",
        "First contact",
    ),
    (
        Behind::Opened,
        "episodes-opened",
        "Episodes opened",
        "First contact",
    ),
    (
        Behind::Attended,
        "sessions-attended",
        "Sessions attended",
        "Session",
    ),
    (
        Behind::DidNotAttend,
        "sessions-not-attended",
        "Sessions not attended",
        "Session",
    ),
    (
        Behind::ClosedFull,
        "full-episodes-closed",
        "Full episodes closed",
        "Closed",
    ),
    (
        Behind::OpenAtEnd,
        "open-episodes",
        "Episodes open at the end of the quarter",
        "First contact",
    ),
    (
        Behind::Idle,
        "open-no-session-90-days",
        "Open episodes with no session in the 90 days before the quarter's end",
        "First contact",
    ),
];

fn behind_named(name: &str) -> Option<(Behind, &'static str, &'static str)> {
    BEHIND
        .iter()
        .find(|b| b.1 == name)
        .map(|&(b, _, heading, day)| (b, heading, day))
}

/// The address of the records behind `b` in quarter `q`, of one worker's if given.
fn records_url(s: &ServiceScope, b: Behind, q: Quarter, worker: Option<&str>) -> Url {
    let name = BEHIND
        .iter()
        .find(|x| x.0 == b)
        .expect("every list is named")
        .1;
    let url = Url::path(&["services", s.service_ref.as_str(), "dashboard", "records"])
        .with("figure", name)
        .with("period", &q.to_string().replace(' ', ""));
    match worker {
        Some(w) => url.with("worker", w),
        None => url,
    }
}

#[derive(Template)]
#[template(path = "reports/dashboard.html")]
struct Dashboard<'a> {
    layout: Layout,
    content: &'a Markup,
}

/// What a dashboard shows under its heading.
#[derive(Template)]
#[template(path = "reports/dashboard_content.html")]
struct DashboardContent<'a> {
    this: String,
    before: String,
    /// Where the service's records end, when that is before the latest complete
    /// quarter: the day, and the pack of the quarter it falls in.
    records_end: Option<(String, Url)>,
    /// Whether the service has no records at all.
    no_records: bool,
    counted_at: String,
    recount_seconds: Option<u64>,
    /// How often the trend's earlier quarters are counted again, when they are kept.
    trend_minutes: Option<u64>,
    table: Table<'a>,
    /// Per health trainer: this quarter's table and the latest complete one's.
    trainers: Vec<(String, Option<Table<'a>>)>,
    /// What the retention period removes, in a sentence.
    retention: String,
    next: Vec<(Url, String)>,
}

/// A figure of the dashboard as a number, when it is one.
fn figure_value(r: &Report, (table, row, col): (&str, &str, &str)) -> Option<f64> {
    r.table(table)?.get(row, col)?.as_f64()
}

/// A figure of the dashboard as a person reads it: shares and rates as percentages.
fn figure_text(r: &Report, (table, row, col): (&str, &str, &str)) -> String {
    let share = col.contains("share") || row.contains("rate");
    r.table(table)
        .and_then(|t| t.get(row, col))
        .map(|f| match f.as_f64() {
            Some(v) if share => percent(v),
            _ => f.to_text(),
        })
        .unwrap_or_else(|| "n/a".into())
}

/// A proportion as the pages and documents write it: "9.9%".
fn percent(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

/// A figure's trend over eight quarters: a line with no script, read out as words.
#[derive(Template)]
#[template(path = "components/sparkline.html")]
struct Sparkline {
    label: String,
    points: String,
    last: Option<(String, String)>,
}

impl Sparkline {
    const WIDTH: f64 = 96.0;
    const HEIGHT: f64 = 24.0;

    /// `values` oldest first, each with its quarter and as written; a quarter with no
    /// figure leaves a gap in the words and no point on the line.
    fn markup(values: &[(String, Option<f64>, String)]) -> Markup {
        let known: Vec<f64> = values.iter().filter_map(|v| v.1).collect();
        let (low, high) = known
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
                (l.min(*v), h.max(*v))
            });
        let step = (Self::WIDTH - 4.0) / (values.len().max(2) - 1) as f64;
        let at = |i: usize, v: f64| {
            let y = if high > low {
                Self::HEIGHT - 2.0 - (v - low) / (high - low) * (Self::HEIGHT - 4.0)
            } else {
                Self::HEIGHT / 2.0
            };
            (format!("{:.1}", 2.0 + i as f64 * step), format!("{y:.1}"))
        };
        let mut points = Vec::new();
        let mut last = None;
        for (i, (_, v, _)) in values.iter().enumerate() {
            if let Some(v) = v {
                let (x, y) = at(i, *v);
                points.push(format!("{x},{y}"));
                last = Some((x, y));
            }
        }
        let words: Vec<String> = values
            .iter()
            .map(|(q, _, text)| format!("{q}: {text}"))
            .collect();
        Markup::render(&Sparkline {
            label: format!("Eight quarters, oldest first. {}", words.join("; ")),
            points: points.join(" "),
            last,
        })
    }
}

/// A manager's dashboard: this quarter against the latest complete one, with trends,
/// figures per health trainer and links to the records behind each count.
pub(crate) async fn dashboard(
    State(app): State<App>,
    OnService { ctx, service, .. }: OnService<ViewAudit>,
) -> Result<Response, WebError> {
    let counted = dashboard_figures(&app, &service).await?;
    let detail =
        serde_json::json!({"report": "dashboard", "period": counted.quarters[0].to_string()});
    let (user, id) = (&ctx.user.username, Some(service.service_id));
    crate::audit(&app, user, "report.release.uncontrolled", id, None, detail).await?;
    let max_age = app.0.settings.dashboard_max_age;
    let page = dashboard_page(&ctx, &service, &counted, max_age);
    Ok(html(page.into_string()))
}

/// A count as a link to the records behind it, or as text when it has none.
fn count_cell(text: String, href: Option<Url>) -> Cell {
    match href {
        Some(h) if text != "0" && text != "n/a" => Cell::Markup(Link::markup(&h, &text)),
        _ => Cell::Text(text),
    }
}

fn dashboard_page(
    ctx: &Ctx,
    s: &ServiceScope,
    counted: &Counted,
    max_age: std::time::Duration,
) -> Markup {
    let name = counted.docs[0]
        .scope
        .services
        .first()
        .map_or(s.service_ref.clone(), |i| i.name.clone());
    let content = counted
        .content
        .get_or_init(|| dashboard_content(s, counted, max_age));
    Markup::render(&Dashboard {
        layout: Layout::signed_in(
            format!("{name}: dashboard"),
            &ctx.user,
            &ctx.session.csrf_token,
        ),
        content,
    })
}

fn dashboard_content(s: &ServiceScope, counted: &Counted, max_age: std::time::Duration) -> Markup {
    let q = &counted.quarters;
    let (this, before) = (q[0].to_string(), q[1].to_string());
    let rows = dcrs_report::DASHBOARD_FIGURES
        .iter()
        .map(|(label, t, r, c)| {
            let at = (*t, *r, *c);
            let link = |i: usize| behind(label).map(|b| records_url(s, b, q[i], None));
            let figure = |i: usize| {
                counted
                    .doc(i)
                    .map(|d| (figure_value(d, at), figure_text(d, at)))
            };
            let trend: Vec<(String, Option<f64>, String)> = (0..q.len())
                .rev()
                .map(|i| {
                    let (v, text) = figure(i).unwrap_or((None, "not counted yet".into()));
                    (q[i].to_string(), v, text)
                })
                .collect();
            let text = |i: usize| figure(i).map_or("n/a".into(), |f| f.1);
            vec![
                Cell::Text(label.to_string()),
                count_cell(text(0), link(0)),
                count_cell(text(1), link(1)),
                Cell::Markup(Sparkline::markup(&trend)),
            ]
        })
        .collect();
    let this_so_far = format!("{this} so far");
    let headings = [
        "Measure",
        this_so_far.as_str(),
        before.as_str(),
        "Eight quarters",
    ];
    let trainers = [(&this_so_far, 0), (&before, 1)]
        .into_iter()
        .map(|(heading, i)| {
            let table = trainer_table(s, q[i], &counted.trainers[i]);
            (format!("By health trainer, {heading}"), table)
        })
        .collect();
    Markup::render(&DashboardContent {
        this: this.clone(),
        before: before.clone(),
        records_end: counted
            .last_record
            .filter(|d| *d < q[1].first_day())
            .map(|d| {
                let quarter = Quarter::containing(d).to_string().replace(' ', "");
                let pack = Url::path(&["reports", "view"])
                    .with("kind", "pack")
                    .with("period", &quarter)
                    .with("services", &s.service_ref);
                (d.format("%-d %B %Y").to_string(), pack)
            }),
        no_records: counted.last_record.is_none(),
        counted_at: dcrs_domain::types::uk_time(counted.at)
            .format("%H:%M:%S")
            .to_string(),
        recount_seconds: (!max_age.is_zero()).then_some(max_age.as_secs()),
        trend_minutes: (!max_age.is_zero()).then_some(TREND_MAX_AGE.as_secs() / 60),
        table: Table {
            caption: "This quarter against the last, and the trend",
            headings: &headings,
            rows,
        },
        trainers,
        retention: retention_words(counted.retention),
        next: dashboard_links(s, &this),
    })
}

/// What the retention period removes, in a sentence: clients past it now, and those
/// whose period ends by the end of next quarter.
fn retention_words((years, now, next, by): (u32, usize, usize, chrono::NaiveDate)) -> String {
    let clients = |n: usize| match n {
        1 => "1 client".to_string(),
        n => format!("{n} clients"),
    };
    format!(
        "The service keeps a client's records {years} years after their last contact. {} past that now, and {} more by {}. The system's operator lists them with the command dcrs retention --dry-run, and erases them with dcrs retention --apply.",
        match now {
            0 => "No client is".to_string(),
            1 => "1 client is".to_string(),
            n => format!("{n} clients are"),
        },
        clients(next),
        by.format("%-d %B %Y")
    )
}

/// The dashboard's episode and session figures for each health trainer of the quarter
/// `q`, each count a link to its records; `None` when the service has no workers.
fn trainer_table<'a>(s: &ServiceScope, q: Quarter, rows: &[TrainerFigures]) -> Option<Table<'a>> {
    const HEADINGS: [&str; 7] = [
        "Health trainer",
        "Open caseload at the end",
        "With no session in 90 days",
        "Episodes opened",
        "Sessions attended",
        "Did-not-attend rate",
        "Full episodes closed",
    ];
    if rows.is_empty() {
        return None;
    }
    let rows = rows
        .iter()
        .map(|t| {
            let n = |b: Behind, v: i64| {
                count_cell(
                    v.to_string(),
                    Some(records_url(s, b, q, Some(&t.worker_ref))),
                )
            };
            vec![
                Cell::Text(t.name.clone()),
                n(Behind::OpenAtEnd, t.open_at_end),
                n(Behind::Idle, t.idle),
                n(Behind::Opened, t.opened),
                n(Behind::Attended, t.attended),
                Cell::Text(t.did_not_attend_rate().map_or("n/a".into(), percent)),
                n(Behind::ClosedFull, t.closed_full),
            ]
        })
        .collect();
    Some(Table {
        caption: "By health trainer",
        headings: &HEADINGS,
        rows,
    })
}

/// Where a manager goes from the dashboard: the caseload, the quarter's pack, data
/// quality, the patterns and the audit trail.
fn dashboard_links(s: &ServiceScope, this: &str) -> Vec<(Url, String)> {
    let period = this.replace(' ', "");
    let view = |kind: &str| {
        Url::path(&["reports", "view"])
            .with("kind", kind)
            .with("period", &period)
            .with("services", &s.service_ref)
    };
    let own = |tail: &str| Url::path(&["services", s.service_ref.as_str(), tail]);
    vec![
        (own("caseload"), "Caseload: what is due".to_string()),
        (view("pack"), format!("The full report pack for {this}")),
        (
            view("data-quality"),
            "Data quality: the records to check".into(),
        ),
        (
            Url::path(&["patterns", "view"]).with("services", &s.service_ref),
            "Implementation patterns: is the service still the model it was set up to be?".into(),
        ),
        (own("audit"), "Audit trail".into()),
    ]
}

#[derive(serde::Deserialize)]
pub(crate) struct RecordsQuery {
    figure: String,
    period: String,
    worker: Option<String>,
    page: Option<String>,
}

#[derive(Template)]
#[template(path = "reports/records.html")]
struct RecordsPage<'a> {
    layout: Layout,
    intro: String,
    table: Table<'a>,
    pages: Pagination,
}

/// How many records a page of a dashboard count's records lists.
const RECORDS_A_PAGE: i64 = 100;

/// The records behind one of the dashboard's counts, for the service's manager: the
/// client, the episode and the day that put each in the count. Audited with the clients
/// shown.
pub(crate) async fn records(
    State(app): State<App>,
    OnService { ctx, service, .. }: OnService<ViewAudit>,
    Query(q): Query<RecordsQuery>,
) -> Result<Response, WebError> {
    let Some((b, heading, day)) = behind_named(&q.figure) else {
        return Err(WebError::NotFound);
    };
    let Ok(quarter) = Quarter::parse(&q.period) else {
        return Err(WebError::NotFound);
    };
    let worker = q.worker.as_deref().filter(|w| !w.is_empty());
    let number = q
        .page
        .and_then(|p| p.parse::<i64>().ok())
        .unwrap_or(1)
        .max(1);
    let to = Quarter::containing(quarter.first_day() + chrono::Months::new(3)).first_day()
        - chrono::Days::new(1);
    let (rows, total) = app
        .db()
        .records_behind(
            service.service_id,
            b,
            quarter.first_day(),
            to,
            worker,
            (RECORDS_A_PAGE, (number - 1) * RECORDS_A_PAGE),
        )
        .await?;
    let shown: Vec<&str> = rows.iter().map(|r| r.client_ref.as_str()).collect();
    let detail =
        serde_json::json!({"figure": q.figure, "period": quarter.to_string(), "records": shown});
    let (user, id) = (&ctx.user.username, Some(service.service_id));
    crate::audit(&app, user, "view.records", id, None, detail).await?;
    let own = |tail: &[&str]| {
        let mut parts = vec!["services", service.service_ref.as_str()];
        parts.extend_from_slice(tail);
        Url::path(&parts)
    };
    let whose = match (worker, rows.first().and_then(|r| r.worker_name.as_ref())) {
        (Some(_), Some(name)) => format!(" led or held by {name}"),
        (Some(w), None) => format!(" of health trainer {w}"),
        _ => String::new(),
    };
    let intro = format!("{quarter}{whose}: the records the dashboard counted.");
    let table_rows = rows
        .into_iter()
        .map(|r| {
            let name = full_name(&r.given_name, &r.family_name);
            let client = Cell::Markup(Link::markup(&own(&["clients", &r.client_ref]), &name));
            let episode = match &r.episode_ref {
                // Named by whose it is: a screen reader's list of links says which.
                Some(e) => {
                    let words = format!("Episode of {name}");
                    Cell::Markup(Link::markup(&own(&["episodes", e]), &words))
                }
                None => Cell::Text(String::new()),
            };
            vec![
                client,
                Cell::Text(uk_date(&r.on)),
                episode,
                Cell::Text(r.worker_name.unwrap_or_default()),
            ]
        })
        .collect();
    let mut at = own(&["dashboard", "records"])
        .with("figure", &q.figure)
        .with("period", &q.period);
    if let Some(w) = worker {
        at = at.with("worker", w);
    }
    let pages = Pagination::new(&at, number, RECORDS_A_PAGE, total, ("record", "records"));
    let headings = ["Client", day, "Episode", "Health trainer"];
    let page = Markup::render(&RecordsPage {
        layout: Layout::signed_in(heading.to_string(), &ctx.user, &ctx.session.csrf_token)
            .back(&own(&["dashboard"]), "Back to the dashboard"),
        intro,
        table: Table {
            caption: heading,
            headings: &headings,
            rows: table_rows,
        },
        pages,
    });
    Ok(html(page.into_string()))
}
