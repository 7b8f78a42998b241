//! Section 6: data quality. Completeness of each optional field, postcodes not found,
//! values flagged out of range, possible duplicate clients, late entries through the
//! application, and open episodes with no recent session.

use crate::ReportError;
use crate::data::{fill, store};
use crate::doc::{Cell, Draft, DraftSection, DraftTable, Part, Unit, col};
use chrono::NaiveDate;
use dcrs_store::Database;
use sqlx::Row;
use std::collections::BTreeMap;

/// The fields whose completeness is reported, by record kind: the client's and
/// referral's optional fields, every assessment measure of the catalogue that is not
/// conditional (cigarettes are recorded for current smokers only), and goal targets.
pub(crate) fn fields() -> [(&'static str, Vec<&'static str>); 4] {
    [
        (
            "client",
            vec![
                "given_name",
                "family_name",
                "nhs_number",
                "postcode",
                "ethnicity",
                "sex",
                "gp_registered",
                "employment",
                "disability",
                "gp_practice_code",
            ],
        ),
        ("referral", vec!["referrer_org_ref", "reason"]),
        ("assessment", assessment_fields()),
        ("goal", vec!["target_on"]),
    ]
}

fn assessment_fields() -> Vec<&'static str> {
    dcrs_domain::catalogue::assessment_measures()
        .into_iter()
        .filter(|m| !m.conditional)
        .map(|m| m.name)
        .collect()
}

/// The assessment counts' statement: one column per measure of [`fields`], from the
/// catalogue, in place of `{recorded}` in `quality_assessments.sql`.
pub(crate) fn assessments_sql() -> String {
    let recorded: Vec<String> = assessment_fields()
        .iter()
        .map(|m| format!("CAST(SUM(CASE WHEN {m} IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT)"))
        .collect();
    include_str!("sql/quality_assessments.sql").replace("{recorded}", &recorded.join(",\n  "))
}

/// The rules applied to rows in the program rather than in SQL, as text: kept counts
/// made under other rules are not reused. Change it with any of them.
pub(crate) const RULES: &str = "late: > 30 days; open without session: 90 days; \
    names: family 3 letters, given 1 letter, missing names match, different NHS numbers do not";

/// One service's data-quality counts.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Quality {
    /// Per record kind (index into the field list): records, and recorded per field.
    pub completeness: [(i64, Vec<i64>); 4],
    /// Clients with a postcode that was not found in the reference data.
    pub postcodes_not_found: i64,
    /// Assessments whose BMI is outside 10–90.
    pub values_flagged: i64,
    /// Clients sharing an NHS number, or a date of birth and postcode with a similar name.
    pub possible_duplicates: i64,
    /// Records entered through the application more than 30 days after the event.
    pub late_entries: i64,
    /// Open episodes with no session in the 90 days before the period's end.
    pub open_without_recent_session: i64,
    /// Episodes open at the end of the period.
    pub open_at_end: i64,
}

impl crate::data::Kept for Quality {
    const TABLE: &'static str = "report_quality";
}

impl Quality {
    /// Adds another service's counts.
    pub fn merge(&mut self, o: &Quality) {
        for (k, (n, fields)) in o.completeness.iter().enumerate() {
            let mine = &mut self.completeness[k];
            mine.0 += n;
            if mine.1.len() < fields.len() {
                mine.1.resize(fields.len(), 0);
            }
            for (i, v) in fields.iter().enumerate() {
                mine.1[i] += v;
            }
        }
        self.postcodes_not_found += o.postcodes_not_found;
        self.values_flagged += o.values_flagged;
        self.possible_duplicates += o.possible_duplicates;
        self.late_entries += o.late_entries;
        self.open_without_recent_session += o.open_without_recent_session;
        self.open_at_end += o.open_at_end;
    }
}

/// Two names are similar when both are missing or their first three letters (ignoring
/// case, spaces and punctuation) agree for the family name and the first letter for the
/// given name. Names are compared only here and never leave this function.
fn similar(a: (&Option<String>, &Option<String>), b: (&Option<String>, &Option<String>)) -> bool {
    let norm = |s: &Option<String>, n: usize| -> Option<String> {
        let t: String = s
            .as_deref()?
            .chars()
            .filter(|c| c.is_alphabetic())
            .flat_map(char::to_lowercase)
            .take(n)
            .collect();
        (!t.is_empty()).then_some(t)
    };
    let agree = |x: Option<String>, y: Option<String>| match (x, y) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    };
    agree(norm(a.1, 3), norm(b.1, 3)) && agree(norm(a.0, 1), norm(b.0, 1))
}

/// Reads the data-quality counts of each service for the period.
pub async fn facts(
    db: &Database,
    ids: &[i64],
    from: NaiveDate,
    to: NaiveDate,
    scope: crate::data::Scope,
) -> Result<BTreeMap<i64, Quality>, ReportError> {
    let all = scope == crate::data::Scope::All;
    let mut out: BTreeMap<i64, Quality> = ids.iter().map(|&i| (i, Quality::default())).collect();
    if ids.is_empty() {
        return Ok(out);
    }
    let run_if =
        |wanted: bool, sql: &str| crate::data::rows_if(wanted, db, fill(sql, ids, from, to));
    let run = |sql: &str| run_if(all, sql);
    let int = |r: &sqlx::any::AnyRow, i: usize| -> Result<i64, ReportError> {
        Ok(r.try_get::<Option<i64>, _>(i).map_err(store)?.unwrap_or(0))
    };
    let assessments = assessments_sql();
    let queries = [
        include_str!("sql/quality_clients.sql"),
        include_str!("sql/quality_referrals.sql"),
        assessments.as_str(),
        include_str!("sql/quality_goals.sql"),
    ];
    let fields = fields();
    for (k, sql) in queries.iter().enumerate() {
        // A dashboard shows the clients' postcodes not found, from the first.
        for r in run_if(all || k == 0, sql).await? {
            let q = out.entry(int(&r, 0)?).or_default();
            let n_fields = fields[k].1.len();
            let recorded: Vec<i64> = (0..n_fields)
                .map(|i| int(&r, i + 2))
                .collect::<Result<_, _>>()?;
            q.completeness[k] = (int(&r, 1)?, recorded);
            if k == 0 {
                q.postcodes_not_found = int(&r, 2 + n_fields)?;
            }
            if k == 2 {
                q.values_flagged = int(&r, 2 + n_fields)?;
            }
        }
    }
    for r in run(include_str!("sql/quality_late.sql")).await? {
        let event: String = r.try_get(1).map_err(store)?;
        let created: String = r.try_get(2).map_err(store)?;
        let (Ok(event), Some(Ok(created))) = (
            NaiveDate::parse_from_str(&event, "%Y-%m-%d"),
            created
                .get(..10)
                .map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d")),
        ) else {
            continue;
        };
        if (created - event).num_days() > 30 {
            out.entry(int(&r, 0)?).or_default().late_entries += 1;
        }
    }
    // Each client flagged once, whether by NHS number, by date of birth, postcode and
    // name, or both.
    let mut flagged: std::collections::BTreeSet<(i64, i64)> = Default::default();
    for r in run(include_str!("sql/quality_nhs_duplicates.sql")).await? {
        flagged.insert((int(&r, 0)?, int(&r, 1)?));
    }
    let rows = run(include_str!("sql/quality_dob_postcode.sql")).await?;
    type Person = (i64, Option<String>, Option<String>, Option<String>);
    let mut groups: BTreeMap<(i64, String, String), Vec<Person>> = BTreeMap::new();
    for r in &rows {
        let key = (
            int(r, 0)?,
            r.try_get::<String, _>(2).map_err(store)?,
            r.try_get::<String, _>(3).map_err(store)?,
        );
        groups.entry(key).or_default().push((
            int(r, 1)?,
            r.try_get(4).map_err(store)?,
            r.try_get(5).map_err(store)?,
            r.try_get(6).map_err(store)?,
        ));
    }
    for ((service, _, _), people) in groups {
        for (i, a) in people.iter().enumerate() {
            let matched = people.iter().enumerate().any(|(j, b)| {
                i != j
                    && similar((&a.1, &a.2), (&b.1, &b.2))
                    // Two different NHS numbers are two people.
                    && !matches!((&a.3, &b.3), (Some(x), Some(y)) if x != y)
            });
            if matched {
                flagged.insert((service, a.0));
            }
        }
    }
    for (service, _) in flagged {
        out.entry(service).or_default().possible_duplicates += 1;
    }
    let stale = (to - chrono::Duration::days(90)).to_string();
    let open = include_str!("sql/quality_open.sql").replace("{stale}", &stale);
    for r in run_if(true, &open).await? {
        let q = out.entry(int(&r, 0)?).or_default();
        q.open_at_end += int(&r, 1)?;
        q.open_without_recent_session += int(&r, 2)?;
    }
    Ok(out)
}

/// Builds the data-quality section.
pub fn section(d: &mut Draft, q: &Quality) -> DraftSection {
    let mut rows = Vec::new();
    for (k, (kind, fields)) in fields().iter().enumerate() {
        let (n, recorded) = &q.completeness[k];
        let n_id = d.count(*n);
        for (i, field) in fields.iter().enumerate() {
            let r_id = d.count(recorded.get(i).copied().unwrap_or(0));
            let missing = d.count(n - recorded.get(i).copied().unwrap_or(0));
            d.sum(n_id, vec![r_id, missing]);
            rows.push(vec![
                Cell::Label((*kind).into()),
                Cell::Label((*field).into()),
                Cell::Count(n_id),
                Cell::Count(r_id),
                Cell::Count(missing),
                Cell::Share {
                    num: r_id,
                    den: n_id,
                    part: Part::Point,
                },
            ]);
        }
    }
    let completeness = DraftTable {
        id: "field_completeness".into(),
        title: "Completeness of optional fields".into(),
        columns: vec![
            col("record", "Record", Unit::Text),
            col("field", "Field", Unit::Text),
            col("records", "Records", Unit::Count),
            col("recorded", "Recorded", Unit::Count),
            col("missing", "Not recorded", Unit::Count),
            col("share_recorded", "Share recorded", Unit::Proportion),
        ],
        rows,
        note: None,
    };
    let open = d.count(q.open_at_end);
    let stale = d.count(q.open_without_recent_session);
    let checks = DraftTable {
        id: "data_quality_checks".into(),
        title: "Records to check".into(),
        columns: vec![
            col("check", "Check", Unit::Text),
            col("count", "Records", Unit::Count),
        ],
        rows: vec![
            vec![
                Cell::Label("Client postcodes not found in the reference data".into()),
                Cell::Count(d.count(q.postcodes_not_found)),
            ],
            vec![
                Cell::Label("Assessments with a BMI outside 10-90".into()),
                Cell::Count(d.count(q.values_flagged)),
            ],
            vec![
                Cell::Label("Possible duplicate clients".into()),
                Cell::Count(d.count(q.possible_duplicates)),
            ],
            vec![
                Cell::Label(
                    "Records entered through the application more than 30 days after the event"
                        .into(),
                ),
                Cell::Count(d.count(q.late_entries)),
            ],
            vec![
                Cell::Label("Episodes open at the period's end".into()),
                Cell::Count(open),
            ],
            vec![
                Cell::Label(
                    "Open episodes with no session in the 90 days before the period's end".into(),
                ),
                Cell::Count(stale),
            ],
        ],
        note: None,
    };
    DraftSection {
        id: "data-quality".into(),
        title: "Data quality".into(),
        definitions: vec![
            "Completeness: of clients with an episode opened in the period, referrals received, assessments made and goals on plans agreed in the period, how many have each optional field recorded; a code meaning not stated or not known counts as not recorded.".into(),
            "Postcodes not found: clients of the period whose postcode is not in the loaded postcode lookup (they count as quintile unknown). Values flagged: assessments in the period whose derived BMI is outside 10-90.".into(),
            "Possible duplicate clients: clients of the service sharing an NHS number with another, or sharing a date of birth and postcode with another whose family name starts with the same three letters and given name with the same letter (missing names do not rule a match out; two different NHS numbers do).".into(),
            "Late entries: referrals, episodes, assessments and sessions of the period entered through the application more than 30 days after the event (bulk imports are not counted).".into(),
            "Open episodes with no session: open at the period's end with neither a first contact nor an attended session in the 90 days before it.".into(),
        ],
        tables: vec![completeness, checks],
    }
}

/// A client as the duplicates list shows them: reference and the details compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub client_ref: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub date_of_birth: String,
    pub postcode: Option<String>,
    pub nhs_number: Option<String>,
}

/// Two clients of a service that may be one person, and why: the pairs behind the
/// data-quality report's "Possible duplicate clients" (the same NHS number; or the same
/// date of birth and postcode, family names starting with the same three letters and
/// given names with the same letter, with no two different NHS numbers).
#[derive(Debug, Clone)]
pub struct DuplicatePair {
    pub a: Candidate,
    pub b: Candidate,
    /// The evidence, in words.
    pub why: &'static str,
}

/// The possible duplicate pairs of one service, each pair once, in order of the first
/// client's reference.
pub async fn duplicate_pairs(
    db: &Database,
    service_id: i64,
) -> Result<Vec<DuplicatePair>, ReportError> {
    const COLUMNS: &str =
        "c.client_ref, c.given_name, c.family_name, c.date_of_birth, c.postcode, c.nhs_number";
    let read = |r: &sqlx::any::AnyRow| -> Result<Candidate, ReportError> {
        Ok(Candidate {
            client_ref: r.try_get(0).map_err(store)?,
            given_name: r.try_get(1).map_err(store)?,
            family_name: r.try_get(2).map_err(store)?,
            date_of_birth: r.try_get(3).map_err(store)?,
            postcode: r.try_get(4).map_err(store)?,
            nhs_number: r.try_get(5).map_err(store)?,
        })
    };
    let mut pairs: Vec<DuplicatePair> = Vec::new();
    let mut add = |a: &Candidate, b: &Candidate, why| {
        let (a, b) = match a.client_ref < b.client_ref {
            true => (a.clone(), b.clone()),
            false => (b.clone(), a.clone()),
        };
        if !pairs
            .iter()
            .any(|p| p.a.client_ref == a.client_ref && p.b.client_ref == b.client_ref)
        {
            pairs.push(DuplicatePair { a, b, why });
        }
    };
    let by_nhs = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM clients c WHERE c.service_id = $1 AND c.nhs_number IN \
         (SELECT nhs_number FROM clients WHERE service_id = $1 AND nhs_number IS NOT NULL \
          AND nhs_number <> '' GROUP BY nhs_number HAVING COUNT(*) > 1) \
         ORDER BY c.nhs_number, c.client_ref"
    )))
    .bind(service_id)
    .fetch_all(db.pool())
    .await
    .map_err(store)?;
    let people: Vec<Candidate> = by_nhs.iter().map(read).collect::<Result<_, _>>()?;
    for (i, a) in people.iter().enumerate() {
        for b in &people[i + 1..] {
            if a.nhs_number == b.nhs_number {
                add(a, b, "the same NHS number");
            }
        }
    }
    let by_birth = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM clients c JOIN (SELECT date_of_birth, postcode FROM clients \
         WHERE service_id = $1 AND postcode IS NOT NULL AND postcode <> '' \
         AND postcode NOT LIKE 'ZZ99%' GROUP BY date_of_birth, postcode HAVING COUNT(*) > 1) d \
         ON d.date_of_birth = c.date_of_birth AND d.postcode = c.postcode \
         WHERE c.service_id = $1 ORDER BY c.date_of_birth, c.postcode, c.client_ref"
    )))
    .bind(service_id)
    .fetch_all(db.pool())
    .await
    .map_err(store)?;
    let people: Vec<Candidate> = by_birth.iter().map(read).collect::<Result<_, _>>()?;
    for (i, a) in people.iter().enumerate() {
        for b in &people[i + 1..] {
            let same_place = a.date_of_birth == b.date_of_birth && a.postcode == b.postcode;
            let named = similar(
                (&a.given_name, &a.family_name),
                (&b.given_name, &b.family_name),
            );
            let two_numbers =
                matches!((&a.nhs_number, &b.nhs_number), (Some(x), Some(y)) if x != y);
            if same_place && named && !two_numbers {
                add(
                    a,
                    b,
                    "the same date of birth and postcode, and a similar name",
                );
            }
        }
    }
    pairs.sort_by(|x, y| {
        (&x.a.client_ref, &x.b.client_ref).cmp(&(&y.a.client_ref, &y.b.client_ref))
    });
    Ok(pairs)
}
