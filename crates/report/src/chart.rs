//! The charts of a report document, drawn as inline SVG from the published tables (so a
//! chart can never show more than its table does): reach against need by quintile and
//! by ethnic group, referrals by source group over quarters, goal attainment, paired
//! change with intervals, and the pathway by quintile.
//!
//! Every chart is plain SVG with no script. Series differ by texture, line dash and
//! marker shape as well as colour (the Okabe–Ito palette, which stays distinct for the
//! common kinds of colour blindness), so they can be told apart in greyscale. A
//! suppressed figure is drawn as `*`, a figure that does not apply as `n/a`. Each chart
//! carries a title and a text description, and the numbers it draws as a table.

use crate::Report;
use crate::data::{MEASURES, STEPS};
use crate::doc::{Column, Figure, Table};
use std::fmt::Write;

/// A chart with what a reader needs beside it.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Identifier, unique within the page (also the prefix of the SVG's own ids).
    pub id: String,
    /// The section it belongs to.
    pub section: String,
    /// Title.
    pub title: String,
    /// What it shows, in words, with its main figures.
    pub description: String,
    /// The SVG element.
    pub svg: Svg,
    /// The figures it draws.
    pub numbers: Table,
}

/// An SVG element the chart code drew, every text in it escaped. Only this module makes
/// one, so a page writes it as it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Svg(String);

impl Svg {
    /// The element: its opening tag (from [`open`]), its body and its closing tag.
    fn close(open: String, body: &str) -> Svg {
        Svg(format!("{open}{body}</svg>"))
    }

    /// The SVG markup.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Svg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl askama::filters::HtmlSafe for Svg {}

/// Escapes text for HTML and SVG, in element content and quoted attributes alike.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The charts of a report, in section order. `prefix` keeps ids unique when a page
/// holds several reports.
pub fn charts(report: &Report, prefix: &str) -> Vec<Chart> {
    if report.kind == crate::Kind::Patterns {
        return pattern_charts(report, prefix);
    }
    let mut out = Vec::new();
    let mut push = |section: &str, c: Option<Chart>| {
        if let Some(mut c) = c {
            c.section = section.into();
            out.push(c);
        }
    };
    let t = |id: &str| report.table(id).filter(|t| t.withheld.is_none());
    push(
        "activity",
        t("referrals_by_quarter").map(|t| referrals(t, prefix)),
    );
    push(
        "reach",
        t("reach_by_quintile").map(|t| reach(t, prefix, "quintile", "national IMD quintile")),
    );
    push(
        "reach",
        t("reach_by_ethnic_group").map(|t| reach(t, prefix, "ethnic", "ethnic group")),
    );
    if let (Some(g), Some(c)) = (t("goal_attainment_by_goal"), t("goal_attainment_by_client")) {
        push("outcomes", Some(goals(g, c, prefix)));
    }
    push("outcomes", t("paired_change").map(|t| paired(t, prefix)));
    push(
        "pathway",
        t("pathway_by_quintile").map(|t| pathway(t, prefix)),
    );
    out
}

/// A figure as drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Val {
    Num(f64),
    Suppressed,
    NotApplicable,
}

impl Val {
    fn of(f: Option<&Figure>) -> Val {
        match f {
            Some(Figure::Suppressed) => Val::Suppressed,
            Some(f) => f.as_f64().map_or(Val::NotApplicable, Val::Num),
            None => Val::NotApplicable,
        }
    }

    fn num(self) -> Option<f64> {
        match self {
            Val::Num(v) => Some(v),
            _ => None,
        }
    }

    /// As written in a description.
    fn words(self, fmt: fn(f64) -> String) -> String {
        match self {
            Val::Num(v) => fmt(v),
            Val::Suppressed => "suppressed".into(),
            Val::NotApplicable => "not applicable".into(),
        }
    }

    /// As written on the chart.
    fn mark(self, fmt: fn(f64) -> String) -> String {
        match self {
            Val::Num(v) => fmt(v),
            Val::Suppressed => "*".into(),
            Val::NotApplicable => "n/a".into(),
        }
    }
}

fn pct(v: f64) -> String {
    format!("{:.0}%", v * 100.0)
}

fn whole(v: f64) -> String {
    format!("{v:.0}")
}

fn signed(v: f64) -> String {
    let s = if v.abs() >= 10.0 {
        format!("{v:+.1}")
    } else {
        format!("{v:+.2}")
    };
    s.replace('-', "\u{2212}")
}

/// One drawn value with its 95% interval.
#[derive(Debug, Clone, Copy)]
struct Point {
    value: Val,
    interval: Option<(f64, f64)>,
}

fn point(t: &Table, row: &str, column: &str) -> Point {
    let value = Val::of(t.get(row, column));
    let low = Val::of(t.get(row, &format!("{column}_low"))).num();
    let high = Val::of(t.get(row, &format!("{column}_high"))).num();
    Point {
        value,
        interval: low.zip(high),
    }
}

struct Series {
    name: String,
    points: Vec<Point>,
}

/// Colours (Okabe–Ito), textures, dashes and markers, by series.
const COLOURS: [&str; 6] = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#000000",
];
const DASHES: [&str; 6] = ["", "6 3", "2 3", "9 3 2 3", "4 2 1 2", ""];
const INK: &str = "#212b32";
const GRID: &str = "#d8dde0";

/// The SVG's opening tag, title, description and the textures of its series.
fn open(id: &str, title: &str, description: &str, width: f64, height: f64) -> String {
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"{id}\" viewBox=\"0 0 {width:.0} {height:.0}\" \
         width=\"{width:.0}\" height=\"{height:.0}\" role=\"img\" aria-labelledby=\"{id}-t {id}-d\" \
         font-family=\"Arial, Helvetica, sans-serif\" font-size=\"12\" fill=\"{INK}\">\
         <title id=\"{id}-t\">{}</title><desc id=\"{id}-d\">{}</desc><defs>",
        escape(title),
        escape(description)
    );
    // Textures: solid, diagonal lines, dots, cross-hatch, horizontal lines, solid dark.
    let marks = [
        "",
        "<path d=\"M0,8 L8,0\" stroke=\"#000\" stroke-width=\"1.2\"/>",
        "<circle cx=\"4\" cy=\"4\" r=\"1.4\" fill=\"#000\"/>",
        "<path d=\"M0,0 L8,8 M8,0 L0,8\" stroke=\"#000\" stroke-width=\"0.9\"/>",
        "<path d=\"M0,4 L8,4\" stroke=\"#000\" stroke-width=\"1.2\"/>",
        "",
    ];
    for (i, (colour, mark)) in COLOURS.iter().zip(marks).enumerate() {
        let _ = write!(
            s,
            "<pattern id=\"{id}-p{i}\" width=\"8\" height=\"8\" patternUnits=\"userSpaceOnUse\">\
             <rect width=\"8\" height=\"8\" fill=\"{colour}\"/>{mark}</pattern>"
        );
    }
    s.push_str("</defs>");
    s
}

fn fill(id: &str, series: usize) -> String {
    format!("url(#{id}-p{})", series % COLOURS.len())
}

/// A legend swatch and name at (x, y).
fn swatch(s: &mut String, id: &str, i: usize, x: f64, y: f64, name: &str, line: bool) {
    if line {
        let _ = write!(
            s,
            "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{}\" stroke-width=\"2\" stroke-dasharray=\"{}\"/>",
            y + 7.0,
            x + 24.0,
            y + 7.0,
            COLOURS[i % 6],
            DASHES[i % 6]
        );
        marker(s, i, x + 12.0, y + 7.0);
    } else {
        let _ = write!(
            s,
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"24\" height=\"14\" fill=\"{}\" stroke=\"{INK}\" stroke-width=\"0.8\"/>",
            fill(id, i)
        );
    }
    let _ = write!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
        x + 30.0,
        y + 11.0,
        escape(name)
    );
}

/// Legend entries laid out in rows of `per_row`; returns the height used.
fn legend(
    s: &mut String,
    id: &str,
    names: &[&str],
    x: f64,
    y: f64,
    per_row: usize,
    line: bool,
) -> f64 {
    let width = 620.0 / per_row as f64;
    for (i, name) in names.iter().enumerate() {
        let (r, c) = (i / per_row, i % per_row);
        swatch(
            s,
            id,
            i,
            x + c as f64 * width,
            y + r as f64 * 20.0,
            name,
            line,
        );
    }
    names.len().div_ceil(per_row) as f64 * 20.0
}

/// A marker of series `i` centred on (x, y): circle, square, triangle, diamond,
/// cross, disc.
fn marker(s: &mut String, i: usize, x: f64, y: f64) {
    let c = COLOURS[i % 6];
    let _ = match i % 6 {
        0 => write!(
            s,
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"4\" fill=\"#fff\" stroke=\"{c}\" stroke-width=\"2\"/>"
        ),
        1 => write!(
            s,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"8\" height=\"8\" fill=\"{c}\"/>",
            x - 4.0,
            y - 4.0
        ),
        2 => write!(
            s,
            "<path d=\"M{x:.1},{:.1} L{:.1},{:.1} L{:.1},{:.1} Z\" fill=\"{c}\"/>",
            y - 5.0,
            x + 5.0,
            y + 4.0,
            x - 5.0,
            y + 4.0
        ),
        3 => write!(
            s,
            "<path d=\"M{x:.1},{:.1} L{:.1},{y:.1} L{x:.1},{:.1} L{:.1},{y:.1} Z\" fill=\"#fff\" stroke=\"{c}\" stroke-width=\"2\"/>",
            y - 5.0,
            x + 5.0,
            y + 5.0,
            x - 5.0
        ),
        4 => write!(
            s,
            "<path d=\"M{:.1},{:.1} L{:.1},{:.1} M{:.1},{:.1} L{:.1},{:.1}\" stroke=\"{c}\" stroke-width=\"2.5\"/>",
            x - 4.0,
            y - 4.0,
            x + 4.0,
            y + 4.0,
            x - 4.0,
            y + 4.0,
            x + 4.0,
            y - 4.0
        ),
        _ => write!(
            s,
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"4.5\" fill=\"{c}\"/>"
        ),
    };
}

/// The smallest of 1, 2, 2.5 or 5 times a power of ten at or above `v`.
fn nice(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * p >= v * 0.999_999 {
            return m * p;
        }
    }
    10.0 * p
}

/// An interval whisker between x1 and x2 at height y.
fn whisker(s: &mut String, x1: f64, x2: f64, y: f64) {
    let _ = write!(
        s,
        "<path d=\"M{x1:.1},{y:.1} L{x2:.1},{y:.1} M{x1:.1},{:.1} L{x1:.1},{:.1} M{x2:.1},{:.1} L{x2:.1},{:.1}\" stroke=\"{INK}\" stroke-width=\"1.5\" fill=\"none\"/>",
        y - 4.0,
        y + 4.0,
        y - 4.0,
        y + 4.0
    );
}

/// Horizontal bars grouped by category, each with its interval when it has one.
fn hbars(
    id: &str,
    title: &str,
    description: &str,
    categories: &[String],
    series: &[Series],
    fmt: fn(f64) -> String,
) -> Svg {
    let (label_w, plot_w, bar_h, gap) = (200.0, 340.0, 16.0, 12.0);
    let names: Vec<&str> = series.iter().map(|s| s.name.as_str()).collect();
    let block = series.len() as f64 * bar_h + gap;
    let mut body = String::new();
    let top = 8.0 + legend(&mut body, id, &names, 10.0, 8.0, 2, false) + 8.0;
    let height = top + categories.len() as f64 * block + 30.0;
    let max = nice(
        series
            .iter()
            .flat_map(|s| &s.points)
            .flat_map(|p| [p.value.num(), p.interval.map(|i| i.1)])
            .flatten()
            .fold(0.0, f64::max),
    );
    let x = |v: f64| label_w + v.clamp(0.0, max) / max * plot_w;
    let bottom = height - 26.0;
    for k in 0..=4 {
        let v = max * k as f64 / 4.0;
        let _ = write!(
            body,
            "<line x1=\"{0:.1}\" y1=\"{top:.1}\" x2=\"{0:.1}\" y2=\"{bottom:.1}\" stroke=\"{GRID}\"/>\
             <text x=\"{0:.1}\" y=\"{1:.1}\" text-anchor=\"middle\">{2}</text>",
            x(v),
            bottom + 16.0,
            fmt(v)
        );
    }
    for (i, cat) in categories.iter().enumerate() {
        let y0 = top + i as f64 * block + gap / 2.0;
        let _ = write!(
            body,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            label_w - 8.0,
            y0 + series.len() as f64 * bar_h / 2.0 + 4.0,
            escape(cat)
        );
        for (j, s) in series.iter().enumerate() {
            let p = s.points[i];
            let y = y0 + j as f64 * bar_h;
            let mut end = label_w;
            if let Val::Num(v) = p.value {
                let _ = write!(
                    body,
                    "<rect x=\"{label_w:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\" stroke=\"{INK}\" stroke-width=\"0.8\"/>",
                    y + 1.0,
                    x(v) - label_w,
                    bar_h - 2.0,
                    fill(id, j)
                );
                end = x(v);
                if let Some((lo, hi)) = p.interval {
                    whisker(&mut body, x(lo), x(hi), y + bar_h / 2.0);
                    end = end.max(x(hi));
                }
            }
            let _ = write!(
                body,
                "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                end + 5.0,
                y + bar_h / 2.0 + 4.0,
                escape(&p.value.mark(fmt))
            );
        }
    }
    let _ = write!(
        body,
        "<line x1=\"{label_w:.1}\" y1=\"{top:.1}\" x2=\"{label_w:.1}\" y2=\"{bottom:.1}\" stroke=\"{INK}\"/>"
    );
    Svg::close(
        open(id, title, description, label_w + plot_w + 110.0, height),
        &body,
    )
}

/// Vertical bars grouped by category, with a scale of whole numbers.
fn vbars(
    id: &str,
    title: &str,
    description: &str,
    categories: &[String],
    series: &[Series],
) -> Svg {
    let (left, bar_w, gap, plot_h) = (56.0, 16.0, 28.0, 200.0);
    let names: Vec<&str> = series.iter().map(|s| s.name.as_str()).collect();
    let mut body = String::new();
    let top = 8.0 + legend(&mut body, id, &names, 10.0, 8.0, 4, false) + 14.0;
    // Clusters spread across at least the legend's width.
    let n = categories.len().max(1) as f64;
    let cluster = (series.len() as f64 * bar_w + gap).max((660.0 - left - 20.0) / n);
    let gap = cluster - series.len() as f64 * bar_w;
    let width = left + n * cluster + 20.0;
    let height = top + plot_h + 40.0;
    let max = nice(
        series
            .iter()
            .flat_map(|s| &s.points)
            .filter_map(|p| p.value.num())
            .fold(0.0, f64::max),
    );
    let base = top + plot_h;
    let y = |v: f64| base - v.clamp(0.0, max) / max * plot_h;
    for k in 0..=4 {
        let v = max * k as f64 / 4.0;
        let _ = write!(
            body,
            "<line x1=\"{left:.1}\" y1=\"{0:.1}\" x2=\"{1:.1}\" y2=\"{0:.1}\" stroke=\"{GRID}\"/>\
             <text x=\"{2:.1}\" y=\"{3:.1}\" text-anchor=\"end\">{4}</text>",
            y(v),
            width - 10.0,
            left - 6.0,
            y(v) + 4.0,
            whole(v)
        );
    }
    for (i, cat) in categories.iter().enumerate() {
        let x0 = left + i as f64 * cluster + gap / 2.0;
        for (j, s) in series.iter().enumerate() {
            let x = x0 + j as f64 * bar_w;
            match s.points[i].value {
                Val::Num(v) => {
                    let _ = write!(
                        body,
                        "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\" stroke=\"{INK}\" stroke-width=\"0.8\"/>",
                        x + 1.0,
                        y(v),
                        bar_w - 2.0,
                        base - y(v),
                        fill(id, j)
                    );
                }
                other => {
                    let _ = write!(
                        body,
                        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                        x + bar_w / 2.0,
                        base - 4.0,
                        escape(&other.mark(whole))
                    );
                }
            }
        }
        let _ = write!(
            body,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            x0 + series.len() as f64 * bar_w / 2.0,
            base + 18.0,
            escape(cat)
        );
    }
    let _ = write!(
        body,
        "<line x1=\"{left:.1}\" y1=\"{base:.1}\" x2=\"{:.1}\" y2=\"{base:.1}\" stroke=\"{INK}\"/>",
        width - 10.0
    );
    Svg::close(open(id, title, description, width, height), &body)
}

/// Lines over a few ordered steps, on a scale of 0 to 100%.
fn lines(id: &str, title: &str, description: &str, steps: &[&str], series: &[Series]) -> Svg {
    let (left, step_w, plot_h) = (52.0, 88.0, 220.0);
    let names: Vec<&str> = series.iter().map(|s| s.name.as_str()).collect();
    let mut body = String::new();
    let top = 8.0 + legend(&mut body, id, &names, 10.0, 8.0, 3, true) + 14.0;
    let width = left + steps.len() as f64 * step_w + 10.0;
    let base = top + plot_h;
    let height = base + 48.0;
    let x = |i: usize| left + step_w / 2.0 + i as f64 * step_w;
    let y = |v: f64| base - v.clamp(0.0, 1.0) * plot_h;
    for k in 0..=4 {
        let v = k as f64 / 4.0;
        let _ = write!(
            body,
            "<line x1=\"{left:.1}\" y1=\"{0:.1}\" x2=\"{1:.1}\" y2=\"{0:.1}\" stroke=\"{GRID}\"/>\
             <text x=\"{2:.1}\" y=\"{3:.1}\" text-anchor=\"end\">{4}</text>",
            y(v),
            width - 10.0,
            left - 6.0,
            y(v) + 4.0,
            pct(v)
        );
    }
    for (i, step) in steps.iter().enumerate() {
        // Step names on up to two lines.
        let words: Vec<&str> = step.split(' ').collect();
        let half = words.len().div_ceil(2);
        let (a, b) = if step.len() > 14 {
            (words[..half].join(" "), words[half..].join(" "))
        } else {
            (step.to_string(), String::new())
        };
        let _ = write!(
            body,
            "<text x=\"{0:.1}\" y=\"{1:.1}\" text-anchor=\"middle\">{2}</text>\
             <text x=\"{0:.1}\" y=\"{3:.1}\" text-anchor=\"middle\">{4}</text>",
            x(i),
            base + 18.0,
            escape(&a),
            base + 32.0,
            escape(&b)
        );
    }
    for (j, s) in series.iter().enumerate() {
        // A line through consecutive drawn points; a gap where a figure is not shown.
        let mut run: Vec<(f64, f64)> = Vec::new();
        let mut runs = Vec::new();
        for (i, p) in s.points.iter().enumerate() {
            match p.value {
                Val::Num(v) => run.push((x(i), y(v))),
                _ => runs.push(std::mem::take(&mut run)),
            }
        }
        runs.push(run);
        for r in runs.iter().filter(|r| r.len() > 1) {
            let d: Vec<String> = r.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
            let _ = write!(
                body,
                "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\" stroke-dasharray=\"{}\"/>",
                d.join(" "),
                COLOURS[j % 6],
                DASHES[j % 6]
            );
        }
        for (i, p) in s.points.iter().enumerate() {
            match p.value {
                Val::Num(v) => marker(&mut body, j, x(i), y(v)),
                other => {
                    let _ = write!(
                        body,
                        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"10\">{}</text>",
                        x(i) - 30.0 + j as f64 * 12.0,
                        base - 4.0,
                        escape(&other.mark(pct))
                    );
                }
            }
        }
    }
    let _ = write!(
        body,
        "<line x1=\"{left:.1}\" y1=\"{base:.1}\" x2=\"{:.1}\" y2=\"{base:.1}\" stroke=\"{INK}\"/>",
        width - 10.0
    );
    Svg::close(open(id, title, description, width, height), &body)
}

/// A table of the rows and columns of `t` a chart draws.
fn pick(t: &Table, id: &str, rows: &[&str], columns: &[&str]) -> Table {
    let idx: Vec<usize> = columns
        .iter()
        .filter_map(|c| t.columns.iter().position(|x| x.id == *c))
        .collect();
    let cols: Vec<Column> = idx.iter().map(|&j| t.columns[j].clone()).collect();
    let rows = t
        .rows
        .iter()
        .filter(|r| matches!(r.first(), Some(Figure::Text(l)) if rows.is_empty() || rows.contains(&l.as_str())))
        .map(|r| idx.iter().map(|&j| r[j].clone()).collect())
        .collect();
    Table {
        id: id.into(),
        title: t.title.clone(),
        columns: cols,
        rows,
        note: None,
        withheld: None,
        named_rows: false,
    }
}

/// The row labels of a table, leaving out those given.
fn labels(t: &Table, except: &[&str]) -> Vec<String> {
    t.rows
        .iter()
        .filter_map(|r| match r.first() {
            Some(Figure::Text(l)) if !except.contains(&l.as_str()) => Some(l.clone()),
            _ => None,
        })
        .collect()
}

fn referrals(t: &Table, prefix: &str) -> Chart {
    let id = format!("{prefix}chart-referrals");
    let quarters = labels(t, &["Period"]);
    let groups: Vec<&Column> = t.columns.iter().skip(1).filter(|c| c.id != "all").collect();
    let series: Vec<Series> = groups
        .iter()
        .map(|g| Series {
            name: g.label.replace('_', " "),
            points: quarters.iter().map(|q| point(t, q, &g.id)).collect(),
        })
        .collect();
    let mut description = String::from(
        "Referrals received in each financial quarter of the period, by source group.",
    );
    for (i, q) in quarters.iter().enumerate() {
        let parts: Vec<String> = series
            .iter()
            .map(|s| format!("{} {}", s.name, s.points[i].value.words(whole)))
            .collect();
        let _ = write!(description, " {q}: {}.", parts.join(", "));
    }
    let title = "Referrals by source group and quarter".to_string();
    Chart {
        svg: vbars(&id, &title, &description, &quarters, &series),
        numbers: Table {
            id: format!("{id}-numbers"),
            ..t.clone()
        },
        id,
        section: String::new(),
        title,
        description,
    }
}

fn reach(t: &Table, prefix: &str, what: &str, breakdown: &str) -> Chart {
    let id = format!("{prefix}chart-reach-{what}");
    let groups = labels(
        t,
        &[
            "Known quintile",
            "Stated",
            "All new clients",
            "Quintile unknown",
        ],
    )
    .into_iter()
    .filter(|g| !g.starts_with("Not stated"))
    .collect::<Vec<_>>();
    let series = vec![
        Series {
            name: "New clients".into(),
            points: groups.iter().map(|g| point(t, g, "client_share")).collect(),
        },
        Series {
            name: "Population of the areas served".into(),
            points: groups
                .iter()
                .map(|g| Point {
                    value: Val::of(t.get(g, "population_share")),
                    interval: None,
                })
                .collect(),
        },
    ];
    let mut description = format!(
        "Share of new clients in each {breakdown} (among those whose group is known), with its 95% interval, beside the share of the population of the areas served."
    );
    for (i, g) in groups.iter().enumerate() {
        let _ = write!(
            description,
            " {g}: {} of new clients against {} of the population (reach ratio {}).",
            series[0].points[i].value.words(pct),
            series[1].points[i].value.words(pct),
            Val::of(t.get(g, "reach_ratio")).words(|v| format!("{v:.2}"))
        );
    }
    let title = format!("Reach against need by {breakdown}");
    let mut rows: Vec<&str> = groups.iter().map(String::as_str).collect();
    rows.push("All new clients");
    Chart {
        svg: hbars(&id, &title, &description, &groups, &series, pct),
        numbers: pick(
            t,
            &format!("{id}-numbers"),
            &rows,
            &[
                "group",
                "new_clients",
                "client_share",
                "client_share_low",
                "client_share_high",
                "population_share",
                "reach_ratio",
            ],
        ),
        id,
        section: String::new(),
        title,
        description,
    }
}

fn goals(by_goal: &Table, by_client: &Table, prefix: &str) -> Chart {
    let id = format!("{prefix}chart-goals");
    let groups = labels(by_goal, &[]);
    let series = vec![
        Series {
            name: "Goals fully achieved".into(),
            points: groups
                .iter()
                .map(|g| point(by_goal, g, "share_fully"))
                .collect(),
        },
        Series {
            name: "Clients who fully achieved all their goals".into(),
            points: groups
                .iter()
                .map(|g| point(by_client, g, "share_fully"))
                .collect(),
        },
    ];
    let mut description = String::from(
        "Share of goals given a final status in the period that were fully achieved, and share of clients who fully achieved all their finalised goals, by national IMD quintile, with 95% intervals.",
    );
    for (i, g) in groups.iter().enumerate() {
        let _ = write!(
            description,
            " {g}: {} of goals, {} of clients.",
            series[0].points[i].value.words(pct),
            series[1].points[i].value.words(pct)
        );
    }
    let title = "Goal attainment by quintile".to_string();
    let mut numbers = pick(
        by_goal,
        &format!("{id}-numbers"),
        &[],
        &[
            "group",
            "all",
            "share_fully",
            "share_fully_low",
            "share_fully_high",
        ],
    );
    // The clients' columns beside the goals'.
    let client = pick(
        by_client,
        "",
        &[],
        &["all", "share_fully", "share_fully_low", "share_fully_high"],
    );
    for c in &mut numbers.columns[1..] {
        c.label = format!("Goals: {}", c.label);
        c.id = format!("goals_{}", c.id);
    }
    for c in client.columns {
        numbers.columns.push(Column {
            label: format!("Clients: {}", c.label),
            id: format!("clients_{}", c.id),
            unit: c.unit,
        });
    }
    for (row, extra) in numbers.rows.iter_mut().zip(client.rows) {
        row.extend(extra);
    }
    numbers.title = "Goal attainment by quintile: goals and clients".into();
    Chart {
        svg: hbars(&id, &title, &description, &groups, &series, pct),
        numbers,
        id,
        section: String::new(),
        title,
        description,
    }
}

/// Mean change per measure, each row on its own scale centred on no change.
fn paired(t: &Table, prefix: &str) -> Chart {
    let id = format!("{prefix}chart-paired");
    let title = "Change from baseline to exit, with 95% intervals".to_string();
    let (label_w, plot_w, row_h) = (230.0, 250.0, 40.0);
    let mut description = String::from(
        "Mean change from baseline to exit of each measure, over episodes closed in the period with both values, with its 95% interval. Each row has its own scale, centred on no change.",
    );
    let mut body = String::new();
    let top = 10.0;
    for (i, (_, name, higher_better)) in MEASURES.iter().enumerate() {
        let value = Val::of(t.get(name, "mean_difference"));
        let low = Val::of(t.get(name, "difference_low")).num();
        let high = Val::of(t.get(name, "difference_high")).num();
        let direction = if *higher_better {
            "higher is better"
        } else {
            "lower is better"
        };
        let y = top + i as f64 * row_h + row_h / 2.0;
        let _ = write!(
            body,
            "<text x=\"{0:.1}\" y=\"{1:.1}\" text-anchor=\"end\">{2}</text>\
             <text x=\"{0:.1}\" y=\"{3:.1}\" text-anchor=\"end\" font-size=\"10\">{4}</text>",
            label_w - 10.0,
            y - 2.0,
            escape(name),
            y + 11.0,
            direction
        );
        let range = nice(
            [value.num(), low, high]
                .into_iter()
                .flatten()
                .map(f64::abs)
                .fold(0.0, f64::max),
        );
        let x = |v: f64| label_w + plot_w / 2.0 + v.clamp(-range, range) / range * plot_w / 2.0;
        let _ = write!(
            body,
            "<line x1=\"{label_w:.1}\" y1=\"{y:.1}\" x2=\"{0:.1}\" y2=\"{y:.1}\" stroke=\"{GRID}\"/>\
             <line x1=\"{1:.1}\" y1=\"{2:.1}\" x2=\"{1:.1}\" y2=\"{3:.1}\" stroke=\"{INK}\" stroke-dasharray=\"3 2\"/>\
             <text x=\"{label_w:.1}\" y=\"{4:.1}\" font-size=\"10\">{5}</text>\
             <text x=\"{1:.1}\" y=\"{4:.1}\" font-size=\"10\" text-anchor=\"middle\">0</text>\
             <text x=\"{0:.1}\" y=\"{4:.1}\" font-size=\"10\" text-anchor=\"end\">{6}</text>",
            label_w + plot_w,
            x(0.0),
            y - 12.0,
            y + 8.0,
            y + 17.0,
            signed(-range),
            signed(range)
        );
        if let (Some(lo), Some(hi)) = (low, high) {
            whisker(&mut body, x(lo), x(hi), y);
        }
        if let Val::Num(v) = value {
            let _ = write!(
                body,
                "<path d=\"M{0:.1},{1:.1} L{2:.1},{3:.1} L{0:.1},{4:.1} L{5:.1},{3:.1} Z\" fill=\"{6}\" stroke=\"{INK}\"/>",
                x(v),
                y - 6.0,
                x(v) + 6.0,
                y,
                y + 6.0,
                x(v) - 6.0,
                COLOURS[0]
            );
        }
        let words = match (value, low, high) {
            (Val::Num(v), Some(lo), Some(hi)) => {
                format!("{} ({} to {})", signed(v), signed(lo), signed(hi))
            }
            (v, _, _) => v.mark(signed),
        };
        let _ = write!(
            body,
            "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            label_w + plot_w + 10.0,
            y + 4.0,
            escape(&words)
        );
        let _ = write!(description, " {name}: {words}, {direction}.");
    }
    let height = top + MEASURES.len() as f64 * row_h + 10.0;
    let svg = Svg::close(
        open(&id, &title, &description, label_w + plot_w + 170.0, height),
        &body,
    );
    let names: Vec<&str> = MEASURES.iter().map(|m| m.1).collect();
    Chart {
        svg,
        numbers: pick(
            t,
            &format!("{id}-numbers"),
            &names,
            &[
                "measure",
                "n",
                "mean_difference",
                "difference_low",
                "difference_high",
            ],
        ),
        id,
        section: String::new(),
        title,
        description,
    }
}

fn pathway(t: &Table, prefix: &str) -> Chart {
    let id = format!("{prefix}chart-pathway");
    let groups = labels(t, &["Quintile unknown"]);
    let keys = ["seen", "baseline", "plan", "review", "closed", "exit"];
    let series: Vec<Series> = groups
        .iter()
        .map(|g| {
            let referred = Val::of(t.get(g, "referred"));
            let first = Point {
                value: match referred {
                    Val::Num(n) if n > 0.0 => Val::Num(1.0),
                    Val::Num(_) => Val::NotApplicable,
                    other => other,
                },
                interval: None,
            };
            let mut points = vec![first];
            points.extend(keys.iter().map(|k| point(t, g, &format!("{k}_of_cohort"))));
            Series {
                name: g.clone(),
                points,
            }
        })
        .collect();
    let mut description = String::from(
        "Share of the referrals received in the period (leaving out brief episodes) that reached each step of the pathway, by national IMD quintile.",
    );
    for s in &series {
        let _ = write!(
            description,
            " {}: {} seen, {} with an exit assessment.",
            s.name,
            s.points[1].value.words(pct),
            s.points[6].value.words(pct)
        );
    }
    let title = "Pathway by quintile: share of the cohort reaching each step".to_string();
    let mut columns = vec!["group", "referred"];
    let named: Vec<String> = keys.iter().map(|k| format!("{k}_of_cohort")).collect();
    columns.extend(named.iter().map(String::as_str));
    Chart {
        svg: lines(&id, &title, &description, &STEPS, &series),
        numbers: pick(t, &format!("{id}-numbers"), &[], &columns),
        id,
        section: String::new(),
        title,
        description,
    }
}

/// The delivery models, their letters on the strip, and their fills.
const MODELS: [(&str, &str, usize); 5] = [
    ("community_peer", "C", 0),
    ("primary_care", "P", 1),
    ("telephone_triage", "T", 2),
    ("mixed", "M", 3),
    ("insufficient_data", "·", 6),
];

/// The charts of an implementation patterns document: the delivery model of every
/// service by quarter side by side, and per service its measures as small multiples
/// with configuration changes and shifts marked.
pub fn pattern_charts(report: &Report, prefix: &str) -> Vec<Chart> {
    let fingerprints: Vec<(&str, &Table)> = report
        .sections
        .iter()
        .filter_map(|s| {
            let t = s.tables.iter().find(|t| t.id.ends_with("_fingerprint"))?;
            Some((s.id.as_str(), t))
        })
        .collect();
    let mut out = Vec::new();
    if !fingerprints.is_empty() {
        out.push(model_strips(report, &fingerprints, prefix));
    }
    for (section, t) in &fingerprints {
        let base = t.id.trim_end_matches("_fingerprint");
        let shifts = report.table(&format!("{base}_shifts"));
        let configs = report.table(&format!("{base}_configuration"));
        out.push(small_multiples(section, t, shifts, configs, prefix));
    }
    out
}

/// The quarters (indices into `quarters`) of a service's recorded configuration
/// changes, the first configuration left out, from its configuration table.
fn change_quarters(configs: Option<&Table>, quarters: &[String]) -> Vec<usize> {
    configs
        .map(|c| {
            c.rows
                .iter()
                .skip(1)
                .filter_map(|r| match r.get(1) {
                    Some(Figure::Text(d)) => {
                        let date = chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()?;
                        let q = dcrs_domain::types::Quarter::containing(date).to_string();
                        quarters.iter().position(|x| *x == q)
                    }
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

fn model_strips(report: &Report, fingerprints: &[(&str, &Table)], prefix: &str) -> Chart {
    let id = format!("{prefix}chart-models");
    let title = "Delivery model by quarter, services side by side".to_string();
    let quarters = labels(fingerprints[0].1, &[]);
    let (left, cell, row_h) = (40.0, 20.0, 26.0);
    let width = left + quarters.len() as f64 * cell + 20.0;
    let mut body = String::new();
    let names: Vec<&str> = MODELS.iter().map(|m| m.0).collect();
    let top = 8.0 + legend(&mut body, &id, &names[..4], 10.0, 8.0, 4, false) + 24.0;
    let _ = write!(
        body,
        "<text x=\"10\" y=\"{:.1}\" font-size=\"11\">· insufficient data (fewer than 20 referrals or 50 attended sessions)</text>",
        top - 8.0
    );
    let mut description = String::from(
        "The delivery model of each quarter, one row per service, from the first quarter on the left to the latest on the right (C community peer support, P primary care, T telephone triage, M mixed, · not enough data); a dark bar above a quarter marks a recorded configuration change.",
    );
    let mut numbers_rows = Vec::new();
    for (row, (_, t)) in fingerprints.iter().enumerate() {
        let service = t.id.trim_end_matches("_fingerprint").to_uppercase();
        let y = top + row as f64 * row_h;
        let _ = write!(
            body,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            left - 8.0,
            y + row_h / 2.0 + 2.0,
            escape(&service)
        );
        let models: Vec<String> = quarters
            .iter()
            .map(|q| match t.get(q, "delivery_model") {
                Some(Figure::Text(m)) => m.clone(),
                _ => "insufficient_data".into(),
            })
            .collect();
        for (i, m) in models.iter().enumerate() {
            let (_, letter, style) = MODELS
                .iter()
                .find(|x| x.0 == m)
                .copied()
                .unwrap_or(("", "?", 6));
            let x = left + i as f64 * cell;
            if style < 6 {
                let _ = write!(
                    body,
                    "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{cell:.1}\" height=\"{:.1}\" fill=\"{}\" stroke=\"#fff\" stroke-width=\"1\"/>",
                    row_h - 6.0,
                    fill(&id, style)
                );
            }
            let _ = write!(
                body,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"9\" fill=\"{}\">{letter}</text>",
                x + cell / 2.0,
                y + row_h / 2.0 + 1.0,
                if style == 0 || style == 5 {
                    "#fff"
                } else {
                    INK
                }
            );
        }
        // Recorded configuration changes: a bar above the quarter.
        let base = t.id.trim_end_matches("_fingerprint");
        let configs = report.table(&format!("{base}_configuration"));
        let changed = change_quarters(configs, &quarters);
        for &i in &changed {
            let x = left + i as f64 * cell;
            let _ = write!(
                body,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{cell:.1}\" height=\"3\" fill=\"{INK}\"/>",
                y - 4.0
            );
        }
        // Runs of one model, for the description and the numbers.
        let mut runs: Vec<(usize, usize, &str)> = Vec::new();
        for (i, m) in models.iter().enumerate() {
            match runs.last_mut() {
                Some(r) if r.2 == m => r.1 = i,
                _ => runs.push((i, i, m)),
            }
        }
        let words: Vec<String> = runs
            .iter()
            .filter(|r| r.2 != "insufficient_data")
            .map(|r| {
                let model = crate::words::said(r.2).to_lowercase();
                format!("{model} from {} to {}", quarters[r.0], quarters[r.1])
            })
            .collect();
        let _ = write!(description, " {service}: {}.", words.join(", then "));
        if !changed.is_empty() {
            let when: Vec<&str> = changed.iter().map(|&i| quarters[i].as_str()).collect();
            let _ = write!(
                description,
                " Configuration changed in {}.",
                when.join(", ")
            );
        }
        for r in &runs {
            numbers_rows.push(vec![
                Figure::Text(service.clone()),
                Figure::Text(quarters[r.0].clone()),
                Figure::Text(quarters[r.1].clone()),
                Figure::Text(r.2.to_string()),
            ]);
        }
    }
    // Quarter labels: the first quarter of each financial year.
    let bottom = top + fingerprints.len() as f64 * row_h;
    for (i, q) in quarters.iter().enumerate() {
        if q.ends_with("Q1") {
            let x = left + i as f64 * cell;
            let _ = write!(
                body,
                "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"{INK}\"/>\
                 <text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"10\">{}</text>",
                bottom - 4.0,
                bottom + 2.0,
                bottom + 14.0,
                escape(q.split(' ').next().unwrap_or(q))
            );
        }
    }
    let svg = Svg::close(
        open(&id, &title, &description, width.max(660.0), bottom + 24.0),
        &body,
    );
    Chart {
        id: id.clone(),
        section: "overview".into(),
        title,
        description,
        svg,
        numbers: Table {
            id: format!("{id}-numbers"),
            title: "Delivery model by service: runs of quarters".into(),
            columns: vec![
                Column {
                    id: "service".into(),
                    label: "Service".into(),
                    unit: crate::doc::Unit::Text,
                },
                Column {
                    id: "from".into(),
                    label: "From".into(),
                    unit: crate::doc::Unit::Text,
                },
                Column {
                    id: "to".into(),
                    label: "To".into(),
                    unit: crate::doc::Unit::Text,
                },
                Column {
                    id: "model".into(),
                    label: "Delivery model".into(),
                    unit: crate::doc::Unit::Text,
                },
            ],
            rows: numbers_rows,
            note: None,
            withheld: None,
            named_rows: false,
        },
    }
}

fn small_multiples(
    section: &str,
    t: &Table,
    shifts: Option<&Table>,
    configs: Option<&Table>,
    prefix: &str,
) -> Chart {
    let base = t.id.trim_end_matches("_fingerprint");
    let id = format!("{prefix}chart-{base}-measures");
    let service = base.to_uppercase();
    let title = format!("{service}: every measure by quarter");
    let quarters = labels(t, &[]);
    let measures: Vec<&Column> = t
        .columns
        .iter()
        .filter(|c| crate::patterns::MEASURES.iter().any(|m| m.0 == c.id))
        .collect();
    let (cols, pw, ph, gap) = (3usize, 200.0, 70.0, 34.0);
    let width = cols as f64 * (pw + 20.0) + 10.0;
    let rows_n = measures.len().div_ceil(cols);
    let height = rows_n as f64 * (ph + gap) + 30.0;
    let q_index = |label: &str| quarters.iter().position(|q| q == label);
    // Quarters of recorded configuration changes (not the first configuration).
    let changes: Vec<usize> = change_quarters(configs, &quarters);
    let mut body = String::new();
    let mut description = format!(
        "Each of the {} fingerprint measures of {service} by quarter, from {} to {}. Dashed vertical lines mark recorded configuration changes; a triangle marks the quarter a shift was detected (filled: drift, unexplained; open: explained by a recorded change), on the line, or at the top of the panel where the quarter's figure is not shown.",
        measures.len(),
        quarters.first().map_or("", String::as_str),
        quarters.last().map_or("", String::as_str)
    );
    for (k, m) in measures.iter().enumerate() {
        let x0 = 10.0 + (k % cols) as f64 * (pw + 20.0);
        let y0 = 10.0 + (k / cols) as f64 * (ph + gap) + 14.0;
        let values: Vec<Option<f64>> = quarters
            .iter()
            .map(|q| t.get(q, &m.id).and_then(Figure::as_f64))
            .collect();
        let is_median = crate::patterns::MEASURES.iter().any(|x| x.0 == m.id && x.2);
        let max = if is_median {
            nice(values.iter().flatten().fold(0.0, |a, b| a.max(*b)))
        } else {
            1.0
        };
        let n = quarters.len().max(2) as f64 - 1.0;
        let x = |i: usize| x0 + i as f64 / n * pw;
        let y = |v: f64| y0 + ph - v.clamp(0.0, max) / max * ph;
        let _ = write!(
            body,
            "<text x=\"{x0:.1}\" y=\"{:.1}\" font-size=\"11\" font-weight=\"bold\">{}</text>\
             <rect x=\"{x0:.1}\" y=\"{y0:.1}\" width=\"{pw:.1}\" height=\"{ph:.1}\" fill=\"none\" stroke=\"{GRID}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\" text-anchor=\"end\">{}</text>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\" text-anchor=\"end\">0</text>",
            y0 - 4.0,
            escape(&m.label),
            x0 + pw - 2.0,
            y0 + 10.0,
            if is_median { whole(max) } else { "100%".into() },
            x0 + pw - 2.0,
            y0 + ph - 2.0
        );
        for &c in &changes {
            let _ = write!(
                body,
                "<line x1=\"{0:.1}\" y1=\"{1:.1}\" x2=\"{0:.1}\" y2=\"{2:.1}\" stroke=\"{INK}\" stroke-dasharray=\"3 2\"/>",
                x(c),
                y0,
                y0 + ph
            );
        }
        let mut run: Vec<String> = Vec::new();
        let mut runs = Vec::new();
        for (i, v) in values.iter().enumerate() {
            match v {
                Some(v) => run.push(format!("{:.1},{:.1}", x(i), y(*v))),
                None => runs.push(std::mem::take(&mut run)),
            }
        }
        runs.push(run);
        for r in runs.iter().filter(|r| !r.is_empty()) {
            let _ = write!(
                body,
                "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\"/>",
                r.join(" "),
                COLOURS[0]
            );
        }
        let mut flags = Vec::new();
        let at = |name: &str| shifts.and_then(|s| s.columns.iter().position(|c| c.id == name));
        let (c_measure, c_detected, c_label, c_before, c_after) = (
            at("measure"),
            at("detected"),
            at("label"),
            at("level_before"),
            at("level_after"),
        );
        let level = |f: Option<&Figure>| match f.and_then(Figure::as_f64) {
            Some(v) if is_median => Some(whole(v)),
            Some(v) => Some(pct(v)),
            None => None,
        };
        for r in shifts.map(|s| s.rows.as_slice()).unwrap_or_default() {
            let cell = |c: Option<usize>| c.and_then(|j| r.get(j));
            let (Some(Figure::Text(measure)), Some(Figure::Text(detected))) =
                (cell(c_measure), cell(c_detected))
            else {
                continue;
            };
            if *measure != m.id {
                continue;
            }
            let Some(i) = q_index(detected) else { continue };
            let drift = matches!(cell(c_label), Some(Figure::Text(l)) if l == "drift");
            // The mark sits on the line where the quarter's figure is shown, and above
            // the panel where it is not: never on a line it did not come from.
            let top = match values[i] {
                Some(v) => y(v),
                None => y0 + 9.0,
            };
            let _ = write!(
                body,
                "<path d=\"M{0:.1},{1:.1} L{2:.1},{3:.1} L{4:.1},{3:.1} Z\" fill=\"{5}\" stroke=\"{6}\" stroke-width=\"1.5\"/>",
                x(i),
                top - 4.0,
                x(i) + 5.0,
                top - 13.0,
                x(i) - 5.0,
                if drift { COLOURS[1] } else { "#fff" },
                INK
            );
            // The caption gives the levels the flag rests on, as published, so that it
            // says what the table beside it says even where the quarters are not shown.
            let levels = match (level(cell(c_before)), level(cell(c_after))) {
                (Some(a), Some(b)) => format!(" (from {a} to {b})"),
                _ => " (levels not shown: too few to publish)".into(),
            };
            flags.push(format!(
                "{} in {detected}{levels}",
                if drift { "drift" } else { "explained shift" }
            ));
        }
        let first = values.iter().flatten().next();
        let last = values.iter().flatten().last();
        let fmt = |v: Option<&f64>| match v {
            Some(v) if is_median => whole(*v),
            Some(v) => pct(*v),
            None => "not shown".into(),
        };
        let _ = write!(
            description,
            " {}: {} at first, {} latest{}.",
            m.label,
            fmt(first),
            fmt(last),
            if flags.is_empty() {
                String::new()
            } else {
                format!("; {}", flags.join(", "))
            }
        );
    }
    let svg = Svg::close(open(&id, &title, &description, width, height), &body);
    let mut columns = vec!["quarter"];
    columns.extend(measures.iter().map(|c| c.id.as_str()));
    Chart {
        numbers: pick(t, &format!("{id}-numbers"), &[], &columns),
        id,
        section: section.to_string(),
        title,
        description,
        svg,
    }
}
