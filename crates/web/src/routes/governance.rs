//! A client's data protection rights, for the manager of their service: everything held
//! about them (subject access) as a page to read or print, as JSON and as a FHIR Bundle;
//! and their erasure. See `docs/governance.md`.

use crate::extract::{GovernRecords, OnService, Posted};
use crate::pages::{action_words, uk_date, uk_time, words};
use crate::routes::reports::attachment;
use crate::users::FieldError;
use crate::view::{Cell, Csrf, ErrorSummary, Input, Layout, Markup, SummaryList, Table, Url};
use crate::{App, Ctx, WebError, html, see_other};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use dcrs_domain::Entity;
use dcrs_store::SubjectAccess;
use std::collections::HashMap;

fn client_url(service_ref: &str, client_ref: &str, tail: &[&str]) -> Url {
    let mut parts = vec!["services", service_ref, "clients", client_ref];
    parts.extend_from_slice(tail);
    Url::path(&parts)
}

/// One record of the client, headed by what it is and when, its fields in words.
struct RecordBlock {
    heading: String,
    fields: Markup,
}

#[derive(Template)]
#[template(path = "clients/subject_access.html")]
struct SubjectAccessPage<'a> {
    layout: Layout,
    intro: String,
    /// The restriction on processing their records, in words, if there is one.
    restricted: Option<String>,
    json: Url,
    fhir: Url,
    records: Vec<RecordBlock>,
    derived: SummaryList<'a>,
    processing: Table<'a>,
    releases: Table<'a>,
}

#[derive(serde::Deserialize)]
pub(crate) struct Format {
    format: Option<String>,
}

/// Everything held about a client: a page to read or print, `?format=json`, or
/// `?format=fhir` (their records as a FHIR R4 Bundle). Audited (`subject_access`).
pub(crate) async fn subject_access(
    State(app): State<App>,
    OnService { ctx, service, .. }: OnService<GovernRecords>,
    Path((_, client_ref)): Path<(String, String)>,
    Query(q): Query<Format>,
) -> Result<Response, WebError> {
    let access = app
        .db()
        .subject_access(service.service_id, &client_ref)
        .await?
        .ok_or(WebError::NotFound)?;
    let format = q.format.unwrap_or_default();
    let detail = serde_json::json!({"records": [client_ref.clone()], "format": format});
    let (user, sid) = (&ctx.user.username, Some(service.service_id));
    crate::audit(
        &app,
        user,
        "subject_access",
        sid,
        Some(client_ref.clone()),
        detail,
    )
    .await?;
    let name = format!("subject-access-{}-{client_ref}", service.service_ref);
    match format.as_str() {
        "json" => {
            let body = serde_json::to_vec_pretty(&access.to_json()).expect("plain data");
            Ok(attachment(&name, "application/json", "json", body))
        }
        "fhir" => {
            let now = app.now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let bundle =
                dcrs_exchange::client_fhir(app.db(), &service.service_ref, &client_ref, &now)
                    .await?
                    .ok_or(WebError::NotFound)?;
            let body = serde_json::to_vec_pretty(&bundle).expect("plain data");
            Ok(attachment(&name, "application/fhir+json", "json", body))
        }
        _ => Ok(html(
            page(&ctx, &service.service_ref, &access).into_string(),
        )),
    }
}

/// The date field a record of each kind is known by.
fn dated_by(e: Entity) -> Option<&'static str> {
    match e {
        Entity::Referral => Some("received_on"),
        Entity::Episode => Some("first_contact_on"),
        Entity::Assessment => Some("assessed_on"),
        Entity::Plan => Some("agreed_on"),
        Entity::Goal => Some("target_on"),
        Entity::Session => Some("held_on"),
        Entity::OnwardReferral => Some("made_on"),
        Entity::WiderIssue => Some("noted_on"),
        _ => None,
    }
}

/// What a kind of record is called, as a heading.
fn kind_words(e: Entity) -> &'static str {
    match e {
        Entity::Client => "Client details",
        Entity::Referral => "Referral",
        Entity::Episode => "Episode of support",
        Entity::Assessment => "Assessment",
        Entity::Plan => "Plan",
        Entity::Goal => "Goal",
        Entity::Session => "Session",
        Entity::OnwardReferral => "Signposting or onward referral",
        Entity::WiderIssue => "Wider issue",
        _ => "Record",
    }
}

/// A field's value as a person reads it: a date in words, a code in words, the rest as
/// it is.
fn shown(e: Entity, field: &str, value: &str) -> String {
    if field.ends_with("_on") || field == "date_of_birth" {
        return uk_date(value);
    }
    words(e, field, value)
}

fn page(ctx: &Ctx, service_ref: &str, a: &SubjectAccess) -> Markup {
    let mut records = Vec::new();
    for (entity, rows) in &a.records {
        for row in rows {
            let value = |f: &str| row.iter().find(|(k, _)| *k == f).map(|(_, v)| v.as_str());
            let when = dated_by(*entity)
                .and_then(value)
                .filter(|v| !v.is_empty())
                .map(|d| format!(", {}", uk_date(d)))
                .unwrap_or_default();
            let own = value(entity.ref_field()).unwrap_or_default();
            let fields = row
                .iter()
                .filter(|(k, v)| !v.is_empty() && *k != "service_ref")
                .map(|(k, v)| {
                    let label = dcrs_domain::catalogue::about(*entity, k).map_or(*k, |a| a.label);
                    (label, shown(*entity, k, v))
                })
                .collect();
            records.push(RecordBlock {
                heading: format!("{}{when} ({own})", kind_words(*entity)),
                fields: Markup::render(&SummaryList { rows: fields }),
            });
        }
    }
    let processing = a
        .processing
        .iter()
        .map(|p| {
            vec![
                Cell::Text(uk_time(&p.at)),
                Cell::Text(p.actor.clone()),
                Cell::Text(action_words(&p.action).to_string()),
                Cell::Text(
                    p.record
                        .as_ref()
                        .map(|(kind, r)| format!("{kind} {r}"))
                        .unwrap_or_else(|| "in a list of clients".into()),
                ),
            ]
        })
        .collect();
    let releases = a
        .releases
        .iter()
        .map(|p| {
            let d: serde_json::Value = p
                .detail
                .as_deref()
                .and_then(|d| serde_json::from_str(d).ok())
                .unwrap_or_default();
            let text = |k: &str| d[k].as_str().unwrap_or("").to_string();
            vec![
                Cell::Text(uk_time(&p.at)),
                Cell::Text(p.actor.clone()),
                Cell::Text(action_words(&p.action).to_string()),
                Cell::Text(format!("{} {}", text("report"), text("period"))),
            ]
        })
        .collect();
    let count: usize = a.records.iter().map(|(_, r)| r.len()).sum();
    let title = format!("Everything held about client {}", a.client_ref);
    let layout = Layout::signed_in(title, &ctx.user, &ctx.session.csrf_token).back(
        &client_url(service_ref, &a.client_ref, &[]),
        "Back to the client",
    );
    let at =
        |f: &str| client_url(service_ref, &a.client_ref, &["subject-access"]).with("format", f);
    Markup::render(&SubjectAccessPage {
        layout,
        intro: format!(
            "{} holds {count} {} about this client, listed below with what was worked out from them, who viewed or changed them and when, and the releases of the service's figures. Print this page for the client, or save it:",
            a.service_name,
            if count == 1 { "record" } else { "records" }
        ),
        json: at("json"),
        fhir: at("fhir"),
        restricted: a.restricted.as_ref().map(restricted_words),
        records,
        derived: SummaryList {
            rows: a
                .derived
                .iter()
                .map(|(k, v)| (k.as_str(), v.clone()))
                .collect(),
        },
        processing: Table {
            caption: "Who viewed or changed their records",
            headings: &["When", "Who", "What", "Record"],
            rows: processing,
        },
        releases: Table {
            caption: "Releases of the service's figures (counts only; no record of theirs leaves in one)",
            headings: &["When", "Who", "What", "Report and period"],
            rows: releases,
        },
    })
}

#[derive(Template)]
#[template(path = "clients/erase.html")]
struct ErasePage<'a> {
    layout: Layout,
    errors: ErrorSummary<'a>,
    held: SummaryList<'a>,
    action: Url,
    csrf: Csrf<'a>,
    reason: Markup,
    confirm: Markup,
    cancel: Url,
}

fn erase_page(
    ctx: &Ctx,
    service_ref: &str,
    a: &SubjectAccess,
    typed: (&str, &str),
    errors: &[FieldError],
) -> Response {
    let token = &ctx.session.csrf_token;
    let held = a
        .records
        .iter()
        .filter(|(_, rows)| !rows.is_empty())
        .map(|(e, rows)| (kind_words(*e), rows.len().to_string()))
        .collect();
    let reason = Input {
        hint: Some(
            "For example, the client asked for erasure and the service has no legal duty to keep the records",
        ),
        ..Input::text("reason", "Why must the records go?", typed.0, errors)
    };
    let label = format!("Type the client's reference, {}, to confirm", a.client_ref);
    let confirm = Input::text("confirm", &label, typed.1, errors);
    let page = ErasePage {
        layout: Layout::signed_in(format!("Erase client {}?", a.client_ref), &ctx.user, token)
            .back(
                &client_url(service_ref, &a.client_ref, &[]),
                "Back to the client",
            )
            .failed(errors),
        errors: ErrorSummary { errors },
        held: SummaryList { rows: held },
        action: client_url(service_ref, &a.client_ref, &["erase"]),
        csrf: Csrf { token },
        reason: Markup::render(&reason),
        confirm: Markup::render(&confirm),
        cancel: client_url(service_ref, &a.client_ref, &[]),
    };
    html(Markup::render(&page).into_string())
}

/// Asks to confirm a client's erasure, showing what would go.
pub(crate) async fn erase_form(
    State(app): State<App>,
    OnService { ctx, service, .. }: OnService<GovernRecords>,
    Path((_, client_ref)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let access = app
        .db()
        .subject_access(service.service_id, &client_ref)
        .await?
        .ok_or(WebError::NotFound)?;
    let detail = serde_json::json!({"records": [client_ref.clone()], "form": "erase"});
    let (user, sid) = (&ctx.user.username, Some(service.service_id));
    crate::audit(&app, user, "view.form", sid, Some(client_ref), detail).await?;
    Ok(erase_page(
        &ctx,
        &service.service_ref,
        &access,
        ("", ""),
        &[],
    ))
}

/// Erases the client and every record of theirs (see `Database::erase_client`), then
/// goes to the client list, which says so.
pub(crate) async fn erase(
    State(app): State<App>,
    OnService { service, .. }: OnService<GovernRecords>,
    Path((_, client_ref)): Path<(String, String)>,
    Posted { ctx, form, .. }: Posted<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let access = app
        .db()
        .subject_access(service.service_id, &client_ref)
        .await?
        .ok_or(WebError::NotFound)?;
    let reason = form.get("reason").map_or("", |r| r.trim());
    let confirm = form.get("confirm").map_or("", |r| r.trim());
    let mut errors = Vec::new();
    if reason.is_empty() {
        errors.push(FieldError::new("reason", "Enter why the records must go"));
    } else if reason.chars().count() > 500 {
        errors.push(FieldError::new(
            "reason",
            "Enter a reason of 500 characters or fewer",
        ));
    }
    if confirm != client_ref {
        errors.push(FieldError::new(
            "confirm",
            format!("Type the client's reference, {client_ref}, to confirm"),
        ));
    }
    if !errors.is_empty() {
        let typed = (reason, confirm);
        return Ok(erase_page(
            &ctx,
            &service.service_ref,
            &access,
            typed,
            &errors,
        ));
    }
    let db = app.db();
    match db
        .erase_client(service.service_id, &client_ref, &ctx.user.username, reason)
        .await
    {
        Ok(_) => {}
        Err(dcrs_store::EraseError::Store(e)) => return Err(e.into()),
        Err(e) => {
            let errors = [FieldError::new(
                "reason",
                format!("Nothing was erased: {e}"),
            )];
            let typed = (reason, confirm);
            return Ok(erase_page(
                &ctx,
                &service.service_ref,
                &access,
                typed,
                &errors,
            ));
        }
    }
    db.compact().await?;
    let to = Url::path(&["services", &service.service_ref, "clients"]).with("erased", &client_ref);
    Ok(see_other(&to.to_string()))
}

#[derive(Template)]
#[template(path = "clients/restrict.html")]
struct RestrictPage<'a> {
    layout: Layout,
    errors: ErrorSummary<'a>,
    /// The restriction in force, in words, if there is one.
    current: Option<String>,
    action: Url,
    csrf: Csrf<'a>,
    reason: Markup,
    /// The button: restrict, or lift the restriction.
    button: (&'static str, &'static str),
    cancel: Url,
}

fn restrict_page(
    ctx: &Ctx,
    service_ref: &str,
    client_ref: &str,
    current: Option<&dcrs_store::Restriction>,
    typed: &str,
    errors: &[FieldError],
) -> Response {
    let token = &ctx.session.csrf_token;
    let (title, label, button) = match current {
        Some(_) => (
            format!("Lift the restriction on client {client_ref}?"),
            "Why may their records be processed again?",
            ("lift", "Lift the restriction"),
        ),
        None => (
            format!("Restrict processing of client {client_ref}?"),
            "Why must processing be restricted?",
            ("restrict", "Restrict processing"),
        ),
    };
    let reason = Input {
        hint: Some(
            "For example, the client disputes the accuracy of their records while it is checked",
        ),
        ..Input::text("reason", label, typed, errors)
    };
    let page = RestrictPage {
        layout: Layout::signed_in(title, &ctx.user, token)
            .back(
                &client_url(service_ref, client_ref, &[]),
                "Back to the client",
            )
            .failed(errors),
        errors: ErrorSummary { errors },
        current: current.map(restricted_words),
        action: client_url(service_ref, client_ref, &["restrict"]),
        csrf: Csrf { token },
        reason: Markup::render(&reason),
        button,
        cancel: client_url(service_ref, client_ref, &[]),
    };
    html(Markup::render(&page).into_string())
}

/// A restriction in words, for the client's page and the form that lifts it.
pub(crate) fn restricted_words(r: &dcrs_store::Restriction) -> String {
    format!(
        "Processing of this client's records is restricted since {}, by {}: {}. Their records are kept, but left out of the caseload's worklists and research extracts.",
        uk_time(&r.at),
        r.by,
        r.reason
    )
}

/// The form that restricts a client's processing, or lifts the restriction.
pub(crate) async fn restrict_form(
    State(app): State<App>,
    OnService { ctx, service, .. }: OnService<GovernRecords>,
    Path((_, client_ref)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let db = app.db();
    db.client_record(service.service_id, &client_ref)
        .await?
        .ok_or(WebError::NotFound)?;
    let current = db.restriction(service.service_id, &client_ref).await?;
    let s = &service.service_ref;
    Ok(restrict_page(
        &ctx,
        s,
        &client_ref,
        current.as_ref(),
        "",
        &[],
    ))
}

/// Restricts a client's processing, or lifts the restriction, with a reason; back to
/// the client's page, which says which.
pub(crate) async fn restrict(
    State(app): State<App>,
    OnService { service, .. }: OnService<GovernRecords>,
    Path((_, client_ref)): Path<(String, String)>,
    Posted { ctx, form, .. }: Posted<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let db = app.db();
    db.client_record(service.service_id, &client_ref)
        .await?
        .ok_or(WebError::NotFound)?;
    let current = db.restriction(service.service_id, &client_ref).await?;
    let reason = form.get("reason").map_or("", |r| r.trim());
    let s = &service.service_ref;
    let refuse = |message: &str| {
        let errors = [FieldError::new("reason", message)];
        restrict_page(&ctx, s, &client_ref, current.as_ref(), reason, &errors)
    };
    if reason.is_empty() {
        return Ok(refuse("Enter the reason"));
    }
    if reason.chars().count() > 500 {
        return Ok(refuse("Enter a reason of 500 characters or fewer"));
    }
    // The button pressed must match the state shown: a second tap changes nothing.
    let restrict = form.get("do").map(String::as_str) == Some("restrict");
    if restrict != current.is_none() {
        return Ok(see_other(&client_url(s, &client_ref, &[]).to_string()));
    }
    let user = &ctx.user.username;
    db.set_restriction(service.service_id, &client_ref, restrict, user, reason)
        .await?;
    Ok(see_other(&client_url(s, &client_ref, &[]).to_string()))
}

#[derive(Template)]
#[template(path = "clients/duplicates.html")]
struct DuplicatesPage<'a> {
    layout: Layout,
    pairs: Vec<PairView<'a>>,
    errors: ErrorSummary<'a>,
}

/// A possible duplicate pair as the page shows it: the evidence, the two side by side,
/// and a form to merge either into the other.
struct PairView<'a> {
    why: &'static str,
    table: Table<'a>,
    action: Url,
    csrf: Csrf<'a>,
    a: String,
    b: String,
}

fn duplicates_page(
    ctx: &Ctx,
    service_ref: &str,
    pairs: Vec<dcrs_report::quality::DuplicatePair>,
    errors: &[FieldError],
) -> Response {
    let token = &ctx.session.csrf_token;
    let action = Url::path(&["services", service_ref, "duplicates"]);
    let shown = |c: &dcrs_report::quality::Candidate| {
        let name = crate::pages::full_name(&c.given_name, &c.family_name);
        vec![
            Cell::Markup(crate::view::Link::markup(
                &client_url(service_ref, &c.client_ref, &[]),
                &c.client_ref,
            )),
            Cell::Text(name),
            Cell::Text(uk_date(&c.date_of_birth)),
            Cell::Text(c.postcode.clone().unwrap_or_default()),
            Cell::Text(c.nhs_number.clone().unwrap_or_default()),
        ]
    };
    let pairs = pairs
        .into_iter()
        .map(|p| PairView {
            why: p.why,
            table: Table {
                caption: "The two records",
                headings: &["Client", "Name", "Date of birth", "Postcode", "NHS number"],
                rows: vec![shown(&p.a), shown(&p.b)],
            },
            action: action.clone(),
            csrf: Csrf { token },
            a: p.a.client_ref,
            b: p.b.client_ref,
        })
        .collect();
    let page = DuplicatesPage {
        layout: Layout::signed_in("Possible duplicate clients", &ctx.user, token)
            .back(
                &Url::path(&["services", service_ref, "clients"]),
                "Back to the clients",
            )
            .failed(errors),
        pairs,
        errors: ErrorSummary { errors },
    };
    html(Markup::render(&page).into_string())
}

/// The possible duplicate clients of the service, with the evidence; audited with the
/// clients shown.
pub(crate) async fn duplicates(
    State(app): State<App>,
    OnService { ctx, service, .. }: OnService<GovernRecords>,
) -> Result<Response, WebError> {
    let pairs = dcrs_report::quality::duplicate_pairs(app.db(), service.service_id).await?;
    let refs: Vec<[&str; 2]> = pairs
        .iter()
        .map(|p| [p.a.client_ref.as_str(), p.b.client_ref.as_str()])
        .collect();
    let detail = serde_json::json!({"records": refs});
    let (user, sid) = (&ctx.user.username, Some(service.service_id));
    crate::audit(&app, user, "view.duplicates", sid, None, detail).await?;
    Ok(duplicates_page(&ctx, &service.service_ref, pairs, &[]))
}

/// Merges one client of a possible duplicate pair into the other through the write
/// path (`dcrs_exchange::merge_clients`); the kept client's page after, or the list
/// with the reason it was refused.
pub(crate) async fn merge(
    State(app): State<App>,
    OnService { service, .. }: OnService<GovernRecords>,
    Posted { ctx, form, .. }: Posted<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let field = |k: &str| form.get(k).map_or(String::new(), |v| v.trim().to_string());
    let (kept, merged) = (field("keep"), field("merge"));
    let pairs = dcrs_report::quality::duplicate_pairs(app.db(), service.service_id).await?;
    // Only a pair the list offers is merged.
    let offered = pairs.iter().any(|p| {
        (p.a.client_ref == kept && p.b.client_ref == merged)
            || (p.b.client_ref == kept && p.a.client_ref == merged)
    });
    if !offered {
        return Err(WebError::NotFound);
    }
    let options = crate::routes::capture::write_options(&app, &ctx);
    let m = dcrs_exchange::Merge {
        service_ref: service.service_ref.clone(),
        kept: kept.clone(),
        merged: merged.clone(),
    };
    let report = dcrs_exchange::merge_clients(app.db(), &m, &options)
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?;
    if report.committed {
        let to = client_url(&service.service_ref, &kept, &[]);
        return Ok(see_other(&to.to_string()));
    }
    let why: Vec<String> = report.rejections.iter().map(|r| r.reason.clone()).collect();
    let errors = [FieldError::new(
        "merge",
        format!("{merged} was not merged into {kept}: {}", why.join("; ")),
    )];
    Ok(duplicates_page(&ctx, &service.service_ref, pairs, &errors))
}
