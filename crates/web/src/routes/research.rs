//! Research extracts on the web: admins register projects (`/admin/projects`) and read
//! the release register (`/admin/releases`); analysts release a pseudonymised extract of
//! the services they may see (`/extracts`) as a zip of CSV or Parquet files. The work is
//! `dcrs_extract`'s; these pages only ask, check who is asking, and hand over the files.

use crate::authz::Action;
use crate::extract::{Posted, SignedIn, require};
use crate::users::FieldError;
use crate::view::{Cell, Csrf, ErrorSummary, Input, Layout, Markup, Radios, Select, Table};
use crate::{App, Ctx, WebError, all_services, allowed, html};
use askama::Template;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use dcrs_extract::{Dates, ExtractError, Format, NewProject, Request};
use serde::Deserialize;

#[derive(Template)]
#[template(path = "research/projects.html")]
struct ProjectsPage<'a> {
    layout: Layout,
    note: Option<&'a str>,
    projects: Vec<dcrs_extract::Project>,
    table: Table<'a>,
    csrf: Csrf<'a>,
    errors: ErrorSummary<'a>,
    fields: Vec<Markup>,
}

fn internal(e: ExtractError) -> WebError {
    WebError::Internal(e.to_string())
}

async fn projects_page_html(
    app: &App,
    ctx: &Ctx,
    n: &NewProject,
    errors: &[FieldError],
    note: Option<&str>,
) -> Result<Response, WebError> {
    let projects = dcrs_extract::projects(app.db()).await.map_err(internal)?;
    let rows = projects
        .iter()
        .map(|p| {
            [
                &p.name,
                &p.purpose,
                &p.approver,
                &p.ends_on.format("%-d %B %Y").to_string(),
                &p.created_by,
            ]
            .map(|t| Cell::Text(t.to_string()))
            .into()
        })
        .collect();
    let headings = ["Name", "Purpose", "Approved by", "Ends", "Registered by"];
    let token = &ctx.session.csrf_token;
    let page = ProjectsPage {
        layout: Layout::signed_in("Research projects", &ctx.user, token).failed(errors),
        note,
        projects,
        table: Table {
            caption: "Research projects",
            headings: &headings,
            rows,
        },
        csrf: Csrf { token },
        errors: ErrorSummary { errors },
        fields: project_fields(n, errors),
    };
    Ok(html(Markup::render(&page).into_string()))
}

/// The new project form's fields, with what was typed and its errors.
fn project_fields(n: &NewProject, errors: &[FieldError]) -> Vec<Markup> {
    let field = |name, label, value, hint: Option<&'static str>| {
        let mut input = Input::text(name, label, value, errors);
        input.hint = hint;
        Markup::render(&input)
    };
    vec![
        field(
            "name",
            "Short name",
            &n.name,
            Some("Letters, numbers, '-' or '_'"),
        ),
        field("purpose", "Purpose, as approved", &n.purpose, None),
        field(
            "approver",
            "Approved by",
            &n.approver,
            Some("Person or committee, and reference"),
        ),
        field(
            "ends_on",
            "End date",
            &n.ends_on,
            Some("YYYY-MM-DD: no release after this day"),
        ),
    ]
}

pub(crate) async fn projects_page(
    State(app): State<App>,
    SignedIn(ctx): SignedIn,
) -> Result<Response, WebError> {
    require(&ctx.user, Action::ManageProjects)?;
    projects_page_html(&app, &ctx, &NewProject::default(), &[], None).await
}

#[derive(Deserialize)]
pub(crate) struct ProjectForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    purpose: String,
    #[serde(default)]
    approver: String,
    #[serde(default)]
    ends_on: String,
}

pub(crate) async fn register_project(
    State(app): State<App>,
    Posted { ctx, form, .. }: Posted<ProjectForm>,
) -> Result<Response, WebError> {
    require(&ctx.user, Action::ManageProjects)?;
    let n = NewProject {
        name: form.name,
        purpose: form.purpose,
        approver: form.approver,
        ends_on: form.ends_on,
    };
    let mut errors: Vec<FieldError> = dcrs_extract::check_project(&n, app.today())
        .into_iter()
        .map(|(field, message)| FieldError { field, message })
        .collect();
    if errors.is_empty() {
        let secrets = app.0.settings.secrets_dir.clone();
        match dcrs_extract::register(app.db(), &secrets, &n, &ctx.user.username, app.today()).await
        {
            Ok(p) => {
                let file = dcrs_extract::secret_path(std::path::Path::new(""), &p.name);
                let note = format!(
                    "Project {} registered. Its secret is in the server's secrets folder as {}.",
                    p.name,
                    file.display()
                );
                let fresh = NewProject::default();
                return projects_page_html(&app, &ctx, &fresh, &[], Some(&note)).await;
            }
            Err(ExtractError::ProjectExists(_)) => errors.push(FieldError {
                field: "name",
                message: "A project of this name exists already".into(),
            }),
            Err(e) => return Err(internal(e)),
        }
    }
    projects_page_html(&app, &ctx, &n, &errors, None).await
}

/// A release as the register lists it.
struct ReleaseRow {
    id: i64,
    at: String,
    project: String,
    by: String,
    purpose: String,
    files: Vec<String>,
    rows: i64,
    generalised: Vec<String>,
}

#[derive(Template)]
#[template(path = "research/releases.html")]
struct ReleasesPage {
    layout: Layout,
    releases: Vec<ReleaseRow>,
}

fn release_row(r: dcrs_extract::RegisterEntry) -> ReleaseRow {
    let files = r.files.as_array().map_or_else(Vec::new, |a| {
        a.iter()
            .map(|f| {
                let name = f["name"].as_str().unwrap_or("");
                let sha = f["sha256"].as_str().unwrap_or("");
                format!("{name} ({} rows, SHA-256 {sha})", f["rows"])
            })
            .collect()
    });
    let generalised = r.detail["generalisation"]
        .as_array()
        .map_or_else(Vec::new, |a| {
            a.iter()
                .filter_map(|g| g.as_str().map(String::from))
                .collect()
        });
    ReleaseRow {
        id: r.release_id,
        at: r.released_at,
        project: r.project,
        by: r.released_by,
        purpose: r.purpose,
        files,
        rows: r.total_rows,
        generalised,
    }
}

pub(crate) async fn releases_page(
    State(app): State<App>,
    SignedIn(ctx): SignedIn,
) -> Result<Response, WebError> {
    require(&ctx.user, Action::ManageProjects)?;
    let entries = dcrs_extract::register_entries(app.db())
        .await
        .map_err(internal)?;
    let page = ReleasesPage {
        layout: Layout::signed_in("Release register", &ctx.user, &ctx.session.csrf_token),
        releases: entries.into_iter().map(release_row).collect(),
    };
    Ok(html(Markup::render(&page).into_string()))
}

#[derive(Template)]
#[template(path = "research/extract.html")]
struct ExtractPage<'a> {
    layout: Layout,
    csrf: Csrf<'a>,
    errors: ErrorSummary<'a>,
    /// Empty when no project is open for releases.
    fields: Vec<Markup>,
}

/// What an analyst asks for; kept as typed to show again with its errors.
#[derive(Deserialize, Default)]
pub(crate) struct ExtractForm {
    #[serde(default)]
    project: String,
    #[serde(default)]
    format: String,
    #[serde(default)]
    dates: String,
    #[serde(default)]
    services: String,
}

async fn extract_page_html(
    app: &App,
    ctx: &Ctx,
    typed: &ExtractForm,
    errors: &[FieldError],
) -> Result<Response, WebError> {
    let projects: Vec<(String, String)> = dcrs_extract::projects(app.db())
        .await
        .map_err(internal)?
        .into_iter()
        .filter(|p| p.ends_on >= app.today())
        .map(|p| (p.name.clone(), format!("{}: {}", p.name, p.purpose)))
        .collect();
    let fields = match projects.is_empty() {
        true => Vec::new(),
        false => extract_fields(&projects, typed, errors),
    };
    let token = &ctx.session.csrf_token;
    let page = ExtractPage {
        layout: Layout::signed_in("Research extracts", &ctx.user, token).failed(errors),
        csrf: Csrf { token },
        errors: ErrorSummary { errors },
        fields,
    };
    Ok(html(Markup::render(&page).into_string()))
}

/// The extract form's fields: the project (one of those still running), the format, the
/// dates and the services.
fn extract_fields(
    projects: &[(String, String)],
    typed: &ExtractForm,
    errors: &[FieldError],
) -> Vec<Markup> {
    let select = |name, label, options, selected| {
        Markup::render(&Select::new(name, label, options, selected, errors))
    };
    let projects = projects
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let radios = |name, legend, options, selected| {
        Markup::render(&Radios::new(name, legend, options, selected, errors))
    };
    vec![
        select("project", "Project", projects, &typed.project),
        radios(
            "format",
            "Format",
            vec![("csv", "CSV files"), ("parquet", "Parquet files")],
            &typed.format,
        ),
        radios(
            "dates",
            "Dates",
            vec![
                ("shift", "Shifted per client (intervals kept)"),
                ("month", "Month only"),
            ],
            &typed.dates,
        ),
        Markup::render(
            &Input::text("services", "Services (optional)", &typed.services, errors)
                .hint("Service references separated by commas; blank for all yours"),
        ),
    ]
}

pub(crate) async fn extracts_page(
    State(app): State<App>,
    SignedIn(ctx): SignedIn,
) -> Result<Response, WebError> {
    if my_services(&app, &ctx).await?.is_empty() {
        return Err(WebError::NotFound);
    }
    extract_page_html(&app, &ctx, &ExtractForm::default(), &[]).await
}

/// The services the user may release extracts of.
async fn my_services(app: &App, ctx: &Ctx) -> Result<Vec<String>, WebError> {
    Ok(all_services(app)
        .await?
        .into_iter()
        .filter(|(s, _)| allowed(&ctx.user, Action::ReleaseExtracts, Some(s)))
        .map(|(s, _)| s.service_ref)
        .collect())
}

/// An extract form read into a request, or its problems, each named by its field.
fn read_extract_form(
    form: &ExtractForm,
    mine: Vec<String>,
    actor: &str,
    today: chrono::NaiveDate,
) -> Result<Request, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut problem = |field, message: String| errors.push(FieldError { field, message });
    let format = Format::parse(&form.format);
    if format.is_none() {
        problem("format", "Choose CSV or Parquet".into());
    }
    let dates = Dates::parse(&form.dates);
    if dates.is_none() {
        problem("dates", "Choose how dates are given".into());
    }
    let wanted: Vec<String> = form
        .services
        .split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    if let Some(bad) = wanted.iter().find(|w| !mine.contains(w)) {
        problem("services", format!("{bad} is not one of your services"));
    }
    match (format, dates) {
        (Some(format), Some(dates)) if errors.is_empty() => Ok(Request {
            project: form.project.clone(),
            format,
            dates,
            services: Some(if wanted.is_empty() { mine } else { wanted }),
            actor: actor.to_string(),
            today,
        }),
        _ => Err(errors),
    }
}

/// A refusal of the extract library that the analyst can act on, as a problem with the
/// field it is about; `None` for a failure of ours.
fn refusal(e: &ExtractError) -> Option<FieldError> {
    let field = match e {
        ExtractError::BelowK { .. } | ExtractError::Invalid { .. } => "services",
        ExtractError::UnknownProject(_) | ExtractError::Ended(..) | ExtractError::Secret { .. } => {
            "project"
        }
        _ => return None,
    };
    Some(FieldError {
        field,
        message: e.to_string(),
    })
}

/// The release's files with a README of what it holds, as one zip to download.
fn release_zip(release: &dcrs_extract::Release, actor: &str) -> Result<Response, WebError> {
    let mut files: Vec<(String, Vec<u8>)> = release
        .files
        .iter()
        .map(|f| (f.name.clone(), f.bytes.clone()))
        .collect();
    let listed: Vec<String> = release
        .files
        .iter()
        .map(|f| format!("  {} ({} rows, SHA-256 {})", f.name, f.rows, f.sha256))
        .collect();
    let generalised: Vec<String> = release
        .generalisation
        .iter()
        .map(|g| format!("  {g}"))
        .collect();
    let generalised = if generalised.is_empty() {
        "  none needed".to_string()
    } else {
        generalised.join("\n")
    };
    let about = format!(
        "Project: {}\nRelease: {}\nReleased by: {actor}\nFiles:\n{}\nGeneralisation:\n{generalised}\n",
        release.project,
        release.release_id,
        listed.join("\n"),
    );
    files.push(("README.txt".into(), about.into_bytes()));
    let bytes = crate::routes::reports::zip(&files)?;
    let name = format!("extract-{}-{}.zip", release.project, release.release_id);
    let disposition = format!("attachment; filename=\"{name}\"");
    let headers = [
        (header::CONTENT_TYPE, "application/zip".to_string()),
        (header::CONTENT_DISPOSITION, disposition),
    ];
    Ok((headers, bytes).into_response())
}

pub(crate) async fn release_extract(
    State(app): State<App>,
    Posted { ctx, form, .. }: Posted<ExtractForm>,
) -> Result<Response, WebError> {
    let mine = my_services(&app, &ctx).await?;
    if mine.is_empty() {
        return Err(WebError::NotFound);
    }
    let req = match read_extract_form(&form, mine, &ctx.user.username, app.today()) {
        Ok(req) => req,
        Err(errors) => return extract_page_html(&app, &ctx, &form, &errors).await,
    };
    let secrets = app.0.settings.secrets_dir.clone();
    match dcrs_extract::release(app.db(), &secrets, &req).await {
        Ok(release) => release_zip(&release, &ctx.user.username),
        Err(e) => match refusal(&e) {
            Some(problem) => extract_page_html(&app, &ctx, &form, &[problem]).await,
            None => Err(internal(e)),
        },
    }
}
