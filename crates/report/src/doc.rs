//! The shape of a report before and after disclosure control.
//!
//! Report code builds a [`Draft`]: every count it shows is registered once in an arena
//! (so the same figure shown in two tables is one cell to the disclosure rule), every
//! total and its breakdown is recorded as a sum, and table cells refer to counts rather
//! than holding numbers. Derived figures (shares, intervals, ratios) are described by the
//! counts they rest on, so [`crate::disclosure`] can compute them from the published,
//! rounded counts instead of the true ones.

use serde::Serialize;

/// Index of a count in a draft's arena.
pub type CountId = usize;

/// Which figure of a proportion with its interval a cell shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The proportion itself.
    Point,
    /// The lower end of its 95% Wilson interval.
    Low,
    /// The upper end.
    High,
}

/// One cell of a draft table.
#[derive(Debug, Clone)]
pub enum Cell {
    /// A row label.
    Label(String),
    /// A count of people or events.
    Count(CountId),
    /// A proportion `num ÷ den` (or its interval), computed from the published counts.
    Share {
        num: CountId,
        den: CountId,
        part: Part,
    },
    /// `(num ÷ den) ÷ reference`: a share against a population share from reference data.
    Ratio {
        num: CountId,
        den: CountId,
        reference: Option<f64>,
    },
    /// A mean, median, interval end or effect size resting on the `n` people counted in
    /// the count `n`; `None` when it cannot be computed (too few values).
    Stat { n: CountId, value: Option<f64> },
    /// A figure from reference data (not about clients, so not controlled).
    Reference(Option<f64>),
    /// An end of the 95% t interval of a mean resting on the count `n`. Under control
    /// its width is worked out from the published count, not the true one: with the
    /// standardised effect beside it, the true count could otherwise be solved for.
    MeanBound {
        n: CountId,
        mean: f64,
        sd: f64,
        part: Part,
    },
    /// A median of whole numbers resting on the count `n`; under control it is shown
    /// as a whole number, since a half would tell that the count is even.
    Median { n: CountId, value: Option<f64> },
    /// A total of fractions of people (the workforce's FTE), in whole hundredths,
    /// resting on the count `n`; under control rounded like a count, since each
    /// person's share is bounded. Whole hundredths so that the total and its rounding
    /// are exact, whatever order the fractions were added in.
    Rounded { n: CountId, hundredths: i64 },
    /// The published count `num` divided by a quantity in whole hundredths (such as
    /// the workforce's FTE) that rests on the `n` people counted in `n`; under control
    /// divided by that quantity as published (rounded).
    Per {
        num: CountId,
        denominator_hundredths: i64,
        n: CountId,
    },
    /// A whole number that is not a count of records, such as how many changes the
    /// detector found; shown as it is.
    Whole(i64),
    /// The share `num ÷ den`, computed from the published counts and shown only when
    /// the denominator as published is at least `min_den`: below that, rounding each
    /// count to 5 can move the share further than the changes it is shown beside (11 of
    /// 12 workers would show as 10 of 10, 100%).
    Fraction {
        num: CountId,
        den: CountId,
        min_den: i64,
    },
    /// A figure worked out from the counts in `rests_on` (`value`, exactly); under
    /// control worked out again from the published counts as `derivation` says, and
    /// shown as `*` when one of them is not shown.
    Derived {
        rests_on: Vec<CountId>,
        value: Option<f64>,
        derivation: Derivation,
    },
}

/// How a [`Cell::Derived`] figure is worked out from published counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Derivation {
    /// `rests_on` is `[k0, n0, k, n]`: `k/n − k0/n0`.
    ShareDifference,
    /// `rests_on` is `[k0, n0, k, n]`: the two-proportion z of `k/n` against `k0/n0`
    /// (the reference clamped to 0.02–0.98), as the shift detector computes it.
    ShareZ,
    /// `rests_on` is `[n0, n]`, the people behind two medians: `(after − before) ÷
    /// max(before, 1)` of the medians as published (whole numbers), shown when both
    /// counts are shown and at least the fewest people a median needs.
    MedianChange { before: f64, after: f64 },
    /// Cannot be worked out from published counts (it rests on the values behind them):
    /// `*` under control.
    Exact,
}

/// How the figures of a column are to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Words.
    Text,
    /// A whole number of people or events.
    Count,
    /// A proportion between 0 and 1.
    Proportion,
    /// A ratio of two proportions.
    Ratio,
    /// A measurement in the unit the column's label gives.
    Number,
    /// Days.
    Days,
    /// A p-value.
    PValue,
}

/// A column of a table.
#[derive(Debug, Clone, Serialize)]
pub struct Column {
    /// A short identifier (the CSV header).
    pub id: String,
    /// The heading shown to people.
    pub label: String,
    /// How to read it.
    pub unit: Unit,
}

/// Builds a column.
pub fn col(id: &str, label: &str, unit: Unit) -> Column {
    Column {
        id: id.into(),
        label: label.into(),
        unit,
    }
}

/// A table of a draft.
#[derive(Debug, Clone)]
pub struct DraftTable {
    /// Identifier, unique within the report (the CSV file name).
    pub id: String,
    /// Title.
    pub title: String,
    /// Columns.
    pub columns: Vec<Column>,
    /// Rows of cells, one per column.
    pub rows: Vec<Vec<Cell>>,
    /// A note shown under the table.
    pub note: Option<String>,
}

/// A section of a draft: one of the reports.
#[derive(Debug, Clone)]
pub struct DraftSection {
    /// `activity`, `reach`, …
    pub id: String,
    /// Title.
    pub title: String,
    /// The definitions behind its figures.
    pub definitions: Vec<String>,
    /// Its tables.
    pub tables: Vec<DraftTable>,
}

/// Groups compared for the completeness-bias test of the outcomes report: for each,
/// the full episodes closed in the period and those of them with outcome data.
#[derive(Debug, Clone, Default)]
pub struct BiasInput {
    /// By national IMD quintile: (group label, closed full episodes, of which with
    /// baseline and exit).
    pub groups: Vec<(String, CountId, CountId)>,
    /// The same by ethnic group.
    pub ethnic_groups: Vec<(String, CountId, CountId)>,
}

/// A report before disclosure control.
#[derive(Debug, Clone, Default)]
pub struct Draft {
    /// The true counts.
    pub counts: Vec<i64>,
    /// Totals and their breakdowns: `total = Σ parts`.
    pub sums: Vec<(CountId, Vec<CountId>)>,
    /// The sections.
    pub sections: Vec<DraftSection>,
    /// Inputs of the completeness-bias warning, when the outcomes report is included.
    pub bias: Option<BiasInput>,
}

impl Draft {
    /// Registers a count.
    pub fn count(&mut self, value: i64) -> CountId {
        self.counts.push(value);
        self.counts.len() - 1
    }

    /// Registers counts and their total, recording the sum; returns (total, parts).
    pub fn breakdown(&mut self, parts: &[i64]) -> (CountId, Vec<CountId>) {
        let ids: Vec<CountId> = parts.iter().map(|&v| self.count(v)).collect();
        let total = self.count(parts.iter().sum());
        self.sums.push((total, ids.clone()));
        (total, ids)
    }

    /// Records that `total` is the sum of `parts` (both already registered).
    pub fn sum(&mut self, total: CountId, parts: Vec<CountId>) {
        debug_assert_eq!(
            self.counts[total],
            parts.iter().map(|&p| self.counts[p]).sum::<i64>(),
            "a recorded sum must hold for the true counts"
        );
        self.sums.push((total, parts));
    }
}

/// A published figure.
#[derive(Debug, Clone, PartialEq)]
pub enum Figure {
    /// A whole number.
    Int(i64),
    /// A number.
    Num(f64),
    /// Words.
    Text(String),
    /// Suppressed by the disclosure policy: the text `*`.
    Suppressed,
    /// Not applicable (no denominator, no population): the text `n/a`.
    NotApplicable,
}

impl Figure {
    /// The figure as CSV text: numbers in full, `*` and `n/a` as they are shown.
    pub fn to_text(&self) -> String {
        match self {
            Figure::Int(v) => v.to_string(),
            Figure::Num(v) => format_number(*v),
            Figure::Text(t) => t.clone(),
            Figure::Suppressed => "*".into(),
            Figure::NotApplicable => "n/a".into(),
        }
    }

    /// The number, when the figure is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Figure::Int(v) => Some(*v as f64),
            Figure::Num(v) => Some(*v),
            _ => None,
        }
    }
}

/// Six significant decimals are more than any figure here supports and keep files stable.
pub(crate) fn format_number(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

impl Serialize for Figure {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Figure::Int(v) => s.serialize_i64(*v),
            Figure::Num(v) => s.serialize_f64(format_number(*v).parse().unwrap_or(*v)),
            Figure::Text(t) => s.serialize_str(t),
            Figure::Suppressed => s.serialize_str("*"),
            Figure::NotApplicable => s.serialize_str("n/a"),
        }
    }
}

/// A published table.
#[derive(Debug, Clone)]
pub struct Table {
    /// Identifier, unique within the report.
    pub id: String,
    /// Title.
    pub title: String,
    /// Columns.
    pub columns: Vec<Column>,
    /// Rows.
    pub rows: Vec<Vec<Figure>>,
    /// A note shown under the table.
    pub note: Option<String>,
    /// Why the table's figures are withheld, when they are (its rows are then empty).
    pub withheld: Option<String>,
    /// Whether its rows are written to JSON as objects named by column id (in column
    /// order) rather than as arrays: the implementation patterns document's are, so
    /// that a reader need not count columns.
    pub named_rows: bool,
}

impl Serialize for Table {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let fields = 4 + usize::from(self.note.is_some()) + usize::from(self.withheld.is_some());
        let mut t = s.serialize_struct("Table", fields)?;
        t.serialize_field("id", &self.id)?;
        t.serialize_field("title", &self.title)?;
        t.serialize_field("columns", &self.columns)?;
        if self.named_rows {
            let rows: Vec<NamedRow> = self
                .rows
                .iter()
                .map(|row| NamedRow {
                    columns: &self.columns,
                    row,
                })
                .collect();
            t.serialize_field("rows", &rows)?;
        } else {
            t.serialize_field("rows", &self.rows)?;
        }
        if let Some(note) = &self.note {
            t.serialize_field("note", note)?;
        }
        if let Some(withheld) = &self.withheld {
            t.serialize_field("withheld", withheld)?;
        }
        t.end()
    }
}

/// One row as an object: column id → figure, in column order.
struct NamedRow<'a> {
    columns: &'a [Column],
    row: &'a [Figure],
}

impl Serialize for NamedRow<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.row.len()))?;
        for (c, f) in self.columns.iter().zip(self.row) {
            m.serialize_entry(&c.id, f)?;
        }
        m.end()
    }
}

impl Table {
    /// The figure in the row whose first cell is `label`, in column `column`.
    pub fn get(&self, label: &str, column: &str) -> Option<&Figure> {
        let j = self.columns.iter().position(|c| c.id == column)?;
        let row = self
            .rows
            .iter()
            .find(|r| matches!(r.first(), Some(Figure::Text(t)) if t == label))?;
        row.get(j)
    }
}

/// A published section.
#[derive(Debug, Clone, Serialize)]
pub struct Section {
    /// `activity`, `reach`, …
    pub id: String,
    /// Title.
    pub title: String,
    /// Definitions (the footnote).
    pub definitions: Vec<String>,
    /// Tables.
    pub tables: Vec<Table>,
}

impl Section {
    /// The table with this id.
    pub fn table(&self, id: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.id == id)
    }
}
