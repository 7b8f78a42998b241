//! Disclosure control (analytics.md section 8): the `nhs_sub_national` rule for counts,
//! derived figures computed from the published counts, and secondary suppression so that
//! no suppressed count can be worked out from the others shown in the same report.
//!
//! Secondary suppression treats every shown count as the interval of true values it
//! could have come from and every total with its breakdown as a sum. For each suppressed
//! cell it asks an exact integer solver whether a value other than the true one is
//! feasible; when none is, the smallest shown cell in one of its sums is suppressed too,
//! and the check runs again. A secondary cell is modelled as an attacker who knows it is
//! a secondary would see it: some count the rule would have shown (at least the
//! threshold plus one, with no upper bound but what the sums imply).

use crate::doc::{
    BiasInput, Cell, CountId, Derivation, Draft, DraftTable, Figure, Part, Section, Table,
};
use crate::stats;
use serde::Serialize;
use std::collections::BTreeSet;

/// Which disclosure rule an output follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyKind {
    /// The NHS rule for sub-national figures.
    NhsSubNational,
    /// No control: a service manager's own service, or an operator who asked for it.
    None,
}

impl PolicyKind {
    /// The policy's name as written on outputs and command lines.
    pub fn code(self) -> &'static str {
        match self {
            PolicyKind::NhsSubNational => "nhs_sub_national",
            PolicyKind::None => "none",
        }
    }

    /// Reads a policy name.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "nhs_sub_national" => Some(PolicyKind::NhsSubNational),
            "none" => Some(PolicyKind::None),
            _ => None,
        }
    }
}

/// A disclosure policy with its settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Policy {
    /// The rule.
    pub kind: PolicyKind,
    /// Counts from 1 to this are suppressed (7).
    pub threshold: i64,
    /// Other counts are rounded to the nearest multiple of this (5).
    pub rounding_base: i64,
}

impl Policy {
    /// The NHS rule with its standard settings.
    pub const NHS_SUB_NATIONAL: Policy = Policy {
        kind: PolicyKind::NhsSubNational,
        threshold: 7,
        rounding_base: 5,
    };
    /// No disclosure control.
    pub const NONE: Policy = Policy {
        kind: PolicyKind::None,
        threshold: 0,
        rounding_base: 1,
    };

    /// The standard policy of this kind.
    pub fn of(kind: PolicyKind) -> Policy {
        match kind {
            PolicyKind::NhsSubNational => Policy::NHS_SUB_NATIONAL,
            PolicyKind::None => Policy::NONE,
        }
    }

    /// Whether the policy controls anything.
    pub fn controls(&self) -> bool {
        self.kind != PolicyKind::None
    }

    /// The fewest people a mean, median or interval may rest on.
    pub fn min_people(&self) -> i64 {
        self.threshold + 1
    }

    /// A sentence saying what the policy did, for the footnote of every output.
    pub fn statement(&self) -> String {
        match self.kind {
            PolicyKind::NhsSubNational => format!(
                "NHS sub-national disclosure control: counts of 1 to {t} are shown as *, other \
                 counts are rounded to the nearest {b}, and 0 is shown as 0; percentages, \
                 intervals, ratios and tests are computed from the rounded counts and shown \
                 only when every count they rest on is shown; means, medians and their \
                 intervals need at least {m} people; further cells are suppressed where a \
                 suppressed cell could otherwise be worked out from totals.",
                t = self.threshold,
                b = self.rounding_base,
                m = self.min_people()
            ),
            PolicyKind::None => "No disclosure control: figures are exact and \
                 may identify people; for the service's own use only."
                .into(),
        }
    }

    /// A quantity in whole hundredths that is not a count but is bounded by one (such
    /// as FTE), rounded to the rounding base under control (halves up, in integers, so
    /// exactly once); as it is otherwise.
    pub fn round_hundredths(&self, hundredths: i64) -> f64 {
        if self.controls() {
            let b = self.rounding_base * 100;
            ((hundredths + b / 2).div_euclid(b) * b) as f64 / 100.0
        } else {
            hundredths as f64 / 100.0
        }
    }

    /// The published form of one count under the primary rule: `None` when suppressed.
    pub fn primary(&self, count: i64) -> Option<i64> {
        if !self.controls() || count == 0 {
            return Some(count);
        }
        if count <= self.threshold {
            return None;
        }
        let b = self.rounding_base;
        Some((count + b / 2) / b * b)
    }
}

/// What the rule did to one count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountState {
    /// Shown with this published value.
    Shown(i64),
    /// Suppressed because it is 1 to the threshold.
    Primary,
    /// Suppressed to protect another cell; would have been shown as this value.
    Secondary(i64),
    /// Part of a withheld table.
    Withheld,
}

/// The cells of a report's tables shown as `*`, by why: the count is 1 to the
/// threshold, it is withheld to protect another count, or the figure (a rate, share,
/// median or mean) rests on a withheld count. The three add up to every `*` cell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WithheldCells {
    /// Counts from 1 to the threshold.
    pub small: usize,
    /// Counts withheld so that no small count can be worked out from the others.
    pub to_protect_others: usize,
    /// Figures computed from a withheld count.
    pub resting_on_withheld: usize,
}

impl WithheldCells {
    /// Every `*` cell.
    pub fn total(&self) -> usize {
        self.small + self.to_protect_others + self.resting_on_withheld
    }
}

/// Tallies the `*` cells of `sections` (the published form of `draft`) by why each is
/// withheld.
pub fn withheld_cells(draft: &Draft, published: &Published, sections: &[Section]) -> WithheldCells {
    let mut out = WithheldCells::default();
    let drafts = draft.sections.iter().flat_map(|s| s.tables.iter());
    let shown = sections.iter().flat_map(|s| s.tables.iter());
    for (d, t) in drafts.zip(shown) {
        for (draft_row, row) in d.rows.iter().zip(&t.rows) {
            for (cell, figure) in draft_row.iter().zip(row) {
                if !matches!(figure, Figure::Suppressed) {
                    continue;
                }
                match cell {
                    Cell::Count(id) => match published.states[*id] {
                        CountState::Secondary(_) => out.to_protect_others += 1,
                        _ => out.small += 1,
                    },
                    _ => out.resting_on_withheld += 1,
                }
            }
        }
    }
    out
}

/// The published counts of a draft.
#[derive(Debug, Clone)]
pub struct Published {
    /// One state per count of the draft.
    pub states: Vec<CountState>,
    /// Tables withheld, by id, with the reason.
    pub withheld: Vec<String>,
}

impl Published {
    /// The published value of a count, or `None` when it is not shown.
    pub fn value(&self, id: CountId) -> Option<i64> {
        match self.states[id] {
            CountState::Shown(v) => Some(v),
            _ => None,
        }
    }
}

/// Applies the policy to a draft's counts, including secondary suppression.
pub fn control(draft: &Draft, policy: &Policy) -> Published {
    let mut states: Vec<CountState> = draft
        .counts
        .iter()
        .map(|&c| match policy.primary(c) {
            Some(v) => CountState::Shown(v),
            None => CountState::Primary,
        })
        .collect();
    let mut withheld = Vec::new();
    if !policy.controls() {
        return Published { states, withheld };
    }
    let tables: Vec<(&DraftTable, BTreeSet<CountId>)> = draft
        .sections
        .iter()
        .flat_map(|s| s.tables.iter())
        .map(|t| (t, counts_of(t)))
        .collect();
    loop {
        let system = System::new(draft, &states, policy);
        let Some(pinned) = states
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s, CountState::Primary | CountState::Secondary(_)))
            .map(|(i, _)| i)
            .find(|&i| !system.has_two_values(i, draft.counts[i]))
        else {
            break;
        };
        // The smallest shown cell in one of the pinned cell's sums.
        let candidate = system.sums_of[pinned]
            .iter()
            .flat_map(|&k| system.sum_cells(k))
            .filter_map(|c| match states[c] {
                CountState::Shown(v) if v > 0 => Some((v, c)),
                _ => None,
            })
            .min();
        match candidate {
            Some((v, c)) => states[c] = CountState::Secondary(v),
            None => {
                // Nothing left to suppress: withhold every table showing the cell. Its
                // other counts are withheld too unless another table still shows them.
                for (t, ids) in &tables {
                    if ids.contains(&pinned) && !withheld.contains(&t.id) {
                        withheld.push(t.id.clone());
                    }
                }
                let still_shown: BTreeSet<CountId> = tables
                    .iter()
                    .filter(|(t, _)| !withheld.contains(&t.id))
                    .flat_map(|(_, ids)| ids.iter().copied())
                    .collect();
                for (t, ids) in &tables {
                    if withheld.contains(&t.id) {
                        for &id in ids {
                            if !still_shown.contains(&id) {
                                states[id] = CountState::Withheld;
                            }
                        }
                    }
                }
                states[pinned] = CountState::Withheld;
            }
        }
    }
    Published { states, withheld }
}

fn counts_of(t: &DraftTable) -> BTreeSet<CountId> {
    let mut ids = BTreeSet::new();
    for cell in t.rows.iter().flatten() {
        match cell {
            Cell::Count(c) => {
                ids.insert(*c);
            }
            Cell::Share { num, den, .. } | Cell::Ratio { num, den, .. } => {
                ids.insert(*num);
                ids.insert(*den);
            }
            Cell::Stat { n, .. } => {
                ids.insert(*n);
            }
            Cell::Per { num, n, .. } => {
                ids.insert(*num);
                ids.insert(*n);
            }
            Cell::MeanBound { n, .. } | Cell::Median { n, .. } | Cell::Rounded { n, .. } => {
                ids.insert(*n);
            }
            Cell::Fraction { num, den, .. } => {
                ids.insert(*num);
                ids.insert(*den);
            }
            Cell::Derived { rests_on, .. } => ids.extend(rests_on.iter().copied()),
            _ => {}
        }
    }
    ids
}

/// An upper bound standing for "no bound": larger than any count this system will hold.
const UNBOUNDED: i64 = 1 << 40;
/// The most search nodes spent proving one cell safe; past it the cell counts as pinned,
/// which can only suppress more.
const NODE_BUDGET: usize = 20_000;

/// What an attacker knows: an interval per count and the sums between them.
struct System {
    lo: Vec<i64>,
    hi: Vec<i64>,
    sums: Vec<(CountId, Vec<CountId>)>,
    sums_of: Vec<Vec<usize>>,
}

impl System {
    fn new(draft: &Draft, states: &[CountState], policy: &Policy) -> System {
        let half = policy.rounding_base / 2;
        let floor = policy.threshold + 1;
        let (mut lo, mut hi) = (Vec::new(), Vec::new());
        for s in states {
            let (l, h) = match *s {
                CountState::Shown(0) => (0, 0),
                CountState::Shown(v) => ((v - half).max(floor), v + half),
                CountState::Primary => (1, policy.threshold),
                CountState::Secondary(_) => (floor, UNBOUNDED),
                CountState::Withheld => (0, UNBOUNDED),
            };
            lo.push(l);
            hi.push(h);
        }
        // A sum with a withheld cell tells nothing that is relied on here.
        let sums: Vec<(CountId, Vec<CountId>)> = draft
            .sums
            .iter()
            .filter(|(t, parts)| {
                states[*t] != CountState::Withheld
                    && parts.iter().all(|&p| states[p] != CountState::Withheld)
            })
            .cloned()
            .collect();
        let mut sums_of = vec![Vec::new(); states.len()];
        for (k, (t, parts)) in sums.iter().enumerate() {
            sums_of[*t].push(k);
            for &p in parts {
                sums_of[p].push(k);
            }
        }
        System {
            lo,
            hi,
            sums,
            sums_of,
        }
    }

    fn sum_cells(&self, k: usize) -> impl Iterator<Item = CountId> + '_ {
        let (t, parts) = &self.sums[k];
        std::iter::once(*t).chain(parts.iter().copied())
    }

    /// Whether `cell` can take a value other than `truth` in some solution.
    fn has_two_values(&self, cell: CountId, truth: i64) -> bool {
        let (mut lo, mut hi) = (self.lo.clone(), self.hi.clone());
        if !self.propagate(&mut lo, &mut hi, cell) {
            return false;
        }
        if lo[cell] == hi[cell] {
            return false;
        }
        // Try the values nearest the truth first; a handful is enough in practice.
        let mut candidates: Vec<i64> = (lo[cell]..=hi[cell].min(lo[cell] + 64))
            .chain((hi[cell] - 64).max(lo[cell])..=hi[cell])
            .filter(|&v| v != truth)
            .collect();
        candidates.sort_by_key(|v| (v - truth).abs());
        candidates.dedup();
        let mut budget = NODE_BUDGET;
        let component = self.component(cell);
        candidates.into_iter().take(16).any(|v| {
            let (mut l, mut h) = (lo.clone(), hi.clone());
            l[cell] = v;
            h[cell] = v;
            self.search(&mut l, &mut h, cell, &component, &mut budget) == Some(true)
        })
    }

    /// Bounds propagation over the sums reachable from `start`, to a fixed point.
    /// Returns false when the intervals admit no solution.
    fn propagate(&self, lo: &mut [i64], hi: &mut [i64], start: CountId) -> bool {
        let mut queue: Vec<usize> = self.sums_of[start].clone();
        let mut queued = vec![false; self.sums.len()];
        for &k in &queue {
            queued[k] = true;
        }
        while let Some(k) = queue.pop() {
            queued[k] = false;
            let (t, parts) = &self.sums[k];
            // Unbounded cells are 2^40, so sums of them stay far inside i64.
            let (plo, phi) = parts
                .iter()
                .fold((0i64, 0i64), |(a, b), &p| (a + lo[p], b + hi[p]));
            let mut changed = Vec::new();
            if plo > lo[*t] {
                lo[*t] = plo;
                changed.push(*t);
            }
            if phi < hi[*t] {
                hi[*t] = phi;
                changed.push(*t);
            }
            if lo[*t] > hi[*t] {
                return false;
            }
            for &p in parts {
                let others_lo = plo - lo[p];
                let others_hi = phi - hi[p];
                let new_hi = hi[*t] - others_lo;
                let new_lo = lo[*t] - others_hi;
                if new_hi < hi[p] {
                    hi[p] = new_hi;
                    changed.push(p);
                }
                if new_lo > lo[p] {
                    lo[p] = new_lo;
                    changed.push(p);
                }
                if lo[p] > hi[p] {
                    return false;
                }
            }
            for c in changed {
                for &k2 in &self.sums_of[c] {
                    if !queued[k2] {
                        queued[k2] = true;
                        queue.push(k2);
                    }
                }
            }
        }
        true
    }

    /// Depth-first search for an integer solution of the component holding `start`.
    /// `None` when the budget ran out.
    fn search(
        &self,
        lo: &mut [i64],
        hi: &mut [i64],
        start: CountId,
        component: &[CountId],
        budget: &mut usize,
    ) -> Option<bool> {
        if *budget == 0 {
            return None;
        }
        *budget -= 1;
        if !self.propagate(lo, hi, start) {
            return Some(false);
        }
        // The unfixed cell of the component with the narrowest interval.
        let Some(&branch) = component
            .iter()
            .filter(|&&c| lo[c] < hi[c])
            .min_by_key(|&&c| hi[c] - lo[c])
        else {
            return Some(true);
        };
        let values: Vec<i64> = if hi[branch] - lo[branch] <= 16 {
            (lo[branch]..=hi[branch]).collect()
        } else {
            // A wide interval: its ends and middle, then the rest near the low end.
            let mid = lo[branch] + (hi[branch] - lo[branch]) / 2;
            let mut v = vec![lo[branch], mid, hi[branch]];
            v.extend(lo[branch] + 1..lo[branch] + 14);
            v
        };
        for v in values {
            let (mut l, mut h) = (lo.to_vec(), hi.to_vec());
            l[branch] = v;
            h[branch] = v;
            match self.search(&mut l, &mut h, branch, component, budget) {
                Some(true) => return Some(true),
                Some(false) => {}
                None => return None,
            }
        }
        Some(false)
    }

    fn component(&self, start: CountId) -> Vec<CountId> {
        let mut seen = BTreeSet::from([start]);
        let mut stack = vec![start];
        while let Some(c) = stack.pop() {
            for &k in &self.sums_of[c] {
                for d in self.sum_cells(k) {
                    if seen.insert(d) {
                        stack.push(d);
                    }
                }
            }
        }
        seen.into_iter().collect()
    }
}

/// Turns a draft's tables into published ones under the policy.
pub fn publish(draft: &Draft, policy: &Policy, published: &Published) -> Vec<Section> {
    let value = |id: CountId| published.value(id);
    let raw = |id: CountId| draft.counts[id];
    draft
        .sections
        .iter()
        .map(|s| Section {
            id: s.id.clone(),
            title: s.title.clone(),
            definitions: s.definitions.clone(),
            tables: s
                .tables
                .iter()
                .map(|t| {
                    if published.withheld.contains(&t.id) {
                        return Table {
                            id: t.id.clone(),
                            title: t.title.clone(),
                            columns: t.columns.clone(),
                            rows: Vec::new(),
                            note: t.note.clone(),
                            withheld: Some(
                                "Withheld: its figures are too small to publish without \
                                 revealing one another."
                                    .into(),
                            ),
                            named_rows: false,
                        };
                    }
                    let rows = t
                        .rows
                        .iter()
                        .map(|r| r.iter().map(|c| figure(c, policy, &value, &raw)).collect())
                        .collect();
                    Table {
                        id: t.id.clone(),
                        title: t.title.clone(),
                        columns: t.columns.clone(),
                        rows,
                        note: t.note.clone(),
                        withheld: None,
                        named_rows: false,
                    }
                })
                .collect(),
        })
        .collect()
}

fn figure(
    cell: &Cell,
    policy: &Policy,
    value: &dyn Fn(CountId) -> Option<i64>,
    raw: &dyn Fn(CountId) -> i64,
) -> Figure {
    match cell {
        Cell::Label(t) => Figure::Text(t.clone()),
        Cell::Count(id) => value(*id).map(Figure::Int).unwrap_or(Figure::Suppressed),
        Cell::Share { num, den, part } => match (value(*num), value(*den)) {
            (Some(k), Some(n)) => match stats::wilson(k as f64, n as f64) {
                Some((p, lo, hi)) => Figure::Num(match part {
                    Part::Point => p,
                    Part::Low => lo,
                    Part::High => hi,
                }),
                None => Figure::NotApplicable,
            },
            _ => Figure::Suppressed,
        },
        Cell::Ratio {
            num,
            den,
            reference,
        } => match (value(*num), value(*den)) {
            (Some(k), Some(n)) => match reference {
                Some(r) if *r > 0.0 && n > 0 => Figure::Num(k as f64 / n as f64 / r),
                _ => Figure::NotApplicable,
            },
            _ => Figure::Suppressed,
        },
        Cell::Stat { n, value: v } => {
            // "n/a" only where the count it rests on is shown: beside a suppressed count
            // it would tell that the count is 0 or 1.
            match (value(*n), v) {
                (None, _) if policy.controls() => Figure::Suppressed,
                (_, None) => Figure::NotApplicable,
                (_, Some(_)) if policy.controls() && raw(*n) < policy.min_people() => {
                    Figure::Suppressed
                }
                (_, Some(x)) => Figure::Num(*x),
            }
        }
        Cell::Reference(v) => v.map(Figure::Num).unwrap_or(Figure::NotApplicable),
        Cell::Per {
            num,
            denominator_hundredths,
            n,
        } => {
            let people_ok =
                !policy.controls() || (value(*n).is_some() && raw(*n) >= policy.min_people());
            let denominator = policy.round_hundredths(*denominator_hundredths);
            match value(*num) {
                Some(k) if people_ok && denominator > 0.0 => Figure::Num(k as f64 / denominator),
                Some(_) if people_ok => Figure::NotApplicable,
                _ => Figure::Suppressed,
            }
        }
        Cell::MeanBound { n, mean, sd, part } => {
            if policy.controls() && (value(*n).is_none() || raw(*n) < policy.min_people()) {
                return Figure::Suppressed;
            }
            let people = value(*n).unwrap_or(0) as f64;
            if people < 2.0 {
                return Figure::NotApplicable;
            }
            let half = stats::t_quantile(0.975, people - 1.0) * sd / people.sqrt();
            Figure::Num(match part {
                Part::Low => mean - half,
                Part::High => mean + half,
                Part::Point => *mean,
            })
        }
        Cell::Median { n, value: v } => match (value(*n), v) {
            (None, _) if policy.controls() => Figure::Suppressed,
            (_, None) => Figure::NotApplicable,
            (_, Some(_)) if policy.controls() && raw(*n) < policy.min_people() => {
                Figure::Suppressed
            }
            (_, Some(x)) if policy.controls() => Figure::Num(x.round()),
            (_, Some(x)) => Figure::Num(*x),
        },
        Cell::Whole(v) => Figure::Int(*v),
        Cell::Fraction { num, den, min_den } => match (value(*num), value(*den)) {
            (Some(_), Some(0)) => Figure::NotApplicable,
            (Some(k), Some(n)) if !policy.controls() || n >= *min_den => {
                Figure::Num(k as f64 / n as f64)
            }
            _ => Figure::Suppressed,
        },
        Cell::Derived {
            rests_on,
            value: exact,
            derivation,
        } => {
            if !policy.controls() {
                return exact.map_or(Figure::NotApplicable, Figure::Num);
            }
            let Some(shown) = rests_on
                .iter()
                .map(|&c| value(c))
                .collect::<Option<Vec<i64>>>()
            else {
                return Figure::Suppressed;
            };
            derive(*derivation, &shown, rests_on, policy, raw)
                .map_or(Figure::Suppressed, Figure::Num)
        }
        Cell::Rounded { n, hundredths } => {
            if policy.controls() && (value(*n).is_none() || raw(*n) < policy.min_people()) {
                Figure::Suppressed
            } else {
                Figure::Num(policy.round_hundredths(*hundredths))
            }
        }
    }
}

/// A derived figure worked out again from published counts; `None` when it cannot be.
fn derive(
    derivation: Derivation,
    shown: &[i64],
    ids: &[CountId],
    policy: &Policy,
    raw: &dyn Fn(CountId) -> i64,
) -> Option<f64> {
    match (derivation, shown) {
        (Derivation::ShareDifference, &[k0, n0, k, n]) if n0 > 0 && n > 0 => {
            Some(k as f64 / n as f64 - k0 as f64 / n0 as f64)
        }
        (Derivation::ShareZ, &[k0, n0, k, n]) if n0 > 0 && n > 0 => {
            let (p0, p) = (k0 as f64 / n0 as f64, k as f64 / n as f64);
            let pc = p0.clamp(0.02, 0.98);
            let se = (pc * (1.0 - pc) * (1.0 / n as f64 + 1.0 / n0 as f64)).sqrt();
            Some((p - p0) / se)
        }
        (Derivation::MedianChange { before, after }, &[_, _])
            if ids.iter().all(|&c| raw(c) >= policy.min_people()) =>
        {
            let (b, a) = (before.round(), after.round());
            Some((a - b) / b.abs().max(1.0))
        }
        _ => None,
    }
}

/// The completeness-bias warning of analytics.md section 4, computed from the published
/// counts: `None` when there is nothing to warn about. A test resting on a suppressed
/// count is not run on the groups left: its result is `*`, and the reader is told so
/// (analytics.md section 8).
pub fn bias_warning(bias: &BiasInput, published: &Published, policy: &Policy) -> Option<String> {
    let found: Vec<String> = [
        ("national IMD quintile", &bias.groups),
        ("ethnic group", &bias.ethnic_groups),
    ]
    .into_iter()
    .filter_map(|(by, g)| match bias_in(g, published, policy) {
        BiasTest::Quiet => None,
        BiasTest::Warn(w) => Some(w),
        BiasTest::Suppressed => Some(format!(
            "The completeness-bias test of outcome data by {by} is shown as *: a count it \
             rests on (closed full episodes of a group, or those of them with outcome \
             data) is suppressed, so whether outcome data were recorded less often for \
             some groups is not published."
        )),
    })
    .collect();
    (!found.is_empty()).then(|| found.join(" "))
}

/// The result of the completeness-bias test on one set of groups.
#[derive(Debug, Clone, PartialEq)]
enum BiasTest {
    /// Nothing to warn about.
    Quiet,
    /// The warning.
    Warn(String),
    /// A count the test rests on is suppressed.
    Suppressed,
}

/// The most closed full episodes a group may have and be left out of the test.
const BIAS_MIN_CLOSED: i64 = 20;

fn bias_in(
    groups: &[(String, CountId, CountId)],
    published: &Published,
    policy: &Policy,
) -> BiasTest {
    // Groups with at least 20 closed full episodes, as published. A count suppressed by
    // the primary rule is at most the threshold, so known to be under 20 without its
    // value; any other hidden count the test would rest on makes the test `*`.
    let mut tested: Vec<(&str, f64, f64)> = Vec::new();
    for (label, closed, with) in groups {
        let c = match published.states[*closed] {
            CountState::Shown(c) => c,
            CountState::Primary if policy.threshold < BIAS_MIN_CLOSED => continue,
            _ => return BiasTest::Suppressed,
        };
        if c < BIAS_MIN_CLOSED {
            continue;
        }
        let Some(w) = published.value(*with) else {
            return BiasTest::Suppressed;
        };
        tested.push((label.as_str(), c as f64, w.min(c) as f64));
    }
    if tested.len() < 2 {
        return BiasTest::Quiet;
    }
    let table: Vec<Vec<f64>> = tested.iter().map(|(_, c, w)| vec![*w, c - w]).collect();
    let Some((_, p)) = stats::chi_square(&table) else {
        return BiasTest::Quiet;
    };
    let shares: Vec<(&str, f64)> = tested.iter().map(|(l, c, w)| (*l, w / c)).collect();
    let (low, high) = shares.iter().fold((shares[0], shares[0]), |(lo, hi), s| {
        (
            if s.1 < lo.1 { *s } else { lo },
            if s.1 > hi.1 { *s } else { hi },
        )
    });
    if p < 0.05 && high.1 - low.1 >= 0.10 {
        BiasTest::Warn(format!(
            "These outcome figures rest on a biased subset: outcome data (a baseline and an \
             exit assessment) were recorded for {:.0}% of closed full episodes of clients in \
             {} but only {:.0}% of those in {} (chi-square p = {:.3}). Figures for the groups \
             with less outcome data may not represent their clients.",
            high.1 * 100.0,
            high.0,
            low.1 * 100.0,
            low.0,
            p
        ))
    } else {
        BiasTest::Quiet
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::{DraftSection, Unit, col};

    #[test]
    fn the_primary_rule_at_its_edges() {
        let p = Policy::NHS_SUB_NATIONAL;
        let shown: Vec<Option<i64>> = [0, 1, 7, 8, 10, 12, 13].map(|c| p.primary(c)).to_vec();
        assert_eq!(
            shown,
            vec![Some(0), None, None, Some(10), Some(10), Some(10), Some(15)]
        );
        assert_eq!(Policy::NONE.primary(3), Some(3));
    }

    fn one_table(counts: &[i64], sums: Vec<(CountId, Vec<CountId>)>) -> Draft {
        let mut d = Draft::default();
        for &c in counts {
            d.count(c);
        }
        d.sums = sums;
        d.sections.push(DraftSection {
            id: "s".into(),
            title: "s".into(),
            definitions: vec![],
            tables: vec![DraftTable {
                id: "t".into(),
                title: "t".into(),
                columns: vec![col("n", "n", Unit::Count)],
                rows: (0..counts.len()).map(|i| vec![Cell::Count(i)]).collect(),
                note: None,
            }],
        });
        d
    }

    #[test]
    fn a_year_and_three_quarters_do_not_give_away_the_fourth() {
        // analytics.md: a year shown as 50 with quarters 15, 10, 10 forces the fourth to 7.
        let d = one_table(&[17, 12, 12, 7, 48], vec![(4, vec![0, 1, 2, 3])]);
        let p = control(&d, &Policy::NHS_SUB_NATIONAL);
        assert_eq!(p.states[3], CountState::Primary);
        assert_eq!(p.states[4], CountState::Shown(50));
        let secondaries = p
            .states
            .iter()
            .filter(|s| matches!(s, CountState::Secondary(_)))
            .count();
        assert_eq!(secondaries, 1, "{:?}", p.states);
        // The smallest shown quarter was chosen.
        assert!(matches!(p.states[1], CountState::Secondary(10)));
    }
}
