//! A service's clients: the list, one client's record with their episodes, and the
//! service's audit trail. Every view of identifiable data is audited with the records
//! it showed.

use crate::authz::{Action, ServiceScope, allowed};
use crate::extract::{OnService, ViewAudit, ViewClients};
use crate::pages::{action_words, full_name, uk_date, uk_time, words};
use crate::view::{Cell, Layout, Link, Markup, Pagination, SummaryList, Table, Url};
use crate::{App, Ctx, WebError, audit, html};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use dcrs_domain::Entity;
use dcrs_store::pages::{
    AuditTrailRow, ClientEpisodeRow, ClientListRow, ClientRecordRow, ListPage,
};

fn service_url(s: &ServiceScope, tail: &[&str]) -> Url {
    let mut parts = vec!["services", s.service_ref.as_str()];
    parts.extend_from_slice(tail);
    Url::path(&parts)
}

#[derive(Template)]
#[template(path = "clients/list.html")]
struct ClientList<'a> {
    layout: Layout,
    register: Option<Url>,
    /// The possible duplicate clients, for the service's manager.
    duplicates: Option<Url>,
    table: Table<'a>,
    pages: Pagination,
}

/// Clients a page of the list holds.
const CLIENTS_A_PAGE: i64 = 50;

#[derive(serde::Deserialize)]
pub(crate) struct ListQuery {
    /// The page asked for; anything but a whole number from 1 is the first.
    page: Option<String>,
    /// A client just erased, to say so (when the service's tombstones have it).
    erased: Option<String>,
}

pub(crate) async fn clients(
    State(app): State<App>,
    OnService { ctx, service, .. }: OnService<ViewClients>,
    Query(q): Query<ListQuery>,
) -> Result<Response, WebError> {
    let number = q.page.and_then(|p| p.parse::<i64>().ok()).unwrap_or(1);
    let page = ListPage {
        number: number.max(1),
        size: CLIENTS_A_PAGE,
    };
    let (rows, total) = app.db().client_list(service.service_id, page).await?;
    let refs: Vec<&str> = rows.iter().map(|r| r.client_ref.as_str()).collect();
    let detail = serde_json::json!({"records": refs});
    let (user, id) = (&ctx.user.username, Some(service.service_id));
    audit(&app, user, "view.clients", id, None, detail).await?;
    let pages = Pagination::new(
        &service_url(&service, &["clients"]),
        page.number,
        page.size,
        total,
        ("client", "clients"),
    );
    let mut erased = None;
    // Said to the manager who erased, not to anyone who guesses a reference.
    if let Some(r) = q
        .erased
        .filter(|_| allowed(&ctx.user, Action::GovernRecords, Some(&service)))
    {
        let tombstones = app.db().erasures(service.service_id).await?;
        erased = tombstones
            .into_iter()
            .any(|(c, ..)| c == r)
            .then(|| format!("Client {r} erased, with every record of theirs"));
    }
    Ok(html(
        client_list(&ctx, &service, &rows, pages, erased.as_deref()).into_string(),
    ))
}

fn client_list(
    ctx: &Ctx,
    s: &ServiceScope,
    rows: &[ClientListRow],
    pages: Pagination,
    notice: Option<&str>,
) -> Markup {
    let headings = ["Name", "Date of birth", "Postcode", "Client reference"];
    let rows = rows
        .iter()
        .map(|c| {
            let href = service_url(s, &["clients", &c.client_ref]);
            let name = match full_name(&c.given_name, &c.family_name) {
                name if name.is_empty() => c.client_ref.clone(),
                name => name,
            };
            vec![
                Cell::Markup(Link::markup(&href, &name)),
                Cell::Text(uk_date(&c.date_of_birth)),
                Cell::Text(c.postcode.clone().unwrap_or_default()),
                Cell::Text(c.client_ref.clone()),
            ]
        })
        .collect();
    let title = format!("Clients of {}", s.service_ref);
    Markup::render(&ClientList {
        layout: match notice {
            Some(text) => Layout::signed_in(title, &ctx.user, &ctx.session.csrf_token).notice(text),
            None => Layout::signed_in(title, &ctx.user, &ctx.session.csrf_token),
        },
        register: allowed(&ctx.user, Action::EditClients, Some(s))
            .then(|| service_url(s, &["clients", "new"])),
        duplicates: allowed(&ctx.user, Action::GovernRecords, Some(s))
            .then(|| service_url(s, &["duplicates"])),
        table: Table {
            caption: "Clients",
            headings: &headings,
            rows,
        },
        pages,
    })
}

/// An episode as a client's record lists it.
struct EpisodeItem {
    href: Url,
    kind: String,
    from: String,
    to: Option<String>,
    reference: String,
}

#[derive(Template)]
#[template(path = "clients/record.html")]
struct ClientRecord<'a> {
    layout: Layout,
    summary: SummaryList<'a>,
    episodes: Vec<EpisodeItem>,
    refer: Option<Url>,
    /// Where their details are corrected, for those who may.
    change: Option<Url>,
    /// Where the service's manager answers the client's rights.
    rights: Option<Rights>,
    /// The restriction on processing their records, in words, if there is one.
    restricted: Option<String>,
}

/// A client's data protection rights, for the manager of their service: everything
/// held about them, restriction (or lifting it), erasure.
struct Rights {
    access: Url,
    restrict: (Url, &'static str),
    erase: Url,
}

pub(crate) async fn client(
    State(app): State<App>,
    OnService { ctx, service, .. }: OnService<ViewClients>,
    Path((_, client_ref)): Path<(String, String)>,
    notice: crate::routes::caseload::Notice,
) -> Result<Response, WebError> {
    let db = app.db();
    let c = db.client_record(service.service_id, &client_ref).await?;
    let c = c.ok_or(WebError::NotFound)?;
    let r = c.client_ref.clone();
    let detail = serde_json::json!({"records": [r.clone()]});
    let (user, id) = (&ctx.user.username, Some(service.service_id));
    audit(&app, user, "view.client", id, Some(r.clone()), detail).await?;
    let episodes = db.client_episodes(service.service_id, &r).await?;
    let restricted = db.restriction(service.service_id, &r).await?;
    let page = client_record(&ctx, &service, c, &episodes, notice.0, restricted);
    Ok(notice.shown(&app, html(page.into_string())))
}

/// Where a client lives, in words: the local authority by name (with its code for
/// analysts) and the deprivation quintile.
fn area(c: &ClientRecordRow) -> String {
    let lad = c.lad_cd.clone().map(|code| match &c.lad_name {
        Some(name) => format!("{name} ({code})"),
        None => code,
    });
    match (&c.postcode, lad, c.imd_quintile) {
        (None, ..) => "No address".into(),
        (Some(_), Some(lad), Some(q)) => {
            let meaning = match q {
                1 => "most deprived",
                5 => "least deprived",
                _ => "1 is the most deprived",
            };
            format!("{lad}, deprivation quintile {q} of 5 ({meaning})")
        }
        (Some(_), Some(lad), None) => lad,
        (Some(_), None, _) => "Postcode not in the reference data".into(),
    }
}

fn client_record(
    ctx: &Ctx,
    s: &ServiceScope,
    c: ClientRecordRow,
    episodes: &[ClientEpisodeRow],
    saved: Option<&str>,
    restricted: Option<dcrs_store::Restriction>,
) -> Markup {
    let name = [&c.given_name, &c.family_name].map(|n| n.clone().unwrap_or_default());
    let name = name.join(" ");
    let summary = SummaryList {
        rows: vec![
            ("Client reference", c.client_ref.clone()),
            ("Name", name.clone()),
            ("Date of birth", uk_date(&c.date_of_birth)),
            ("Sex", words(Entity::Client, "sex", &c.sex)),
            ("Postcode", c.postcode.clone().unwrap_or_default()),
            ("Area", area(&c)),
            ("NHS number", c.nhs_number.clone().unwrap_or_default()),
        ],
    };
    let episodes = episodes
        .iter()
        .map(|x| EpisodeItem {
            href: service_url(s, &["episodes", &x.episode_ref]),
            kind: words(Entity::Episode, "kind", &x.kind),
            from: uk_date(&x.first_contact_on),
            to: x.closed_on.as_deref().map(uk_date),
            reference: x.episode_ref.clone(),
        })
        .collect();
    let mut layout = Layout::signed_in(name, &ctx.user, &ctx.session.csrf_token)
        .back(&service_url(s, &["clients"]), "Back to the clients");
    if let Some(text) = saved {
        layout = layout.notice(text);
    }
    let governs = allowed(&ctx.user, Action::GovernRecords, Some(s));
    Markup::render(&ClientRecord {
        layout,
        summary,
        episodes,
        refer: allowed(&ctx.user, Action::EditClients, Some(s))
            .then(|| service_url(s, &["clients", &c.client_ref, "episodes", "new"])),
        change: allowed(&ctx.user, Action::EditClients, Some(s))
            .then(|| service_url(s, &["clients", &c.client_ref, "change"])),
        rights: governs.then(|| Rights {
            access: service_url(s, &["clients", &c.client_ref, "subject-access"]),
            restrict: (
                service_url(s, &["clients", &c.client_ref, "restrict"]),
                match restricted {
                    Some(_) => "Lift the restriction on processing",
                    None => "Restrict processing of their records",
                },
            ),
            erase: service_url(s, &["clients", &c.client_ref, "erase"]),
        }),
        restricted: restricted
            .as_ref()
            .map(crate::routes::governance::restricted_words),
    })
}

#[derive(Template)]
#[template(path = "audit_trail.html")]
struct AuditTrail<'a> {
    layout: Layout,
    service: &'a str,
    table: Table<'a>,
}

pub(crate) async fn audit_trail(
    State(app): State<App>,
    OnService { ctx, service, .. }: OnService<ViewAudit>,
) -> Result<Response, WebError> {
    let rows = app.db().audit_trail(service.service_id, 200).await?;
    let detail = serde_json::json!({
        "entries": rows.len(),
        "records": rows.iter().filter_map(|r| r.record_ref.clone()).collect::<Vec<_>>(),
    });
    let (user, id) = (&ctx.user.username, Some(service.service_id));
    audit(&app, user, "view.audit", id, None, detail).await?;
    Ok(html(audit_trail_page(&ctx, &service, rows).into_string()))
}

fn audit_trail_page(ctx: &Ctx, s: &ServiceScope, rows: Vec<AuditTrailRow>) -> Markup {
    let headings = ["When", "Who", "What", "Record", "Detail"];
    let rows = rows
        .into_iter()
        .map(|e| {
            [
                uk_time(&e.at),
                e.actor,
                action_words(&e.action).to_string(),
                e.record_ref.unwrap_or_default(),
                e.detail.unwrap_or_default(),
            ]
            .map(Cell::Text)
            .into()
        })
        .collect();
    let title = format!("Audit trail of {}", s.service_ref);
    Markup::render(&AuditTrail {
        layout: Layout::signed_in(title, &ctx.user, &ctx.session.csrf_token),
        service: &s.service_ref,
        table: Table {
            caption: "Audit trail",
            headings: &headings,
            rows,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::test_support::{HOSTILE, assert_hostile_escaped, ctx, scope};

    #[test]
    fn the_client_pages() {
        let (ctx, s) = (ctx(), scope(HOSTILE));
        let list = client_list(
            &ctx,
            &s,
            &[ClientListRow {
                client_ref: HOSTILE.into(),
                given_name: Some(HOSTILE.into()),
                family_name: None,
                date_of_birth: "1970-01-02".into(),
                postcode: Some("LS1 1AA".into()),
            }],
            Pagination::new(
                &service_url(&s, &["clients"]),
                2,
                50,
                120,
                ("client", "clients"),
            ),
            None,
        )
        .into_string();
        assert_hostile_escaped(&list);
        insta::assert_snapshot!("client_list", list);
        let record = ClientRecordRow {
            client_ref: HOSTILE.into(),
            given_name: Some("Zoë".into()),
            family_name: Some(HOSTILE.into()),
            date_of_birth: "1970-01-02".into(),
            sex: "F".into(),
            postcode: Some("LS1 1AA".into()),
            nhs_number: None,
            lad_cd: Some("E08000035".into()),
            lad_name: Some("Leeds".into()),
            imd_quintile: Some(1),
        };
        let episodes = [ClientEpisodeRow {
            episode_ref: HOSTILE.into(),
            kind: "lifestyle".into(),
            first_contact_on: "2010-04-01".into(),
            closed_on: Some("2010-09-30".into()),
        }];
        let page = client_record(&ctx, &s, record, &episodes, Some("Client registered"), None)
            .into_string();
        assert_hostile_escaped(&page);
        insta::assert_snapshot!("client_record", page);
        let trail = audit_trail_page(
            &ctx,
            &s,
            vec![AuditTrailRow {
                at: "2026-12-07T10:00:00Z".into(),
                actor: "sam".into(),
                action: "view.client".into(),
                record_ref: Some(HOSTILE.into()),
                detail: Some(format!("{{\"records\":[\"{HOSTILE}\"]}}")),
            }],
        )
        .into_string();
        assert_hostile_escaped(&trail);
        insta::assert_snapshot!("audit_trail", trail);
    }
}
