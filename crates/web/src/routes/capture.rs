//! Capture by health trainers and managers, on a phone: register a client, refer and open
//! an episode, baseline, exit and follow-up assessments, a plan with its goals, a
//! session, signposting and onward referrals, wider issues, and closing an episode.
//!
//! Every flow asks the minimum first, in the order of the conversation, and can be saved
//! as a draft to finish later. Every value goes through the import's own checks
//! (`dcrs_exchange::write_records`), so each rule of the dataset lives in one place; a
//! rejected form comes back with everything typed, each problem beside its field and in
//! the summary at the top.

use crate::extract::{EditClients, OnService, Posted, SignedIn};
use crate::users::{FieldError, Role};
use crate::view::{
    Csrf, DateInput, ErrorSummary, Input, Inset, Layout, Markup, Radios, Select, SummaryList, Url,
};
use crate::{App, Ctx, WebError, html, see_other};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use dcrs_domain::Entity;
use dcrs_domain::codes::*;
use dcrs_exchange::Fields;
use std::collections::HashMap;

/// What a field takes.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Date,
    Number,
    /// A code list, from the dataset's catalogue: the same list the parser takes.
    Codes(dcrs_domain::catalogue::Codes),
}

/// A field of a form: its name (the dataset's field name, or `goalN_…` on the plan),
/// label, hint and kind.
#[derive(Clone)]
struct F {
    name: &'static str,
    label: String,
    hint: Option<&'static str>,
    kind: Kind,
}

fn f(name: &'static str, label: &str, hint: Option<&'static str>, kind: Kind) -> F {
    F {
        name,
        label: label.to_string(),
        hint,
        kind,
    }
}

/// A form field that fills a dataset field as the catalogue describes it: its label
/// (with the unit), hint and kind are the catalogue's, so that a new field of the
/// dataset needs no words of its own here.
fn from(entity: Entity, name: &'static str) -> F {
    use dcrs_domain::catalogue::Shape;
    let a = dcrs_domain::catalogue::about(entity, name)
        .unwrap_or_else(|| panic!("{entity:?}.{name} is not a field of the dataset"));
    F {
        name,
        label: a.label_with_unit(),
        hint: a.hint,
        kind: match a.shape {
            Shape::Code(c) => Kind::Codes(c),
            Shape::Date => Kind::Date,
            Shape::Number { .. } => Kind::Number,
            Shape::Text { .. } | Shape::Reference => Kind::Text,
        },
    }
}

/// A coded field: its list is the catalogue's for the dataset field it fills, never one
/// written here, so the form offers exactly what the parser accepts.
fn coded(entity: Entity, field: &str) -> Kind {
    Kind::Codes(
        dcrs_domain::catalogue::codes_of(entity, field)
            .unwrap_or_else(|| panic!("{entity:?}.{field} is not a coded field")),
    )
}

/// The flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Client,
    Referral,
    Baseline,
    Exit,
    FollowUp,
    Plan,
    Session,
    Onward,
    WiderIssue,
    Close,
    /// One goal of a plan, changed or removed on its own.
    Goal,
    /// A saved plan's own record (when it was agreed), changed on its own, or removed
    /// with its goals.
    PlanAgreed,
    /// A registered client's details, corrected.
    ClientDetails,
}

impl Flow {
    pub(crate) const EPISODE_FLOWS: [Flow; 8] = [
        Flow::Baseline,
        Flow::Plan,
        Flow::Session,
        Flow::Onward,
        Flow::WiderIssue,
        Flow::Exit,
        Flow::FollowUp,
        Flow::Close,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Flow::Client => "client",
            Flow::Referral => "referral",
            Flow::Baseline => "baseline",
            Flow::Exit => "exit",
            Flow::FollowUp => "follow-up",
            Flow::Plan => "plan",
            Flow::Session => "session",
            Flow::Onward => "onward",
            Flow::WiderIssue => "wider-issue",
            Flow::Close => "close",
            Flow::Goal => "goal",
            Flow::PlanAgreed => "plan-agreed",
            Flow::ClientDetails => "client-details",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Flow> {
        [
            Flow::Client,
            Flow::Referral,
            Flow::Goal,
            Flow::PlanAgreed,
            Flow::ClientDetails,
        ]
        .into_iter()
        .chain(Flow::EPISODE_FLOWS)
        .find(|f| f.code() == text)
    }

    /// What a person is told once the flow's form is saved.
    pub(crate) fn saved(self) -> &'static str {
        match self {
            Flow::Client => "Client registered",
            Flow::Referral => "Referral recorded and episode opened",
            Flow::Baseline => "Baseline assessment saved",
            Flow::Exit => "Exit assessment saved",
            Flow::FollowUp => "Follow-up assessment saved",
            Flow::Plan => "Plan and goals saved",
            Flow::Session => "Session saved",
            Flow::Onward => "Signposting or onward referral saved",
            Flow::WiderIssue => "Wider issue saved",
            Flow::Close => "Episode closed",
            Flow::Goal => "Goal saved",
            Flow::PlanAgreed => "Plan saved",
            Flow::ClientDetails => "Client's details saved",
        }
    }

    /// The record a changeable flow saves, in the middle of a sentence.
    pub(crate) fn noun(self) -> &'static str {
        match self {
            Flow::Baseline => "baseline assessment",
            Flow::Exit => "exit assessment",
            Flow::FollowUp => "follow-up assessment",
            Flow::Session => "session",
            Flow::Onward => "signposting or onward referral",
            Flow::WiderIssue => "wider issue",
            Flow::Goal => "goal",
            Flow::PlanAgreed => "plan",
            Flow::ClientDetails => "client's details",
            _ => "record",
        }
    }

    /// What a person is told when a form they sent again had been saved already (its
    /// one-time key seen): nothing was saved a second time.
    pub(crate) fn already(self) -> &'static str {
        match self {
            Flow::Client => "This client was already registered: nothing was saved twice",
            Flow::Referral => "This episode was already opened: nothing was saved twice",
            Flow::Baseline => "This baseline assessment was already saved: nothing was saved twice",
            Flow::Exit => "This exit assessment was already saved: nothing was saved twice",
            Flow::FollowUp => {
                "This follow-up assessment was already saved: nothing was saved twice"
            }
            Flow::Plan => "This plan was already saved: nothing was saved twice",
            Flow::Session => "This session was already saved: nothing was saved twice",
            Flow::Onward => {
                "This signposting or onward referral was already saved: nothing was saved twice"
            }
            Flow::WiderIssue => "This wider issue was already saved: nothing was saved twice",
            Flow::Close => "This episode was already closed: nothing was saved twice",
            Flow::Goal => "This goal was already saved: nothing was saved twice",
            Flow::PlanAgreed => "This plan was already saved: nothing was saved twice",
            Flow::ClientDetails => {
                "The client's details were already saved: nothing was saved twice"
            }
        }
    }

    /// What a person is told once a saved record of the flow is removed.
    pub(crate) fn removed(self) -> &'static str {
        match self {
            Flow::Baseline => "Baseline assessment removed as entered in error",
            Flow::Exit => "Exit assessment removed as entered in error",
            Flow::FollowUp => "Follow-up assessment removed as entered in error",
            Flow::Session => "Session removed as entered in error",
            Flow::Onward => "Signposting or onward referral removed as entered in error",
            Flow::WiderIssue => "Wider issue removed as entered in error",
            Flow::Goal => "Goal removed as entered in error",
            Flow::PlanAgreed => "Plan and its goals removed as entered in error",
            _ => "Record removed as entered in error",
        }
    }

    /// The title of the form that changes a saved record of the flow.
    pub(crate) fn change_title(self) -> &'static str {
        match self {
            Flow::Baseline => "Change the baseline assessment",
            Flow::Exit => "Change the exit assessment",
            Flow::FollowUp => "Change the follow-up assessment",
            Flow::Session => "Change a session",
            Flow::Onward => "Change a signposting or onward referral",
            Flow::WiderIssue => "Change a wider issue",
            Flow::Goal => "Change a goal",
            Flow::PlanAgreed => "Change when the plan was agreed",
            Flow::ClientDetails => "Change the client's details",
            other => other.title(),
        }
    }

    pub(crate) fn title(self) -> &'static str {
        match self {
            Flow::Client => "Register a client",
            Flow::Referral => "Refer and open an episode",
            Flow::Baseline => "Baseline assessment",
            Flow::Exit => "Exit assessment",
            Flow::FollowUp => "Follow-up assessment",
            Flow::Plan => "Agree a plan and goals",
            Flow::Session => "Log a session",
            Flow::Onward => "Signposting or onward referral",
            Flow::WiderIssue => "Wider issue",
            Flow::Close => "Close the episode",
            Flow::Goal => "Goal",
            Flow::PlanAgreed => "Plan",
            Flow::ClientDetails => "The client's details",
        }
    }

    fn fields(self) -> Vec<F> {
        // Every measure of the catalogue, in the standard's order.
        let measures = || {
            dcrs_domain::catalogue::assessment_measures()
                .into_iter()
                .map(|m| from(Entity::Assessment, m.name))
                .collect::<Vec<F>>()
        };
        let assessed = from(Entity::Assessment, "assessed_on");
        match self {
            // Consent first: nothing is recorded without it.
            // The first page's questions, then the second's (see [`Step`]).
            Flow::Client | Flow::ClientDetails => FIRST_CONTACT
                .into_iter()
                .chain([
                    "ethnicity",
                    "gp_registered",
                    "gp_practice_code",
                    "employment",
                    "disability",
                ])
                .map(|n| from(Entity::Client, n))
                .collect(),
            Flow::Referral => vec![
                from(Entity::Referral, "received_on"),
                from(Entity::Referral, "source"),
                from(Entity::Episode, "kind"),
                from(Entity::Episode, "first_contact_on"),
                from(Entity::Episode, "primary_issue"),
                from(Entity::Referral, "reason"),
            ],
            Flow::Baseline | Flow::Exit | Flow::FollowUp => {
                let mut v = vec![assessed];
                v.extend(measures());
                v
            }
            Flow::Plan => vec![
                f("agreed_on", "Date the plan was agreed", None, Kind::Date),
                f(
                    "goal1_domain",
                    "First goal: area",
                    None,
                    coded(Entity::Goal, "domain"),
                ),
                f(
                    "goal1_description",
                    "First goal: what they will do",
                    None,
                    Kind::Text,
                ),
                f("goal1_target_on", "First goal: by when", None, Kind::Date),
                f(
                    "goal2_domain",
                    "Second goal: area",
                    Some("Optional"),
                    coded(Entity::Goal, "domain"),
                ),
                f(
                    "goal2_description",
                    "Second goal: what they will do",
                    None,
                    Kind::Text,
                ),
                f("goal2_target_on", "Second goal: by when", None, Kind::Date),
                f(
                    "goal3_domain",
                    "Third goal: area",
                    Some("Optional"),
                    coded(Entity::Goal, "domain"),
                ),
                f(
                    "goal3_description",
                    "Third goal: what they will do",
                    None,
                    Kind::Text,
                ),
                f("goal3_target_on", "Third goal: by when", None, Kind::Date),
            ],
            Flow::Session => [
                "held_on",
                "attended",
                "purpose",
                "mode",
                "venue",
                "duration_min",
            ]
            .into_iter()
            .map(|n| from(Entity::Session, n))
            .collect(),
            Flow::Onward => ["made_on", "action", "destination", "outcome"]
                .into_iter()
                .map(|n| from(Entity::OnwardReferral, n))
                .collect(),
            Flow::WiderIssue => vec![
                from(Entity::WiderIssue, "noted_on"),
                from(Entity::WiderIssue, "issue"),
            ],
            Flow::Close => vec![
                from(Entity::Episode, "closed_on"),
                f(
                    "exit_reason",
                    "Why it closed",
                    None,
                    coded(Entity::Episode, "exit_reason"),
                ),
            ],
            Flow::PlanAgreed => vec![f("agreed_on", "Date the plan was agreed", None, Kind::Date)],
            Flow::Goal => ["domain", "description", "target_on", "status", "status_on"]
                .into_iter()
                .map(|n| from(Entity::Goal, n))
                .collect(),
        }
    }
}

fn new_ref(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        crate::auth::hex(&crate::auth::random_bytes::<5>()).to_uppercase()
    )
}

/// Records of one entity to write, each given as field → value (missing fields blank).
fn records(entity: Entity, rows: &[Fields]) -> (Entity, Vec<Fields>) {
    (entity, rows.to_vec())
}

/// An episode with what the flows need to know of it.
#[derive(Debug, Clone)]
pub(crate) struct EpisodeInfo {
    pub(crate) episode_ref: String,
    pub(crate) referral_ref: String,
    pub(crate) lead_worker_ref: String,
    pub(crate) lead_worker_name: String,
    pub(crate) kind: String,
    pub(crate) first_contact_on: String,
    pub(crate) primary_issue: String,
    pub(crate) closed_on: Option<String>,
    pub(crate) exit_reason: Option<String>,
    pub(crate) client_ref: String,
    pub(crate) client_name: String,
}

pub(crate) async fn episode(
    app: &App,
    service_id: i64,
    episode_ref: &str,
) -> Result<Option<EpisodeInfo>, WebError> {
    Ok(app
        .db()
        .episode_row(service_id, episode_ref)
        .await?
        .map(|r| EpisodeInfo {
            client_name: format!(
                "{} {}",
                r.given_name.unwrap_or_default(),
                r.family_name.unwrap_or_default()
            )
            .trim()
            .to_string(),
            episode_ref: r.episode_ref,
            referral_ref: r.referral_ref,
            lead_worker_ref: r.lead_worker_ref,
            lead_worker_name: r.lead_worker_name,
            kind: r.kind,
            first_contact_on: r.first_contact_on,
            primary_issue: r.primary_issue,
            closed_on: r.closed_on,
            exit_reason: r.exit_reason,
            client_ref: r.client_ref,
        }))
}

/// What a flow is about: a new client, a client (for a referral) or an episode.
pub(crate) enum Subject {
    New,
    Client(String, String),
    Episode(Box<EpisodeInfo>),
}

pub(crate) async fn subject(
    app: &App,
    service_id: i64,
    flow: Flow,
    subject_ref: &str,
) -> Result<Subject, WebError> {
    match flow {
        Flow::Client => Ok(Subject::New),
        Flow::Referral | Flow::ClientDetails => {
            let (r, g, f) = app
                .db()
                .client_name(service_id, subject_ref)
                .await?
                .ok_or(WebError::NotFound)?;
            Ok(Subject::Client(
                r,
                format!("{} {}", g.unwrap_or_default(), f.unwrap_or_default())
                    .trim()
                    .to_string(),
            ))
        }
        _ => Ok(Subject::Episode(Box::new(
            episode(app, service_id, subject_ref)
                .await?
                .ok_or(WebError::NotFound)?,
        ))),
    }
}

/// The records a form shows: the client and, for an episode, the episode.
fn subject_records(subj: &Subject) -> Vec<String> {
    match subj {
        Subject::New => Vec::new(),
        Subject::Client(r, _) => vec![r.clone()],
        Subject::Episode(e) => vec![e.client_ref.clone(), e.episode_ref.clone()],
    }
}

fn action_url(service_ref: &str, flow: Flow, subject_ref: &str) -> String {
    flow_url(service_ref, flow, subject_ref).to_string()
}

#[derive(Template)]
#[template(path = "capture/form.html")]
struct FormPage<'a> {
    layout: Layout,
    heading: String,
    errors: ErrorSummary<'a>,
    action: Url,
    csrf: Csrf<'a>,
    draft_id: Option<&'a str>,
    once: Option<&'a str>,
    fields: Vec<Markup>,
    /// Whether the form may be kept as a draft (not when it changes a saved record).
    draft: bool,
    /// Where a saved record being changed is removed instead, as entered in error.
    remove: Option<(Url, &'static str)>,
    /// The answers of the form's other page, carried with this one.
    hidden: Vec<(&'static str, String)>,
    /// The page of a form in two, as its `step` (`1` or `2`).
    step: Option<&'static str>,
    /// The main button's action and words.
    button: (&'static str, &'static str),
    /// Whether the form goes back to its first page from a button (its second page).
    to_first: bool,
    /// The version of the saved record a change form was opened on.
    version: Option<&'a str>,
}

/// Which page of a form in two is shown: registering a client asks at first contact
/// only what the conversation starts with (consent, who they are, where they live), and
/// the equality and GP questions on a second page. Other forms are one page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Whole,
    First,
    Second,
}

/// The questions of the client form's first page, in the order they are asked.
const FIRST_CONTACT: [&str; 8] = [
    "consent_to_record",
    "consent_to_share_with_gp",
    "given_name",
    "family_name",
    "date_of_birth",
    "sex",
    "postcode",
    "nhs_number",
];

impl Step {
    /// The page a flow's form opens on.
    fn first(flow: Flow, changing: Option<&str>) -> Step {
        match (flow, changing) {
            (Flow::Client, None) => Step::First,
            _ => Step::Whole,
        }
    }

    /// The page a posted form was sent from.
    fn posted(flow: Flow, changing: Option<&str>, form: &HashMap<String, String>) -> Step {
        match (
            Step::first(flow, changing),
            form.get("step").map(String::as_str),
        ) {
            (Step::Whole, _) => Step::Whole,
            (_, Some("2")) => Step::Second,
            _ => Step::First,
        }
    }

    /// Whether this page asks the field (the other page's answers ride along hidden).
    fn asks(self, field: &str) -> bool {
        match self {
            Step::Whole => true,
            Step::First => FIRST_CONTACT.contains(&field),
            Step::Second => !FIRST_CONTACT.contains(&field),
        }
    }

    /// The page to show these errors on: the first page while any is about it.
    fn of_errors(self, errors: &[FieldError]) -> Step {
        match self {
            Step::Whole => Step::Whole,
            _ if errors.iter().any(|e| FIRST_CONTACT.contains(&e.field)) => Step::First,
            _ => Step::Second,
        }
    }
}

/// What a form is for and where it is: the signed-in user, the service, the flow and
/// what it is about.
struct Place<'a> {
    ctx: &'a Ctx,
    service_ref: &'a str,
    flow: Flow,
    subject_ref: &'a str,
    /// Today in the UK: the forms' default for dates.
    today: chrono::NaiveDate,
    /// The saved record the form changes, if it changes one rather than adding.
    changing: Option<&'a str>,
    /// The page of the form shown.
    step: Step,
}

/// A flow's form with its values, errors and notes (each note after its field); `extra`
/// questions come first.
fn form_page(
    place: &Place,
    subject: &Subject,
    values: &HashMap<String, String>,
    errors: &[FieldError],
    notes: &[(&str, String)],
    extra: Vec<Markup>,
) -> Response {
    let flow = place.flow;
    let mut fields = extra;
    let mut hidden = Vec::new();
    for field in flow.fields() {
        if !place.step.asks(field.name) {
            let value = values.get(field.name).cloned().unwrap_or_default();
            hidden.push((field.name, value));
            continue;
        }
        let value = values
            .get(field.name)
            .cloned()
            .unwrap_or_else(|| match field.kind {
                Kind::Date if !field.name.starts_with("goal") && field.name != "date_of_birth" => {
                    place.today.to_string()
                }
                _ => String::new(),
            });
        fields.push(field_markup(&field, &value, errors));
        // The check sits by what it checks, and its answer under it.
        if let Some(words) = check_after(flow, field.name) {
            fields.push(Markup::render(&CheckButton { words }));
        }
        for (after, note) in notes {
            if *after == field.name {
                fields.push(Markup::render(&Inset { text: note }));
            }
        }
    }
    let token = &place.ctx.session.csrf_token;
    let (title, action) = match place.changing {
        Some(_) if flow == Flow::ClientDetails => (
            flow.change_title(),
            Url::path(&[
                "services",
                place.service_ref,
                "clients",
                place.subject_ref,
                "change",
            ]),
        ),
        Some(reference) => (
            flow.change_title(),
            Url::path(&[
                "services",
                place.service_ref,
                "episodes",
                place.subject_ref,
                flow.code(),
                reference,
            ]),
        ),
        None => (
            flow.title(),
            flow_url(place.service_ref, flow, place.subject_ref),
        ),
    };
    let mut layout = Layout::signed_in(title, &place.ctx.user, token).failed(errors);
    // A link back from the second page would lose the first's answers: its button goes
    // back instead.
    if place.step != Step::Second {
        layout = layout.back(&back_to(place), back_words(subject));
    }
    let (step, heading) = match place.step {
        Step::Whole => (None, heading(subject)),
        Step::First => (Some("1"), "Page 1 of 2: consent and who they are.".into()),
        Step::Second => {
            let typed = |f: &str| values.get(f).map_or("", |v| v.trim());
            let name = format!("{} {}", typed("given_name"), typed("family_name"));
            let name = match name.trim() {
                "" => "the client",
                n => n,
            };
            (Some("2"), format!("Page 2 of 2: about {name}."))
        }
    };
    let page = FormPage {
        layout,
        heading,
        errors: ErrorSummary { errors },
        action,
        draft: place.changing.is_none(),
        // A client is erased, not removed as entered in error (docs/governance.md).
        remove: place
            .changing
            .filter(|_| flow != Flow::ClientDetails)
            .map(|reference| {
                let at = ToRemove {
                    service_ref: place.service_ref,
                    episode_ref: place.subject_ref,
                    flow,
                    record_ref: reference,
                };
                (at.action(), flow.noun())
            }),
        csrf: Csrf { token },
        draft_id: values.get("draft_id").map(String::as_str),
        once: values.get("once").map(String::as_str),
        fields,
        hidden,
        step,
        button: match place.step {
            Step::First => ("continue", "Continue"),
            _ => ("save", "Save"),
        },
        to_first: place.step == Step::Second,
        version: values.get("version").map(String::as_str),
    };
    html(Markup::render(&page).into_string())
}

/// Where a form's back link goes: the episode, the client, or the caseload.
fn back_to(place: &Place) -> Url {
    let (service, subject) = (place.service_ref, place.subject_ref);
    match place.flow {
        Flow::Client => Url::path(&["services", service, "caseload"]),
        Flow::ClientDetails => Url::path(&["services", service, "clients", subject]),
        Flow::Referral => Url::path(&["services", service, "clients", subject]),
        _ => Url::path(&["services", service, "episodes", subject]),
    }
}

fn back_words(subject: &Subject) -> &'static str {
    match subject {
        Subject::New => "Back to the caseload",
        Subject::Client(..) => "Back to the client",
        Subject::Episode(_) => "Back to the episode",
    }
}

/// One field of a flow as its component: a select of the catalogue's words, a date, a
/// number or text.
/// Code lists of this many options or fewer are asked as radios, longer ones as selects.
const RADIOS_AT_MOST: usize = 4;

fn field_markup(field: &F, value: &str, errors: &[FieldError]) -> Markup {
    let input = |kind| {
        let mut i = Input::text(field.name, &field.label, value, errors).kind(kind);
        i.hint = field.hint;
        i
    };
    match field.kind {
        // A few options are radios, so that each can be seen and chosen with one tap.
        Kind::Codes(list) if list.words().len() <= RADIOS_AT_MOST => {
            let radios = Radios::new(field.name, &field.label, list.words(), value, errors);
            Markup::render(&Radios {
                hint: field.hint,
                ..radios
            })
        }
        Kind::Codes(list) => {
            let mut options: Vec<(&str, &str)> = vec![("", "Select one")];
            options.extend(list.words());
            let select = Select::new(field.name, &field.label, options, value, errors);
            Markup::render(&select)
        }
        Kind::Date if field.name == "date_of_birth" => {
            Markup::render(&DateInput::new(field.name, &field.label, value, errors))
        }
        Kind::Date => Markup::render(&input("date")),
        Kind::Number => Markup::render(&input("text").decimal()),
        Kind::Text => Markup::render(&input("text")),
    }
}

/// The button that checks a form without saving it (the postcode, a BMI), placed after
/// the field it follows.
#[derive(Template)]
#[template(
    source = r#"<p><button class="button button--secondary" type="submit" name="do" value="check">{{ words }}</button></p>"#,
    ext = "html"
)]
struct CheckButton {
    words: &'static str,
}

/// The check a flow offers after a field, if any: the postcode after it is typed, a BMI
/// once weight is in.
fn check_after(flow: Flow, field: &str) -> Option<&'static str> {
    match (flow, field) {
        (Flow::Client | Flow::ClientDetails, "postcode") => Some("Check the postcode"),
        (Flow::Baseline | Flow::Exit | Flow::FollowUp, "weight_kg") => Some("Work out BMI"),
        _ => None,
    }
}

/// A new one-time key for a form: a resubmission of the same form (a reload after the
/// answer was lost, a second tap) is recognised and not stored twice.
fn once_key() -> String {
    crate::auth::hex(&crate::auth::random_bytes::<16>())
}

/// A one-time key as a form sent it: 32 hex digits, or none.
fn sent_once(form: &HashMap<String, String>) -> Option<String> {
    form.get("once")
        .filter(|k| k.len() == 32 && k.bytes().all(|b| b.is_ascii_hexdigit()))
        .cloned()
}

fn heading(subject: &Subject) -> String {
    match subject {
        Subject::New => "A new client of the service.".into(),
        Subject::Client(r, name) => format!("For {name} ({r})."),
        Subject::Episode(e) => format!(
            "For {} ({}), episode {}.",
            e.client_name, e.client_ref, e.episode_ref
        ),
    }
}

/// The form of a flow, empty or from a draft.
async fn show(
    app: App,
    OnService {
        ctx, service: s, ..
    }: OnService<EditClients>,
    flow: Flow,
    subject_ref: String,
    draft: Option<i64>,
    changing: Option<String>,
) -> Result<Response, WebError> {
    let subj = subject(&app, s.service_id, flow, &subject_ref).await?;
    let mut values = HashMap::new();
    if let Some(reference) = &changing {
        values = stored_record(&app, s.service_id, flow, &subj, reference).await?;
        let version = version_of(&values);
        values.insert("version".into(), version);
    } else if let Some(id) = draft {
        let text = app
            .db()
            .draft_values(id, ctx.user.user_id, s.service_id)
            .await?;
        values = serde_json::from_str(&text.ok_or(WebError::NotFound)?).unwrap_or_default();
        values.insert("draft_id".into(), id.to_string());
    }
    values.insert("once".into(), once_key());
    let mut records = subject_records(&subj);
    records.extend(changing.clone());
    let detail = serde_json::json!({"form": flow.code(), "records": records, "draft": draft});
    let (user, sid) = (&ctx.user.username, Some(s.service_id));
    crate::audit(
        &app,
        user,
        "view.form",
        sid,
        Some(subject_ref.clone()),
        detail,
    )
    .await?;
    let extra = flow_extra(&app, &ctx, s.service_id, flow, &subject_ref, &values).await?;
    let place = Place {
        ctx: &ctx,
        service_ref: &s.service_ref,
        flow,
        subject_ref: &subject_ref,
        today: app.today(),
        changing: changing.as_deref(),
        step: Step::first(flow, changing.as_deref()),
    };
    Ok(form_page(&place, &subj, &values, &[], &[], extra))
}

/// A flow's form as posted: every field, blank ones too (so a rejected form shows
/// exactly what was typed), the extra questions' answers, the draft it continues and
/// its one-time key (kept when the form comes back with problems, so that the corrected
/// form is still the same submission).
fn posted_values(flow: Flow, form: &HashMap<String, String>) -> HashMap<String, String> {
    let mut values: HashMap<String, String> = flow
        .fields()
        .iter()
        .map(|f| {
            let v = form
                .get(f.name)
                .map_or(String::new(), |v| v.trim().to_string());
            (f.name.to_string(), v)
        })
        .collect();
    for (k, v) in form {
        if k.starts_with("status_") || k == "lead_worker_ref" || k == "draft_id" || k == "version" {
            values.insert(k.clone(), v.clone());
        }
    }
    for f in flow.fields() {
        if let Some(date) = DateInput::joined(f.name, form) {
            values.insert(f.name.to_string(), date);
        }
    }
    values.insert("once".into(), sent_once(form).unwrap_or_else(once_key));
    values
}

/// Saves, checks or keeps as a draft.
async fn submit(
    app: App,
    OnService { service: s, .. }: OnService<EditClients>,
    flow: Flow,
    subject_ref: String,
    changing: Option<String>,
    Posted { ctx, form, .. }: Posted<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let subj = subject(&app, s.service_id, flow, &subject_ref).await?;
    let values = posted_values(flow, &form);
    let extra = flow_extra(&app, &ctx, s.service_id, flow, &subject_ref, &values).await?;
    let sent_from = Step::posted(flow, changing.as_deref(), &form);
    // A change saved over a record someone else changed since the form was opened is
    // shown back with what is stored now, not written: saving again keeps the answers.
    let mut values = values;
    let mut conflict = None;
    let saving = !matches!(form.get("do").map(String::as_str), Some("check" | "draft"));
    if let (Some(reference), Some(opened), true) = (&changing, form.get("version"), saving) {
        let now = stored_record(&app, s.service_id, flow, &subj, reference).await?;
        let current = version_of(&now);
        if *opened != current {
            values.insert("version".into(), current);
            conflict = Some(differences(flow, &now, &values));
        }
    }
    let values = values;
    let place = Place {
        ctx: &ctx,
        service_ref: &s.service_ref,
        flow,
        subject_ref: &subject_ref,
        today: app.today(),
        changing: changing.as_deref(),
        step: sent_from,
    };
    let render = |step: Step, errors: &[FieldError], notes: &[(&str, String)]| {
        let place = Place { step, ..place };
        form_page(&place, &subj, &values, errors, notes, extra.clone())
    };
    // The button pressed (named `do`: `action` is a field of onward referrals).
    match form.get("do").map_or("save", String::as_str) {
        "draft" if changing.is_none() => keep_draft(&app, &place, s.service_id, &values).await,
        "check" => {
            let notes = check_notes(&app, s.service_id, flow, &subj, &values).await?;
            Ok(render(sent_from, &[], &notes))
        }
        "back" if sent_from == Step::Second => Ok(render(Step::First, &[], &[])),
        "continue" if sent_from == Step::First => {
            let errors = first_page_errors(flow, &values, app.today());
            let next = match errors.is_empty() {
                true => Step::Second,
                false => Step::First,
            };
            Ok(render(next, &errors, &[]))
        }
        _ if conflict.is_some() => {
            let notes = conflict.unwrap_or_default();
            let field = notes.first().map_or_else(|| first_field(flow), |(f, _)| *f);
            let message = format!(
                "This {} was changed by someone else after you opened it. What is stored now is shown under each answer that differs: save again to keep your answers, or go back to keep what is stored",
                flow.noun()
            );
            let errors = [FieldError::new(field, message)];
            Ok(render(sent_from, &errors, &notes))
        }
        _ => {
            match save(&app, &place, s.service_id, &subj, &values, sent_once(&form)).await? {
                Ok(Saved { to, already: false }) => Ok(crate::routes::caseload::with_notice(
                    &app,
                    see_other(&to),
                    flow,
                )),
                Ok(Saved { to, already: true }) => Ok(
                    crate::routes::caseload::with_already_notice(&app, see_other(&to), flow),
                ),
                Err(errors) => {
                    let step = sent_from.of_errors(&errors);
                    // The page shown links each of its errors to its field.
                    let shown: Vec<FieldError> =
                        errors.into_iter().filter(|e| step.asks(e.field)).collect();
                    Ok(render(step, &shown, &[]))
                }
            }
        }
    }
}

/// A saved record's version as a change form carries it: a digest of its stored values,
/// so that a change saved over someone else's is noticed.
fn version_of(stored: &HashMap<String, String>) -> String {
    use sha2::Digest;
    let mut fields: Vec<(&String, &String)> = stored
        .iter()
        .filter(|(k, _)| *k != "version" && *k != "once")
        .collect();
    fields.sort();
    let mut h = sha2::Sha256::new();
    for (k, v) in fields {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
        h.update([0]);
    }
    crate::auth::hex(&h.finalize()[..12])
}

/// Each answer of the form that differs from what is stored now, with the stored value
/// in words, to show under it.
fn differences(
    flow: Flow,
    now: &HashMap<String, String>,
    typed: &HashMap<String, String>,
) -> Vec<(&'static str, String)> {
    let entity = flow_entity(flow);
    flow.fields()
        .into_iter()
        .filter_map(|f| {
            let stored = now.get(f.name).map_or("", String::as_str);
            if typed.get(f.name).map_or("", String::as_str) == stored {
                return None;
            }
            let shown = match (stored, f.kind) {
                ("", _) => "nothing".to_string(),
                (v, Kind::Date) => crate::pages::uk_date(v),
                (v, _) => crate::pages::words(entity, f.name, v),
            };
            Some((f.name, format!("Now stored: {shown}")))
        })
        .collect()
}

/// The problems with the answers on the client form's first page, as the write path's
/// reading of a client finds them (the second page's questions, not yet asked, aside).
fn first_page_errors(
    flow: Flow,
    values: &HashMap<String, String>,
    today: chrono::NaiveDate,
) -> Vec<FieldError> {
    let Err(problems) =
        dcrs_domain::record::parse_record(Entity::Client, values, today).map(|_| ())
    else {
        return Vec::new();
    };
    // In the form's own order, whatever order the reading found them in.
    FIRST_CONTACT
        .iter()
        .filter_map(|field| {
            let p = problems.iter().find(|p| p.field == *field)?;
            Some(FieldError::new(
                field,
                plain(flow, field, &p.value, &p.reason),
            ))
        })
        .collect()
}

/// Keeps what was typed as a draft of the user's, and goes back to the caseload.
async fn keep_draft(
    app: &App,
    place: &Place<'_>,
    service_id: i64,
    values: &HashMap<String, String>,
) -> Result<Response, WebError> {
    let ctx = place.ctx;
    let draft_id: Option<i64> = values.get("draft_id").and_then(|d| d.parse().ok());
    let mut kept = values.clone();
    kept.remove("draft_id");
    kept.remove("once");
    let text = serde_json::to_string(&kept).expect("strings");
    let now = app.now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let of = dcrs_store::pages::DraftOf {
        user_id: ctx.user.user_id,
        service_id,
        flow: place.flow.code(),
        subject_ref: place.subject_ref,
    };
    app.db().save_draft(draft_id, of, text, now).await?;
    let detail = serde_json::json!({"flow": place.flow.code()});
    let subject = Some(place.subject_ref.to_string());
    crate::audit(
        app,
        &ctx.user.username,
        "draft.save",
        Some(service_id),
        subject,
        detail,
    )
    .await?;
    let caseload = Url::path(&["services", place.service_ref, "caseload"]).with("saved", "draft");
    Ok(see_other(&caseload.to_string()))
}

/// Where a saved form goes next, and whether this submission was a repeat of one saved
/// before (its one-time key seen), which wrote nothing.
struct Saved {
    to: String,
    already: bool,
}

/// Writes a flow's records through the write path: where to go next, or the problems,
/// each on its field of the form. A repeat of a form already saved (its one-time key
/// seen) goes where the first went, writing nothing.
async fn save(
    app: &App,
    place: &Place<'_>,
    service_id: i64,
    subj: &Subject,
    values: &HashMap<String, String>,
    once: Option<String>,
) -> Result<Result<Saved, Vec<FieldError>>, WebError> {
    let (ctx, flow) = (place.ctx, place.flow);
    let worker = lead_worker(ctx, subj, values);
    let (svc, id) = (place.service_ref, service_id);
    let (records, target) = match place.changing {
        Some(reference) => changed_records(app, place, id, subj, values, reference).await?,
        None => build(flow, svc, subj, values, &worker, app, id).await?,
    };
    let target = target.to_string();
    if records.is_empty() {
        let message = "Enter at least the first goal";
        return Ok(Err(vec![FieldError::new(first_field(flow), message)]));
    }
    let options = write_options(app, ctx);
    let once = once.map(|key| dcrs_exchange::OnceKey {
        key,
        answer: target.clone(),
    });
    let report =
        dcrs_exchange::write_records(app.db(), &records, &options, "application", once.as_ref())
            .await
            .map_err(|e| WebError::Internal(e.to_string()))?;
    if let Some(first) = report.already {
        return Ok(Ok(Saved {
            to: first,
            already: true,
        }));
    }
    if !report.committed {
        return Ok(Err(form_errors(flow, &report)));
    }
    if let Some(id) = values.get("draft_id").and_then(|d| d.parse().ok()) {
        app.db().delete_draft(id, ctx.user.user_id).await?;
    }
    Ok(Ok(Saved {
        to: target,
        already: false,
    }))
}

/// How a form's records go through the write path: as the signed-in user, today in the
/// UK, under the dataset's rules.
pub(crate) fn write_options(app: &App, ctx: &Ctx) -> dcrs_exchange::ImportOptions {
    dcrs_exchange::ImportOptions {
        dry_run: false,
        today: app.today(),
        rules: Default::default(),
        actor: ctx.user.username.clone(),
        only_new: false,
    }
}

/// The worker a form's records are led by: the trainer filling it in, the episode's
/// lead worker, or the one chosen on the form.
fn lead_worker(ctx: &Ctx, subj: &Subject, values: &HashMap<String, String>) -> String {
    match (&ctx.user.role, &ctx.user.worker_ref, subj) {
        (Role::HealthTrainer, Some(w), _) => w.clone(),
        (_, _, Subject::Episode(e)) => e.lead_worker_ref.clone(),
        _ => values.get("lead_worker_ref").cloned().unwrap_or_default(),
    }
}

/// The write path's refusals, each on the field of the form it is about, in words for
/// the person filling it in.
fn form_errors(flow: Flow, report: &dcrs_exchange::ImportReport) -> Vec<FieldError> {
    report
        .rejections
        .iter()
        .map(|r| {
            let field = field_of(flow, &r.file, &r.field, r.record.as_deref());
            FieldError::new(field, plain(flow, field, &r.value, &r.reason))
        })
        .collect()
}

async fn check_notes(
    app: &App,
    service_id: i64,
    flow: Flow,
    subj: &Subject,
    values: &HashMap<String, String>,
) -> Result<Vec<(&'static str, String)>, WebError> {
    let mut notes = Vec::new();
    match flow {
        Flow::Client | Flow::ClientDetails => {
            let pc = values.get("postcode").cloned().unwrap_or_default();
            if !pc.is_empty() {
                notes.push(("postcode", postcode_area(app, &pc).await?));
            }
        }
        Flow::Baseline | Flow::Exit | Flow::FollowUp => {
            let weight: Option<f64> = values.get("weight_kg").and_then(|v| v.parse().ok());
            let mut height: Option<f64> = values.get("height_cm").and_then(|v| v.parse().ok());
            if height.is_none()
                && let Subject::Episode(e) = subj
            {
                height = app.db().latest_height(service_id, &e.client_ref).await?;
            }
            let text = match (weight, height) {
                (Some(w), Some(h)) if h > 0.0 => {
                    let b = dcrs_domain::rules::bmi(w, h);
                    format!(
                        "BMI {b:.1} (weight {w} kg, height {h} cm).{}",
                        if (10.0..=90.0).contains(&b) {
                            ""
                        } else {
                            " This is outside 10 to 90: check the weight and height."
                        }
                    )
                }
                (None, _) => "Enter a weight to work out the BMI.".into(),
                _ => "Enter a height: none has been recorded for this client yet.".into(),
            };
            notes.push(("weight_kg", text));
        }
        _ => {}
    }
    Ok(notes)
}

/// What the reference data says about a postcode, in words.
async fn postcode_area(app: &App, postcode: &str) -> Result<String, WebError> {
    let Ok(pc) = dcrs_domain::types::Postcode::parse(postcode) else {
        return Ok(format!(
            "\"{postcode}\" is not a postcode. Check it, or leave it empty."
        ));
    };
    let pc = pc.as_str().to_string();
    let year = app.db().imd_year().await?;
    let row = app.db().postcode_area(&pc, year).await?;
    Ok(match row {
        Some((lsoa, lad, q)) => format!(
            "{pc} is in {} (area {lsoa}), deprivation quintile {} of 5 (1 is the most deprived).",
            lad.unwrap_or_else(|| "an area not in the reference data".into()),
            q.map_or("not known".to_string(), |q| q.to_string())
        ),
        None => format!(
            "{pc} is not in the postcode reference data: the client can still be registered, without an area or quintile."
        ),
    })
}

/// The records a flow writes, and where to go after.
async fn build(
    flow: Flow,
    service_ref: &str,
    subj: &Subject,
    v: &HashMap<String, String>,
    worker: &str,
    app: &App,
    service_id: i64,
) -> Result<(Vec<(Entity, Vec<Fields>)>, Url), WebError> {
    let form = FormRecords {
        service_ref,
        values: v,
    };
    let episode = match subj {
        Subject::Episode(e) => Some(e.as_ref()),
        _ => None,
    };
    let episode_page =
        |e: &EpisodeInfo| Url::path(&["services", service_ref, "episodes", &e.episode_ref]);
    let in_episode = |entity, own, prefix, names: &[&'static str]| {
        let e = episode.ok_or(WebError::NotFound)?;
        let mut m = form.record(own, new_ref(prefix), names);
        m.insert("episode_ref", e.episode_ref.clone());
        Ok::<_, WebError>((vec![records(entity, &[m])], episode_page(e)))
    };
    let names = |flow: Flow| flow.fields().iter().map(|f| f.name).collect::<Vec<_>>();
    Ok(match flow {
        Flow::Client => {
            let r = new_ref("APP");
            let m = form.record("client_ref", r.clone(), &names(flow));
            let page = Url::path(&["services", service_ref, "clients", &r]);
            (vec![records(Entity::Client, &[m])], page)
        }
        Flow::Referral => {
            let Subject::Client(client_ref, _) = subj else {
                return Err(WebError::NotFound);
            };
            let (records, episode_ref) = form.referral(client_ref, worker);
            (
                records,
                Url::path(&["services", service_ref, "episodes", &episode_ref]),
            )
        }
        Flow::Baseline | Flow::Exit | Flow::FollowUp => {
            let (entities, page) =
                in_episode(Entity::Assessment, "assessment_ref", "AS", &names(flow))?;
            let occasion = match flow {
                Flow::Baseline => "baseline",
                Flow::Exit => "exit",
                _ => "follow_up",
            };
            let mut entities = entities;
            entities[0].1[0].insert("occasion", occasion.to_string());
            (entities, page)
        }
        Flow::Plan => {
            let e = episode.ok_or(WebError::NotFound)?;
            match form.plan(&e.episode_ref) {
                Some(records) => (records, episode_page(e)),
                None => (Vec::new(), Url::path::<&str>(&[])),
            }
        }
        Flow::Session => {
            let names = [
                "held_on",
                "duration_min",
                "mode",
                "venue",
                "purpose",
                "attended",
            ];
            let (mut entities, page) = in_episode(Entity::Session, "session_ref", "SE", &names)?;
            entities[0].1[0].insert("worker_ref", worker.to_string());
            (entities, page)
        }
        Flow::Onward => {
            let names = ["made_on", "action", "destination", "outcome"];
            in_episode(Entity::OnwardReferral, "onward_ref", "ON", &names)?
        }
        Flow::WiderIssue => {
            let names = ["noted_on", "issue"];
            in_episode(Entity::WiderIssue, "wider_issue_ref", "WI", &names)?
        }
        Flow::Close => {
            let e = episode.ok_or(WebError::NotFound)?;
            let goals = app.db().episode_goals(service_id, &e.episode_ref).await?;
            (form.close(e, goals), episode_page(e))
        }
        // A goal is added with its plan, and a plan with its goals; alone each is only
        // changed or removed.
        Flow::Goal | Flow::PlanAgreed | Flow::ClientDetails => return Err(WebError::NotFound),
    })
}

/// A form's values made into records of the service.
struct FormRecords<'a> {
    service_ref: &'a str,
    values: &'a HashMap<String, String>,
}

impl FormRecords<'_> {
    /// The value typed into a field; blank when it was not.
    fn get(&self, name: &str) -> String {
        self.values.get(name).cloned().unwrap_or_default()
    }

    /// A record of the service with its own reference and these fields of the form.
    fn record(&self, own_field: &'static str, own: String, names: &[&'static str]) -> Fields {
        let mut m = HashMap::new();
        m.insert(own_field, own);
        m.insert("service_ref", self.service_ref.to_string());
        for n in names {
            m.insert(*n, self.get(n));
        }
        m
    }

    /// A referral and the episode it opens, led by the worker; and the episode's
    /// reference.
    fn referral(&self, client_ref: &str, worker: &str) -> (Vec<(Entity, Vec<Fields>)>, String) {
        let (rr, er) = (new_ref("REF"), new_ref("EP"));
        let names = ["received_on", "source", "reason"];
        let mut r = self.record("referral_ref", rr.clone(), &names);
        r.insert("client_ref", client_ref.to_string());
        let names = ["kind", "first_contact_on", "primary_issue"];
        let mut e = self.record("episode_ref", er.clone(), &names);
        e.insert("referral_ref", rr);
        e.insert("lead_worker_ref", worker.to_string());
        let records = vec![
            records(Entity::Referral, &[r]),
            records(Entity::Episode, &[e]),
        ];
        (records, er)
    }

    /// A plan and its goals (up to three; a goal with neither area nor words is left
    /// out); `None` when no goal was given.
    fn plan(&self, episode_ref: &str) -> Option<Vec<(Entity, Vec<Fields>)>> {
        let pr = new_ref("PL");
        let mut p = self.record("plan_ref", pr.clone(), &["agreed_on"]);
        p.insert("episode_ref", episode_ref.to_string());
        let mut goals = Vec::new();
        for i in 1..=3 {
            let description = self.get(&format!("goal{i}_description"));
            let domain = self.get(&format!("goal{i}_domain"));
            if description.is_empty() && domain.is_empty() {
                continue;
            }
            let mut g = self.record("goal_ref", format!("{pr}-G{i}"), &[]);
            g.insert("plan_ref", pr.clone());
            g.insert("domain", domain);
            g.insert("description", description);
            g.insert("target_on", self.get(&format!("goal{i}_target_on")));
            g.insert("status", "open".into());
            goals.push(g);
        }
        (!goals.is_empty())
            .then(|| vec![records(Entity::Plan, &[p]), records(Entity::Goal, &goals)])
    }

    /// The episode closed, and each open goal's final status as said at closing.
    fn close(
        &self,
        e: &EpisodeInfo,
        goals: Vec<dcrs_store::pages::GoalRow>,
    ) -> Vec<(Entity, Vec<Fields>)> {
        let mut m = self.record(
            "episode_ref",
            e.episode_ref.clone(),
            &["closed_on", "exit_reason"],
        );
        m.insert("referral_ref", e.referral_ref.clone());
        m.insert("lead_worker_ref", e.lead_worker_ref.clone());
        m.insert("kind", e.kind.clone());
        m.insert("first_contact_on", e.first_contact_on.clone());
        m.insert("primary_issue", e.primary_issue.clone());
        let mut out = vec![records(Entity::Episode, &[m])];
        let mut changed = Vec::new();
        for goal in goals {
            let chosen = self.get(&format!("status_{}", goal.goal_ref));
            if goal.status != "open" || chosen.is_empty() || chosen == "open" {
                continue;
            }
            let mut g = self.record("goal_ref", goal.goal_ref, &[]);
            g.insert("plan_ref", goal.plan_ref);
            g.insert("domain", goal.domain);
            g.insert("description", goal.description);
            g.insert("target_on", goal.target_on.unwrap_or_default());
            g.insert("status", chosen);
            g.insert("status_on", self.get("closed_on"));
            changed.push(g);
        }
        if !changed.is_empty() {
            out.push(records(Entity::Goal, &changed));
        }
        out
    }
}

fn first_field(flow: Flow) -> &'static str {
    flow.fields().first().map_or("", |f| f.name)
}

/// The form field a rejection is about.
fn field_of(flow: Flow, file: &str, field: &str, record: Option<&str>) -> &'static str {
    let fields = flow.fields();
    if flow == Flow::Plan && file == "goals.csv" {
        let i = record
            .and_then(|r| r.rsplit("-G").next())
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(1);
        let name = format!("goal{i}_{field}");
        if let Some(f) = fields.iter().find(|f| f.name == name) {
            return f.name;
        }
    }
    fields
        .iter()
        .find(|f| f.name == field)
        .map_or_else(|| first_field(flow), |f| f.name)
}

/// A refusal of the write path as the design system words an error: what to do, in
/// the field's own words ("Enter height in centimetres, from 100 to 250"), with a guess
/// where the number looks like another unit ("1.68 looks like metres"); the rule's own
/// reason for anything else.
fn plain(flow: Flow, field: &str, value: &str, reason: &str) -> String {
    let Some(f) = flow.fields().into_iter().find(|f| f.name == field) else {
        return format!("{field}: {reason}");
    };
    let about = Entity::ALL
        .iter()
        .find_map(|e| dcrs_domain::catalogue::about(*e, field));
    let name = about
        .as_ref()
        .map_or(f.label.clone(), |a| lower_first(a.label));
    if reason == dcrs_domain::field::REQUIRED {
        return match f.kind {
            Kind::Codes(_) => format!("Select {name}"),
            _ => format!("Enter {name}"),
        };
    }
    match (f.kind, about.map(|a| (a.shape, a.unit))) {
        (Kind::Date, _) if reason.contains("not a date") => {
            format!("{} must be a real date", upper_first(&name))
        }
        (Kind::Date, _) if reason.contains("in the future") => {
            format!("{} must be today or in the past", upper_first(&name))
        }
        (Kind::Number, Some((dcrs_domain::catalogue::Shape::Number { min, max, .. }, unit))) => {
            let unit = unit.map_or(String::new(), |u| format!(" in {}", unit_words(u)));
            let what = format!("Enter {name}{unit}, from {min} to {max}");
            match other_unit(field, value) {
                Some(guess) => format!("{guess}. {what}"),
                None => what,
            }
        }
        _ => format!("{}: {reason}", f.label),
    }
}

/// A number that fits the field in another unit, said as such: a height or waist in
/// metres, a weight in stones.
fn other_unit(field: &str, value: &str) -> Option<String> {
    let v: f64 = value.trim().parse().ok()?;
    match field {
        "height_cm" | "waist_cm" if (0.4..=2.5).contains(&v) => Some(format!(
            "{value} looks like metres, like {:.0} cm",
            v * 100.0
        )),
        "weight_kg" if (4.0..25.0).contains(&v) => Some(format!(
            "{value} looks like stones, like {:.1} kg",
            v * 6.350_293
        )),
        _ => None,
    }
}

/// A unit as a person says it.
fn unit_words(unit: &str) -> &str {
    match unit {
        "cm" => "centimetres",
        "kg" => "kilograms",
        "min" | "minutes" => "minutes",
        other => other,
    }
}

/// "Height" as "height", but "NHS number" as it is.
fn lower_first(label: &str) -> String {
    let mut chars = label.chars();
    match (chars.next(), chars.next()) {
        (Some(a), Some(b)) if b.is_lowercase() => a
            .to_lowercase()
            .chain(label[a.len_utf8()..].chars())
            .collect(),
        _ => label.to_string(),
    }
}

fn upper_first(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map_or_else(String::new, |a| a.to_uppercase().chain(chars).collect())
}

// ---------------------------------------------------------------------------------
// Routes.

#[derive(serde::Deserialize)]
pub(crate) struct DraftQuery {
    draft: Option<i64>,
}

pub(crate) async fn new_client_page(
    State(app): State<App>,
    on: OnService<EditClients>,
    Query(q): Query<DraftQuery>,
) -> Result<Response, WebError> {
    show(app, on, Flow::Client, "new".into(), q.draft, None).await
}

pub(crate) async fn new_client(
    State(app): State<App>,
    on: OnService<EditClients>,
    posted: Posted<HashMap<String, String>>,
) -> Result<Response, WebError> {
    submit(app, on, Flow::Client, "new".into(), None, posted).await
}

pub(crate) async fn referral_page(
    State(app): State<App>,
    on: OnService<EditClients>,
    Path((_, client)): Path<(String, String)>,
    Query(q): Query<DraftQuery>,
) -> Result<Response, WebError> {
    show(app, on, Flow::Referral, client, q.draft, None).await
}

pub(crate) async fn referral(
    State(app): State<App>,
    on: OnService<EditClients>,
    Path((_, client)): Path<(String, String)>,
    posted: Posted<HashMap<String, String>>,
) -> Result<Response, WebError> {
    submit(app, on, Flow::Referral, client, None, posted).await
}

fn episode_flow(name: &str) -> Result<Flow, WebError> {
    Flow::parse(name)
        .filter(|f| Flow::EPISODE_FLOWS.contains(f))
        .ok_or(WebError::NotFound)
}

pub(crate) async fn episode_flow_page(
    State(app): State<App>,
    on: OnService<EditClients>,
    Path((_, ep, flow)): Path<(String, String, String)>,
    Query(q): Query<DraftQuery>,
) -> Result<Response, WebError> {
    show(app, on, episode_flow(&flow)?, ep, q.draft, None).await
}

pub(crate) async fn episode_flow_submit(
    State(app): State<App>,
    on: OnService<EditClients>,
    Path((_, ep, flow)): Path<(String, String, String)>,
    posted: Posted<HashMap<String, String>>,
) -> Result<Response, WebError> {
    submit(app, on, episode_flow(&flow)?, ep, None, posted).await
}

/// The form of a registered client's details, filled with what is stored, to correct
/// them.
pub(crate) async fn client_details_page(
    State(app): State<App>,
    on: OnService<EditClients>,
    Path((_, client_ref)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let changing = Some(client_ref.clone());
    show(app, on, Flow::ClientDetails, client_ref, None, changing).await
}

/// A client's details corrected through the write path, their values before and after
/// in the audit log.
pub(crate) async fn client_details_submit(
    State(app): State<App>,
    on: OnService<EditClients>,
    Path((_, client_ref)): Path<(String, String)>,
    posted: Posted<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let changing = Some(client_ref.clone());
    submit(app, on, Flow::ClientDetails, client_ref, changing, posted).await
}

/// The flows whose one saved record can be changed through the same form.
const CHANGEABLE: [Flow; 8] = [
    Flow::Baseline,
    Flow::Exit,
    Flow::FollowUp,
    Flow::Session,
    Flow::Onward,
    Flow::WiderIssue,
    Flow::Goal,
    Flow::PlanAgreed,
];

fn change_flow(name: &str) -> Result<Flow, WebError> {
    Flow::parse(name)
        .filter(|f| CHANGEABLE.contains(f))
        .ok_or(WebError::NotFound)
}

/// The form of a saved record, with its stored values, to correct it.
pub(crate) async fn change_page(
    State(app): State<App>,
    on: OnService<EditClients>,
    Path((_, ep, flow, record)): Path<(String, String, String, String)>,
) -> Result<Response, WebError> {
    show(app, on, change_flow(&flow)?, ep, None, Some(record)).await
}

/// A saved record changed through the write path, with its before and after values in
/// the audit log.
pub(crate) async fn change_submit(
    State(app): State<App>,
    on: OnService<EditClients>,
    Path((_, ep, flow, record)): Path<(String, String, String, String)>,
    posted: Posted<HashMap<String, String>>,
) -> Result<Response, WebError> {
    submit(app, on, change_flow(&flow)?, ep, Some(record), posted).await
}

/// The entity a changeable flow's record is.
fn flow_entity(flow: Flow) -> Entity {
    match flow {
        Flow::Session => Entity::Session,
        Flow::Onward => Entity::OnwardReferral,
        Flow::WiderIssue => Entity::WiderIssue,
        Flow::Goal => Entity::Goal,
        Flow::PlanAgreed => Entity::Plan,
        Flow::ClientDetails => Entity::Client,
        _ => Entity::Assessment,
    }
}

/// A saved record of the episode that the flow's form shows, field by field: not found
/// unless it is the flow's kind of record (an assessment of the flow's occasion) in this
/// episode.
async fn stored_record(
    app: &App,
    service_id: i64,
    flow: Flow,
    subj: &Subject,
    reference: &str,
) -> Result<HashMap<String, String>, WebError> {
    let entity = flow_entity(flow);
    // A client's details are the client's own record.
    if let (Flow::ClientDetails, Subject::Client(r, _)) = (flow, subj) {
        if r != reference {
            return Err(WebError::NotFound);
        }
        let by_ref = [dcrs_store::Condition::Equals(
            "client_ref".into(),
            reference.to_string(),
        )];
        let rows = app
            .db()
            .list_records(entity, Some(service_id), &by_ref, None, 1)
            .await?;
        let row = rows.into_iter().next().ok_or(WebError::NotFound)?;
        return Ok(row.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
    }
    let Subject::Episode(e) = subj else {
        return Err(WebError::NotFound);
    };
    let by_ref = [dcrs_store::Condition::Equals(
        entity.ref_field().to_string(),
        reference.to_string(),
    )];
    let rows = app
        .db()
        .list_records(entity, Some(service_id), &by_ref, None, 1)
        .await?;
    let stored: HashMap<String, String> = rows
        .into_iter()
        .next()
        .ok_or(WebError::NotFound)?
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let occasion = match flow {
        Flow::Baseline => Some("baseline"),
        Flow::Exit => Some("exit"),
        Flow::FollowUp => Some("follow_up"),
        _ => None,
    };
    // A goal is the episode's through its plan.
    let episode_ref = match flow {
        Flow::Goal => {
            let plan = stored.get("plan_ref").cloned().unwrap_or_default();
            let by_ref = [dcrs_store::Condition::Equals("plan_ref".into(), plan)];
            let plans = app
                .db()
                .list_records(Entity::Plan, Some(service_id), &by_ref, None, 1)
                .await?;
            plans
                .into_iter()
                .next()
                .and_then(|p| p.into_iter().find(|(k, _)| *k == "episode_ref"))
                .map(|(_, v)| v)
        }
        _ => stored.get("episode_ref").cloned(),
    };
    let ours = episode_ref.as_ref() == Some(&e.episode_ref)
        && occasion.is_none_or(|o| stored.get("occasion").map(String::as_str) == Some(o));
    if !ours {
        return Err(WebError::NotFound);
    }
    Ok(stored)
}

/// The saved record with the form's fields put in its place, to be written over it; and
/// the episode's page to go back to.
async fn changed_records(
    app: &App,
    place: &Place<'_>,
    service_id: i64,
    subj: &Subject,
    values: &HashMap<String, String>,
    reference: &str,
) -> Result<(Vec<(Entity, Vec<Fields>)>, Url), WebError> {
    let flow = place.flow;
    let stored = stored_record(app, service_id, flow, subj, reference).await?;
    let entity = flow_entity(flow);
    let mut record: Fields = entity
        .fields()
        .iter()
        .map(|f| (f.name, stored.get(f.name).cloned().unwrap_or_default()))
        .collect();
    for f in flow.fields() {
        record.insert(f.name, values.get(f.name).cloned().unwrap_or_default());
    }
    let page = match flow {
        Flow::ClientDetails => {
            Url::path(&["services", place.service_ref, "clients", place.subject_ref])
        }
        _ => Url::path(&["services", place.service_ref, "episodes", place.subject_ref]),
    };
    Ok((vec![records(entity, &[record])], page))
}

/// Questions a flow asks beyond its fields: who leads the episode (when a manager, not
/// the trainer, opens it) and, at closing, how each goal went.
async fn flow_extra(
    app: &App,
    ctx: &Ctx,
    service_id: i64,
    flow: Flow,
    subject_ref: &str,
    values: &HashMap<String, String>,
) -> Result<Vec<Markup>, WebError> {
    if flow == Flow::Referral && ctx.user.role != Role::HealthTrainer {
        let workers = app.db().current_workers(service_id).await?;
        let mut opts = vec![(String::new(), "Select one".to_string())];
        opts.extend(
            workers
                .into_iter()
                .map(|(r, n)| (r.clone(), format!("{n} ({r})"))),
        );
        let options = opts.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let selected = values.get("lead_worker_ref").map_or("", String::as_str);
        return Ok(vec![Markup::render(&Select {
            name: "lead_worker_ref",
            label: "Lead worker",
            options,
            selected,
            error: None,
        })]);
    }
    close_questions(app, service_id, flow, subject_ref, values).await
}

/// Closing asks how each open goal went, before the date and reason.
async fn close_questions(
    app: &App,
    service_id: i64,
    flow: Flow,
    ep: &str,
    values: &HashMap<String, String>,
) -> Result<Vec<Markup>, WebError> {
    if flow != Flow::Close {
        return Ok(Vec::new());
    }
    let mut extra = Vec::new();
    for g in app.db().episode_goals(service_id, ep).await? {
        let (goal_ref, domain, description) = (g.goal_ref, g.domain, g.description);
        if g.status != "open" {
            continue;
        }
        let opts: Vec<(&str, &str)> = std::iter::once(("", "Still open"))
            .chain(
                GoalStatus::ALL
                    .iter()
                    .filter(|g| **g != GoalStatus::Open)
                    .map(|g| (g.code(), g.words())),
            )
            .collect();
        let name = format!("status_{goal_ref}");
        let area = GoalDomain::parse(&domain).map_or(domain.as_str(), |d| d.words());
        extra.push(Markup::render(&Select {
            name: &name,
            label: &format!("How did this goal go: {description} ({area})?"),
            options: opts,
            selected: values.get(&name).map_or("", String::as_str),
            error: None,
        }));
    }
    Ok(extra)
}

pub(crate) async fn draft(
    State(app): State<App>,
    SignedIn(ctx): SignedIn,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let (service_ref, flow, subject_ref) = app
        .db()
        .draft_place(id, ctx.user.user_id)
        .await?
        .ok_or(WebError::NotFound)?;
    let flow = Flow::parse(&flow).ok_or(WebError::NotFound)?;
    Ok(see_other(&format!(
        "{}?draft={id}",
        action_url(&service_ref, flow, &subject_ref)
    )))
}

/// The links to each flow of an episode: every one while it is open; a follow-up or a
/// session once closed.
pub(crate) fn episode_actions(
    service_ref: &str,
    episode_ref: &str,
    open: bool,
) -> Vec<(crate::view::Url, &'static str)> {
    Flow::EPISODE_FLOWS
        .iter()
        .filter(|f| open || matches!(f, Flow::FollowUp | Flow::Session))
        .map(|f| (flow_url(service_ref, *f, episode_ref), f.title()))
        .collect()
}

/// Where a flow's form is.
pub(crate) fn flow_url(service_ref: &str, flow: Flow, subject_ref: &str) -> crate::view::Url {
    use crate::view::Url;
    match flow {
        Flow::Client => Url::path(&["services", service_ref, "clients", "new"]),
        Flow::Referral => Url::path(&[
            "services",
            service_ref,
            "clients",
            subject_ref,
            "episodes",
            "new",
        ]),
        _ => Url::path(&[
            "services",
            service_ref,
            "episodes",
            subject_ref,
            flow.code(),
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dcrs_domain::field::REQUIRED;

    #[test]
    fn refusals_say_what_to_do() {
        let range = "this must be between 100 and 250";
        assert_eq!(
            plain(Flow::Baseline, "height_cm", "1.68", range),
            "1.68 looks like metres, like 168 cm. Enter height in centimetres, from 100 to 250"
        );
        assert_eq!(
            plain(Flow::Baseline, "height_cm", "300", range),
            "Enter height in centimetres, from 100 to 250"
        );
        assert_eq!(
            plain(
                Flow::Baseline,
                "weight_kg",
                "12",
                "this must be between 25 and 350"
            ),
            "12 looks like stones, like 76.2 kg. Enter weight in kilograms, from 25 to 350"
        );
        assert_eq!(plain(Flow::Client, "sex", "", REQUIRED), "Select sex");
        assert_eq!(
            plain(Flow::Client, "date_of_birth", "", REQUIRED),
            "Enter date of birth"
        );
        assert_eq!(
            plain(Flow::Client, "nhs_number", "", REQUIRED),
            "Enter NHS number"
        );
        assert_eq!(
            plain(
                Flow::Client,
                "date_of_birth",
                "1980-13-31",
                "this is not a date written as YYYY-MM-DD (for example 2010-04-01)"
            ),
            "Date of birth must be a real date"
        );
        assert_eq!(
            plain(
                Flow::Client,
                "date_of_birth",
                "2099-05-31",
                "this date is in the future; only things that have already happened can be recorded"
            ),
            "Date of birth must be today or in the past"
        );
    }
}

/// The page that removes a saved record entered in error: what it holds, why it is
/// removed, and the button.
#[derive(Template)]
#[template(path = "capture/remove.html")]
struct RemovePage<'a> {
    layout: Layout,
    heading: String,
    summary: SummaryList<'a>,
    errors: ErrorSummary<'a>,
    action: Url,
    csrf: Csrf<'a>,
    once: String,
    reason: Markup,
    noun: &'static str,
    cancel: Url,
}

/// The record a removal page is about, and where it is.
struct ToRemove<'a> {
    service_ref: &'a str,
    episode_ref: &'a str,
    flow: Flow,
    record_ref: &'a str,
}

impl ToRemove<'_> {
    fn episode(&self) -> Url {
        Url::path(&["services", self.service_ref, "episodes", self.episode_ref])
    }

    fn action(&self) -> Url {
        let (s, e, f, r) = (
            self.service_ref,
            self.episode_ref,
            self.flow.code(),
            self.record_ref,
        );
        Url::path(&["services", s, "episodes", e, f, r, "remove"])
    }
}

fn remove_html(
    ctx: &Ctx,
    at: &ToRemove,
    subj: &Subject,
    stored: &HashMap<String, String>,
    (reason, once): (&str, String),
    errors: &[FieldError],
) -> Response {
    let token = &ctx.session.csrf_token;
    let noun = at.flow.noun();
    let entity = flow_entity(at.flow);
    // What the record holds, in words, as its form asks it.
    let rows = at
        .flow
        .fields()
        .into_iter()
        .filter_map(|f| {
            let v = stored.get(f.name).filter(|v| !v.is_empty())?;
            let shown = match f.kind {
                Kind::Date => crate::pages::uk_date(v),
                _ => crate::pages::words(entity, f.name, v),
            };
            Some((f.label, shown))
        })
        .collect::<Vec<_>>();
    let rows = rows.iter().map(|(l, v)| (l.as_str(), v.clone())).collect();
    let input = Input::text("reason", "Why was it entered in error?", reason, errors);
    let input = Input {
        hint: Some("For example, recorded against the wrong client, or recorded twice"),
        ..input
    };
    let title = format!("Remove this {noun}?");
    let page = RemovePage {
        layout: Layout::signed_in(title, &ctx.user, token)
            .back(&at.episode(), "Back to the episode")
            .failed(errors),
        heading: heading(subj),
        summary: SummaryList { rows },
        errors: ErrorSummary { errors },
        action: at.action(),
        csrf: Csrf { token },
        once,
        reason: Markup::render(&input),
        noun,
        cancel: at.episode(),
    };
    html(Markup::render(&page).into_string())
}

/// Asks to confirm the removal of a saved record entered in error, showing what it
/// holds.
pub(crate) async fn remove_page(
    State(app): State<App>,
    OnService {
        ctx, service: s, ..
    }: OnService<EditClients>,
    Path((_, ep, flow, record)): Path<(String, String, String, String)>,
) -> Result<Response, WebError> {
    let flow = change_flow(&flow)?;
    let subj = subject(&app, s.service_id, flow, &ep).await?;
    let stored = stored_record(&app, s.service_id, flow, &subj, &record).await?;
    let detail = serde_json::json!({"flow": flow.code(), "records": [record]});
    let (user, id) = (&ctx.user.username, Some(s.service_id));
    crate::audit(&app, user, "view.record", id, Some(ep.clone()), detail).await?;
    let at = ToRemove {
        service_ref: &s.service_ref,
        episode_ref: &ep,
        flow,
        record_ref: &record,
    };
    Ok(remove_html(
        &ctx,
        &at,
        &subj,
        &stored,
        ("", once_key()),
        &[],
    ))
}

/// Removes a saved record entered in error through the write path, with its values and
/// the reason in the audit log; refused with the reason when its going would break a
/// rule. A repeat of the same submission goes where the first went.
pub(crate) async fn remove_submit(
    State(app): State<App>,
    OnService { service: s, .. }: OnService<EditClients>,
    Path((_, ep, flow, record)): Path<(String, String, String, String)>,
    Posted { ctx, form, .. }: Posted<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let flow = change_flow(&flow)?;
    let subj = subject(&app, s.service_id, flow, &ep).await?;
    let at = ToRemove {
        service_ref: &s.service_ref,
        episode_ref: &ep,
        flow,
        record_ref: &record,
    };
    let reason = form.get("reason").map_or("", |r| r.trim()).to_string();
    let once = sent_once(&form).unwrap_or_else(once_key);
    // A repeat of a removal already made finds the record gone: the key answers first.
    let stored = match stored_record(&app, s.service_id, flow, &subj, &record).await {
        Ok(stored) => stored,
        Err(WebError::NotFound) if !reason.is_empty() => HashMap::new(),
        Err(e) => return Err(e),
    };
    let noun = flow.noun();
    let refuse = |message: String| {
        let errors = [FieldError::new("reason", message)];
        Ok(remove_html(
            &ctx,
            &at,
            &subj,
            &stored,
            (&reason, once.clone()),
            &errors,
        ))
    };
    if reason.is_empty() {
        return refuse(format!("Enter why the {noun} was entered in error"));
    }
    if reason.chars().count() > 500 {
        return refuse("Enter a reason of 500 characters or fewer".into());
    }
    let options = write_options(&app, &ctx);
    let key = dcrs_exchange::OnceKey {
        key: once.clone(),
        answer: at.episode().to_string(),
    };
    let removal = dcrs_exchange::Removal {
        entity: flow_entity(flow),
        service_ref: s.service_ref.clone(),
        record_ref: record.clone(),
        reason: reason.clone(),
    };
    let report = dcrs_exchange::remove_records(app.db(), &[removal], &options, Some(&key))
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?;
    let to = match report.already {
        Some(first) => first,
        None if report.committed => at.episode().to_string(),
        None if stored.is_empty() => return Err(WebError::NotFound),
        None => {
            let why: Vec<String> = report.rejections.iter().map(|r| r.reason.clone()).collect();
            return refuse(format!("The {noun} cannot be removed: {}", why.join("; ")));
        }
    };
    Ok(crate::routes::caseload::with_removed_notice(
        &app,
        see_other(&to),
        flow,
    ))
}
