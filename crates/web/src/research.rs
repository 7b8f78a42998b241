//! Research extracts on the web: admins register projects (`/admin/projects`) and read
//! the release register (`/admin/releases`); analysts release a pseudonymised extract of
//! the services they may see (`/extracts`) as a zip of CSV or Parquet files. The work is
//! `dcrs_extract`'s; these pages only ask, check who is asking, and hand over the files.

use crate::authz::Action;
use crate::pages::{csrf_field, error_summary, esc, input, select, table};
use crate::users::FieldError;
use crate::{App, Ctx, WebError, all_services, allowed, check_csrf, signed_in};
use axum::extract::{Form, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use dcrs_domain::types::uk_today;
use dcrs_extract::{Dates, ExtractError, Format, NewProject, Request};
use std::collections::HashMap;

fn today() -> chrono::NaiveDate {
    uk_today(chrono::Utc::now())
}

async fn projects_body(
    app: &App,
    ctx: &Ctx,
    n: &NewProject,
    errors: &[FieldError],
    note: Option<&str>,
) -> Result<String, WebError> {
    let rows: Vec<Vec<String>> = dcrs_extract::projects(app.db())
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?
        .into_iter()
        .map(|p| {
            vec![
                esc(&p.name),
                esc(&p.purpose),
                esc(&p.approver),
                esc(&p.ends_on.to_string()),
                esc(&p.created_by),
            ]
        })
        .collect();
    let mut body = String::new();
    if let Some(n) = note {
        body.push_str(&format!(
            "<div class=\"panel\" role=\"status\"><p>{}</p></div>",
            esc(n)
        ));
    }
    if !rows.is_empty() {
        body.push_str(&table(
            "Research projects",
            &["Name", "Purpose", "Approved by", "Ends", "Registered by"],
            &rows,
        ));
    }
    body.push_str(&format!(
        "<p><a href=\"/admin/releases\">The release register</a></p>\
         <h2>Register a project</h2>\
         <p>The project's secret (the key of its pseudonyms) is written to a file in the server's secrets \
         folder, never to the database. Keep a safe copy of that file.</p>{}\
         <form method=\"post\" action=\"/admin/projects\" novalidate>{}{}{}{}{}\
         <button class=\"button\" type=\"submit\">Register project</button></form>",
        error_summary(errors),
        csrf_field(&ctx.session.csrf_token),
        input("name", "Short name", "text", &n.name, Some("Letters, numbers, '-' or '_'"), errors, "off"),
        input("purpose", "Purpose, as approved", "text", &n.purpose, None, errors, "off"),
        input("approver", "Approved by", "text", &n.approver, Some("Person or committee, and reference"), errors, "off"),
        input("ends_on", "End date", "text", &n.ends_on, Some("YYYY-MM-DD: no release after this day"), errors, "off"),
    ));
    Ok(body)
}

pub(crate) async fn projects_page(
    State(app): State<App>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let ctx = signed_in(&app, &headers).await?;
    if !allowed(&ctx.user, Action::ManageProjects, None) {
        return Err(WebError::NotFound);
    }
    let body = projects_body(&app, &ctx, &NewProject::default(), &[], None).await?;
    Ok(ctx.page("Research projects", &body))
}

pub(crate) async fn register_project(
    State(app): State<App>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let ctx = signed_in(&app, &headers).await?;
    if !allowed(&ctx.user, Action::ManageProjects, None) {
        return Err(WebError::NotFound);
    }
    check_csrf(&headers, &ctx.session.csrf_token, &form)?;
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    let n = NewProject {
        name: get("name"),
        purpose: get("purpose"),
        approver: get("approver"),
        ends_on: get("ends_on"),
    };
    let mut errors: Vec<FieldError> = dcrs_extract::check_project(&n, today())
        .into_iter()
        .map(|(field, message)| FieldError { field, message })
        .collect();
    if errors.is_empty() {
        let secrets = app.0.settings.secrets_dir.clone();
        match dcrs_extract::register(app.db(), &secrets, &n, &ctx.user.username, today()).await {
            Ok(p) => {
                let note = format!(
                    "Project {} registered. Its secret is in the server's secrets folder as {}.",
                    p.name,
                    dcrs_extract::secret_path(std::path::Path::new(""), &p.name).display()
                );
                let body =
                    projects_body(&app, &ctx, &NewProject::default(), &[], Some(&note)).await?;
                return Ok(ctx.page("Research projects", &body));
            }
            Err(ExtractError::ProjectExists(_)) => errors.push(FieldError {
                field: "name",
                message: "A project of this name exists already".into(),
            }),
            Err(e) => return Err(WebError::Internal(e.to_string())),
        }
    }
    let body = projects_body(&app, &ctx, &n, &errors, None).await?;
    Ok(ctx.page("Research projects", &body))
}

pub(crate) async fn releases_page(
    State(app): State<App>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let ctx = signed_in(&app, &headers).await?;
    if !allowed(&ctx.user, Action::ManageProjects, None) {
        return Err(WebError::NotFound);
    }
    let rows: Vec<Vec<String>> = dcrs_extract::register_entries(app.db())
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?
        .into_iter()
        .map(|r| {
            let files: Vec<String> = r
                .files
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|f| {
                            format!(
                                "{} ({} rows, SHA-256 {})",
                                f["name"].as_str().unwrap_or(""),
                                f["rows"],
                                f["sha256"].as_str().unwrap_or("")
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let generalised: Vec<String> = r.detail["generalisation"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|g| g.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            vec![
                r.release_id.to_string(),
                esc(&r.released_at),
                esc(&r.project),
                esc(&r.released_by),
                esc(&r.purpose),
                files
                    .iter()
                    .map(|f| esc(f))
                    .collect::<Vec<_>>()
                    .join("<br>"),
                r.total_rows.to_string(),
                generalised
                    .iter()
                    .map(|g| esc(g))
                    .collect::<Vec<_>>()
                    .join("<br>"),
            ]
        })
        .collect();
    let body = if rows.is_empty() {
        "<p>No extract has been released.</p>".to_string()
    } else {
        table(
            "Every release",
            &[
                "#",
                "When",
                "Project",
                "By",
                "Purpose",
                "Files",
                "Rows",
                "Generalised",
            ],
            &rows,
        )
    };
    Ok(ctx.page("Release register", &body))
}

async fn extract_form(
    app: &App,
    ctx: &Ctx,
    values: &HashMap<String, String>,
    errors: &[FieldError],
) -> Result<String, WebError> {
    let projects: Vec<(String, String)> = dcrs_extract::projects(app.db())
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?
        .into_iter()
        .filter(|p| p.ends_on >= today())
        .map(|p| (p.name.clone(), format!("{}: {}", p.name, p.purpose)))
        .collect();
    if projects.is_empty() {
        return Ok(
            "<p>There is no research project open for releases. An admin registers one.</p>".into(),
        );
    }
    let options: Vec<(&str, &str)> = projects
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let get = |k: &str| values.get(k).map_or("", String::as_str);
    Ok(format!(
        "<p>An extract holds no names, NHS numbers, postcodes, dates of birth, free text or record \
         references. Clients are known by the project's pseudonyms, dates are shifted per client (or given \
         as months), ages are in bands, and every combination of age band, sex, ethnic group and area is \
         shared by at least five clients. Every release is recorded in the release register.</p>{}\
         <form method=\"post\" action=\"/extracts\" novalidate>{}{}{}{}{}\
         <button class=\"button\" type=\"submit\">Release and download</button></form>",
        error_summary(errors),
        csrf_field(&ctx.session.csrf_token),
        select("project", "Project", &options, get("project"), errors),
        select(
            "format",
            "Format",
            &[("csv", "CSV files"), ("parquet", "Parquet files")],
            get("format"),
            errors
        ),
        select(
            "dates",
            "Dates",
            &[
                ("shift", "Shifted per client (intervals kept)"),
                ("month", "Month only")
            ],
            get("dates"),
            errors
        ),
        input(
            "services",
            "Services (optional)",
            "text",
            get("services"),
            Some("Service references separated by commas; blank for all yours"),
            errors,
            "off"
        ),
    ))
}

pub(crate) async fn extracts_page(
    State(app): State<App>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let ctx = signed_in(&app, &headers).await?;
    let mine = my_services(&app, &ctx).await?;
    if mine.is_empty() {
        return Err(WebError::NotFound);
    }
    let body = extract_form(&app, &ctx, &HashMap::new(), &[]).await?;
    Ok(ctx.page("Research extracts", &body))
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

pub(crate) async fn release_extract(
    State(app): State<App>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let ctx = signed_in(&app, &headers).await?;
    let mine = my_services(&app, &ctx).await?;
    if mine.is_empty() {
        return Err(WebError::NotFound);
    }
    check_csrf(&headers, &ctx.session.csrf_token, &form)?;
    let get = |k: &str| form.get(k).map_or("", String::as_str);
    let mut errors = Vec::new();
    let format = Format::parse(get("format"));
    if format.is_none() {
        errors.push(FieldError {
            field: "format",
            message: "Choose CSV or Parquet".into(),
        });
    }
    let dates = Dates::parse(get("dates"));
    if dates.is_none() {
        errors.push(FieldError {
            field: "dates",
            message: "Choose how dates are given".into(),
        });
    }
    let wanted: Vec<String> = get("services")
        .split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    if let Some(bad) = wanted.iter().find(|w| !mine.contains(w)) {
        errors.push(FieldError {
            field: "services",
            message: format!("{bad} is not one of your services"),
        });
    }
    let (Some(format), Some(dates), true) = (format, dates, errors.is_empty()) else {
        let body = extract_form(&app, &ctx, &form, &errors).await?;
        return Ok(ctx.page("Research extracts", &body));
    };
    let req = Request {
        project: get("project").to_string(),
        format,
        dates,
        services: Some(if wanted.is_empty() { mine } else { wanted }),
        actor: ctx.user.username.clone(),
        today: today(),
    };
    let secrets = app.0.settings.secrets_dir.clone();
    let release = match dcrs_extract::release(app.db(), &secrets, &req).await {
        Ok(r) => r,
        Err(
            e @ (ExtractError::UnknownProject(_)
            | ExtractError::Ended(..)
            | ExtractError::BelowK { .. }
            | ExtractError::Secret { .. }
            | ExtractError::Invalid { .. }),
        ) => {
            let field = if matches!(
                e,
                ExtractError::BelowK { .. } | ExtractError::Invalid { .. }
            ) {
                "services"
            } else {
                "project"
            };
            let errors = vec![FieldError {
                field,
                message: e.to_string(),
            }];
            let body = extract_form(&app, &ctx, &form, &errors).await?;
            return Ok(ctx.page("Research extracts", &body));
        }
        Err(e) => return Err(WebError::Internal(e.to_string())),
    };
    let mut files: Vec<(String, Vec<u8>)> = release
        .files
        .iter()
        .map(|f| (f.name.clone(), f.bytes.clone()))
        .collect();
    let about = format!(
        "Project: {}\nRelease: {}\nReleased by: {}\nFiles:\n{}\nGeneralisation:\n{}\n",
        release.project,
        release.release_id,
        ctx.user.username,
        release
            .files
            .iter()
            .map(|f| format!("  {} ({} rows, SHA-256 {})", f.name, f.rows, f.sha256))
            .collect::<Vec<_>>()
            .join("\n"),
        if release.generalisation.is_empty() {
            "  none needed".to_string()
        } else {
            release
                .generalisation
                .iter()
                .map(|g| format!("  {g}"))
                .collect::<Vec<_>>()
                .join("\n")
        }
    );
    files.push(("README.txt".into(), about.into_bytes()));
    let bytes = crate::routes::reports::zip(&files)?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"extract-{}-{}.zip\"",
                    release.project, release.release_id
                ),
            ),
        ],
        bytes,
    )
        .into_response())
}
