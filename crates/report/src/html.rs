//! Reports as one self-contained, printable HTML page: no script, no external file, the
//! project's own stylesheet in the conventions of the NHS design system (colours, type,
//! header, summary list, tables, warning callout), and an A4 print stylesheet that keeps
//! each chart and table on one page.
//!
//! Tables are the published tables, made readable: a figure and its 95% interval share
//! one cell, proportions are percentages, and a table too wide for an A4 page is split
//! into parts that each repeat its label columns. The JSON, CSV and spreadsheet keep
//! every column as it is.
//!
//! The HTML is written only by the askama templates in `templates/` (the document,
//! the articles and the macros for their parts), which escape every value they are
//! given; a chart's SVG enters only as [`Svg`](crate::chart::Svg), which only the chart
//! code makes, and the stylesheet is compiled in.

use crate::Report;
use crate::chart::{Chart, charts};
use crate::doc::{Column, Figure, Table, Unit};
use askama::Template;
use std::fmt;

/// The stylesheet, screen and print.
const STYLE: &str = include_str!("report.css");

/// Characters of figures and labels an A4 page takes across, at the print size.
const PAGE_WIDTH_CHARS: usize = 128;

/// The whole page: its head with the stylesheet, the header and the reports' articles.
#[derive(Template)]
#[template(path = "document.html")]
struct Document<'a> {
    /// The page's title.
    title: String,
    /// The reports.
    articles: &'a Articles,
}

/// The reports as one HTML page, in order; each starts on a new printed page.
pub fn html(reports: &[Report]) -> String {
    let title = match reports {
        [one] => one.title.clone(),
        _ => format!("{} reports", reports.len()),
    };
    render(&Document {
        title,
        articles: &articles(reports),
    })
}

/// The HTML a template writes.
fn render(t: &impl Template) -> String {
    t.render().expect("a template writes to a String")
}

/// The reports' articles (headings, figures, tables and charts) without a page around
/// them, for a page that has its own layout. Only this crate makes one, by rendering a
/// template that escapes every value in it, so a page may write it as it is.
#[derive(Debug, Clone)]
pub struct Articles(String);

impl Articles {
    /// The HTML.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Articles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl askama::filters::HtmlSafe for Articles {}

/// The articles of the reports, in order; each starts on a new printed page.
pub fn articles(reports: &[Report]) -> Articles {
    let articles = reports
        .iter()
        .enumerate()
        .map(|(i, r)| article(r, format!("r{i}-")))
        .collect();
    Articles(render(&ArticleList { articles }))
}

/// The reports' stylesheet (screen and print), for a page's `<style>` element written
/// as a newline and then this text, which is what [`style_hash`] covers.
pub fn style() -> &'static str {
    STYLE
}

/// The articles, one after the other.
#[derive(Template)]
#[template(path = "articles.html")]
struct ArticleList<'a> {
    /// The reports' articles, in order.
    articles: Vec<Article<'a>>,
}

/// A report as its article shows it.
struct Article<'a> {
    /// What every id in the article starts with, unique to it on its page.
    prefix: String,
    /// The report.
    report: &'a Report,
    /// The period: its label and its first and last days.
    period: String,
    /// The sections, with their charts and tables.
    sections: Vec<SectionView<'a>>,
    /// The reference files loaded when it was produced.
    reference_files: TableView,
    /// When it was produced, in UK time.
    produced: String,
    /// The cells its tables withhold (`*`), those withheld to protect others among them.
    withheld_cells: usize,
    /// What it says in brief, before any table: headline figures, or each service of
    /// a patterns document in a sentence.
    headline: Vec<(String, String)>,
}

/// A section of an article.
struct SectionView<'a> {
    /// Its id (after the article's prefix).
    id: &'a str,
    /// Title.
    title: &'a str,
    /// Its charts.
    figures: Vec<FigureView>,
    /// Its tables.
    tables: Vec<TableView>,
    /// Its definitions.
    definitions: &'a [String],
}

/// A chart with the table of its numbers.
struct FigureView {
    /// The chart.
    chart: Chart,
    /// The figures it draws.
    numbers: TableView,
}

/// A published table as shown: withheld, or in parts that each fit across a page.
struct TableView {
    /// The id of its block.
    id: String,
    /// Title.
    title: String,
    /// Why it is withheld, when it is.
    withheld: Option<String>,
    /// Its parts.
    parts: Vec<TablePart>,
    /// The note under it.
    note: Option<String>,
}

/// A part of a table: its caption, column headers and rows.
struct TablePart {
    /// The caption, which says which part it is when there are several.
    caption: String,
    /// The column headers.
    header: Vec<Cell>,
    /// The rows, the first cell of each its label.
    rows: Vec<Vec<Cell>>,
}

/// A cell's text and whether it holds a number.
struct Cell {
    /// What it shows.
    text: String,
    /// Whether it holds a figure (aligned as a number) rather than text.
    numeric: bool,
}

/// A report's article, every id in it starting with `prefix`.
fn article(r: &Report, prefix: String) -> Article<'_> {
    let mut all = charts(r, &prefix);
    let sections = r
        .sections
        .iter()
        .map(|sec| SectionView {
            id: &sec.id,
            title: &sec.title,
            figures: take_section(&mut all, &sec.id)
                .into_iter()
                .map(figure)
                .collect(),
            tables: sec
                .tables
                .iter()
                .filter(|t| t.id != SENTENCES)
                .map(|t| table(t, &format!("{prefix}{}", t.id)))
                .collect(),
            definitions: &sec.definitions,
        })
        .collect();
    let files = reference_files(r, &prefix);
    Article {
        headline: headline(r),
        produced: produced(&r.produced_at),
        withheld_cells: r
            .sections
            .iter()
            .flat_map(|s| &s.tables)
            .flat_map(|t| &t.rows)
            .flatten()
            .filter(|f| matches!(f, Figure::Suppressed))
            .count(),
        period: period(r),
        sections,
        reference_files: table(&files, &files.id),
        prefix,
        report: r,
    }
}

/// The table of a patterns document that says each service in a sentence: the page
/// opens with it (see [`headline`]) rather than repeating it among the tables.
const SENTENCES: &str = "overview_sentences";

/// What a reader looks for first. For a patterns document, each service in a sentence;
/// otherwise the figures of [`crate::DASHBOARD_FIGURES`] that the report has, as
/// published (withheld ones as `*`): counts as whole numbers, shares and rates as
/// percentages.
fn headline(r: &Report) -> Vec<(String, String)> {
    if let Some(t) = r.table(SENTENCES) {
        return t
            .rows
            .iter()
            .filter_map(|row| match row.as_slice() {
                [Figure::Text(service), Figure::Text(sentence)] => {
                    Some((service.clone(), sentence.clone()))
                }
                _ => None,
            })
            .collect();
    }
    crate::DASHBOARD_FIGURES
        .iter()
        .filter_map(|&(label, table, row, col)| {
            let f = r.table(table)?.get(row, col)?;
            let share = col.contains("share") || row.ends_with(" rate");
            let unit = if share { Unit::Proportion } else { Unit::Count };
            Some((label.to_string(), display(f, unit)))
        })
        .collect()
}

/// A time stored as RFC 3339 as people in the UK read it: "16 November 2026 at 10:30".
fn produced(at: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(at).map_or_else(
        |_| at.to_string(),
        |t| {
            dcrs_domain::types::uk_time(t.with_timezone(&chrono::Utc))
                .format("%-d %B %Y at %H:%M")
                .to_string()
        },
    )
}

/// The charts of a section, in order, taken out of `all`.
fn take_section(all: &mut Vec<Chart>, section: &str) -> Vec<Chart> {
    let (these, rest) = std::mem::take(all)
        .into_iter()
        .partition(|c| c.section == section);
    *all = rest;
    these
}

/// The period as the summary list gives it.
fn period(r: &Report) -> String {
    format!(
        "{} ({} to {})",
        r.period.label,
        r.period.from.format("%-d %B %Y"),
        r.period.to.format("%-d %B %Y")
    )
}

/// The table of the reference files a report's figures rest on.
fn reference_files(r: &Report, prefix: &str) -> Table {
    Table {
        id: format!("{prefix}reference-files"),
        title: "Reference files".into(),
        columns: vec![
            text_col("file", "File"),
            text_col("kind", "Contents"),
            text_col("sha256", "SHA-256"),
        ],
        rows: r
            .reference_data
            .iter()
            .map(|f| {
                vec![
                    Figure::Text(f.file.clone()),
                    Figure::Text(f.kind.clone()),
                    Figure::Text(f.sha256.clone()),
                ]
            })
            .collect(),
        note: None,
        withheld: None,
        named_rows: false,
    }
}

/// A column of text.
fn text_col(id: &str, label: &str) -> Column {
    Column {
        id: id.into(),
        label: label.into(),
        unit: Unit::Text,
    }
}

/// A chart with its numbers.
fn figure(chart: Chart) -> FigureView {
    let numbers = table(&chart.numbers, &chart.numbers.id);
    FigureView { chart, numbers }
}

/// A column as shown: one published column, or a figure with its interval.
struct Shown {
    label: String,
    unit: Unit,
    value: usize,
    interval: Option<(usize, usize)>,
}

/// Puts each figure's `…low` and `…high` columns into its own cell.
fn shown(columns: &[Column]) -> Vec<Shown> {
    let mut out = Vec::new();
    let mut j = 0;
    while j < columns.len() {
        let c = &columns[j];
        let pair = columns.get(j + 1).zip(columns.get(j + 2));
        match pair {
            Some((lo, hi))
                if c.unit != Unit::Text && lo.id.ends_with("low") && hi.id.ends_with("high") =>
            {
                out.push(Shown {
                    label: format!("{} (95% CI)", c.label),
                    unit: c.unit,
                    value: j,
                    interval: Some((j + 1, j + 2)),
                });
                j += 3;
            }
            _ => {
                out.push(Shown {
                    label: c.label.clone(),
                    unit: c.unit,
                    value: j,
                    interval: None,
                });
                j += 1;
            }
        }
    }
    out
}

/// A whole number with commas between thousands ("2,300"), as every page writes one.
pub fn grouped(v: i64) -> String {
    let digits = v.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    if v < 0 { format!("\u{2212}{out}") } else { out }
}

/// A figure as people read it, for the column's unit.
pub fn display(f: &Figure, unit: Unit) -> String {
    let v = match f {
        Figure::Int(v) => return grouped(*v),
        Figure::Num(v) => *v,
        other => return other.to_text(),
    };
    let text = match unit {
        Unit::Proportion => format!("{:.1}%", v * 100.0),
        Unit::Ratio => format!("{v:.2}"),
        Unit::PValue if v < 0.001 => "<0.001".into(),
        Unit::PValue => format!("{v:.3}"),
        Unit::Days => format!("{v:.1}"),
        Unit::Count if v.fract() == 0.0 => grouped(v as i64),
        _ if v.fract() == 0.0 && v.abs() < 1e12 => grouped(v as i64),
        _ if v.abs() < 1.0 => format!("{v:.3}"),
        _ => format!("{v:.2}"),
    };
    text.replace('-', "\u{2212}")
}

/// Whether a row holds a proportion in its number columns: a row named as a share or a
/// rate ("Did-not-attend rate", "Share living in the area served").
fn share_row(row: &[Figure]) -> bool {
    match row.first() {
        Some(Figure::Text(label)) => label.starts_with("Share ") || label.ends_with(" rate"),
        _ => false,
    }
}

/// A cell as the page shows it: a text in words (codes and field names through
/// [`crate::words::said`]), a number for its unit (a share row's numbers as
/// percentages), with its interval where it has one.
fn cell_text(row: &[Figure], c: &Shown) -> String {
    let unit = match c.unit {
        Unit::Number if share_row(row) => Unit::Proportion,
        unit => unit,
    };
    let value = match &row[c.value] {
        Figure::Text(t) => crate::words::said(t),
        f => display(f, unit),
    };
    match c.interval {
        Some((lo, hi)) if row[lo].as_f64().is_some() && row[hi].as_f64().is_some() => {
            let end = |f: &Figure| {
                let t = display(f, unit);
                match unit {
                    Unit::Proportion => t.trim_end_matches('%').to_string(),
                    _ => t,
                }
            };
            format!("{value} ({} to {})", end(&row[lo]), end(&row[hi]))
        }
        _ => value,
    }
}

/// Splits the shown columns into parts that fit across a page, each led by the label
/// columns.
fn parts<'a>(columns: &'a [Shown], rows: &[Vec<Figure>]) -> Vec<Vec<&'a Shown>> {
    let width = |c: &Shown| {
        let label = c
            .label
            .split(' ')
            .map(|w| w.chars().count())
            .max()
            .unwrap_or(0);
        let cells = rows
            .iter()
            .map(|r| cell_text(r, c).chars().count())
            .max()
            .unwrap_or(0);
        label.max(cells).max(4) + 3
    };
    let lead: Vec<&Shown> = columns
        .iter()
        .take_while(|c| c.unit == Unit::Text)
        .collect();
    let lead_width: usize = lead.iter().map(|c| width(c)).sum();
    let mut out: Vec<Vec<&Shown>> = Vec::new();
    let mut current: Vec<&Shown> = lead.clone();
    let mut used = lead_width;
    for c in &columns[lead.len()..] {
        let w = width(c);
        if used + w > PAGE_WIDTH_CHARS && current.len() > lead.len() {
            out.push(std::mem::replace(&mut current, lead.clone()));
            used = lead_width;
        }
        current.push(c);
        used += w;
    }
    out.push(current);
    out
}

/// A published table, split into parts when too wide for a page.
fn table(t: &Table, id: &str) -> TableView {
    let parts = match t.withheld {
        Some(_) => Vec::new(),
        None => table_parts(t),
    };
    TableView {
        id: id.to_string(),
        title: t.title.clone(),
        withheld: t.withheld.clone(),
        parts,
        note: t.note.clone(),
    }
}

/// The parts of a table, each with its caption, headers and rows.
fn table_parts(t: &Table) -> Vec<TablePart> {
    let columns = shown(&t.columns);
    let split = parts(&columns, &t.rows);
    let count = split.len();
    split
        .iter()
        .enumerate()
        .map(|(k, part)| TablePart {
            caption: if count > 1 {
                format!("{} (part {} of {count})", t.title, k + 1)
            } else {
                t.title.clone()
            },
            header: part
                .iter()
                .map(|c| Cell {
                    text: crate::words::said(&c.label),
                    numeric: c.unit != Unit::Text,
                })
                .collect(),
            rows: t
                .rows
                .iter()
                .map(|row| {
                    part.iter()
                        .map(|c| Cell {
                            text: cell_text(row, c),
                            numeric: c.unit != Unit::Text,
                        })
                        .collect()
                })
                .collect(),
        })
        .collect()
}

/// The Content-Security-Policy source of the page's inline stylesheet
/// (`sha256-…`), so a web page can allow exactly it and no other inline style.
pub fn style_hash() -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("\n{STYLE}").as_bytes());
    format!("sha256-{}", base64(&digest))
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
