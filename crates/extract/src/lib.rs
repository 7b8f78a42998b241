//! Pseudonymised research extracts.
//!
//! An admin registers a **project** (name, purpose, approver, end date). Its secret, 32
//! random bytes, is written to a file in the secrets folder, outside the database; the
//! database keeps only the secret's SHA-256, to notice a wrong or replaced file. An
//! analyst then **releases** an extract of the services they may see:
//!
//! - **Pseudonyms** are a keyed hash (HMAC-SHA-256 under the project's secret) of the
//!   service and client reference. A client keeps one pseudonym across releases of a
//!   project and has unrelated ones in different projects.
//! - **Nothing that names anyone** is written: no name, NHS number, postcode, date of
//!   birth, free text or record reference.
//! - **Dates** are shifted per client by a stable offset of up to 182 days either way, also
//!   from the secret, so intervals within a client stay true. Alternatively they are
//!   generalised to the month.
//! - **Age** is given in bands, at the client's first referral. **Area** is the 2011 LSOA
//!   or coarser.
//! - **k-anonymity**: every combination of age band, sex, ethnic group and area must be
//!   shared by at least k = 5 clients. If it is not, the whole extract is generalised one
//!   step at a time (LSOA to local authority, ethnic category to broad group, age to wide
//!   bands, local authority to region, then no area), and the few clients still in small
//!   groups have their rarest attributes shown as `*` (`anonymise`). A release that still
//!   has a group below k (a service with fewer than k clients, say) is refused.
//! - Every release is written to the **release register**: who, when, project, purpose,
//!   files, row counts, SHA-256 checksums and the generalisation applied. It is also
//!   audited.

mod parquet_out;
pub mod secret_file;

use chrono::{Datelike, NaiveDate};
use dcrs_store::{AuditEntry, Database, RecordStore as _, StoreError};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The smallest group allowed on the quasi-identifiers.
pub const K: i64 = 5;

/// Why an extract could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("there is no research project called {0:?}")]
    UnknownProject(String),
    #[error("a research project called {0:?} exists already")]
    ProjectExists(String),
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error(
        "the secret of project {project} is missing or not the one registered ({path}); \
         restore the file from the project's safe copy"
    )]
    Secret { project: String, path: String },
    #[error("project {0} ended on {1}; no more extracts can be released for it")]
    Ended(String, NaiveDate),
    #[error(
        "refused: even fully generalised, {records} client(s) fall in {groups} group(s) of \
         fewer than {k} on age band, sex, ethnic group and area"
    )]
    BelowK { records: i64, groups: i64, k: i64 },
    #[error("could not write the secret file {0}: {1}")]
    Io(String, std::io::Error),
    #[error("could not write {0}: {1}")]
    Output(String, String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ExtractError {
    fn from(e: sqlx::Error) -> Self {
        ExtractError::Store(StoreError::Sql(e))
    }
}

/// A registered research project.
#[derive(Debug, Clone)]
pub struct Project {
    pub project_id: i64,
    pub name: String,
    pub purpose: String,
    pub approver: String,
    pub ends_on: NaiveDate,
    pub created_by: String,
    pub created_at: String,
}

type ProjectRow = (i64, String, String, String, String, String, String, String);

fn project_of(r: ProjectRow) -> (Project, String) {
    (
        Project {
            project_id: r.0,
            name: r.1,
            purpose: r.2,
            approver: r.3,
            ends_on: NaiveDate::parse_from_str(&r.4, "%Y-%m-%d").unwrap_or_default(),
            created_by: r.5,
            created_at: r.6,
        },
        r.7,
    )
}

const PROJECT_COLUMNS: &str =
    "project_id, name, purpose, approver, ends_on, created_by, created_at, secret_sha256";

/// Every project, by name.
pub async fn projects(db: &Database) -> Result<Vec<Project>, ExtractError> {
    let rows: Vec<ProjectRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {PROJECT_COLUMNS} FROM research_projects ORDER BY name"
    )))
    .fetch_all(db.pool())
    .await?;
    Ok(rows.into_iter().map(|r| project_of(r).0).collect())
}

/// The secret file of a project.
pub fn secret_path(secrets: &Path, name: &str) -> PathBuf {
    secrets.join(format!("research-{name}.key"))
}

fn sha256_hex(bytes: &[u8]) -> String {
    secret_file::hex(&Sha256::digest(bytes))
}

/// What an admin enters to register a project.
#[derive(Debug, Clone, Default)]
pub struct NewProject {
    pub name: String,
    pub purpose: String,
    pub approver: String,
    pub ends_on: String,
}

/// Checks a new project's fields: every problem, by field.
pub fn check_project(n: &NewProject, today: NaiveDate) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let name = n.name.trim();
    if name.is_empty()
        || name.len() > 40
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        out.push((
            "name",
            "Enter a short name of letters, numbers, '-' or '_' (at most 40)".to_string(),
        ));
    }
    if n.purpose.trim().len() < 10 {
        out.push((
            "purpose",
            "Say what the data are for, as approved (at least 10 characters)".into(),
        ));
    }
    if n.approver.trim().is_empty() {
        out.push((
            "approver",
            "Enter who approved it (a person or committee and reference)".into(),
        ));
    }
    match NaiveDate::parse_from_str(n.ends_on.trim(), "%Y-%m-%d") {
        Ok(d) if d > today => {}
        Ok(_) => out.push(("ends_on", "The end date must be in the future".into())),
        Err(_) => out.push(("ends_on", "Enter the end date as YYYY-MM-DD".into())),
    }
    out
}

/// Registers a project: writes its new secret to `secrets` (never overwriting a file),
/// stores the project with the secret's SHA-256, and audits it.
pub async fn register(
    db: &Database,
    secrets: &Path,
    n: &NewProject,
    actor: &str,
    today: NaiveDate,
) -> Result<Project, ExtractError> {
    if let Some((field, reason)) = check_project(n, today).into_iter().next() {
        return Err(ExtractError::Invalid { field, reason });
    }
    let name = n.name.trim().to_string();
    let exists: Option<i64> =
        sqlx::query_scalar("SELECT project_id FROM research_projects WHERE name = $1")
            .bind(name.clone())
            .fetch_optional(db.pool())
            .await?;
    if exists.is_some() {
        return Err(ExtractError::ProjectExists(name));
    }
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).expect("the operating system provides random bytes");
    let hex = secret_file::hex(&key);
    let path = secret_path(secrets, &name);
    std::fs::create_dir_all(secrets)
        .map_err(|e| ExtractError::Io(secrets.display().to_string(), e))?;
    secret_file::create(&path, &key)
        .map_err(|e| ExtractError::Io(path.display().to_string(), e))?;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO research_projects (name, purpose, approver, ends_on, created_by, created_at, secret_sha256) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING project_id",
    )
    .bind(name.clone())
    .bind(n.purpose.trim().to_string())
    .bind(n.approver.trim().to_string())
    .bind(n.ends_on.trim().to_string())
    .bind(actor.to_string())
    .bind(now.clone())
    .bind(sha256_hex(hex.as_bytes()))
    .fetch_one(db.pool())
    .await?;
    db.audit(&AuditEntry {
        actor: actor.to_string(),
        action: "project.register".into(),
        record_ref: Some(name.clone()),
        detail: Some(
            serde_json::json!({"project_id": id, "purpose": n.purpose.trim(), "approver": n.approver.trim(), "ends_on": n.ends_on.trim()})
                .to_string(),
        ),
        ..Default::default()
    })
    .await?;
    Ok(Project {
        project_id: id,
        name,
        purpose: n.purpose.trim().into(),
        approver: n.approver.trim().into(),
        ends_on: NaiveDate::parse_from_str(n.ends_on.trim(), "%Y-%m-%d").unwrap_or_default(),
        created_by: actor.into(),
        created_at: now,
    })
}

/// The output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Parquet,
}

impl Format {
    pub fn parse(text: &str) -> Option<Format> {
        match text {
            "csv" => Some(Format::Csv),
            "parquet" => Some(Format::Parquet),
            _ => None,
        }
    }
    pub fn code(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Parquet => "parquet",
        }
    }
}

/// How dates are protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dates {
    /// Shifted per client by a stable offset (intervals kept).
    Shift,
    /// Generalised to the month (`YYYY-MM`; calendar kept, intervals coarse).
    Month,
}

impl Dates {
    pub fn parse(text: &str) -> Option<Dates> {
        match text {
            "shift" => Some(Dates::Shift),
            "month" => Some(Dates::Month),
            _ => None,
        }
    }
    pub fn code(self) -> &'static str {
        match self {
            Dates::Shift => "shift",
            Dates::Month => "month",
        }
    }
}

/// What to release.
#[derive(Debug, Clone)]
pub struct Request {
    pub project: String,
    pub format: Format,
    pub dates: Dates,
    /// Service references; `None` for every service.
    pub services: Option<Vec<String>>,
    /// Who releases it, for the register and the audit log.
    pub actor: String,
    /// Today (UK), to refuse a project past its end.
    pub today: NaiveDate,
}

/// A file of a release.
#[derive(Debug, Clone)]
pub struct ReleasedFile {
    pub name: String,
    pub rows: usize,
    pub sha256: String,
    pub bytes: Vec<u8>,
}

/// A release made.
#[derive(Debug, Clone)]
pub struct Release {
    pub release_id: i64,
    pub project: String,
    pub files: Vec<ReleasedFile>,
    /// The generalisation applied, in words.
    pub generalisation: Vec<String>,
    /// The smallest group on the quasi-identifiers.
    pub smallest_group: i64,
    /// Clients left out (see `anonymise`).
    pub withheld: usize,
}

/// A column's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Col {
    Text,
    Int,
    Real,
}

/// A table of the extract: columns and rows of optional text cells.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    pub name: &'static str,
    pub columns: Vec<(&'static str, Col)>,
    pub rows: Vec<Vec<Option<String>>>,
}

/// One client's quasi-identifiers at every level of generalisation.
struct Person {
    key: (i64, i64),
    pseudonym: String,
    offset_days: i64,
    service_ref: String,
    age: i64,
    sex: String,
    ethnicity: String,
    lsoa: Option<String>,
    lad: Option<String>,
    region: Option<String>,
    imd_quintile: Option<i64>,
}

/// The steps of generalisation, in order.
const STEPS: [&str; 5] = [
    "area: local authority instead of LSOA",
    "ethnic group: broad group instead of category",
    "age: wide bands (16-34, 35-54, 55+) instead of ten-year bands",
    "area: region instead of local authority",
    "area: left out",
];

fn age_band(age: i64, wide: bool) -> &'static str {
    if wide {
        match age {
            ..35 => "16-34",
            35..55 => "35-54",
            _ => "55+",
        }
    } else {
        match age {
            ..25 => "16-24",
            25..35 => "25-34",
            35..45 => "35-44",
            45..55 => "45-54",
            55..65 => "55-64",
            65..75 => "65-74",
            _ => "75+",
        }
    }
}

/// The broad group of an NHS ethnic category (A-C White, D-G Mixed, H-L Asian, M-P
/// Black, R-S Other, otherwise not stated).
fn broad_ethnic(code: &str) -> &'static str {
    match code {
        "A" | "B" | "C" => "white",
        "D" | "E" | "F" | "G" => "mixed",
        "H" | "J" | "K" | "L" => "asian",
        "M" | "N" | "P" => "black",
        "R" | "S" => "other",
        _ => "not_stated",
    }
}

/// The quasi-identifiers of a client as released.
type Quasi = (String, String, String, String);

/// Which of a client's quasi-identifiers are suppressed (shown as `*`), in the order they
/// are given up: ethnic group, sex, age band, area.
type Mask = [bool; 4];

impl Person {
    /// The quasi-identifiers at generalisation `level`, with the masked ones suppressed.
    fn released(&self, level: usize, mask: &Mask) -> Quasi {
        let (age, sex, eth, area) = self.quasi(level);
        let star = |hide: bool, v: String| if hide { "*".to_string() } else { v };
        (
            star(mask[2], age),
            star(mask[1], sex),
            star(mask[0], eth),
            star(mask[3], area),
        )
    }

    /// (age band, sex, ethnic group, area) at generalisation `level` (0 to 5).
    fn quasi(&self, level: usize) -> Quasi {
        let area = match level {
            0 => self.lsoa.clone(),
            1..=3 => self.lad.clone(),
            4 => self.region.clone(),
            _ => Some("england".into()),
        }
        .unwrap_or_else(|| "unknown".into());
        let ethnic = if level >= 2 {
            broad_ethnic(&self.ethnicity).to_string()
        } else {
            self.ethnicity.clone()
        };
        (
            age_band(self.age, level >= 3).to_string(),
            self.sex.clone(),
            ethnic,
            area,
        )
    }
}

/// Share of clients whose quasi-identifiers may be suppressed before the next, coarser
/// generalisation of everyone is preferred.
const SUPPRESSION_LIMIT: f64 = 0.05;

/// Finds the least generalisation that gives every group on the quasi-identifiers at
/// least `K` clients: for each level of global generalisation (`STEPS`), clients still in
/// small groups give up their ethnic group, then their sex, age band and area (shown as
/// `*`) until no small group is left but, perhaps, that of clients with everything
/// suppressed; if that one is small, its clients are withheld. The first level needing
/// that for no more than 5% of clients is used; failing that, the one suppressing
/// fewest (the finer of equals). When every
/// client would be withheld (fewer than `K` in all), the release is refused.
fn anonymise(people: &[Person]) -> Result<Anonymised, ExtractError> {
    let groups = |level: usize, masks: &[Mask]| -> HashMap<Quasi, i64> {
        let mut g: HashMap<Quasi, i64> = HashMap::new();
        for (p, m) in people.iter().zip(masks) {
            *g.entry(p.released(level, m)).or_default() += 1;
        }
        g
    };
    if people.is_empty() {
        return Ok(Anonymised {
            level: 0,
            masks: vec![],
            withheld: vec![],
            smallest: 0,
        });
    }
    let mut last = 0;
    let mut best: Option<(usize, Anonymised)> = None;
    for level in 0..=STEPS.len() {
        let mut masks = vec![[false; 4]; people.len()];
        for step in 0..4 {
            let g = groups(level, &masks);
            let small: Vec<usize> = (0..people.len())
                .filter(|i| g[&people[*i].released(level, &masks[*i])] < K)
                .collect();
            if small.is_empty() {
                break;
            }
            for i in small {
                masks[i][step] = true;
            }
        }
        // Only the group of clients with everything suppressed can still be small: its
        // clients are withheld from the release altogether.
        let g = groups(level, &masks);
        let withheld: Vec<bool> = (0..people.len())
            .map(|i| g[&people[i].released(level, &masks[i])] < K)
            .collect();
        let n_withheld = withheld.iter().filter(|w| **w).count();
        let suppressed = masks.iter().filter(|m| m.iter().any(|x| *x)).count();
        let few = suppressed as f64 <= SUPPRESSION_LIMIT * people.len() as f64;
        if n_withheld < people.len() {
            let kept: Vec<i64> = g.values().copied().filter(|n| *n >= K).collect();
            let smallest = kept.into_iter().min().unwrap_or(0);
            let candidate = Anonymised {
                level,
                masks,
                withheld,
                smallest,
            };
            if few {
                return Ok(candidate);
            }
            // Otherwise the level that suppresses fewest (the finer on a tie).
            if best.as_ref().is_none_or(|(n, _)| suppressed < *n) {
                best = Some((suppressed, candidate));
            }
        }
        last = n_withheld as i64;
    }
    if let Some((_, chosen)) = best {
        return Ok(chosen);
    }
    Err(ExtractError::BelowK {
        records: last,
        groups: 1,
        k: K,
    })
}

/// What `anonymise` decided.
struct Anonymised {
    /// The level of global generalisation (`STEPS[..level]` applied).
    level: usize,
    /// Each client's suppressed attributes.
    masks: Vec<Mask>,
    /// Clients left out: even with everything suppressed, fewer than `K` like them.
    withheld: Vec<bool>,
    /// The smallest group released.
    smallest: i64,
}

fn hmac(key: &[u8], text: &str) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
    mac.update(text.as_bytes());
    mac.finalize().into_bytes().into()
}

/// The pseudonym of a client in a project.
pub fn pseudonym(key: &[u8], service_ref: &str, client_ref: &str) -> String {
    let h = hmac(key, &format!("client\u{1f}{service_ref}\u{1f}{client_ref}"));
    let hex = secret_file::hex(&h[..10]);
    format!("P{hex}")
}

/// The date offset of a client in a project: -182 to +182 days, never 0.
fn offset_days(key: &[u8], service_ref: &str, client_ref: &str) -> i64 {
    let h = hmac(key, &format!("dates\u{1f}{service_ref}\u{1f}{client_ref}"));
    let n = u64::from_le_bytes(h[..8].try_into().expect("8 bytes"));
    let o = (n % 364) as i64 - 182;
    if o >= 0 { o + 1 } else { o }
}

fn age_at(birth: NaiveDate, on: NaiveDate) -> i64 {
    let mut age = on.year() - birth.year();
    if (on.month(), on.day()) < (birth.month(), birth.day()) {
        age -= 1;
    }
    age as i64
}

/// Reads a project's secret and checks it against the register.
fn read_secret(secrets: &Path, name: &str, expected: &str) -> Result<Vec<u8>, ExtractError> {
    let path = secret_path(secrets, name);
    let bad = || ExtractError::Secret {
        project: name.to_string(),
        path: path.display().to_string(),
    };
    let hex = secret_file::read_hex(&path).map_err(|_| bad())?;
    if sha256_hex(hex.as_bytes()) != expected {
        return Err(bad());
    }
    secret_file::from_hex(&hex)
        .filter(|k| k.len() == 32)
        .ok_or_else(bad)
}

/// Makes a release: reads the records of the services, pseudonymises them, generalises
/// until every group has at least `K` clients (or refuses), writes the files in memory,
/// and records the release.
pub async fn release(
    db: &Database,
    secrets: &Path,
    req: &Request,
) -> Result<Release, ExtractError> {
    let row: Option<ProjectRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {PROJECT_COLUMNS} FROM research_projects WHERE name = $1"
    )))
    .bind(req.project.clone())
    .fetch_optional(db.pool())
    .await?;
    let (project, fingerprint) = row
        .map(project_of)
        .ok_or_else(|| ExtractError::UnknownProject(req.project.clone()))?;
    if req.today > project.ends_on {
        return Err(ExtractError::Ended(project.name, project.ends_on));
    }
    let key = read_secret(secrets, &project.name, &fingerprint)?;

    let services: Vec<(i64, String)> =
        sqlx::query_as("SELECT service_id, service_ref FROM services ORDER BY service_ref")
            .fetch_all(db.pool())
            .await?;
    let services: Vec<(i64, String)> = match &req.services {
        None => services,
        Some(list) => {
            for s in list {
                if !services.iter().any(|(_, r)| r == s) {
                    return Err(ExtractError::Invalid {
                        field: "services",
                        reason: format!("there is no service {s}"),
                    });
                }
            }
            services
                .into_iter()
                .filter(|(_, r)| list.contains(r))
                .collect()
        }
    };
    let ids: Vec<String> = services.iter().map(|(i, _)| i.to_string()).collect();
    let in_scope = if ids.is_empty() {
        "(NULL)".to_string()
    } else {
        format!("({})", ids.join(", "))
    };

    // Clients with a referral, with their first referral date.
    type ClientRow = (
        i64,
        i64,
        String,
        String,
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<i64>,
    );
    let clients: Vec<ClientRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT c.service_id, c.client_id, s.service_ref, c.client_ref, c.date_of_birth, c.sex, c.ethnicity, \
                c.lsoa11cd, c.lad_cd, lr.rgn_cd, c.imd_quintile \
         FROM clients c JOIN services s ON s.service_id = c.service_id \
         LEFT JOIN ref_lad_region lr ON lr.lad_cd = c.lad_cd \
         WHERE c.service_id IN {in_scope} \
           AND EXISTS (SELECT 1 FROM referrals r WHERE r.service_id = c.service_id AND r.client_id = c.client_id) \
           AND NOT EXISTS (SELECT 1 FROM restrictions x WHERE x.service_id = c.service_id AND x.client_ref = c.client_ref) \
         ORDER BY s.service_ref, c.client_ref"
    )))
    .fetch_all(db.pool())
    .await?;
    let first_referral: HashMap<(i64, i64), String> =
        sqlx::query_as::<_, (i64, i64, String)>(sqlx::AssertSqlSafe(format!(
            "SELECT service_id, client_id, MIN(received_on) FROM referrals \
             WHERE service_id IN {in_scope} GROUP BY service_id, client_id"
        )))
        .fetch_all(db.pool())
        .await?
        .into_iter()
        .map(|(s, c, d)| ((s, c), d))
        .collect();
    let date = |t: &str| NaiveDate::parse_from_str(t, "%Y-%m-%d").ok();
    let mut people: Vec<Person> = Vec::new();
    for (sid, cid, sref, cref, dob, sex, eth, lsoa, lad, rgn, imdq) in clients {
        let (Some(birth), Some(first)) = (
            date(&dob),
            first_referral.get(&(sid, cid)).and_then(|d| date(d)),
        ) else {
            continue;
        };
        people.push(Person {
            key: (sid, cid),
            pseudonym: pseudonym(&key, &sref, &cref),
            offset_days: offset_days(&key, &sref, &cref),
            service_ref: sref,
            age: age_at(birth, first),
            sex,
            ethnicity: eth,
            lsoa,
            lad,
            region: rgn,
            imd_quintile: imdq,
        });
    }

    if people.is_empty() {
        return Err(ExtractError::Invalid {
            field: "services",
            reason:
                "no client of these services has been referred yet: there is nothing to release"
                    .into(),
        });
    }
    // k-anonymity (see `anonymise`): withheld clients leave every table.
    let Anonymised {
        level,
        masks,
        withheld,
        smallest: smallest_group,
    } = anonymise(&people)?;
    let suppressed = masks.iter().filter(|m| m.iter().any(|x| *x)).count();
    let n_withheld = withheld.iter().filter(|w| **w).count();
    let (people, masks): (Vec<Person>, Vec<Mask>) = people
        .into_iter()
        .zip(masks)
        .zip(withheld)
        .filter(|(_, w)| !w)
        .map(|(pm, _)| pm)
        .unzip();
    let by_key: HashMap<(i64, i64), &Person> = people.iter().map(|p| (p.key, p)).collect();

    let shift = |p: &Person, d: Option<String>| -> Option<String> {
        let d = date(d.as_deref()?)?;
        Some(match req.dates {
            Dates::Shift => (d + chrono::Duration::days(p.offset_days))
                .format("%Y-%m-%d")
                .to_string(),
            Dates::Month => d.format("%Y-%m").to_string(),
        })
    };

    let mut tables = Vec::new();
    tables.push(Table {
        name: "clients",
        columns: vec![
            ("pseudonym", Col::Text),
            ("service_ref", Col::Text),
            ("age_band", Col::Text),
            ("sex", Col::Text),
            ("ethnic_group", Col::Text),
            ("area", Col::Text),
            ("imd_quintile", Col::Int),
        ],
        rows: people
            .iter()
            .zip(&masks)
            .map(|(p, mask)| {
                let (age, sex, eth, area) = p.released(level, mask);
                vec![
                    Some(p.pseudonym.clone()),
                    Some(p.service_ref.clone()),
                    Some(age),
                    Some(sex),
                    Some(eth),
                    Some(area),
                    p.imd_quintile.map(|q| q.to_string()),
                ]
            })
            .collect(),
    });

    // Episodes, numbered within each client in order of first contact.
    let episodes: Vec<sqlx::any::AnyRow> = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT e.service_id, es.client_id, e.episode_id, e.kind, e.primary_issue, r.source, r.received_on, \
                e.first_contact_on, e.closed_on, e.exit_reason, es.plan_agreed_on, \
                es.sessions_attended, es.sessions_dna, es.goals, es.goals_fully, es.goals_partly, \
                es.wider_issues, es.onward_referrals \
         FROM episodes e JOIN referrals r ON r.service_id = e.service_id AND r.referral_id = e.referral_id \
         JOIN episode_summaries es ON es.service_id = e.service_id AND es.episode_id = e.episode_id \
         WHERE e.service_id IN {in_scope} \
         ORDER BY e.service_id, es.client_id, e.first_contact_on, e.episode_ref"
    )))
    .fetch_all(db.pool())
    .await?;
    let mut numbers: HashMap<(i64, i64), i64> = HashMap::new();
    let mut episode_no: HashMap<(i64, i64), (i64, i64)> = HashMap::new();
    let mut rows = Vec::new();
    for e in &episodes {
        use sqlx::Row;
        let (sid, cid, eid): (i64, i64, i64) = (e.try_get(0)?, e.try_get(1)?, e.try_get(2)?);
        let Some(p) = by_key.get(&(sid, cid)) else {
            continue;
        };
        let n = numbers.entry((sid, cid)).or_default();
        *n += 1;
        episode_no.insert((sid, eid), (cid, *n));
        let mut row = vec![
            Some(p.pseudonym.clone()),
            Some(n.to_string()),
            Some(p.service_ref.clone()),
        ];
        for i in 3..=5 {
            row.push(e.try_get::<Option<String>, _>(i)?);
        }
        for i in 6..=8 {
            row.push(shift(p, e.try_get::<Option<String>, _>(i)?));
        }
        row.push(e.try_get::<Option<String>, _>(9)?);
        row.push(shift(p, e.try_get::<Option<String>, _>(10)?));
        for i in 11..=17 {
            row.push(e.try_get::<Option<i64>, _>(i)?.map(|v| v.to_string()));
        }
        rows.push(row);
    }
    tables.push(Table {
        name: "episodes",
        columns: vec![
            ("pseudonym", Col::Text),
            ("episode_number", Col::Int),
            ("service_ref", Col::Text),
            ("kind", Col::Text),
            ("primary_issue", Col::Text),
            ("referral_source", Col::Text),
            ("referral_date", Col::Text),
            ("first_contact_date", Col::Text),
            ("closed_date", Col::Text),
            ("exit_reason", Col::Text),
            ("plan_date", Col::Text),
            ("sessions_attended", Col::Int),
            ("sessions_not_attended", Col::Int),
            ("goals", Col::Int),
            ("goals_fully_achieved", Col::Int),
            ("goals_partly_achieved", Col::Int),
            ("wider_issues", Col::Int),
            ("onward_referrals", Col::Int),
        ],
        rows,
    });

    // Assessments: every measure of the catalogue, and the derived BMI after the weight.
    let mut measures: Vec<(&'static str, Col)> = Vec::new();
    for m in dcrs_domain::catalogue::assessment_measures() {
        use dcrs_domain::catalogue::Shape;
        measures.push((
            m.name,
            match m.shape {
                Shape::Number { whole: true, .. } => Col::Int,
                Shape::Number { whole: false, .. } => Col::Real,
                _ => Col::Text,
            },
        ));
        if m.name == "weight_kg" {
            measures.push(("bmi", Col::Real));
        }
    }
    let select: Vec<String> = measures
        .iter()
        .map(|(m, c)| match c {
            Col::Text => format!("a.{m}"),
            _ => format!("CAST(a.{m} AS TEXT)"),
        })
        .collect();
    let assessments: Vec<sqlx::any::AnyRow> = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT a.service_id, a.episode_id, a.occasion, a.assessed_on, {} FROM assessments a \
         WHERE a.service_id IN {in_scope} ORDER BY a.service_id, a.episode_id, a.assessed_on, a.assessment_ref",
        select.join(", ")
    )))
    .fetch_all(db.pool())
    .await?;
    let mut rows = Vec::new();
    {
        use sqlx::Row;
        for a in &assessments {
            let sid: i64 = a.try_get(0)?;
            let eid: i64 = a.try_get(1)?;
            let Some((cid, n)) = episode_no.get(&(sid, eid)) else {
                continue;
            };
            let Some(p) = by_key.get(&(sid, *cid)) else {
                continue;
            };
            let mut row = vec![
                Some(p.pseudonym.clone()),
                Some(n.to_string()),
                a.try_get::<String, _>(2).ok(),
                shift(p, a.try_get::<String, _>(3).ok()),
            ];
            for (i, (_, col)) in measures.iter().enumerate() {
                let v: Option<String> = a.try_get(4 + i)?;
                row.push(v.map(|t| number_text(&t, *col)));
            }
            rows.push(row);
        }
    }
    let mut columns = vec![
        ("pseudonym", Col::Text),
        ("episode_number", Col::Int),
        ("occasion", Col::Text),
        ("assessed_date", Col::Text),
    ];
    columns.extend(measures.iter().copied());
    tables.push(Table {
        name: "assessments",
        columns,
        rows,
    });

    // Goals: domain and status only (the description is free text).
    let goals: Vec<(i64, i64, String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT g.service_id, p.episode_id, g.domain, g.status FROM goals g \
         JOIN plans p ON p.service_id = g.service_id AND p.plan_id = g.plan_id \
         WHERE g.service_id IN {in_scope} ORDER BY g.service_id, p.episode_id, g.goal_ref"
    )))
    .fetch_all(db.pool())
    .await?;
    let rows = goals
        .into_iter()
        .filter_map(|(sid, eid, domain, status)| {
            let (cid, n) = episode_no.get(&(sid, eid))?;
            let p = by_key.get(&(sid, *cid))?;
            Some(vec![
                Some(p.pseudonym.clone()),
                Some(n.to_string()),
                Some(domain),
                Some(status),
            ])
        })
        .collect();
    tables.push(Table {
        name: "goals",
        columns: vec![
            ("pseudonym", Col::Text),
            ("episode_number", Col::Int),
            ("domain", Col::Text),
            ("status", Col::Text),
        ],
        rows,
    });

    let mut files = Vec::new();
    for t in &tables {
        let (name, bytes) = match req.format {
            Format::Csv => (format!("{}.csv", t.name), csv_bytes(t)?),
            Format::Parquet => (
                format!("{}.parquet", t.name),
                parquet_out::write(t)
                    .map_err(|e| ExtractError::Output(format!("{}.parquet", t.name), e))?,
            ),
        };
        files.push(ReleasedFile {
            sha256: sha256_hex(&bytes),
            rows: t.rows.len(),
            name,
            bytes,
        });
    }
    let mut generalisation: Vec<String> = STEPS[..level].iter().map(|s| s.to_string()).collect();
    if suppressed > n_withheld {
        generalisation.push(format!(
            "{} client(s) in groups still smaller than {K}: some of their age band, sex, ethnic group or area shown as *",
            suppressed - n_withheld
        ));
    }
    if n_withheld > 0 {
        generalisation.push(format!(
            "{n_withheld} client(s) withheld: fewer than {K} left even with everything suppressed"
        ));
    }

    // The register and the audit log.
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let listed: Vec<serde_json::Value> = files
        .iter()
        .map(|f| serde_json::json!({"name": f.name, "rows": f.rows, "sha256": f.sha256}))
        .collect();
    let scope: Vec<&str> = services.iter().map(|(_, r)| r.as_str()).collect();
    let detail = serde_json::json!({
        "services": scope, "format": req.format.code(), "dates": req.dates.code(),
        "generalisation": generalisation, "smallest_group": smallest_group, "k": K,
        "clients": people.len(), "withheld": n_withheld,
    });
    // The release is registered and audited in one transaction, committed before any
    // file is handed back to be written: no release without its entry.
    let mut tx = db.begin().await?;
    let release_id: i64 = sqlx::query_scalar(
        "INSERT INTO extract_releases (project_id, released_by, released_at, purpose, files, total_rows, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING release_id",
    )
    .bind(project.project_id)
    .bind(req.actor.clone())
    .bind(now)
    .bind(project.purpose.clone())
    .bind(serde_json::Value::Array(listed.clone()).to_string())
    .bind(files.iter().map(|f| f.rows as i64).sum::<i64>())
    .bind(detail.to_string())
    .fetch_one(tx.conn())
    .await?;
    tx.audit(&AuditEntry {
        actor: req.actor.clone(),
        action: "extract.release".into(),
        record_ref: Some(project.name.clone()),
        detail: Some(
            serde_json::json!({"release_id": release_id, "files": listed, "detail": detail})
                .to_string(),
        ),
        ..Default::default()
    })
    .await?;
    tx.commit().await?;
    Ok(Release {
        release_id,
        project: project.name,
        files,
        generalisation,
        smallest_group,
        withheld: n_withheld,
    })
}

/// A stored number as the extract writes it (`75` not `75.0` for whole numbers).
fn number_text(t: &str, col: Col) -> String {
    match (col, t.parse::<f64>()) {
        (Col::Int, Ok(x)) => format!("{}", x as i64),
        (Col::Real, Ok(x)) => format!("{x}"),
        _ => t.to_string(),
    }
}

fn csv_bytes(t: &Table) -> Result<Vec<u8>, ExtractError> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    let bad = |e: csv::Error| ExtractError::Output(format!("{}.csv", t.name), e.to_string());
    w.write_record(t.columns.iter().map(|(n, _)| *n))
        .map_err(bad)?;
    // Text that a spreadsheet would run as a formula is neutralised; numbers are not.
    for r in &t.rows {
        for c in r {
            let cell = dcrs_domain::field::spreadsheet_safe(c.as_deref().unwrap_or(""));
            w.write_field(cell.as_bytes()).map_err(bad)?;
        }
        w.write_record(None::<&[u8]>).map_err(bad)?;
    }
    w.into_inner()
        .map_err(|e| ExtractError::Output(format!("{}.csv", t.name), e.to_string()))
}

/// A release as the register lists it.
#[derive(Debug, Clone)]
pub struct RegisterEntry {
    pub release_id: i64,
    pub project: String,
    pub released_by: String,
    pub released_at: String,
    pub purpose: String,
    /// `[{"name", "rows", "sha256"}]`.
    pub files: serde_json::Value,
    pub total_rows: i64,
    pub detail: serde_json::Value,
}

/// The release register, newest first.
pub async fn register_entries(db: &Database) -> Result<Vec<RegisterEntry>, ExtractError> {
    type Row = (i64, String, String, String, String, String, i64, String);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT r.release_id, p.name, r.released_by, r.released_at, r.purpose, r.files, r.total_rows, r.detail \
         FROM extract_releases r JOIN research_projects p ON p.project_id = r.project_id \
         ORDER BY r.release_id DESC",
    )
    .fetch_all(db.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| RegisterEntry {
            release_id: r.0,
            project: r.1,
            released_by: r.2,
            released_at: r.3,
            purpose: r.4,
            files: serde_json::from_str(&r.5).unwrap_or_default(),
            total_rows: r.6,
            detail: serde_json::from_str(&r.7).unwrap_or_default(),
        })
        .collect())
}
