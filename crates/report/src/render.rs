//! Writes reports as JSON (one document, or an array when there are several) and as CSV
//! (a folder per document: `about.csv` with the scope, period, policy, reference data,
//! warnings and definitions, then one file per table).

use crate::Report;
use std::io;
use std::path::{Path, PathBuf};

/// The reports as pretty JSON.
pub fn json(reports: &[Report]) -> String {
    let text = match reports {
        [one] => serde_json::to_string_pretty(one),
        many => serde_json::to_string_pretty(many),
    };
    text.expect("reports are plain data and always serialise")
}

/// Folder name of a document among several: its scope.
fn folder_name(r: &Report) -> String {
    match r.scope.services.as_slice() {
        [one] => format!("service-{}", safe(&one.service_ref)),
        _ => "all".into(),
    }
}

/// Keeps a service reference usable as a file name.
fn safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Writes the reports as CSV under `dir`: the folder itself for one document, a
/// sub-folder per document for several. Returns the files written.
pub fn csv(reports: &[Report], dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for r in reports {
        let folder = if reports.len() == 1 {
            dir.to_path_buf()
        } else {
            dir.join(folder_name(r))
        };
        std::fs::create_dir_all(&folder)?;
        written.push(write_about(r, &folder)?);
        for s in &r.sections {
            for t in &s.tables {
                let path = folder.join(format!("{}.csv", t.id));
                let mut w = csv::WriterBuilder::new().flexible(true).from_path(&path)?;
                w.write_record(t.columns.iter().map(|c| c.id.as_str()))?;
                if let Some(why) = &t.withheld {
                    w.write_record([why.as_str()])?;
                }
                for row in &t.rows {
                    w.write_record(row.iter().map(|f| sheet_safe(f.to_text())))?;
                }
                w.flush()?;
                written.push(path);
            }
        }
    }
    Ok(written)
}

/// A cell as written for people who open the file in a spreadsheet: service names and
/// labels that would start a formula are neutralised (see `spreadsheet_safe`).
fn sheet_safe(text: String) -> String {
    match dcrs_domain::field::spreadsheet_safe(&text) {
        std::borrow::Cow::Borrowed(_) => text,
        std::borrow::Cow::Owned(safe) => safe,
    }
}

fn write_about(r: &Report, folder: &Path) -> io::Result<PathBuf> {
    let path = folder.join("about.csv");
    let mut w = csv::WriterBuilder::new().flexible(true).from_path(&path)?;
    w.write_record(["item", "value"])?;
    let mut put = |k: &str, v: &str| w.write_record([k.to_string(), sheet_safe(v.to_string())]);
    put("title", &r.title)?;
    put("report", r.kind.code())?;
    put("synthetic_data", if r.synthetic { "yes" } else { "no" })?;
    put("scope", &r.scope.description)?;
    for s in &r.scope.services {
        put(
            "service",
            &format!(
                "{} {} ({})",
                s.service_ref,
                s.name,
                s.areas_served.join(";")
            ),
        )?;
    }
    put(
        "proportions",
        "shares and rates are fractions from 0 to 1 in these files (0.097 is 9.7%, as the pages, documents and spreadsheet show it)",
    )?;
    put("period", &r.period.label)?;
    put("period_from", &r.period.from.to_string())?;
    put("period_to", &r.period.to.to_string())?;
    put("produced_at", &r.produced_at)?;
    put("disclosure_policy", r.policy.name)?;
    put("disclosure_statement", &r.policy.statement)?;
    put(
        "secondary_suppressions",
        &r.policy.secondary_suppressions.to_string(),
    )?;
    for t in &r.policy.withheld_tables {
        put("withheld_table", t)?;
    }
    put("imd_year", &r.imd_year.to_string())?;
    for f in &r.reference_data {
        put(
            "reference_file",
            &format!("{} ({}) sha256 {}", f.file, f.kind, f.sha256),
        )?;
    }
    for warning in &r.warnings {
        put("warning", warning)?;
    }
    for s in &r.sections {
        for d in &s.definitions {
            put(&format!("definition:{}", s.id), d)?;
        }
    }
    w.flush()?;
    Ok(path)
}

/// Writes the reports as one HTML page at `path` (several documents follow one another,
/// each from a new printed page).
pub fn html_file(reports: &[Report], path: &Path) -> io::Result<Vec<PathBuf>> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, crate::html::html(reports))?;
    Ok(vec![path.to_path_buf()])
}

/// Writes the reports as spreadsheets: one file at `path` for one document; for several,
/// `path` is a folder with a workbook per document, named as the CSV folders are.
pub fn xlsx_files(reports: &[Report], path: &Path) -> io::Result<Vec<PathBuf>> {
    let bytes = |r: &Report| crate::xlsx::xlsx(r).map_err(io::Error::other);
    if let [one] = reports {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, bytes(one)?)?;
        return Ok(vec![path.to_path_buf()]);
    }
    std::fs::create_dir_all(path)?;
    let mut written = Vec::new();
    for r in reports {
        let file = path.join(format!("{}.xlsx", folder_name(r)));
        std::fs::write(&file, bytes(r)?)?;
        written.push(file);
    }
    Ok(written)
}
