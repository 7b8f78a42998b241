//! Reports as one self-contained, printable HTML page: no script, no external file, the
//! project's own stylesheet in the conventions of the NHS design system (colours, type,
//! header, summary list, tables, warning callout), and an A4 print stylesheet that keeps
//! each chart and table on one page.
//!
//! Tables are the published tables, made readable: a figure and its 95% interval share
//! one cell, proportions are percentages, and a table too wide for an A4 page is split
//! into parts that each repeat its label columns. The JSON, CSV and spreadsheet keep
//! every column as it is.

use crate::Report;
use crate::chart::{Chart, charts, escape};
use crate::doc::{Column, Figure, Table, Unit};
use std::fmt::Write;

/// The stylesheet, screen and print.
const STYLE: &str = include_str!("report.css");

/// Characters of figures and labels an A4 page takes across, at the print size.
const PAGE_WIDTH_CHARS: usize = 128;

/// The reports as one HTML page, in order; each starts on a new printed page.
pub fn html(reports: &[Report]) -> String {
    let title = match reports {
        [one] => one.title.clone(),
        _ => format!("{} reports", reports.len()),
    };
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en-GB\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n\
         <a class=\"skip-link\" href=\"#main\">Skip to main content</a>\n\
         <header class=\"header\"><div class=\"width-container\">\
         <span class=\"header-logo\">dcrs</span>\
         <span class=\"header-service\">Health trainer services: reports</span>\
         </div></header>\n<main class=\"width-container\" id=\"main\">\n",
        escape(&title)
    );
    s.push_str(&articles(reports).0);
    s.push_str("</main>\n</body>\n</html>\n");
    s
}

/// The reports' articles (headings, figures, tables and charts) without a page around
/// them, for a page that has its own layout. Only this crate makes one, and every value
/// in it is escaped, so a page may write it as it is.
#[derive(Debug, Clone)]
pub struct Articles(String);

impl Articles {
    /// The HTML.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The articles of the reports, in order; each starts on a new printed page.
pub fn articles(reports: &[Report]) -> Articles {
    let mut s = String::new();
    for (i, r) in reports.iter().enumerate() {
        article(&mut s, r, &format!("r{i}-"));
    }
    Articles(s)
}

/// The reports' stylesheet (screen and print), for a page's `<style>` element written
/// as a newline and then this text, which is what [`style_hash`] covers.
pub fn style() -> &'static str {
    STYLE
}

fn article(s: &mut String, r: &Report, prefix: &str) {
    let _ = writeln!(
        s,
        "<article class=\"report\" aria-labelledby=\"{prefix}title\">\n<h1 id=\"{prefix}title\">{}</h1>",
        escape(&r.title)
    );
    if r.synthetic {
        s.push_str(
            "<p class=\"tag\">Synthetic data: generated for demonstration, not about real people.</p>\n",
        );
    }
    for w in &r.warnings {
        let _ = writeln!(
            s,
            "<div class=\"warning-callout\"><h2 class=\"warning-heading\">Warning</h2><p>{}</p></div>",
            escape(w)
        );
    }
    about(s, r);
    let all = charts(r, prefix);
    let _ = write!(
        s,
        "<nav class=\"contents\" aria-label=\"Contents\"><h2>Contents</h2><ol>"
    );
    for sec in &r.sections {
        let _ = write!(
            s,
            "<li><a href=\"#{prefix}{}\">{}</a></li>",
            escape(&sec.id),
            escape(&sec.title)
        );
    }
    let _ = writeln!(
        s,
        "<li><a href=\"#{prefix}reference-data\">Reference data</a></li></ol></nav>"
    );
    for sec in &r.sections {
        let _ = writeln!(
            s,
            "<section class=\"section\" id=\"{prefix}{0}\" aria-labelledby=\"{prefix}{0}-h\">\n<h2 id=\"{prefix}{0}-h\">{1}</h2>",
            escape(&sec.id),
            escape(&sec.title)
        );
        for c in all.iter().filter(|c| c.section == sec.id) {
            figure(s, c);
        }
        for t in &sec.tables {
            table(s, t, &format!("{prefix}{}", t.id), "h3");
        }
        if !sec.definitions.is_empty() {
            s.push_str("<div class=\"keep\"><h3>Definitions</h3><ul class=\"definitions\">");
            for d in &sec.definitions {
                let _ = write!(s, "<li>{}</li>", escape(d));
            }
            s.push_str("</ul></div>\n");
        }
        s.push_str("</section>\n");
    }
    let _ = writeln!(
        s,
        "<section class=\"section\" id=\"{prefix}reference-data\" aria-labelledby=\"{prefix}reference-data-h\">\
         <h2 id=\"{prefix}reference-data-h\">Reference data</h2>\
         <p>National IMD quintiles are from the English Indices of Deprivation {}. The files loaded when this report was produced:</p>",
        r.imd_year
    );
    let files = Table {
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
    };
    table(s, &files, &files.id, "h3");
    s.push_str("</section>\n</article>\n");
}

fn text_col(id: &str, label: &str) -> Column {
    Column {
        id: id.into(),
        label: label.into(),
        unit: Unit::Text,
    }
}

/// Scope, period, time, policy: the summary list at the top.
fn about(s: &mut String, r: &Report) {
    let mut services = String::from("<ul class=\"plain\">");
    for sv in &r.scope.services {
        let _ = write!(
            services,
            "<li>{} {} (areas served: {})</li>",
            escape(&sv.service_ref),
            escape(&sv.name),
            escape(&sv.areas_served.join(", "))
        );
    }
    services.push_str("</ul>");
    let mut rows: Vec<(&str, String)> = vec![
        ("Scope", escape(&r.scope.description)),
        ("Services", services),
        (
            "Period",
            format!(
                "{} ({} to {})",
                escape(&r.period.label),
                r.period.from.format("%-d %B %Y"),
                r.period.to.format("%-d %B %Y")
            ),
        ),
        ("Produced", escape(&r.produced_at)),
        (
            "Disclosure policy",
            format!(
                "{}: {} In the tables <strong>*</strong> is a figure withheld by this policy and n/a one that does not apply.",
                escape(r.policy.name),
                escape(&r.policy.statement)
            ),
        ),
        (
            "Cells suppressed to protect others",
            r.policy.secondary_suppressions.to_string(),
        ),
    ];
    if !r.policy.withheld_tables.is_empty() {
        rows.push((
            "Tables withheld",
            escape(&r.policy.withheld_tables.join(", ")),
        ));
    }
    s.push_str("<dl class=\"summary-list\">");
    for (key, value) in rows {
        let _ = write!(
            s,
            "<div class=\"summary-list-row\"><dt>{key}</dt><dd>{value}</dd></div>"
        );
    }
    s.push_str("</dl>\n");
}

/// A chart, its description and its numbers.
fn figure(s: &mut String, c: &Chart) {
    let _ = writeln!(
        s,
        "<figure class=\"chart\" aria-labelledby=\"{0}-h\"><h3 id=\"{0}-h\">{1}</h3>\
         <div class=\"chart-body\"><div class=\"chart-svg\">{2}</div>\
         <figcaption class=\"chart-text\"><p>{3}</p></figcaption></div>",
        escape(&c.id),
        escape(&c.title),
        c.svg,
        escape(&c.description)
    );
    table(s, &c.numbers, &c.numbers.id, "h4");
    s.push_str("</figure>\n");
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

/// Thousands separated.
fn grouped(v: i64) -> String {
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

fn cell_text(row: &[Figure], c: &Shown) -> String {
    let value = display(&row[c.value], c.unit);
    match c.interval {
        Some((lo, hi)) if row[lo].as_f64().is_some() && row[hi].as_f64().is_some() => {
            let strip = |t: String| {
                if c.unit == Unit::Proportion {
                    t.trim_end_matches('%').to_string()
                } else {
                    t
                }
            };
            format!(
                "{value} ({} to {})",
                strip(display(&row[lo], c.unit)),
                strip(display(&row[hi], c.unit))
            )
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
fn table(s: &mut String, t: &Table, id: &str, heading: &str) {
    let _ = write!(s, "<div class=\"table-block\" id=\"{}\">", escape(id));
    if let Some(why) = &t.withheld {
        let _ = writeln!(
            s,
            "<{heading}>{}</{heading}><p class=\"withheld\">Withheld: {}</p></div>",
            escape(&t.title),
            escape(why)
        );
        return;
    }
    let columns = shown(&t.columns);
    let split = parts(&columns, &t.rows);
    for (k, part) in split.iter().enumerate() {
        let caption = if split.len() > 1 {
            format!("{} (part {} of {})", t.title, k + 1, split.len())
        } else {
            t.title.clone()
        };
        let _ = write!(
            s,
            "<div class=\"table-wrap\" role=\"region\" tabindex=\"0\" aria-label=\"{0}\"><table class=\"table\"><caption>{0}</caption><thead><tr>",
            escape(&caption)
        );
        for c in part {
            let class = if c.unit == Unit::Text {
                ""
            } else {
                " class=\"numeric\""
            };
            let _ = write!(s, "<th scope=\"col\"{class}>{}</th>", escape(&c.label));
        }
        s.push_str("</tr></thead><tbody>");
        for row in &t.rows {
            s.push_str("<tr>");
            for (j, c) in part.iter().enumerate() {
                let text = escape(&cell_text(row, c));
                if j == 0 {
                    let _ = write!(s, "<th scope=\"row\">{text}</th>");
                } else if c.unit == Unit::Text {
                    let _ = write!(s, "<td>{text}</td>");
                } else {
                    let _ = write!(s, "<td class=\"numeric\">{text}</td>");
                }
            }
            s.push_str("</tr>");
        }
        s.push_str("</tbody></table></div>");
    }
    if let Some(note) = &t.note {
        let _ = write!(s, "<p class=\"note\">{}</p>", escape(note));
    }
    s.push_str("</div>\n");
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
