//! A table as a Parquet file, with the `parquet` crate's own column writers (no Arrow,
//! no compression codecs: they would more than double the build for a few small files).
//! Every column is optional: text as UTF-8 byte arrays, whole numbers as INT64, other
//! numbers as DOUBLE.

use crate::{Col, Table};
use parquet::basic::{Compression, ConvertedType, Repetition, Type as Physical};
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;
use std::sync::Arc;

fn schema(t: &Table) -> Result<Type, String> {
    let fields = t
        .columns
        .iter()
        .map(|(name, col)| {
            let b = match col {
                Col::Text => Type::primitive_type_builder(name, Physical::BYTE_ARRAY)
                    .with_converted_type(ConvertedType::UTF8),
                Col::Int => Type::primitive_type_builder(name, Physical::INT64),
                Col::Real => Type::primitive_type_builder(name, Physical::DOUBLE),
            };
            b.with_repetition(Repetition::OPTIONAL)
                .build()
                .map(Arc::new)
                .map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    Type::group_type_builder(t.name)
        .with_fields(fields)
        .build()
        .map_err(|e| e.to_string())
}

/// The bytes of the Parquet file of `t`.
pub(crate) fn write(t: &Table) -> Result<Vec<u8>, String> {
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::UNCOMPRESSED)
            .build(),
    );
    let mut out = Vec::new();
    {
        let mut writer = SerializedFileWriter::new(&mut out, Arc::new(schema(t)?), props)
            .map_err(|e| e.to_string())?;
        let mut group = writer.next_row_group().map_err(|e| e.to_string())?;
        for (i, (_, col)) in t.columns.iter().enumerate() {
            let mut column = group
                .next_column()
                .map_err(|e| e.to_string())?
                .ok_or("fewer columns than the schema")?;
            let cells: Vec<Option<&str>> = t.rows.iter().map(|r| r[i].as_deref()).collect();
            let levels: Vec<i16> = cells.iter().map(|c| i16::from(c.is_some())).collect();
            let present = cells.iter().flatten();
            let written = match col {
                Col::Text => {
                    let values: Vec<ByteArray> = present
                        .map(|s| ByteArray::from(s.as_bytes().to_vec()))
                        .collect();
                    column
                        .typed::<ByteArrayType>()
                        .write_batch(&values, Some(&levels), None)
                }
                Col::Int => {
                    let values: Vec<i64> = present
                        .map(|s| s.parse::<i64>().map_err(|e| format!("{s}: {e}")))
                        .collect::<Result<_, _>>()?;
                    column
                        .typed::<Int64Type>()
                        .write_batch(&values, Some(&levels), None)
                }
                Col::Real => {
                    let values: Vec<f64> = present
                        .map(|s| s.parse::<f64>().map_err(|e| format!("{s}: {e}")))
                        .collect::<Result<_, _>>()?;
                    column
                        .typed::<DoubleType>()
                        .write_batch(&values, Some(&levels), None)
                }
            };
            written.map_err(|e| e.to_string())?;
            column.close().map_err(|e| e.to_string())?;
        }
        group.close().map_err(|e| e.to_string())?;
        writer.close().map_err(|e| e.to_string())?;
    }
    Ok(out)
}
