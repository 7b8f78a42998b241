//! Report pages for managers, commissioners and analysts: the report pack (or any one
//! report) for the services a person may see, by quarter or year, combined and service by
//! service side by side; the implementation patterns. Every
//! page offers its HTML, JSON, CSV (a zip of the tables) and .xlsx, and every release is
//! audited. Commissioners and analysts always get disclosure-controlled figures; a
//! manager gets exact figures for their own service only.

use crate::extract::{OnService, SignedIn, ViewReports};
use crate::users::{Role, User};
use crate::view::{Layout, Markup, Select, Url};
use crate::{Action, App, Ctx, ServiceScope, WebError, all_services, allowed, html};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use dcrs_domain::types::{FinancialYear, Quarter};
use dcrs_report::{Kind, Period, Policy, Report};

/// The services a user may see reports of.
pub(crate) async fn scope(app: &App, user: &User) -> Result<Vec<(ServiceScope, String)>, WebError> {
    Ok(all_services(app)
        .await?
        .into_iter()
        .filter(|(s, _)| allowed(user, Action::ViewReports, Some(s)))
        .collect())
}

/// The latest financial year with referrals in these services (the default period).
pub(crate) async fn latest_year(app: &App, ids: &[i64]) -> Result<String, WebError> {
    let last = app.db().latest_referral_on(ids).await?;
    let day = last
        .and_then(|d| chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok())
        .unwrap_or_else(|| app.today());
    Ok(FinancialYear::containing(day).to_string())
}

const KINDS: [(&str, &str); 7] = [
    ("pack", "Report pack (all of them)"),
    ("activity", "Activity"),
    ("reach", "Reach against need"),
    ("outcomes", "Outcomes"),
    ("pathway", "Pathway and completeness equity"),
    ("workforce", "Workforce"),
    ("data-quality", "Data quality"),
];

/// Figures for these services are exact (uncontrolled) only when every one is the
/// user's own service as its manager.
fn policy_for(user: &User, chosen: &[ServiceScope]) -> Policy {
    if !chosen.is_empty() && chosen.iter().all(|s| crate::authz::exact_figures(user, s)) {
        Policy::NONE
    } else {
        Policy::NHS_SUB_NATIONAL
    }
}

/// Produces reports of services the user may see (already checked) and audits their
/// release: for pages (`token` None) and the API alike.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn release(
    app: &App,
    user: &User,
    token: Option<i64>,
    kind: Kind,
    chosen: &[ServiceScope],
    period: Period,
    each_service: bool,
    format: &str,
) -> Result<Vec<Report>, WebError> {
    let policy = policy_for(user, chosen);
    let req = dcrs_report::Request {
        kind,
        services: Some(chosen.iter().map(|s| s.service_ref.clone()).collect()),
        each_service: each_service && chosen.len() > 1,
        period,
        policy,
        fresh: false,
    };
    let reports = dcrs_report::run(app.db(), &req, app.now()).await?;
    crate::audit(
        app,
        &user.username,
        if policy.kind == Policy::NONE.kind { "report.release.uncontrolled" } else { "report.release" },
        match chosen {
            [one] => Some(one.service_id),
            _ => None,
        },
        None,
        serde_json::json!({
            "report": kind.code(), "period": req.period.label, "policy": policy.kind.code(), "format": format,
            "services": chosen.iter().map(|s| s.service_ref.clone()).collect::<Vec<_>>(),
            "token_id": token,
        }),
    )
    .await?;
    Ok(reports)
}

/// Produces the implementation patterns of services the user may see (already checked)
/// and audits their release.
pub(crate) async fn release_patterns(
    app: &App,
    user: &User,
    token: Option<i64>,
    chosen: &[ServiceScope],
    format: &str,
) -> Result<Report, WebError> {
    let policy = policy_for(user, chosen);
    let req = dcrs_report::patterns::PatternsRequest {
        services: Some(chosen.iter().map(|s| s.service_ref.clone()).collect()),
        period: None,
        policy,
        settings: Default::default(),
        rules: Default::default(),
    };
    let report = dcrs_report::patterns::run(app.db(), &req, app.now()).await?;
    crate::audit(
        app,
        &user.username,
        if policy.kind == Policy::NONE.kind {
            "patterns.release.uncontrolled"
        } else {
            "patterns.release"
        },
        None,
        None,
        serde_json::json!({
            "services": chosen.iter().map(|s| s.service_ref.clone()).collect::<Vec<_>>(),
            "policy": policy.kind.code(), "format": format, "token_id": token,
        }),
    )
    .await?;
    Ok(report)
}

#[derive(Template)]
#[template(path = "reports/form.html")]
struct ReportsForm<'a> {
    layout: Layout,
    policy: &'static str,
    kind: Select<'a>,
    period: Select<'a>,
    services: Vec<(String, String)>,
}

/// The periods a report can be asked for, newest first: each financial year from
/// `first` to `last`, then its quarters; as (value, words) for a select.
fn periods(first: FinancialYear, last: FinancialYear) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut year = last;
    loop {
        out.push((year.to_string(), format!("{year}: the whole year")));
        let mut quarter = Quarter::containing(year.last_day());
        for _ in 0..4 {
            let (from, to) = (quarter.first_day(), quarter.last_day());
            let words = format!("{quarter}: {} to {}", from.format("%B"), to.format("%B %Y"));
            out.push((quarter.to_string().replace(' ', ""), words));
            quarter = Quarter::containing(from - chrono::Days::new(1));
        }
        if year <= first {
            break;
        }
        year = FinancialYear::containing(year.first_day() - chrono::Days::new(1));
    }
    out
}

/// The form: which report, which period, which services.
pub(crate) async fn reports_page(
    State(app): State<App>,
    SignedIn(ctx): SignedIn,
) -> Result<Response, WebError> {
    let services = scope(&app, &ctx.user).await?;
    if services.is_empty() {
        return Err(WebError::NotFound);
    }
    let ids: Vec<i64> = services.iter().map(|s| s.0.service_id).collect();
    let year = latest_year(&app, &ids).await?;
    let first = app.db().first_referral_on(&ids).await?;
    let first = first.and_then(|d| chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok());
    let latest = FinancialYear::parse(&year).map_err(WebError::Internal)?;
    let periods = periods(first.map_or(latest, FinancialYear::containing), latest);
    let policy = if ctx.user.role == Role::ServiceManager {
        "Figures for your own service are exact (not disclosure-controlled): do not share them outside the service."
    } else {
        "Figures are disclosure-controlled: counts of 1 to 7 are shown as *, others rounded to 5."
    };
    let page = ReportsForm {
        layout: Layout::signed_in("Reports", &ctx.user, &ctx.session.csrf_token),
        policy,
        kind: Select {
            name: "kind",
            label: "Report",
            options: KINDS.to_vec(),
            selected: "pack",
            error: None,
        },
        period: Select {
            name: "period",
            label: "Period",
            options: periods
                .iter()
                .map(|(v, w)| (v.as_str(), w.as_str()))
                .collect(),
            selected: &year,
            error: None,
        },
        services: services
            .into_iter()
            .map(|(s, name)| (s.service_ref, name))
            .collect(),
    };
    Ok(html(Markup::render(&page).into_string()))
}

/// The chosen services, each checked against the user's scope (any one refused: 404).
fn chosen(
    q: &[(String, String)],
    services: &[(ServiceScope, String)],
) -> Result<Vec<ServiceScope>, WebError> {
    let wanted: Vec<&str> = q
        .iter()
        .filter(|(k, _)| k == "services")
        .map(|(_, v)| v.as_str())
        .collect();
    let mut out = Vec::new();
    for w in &wanted {
        let s = services
            .iter()
            .find(|(s, _)| s.service_ref == *w)
            .ok_or(WebError::NotFound)?;
        out.push(s.0.clone());
    }
    if out.is_empty() {
        out = services.iter().map(|s| s.0.clone()).collect();
    }
    Ok(out)
}

fn param<'a>(q: &'a [(String, String)], k: &str) -> Option<&'a str> {
    q.iter().find(|(x, _)| x == k).map(|(_, v)| v.as_str())
}

/// The report as a page (with its downloads) or a download.
pub(crate) async fn report_view(
    State(app): State<App>,
    SignedIn(ctx): SignedIn,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let services = scope(&app, &ctx.user).await?;
    let chosen = chosen(&q, &services)?;
    let kind = Kind::parse(param(&q, "kind").unwrap_or("pack")).map_err(|_| WebError::NotFound)?;
    let ids: Vec<i64> = chosen.iter().map(|s| s.service_id).collect();
    let period_text = match param(&q, "period") {
        Some(p) if !p.trim().is_empty() => p.trim().to_string(),
        _ => latest_year(&app, &ids).await?,
    };
    let period = Period::parse(&period_text)?;
    let format = param(&q, "format").unwrap_or("html");
    let each = param(&q, "each") == Some("yes");
    let reports = release(&app, &ctx.user, None, kind, &chosen, period, each, format).await?;
    let name = format!(
        "{}-{}",
        kind.code(),
        reports[0].period.label.replace(' ', "")
    );
    deliver(
        &ctx,
        reports,
        format,
        &name,
        without_format(&["reports", "view"], &q),
    )
}

/// A page's address with its query, less the format asked for.
fn without_format(path: &[&str], q: &[(String, String)]) -> Url {
    q.iter()
        .filter(|(k, _)| k != "format")
        .fold(Url::path(path), |u, (k, v)| u.with(k, v))
}

/// Reports as a page: the base layout with the reports' stylesheet, a bar of downloads
/// and the reports' articles.
#[derive(Template)]
#[template(path = "reports/document.html")]
struct Document {
    layout: Layout,
    style: Markup,
    downloads: Vec<(Url, &'static str)>,
    articles: Markup,
}

/// Writes documents in a format; as a page (`this` is its address) they get a bar of
/// downloads and a way back.
fn deliver(
    ctx: &Ctx,
    reports: Vec<Report>,
    format: &str,
    name: &str,
    this: Url,
) -> Result<Response, WebError> {
    let download = |ctype: &str, ext: &str, bytes: Vec<u8>| attachment(name, ctype, ext, bytes);
    let internal = |e: &dyn std::fmt::Display| WebError::Internal(e.to_string());
    match format {
        "json" => {
            let bytes = dcrs_report::render::json(&reports).into_bytes();
            Ok(download("application/json", "json", bytes))
        }
        "xlsx" => match reports.as_slice() {
            [one] => {
                let bytes = dcrs_report::xlsx::xlsx(one).map_err(|e| internal(&e))?;
                Ok(download(XLSX, "xlsx", bytes))
            }
            _ => Ok(download("application/zip", "zip", spreadsheets(&reports)?)),
        },
        "csv" => Ok(download("application/zip", "csv.zip", csv_zip(&reports)?)),
        "html-file" => {
            let bytes = dcrs_report::html::html(&reports).into_bytes();
            Ok(download("text/html; charset=utf-8", "html", bytes))
        }
        _ => Ok(document_page(ctx, &reports, this)),
    }
}

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// A file to save, named from the report with anything but letters, digits and `-`
/// replaced.
pub(crate) fn attachment(name: &str, ctype: &str, ext: &str, bytes: Vec<u8>) -> Response {
    let safe: String = name
        .chars()
        .map(|c| match c.is_ascii_alphanumeric() || c == '-' {
            true => c,
            false => '_',
        })
        .collect();
    let disposition = format!("attachment; filename=\"{safe}.{ext}\"");
    let headers = [
        (header::CONTENT_TYPE, ctype.to_string()),
        (header::CONTENT_DISPOSITION, disposition),
    ];
    (headers, bytes).into_response()
}

/// One spreadsheet a report, in a zip.
fn spreadsheets(reports: &[Report]) -> Result<Vec<u8>, WebError> {
    let mut files = Vec::new();
    for r in reports {
        let bytes = dcrs_report::xlsx::xlsx(r).map_err(|e| WebError::Internal(e.to_string()))?;
        files.push((format!("{}.xlsx", document_name(r)), bytes));
    }
    zip(&files)
}

/// The reports' CSV files, in a zip.
fn csv_zip(reports: &[Report]) -> Result<Vec<u8>, WebError> {
    let internal = |e: &dyn std::fmt::Display| WebError::Internal(e.to_string());
    let dir = tempfile::tempdir().map_err(|e| internal(&e))?;
    let written = dcrs_report::render::csv(reports, dir.path()).map_err(|e| internal(&e))?;
    let mut files = Vec::new();
    for p in written {
        let rel = p.strip_prefix(dir.path()).unwrap_or(&p);
        let bytes = std::fs::read(&p).map_err(|e| internal(&e))?;
        files.push((rel.to_string_lossy().to_string(), bytes));
    }
    zip(&files)
}

/// The reports as a page of the service, with the downloads bar; its inline stylesheet
/// is allowed by its hash.
fn document_page(ctx: &Ctx, reports: &[Report], this: Url) -> Response {
    let as_format = |f: &str| this.clone().with("format", f);
    let title = match reports {
        [one] => one.title.clone(),
        more => format!("{} reports", more.len()),
    };
    let page = Document {
        layout: Layout::signed_in(title, &ctx.user, &ctx.session.csrf_token),
        style: Markup::from_static(dcrs_report::html::style()),
        downloads: vec![
            (as_format("html-file"), "HTML"),
            (as_format("json"), "JSON"),
            (
                as_format("csv"),
                "CSV for analysis (zip; shares as fractions of 1)",
            ),
            (as_format("xlsx"), "Spreadsheet"),
        ],
        articles: Markup::from_articles(dcrs_report::html::articles(reports)),
    };
    let mut res = html(Markup::render(&page).into_string());
    res.headers_mut().insert(
        "x-dcrs-style-hash",
        HeaderValue::from_str(&dcrs_report::html::style_hash()).expect("ascii"),
    );
    res
}

fn document_name(r: &Report) -> String {
    match r.scope.services.as_slice() {
        [one] => format!("service-{}", one.service_ref),
        _ => "all".into(),
    }
    .chars()
    .map(|c| {
        if c.is_ascii_alphanumeric() || c == '-' {
            c
        } else {
            '_'
        }
    })
    .collect()
}

pub(crate) fn zip(files: &[(String, Vec<u8>)]) -> Result<Vec<u8>, WebError> {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    for (name, bytes) in files {
        w.start_file(name.as_str(), options)
            .map_err(|e| WebError::Internal(e.to_string()))?;
        w.write_all(bytes)
            .map_err(|e| WebError::Internal(e.to_string()))?;
    }
    Ok(w.finish()
        .map_err(|e| WebError::Internal(e.to_string()))?
        .into_inner())
}

/// Implementation patterns of the services in scope (analysts; a manager for their own).
pub(crate) async fn patterns_view(
    State(app): State<App>,
    SignedIn(ctx): SignedIn,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    if !matches!(ctx.user.role, Role::Analyst | Role::ServiceManager) {
        return Err(WebError::NotFound);
    }
    let services = scope(&app, &ctx.user).await?;
    let chosen = chosen(&q, &services)?;
    if chosen.is_empty() {
        return Err(WebError::NotFound);
    }
    let format = param(&q, "format").unwrap_or("html");
    let report = release_patterns(&app, &ctx.user, None, &chosen, format).await?;
    let this = without_format(&["patterns", "view"], &q);
    deliver(&ctx, vec![report], format, "patterns", this)
}

/// One report of one service (the start page's "Report pack" link): exact for the
/// service's own manager, disclosure-controlled for everyone else.
pub(crate) async fn service_report(
    State(app): State<App>,
    OnService { ctx, service, .. }: OnService<ViewReports>,
    Path((_, kind)): Path<(String, String)>,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let kind = Kind::parse(&kind).map_err(|_| WebError::NotFound)?;
    let period = Period::parse(param(&q, "period").unwrap_or("2010-11"))?;
    let format = param(&q, "format").unwrap_or("html");
    let chosen = [service];
    let reports = release(&app, &ctx.user, None, kind, &chosen, period, false, format).await?;
    let label = reports[0].period.label.replace(' ', "");
    let name = format!("{}-{}-{label}", chosen[0].service_ref, kind.code());
    let this = Url::path(&[
        "services",
        chosen[0].service_ref.as_str(),
        "reports",
        kind.code(),
    ])
    .with("period", &label);
    deliver(&ctx, reports, format, &name, this)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_run_newest_first_each_year_then_its_quarters() {
        let year = |t: &str| FinancialYear::parse(t).unwrap();
        let list = periods(year("2009-10"), year("2010-11"));
        let values: Vec<&str> = list.iter().map(|(v, _)| v.as_str()).collect();
        assert_eq!(
            values,
            [
                "2010-11",
                "2010-11Q4",
                "2010-11Q3",
                "2010-11Q2",
                "2010-11Q1",
                "2009-10",
                "2009-10Q4",
                "2009-10Q3",
                "2009-10Q2",
                "2009-10Q1"
            ]
        );
        assert_eq!(list[1].1, "2010-11 Q4: January to March 2011");
        assert_eq!(list[0].1, "2010-11: the whole year");
        // Every value is a period the report pages read.
        for (v, _) in &list {
            assert!(dcrs_report::Period::parse(v).is_ok(), "{v}");
        }
        assert_eq!(periods(year("2010-11"), year("2010-11")).len(), 5);
    }
}
