//! The reports of analytics.md sections 1–6 (activity, reach against need, outcomes,
//! pathway, workforce, data quality) as typed tables, live from the stored records, with
//! the disclosure control of section 8 applied to every figure.
//!
//! [`run`] is what the command line and the web application call: it reads the facts
//! of every service in the request once, builds one report document per scope, applies
//! the policy and returns [`Report`]s that [`render`] writes as JSON or CSV.

pub mod chart;
pub mod data;
pub mod disclosure;
pub mod doc;
pub mod drift;
pub mod html;
pub mod patterns;
pub mod quality;
pub mod render;
pub mod stats;
pub mod trainers;
pub mod words;
pub mod xlsx;

mod build;

use chrono::{DateTime, NaiveDate, Utc};
use dcrs_domain::types::{FinancialYear, Quarter};
use dcrs_store::{Database, StoreError};
pub use disclosure::{Policy, PolicyKind};
pub use doc::{Figure, Section, Table};
use serde::Serialize;

/// What can go wrong asking for a report. Messages are for the person who asked.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// No service has this reference.
    #[error("there is no service with the reference {0:?}")]
    UnknownService(String),
    /// The period could not be read.
    #[error("the period {0:?} is not understood: {1}")]
    BadPeriod(String, String),
    /// A controlled report was asked for a period that is not a quarter or a year.
    #[error(
        "the period {0} is not a whole quarter or financial year; reports under the \
         nhs_sub_national policy are only produced for those, so that overlapping \
         periods cannot be subtracted from one another"
    )]
    NotWholePeriod(String),
    /// The report kind is not known.
    #[error(
        "there is no report {0:?}; use activity, reach, outcomes, pathway, workforce, data-quality or pack"
    )]
    UnknownKind(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Section 1.
    Activity,
    /// Section 2.
    Reach,
    /// Section 3.
    Outcomes,
    /// Section 4.
    Pathway,
    /// Section 5.
    Workforce,
    /// Section 6.
    DataQuality,
    /// Sections 1–6 in one document.
    Pack,
    /// Implementation patterns (section 7; `dcrs patterns`).
    Patterns,
}

impl Kind {
    /// Reads a kind as written on the command line.
    pub fn parse(text: &str) -> Result<Kind, ReportError> {
        Ok(match text {
            "activity" => Kind::Activity,
            "reach" => Kind::Reach,
            "outcomes" => Kind::Outcomes,
            "pathway" => Kind::Pathway,
            "workforce" => Kind::Workforce,
            "data-quality" => Kind::DataQuality,
            "pack" => Kind::Pack,
            _ => return Err(ReportError::UnknownKind(text.into())),
        })
    }

    /// The kind's name.
    pub fn code(self) -> &'static str {
        match self {
            Kind::Activity => "activity",
            Kind::Reach => "reach",
            Kind::Outcomes => "outcomes",
            Kind::Pathway => "pathway",
            Kind::Workforce => "workforce",
            Kind::DataQuality => "data-quality",
            Kind::Pack => "pack",
            Kind::Patterns => "patterns",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Kind::Activity => "Activity",
            Kind::Reach => "Reach against need",
            Kind::Outcomes => "Outcomes",
            Kind::Pathway => "Pathway and completeness equity",
            Kind::Workforce => "Workforce",
            Kind::DataQuality => "Data quality",
            Kind::Pack => "Report pack",
            Kind::Patterns => "Implementation patterns",
        }
    }
}

/// A reporting period: a financial year, a quarter, or a range of dates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Period {
    /// First day.
    pub from: NaiveDate,
    /// Last day.
    pub to: NaiveDate,
    /// As written on outputs: `2010-11`, `2010-11 Q3` or `2010-04-01..2010-09-30`.
    pub label: String,
    /// Whether it is one whole quarter or financial year.
    pub whole: bool,
}

impl Period {
    /// A financial year.
    pub fn year(y: FinancialYear) -> Period {
        Period {
            from: y.first_day(),
            to: y.last_day(),
            label: y.to_string(),
            whole: true,
        }
    }

    /// A quarter.
    pub fn quarter(q: Quarter) -> Period {
        Period {
            from: q.first_day(),
            to: q.last_day(),
            label: q.to_string(),
            whole: true,
        }
    }

    /// Reads `2010-11`, `2010-11Q3` (or `2010-11 Q3`), or `FROM..TO` where each end is a
    /// date, a quarter or a year (a range runs from the first day of its first end to
    /// the last day of its second).
    pub fn parse(text: &str) -> Result<Period, ReportError> {
        let bad = |why: &str| ReportError::BadPeriod(text.into(), why.into());
        let text = text.trim();
        if let Some((a, b)) = text.split_once("..") {
            let from = Self::parse_end(a.trim()).map_err(|e| bad(&e))?.from;
            let to = Self::parse_end(b.trim()).map_err(|e| bad(&e))?.to;
            if to < from {
                return Err(bad("it ends before it starts"));
            }
            // A range that is exactly one quarter or financial year is that period.
            let quarter = Period::quarter(Quarter::containing(from));
            let year = Period::year(FinancialYear::containing(from));
            for whole in [quarter, year] {
                if whole.from == from && whole.to == to {
                    return Ok(whole);
                }
            }
            return Ok(Period {
                from,
                to,
                label: format!("{from}..{to}"),
                whole: false,
            });
        }
        Self::parse_end(text).map_err(|e| bad(&e))
    }

    fn parse_end(text: &str) -> Result<Period, String> {
        if text.contains('Q') || text.contains('q') {
            return Quarter::parse(&text.to_uppercase()).map(Period::quarter);
        }
        if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            return Ok(Period {
                from: d,
                to: d,
                label: d.to_string(),
                whole: false,
            });
        }
        FinancialYear::parse(text).map(Period::year).map_err(|_| {
            "write a financial year (2010-11), a quarter (2010-11Q3) or FROM..TO".to_string()
        })
    }
}

/// What to report on.
#[derive(Debug, Clone)]
pub struct Request {
    /// Which report.
    pub kind: Kind,
    /// Service references; `None` for every service.
    pub services: Option<Vec<String>>,
    /// Besides the combined scope, one document per service.
    pub each_service: bool,
    /// The period.
    pub period: Period,
    /// The disclosure policy.
    pub policy: Policy,
    /// Count everything afresh instead of reusing counts of services unchanged since an
    /// earlier report of the same period (for measuring; the figures are the same).
    pub fresh: bool,
}

/// The services a report covers.
#[derive(Debug, Clone, Serialize)]
pub struct Scope {
    /// A short description: one service's reference and name, or how many services.
    pub description: String,
    /// The services.
    pub services: Vec<data::ServiceInfo>,
}

/// A reference file the report's figures rest on.
#[derive(Debug, Clone, Serialize)]
pub struct ReferenceFile {
    /// The file.
    pub file: String,
    /// What it holds.
    pub kind: String,
    /// Its SHA-256.
    pub sha256: String,
}

/// The disclosure policy as stated on an output.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyStatement {
    /// `nhs_sub_national` or `none`.
    pub name: &'static str,
    /// Suppression threshold.
    pub threshold: i64,
    /// Rounding base.
    pub rounding_base: i64,
    /// What it does, in words.
    pub statement: String,
    /// Cells shown as `*` to protect other counts (a subset of `withheld_cells`).
    pub secondary_suppressions: usize,
    /// Every cell shown as `*`, by why.
    pub withheld_cells: disclosure::WithheldCells,
    /// Tables withheld.
    pub withheld_tables: Vec<String>,
}

/// One report document: one scope, one period, its sections.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Title.
    pub title: String,
    /// Which report.
    pub kind: Kind,
    /// Whether the data are the generator's synthetic data.
    pub synthetic: bool,
    /// The services covered.
    pub scope: Scope,
    /// The period.
    pub period: Period,
    /// When it was produced (RFC 3339, UTC).
    pub produced_at: String,
    /// The IMD year of the quintiles.
    pub imd_year: i64,
    /// The reference data loaded when it was produced.
    pub reference_data: Vec<ReferenceFile>,
    /// The disclosure policy applied.
    pub policy: PolicyStatement,
    /// Warnings the reader must see (such as the completeness-bias warning).
    pub warnings: Vec<String>,
    /// The sections.
    pub sections: Vec<Section>,
    /// The sums between the report's counts and which cells were suppressed to protect
    /// others, by cell position: what an attacker is assumed to know, for checking that
    /// no suppressed cell can be worked out. Not part of the published document.
    #[serde(skip)]
    pub structure: Structure,
    /// How many services' counts were reused from an earlier report and how many were
    /// counted afresh (the same for every document of one request).
    pub counts: data::CacheUse,
}

/// A cell of a published report: table id, row and column index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CellRef {
    /// Table id.
    pub table: String,
    /// Row index.
    pub row: usize,
    /// Column index.
    pub column: usize,
}

/// The sums and secondary suppressions of a report, by cell.
#[derive(Debug, Clone, Default)]
pub struct Structure {
    /// `total = Σ parts`, each count at the first cell that shows it.
    pub sums: Vec<(CellRef, Vec<CellRef>)>,
    /// Cells suppressed to protect others (shown as `*` like the rest).
    pub secondary: Vec<CellRef>,
}

impl Report {
    /// The section with this id.
    pub fn section(&self, id: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.id == id)
    }

    /// A table of any section.
    pub fn table(&self, id: &str) -> Option<&Table> {
        self.sections.iter().find_map(|s| s.table(id))
    }
}

/// Produces the requested report: the combined scope first, then (with `each_service`)
/// one document per service.
pub async fn run(
    db: &Database,
    req: &Request,
    now: DateTime<Utc>,
) -> Result<Vec<Report>, ReportError> {
    if req.policy.controls() && !req.period.whole {
        return Err(ReportError::NotWholePeriod(req.period.label.clone()));
    }
    let services = data::services(db, req.services.as_deref()).await?;
    let ids: Vec<i64> = services.iter().map(|s| s.id).collect();
    let (from, to) = (req.period.from, req.period.to);
    let wants = |k: Kind| req.kind == k || req.kind == Kind::Pack;
    let needs_facts = req.kind != Kind::DataQuality;
    let (facts, cache) = if needs_facts {
        data::cached(db, &ids, from, to, req.fresh, true, |missing| async move {
            data::facts(db, &missing, from, to, data::Scope::All).await
        })
        .await?
    } else {
        Default::default()
    };
    let (quality, quality_cache) = if wants(Kind::DataQuality) {
        data::cached(db, &ids, from, to, req.fresh, true, |missing| async move {
            quality::facts(db, &missing, from, to, data::Scope::All).await
        })
        .await?
    } else {
        Default::default()
    };
    let cache = data::CacheUse {
        reused: cache.reused.max(quality_cache.reused),
        counted: cache.counted.max(quality_cache.counted),
    };
    let reference_data: Vec<ReferenceFile> = db
        .reference_files()
        .await?
        .into_iter()
        .map(|f| ReferenceFile {
            file: f.file,
            kind: f.kind,
            sha256: f.sha256,
        })
        .collect();
    let imd_year = db.imd_year().await?;
    let areas_data = if wants(Kind::Reach) {
        let mut all: Vec<String> = services
            .iter()
            .flat_map(|s| s.areas_served.clone())
            .collect();
        all.sort();
        all.dedup();
        data::Areas::read(db, &all).await?
    } else {
        data::Areas::default()
    };
    let mut scopes: Vec<Vec<data::ServiceInfo>> = vec![services.clone()];
    if req.each_service && services.len() > 1 {
        scopes.extend(services.iter().map(|s| vec![s.clone()]));
    }
    let mut out = Vec::new();
    for scope in scopes {
        let mut f = data::Facts::default();
        let mut q = quality::Quality::default();
        for s in &scope {
            if let Some(x) = facts.get(&s.id) {
                f.merge(x);
            }
            if let Some(x) = quality.get(&s.id) {
                q.merge(x);
            }
        }
        let need = if wants(Kind::Reach) {
            let areas: Vec<String> = scope.iter().flat_map(|s| s.areas_served.clone()).collect();
            areas_data.need(&areas)
        } else {
            data::Need::default()
        };
        let mut draft = doc::Draft::default();
        let common = build::Common::new(&mut draft, &f);
        if wants(Kind::Activity) {
            let s = build::activity(&mut draft, &f, &common, from, to);
            draft.sections.push(s);
        }
        if wants(Kind::Reach) {
            let s = build::reach(&mut draft, &f, &need, &common);
            draft.sections.push(s);
        }
        if wants(Kind::Outcomes) {
            let s = build::outcomes(&mut draft, &f);
            draft.sections.push(s);
        }
        if wants(Kind::Pathway) {
            let s = build::pathway(&mut draft, &f);
            draft.sections.push(s);
        }
        if wants(Kind::Workforce) {
            let s = build::workforce(&mut draft, &f, &common);
            draft.sections.push(s);
        }
        if wants(Kind::DataQuality) {
            let s = quality::section(&mut draft, &q);
            draft.sections.push(s);
        }
        let mut report = finish(req, &draft, scope, now, imd_year, reference_data.clone());
        report.counts = cache;
        out.push(report);
    }
    Ok(out)
}

/// The figures of a service's dashboard: label, then table, row and column of the
/// report pack where the same figure is found.
pub const DASHBOARD_FIGURES: [(&str, &str, &str, &str); 12] = [
    (
        "Referrals received",
        "activity_summary",
        "Referrals received",
        "value",
    ),
    ("New clients", "activity_summary", "New clients", "value"),
    (
        "Episodes opened",
        "activity_summary",
        "Episodes opened",
        "value",
    ),
    (
        "Sessions attended",
        "activity_summary",
        "Sessions attended",
        "value",
    ),
    (
        "Did-not-attend rate",
        "activity_summary",
        "Did-not-attend rate",
        "value",
    ),
    (
        "Full episodes closed",
        "activity_summary",
        "Full episodes closed",
        "value",
    ),
    (
        "Open caseload at the end",
        "activity_summary",
        "Open caseload at period end",
        "value",
    ),
    (
        "New clients from quintiles 1-2",
        "reach_headline",
        "New clients from quintiles 1-2",
        "share",
    ),
    (
        "Goals fully achieved",
        "goal_attainment_by_goal",
        "All quintiles",
        "share_fully",
    ),
    (
        "Referrals reaching an exit assessment",
        "pathway_by_quintile",
        "All referrals",
        "share_exit",
    ),
    (
        "Client postcodes not found",
        "data_quality_checks",
        "Client postcodes not found in the reference data",
        "count",
    ),
    (
        "Open episodes with no session in 90 days",
        "data_quality_checks",
        "Open episodes with no session in the 90 days before the period's end",
        "count",
    ),
];

/// One service's pack for each of `periods`, exact (no disclosure control), holding true
/// values only for [`DASHBOARD_FIGURES`]: the pack's own tables, built from kept counts
/// when they are current (unless `fresh`) and otherwise from only the queries those
/// figures need (about half of a pack's), which are not kept. Under steady writes a
/// dashboard is asked for more often than its service stands still, so it must not
/// cost a whole pack.
pub async fn dashboard(
    db: &Database,
    service_ref: &str,
    periods: &[Period],
    fresh: bool,
    now: DateTime<Utc>,
) -> Result<Vec<Report>, ReportError> {
    let asked = [service_ref.to_string()];
    let services = data::services(db, Some(&asked)).await?;
    let ids: Vec<i64> = services.iter().map(|s| s.id).collect();
    let imd_year = db.imd_year().await?;
    let mut out = Vec::new();
    for period in periods {
        let req = Request {
            kind: Kind::Pack,
            services: Some(asked.to_vec()),
            each_service: false,
            period: period.clone(),
            policy: Policy::NONE,
            fresh,
        };
        let (from, to) = (period.from, period.to);
        let (facts, cache) = data::cached(db, &ids, from, to, fresh, false, |missing| async move {
            data::facts(db, &missing, from, to, data::Scope::Dashboard).await
        })
        .await?;
        let (quality, _) = data::cached(db, &ids, from, to, fresh, false, |missing| async move {
            quality::facts(db, &missing, from, to, data::Scope::Dashboard).await
        })
        .await?;
        let mut f = data::Facts::default();
        let mut q = quality::Quality::default();
        for s in &services {
            if let Some(x) = facts.get(&s.id) {
                f.merge(x);
            }
            if let Some(x) = quality.get(&s.id) {
                q.merge(x);
            }
        }
        let mut draft = doc::Draft::default();
        let common = build::Common::new(&mut draft, &f);
        let sections = [
            build::activity(&mut draft, &f, &common, from, to),
            build::reach(&mut draft, &f, &data::Need::default(), &common),
            build::outcomes(&mut draft, &f),
            build::pathway(&mut draft, &f),
            quality::section(&mut draft, &q),
        ];
        draft.sections.extend(sections);
        let mut report = finish(&req, &draft, services.clone(), now, imd_year, Vec::new());
        report.counts = cache;
        out.push(report);
    }
    Ok(out)
}

/// Applies the policy to a draft and assembles the document.
pub(crate) fn finish(
    req: &Request,
    draft: &doc::Draft,
    services: Vec<data::ServiceInfo>,
    now: DateTime<Utc>,
    imd_year: i64,
    reference_data: Vec<ReferenceFile>,
) -> Report {
    let published = disclosure::control(draft, &req.policy);
    let sections = disclosure::publish(draft, &req.policy, &published);
    let withheld_cells = disclosure::withheld_cells(draft, &published, &sections);
    let mut warnings = Vec::new();
    if let Some(bias) = &draft.bias
        && let Some(w) = disclosure::bias_warning(bias, &published, &req.policy)
    {
        warnings.push(w);
    }
    let structure = structure(draft, &published);
    let synthetic = services.iter().any(|s| s.name.contains("(synthetic"));
    let description = match services.as_slice() {
        [one] => format!("{} {}", one.service_ref, one.name),
        many => format!("{} services", many.len()),
    };
    let title = format!(
        "{}{}: {}, {}",
        if synthetic { "SYNTHETIC DATA. " } else { "" },
        req.kind.title(),
        description,
        req.period.label
    );
    Report {
        title,
        kind: req.kind,
        synthetic,
        scope: Scope {
            description,
            services,
        },
        period: req.period.clone(),
        produced_at: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        imd_year,
        reference_data,
        policy: PolicyStatement {
            name: req.policy.kind.code(),
            threshold: req.policy.threshold,
            rounding_base: req.policy.rounding_base,
            statement: req.policy.statement(),
            secondary_suppressions: withheld_cells.to_protect_others,
            withheld_cells,
            withheld_tables: published.withheld.clone(),
        },
        warnings,
        sections,
        structure,
        counts: data::CacheUse::default(),
    }
}

/// Where each count is first shown, and the sums and secondary cells by position.
fn structure(draft: &doc::Draft, published: &disclosure::Published) -> Structure {
    let mut at: Vec<Option<CellRef>> = vec![None; draft.counts.len()];
    for t in draft.sections.iter().flat_map(|s| s.tables.iter()) {
        for (i, row) in t.rows.iter().enumerate() {
            for (j, cell) in row.iter().enumerate() {
                if let doc::Cell::Count(id) = cell
                    && at[*id].is_none()
                {
                    at[*id] = Some(CellRef {
                        table: t.id.clone(),
                        row: i,
                        column: j,
                    });
                }
            }
        }
    }
    let sums = draft
        .sums
        .iter()
        .filter_map(|(t, parts)| {
            let parts: Option<Vec<CellRef>> = parts.iter().map(|p| at[*p].clone()).collect();
            Some((at[*t].clone()?, parts?))
        })
        .collect();
    let secondary = published
        .states
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s, disclosure::CountState::Secondary(_)))
        .filter_map(|(i, _)| at[i].clone())
        .collect();
    Structure { sums, secondary }
}
