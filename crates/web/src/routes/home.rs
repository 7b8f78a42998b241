//! The start page: what the signed-in user can do, and their services.

use crate::authz::ServiceScope;
use crate::authz::{Action, allowed};
use crate::extract::SignedIn;
use crate::users::{Role, User};
use crate::view::{Layout, Markup, Url};
use crate::{App, WebError, all_services, html};
use askama::Template;
use axum::extract::State;
use axum::response::Response;

/// A service and the links to its pages the user may open.
struct ServiceLinks {
    id: i64,
    reference: String,
    name: String,
    links: Vec<(Url, &'static str)>,
}

/// A caseload a health trainer works from: the page, and how many drafts wait there.
struct Work {
    service: String,
    caseload: Url,
    drafts: usize,
}

#[derive(Template)]
#[template(path = "home.html")]
struct Home {
    layout: Layout,
    reports: bool,
    patterns: bool,
    manage_users: bool,
    manage_projects: bool,
    extracts: bool,
    services: Vec<ServiceLinks>,
    set_up_second_factor: bool,
    /// A health trainer's work, first on the page.
    work: Vec<Work>,
}

pub(crate) async fn home(
    State(app): State<App>,
    SignedIn(ctx): SignedIn,
) -> Result<Response, WebError> {
    let services = all_services(&app).await?;
    let year = dcrs_domain::types::Quarter::containing(app.today()).year();
    let (user, csrf) = (&ctx.user, &ctx.session.csrf_token);
    let mut page = home_page(user, csrf, services, &year.to_string());
    // A health trainer starts from their caseload, with the drafts they left.
    if user.role == Role::HealthTrainer {
        for s in &page.services {
            let drafts = app.db().drafts(user.user_id, s.id).await?.len();
            page.work.push(Work {
                service: format!("{} {}", s.reference, s.name),
                caseload: Url::path(&["services", s.reference.as_str(), "caseload"]),
                drafts,
            });
        }
    }
    Ok(html(Markup::render(&page).into_string()))
}

/// The start page of a user, given every service (with its name) and this financial
/// year (whose report pack it links to).
fn home_page(user: &User, csrf: &str, all: Vec<(ServiceScope, String)>, year: &str) -> Home {
    let mut services = Vec::new();
    for (s, name) in all {
        let page = |tail: &str| Url::path(&["services", s.service_ref.as_str(), tail]);
        let mut links = Vec::new();
        if allowed(user, Action::ViewClients, Some(&s)) {
            links.push((page("caseload"), "Caseload"));
            links.push((page("clients"), "Clients"));
        }
        if allowed(user, Action::ViewReports, Some(&s)) {
            let pack = Url::path(&["services", &s.service_ref, "reports", "pack"]);
            links.push((pack.with("period", year), "Report pack"));
        }
        if allowed(user, Action::ViewAudit, Some(&s)) {
            links.push((page("dashboard"), "Dashboard"));
            links.push((page("staff"), "Staff"));
            links.push((page("configuration"), "Configuration"));
            links.push((page("audit"), "Audit trail"));
        }
        if !links.is_empty() {
            let reference = s.service_ref.clone();
            services.push(ServiceLinks {
                id: s.service_id,
                reference,
                name,
                links,
            });
        }
    }
    Home {
        layout: Layout::signed_in(format!("Hello, {}", user.display_name), user, csrf),
        reports: matches!(
            user.role,
            Role::Commissioner | Role::Analyst | Role::ServiceManager
        ),
        patterns: user.role == Role::Analyst,
        manage_users: allowed(user, Action::ManageUsers, None),
        manage_projects: allowed(user, Action::ManageProjects, None),
        extracts: user.role == Role::Analyst,
        services,
        set_up_second_factor: user.totp_secret.is_none(),
        work: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::test_support::{HOSTILE, user};

    #[test]
    fn a_managers_start_page() {
        let scope = |r: &str| ServiceScope {
            service_id: 1,
            service_ref: r.to_string(),
            commissioner_org_ref: "O1".into(),
        };
        let u = user(Role::ServiceManager);
        let services = vec![
            (scope(HOSTILE), format!("Service {HOSTILE}")),
            (scope("OTHER"), "Not theirs".into()),
        ];
        let mut other = services;
        other[1].0.service_id = 2;
        let html = Markup::render(&home_page(&u, "token", other, "2026-27")).into_string();
        crate::routes::test_support::assert_hostile_escaped(&html);
        insta::assert_snapshot!(html);
    }
}
