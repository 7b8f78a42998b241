//! The dataset files being written: one CSV per entity in the import format, with the
//! header taken from the domain's field list so the two cannot disagree.

use crate::SynthError;
use dcrs_domain::Entity;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

pub struct Out {
    dir: PathBuf,
    writers: Vec<csv::Writer<BufWriter<File>>>,
    rows: [u64; 13],
}

impl Out {
    /// Creates `dir` (if needed) and the thirteen files with their headers.
    pub fn create(dir: &Path) -> Result<Self, SynthError> {
        std::fs::create_dir_all(dir).map_err(|e| SynthError::io(dir, e))?;
        let mut writers = Vec::new();
        for e in Entity::ALL {
            let path = dir.join(e.file_name());
            let file = File::create(&path).map_err(|x| SynthError::io(&path, x))?;
            let mut w =
                csv::WriterBuilder::new().from_writer(BufWriter::with_capacity(1 << 16, file));
            w.write_record(e.fields().iter().map(|f| f.name))
                .map_err(|x| SynthError::io(&path, x))?;
            writers.push(w);
        }
        Ok(Out {
            dir: dir.to_path_buf(),
            writers,
            rows: [0; 13],
        })
    }

    /// Writes one row of `entity`, fields in file order.
    pub fn write(&mut self, entity: Entity, fields: &[&str]) -> Result<(), SynthError> {
        let i = entity as usize;
        debug_assert_eq!(fields.len(), entity.fields().len(), "{entity:?}");
        self.rows[i] += 1;
        self.writers[i]
            .write_record(fields)
            .map_err(|x| SynthError::io(&self.dir.join(entity.file_name()), x))
    }

    /// Writes one row of `entity` given by the names of its fields (in `layout`): a field
    /// the generator does not name (such as a measure added to the standard after it)
    /// is written empty.
    pub fn write_named(
        &mut self,
        entity: Entity,
        layout: &Layout,
        values: &[&str],
    ) -> Result<(), SynthError> {
        debug_assert_eq!(values.len(), layout.positions.len(), "{entity:?}");
        let mut row = vec![""; entity.fields().len()];
        for (&at, v) in layout.positions.iter().zip(values) {
            row[at] = v;
        }
        self.write(entity, &row)
    }

    /// Flushes every file; returns the rows written per entity.
    pub fn finish(mut self) -> Result<Vec<(Entity, u64)>, SynthError> {
        for (i, w) in self.writers.iter_mut().enumerate() {
            w.flush()
                .map_err(|x| SynthError::io(&self.dir.join(Entity::ALL[i].file_name()), x))?;
        }
        Ok(Entity::ALL.iter().copied().zip(self.rows).collect())
    }
}

/// Where each named field of a row goes in its file, worked out once.
pub struct Layout {
    positions: Vec<usize>,
}

impl Layout {
    /// The places of `names` among the fields of `entity`; a name the standard does not
    /// have is a bug in the generator.
    pub fn of(entity: Entity, names: &[&str]) -> Layout {
        let fields = entity.fields();
        Layout {
            positions: names
                .iter()
                .map(|n| {
                    fields
                        .iter()
                        .position(|f| f.name == *n)
                        .unwrap_or_else(|| panic!("{entity:?} has no field {n}"))
                })
                .collect(),
        }
    }
}
