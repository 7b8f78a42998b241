//! Report documents. The HTML page and each chart's SVG of the hand-built fixture's pack
//! are pinned by snapshots; service names typed by people are escaped; the spreadsheet
//! of a generated deployment's pack, read back by openpyxl, holds the same figures as
//! its JSON; and that pack's page, printed to PDF by Chromium, cuts no chart and no
//! table across pages (a screenshot and the PDF are kept under `target/report-documents`).

/// Writes to the terminal past the test harness's capture, so that the figures are in
/// the log of every run (CI's included), not only with `--nocapture`.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

use chrono::{TimeZone, Utc};
use dcrs_exchange::import_dir;
use dcrs_refdata::load;
use dcrs_report::{Figure, Kind, Period, Policy, Report, Request, chart, html, run};
use dcrs_testkit::{TestDb, python_module, tool};
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{fixture, import_options};

/// A fixed time, so that snapshots do not change with the clock.
fn noon() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
}

async fn fixture_pack(db: &dcrs_store::Database, policy: Policy) -> Report {
    let req = Request {
        kind: Kind::Pack,
        services: Some(vec!["S1".into()]),
        each_service: false,
        period: Period::parse("2010-11Q1").unwrap(),
        policy,
        fresh: false,
    };
    run(db, &req, noon()).await.unwrap().remove(0)
}

/// The page with the time it was produced and the temporary folder of the fixture's
/// postcode file taken out.
fn redacted(page: &str, r: &Report) -> String {
    let mut page = page.replace(&r.produced_at, "[produced]");
    for f in &r.reference_data {
        if let Some(dir) = Path::new(&f.file).parent().filter(|d| d.is_absolute()) {
            page = page.replace(&dir.display().to_string(), "[temporary folder]");
        }
    }
    page
}

#[tokio::test]
async fn the_fixture_pack_page_and_its_charts_match_their_snapshots() {
    let t = TestDb::sqlite().await;
    fixture(&t.db).await;
    for (name, policy) in [
        ("controlled", Policy::NHS_SUB_NATIONAL),
        ("exact", Policy::NONE),
    ] {
        let r = fixture_pack(&t.db, policy).await;
        let page = html::html(std::slice::from_ref(&r));
        insta::assert_snapshot!(format!("fixture_pack_{name}_html"), redacted(&page, &r));
        let charts = chart::charts(&r, "r0-");
        let ids: Vec<&str> = charts.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "r0-chart-referrals",
                "r0-chart-reach-quintile",
                "r0-chart-reach-ethnic",
                "r0-chart-goals",
                "r0-chart-paired",
                "r0-chart-pathway"
            ],
            "every chart of the pack"
        );
        for c in &charts {
            assert!(
                page.contains(c.svg.as_str()),
                "{}: the page carries the chart",
                c.id
            );
            insta::assert_snapshot!(format!("fixture_{name}_{}_svg", c.id), c.svg.as_str());
        }
    }
}

#[tokio::test]
async fn charts_show_suppressed_figures_as_stars_and_never_draw_them() {
    let t = TestDb::sqlite().await;
    fixture(&t.db).await;
    let r = fixture_pack(&t.db, Policy::NHS_SUB_NATIONAL).await;
    // Eight clients: every new-client count is 1 to 7 and so suppressed.
    let reach = r.table("reach_by_quintile").unwrap();
    assert_eq!(
        reach.get("Quintile 1 (most deprived)", "client_share"),
        Some(&Figure::Suppressed)
    );
    let charts = chart::charts(&r, "");
    let c = charts
        .iter()
        .find(|c| c.id == "chart-reach-quintile")
        .unwrap();
    // One bar per population share (five quintiles) and none for a client share; each
    // client share is written as `*`. The legend has two swatches.
    assert_eq!(
        c.svg.as_str().matches("<rect x=\"200.0\"").count(),
        5,
        "{}",
        c.svg
    );
    assert_eq!(c.svg.as_str().matches(">*</text>").count(), 5);
    assert!(c.description.contains("suppressed of new clients"));
}

#[tokio::test]
async fn service_names_and_other_typed_text_are_escaped() {
    let t = TestDb::sqlite().await;
    let refdir = tempfile::tempdir().unwrap();
    let options = common::reference_data(refdir.path());
    load(&t.db, refdir.path(), &options).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let hostile = "Trainers <script>alert(\"x\")</script> & <b>Co</b> 'quoted'";
    std::fs::write(
        dir.path().join("organisations.csv"),
        "org_ref,name,kind,ods_code\nO1,Fixture PCT,pct,\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("services.csv"),
        format!(
            "service_ref,name,commissioner_org_ref,areas_served,started_on,ended_on\n\
             S1,\"{}\",O1,E06000099,2008-01-01,\n",
            hostile.replace('"', "\"\"")
        ),
    )
    .unwrap();
    let imported = import_dir(&t.db, dir.path(), &import_options(), |_| {})
        .await
        .unwrap();
    assert!(imported.rejections.is_empty(), "{:?}", imported.rejections);
    let r = fixture_pack(&t.db, Policy::NHS_SUB_NATIONAL).await;
    assert!(r.title.contains(hostile), "the name is stored as typed");
    let page = html::html(std::slice::from_ref(&r));
    assert!(
        !page.contains("<script"),
        "no script element reaches the page"
    );
    assert!(!page.contains("<b>"));
    let escaped = "Trainers &#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62; &#38; &#60;b&#62;Co&#60;/b&#62; &#39;quoted&#39;";
    assert!(page.contains(&format!("<title>Report pack: S1 {escaped}")));
    assert!(page.contains(&format!("<h1 id=\"r0-title\">Report pack: S1 {escaped}")));
    assert!(page.contains(&format!("<li>S1 {escaped} (areas served: E06000099)</li>")));
}

/// A generated deployment of three services loaded into a fresh SQLite database, and
/// its 2010-11 pack with one document per service, under the NHS rule.
async fn generated_pack() -> (TestDb, Vec<Report>) {
    let t = TestDb::sqlite().await;
    common::generated_deployment(&t.db, 11, 3, 3000).await;
    let req = Request {
        kind: Kind::Pack,
        services: None,
        each_service: true,
        period: Period::parse("2010-11").unwrap(),
        policy: Policy::NHS_SUB_NATIONAL,
        fresh: false,
    };
    let reports = run(&t.db, &req, Utc::now()).await.unwrap();
    (t, reports)
}

/// Reads every sheet of a workbook with openpyxl: per sheet its name and rows, each cell
/// `["n", number]`, `["s", text]` or null.
const READ_XLSX: &str = r#"
import json, sys, openpyxl
book = openpyxl.load_workbook(sys.argv[1], data_only=True)
out = []
for sheet in book.worksheets:
    rows = []
    for row in sheet.iter_rows(values_only=True):
        cells = []
        for v in row:
            if v is None:
                cells.append(None)
            elif isinstance(v, bool):
                cells.append(["b", v])
            elif isinstance(v, (int, float)):
                cells.append(["n", v])
            else:
                cells.append(["s", str(v)])
        rows.append(cells)
    out.append([sheet.title, rows])
json.dump(out, sys.stdout)
"#;

/// A cell as read back: its type (`n`, `s`, `b`) and value.
type XlsxCell = (String, serde_json::Value);

#[tokio::test]
async fn the_spreadsheet_reads_back_to_the_figures_of_the_json() {
    let test = "the_spreadsheet_reads_back_to_the_figures_of_the_json";
    if !python_module(test, "openpyxl") {
        return;
    }
    let (_t, reports) = generated_pack().await;
    let dir = tempfile::tempdir().unwrap();
    let files = dcrs_report::render::xlsx_files(&reports, dir.path()).unwrap();
    assert_eq!(files.len(), reports.len(), "a workbook per document");
    let (mut numbers, mut stars) = (0, 0);
    for (r, file) in reports.iter().zip(&files) {
        let json: serde_json::Value =
            serde_json::from_str(&dcrs_report::render::json(std::slice::from_ref(r))).unwrap();
        let out = Command::new("python3")
            .args(["-c", READ_XLSX])
            .arg(file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openpyxl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let book: Vec<(String, Vec<Vec<Option<XlsxCell>>>)> =
            serde_json::from_slice(&out.stdout).unwrap();
        let (first, about) = &book[0];
        assert_eq!(first, "About");
        let about_text: Vec<String> = about
            .iter()
            .flatten()
            .flatten()
            .map(|(_, v)| v.as_str().unwrap_or_default().to_string())
            .collect();
        for must in [
            r.title.as_str(),
            r.policy.statement.as_str(),
            r.produced_at.as_str(),
            r.period.label.as_str(),
        ] {
            assert!(about_text.iter().any(|t| t == must), "About has {must:?}");
        }
        let tables: Vec<&serde_json::Value> = json["sections"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["tables"].as_array().unwrap())
            .collect();
        assert_eq!(book.len(), tables.len() + 1, "a sheet per table");
        for ((name, rows), t) in book[1..].iter().zip(tables) {
            let id = t["id"].as_str().unwrap();
            assert_eq!(name, id, "sheet named after its table");
            assert_eq!(
                rows[0][0].as_ref().map(|c| c.1.clone()),
                Some(t["title"].clone())
            );
            let json_rows = t["rows"].as_array().unwrap();
            // Under the headings: the reason when withheld, the rows, then any note.
            let first = 2 + usize::from(t.get("withheld").is_some());
            assert!(rows.len() >= first + json_rows.len(), "{id}: rows");
            let data = &rows[first..first + json_rows.len()];
            for (i, (row, expected)) in data.iter().zip(json_rows).enumerate() {
                for (j, want) in expected.as_array().unwrap().iter().enumerate() {
                    let got = row.get(j).cloned().flatten();
                    let place = format!("{id} row {i} column {j}");
                    match want {
                        serde_json::Value::Number(n) => {
                            let (kind, v) = got.unwrap_or_else(|| panic!("{place}: empty"));
                            assert_eq!(kind, "n", "{place}: a number is stored as a number");
                            let (a, b) = (v.as_f64().unwrap(), n.as_f64().unwrap());
                            assert!(
                                (a - b).abs() <= 1e-9 * b.abs().max(1.0),
                                "{place}: {a} != {b}"
                            );
                            numbers += 1;
                        }
                        serde_json::Value::String(s) => {
                            assert_eq!(
                                got,
                                Some(("s".to_string(), serde_json::Value::String(s.clone()))),
                                "{place}"
                            );
                            stars += usize::from(s == "*");
                        }
                        other => panic!("{place}: unexpected {other}"),
                    }
                }
            }
        }
    }
    say!("{numbers} numbers and {stars} suppressed cells read back");
    assert!(
        numbers > 1000 && stars > 10,
        "{numbers} numbers, {stars} stars"
    );
}

/// Text as Chromium lays it out: tags dropped (with the SVG's unrendered title and
/// description), entities decoded, white space collapsed.
fn visible_text(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        out.push(' ');
        let after = &rest[open..];
        let skip_to = ["<title", "<desc"]
            .iter()
            .find(|t| after.starts_with(*t))
            .map(|t| format!("</{}>", &t[1..]));
        rest = match skip_to {
            Some(end) => &after[after.find(&end).unwrap() + end.len()..],
            None => &after[after.find('>').unwrap() + 1..],
        };
    }
    out.push_str(rest);
    let decoded = out
        .replace("&lt;", "<")
        .replace("&#60;", "<")
        .replace("&gt;", ">")
        .replace("&#62;", ">")
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
        .replace("&#38;", "&");
    normalise(&decoded)
}

fn normalise(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Each chart (with its numbers) and each table part of the page: the text it starts
/// with, the label of its last row, and how often that label occurs within it.
fn blocks(page: &str) -> Vec<(String, String, usize)> {
    let mut out = Vec::new();
    let mut search = 0;
    // A chart's figure holds its own table; other tables stand alone.
    while let Some(found) = ["<figure class=\"chart\"", "<div class=\"table-wrap\""]
        .iter()
        .filter_map(|m| page[search..].find(m).map(|i| (i + search, *m)))
        .min()
    {
        let (start, marker) = found;
        let end_tag = if marker.starts_with("<figure") {
            "</figure>"
        } else {
            "</table></div>"
        };
        let end = start + page[start..].find(end_tag).unwrap() + end_tag.len();
        let block = &page[start..end];
        let text = visible_text(block);
        let last_row = block.rfind("<th scope=\"row\">").unwrap() + "<th scope=\"row\">".len();
        let label =
            visible_text(&block[last_row..last_row + block[last_row..].find("</th>").unwrap()]);
        // Its title: the words before its column headers, which a PDF's text may give
        // in another order than the page's.
        let title = visible_text(&block[..block.find("<thead").unwrap_or(block.len())]);
        let first: String = title.split(' ').take(6).collect::<Vec<_>>().join(" ");
        let times = text.matches(&label).count();
        out.push((first, label, times));
        search = end;
    }
    out
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
        .join("report-documents")
}

fn chromium(args: &[&str], profile: &Path) {
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn printed_to_pdf_no_chart_or_table_is_cut_across_pages() {
    let test = "printed_to_pdf_no_chart_or_table_is_cut_across_pages";
    if tool(test, "chromium", "Debian's chromium").is_none()
        || tool(test, "pdftotext", "Debian's poppler-utils").is_none()
    {
        return;
    }
    let (_t, reports) = generated_pack().await;
    let out = target_dir();
    std::fs::create_dir_all(&out).unwrap();
    let page_path = out.join("pack.html");
    let pdf = out.join("pack.pdf");
    let _ = std::fs::remove_file(&pdf);
    dcrs_report::render::html_file(&reports, &page_path).unwrap();
    let page = std::fs::read_to_string(&page_path).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}", page_path.canonicalize().unwrap().display());
    chromium(
        &[
            "--no-pdf-header-footer",
            &format!("--print-to-pdf={}", pdf.display()),
            &url,
        ],
        profile.path(),
    );
    for (name, size) in [("pack.png", "1100,3000"), ("pack-phone.png", "390,2400")] {
        chromium(
            &[
                &format!("--screenshot={}", out.join(name).display()),
                &format!("--window-size={size}"),
                &url,
            ],
            profile.path(),
        );
        assert!(out.join(name).metadata().unwrap().len() > 10_000, "{name}");
    }
    let text = Command::new("pdftotext")
        .args(["-enc", "UTF-8"])
        .arg(&pdf)
        .arg("-")
        .output()
        .unwrap();
    assert!(text.status.success());
    let pages: Vec<String> = String::from_utf8(text.stdout)
        .unwrap()
        .split('\u{c}')
        .map(normalise)
        .collect();
    let expected = blocks(&page);
    assert!(expected.len() > 100, "{} blocks", expected.len());
    // Walk the pages in order: each block's first words, then the nth occurrence of its
    // last row's label after them, must be on one page.
    let (mut at_page, mut at) = (0usize, 0usize);
    for (first, label, times) in &expected {
        let (p, start) = (at_page..pages.len())
            .find_map(|p| {
                let from = if p == at_page { at } else { 0 };
                pages[p]
                    .get(from..)?
                    .find(first.as_str())
                    .map(|i| (p, from + i))
            })
            .unwrap_or_else(|| panic!("{first:?} is not in the PDF after page {}", at_page + 1));
        let mut pos = start;
        for _ in 0..*times {
            pos = pages[p][pos..]
                .find(label.as_str())
                .map(|i| pos + i + label.len())
                .unwrap_or_else(|| {
                    panic!(
                        "{first:?} starts on page {} but its last row {label:?} is not on that page: cut across pages",
                        p + 1
                    )
                });
        }
        (at_page, at) = (p, pos);
    }
    say!(
        "{} charts and tables on {} pages, none cut; PDF and screenshots in {}",
        expected.len(),
        pages.len(),
        out.display()
    );
}
