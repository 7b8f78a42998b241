//! Builds the sections of analytics.md 1–5 from a scope's [`Facts`] as a [`Draft`]: the
//! true counts, the sums between them and the tables that show them. Nothing here
//! rounds or suppresses; [`crate::disclosure`] does that to the whole draft at once.

use crate::data::{
    AGE_BANDS, ETHNIC_GROUPS, Facts, MEASURES, MeasureSums, Need, STEPS, median_of, quintile_index,
};
use crate::doc::{
    BiasInput, Cell, Column, CountId, Draft, DraftSection, DraftTable, Part, Unit, col,
};
use crate::stats;
use chrono::NaiveDate;
use dcrs_domain::codes::{
    ExitReason, Qualification, ReferralSource, Sex, SourceGroup, YesNoUnknown,
};
use dcrs_domain::types::Quarter;

/// Counts shown in more than one section: registered once so that the disclosure rule
/// sees one cell.
#[derive(Debug, Clone, Copy)]
pub struct Common {
    new_clients: CountId,
    sessions_attended: CountId,
}

impl Common {
    /// Registers the shared counts of these facts.
    pub fn new(d: &mut Draft, f: &Facts) -> Common {
        Common {
            new_clients: d.count(f.new_clients.quintile.iter().sum()),
            sessions_attended: d.count(f.sessions[0]),
        }
    }
}

fn label(t: impl Into<String>) -> Cell {
    Cell::Label(t.into())
}

fn share(num: CountId, den: CountId) -> [Cell; 3] {
    [
        Cell::Share {
            num,
            den,
            part: Part::Point,
        },
        Cell::Share {
            num,
            den,
            part: Part::Low,
        },
        Cell::Share {
            num,
            den,
            part: Part::High,
        },
    ]
}

fn share_columns(prefix: &str, what: &str) -> [Column; 3] {
    [
        col(prefix, what, Unit::Proportion),
        col(
            &format!("{prefix}_low"),
            &format!("{what}: 95% CI low"),
            Unit::Proportion,
        ),
        col(
            &format!("{prefix}_high"),
            &format!("{what}: 95% CI high"),
            Unit::Proportion,
        ),
    ]
}

fn table(id: &str, title: &str, columns: Vec<Column>, rows: Vec<Vec<Cell>>) -> DraftTable {
    DraftTable {
        id: id.into(),
        title: title.into(),
        columns,
        rows,
        note: None,
    }
}

/// Rows of a breakdown with its total: each part's count and share of the total, then
/// the total. `total` is registered unless given.
fn breakdown_rows(
    d: &mut Draft,
    labels: &[String],
    values: &[i64],
    total: Option<CountId>,
    total_label: &str,
) -> (CountId, Vec<CountId>, Vec<Vec<Cell>>) {
    let ids: Vec<CountId> = values.iter().map(|&v| d.count(v)).collect();
    let total = total.unwrap_or_else(|| d.count(values.iter().sum()));
    d.sum(total, ids.clone());
    let mut rows: Vec<Vec<Cell>> = labels
        .iter()
        .zip(&ids)
        .map(|(l, &id)| {
            let mut r = vec![label(l.clone()), Cell::Count(id)];
            r.extend(share(id, total));
            r
        })
        .collect();
    let mut t = vec![label(total_label), Cell::Count(total)];
    t.extend(share(total, total));
    rows.push(t);
    (total, ids, rows)
}

fn breakdown_columns(first: &str, count: &str) -> Vec<Column> {
    let mut c = vec![
        col("group", first, Unit::Text),
        col("count", count, Unit::Count),
    ];
    c.extend(share_columns("share", "Share of all"));
    c
}

/// A grid of counts with row totals, column totals and the grand total, all recorded as
/// sums. Returns ids by row then column; the last row and column are the totals.
fn grid(d: &mut Draft, cells: &[Vec<i64>]) -> Vec<Vec<CountId>> {
    let cols = cells.first().map_or(0, |r| r.len());
    let mut ids: Vec<Vec<CountId>> = cells
        .iter()
        .map(|r| {
            let parts: Vec<CountId> = r.iter().map(|&v| d.count(v)).collect();
            let total = d.count(r.iter().sum());
            d.sum(total, parts.clone());
            let mut row = parts;
            row.push(total);
            row
        })
        .collect();
    let mut last = Vec::new();
    for j in 0..=cols {
        let parts: Vec<CountId> = ids.iter().map(|r| r[j]).collect();
        let total = d.count(parts.iter().map(|&p| d.counts[p]).sum());
        d.sum(total, parts);
        last.push(total);
    }
    d.sum(last[cols], last[..cols].to_vec());
    ids.push(last);
    ids
}

const QUINTILE_ROWS: [&str; 6] = [
    "Quintile 1 (most deprived)",
    "Quintile 2",
    "Quintile 3",
    "Quintile 4",
    "Quintile 5 (least deprived)",
    "Quintile unknown",
];

/// An end of a mean's interval, worked out when published (from the published count
/// under control); n/a when there is no interval.
fn bound(n: CountId, ci: Option<stats::MeanCi>, part: Part) -> Cell {
    match ci {
        Some(c) => Cell::MeanBound {
            n,
            mean: c.mean,
            sd: c.sd,
            part,
        },
        None => Cell::Stat { n, value: None },
    }
}

/// Section 1: activity.
pub fn activity(
    d: &mut Draft,
    f: &Facts,
    c: &Common,
    from: NaiveDate,
    to: NaiveDate,
) -> DraftSection {
    let sources: Vec<i64> = ReferralSource::ALL
        .iter()
        .map(|s| f.referrals.get(s.code()).copied().unwrap_or(0))
        .collect();
    let labels: Vec<String> = ReferralSource::ALL
        .iter()
        .map(|s| format!("{} ({})", s.code(), s.group().code()))
        .collect();
    let (total, source_ids, rows) = breakdown_rows(d, &labels, &sources, None, "All referrals");
    let by_source = table(
        "referrals_by_source",
        "Referrals received by source",
        breakdown_columns("Source (group)", "Referrals"),
        rows,
    );
    // Groups: each the sum of its sources, and together the total.
    let mut group_ids = Vec::new();
    let mut group_rows = Vec::new();
    for g in SourceGroup::ALL {
        let parts: Vec<CountId> = ReferralSource::ALL
            .iter()
            .zip(&source_ids)
            .filter(|(s, _)| s.group() == *g)
            .map(|(_, &id)| id)
            .collect();
        let id = d.count(parts.iter().map(|&p| d.counts[p]).sum());
        d.sum(id, parts);
        group_ids.push(id);
        let mut r = vec![label(g.code()), Cell::Count(id)];
        r.extend(share(id, total));
        group_rows.push(r);
    }
    d.sum(total, group_ids.clone());
    let by_quarter = referrals_by_quarter(d, f, from, to, &group_ids, total);
    let mut t = vec![label("All referrals"), Cell::Count(total)];
    t.extend(share(total, total));
    group_rows.push(t);
    let by_group = table(
        "referrals_by_group",
        "Referrals received by source group",
        breakdown_columns("Source group", "Referrals"),
        group_rows,
    );

    let (opened, kinds) = d.breakdown(&f.opened);
    let att = c.sessions_attended;
    let dna = d.count(f.sessions[1]);
    let cancelled = d.count(f.sessions[2]);
    let att_dna = d.count(f.sessions[0] + f.sessions[1]);
    d.sum(att_dna, vec![att, dna]);
    let recorded = d.count(f.sessions.iter().sum());
    d.sum(recorded, vec![att, dna, cancelled]);
    let open = d.count(f.open_at_end);
    let plans = d.count(f.plans_agreed);
    let goals = d.count(f.goals_set);

    let reasons: Vec<Vec<i64>> = ExitReason::ALL
        .iter()
        .map(|r| {
            let v = f.closed.get(r.code()).copied().unwrap_or([0, 0]);
            vec![v[0], v[1]]
        })
        .collect();
    let closed = grid(d, &reasons);
    let closed_full = closed[ExitReason::ALL.len()][0];
    let row = |name: &str, cells: Vec<Cell>| {
        let mut r = vec![label(name)];
        r.extend(cells);
        while r.len() < 4 {
            r.push(Cell::Reference(None));
        }
        r
    };
    let none = || Cell::Reference(None);
    let summary = table(
        "activity_summary",
        "Activity in the period",
        vec![
            col("measure", "Measure", Unit::Text),
            col("value", "Value", Unit::Number),
            col("low", "95% CI low", Unit::Number),
            col("high", "95% CI high", Unit::Number),
        ],
        vec![
            row("Referrals received", vec![Cell::Count(total)]),
            row("New clients", vec![Cell::Count(c.new_clients)]),
            row("Episodes opened", vec![Cell::Count(opened)]),
            row("Episodes opened: full", vec![Cell::Count(kinds[0])]),
            row("Episodes opened: brief", vec![Cell::Count(kinds[1])]),
            row("Open caseload at period end", vec![Cell::Count(open)]),
            row("Sessions recorded", vec![Cell::Count(recorded)]),
            row("Sessions attended", vec![Cell::Count(att)]),
            row("Sessions not attended", vec![Cell::Count(dna)]),
            row("Sessions cancelled", vec![Cell::Count(cancelled)]),
            row(
                "Sessions attended or not attended",
                vec![Cell::Count(att_dna)],
            ),
            row("Did-not-attend rate", share(dna, att_dna).to_vec()),
            row("Plans agreed", vec![Cell::Count(plans)]),
            row(
                "Goals set (on plans agreed in the period)",
                vec![Cell::Count(goals)],
            ),
            row("Full episodes closed", vec![Cell::Count(closed_full)]),
            row(
                "Median attended sessions per closed full episode",
                vec![
                    Cell::Median {
                        n: closed_full,
                        value: median_of(&f.sessions_per_closed_full),
                    },
                    none(),
                    none(),
                ],
            ),
            row(
                "Median days from referral to first contact (episodes opened)",
                vec![
                    Cell::Median {
                        n: opened,
                        value: median_of(&f.days_to_first_contact),
                    },
                    none(),
                    none(),
                ],
            ),
        ],
    );
    let mut reason_rows: Vec<Vec<Cell>> = ExitReason::ALL
        .iter()
        .enumerate()
        .map(|(i, r)| {
            vec![
                label(r.code()),
                Cell::Count(closed[i][0]),
                Cell::Count(closed[i][1]),
                Cell::Count(closed[i][2]),
            ]
        })
        .collect();
    let t = &closed[ExitReason::ALL.len()];
    reason_rows.push(vec![
        label("All closed"),
        Cell::Count(t[0]),
        Cell::Count(t[1]),
        Cell::Count(t[2]),
    ]);
    let by_reason = table(
        "episodes_closed_by_exit_reason",
        "Episodes closed by exit reason",
        vec![
            col("exit_reason", "Exit reason", Unit::Text),
            col("full", "Full", Unit::Count),
            col("brief", "Brief", Unit::Count),
            col("all", "All", Unit::Count),
        ],
        reason_rows,
    );
    DraftSection {
        id: "activity".into(),
        title: "Activity".into(),
        definitions: vec![
            "Referrals received: referrals whose received date falls in the period, by source and source group (dataset.md), and by financial quarter of the received date (a quarter only partly in the period counts its days in the period).".into(),
            "New clients: clients whose first-ever first contact with the service falls in the period.".into(),
            "Episodes opened: episodes whose first contact falls in the period. Open caseload: episodes first seen on or before the period's last day and not closed by it.".into(),
            "Sessions: sessions held in the period. Did-not-attend rate: did not attend ÷ (attended + did not attend); cancelled sessions are left out.".into(),
            "Plans agreed in the period; goals set: goals on plans agreed in the period. Episodes closed: closed in the period, by exit reason.".into(),
            "Medians: attended sessions per full episode closed in the period; days from referral to first contact for episodes opened in the period.".into(),
        ],
        tables: vec![summary, by_source, by_group, by_quarter, by_reason],
    }
}

/// Referrals by source group and financial quarter of the received date: a row per
/// quarter that overlaps the period, then the period's totals (the same counts as the
/// table by source group). Each quarter's total is the sum of its groups, each group's
/// total the sum of its quarters.
fn referrals_by_quarter(
    d: &mut Draft,
    f: &Facts,
    from: NaiveDate,
    to: NaiveDate,
    group_totals: &[CountId],
    total: CountId,
) -> DraftTable {
    let mut quarters: Vec<Quarter> = Vec::new();
    let mut q = Quarter::containing(from);
    while q.first_day() <= to {
        quarters.push(q);
        q = q.next();
    }
    let mut counts = vec![[0i64; 4]; quarters.len()];
    for (month, v) in &f.referrals_by_month {
        let first = NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d");
        let Some(i) = first
            .ok()
            .and_then(|day| quarters.iter().position(|q| *q == Quarter::containing(day)))
        else {
            continue;
        };
        for (c, n) in counts[i].iter_mut().zip(v) {
            *c += n;
        }
    }
    let mut rows = Vec::new();
    if let [_] = quarters.as_slice() {
        // One quarter: its counts are the period's.
        let mut r = vec![label(quarters[0].to_string())];
        r.extend(group_totals.iter().map(|&id| Cell::Count(id)));
        r.push(Cell::Count(total));
        rows.push(r);
    } else {
        let mut by_group: Vec<Vec<CountId>> = vec![Vec::new(); group_totals.len()];
        let mut quarter_totals = Vec::new();
        for (q, c) in quarters.iter().zip(&counts) {
            let (t, parts) = d.breakdown(c);
            let mut r = vec![label(q.to_string())];
            r.extend(parts.iter().map(|&id| Cell::Count(id)));
            r.push(Cell::Count(t));
            rows.push(r);
            for (g, id) in by_group.iter_mut().zip(parts) {
                g.push(id);
            }
            quarter_totals.push(t);
        }
        for (&g, parts) in group_totals.iter().zip(by_group) {
            d.sum(g, parts);
        }
        d.sum(total, quarter_totals);
    }
    let mut r = vec![label("Period")];
    r.extend(group_totals.iter().map(|&id| Cell::Count(id)));
    r.push(Cell::Count(total));
    rows.push(r);
    let mut columns = vec![col("quarter", "Quarter", Unit::Text)];
    columns.extend(
        SourceGroup::ALL
            .iter()
            .map(|g| col(g.code(), &g.code().replace('_', " "), Unit::Count)),
    );
    columns.push(col("all", "All", Unit::Count));
    table(
        "referrals_by_quarter",
        "Referrals received by source group and quarter",
        columns,
        rows,
    )
}

/// Section 2: reach against need.
pub fn reach(d: &mut Draft, f: &Facts, need: &Need, c: &Common) -> DraftSection {
    let nc = &f.new_clients;
    let (q, eth, sex, age, gp) = (nc.quintile, nc.ethnic_group, nc.sex, nc.age_band, nc.gp);
    let all = c.new_clients;
    let q_ids: Vec<CountId> = q[..5].iter().map(|&v| d.count(v)).collect();
    let known = d.count(q[..5].iter().sum());
    d.sum(known, q_ids.clone());
    let unknown = d.count(q[5]);
    d.sum(all, vec![known, unknown]);
    let pop_total: f64 = need.by_quintile.iter().sum();
    let mut rows = Vec::new();
    for (i, &id) in q_ids.iter().enumerate() {
        let pop_share = (pop_total > 0.0).then(|| need.by_quintile[i] / pop_total);
        let mut r = vec![label(QUINTILE_ROWS[i]), Cell::Count(id)];
        r.extend(share(id, known));
        r.push(Cell::Reference(Some(need.by_quintile[i])));
        r.push(Cell::Reference(pop_share));
        r.push(Cell::Ratio {
            num: id,
            den: known,
            reference: pop_share.filter(|s| *s > 0.0),
        });
        rows.push(r);
    }
    let na = || Cell::Reference(None);
    let mut r = vec![label("Known quintile"), Cell::Count(known)];
    r.extend(share(known, all));
    r.extend([Cell::Reference(Some(pop_total)), na(), na()]);
    rows.push(r);
    let mut r = vec![label("Quintile unknown"), Cell::Count(unknown)];
    r.extend(share(unknown, all));
    r.extend([na(), na(), na()]);
    rows.push(r);
    let mut r = vec![label("All new clients"), Cell::Count(all)];
    r.extend([na(), na(), na(), na(), na(), na()]);
    rows.push(r);
    let mut columns = vec![
        col("group", "National IMD quintile", Unit::Text),
        col("new_clients", "New clients", Unit::Count),
    ];
    columns.extend(share_columns("client_share", "Client share"));
    columns.extend([
        col(
            "population",
            &format!("Population of areas served ({})", need.population),
            Unit::Count,
        ),
        col("population_share", "Population share", Unit::Proportion),
        col("reach_ratio", "Reach ratio", Unit::Ratio),
    ]);
    let mut by_quintile = table(
        "reach_by_quintile",
        "New clients by national IMD quintile against the population of the areas served",
        columns,
        rows,
    );
    by_quintile.note = Some(
        "Client shares of quintiles are of new clients with a known quintile; the known and \
         unknown rows are shares of all new clients."
            .into(),
    );

    let q12 = d.count(q[0] + q[1]);
    d.sum(q12, vec![q_ids[0], q_ids[1]]);
    let mut r = vec![label("New clients from quintiles 1-2"), Cell::Count(q12)];
    r.extend(share(q12, known));
    r.push(Cell::Reference(Some(0.69)));
    let mut columns = vec![
        col("measure", "Measure", Unit::Text),
        col("count", "New clients", Unit::Count),
    ];
    columns.extend(share_columns(
        "share",
        "Share of new clients with a known quintile",
    ));
    columns.push(col(
        "national_dcrs_2008_11",
        "National DCRS 2008-11",
        Unit::Proportion,
    ));
    let headline = table(
        "reach_headline",
        "Share of new clients from the two most deprived quintiles",
        columns,
        vec![r],
    );

    let g_ids: Vec<CountId> = eth[..5].iter().map(|&v| d.count(v)).collect();
    let stated = d.count(eth[..5].iter().sum());
    d.sum(stated, g_ids.clone());
    let not_stated = d.count(eth[5]);
    d.sum(all, vec![stated, not_stated]);
    let census_total: f64 = need.by_ethnic_group[..5].iter().sum();
    let mut rows = Vec::new();
    for (i, &id) in g_ids.iter().enumerate() {
        let pop_share = (census_total > 0.0).then(|| need.by_ethnic_group[i] / census_total);
        let mut r = vec![label(ETHNIC_GROUPS[i]), Cell::Count(id)];
        r.extend(share(id, stated));
        r.push(Cell::Reference(Some(need.by_ethnic_group[i])));
        r.push(Cell::Reference(pop_share));
        r.push(Cell::Ratio {
            num: id,
            den: stated,
            reference: pop_share.filter(|s| *s > 0.0),
        });
        rows.push(r);
    }
    let mut r = vec![label("Stated"), Cell::Count(stated)];
    r.extend(share(stated, all));
    r.extend([Cell::Reference(Some(census_total)), na(), na()]);
    rows.push(r);
    let mut r = vec![label(ETHNIC_GROUPS[5]), Cell::Count(not_stated)];
    r.extend(share(not_stated, all));
    r.extend([na(), na(), na()]);
    rows.push(r);
    let mut r = vec![label("All new clients"), Cell::Count(all)];
    r.extend([na(), na(), na(), na(), na(), na()]);
    rows.push(r);
    let mut columns = vec![
        col("group", "Ethnic group", Unit::Text),
        col("new_clients", "New clients", Unit::Count),
    ];
    columns.extend(share_columns("client_share", "Client share"));
    columns.extend([
        col(
            "population",
            "Population of areas served (2011 Census)",
            Unit::Count,
        ),
        col("population_share", "Population share", Unit::Proportion),
        col("reach_ratio", "Reach ratio", Unit::Ratio),
    ]);
    let by_ethnicity = table(
        "reach_by_ethnic_group",
        "New clients by ethnic group against the 2011 Census population of the areas served",
        columns,
        rows,
    );

    let sex_labels: Vec<String> = Sex::ALL.iter().map(|s| s.code().to_string()).collect();
    let (_, _, rows) = breakdown_rows(d, &sex_labels, &sex, Some(all), "All new clients");
    let by_sex = table(
        "new_clients_by_sex",
        "New clients by sex",
        breakdown_columns("Sex", "New clients"),
        rows,
    );
    let age_labels: Vec<String> = AGE_BANDS.iter().map(|s| s.to_string()).collect();
    let (_, _, rows) = breakdown_rows(d, &age_labels, &age, Some(all), "All new clients");
    let by_age = table(
        "new_clients_by_age_band",
        "New clients by age band at first contact",
        breakdown_columns("Age band", "New clients"),
        rows,
    );
    let gp_labels: Vec<String> = YesNoUnknown::ALL
        .iter()
        .map(|s| format!("GP registered: {}", s.code()))
        .collect();
    let (_, _, rows) = breakdown_rows(d, &gp_labels, &gp, Some(all), "All new clients");
    let mut by_gp = table(
        "new_clients_by_gp_registration",
        "New clients by registration with a GP",
        breakdown_columns("GP registration", "New clients"),
        rows,
    );
    by_gp.note = Some("National DCRS figure: about 7% not registered with a GP.".into());
    DraftSection {
        id: "reach".into(),
        title: "Reach against need".into(),
        definitions: vec![
            "New clients: clients whose first-ever first contact with the service falls in the period; their quintile is the national IMD quintile of their postcode's 2011 LSOA for the index year in use.".into(),
            format!("Local need: the population ({}) of the LSOAs of the areas served, by national quintile; population share = quintile population ÷ all.", need.population),
            "Reach ratio = client share ÷ population share; n/a where the areas served have no population in that quintile. A ratio above 1 in quintile 1 means the service over-reaches the most deprived, as intended.".into(),
            "Headline: share of new clients with a known quintile who live in quintiles 1-2 (national DCRS 2008-11: 69%).".into(),
            "Ethnic groups by NHS category code: White A-C, Mixed D-G, Asian H-L, Black M-P, Other R and S (the census's Chinese category counts as Other), not stated or not known Z and 99 (no population share). Population: 2011 Census usual residents of the areas served.".into(),
        ],
        tables: vec![by_quintile, headline, by_ethnicity, by_sex, by_age, by_gp],
    }
}

/// Section 3: outcomes, with the outcome-data completeness table whose test drives the
/// bias warning of section 4.
pub fn outcomes(d: &mut Draft, f: &Facts) -> DraftSection {
    let goals: Vec<Vec<i64>> = f.goals.iter().map(|r| r.to_vec()).collect();
    let clients: Vec<Vec<i64>> = f.goal_clients.iter().map(|r| r.to_vec()).collect();
    let g = grid(d, &goals);
    let mut rows = Vec::new();
    for (i, ids) in g.iter().enumerate() {
        let name = QUINTILE_ROWS.get(i).copied().unwrap_or("All quintiles");
        let mut r = vec![label(name)];
        r.extend(ids.iter().map(|&id| Cell::Count(id)));
        r.extend(share(ids[0], ids[4]));
        rows.push(r);
    }
    let mut columns = vec![
        col("group", "National IMD quintile", Unit::Text),
        col("fully_achieved", "Fully achieved", Unit::Count),
        col("partly_achieved", "Partly achieved", Unit::Count),
        col("not_achieved", "Not achieved", Unit::Count),
        col("abandoned", "Abandoned", Unit::Count),
        col("all", "All finalised goals", Unit::Count),
    ];
    columns.extend(share_columns("share_fully", "Share fully achieved"));
    let goal_table = table(
        "goal_attainment_by_goal",
        "Goals given a final status in the period",
        columns,
        rows,
    );
    let cg = grid(d, &clients);
    let mut rows = Vec::new();
    for (i, ids) in cg.iter().enumerate() {
        let name = QUINTILE_ROWS.get(i).copied().unwrap_or("All quintiles");
        let mut r = vec![label(name)];
        r.extend(ids.iter().map(|&id| Cell::Count(id)));
        r.extend(share(ids[0], ids[3]));
        r.extend(share(ids[1], ids[3]));
        rows.push(r);
    }
    let mut columns = vec![
        col("group", "National IMD quintile", Unit::Text),
        col("fully", "Clients fully achieving", Unit::Count),
        col("partly", "Clients partly achieving", Unit::Count),
        col("not", "Clients not achieving", Unit::Count),
        col("all", "Clients with finalised goals", Unit::Count),
    ];
    columns.extend(share_columns("share_fully", "Share fully"));
    columns.extend(share_columns("share_partly", "Share partly"));
    let mut client_table = table(
        "goal_attainment_by_client",
        "Clients with goals given a final status in the period",
        columns,
        rows,
    );
    client_table.note =
        Some("National DCRS 2010-11: 47% of plan clients fully and 23% partly achieved.".into());

    // Paired change, from the sums of each quintile group.
    let mut main_rows = Vec::new();
    let mut q_rows = Vec::new();
    for (m, (_, name, _)) in MEASURES.iter().enumerate() {
        let groups: Vec<MeasureSums> = f.paired.iter().map(|p| p.measures[m]).collect();
        let mut all = MeasureSums::default();
        for g in &groups {
            all.n += g.n;
            all.baseline += g.baseline;
            all.exit += g.exit;
            all.diff += g.diff;
            all.diff2 += g.diff2;
            all.improved += g.improved;
        }
        let all_n = d.count(all.n);
        let all_improved = d.count(all.improved);
        let per = |v: f64, n: i64| (n > 0).then(|| v / n as f64);
        let diff = stats::mean_ci_from_sums(all.n, all.diff, all.diff2);
        let stat = |v: Option<f64>| Cell::Stat { n: all_n, value: v };
        let mut r = vec![
            label(*name),
            Cell::Count(all_n),
            stat(per(all.baseline, all.n)),
            stat(per(all.exit, all.n)),
            stat(per(all.diff, all.n)),
            bound(all_n, diff, Part::Low),
            bound(all_n, diff, Part::High),
            stat(diff.and_then(|c| (c.sd > 0.0).then(|| c.mean / c.sd))),
            Cell::Count(all_improved),
        ];
        r.extend(share(all_improved, all_n));
        main_rows.push(r);
        let mut n_parts = Vec::new();
        let mut i_parts = Vec::new();
        for (g, qname) in groups.iter().zip(QUINTILE_ROWS) {
            let n = d.count(g.n);
            let imp = d.count(g.improved);
            n_parts.push(n);
            i_parts.push(imp);
            let diff = stats::mean_ci_from_sums(g.n, g.diff, g.diff2);
            let stat = |v: Option<f64>| Cell::Stat { n, value: v };
            let mut r = vec![
                label(*name),
                label(qname),
                Cell::Count(n),
                stat(per(g.diff, g.n)),
                bound(n, diff, Part::Low),
                bound(n, diff, Part::High),
                Cell::Count(imp),
            ];
            r.extend(share(imp, n));
            q_rows.push(r);
        }
        d.sum(all_n, n_parts);
        d.sum(all_improved, i_parts);
    }
    // Smoking: among clients smoking at baseline with a status at exit.
    let s_n = d.count(f.paired.iter().map(|p| p.smokers).sum());
    let s_quit = d.count(f.paired.iter().map(|p| p.quit).sum());
    let none = |n| Cell::Stat { n, value: None };
    let mut r = vec![
        label("Smoking: not smoking at exit, of baseline smokers"),
        Cell::Count(s_n),
        none(s_n),
        none(s_n),
        none(s_n),
        none(s_n),
        none(s_n),
        none(s_n),
        Cell::Count(s_quit),
    ];
    r.extend(share(s_quit, s_n));
    main_rows.push(r);
    let mut n_parts = Vec::new();
    let mut i_parts = Vec::new();
    for (p, qname) in f.paired.iter().zip(QUINTILE_ROWS) {
        let n = d.count(p.smokers);
        let quit = d.count(p.quit);
        n_parts.push(n);
        i_parts.push(quit);
        let mut r = vec![
            label("Smoking: not smoking at exit, of baseline smokers"),
            label(qname),
            Cell::Count(n),
            none(n),
            none(n),
            none(n),
            Cell::Count(quit),
        ];
        r.extend(share(quit, n));
        q_rows.push(r);
    }
    d.sum(s_n, n_parts);
    d.sum(s_quit, i_parts);
    let mut columns = vec![
        col("measure", "Measure", Unit::Text),
        col("n", "Episodes with both values", Unit::Count),
        col("baseline_mean", "Baseline mean", Unit::Number),
        col("exit_mean", "Exit mean", Unit::Number),
        col(
            "mean_difference",
            "Mean difference (exit - baseline)",
            Unit::Number,
        ),
        col("difference_low", "Difference: 95% CI low", Unit::Number),
        col("difference_high", "Difference: 95% CI high", Unit::Number),
        col("standardised_effect", "Standardised effect", Unit::Number),
        col("improved", "Improved", Unit::Count),
    ];
    columns.extend(share_columns("share_improved", "Share improved"));
    let paired = table(
        "paired_change",
        "Change from baseline to exit, episodes closed in the period",
        columns,
        main_rows,
    );
    let mut columns = vec![
        col("measure", "Measure", Unit::Text),
        col("group", "National IMD quintile", Unit::Text),
        col("n", "Episodes with both values", Unit::Count),
        col(
            "mean_difference",
            "Mean difference (exit - baseline)",
            Unit::Number,
        ),
        col("difference_low", "Difference: 95% CI low", Unit::Number),
        col("difference_high", "Difference: 95% CI high", Unit::Number),
        col("improved", "Improved", Unit::Count),
    ];
    columns.extend(share_columns("share_improved", "Share improved"));
    let paired_q = table(
        "paired_change_by_quintile",
        "Change from baseline to exit by national IMD quintile",
        columns,
        q_rows,
    );

    // Outcome-data completeness of full episodes closed in the period.
    let mut by_q = vec![vec![0i64; 2]; 6];
    let mut by_e = vec![vec![0i64; 2]; 6];
    for (q, by_group) in f.closed_full.iter().enumerate() {
        for (e, [without, with]) in by_group.iter().enumerate() {
            by_q[q][0] += with;
            by_q[q][1] += without;
            by_e[e][0] += with;
            by_e[e][1] += without;
        }
    }
    let gq = grid(d, &by_q);
    let ge = grid(d, &by_e);
    // Both grids total the same episodes.
    d.sum(gq[6][2], vec![ge[6][2]]);
    let mut rows = Vec::new();
    let mut bias = BiasInput::default();
    let mut quintile_groups = Vec::new();
    let mut ethnic_groups = Vec::new();
    for (i, ids) in gq.iter().enumerate() {
        let name = QUINTILE_ROWS
            .get(i)
            .copied()
            .unwrap_or("All closed full episodes");
        let mut r = vec![label(name), Cell::Count(ids[2]), Cell::Count(ids[0])];
        r.extend(share(ids[0], ids[2]));
        rows.push(r);
        if i < 5 {
            quintile_groups.push((name.to_string(), ids[2], ids[0]));
        }
    }
    for (i, ids) in ge.iter().enumerate().take(6) {
        let mut r = vec![
            label(ETHNIC_GROUPS[i]),
            Cell::Count(ids[2]),
            Cell::Count(ids[0]),
        ];
        r.extend(share(ids[0], ids[2]));
        rows.push(r);
        if i < 5 {
            ethnic_groups.push((ETHNIC_GROUPS[i].to_string(), ids[2], ids[0]));
        }
    }
    bias.groups = quintile_groups;
    bias.ethnic_groups = ethnic_groups;
    d.bias = Some(bias);
    let mut columns = vec![
        col("group", "Group", Unit::Text),
        col("closed_full", "Full episodes closed", Unit::Count),
        col("with_outcome_data", "With baseline and exit", Unit::Count),
    ];
    columns.extend(share_columns("share", "Share with outcome data"));
    let completeness = table(
        "outcome_data_completeness",
        "Outcome data recorded for full episodes closed in the period, by quintile and ethnic group",
        columns,
        rows,
    );
    DraftSection {
        id: "outcomes".into(),
        title: "Outcomes".into(),
        definitions: vec![
            "Goal attainment: goals given a final status (fully, partly, not achieved, abandoned) in the period. A client fully achieved when all their finalised goals were fully achieved, partly when at least one was fully or partly achieved, not otherwise.".into(),
            "Paired change: episodes closed in the period with both a baseline and an exit value of the measure: n, means, mean difference (exit - baseline) with a 95% t interval, standardised effect (mean difference ÷ SD of the differences) and share improved (higher is better for fruit and vegetables, active days, self efficacy, general health and SWEMWBS; lower for BMI, snacks and alcohol). Smoking: of clients smoking at baseline with a status at exit, the share not smoking at exit.".into(),
            "Outcome data: a full episode closed in the period has outcome data when it has a baseline and an exit assessment. When the share with outcome data differs between groups (Pearson chi-square, p < 0.05, over groups with at least 20 such episodes, and a gap of at least 10 percentage points) the report carries a warning naming them.".into(),
        ],
        tables: vec![goal_table, client_table, paired, paired_q, completeness],
    }
}

/// Section 4: the pathway of a cohort of referrals.
pub fn pathway(d: &mut Draft, f: &Facts) -> DraftSection {
    let mut by_q = vec![vec![0i64; 7]; 6];
    let mut by_e = vec![vec![0i64; 7]; 6];
    for (q, by_group) in f.pathway.iter().enumerate() {
        for (e, by_reached) in by_group.iter().enumerate() {
            for (last, n) in by_reached.iter().enumerate() {
                // A referral whose last step is `last` reached every step up to it.
                for j in 0..=last {
                    by_q[q][j] += n;
                    by_e[e][j] += n;
                }
            }
        }
    }
    // Steps are columns; a group row's total is not a meaningful sum, so only the
    // column sums (all groups) are recorded.
    let column_sums = |d: &mut Draft, cells: &[Vec<i64>], all: Option<&[CountId]>| {
        let ids: Vec<Vec<CountId>> = cells
            .iter()
            .map(|r| r.iter().map(|&v| d.count(v)).collect())
            .collect();
        let totals: Vec<CountId> = (0..7)
            .map(|j| {
                let parts: Vec<CountId> = ids.iter().map(|r| r[j]).collect();
                let t = match all {
                    Some(a) => a[j],
                    None => d.count(parts.iter().map(|&p| d.counts[p]).sum()),
                };
                d.sum(t, parts);
                t
            })
            .collect();
        (ids, totals)
    };
    let (q_ids, totals) = column_sums(d, &by_q, None);
    let (e_ids, _) = column_sums(d, &by_e, Some(&totals));
    let mut step_rows = Vec::new();
    for (j, name) in STEPS.iter().enumerate() {
        let mut r = vec![label(*name), Cell::Count(totals[j])];
        r.extend(share(totals[j], totals[0]));
        if j == 0 {
            r.extend(share(totals[0], totals[0]));
        } else {
            r.extend(share(totals[j], totals[j - 1]));
        }
        step_rows.push(r);
    }
    let mut columns = vec![
        col("step", "Step", Unit::Text),
        col("referrals", "Referrals", Unit::Count),
    ];
    columns.extend(share_columns("share_of_cohort", "Share of cohort"));
    columns.extend(share_columns(
        "share_of_previous",
        "Share of the step before",
    ));
    let steps = table(
        "pathway_steps",
        "Pathway of referrals received in the period",
        columns,
        step_rows,
    );
    let group_table = |id: &str, title: &str, names: &[&str], ids: &[Vec<CountId>]| {
        let mut rows = Vec::new();
        for (name, r_ids) in names
            .iter()
            .zip(ids.iter())
            .chain(std::iter::once((&"All referrals", &totals)))
        {
            let mut r = vec![label(*name)];
            r.extend(r_ids.iter().map(|&id| Cell::Count(id)));
            r.extend(share(r_ids[6], r_ids[0]));
            // Each later step as a share of the group's cohort and of the step before.
            for j in 1..7 {
                r.extend(share(r_ids[j], r_ids[0]));
                r.extend(share(r_ids[j], r_ids[j - 1]));
            }
            rows.push(r);
        }
        let mut columns = vec![col("group", "Group", Unit::Text)];
        let keys = [
            "referred", "seen", "baseline", "plan", "review", "closed", "exit",
        ];
        for (k, name) in keys.iter().zip(STEPS) {
            columns.push(col(k, name, Unit::Count));
        }
        columns.extend(share_columns(
            "share_exit",
            "Share of referrals reaching an exit assessment",
        ));
        for (k, name) in keys.iter().zip(STEPS).skip(1) {
            columns.extend(share_columns(
                &format!("{k}_of_cohort"),
                &format!("{name}: share of cohort"),
            ));
            columns.extend(share_columns(
                &format!("{k}_of_previous"),
                &format!("{name}: share of the step before"),
            ));
        }
        table(id, title, columns, rows)
    };
    let by_quintile = group_table(
        "pathway_by_quintile",
        "Pathway by national IMD quintile",
        &QUINTILE_ROWS,
        &q_ids,
    );
    let by_ethnicity = group_table(
        "pathway_by_ethnic_group",
        "Pathway by ethnic group",
        &ETHNIC_GROUPS,
        &e_ids,
    );
    DraftSection {
        id: "pathway".into(),
        title: "Pathway and completeness equity".into(),
        definitions: vec![
            "Cohort: referrals received in the period, leaving out referrals whose episode is brief. Steps: referred, seen (an episode opened), baseline recorded, plan agreed, at least one attended review session, closed, exit assessment recorded, each as recorded when the report was produced. The steps form a funnel: a referral counts at a step only when it reached every step before it.".into(),
            "Each step is shown as a share of the cohort and of the step before, by national IMD quintile and by ethnic group.".into(),
        ],
        tables: vec![steps, by_quintile, by_ethnicity],
    }
}

/// Section 5: workforce.
pub fn workforce(d: &mut Draft, f: &Facts, c: &Common) -> DraftSection {
    let w = &f.workers;
    let fte: i64 = w.iter().map(|x| x.fte_hundredths).sum();
    let lives: Vec<i64> = YesNoUnknown::ALL
        .iter()
        .map(|v| {
            w.iter()
                .filter(|x| x.lives_in_area == v.code())
                .map(|x| x.n)
                .sum()
        })
        .collect();
    let quals: Vec<i64> = Qualification::ALL
        .iter()
        .map(|v| {
            w.iter()
                .filter(|x| x.qualification == v.code())
                .map(|x| x.n)
                .sum()
        })
        .collect();
    let mut homes = [0i64; 6];
    for x in w {
        homes[quintile_index(x.home_quintile)] += x.n;
    }
    let (workers, qual_ids) = d.breakdown(&quals);
    let lives_ids: Vec<CountId> = lives.iter().map(|&v| d.count(v)).collect();
    d.sum(workers, lives_ids.clone());
    let lives_known = d.count(lives[0] + lives[1]);
    d.sum(lives_known, vec![lives_ids[0], lives_ids[1]]);
    let home_ids: Vec<CountId> = homes.iter().map(|&v| d.count(v)).collect();
    d.sum(workers, home_ids.clone());
    let home_known = d.count(homes[..5].iter().sum());
    d.sum(home_known, home_ids[..5].to_vec());
    let home_12 = d.count(homes[0] + homes[1]);
    d.sum(home_12, vec![home_ids[0], home_ids[1]]);
    let seen = d.count(f.clients_seen);
    let na = || Cell::Reference(None);
    let row = |name: &str, cells: Vec<Cell>| {
        let mut r = vec![label(name)];
        r.extend(cells);
        r
    };
    let summary = table(
        "workforce_summary",
        "Workforce in the period",
        vec![
            col("measure", "Measure", Unit::Text),
            col("value", "Value", Unit::Number),
            col("low", "95% CI low", Unit::Number),
            col("high", "95% CI high", Unit::Number),
        ],
        vec![
            row("Workers active", vec![Cell::Count(workers), na(), na()]),
            row(
                "Full-time equivalent",
                vec![
                    Cell::Rounded {
                        n: workers,
                        hundredths: fte,
                    },
                    na(),
                    na(),
                ],
            ),
            row(
                "Workers with a known answer on living in the area served",
                vec![Cell::Count(lives_known), na(), na()],
            ),
            row(
                "Workers living in the area served",
                vec![Cell::Count(lives_ids[0]), na(), na()],
            ),
            row(
                "Share living in the area served",
                share(lives_ids[0], lives_known).to_vec(),
            ),
            row(
                "Workers with a known home quintile",
                vec![Cell::Count(home_known), na(), na()],
            ),
            row(
                "Workers whose home is in quintile 1 or 2",
                vec![Cell::Count(home_12), na(), na()],
            ),
            row(
                "Share whose home is in quintile 1 or 2",
                share(home_12, home_known).to_vec(),
            ),
            row(
                "Clients seen (an attended session in the period)",
                vec![Cell::Count(seen), na(), na()],
            ),
            row(
                "Sessions attended",
                vec![Cell::Count(c.sessions_attended), na(), na()],
            ),
            row(
                "Clients seen per FTE",
                vec![
                    Cell::Per {
                        num: seen,
                        denominator_hundredths: fte,
                        n: workers,
                    },
                    na(),
                    na(),
                ],
            ),
            row(
                "Sessions attended per FTE",
                vec![
                    Cell::Per {
                        num: c.sessions_attended,
                        denominator_hundredths: fte,
                        n: workers,
                    },
                    na(),
                    na(),
                ],
            ),
        ],
    );
    let mut rows: Vec<Vec<Cell>> = Qualification::ALL
        .iter()
        .zip(&qual_ids)
        .map(|(q, &id)| {
            let mut r = vec![label(q.code()), Cell::Count(id)];
            r.extend(share(id, workers));
            r
        })
        .collect();
    let mut t = vec![label("All workers"), Cell::Count(workers)];
    t.extend(share(workers, workers));
    rows.push(t);
    let qualification = table(
        "workforce_qualification",
        "Workers active in the period by qualification",
        breakdown_columns("Qualification", "Workers"),
        rows,
    );
    let mut rows: Vec<Vec<Cell>> = YesNoUnknown::ALL
        .iter()
        .zip(&lives_ids)
        .map(|(v, &id)| {
            let mut r = vec![
                label(format!("Lives in area served: {}", v.code())),
                Cell::Count(id),
            ];
            r.extend(share(id, workers));
            r
        })
        .collect();
    for (i, &id) in home_ids.iter().enumerate() {
        let mut r = vec![
            label(format!("Home in {}", QUINTILE_ROWS[i].to_lowercase())),
            Cell::Count(id),
        ];
        r.extend(share(id, workers));
        rows.push(r);
    }
    let mut t = vec![label("All workers"), Cell::Count(workers)];
    t.extend(share(workers, workers));
    rows.push(t);
    let homes = table(
        "workforce_homes",
        "Workers active in the period by where they live",
        breakdown_columns("Home", "Workers"),
        rows,
    );
    DraftSection {
        id: "workforce".into(),
        title: "Workforce".into(),
        definitions: vec![
            "Workers active: started on or before the period's last day and not left before its first day. FTE: the sum of their full-time equivalents, each to the nearest hundredth; under disclosure control the total is rounded once, like a count (halves up).".into(),
            "Living in the area served: of workers with a yes or no answer. Home quintile: the national IMD quintile of the worker's home as recorded (the address itself is never stored).".into(),
            "Clients seen: clients with an attended session in the period. Per FTE figures divide the published counts by the FTE.".into(),
        ],
        tables: vec![summary, qualification, homes],
    }
}
