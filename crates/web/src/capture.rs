//! Capture by health trainers and managers: registering a client. Every value goes
//! through the import's own checks (`dcrs_exchange::import_texts`), so a rule of the
//! dataset lives in one place; a rejected form comes back with everything typed, each
//! problem beside its field and in the summary at the top.

use crate::pages::{csrf_field, error_summary, esc, input, select};
use crate::users::FieldError;
use crate::{Action, App, Ctx, WebError, authorised, see_other, signed_in};
use axum::extract::{Form, Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use dcrs_domain::Entity;
use dcrs_domain::codes::{Employment, Ethnicity, Sex, YesNo, YesNoUnknown};
use std::collections::HashMap;

/// The client form's fields in the order of the conversation: who, then where, then the
/// rest. (name, label, hint).
const FIELDS: [(&str, &str, Option<&str>); 13] = [
    ("given_name", "First name", None),
    ("family_name", "Last name", None),
    (
        "date_of_birth",
        "Date of birth",
        Some("For example, 1980-05-31"),
    ),
    ("sex", "Sex", None),
    (
        "postcode",
        "Postcode",
        Some("Where the client lives. Leave empty if they have no address."),
    ),
    (
        "nhs_number",
        "NHS number",
        Some("10 digits, if the client knows it"),
    ),
    ("ethnicity", "Ethnic group", None),
    ("gp_registered", "Registered with a GP", None),
    ("gp_practice_code", "GP practice code", Some("If known")),
    ("employment", "Employment", None),
    ("disability", "Disability", None),
    (
        "consent_to_record",
        "Consents to their information being recorded",
        None,
    ),
    (
        "consent_to_share_with_gp",
        "Consents to sharing with their GP",
        None,
    ),
];

fn options(field: &str) -> Option<Vec<(String, String)>> {
    let list: Vec<&'static str> = match field {
        "sex" => Sex::ALL.iter().map(|c| c.code()).collect(),
        "ethnicity" => Ethnicity::ALL.iter().map(|c| c.code()).collect(),
        "gp_registered" | "disability" => YesNoUnknown::ALL.iter().map(|c| c.code()).collect(),
        "employment" => Employment::ALL.iter().map(|c| c.code()).collect(),
        "consent_to_record" | "consent_to_share_with_gp" => {
            YesNo::ALL.iter().map(|c| c.code()).collect()
        }
        _ => return None,
    };
    let mut out = vec![(String::new(), "Select one".to_string())];
    out.extend(
        list.into_iter()
            .map(|c| (c.to_string(), c.replace('_', " "))),
    );
    Some(out)
}

fn form_html(
    ctx: &Ctx,
    service_ref: &str,
    values: &HashMap<String, String>,
    errors: &[FieldError],
    area: Option<String>,
) -> String {
    let mut fields = String::new();
    for (name, label, hint) in FIELDS {
        let value = values.get(name).map(String::as_str).unwrap_or("");
        match options(name) {
            Some(opts) => {
                let opts: Vec<(&str, &str)> =
                    opts.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
                fields.push_str(&select(name, label, &opts, value, errors));
            }
            None => fields.push_str(&input(name, label, "text", value, hint, errors, "off")),
        }
        if name == "postcode"
            && let Some(a) = &area
        {
            fields.push_str(&format!("<div class=\"inset\"><p>{}</p></div>", esc(a)));
        }
    }
    format!(
        "{}<div class=\"panel\"><form method=\"post\" action=\"/services/{}/clients/new\" novalidate>{}{fields}\
         <button class=\"button\" type=\"submit\" name=\"action\" value=\"save\">Save client</button> \
         <button class=\"button button--secondary\" type=\"submit\" name=\"action\" value=\"check\">Check the postcode</button></form></div>",
        error_summary(errors),
        esc(service_ref),
        csrf_field(&ctx.session.csrf_token),
    )
}

/// What the reference data says about a postcode, in words.
async fn postcode_area(app: &App, postcode: &str) -> Result<Option<String>, WebError> {
    let Ok(pc) = dcrs_domain::types::Postcode::parse(postcode) else {
        return Ok(None);
    };
    let pc = pc.as_str().to_string();
    let year = app.db().imd_year().await?;
    let row: Option<(String, Option<String>, Option<i64>)> = sqlx::query_as(
        "SELECT p.lsoa11cd, l.lad19nm, i.imd_quintile FROM ref_postcodes p \
         LEFT JOIN ref_lsoa11 l ON l.lsoa11cd = p.lsoa11cd \
         LEFT JOIN ref_lsoa11_imd i ON i.lsoa11cd = p.lsoa11cd AND i.year = $2 WHERE p.pcds = $1",
    )
    .bind(pc.clone())
    .bind(year)
    .fetch_optional(app.db().pool())
    .await?;
    Ok(Some(match row {
        Some((lsoa, lad, q)) => format!(
            "{pc} is in {} (area {lsoa}), deprivation quintile {} of 5 (1 is the most deprived).",
            lad.unwrap_or_else(|| "an area not in the reference data".into()),
            q.map_or("not known".to_string(), |q| q.to_string())
        ),
        None => format!(
            "{pc} is not in the postcode reference data: the client can still be registered, without an area."
        ),
    }))
}

pub(crate) async fn new_client_page(
    State(app): State<App>,
    headers: HeaderMap,
    Path(service): Path<String>,
) -> Result<Response, WebError> {
    let ctx = signed_in(&app, &headers).await?;
    let s = authorised(&app, &ctx, &service, Action::EditClients).await?;
    Ok(ctx.page(
        "Register a client",
        &form_html(&ctx, &s.service_ref, &HashMap::new(), &[], None),
    ))
}

pub(crate) async fn new_client(
    State(app): State<App>,
    headers: HeaderMap,
    Path(service): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let ctx = signed_in(&app, &headers).await?;
    let s = authorised(&app, &ctx, &service, Action::EditClients).await?;
    crate::check_csrf(&headers, &ctx.session.csrf_token, &form)?;
    let postcode = form.get("postcode").cloned().unwrap_or_default();
    let area = if postcode.trim().is_empty() {
        None
    } else {
        postcode_area(&app, &postcode).await?
    };
    if form.get("action").map(String::as_str) == Some("check") {
        let mut errors = Vec::new();
        if !postcode.trim().is_empty() && area.is_none() {
            errors.push(FieldError {
                field: "postcode",
                message: "Enter a real postcode, like FY1 5DW".into(),
            });
        }
        return Ok(ctx.page(
            "Register a client",
            &form_html(&ctx, &s.service_ref, &form, &errors, area),
        ));
    }
    let client_ref = format!(
        "APP-{}",
        crate::auth::hex(&crate::auth::random_bytes::<5>()).to_uppercase()
    );
    let mut header = Vec::new();
    let mut row = Vec::new();
    for f in Entity::Client.fields() {
        header.push(f.name.to_string());
        row.push(match f.name {
            "client_ref" => client_ref.clone(),
            "service_ref" => s.service_ref.clone(),
            name => form
                .get(name)
                .map(|v| v.trim().to_string())
                .unwrap_or_default(),
        });
    }
    let mut w = csv_line(&header);
    w.push_str(&csv_line(&row));
    let options = dcrs_exchange::ImportOptions {
        dry_run: false,
        today: dcrs_domain::types::uk_today(chrono::Utc::now()),
        rules: Default::default(),
        actor: ctx.user.username.clone(),
    };
    let report =
        dcrs_exchange::import_texts(app.db(), &[(Entity::Client, w)], &options, "application")
            .await
            .map_err(|e| WebError::Internal(e.to_string()))?;
    if !report.committed {
        let errors: Vec<FieldError> = report
            .rejections
            .iter()
            .map(|r| FieldError {
                field: FIELDS
                    .iter()
                    .find(|f| f.0 == r.field)
                    .map_or("given_name", |f| f.0),
                message: plain(&r.field, &r.reason),
            })
            .collect();
        return Ok(ctx.page(
            "Register a client",
            &form_html(&ctx, &s.service_ref, &form, &errors, area),
        ));
    }
    Ok(see_other(&format!(
        "/services/{}/clients/{}",
        s.service_ref, client_ref
    )))
}

/// A rejection as a sentence for the person at the form.
fn plain(field: &str, reason: &str) -> String {
    let label = FIELDS.iter().find(|f| f.0 == field).map_or(field, |f| f.1);
    let mut text = format!("{label}: {reason}");
    if let Some(first) = text.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    text
}

fn csv_line(cells: &[String]) -> String {
    let quoted: Vec<String> = cells
        .iter()
        .map(|c| {
            if c.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", c.replace('"', "\"\""))
            } else {
                c.clone()
            }
        })
        .collect();
    format!("{}\n", quoted.join(","))
}
