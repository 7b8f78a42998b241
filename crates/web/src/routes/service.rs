//! A service manager's pages about the service itself: its staff accounts (add a health
//! trainer linked to a worker record, disable the account of someone who leaves, lift a
//! lock) and the configuration timeline as recorded, with who entered each change.

use crate::authz::ServiceScope;
use crate::extract::{ManageStaff, OnService, Posted, ViewAudit};
use crate::pages::{uk_date, words};
use crate::routes::account::NoFields;
use crate::users::{self, FieldError, NewUser, Role, User};
use crate::view::{Csrf, ErrorSummary, Input, Layout, Markup, SummaryList, Url};
use crate::{App, Ctx, WebError, audit, auth, html, see_other};
use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use dcrs_domain::Entity;
use dcrs_domain::catalogue;
use dcrs_store::pages::ConfigurationRow;
use serde::Deserialize;

/// A member of staff as their row reads.
struct Person {
    username: String,
    display_name: String,
    role: &'static str,
    worker: String,
    status: &'static str,
    unlock: Option<Url>,
    disable: Option<Url>,
}

#[derive(Template)]
#[template(path = "service/staff.html")]
struct StaffPage<'a> {
    layout: Layout,
    people: Vec<Person>,
    csrf: Csrf<'a>,
    errors: ErrorSummary<'a>,
    action: Url,
    fields: Vec<Markup>,
}

fn staff_url(s: &ServiceScope, tail: &[&str]) -> Url {
    let mut parts = vec!["services", s.service_ref.as_str(), "staff"];
    parts.extend_from_slice(tail);
    Url::path(&parts)
}

fn person(s: &ServiceScope, u: User, now: i64) -> Person {
    let locked = u.locked_until.is_some_and(|t| t > now);
    let trainer = u.role == Role::HealthTrainer && !u.disabled;
    let id = u.user_id.to_string();
    Person {
        unlock: (locked && trainer).then(|| staff_url(s, &[&id, "unlock"])),
        disable: trainer.then(|| staff_url(s, &[&id, "disable"])),
        status: if u.disabled {
            "Disabled"
        } else if locked {
            "Locked after failed sign-ins"
        } else {
            "Active"
        },
        role: u.role.label(),
        worker: u.worker_ref.unwrap_or_default(),
        username: u.username,
        display_name: u.display_name,
    }
}

fn staff_page_html(
    ctx: &Ctx,
    s: &ServiceScope,
    staff: Vec<User>,
    n: &NewUser,
    errors: &[FieldError],
) -> Response {
    let token = &ctx.session.csrf_token;
    let now = auth::now();
    let worker = n.worker_ref.as_deref().unwrap_or("");
    let fields = vec![
        Markup::render(&Input::text("username", "User name", &n.username, errors)),
        Markup::render(&Input::text(
            "display_name",
            "Name",
            &n.display_name,
            errors,
        )),
        Markup::render(
            &Input::text("worker_ref", "Worker reference", worker, errors)
                .hint("Their worker record in this service"),
        ),
        Markup::render(
            &Input::password("password", "First password", errors)
                .hint("At least 12 characters; they must change it when they first sign in")
                .autocomplete("new-password"),
        ),
    ];
    let page = StaffPage {
        layout: Layout::signed_in(format!("Staff of {}", s.service_ref), &ctx.user, token)
            .failed(errors),
        people: staff.into_iter().map(|u| person(s, u, now)).collect(),
        csrf: Csrf { token },
        errors: ErrorSummary { errors },
        action: staff_url(s, &[]),
        fields,
    };
    html(Markup::render(&page).into_string())
}

async fn staff_of(app: &App, s: &ServiceScope) -> Result<Vec<User>, WebError> {
    let all = users::all(app.db()).await?;
    Ok(all
        .into_iter()
        .filter(|u| u.service_id == Some(s.service_id))
        .collect())
}

pub(crate) async fn staff_page(
    State(app): State<App>,
    OnService { ctx, service, .. }: OnService<ManageStaff>,
) -> Result<Response, WebError> {
    let staff = staff_of(&app, &service).await?;
    Ok(staff_page_html(
        &ctx,
        &service,
        staff,
        &NewUser::default(),
        &[],
    ))
}

#[derive(Deserialize)]
pub(crate) struct StaffForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    worker_ref: String,
    #[serde(default)]
    password: String,
}

pub(crate) async fn add_staff(
    State(app): State<App>,
    OnService { service: s, .. }: OnService<ManageStaff>,
    Posted { ctx, form, .. }: Posted<StaffForm>,
) -> Result<Response, WebError> {
    let given = |v: String| Some(v).filter(|v| !v.trim().is_empty());
    // A manager adds health trainers of their own service only.
    let n = NewUser {
        username: given(form.username).unwrap_or_default(),
        display_name: given(form.display_name).unwrap_or_default(),
        role: Role::HealthTrainer.code().into(),
        service_ref: Some(s.service_ref.clone()),
        worker_ref: given(form.worker_ref),
        org_ref: None,
        analyst_services: None,
        password: form.password,
    };
    let checked = match users::check(app.db(), &n).await? {
        Err(errors) => {
            let staff = staff_of(&app, &s).await?;
            return Ok(staff_page_html(&ctx, &s, staff, &n, &errors));
        }
        Ok(checked) => checked,
    };
    super::admin::add_account(&app, &ctx, &n, &checked).await?;
    Ok(see_other(&staff_url(&s, &[]).to_string()))
}

/// A health trainer's account in the service; "not found" for any other account.
async fn trainer_of(app: &App, s: &ServiceScope, id: i64) -> Result<User, WebError> {
    users::by_id(app.db(), id)
        .await?
        .filter(|u| u.service_id == Some(s.service_id) && u.role == Role::HealthTrainer)
        .ok_or(WebError::NotFound)
}

pub(crate) async fn disable_staff(
    State(app): State<App>,
    OnService { service: s, .. }: OnService<ManageStaff>,
    Path((_, id)): Path<(String, i64)>,
    Posted { ctx, .. }: Posted<NoFields>,
) -> Result<Response, WebError> {
    let target = trainer_of(&app, &s, id).await?;
    users::disable(app.db(), id).await?;
    let detail = serde_json::json!({
        "before": {"disabled": target.disabled}, "after": {"disabled": true},
    });
    let (actor, sid) = (&ctx.user.username, Some(s.service_id));
    audit(
        &app,
        actor,
        "user.disable",
        sid,
        Some(target.username.clone()),
        detail,
    )
    .await?;
    Ok(see_other(&staff_url(&s, &[]).to_string()))
}

/// Lifts the lock put on a health trainer's account by failed sign-ins or security codes
/// (the person has been spoken to), before it runs out by itself.
pub(crate) async fn unlock_staff(
    State(app): State<App>,
    OnService { service: s, .. }: OnService<ManageStaff>,
    Path((_, id)): Path<(String, i64)>,
    Posted { ctx, .. }: Posted<NoFields>,
) -> Result<Response, WebError> {
    let target = trainer_of(&app, &s, id).await?;
    users::unlock(app.db(), id).await?;
    let detail = serde_json::json!({
        "before": {"locked_until": target.locked_until}, "after": {"locked_until": null},
    });
    let (actor, sid) = (&ctx.user.username, Some(s.service_id));
    audit(
        &app,
        actor,
        "user.unlock",
        sid,
        Some(target.username.clone()),
        detail,
    )
    .await?;
    Ok(see_other(&staff_url(&s, &[]).to_string()))
}

#[derive(Template)]
#[template(path = "service/configuration.html")]
struct ConfigurationPage<'a> {
    layout: Layout,
    patterns: Url,
    configurations: Vec<(String, SummaryList<'a>)>,
}

/// A configuration in words, with who recorded it (from the audit log, or how it came in).
fn configuration_summary(
    r: &ConfigurationRow,
    who: Option<(String, String, String)>,
) -> SummaryList<'static> {
    let fields = [
        ("provider_model", &r.provider_model),
        ("funding", &r.funding),
        ("senior_buy_in", &r.senior_buy_in),
        ("primary_referral_routes", &r.primary_referral_routes),
        ("worker_profile", &r.worker_profile),
        ("targeting", &r.targeting),
        (
            "formal_performance_management",
            &r.formal_performance_management,
        ),
        ("interaction_model", &r.interaction_model),
    ];
    let entity = Entity::ServiceConfiguration;
    let mut rows: Vec<(&'static str, String)> = fields
        .iter()
        .map(|(field, codes)| {
            let label = catalogue::about(entity, field).map_or(*field, |a| a.label);
            let said: Vec<String> = codes
                .split(';')
                .filter(|c| !c.is_empty())
                .map(|c| words(entity, field, c))
                .collect();
            (label, said.join(", "))
        })
        .collect();
    rows.push(("Recorded", recorded(r, who)));
    SummaryList { rows }
}

/// Who entered or last changed a configuration, and when.
fn recorded(r: &ConfigurationRow, who: Option<(String, String, String)>) -> String {
    match who {
        Some((actor, at, action)) => {
            let verb = match action.as_str() {
                "record.update" => "changed",
                _ => "entered",
            };
            format!("{verb} by {actor} on {}", uk_date(&at))
        }
        None => {
            let via = match r.entered_via.as_str() {
                "import" => "file import",
                _ => "the application",
            };
            format!("entered by {via} on {}", uk_date(&r.created_at))
        }
    }
}

/// The configuration timeline as recorded, newest first, with who entered each and when.
pub(crate) async fn configuration(
    State(app): State<App>,
    OnService {
        ctx, service: s, ..
    }: OnService<ViewAudit>,
) -> Result<Response, WebError> {
    let rows = app.db().configurations(s.service_id).await?;
    let mut configurations = Vec::new();
    for r in &rows {
        let who = app
            .db()
            .last_entry_about(s.service_id, "service_configuration", &r.configuration_ref)
            .await?;
        let heading = format!(
            "{} from {}",
            r.configuration_ref,
            uk_date(&r.effective_from)
        );
        configurations.push((heading, configuration_summary(r, who)));
    }
    let detail = serde_json::json!({"configurations": rows.len()});
    let (user, sid) = (&ctx.user.username, Some(s.service_id));
    audit(&app, user, "view.configuration", sid, None, detail).await?;
    let token = &ctx.session.csrf_token;
    let title = format!("How {} is configured", s.service_ref);
    let page = ConfigurationPage {
        layout: Layout::signed_in(title, &ctx.user, token),
        patterns: Url::path(&["patterns", "view"]).with("services", &s.service_ref),
        configurations,
    };
    Ok(html(Markup::render(&page).into_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::test_support::{HOSTILE, assert_hostile_escaped, ctx, scope, user};

    #[tokio::test]
    async fn the_staff_and_configuration_pages() {
        let s = scope(HOSTILE);
        let mut trainer = user(Role::HealthTrainer);
        trainer.username = HOSTILE.into();
        trainer.worker_ref = Some(HOSTILE.into());
        trainer.locked_until = Some(i64::MAX);
        let typed = NewUser {
            username: HOSTILE.into(),
            ..Default::default()
        };
        let errors = [FieldError {
            field: "username",
            message: "Enter a user name".into(),
        }];
        let res = staff_page_html(&ctx(), &s, vec![trainer], &typed, &errors);
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        let page = String::from_utf8(bytes.to_vec()).unwrap();
        assert_hostile_escaped(&page);
        insta::assert_snapshot!("staff", page);

        let row = ConfigurationRow {
            configuration_ref: HOSTILE.into(),
            effective_from: "2010-04-01".into(),
            provider_model: "nhs_in_house".into(),
            funding: "local_authority".into(),
            senior_buy_in: "yes".into(),
            primary_referral_routes: "gp;self".into(),
            worker_profile: "person_next_door".into(),
            targeting: "most_deprived_20pct".into(),
            formal_performance_management: "yes".into(),
            interaction_model: "one_to_one_behaviour_change".into(),
            entered_via: "import".into(),
            created_at: "2026-12-07T10:00:00Z".into(),
        };
        let summary = configuration_summary(&row, None);
        let page = Markup::render(&ConfigurationPage {
            layout: Layout::signed_in("How it is configured", &ctx().user, "token"),
            patterns: Url::path(&["patterns", "view"]).with("services", HOSTILE),
            configurations: vec![(format!("{HOSTILE} from 1 April 2010"), summary)],
        })
        .into_string();
        assert_hostile_escaped(&page);
        insta::assert_snapshot!("configuration", page);
    }
}
