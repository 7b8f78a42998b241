//! Export: every stored record, one file per entity, in a fixed order, so that the same
//! data always give the same bytes and an export imports into an empty database unchanged.

use dcrs_domain::field::spreadsheet_safe;
use dcrs_domain::{Entity, FieldKind};
use dcrs_store::{Database, StoreError};
use std::path::Path;

/// How many records were written to each file.
#[derive(Debug, Clone, Default)]
pub struct ExportSummary {
    /// Records per entity.
    pub rows: Vec<(Entity, u64)>,
}

/// Writes all thirteen files into `dir` (created if needed; files there are replaced).
pub async fn export_dir(db: &Database, dir: &Path) -> Result<ExportSummary, ExportError> {
    std::fs::create_dir_all(dir).map_err(|e| ExportError::Io(dir.display().to_string(), e))?;
    let mut summary = ExportSummary::default();
    for entity in Entity::ALL {
        let path = dir.join(entity.file_name());
        let file = std::fs::File::create(&path)
            .map_err(|e| ExportError::Io(path.display().to_string(), e))?;
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(std::io::BufWriter::new(file));
        let header: Vec<&str> = entity.fields().iter().map(|f| f.name).collect();
        w.write_record(&header)
            .map_err(|e| ExportError::Csv(path.display().to_string(), e))?;
        // Text that a spreadsheet would run as a formula is written neutralised (the
        // import takes the mark off again); numbers are written as they are.
        let text: Vec<bool> = entity
            .fields()
            .iter()
            .map(|f| !matches!(f.kind, FieldKind::Int | FieldKind::Real))
            .collect();
        let mut write_error = None;
        let n = db
            .for_each_row(entity, |fields| {
                if write_error.is_some() {
                    return;
                }
                let mut row = || {
                    for ((_, v), text) in fields.iter().zip(&text) {
                        if *text {
                            w.write_field(spreadsheet_safe(v).as_bytes())?;
                        } else {
                            w.write_field(v.as_bytes())?;
                        }
                    }
                    w.write_record(None::<&[u8]>)
                };
                if let Err(e) = row() {
                    write_error = Some(e);
                }
            })
            .await?;
        if let Some(e) = write_error {
            return Err(ExportError::Csv(path.display().to_string(), e));
        }
        w.flush()
            .map_err(|e| ExportError::Io(path.display().to_string(), e))?;
        summary.rows.push((entity, n));
    }
    Ok(summary)
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A file could not be written.
    #[error("could not write {0}: {1}")]
    Io(String, std::io::Error),
    /// A CSV row could not be written.
    #[error("could not write {0}: {1}")]
    Csv(String, csv::Error),
    /// Reading the database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
