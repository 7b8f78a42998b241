//! Reports as spreadsheets: a first sheet `About` with the scope, period, time produced,
//! disclosure policy, warnings, reference data and definitions, then one sheet per table.
//! Figures are stored as numbers (proportions as fractions shown as percentages); a
//! suppressed figure is the text `*`, one that does not apply the text `n/a`.

use crate::Report;
use crate::doc::{Figure, Table, Unit, format_number};
use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};

/// Excel's limit on a sheet name's length.
const SHEET_NAME_MAX: usize = 31;

/// The report as an .xlsx file's bytes.
pub fn xlsx(r: &Report) -> Result<Vec<u8>, XlsxError> {
    let mut book = Workbook::new();
    let bold = Format::new().set_bold();
    let wrap = Format::new().set_text_wrap();
    {
        let sheet = book.add_worksheet();
        sheet.set_name("About")?;
        about(sheet, r, &bold, &wrap)?;
    }
    let mut used = vec!["about".to_string()];
    for section in &r.sections {
        for t in &section.tables {
            let name = sheet_name(&t.id, &used);
            used.push(name.to_lowercase());
            let sheet = book.add_worksheet();
            sheet.set_name(&name)?;
            table(sheet, t, &bold)?;
        }
    }
    book.save_to_buffer()
}

/// A sheet name from a table id: Excel's characters and length, unique in the book
/// (names are compared without case).
fn sheet_name(id: &str, used: &[String]) -> String {
    let clean: String = id
        .chars()
        .map(|c| if "[]:*?/\\'".contains(c) { '_' } else { c })
        .collect();
    let base: String = clean.chars().take(SHEET_NAME_MAX).collect();
    if !used.contains(&base.to_lowercase()) {
        return base;
    }
    (2..)
        .map(|n| {
            let suffix = format!("~{n}");
            let keep = SHEET_NAME_MAX - suffix.len();
            format!("{}{suffix}", clean.chars().take(keep).collect::<String>())
        })
        .find(|name| !used.contains(&name.to_lowercase()))
        .expect("some suffix is free")
}

fn about(sheet: &mut Worksheet, r: &Report, bold: &Format, wrap: &Format) -> Result<(), XlsxError> {
    let mut rows: Vec<(String, String)> = vec![
        ("Title".into(), r.title.clone()),
        ("Report".into(), r.kind.code().into()),
        (
            "Synthetic data".into(),
            if r.synthetic { "yes" } else { "no" }.into(),
        ),
        ("Scope".into(), r.scope.description.clone()),
    ];
    for s in &r.scope.services {
        rows.push((
            "Service".into(),
            format!(
                "{} {} (areas served: {})",
                s.service_ref,
                s.name,
                s.areas_served.join(", ")
            ),
        ));
    }
    rows.extend([
        ("Period".into(), r.period.label.clone()),
        ("Period from".into(), r.period.from.to_string()),
        ("Period to".into(), r.period.to.to_string()),
        ("Produced".into(), r.produced_at.clone()),
        ("Disclosure policy".into(), r.policy.name.into()),
        ("Policy statement".into(), r.policy.statement.clone()),
        (
            "Symbols".into(),
            "* a figure withheld by the disclosure policy; n/a a figure that does not apply".into(),
        ),
        (
            format!("Cells withheld: counts from 1 to {}", r.policy.threshold),
            r.policy.withheld_cells.small.to_string(),
        ),
        (
            "Cells withheld to protect other counts".into(),
            r.policy.secondary_suppressions.to_string(),
        ),
        (
            "Cells withheld: figures resting on a withheld count".into(),
            r.policy.withheld_cells.resting_on_withheld.to_string(),
        ),
    ]);
    for t in &r.policy.withheld_tables {
        rows.push(("Table withheld".into(), t.clone()));
    }
    rows.push(("IMD year".into(), r.imd_year.to_string()));
    for f in &r.reference_data {
        rows.push((
            "Reference file".into(),
            format!("{} ({}) SHA-256 {}", f.file, f.kind, f.sha256),
        ));
    }
    for w in &r.warnings {
        rows.push(("Warning".into(), w.clone()));
    }
    for s in &r.sections {
        for d in &s.definitions {
            rows.push((format!("Definition: {}", s.title), d.clone()));
        }
    }
    sheet.write_string_with_format(0, 0, "Item", bold)?;
    sheet.write_string_with_format(0, 1, "Value", bold)?;
    for (i, (k, v)) in rows.iter().enumerate() {
        let row = i as u32 + 1;
        sheet.write_string_with_format(row, 0, k, bold)?;
        sheet.write_string_with_format(row, 1, v, wrap)?;
    }
    sheet.set_column_width(0, 34)?;
    sheet.set_column_width(1, 110)?;
    Ok(())
}

/// The number format of a column's unit.
fn number_format(unit: Unit) -> Format {
    Format::new().set_num_format(match unit {
        Unit::Count => "#,##0",
        Unit::Proportion => "0.0%",
        Unit::Ratio => "0.00",
        Unit::PValue => "0.000",
        Unit::Days => "0.0",
        Unit::Number | Unit::Text => "General",
    })
}

/// Row 1 the table's title, row 2 its column headings, then its rows; a note or the
/// reason it is withheld below.
fn table(sheet: &mut Worksheet, t: &Table, bold: &Format) -> Result<(), XlsxError> {
    sheet.write_string_with_format(0, 0, &t.title, bold)?;
    for (j, c) in t.columns.iter().enumerate() {
        sheet.write_string_with_format(1, j as u16, &c.label, bold)?;
    }
    let formats: Vec<Format> = t.columns.iter().map(|c| number_format(c.unit)).collect();
    let mut next = 2u32;
    if let Some(why) = &t.withheld {
        sheet.write_string(next, 0, format!("Withheld: {why}"))?;
        next += 1;
    }
    for row in &t.rows {
        for (j, f) in row.iter().enumerate() {
            let col = j as u16;
            match f {
                Figure::Int(v) => {
                    sheet.write_number_with_format(next, col, *v as f64, &formats[j])?;
                }
                Figure::Num(v) => {
                    // The value the JSON and CSV publish (six decimals).
                    let v = format_number(*v).parse().unwrap_or(*v);
                    sheet.write_number_with_format(next, col, v, &formats[j])?;
                }
                other => {
                    sheet.write_string(next, col, other.to_text())?;
                }
            }
        }
        next += 1;
    }
    if let Some(note) = &t.note {
        sheet.write_string(next + 1, 0, note)?;
    }
    sheet.set_freeze_panes(2, 1)?;
    sheet.autofit();
    Ok(())
}
