//! Storage of reference data and the client area fields derived from it.

use crate::tx::{AnyQuery, bind_value, max_params};
use crate::{Database, StoreResult, StoreTx};
use dcrs_domain::Value;
use dcrs_domain::record::FieldKind;
use sqlx::{AssertSqlSafe, Row};

/// The setting naming the IMD year used for clients' deciles and quintiles.
pub const IMD_YEAR: &str = "imd_year";

/// The reference tables.
pub const REFERENCE_TABLES: [&str; 10] = [
    "ref_lsoa11",
    "ref_lsoa11_imd",
    "ref_imd_lsoa01",
    "ref_lsoa01_lsoa11",
    "ref_postcodes",
    "ref_lad_region",
    "ref_ltla_utla",
    "ref_census_ethnicity",
    "ref_census_categories",
    "ref_ethnic_category",
];

/// A loaded reference file, as `dcrs refdata status` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedFile {
    /// The file's path relative to the directory it was loaded from.
    pub file: String,
    /// What it holds.
    pub kind: String,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
    /// Its size.
    pub bytes: i64,
    /// Rows taken from it.
    pub rows: i64,
    /// When.
    pub loaded_at: String,
}

fn kind_of(v: &Value) -> FieldKind {
    match v {
        Value::Int(_) => FieldKind::Int,
        Value::Real(_) => FieldKind::Real,
        _ => FieldKind::Text,
    }
}

impl StoreTx {
    /// Empties a reference table before it is loaded again.
    pub async fn clear_reference(&mut self, table: &'static str) -> StoreResult<()> {
        self.touch_all();
        sqlx::query(AssertSqlSafe(format!("DELETE FROM {table}")))
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Removes one index year's rows from a table keyed by year.
    pub async fn delete_reference_year(
        &mut self,
        table: &'static str,
        year: i64,
    ) -> StoreResult<()> {
        self.touch_all();
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE year = $1"
        )))
        .bind(year)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Adds rows to a reference table; every row has a value per column, and a
    /// column's nulls are typed by `kinds`.
    pub async fn insert_reference(
        &mut self,
        table: &'static str,
        columns: &[&'static str],
        kinds: &[FieldKind],
        rows: &[Vec<Value>],
    ) -> StoreResult<()> {
        self.touch_all();
        let n = columns.len();
        for part in rows.chunks((max_params(self.backend()) / n).max(1)) {
            let tuples: Vec<String> = (0..part.len())
                .map(|r| format!("({})", crate::sql::placeholders(r * n + 1, n)))
                .collect();
            let sql = format!(
                "INSERT INTO {table} ({}) VALUES {}",
                columns.join(", "),
                tuples.join(", ")
            );
            let mut query: AnyQuery = self.sequential_query(sql);
            for row in part {
                for (v, k) in row.iter().zip(kinds) {
                    let kind = if matches!(v, Value::Null) {
                        *k
                    } else {
                        kind_of(v)
                    };
                    query = bind_value(query, kind, v);
                }
            }
            query.execute(self.conn()).await?;
        }
        Ok(())
    }

    /// Records a loaded file with its checksum, replacing an earlier load of it.
    pub async fn record_reference_file(&mut self, f: &LoadedFile) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO refdata_files (file, kind, sha256, bytes, rows_loaded, loaded_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (file) DO UPDATE SET kind = excluded.kind, sha256 = excluded.sha256, bytes = excluded.bytes, \
             rows_loaded = excluded.rows_loaded, loaded_at = excluded.loaded_at",
        )
        .bind(f.file.clone())
        .bind(f.kind.clone())
        .bind(f.sha256.clone())
        .bind(f.bytes)
        .bind(f.rows)
        .bind(f.loaded_at.clone())
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Sets a setting.
    pub async fn set_setting(&mut self, key: &str, value: &str) -> StoreResult<()> {
        self.touch_all();
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key.to_string())
        .bind(value.to_string())
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// The IMD year in use (2019 unless set otherwise).
    pub async fn imd_year(&mut self) -> StoreResult<i64> {
        let v: Option<String> = sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(IMD_YEAR)
            .fetch_optional(self.conn())
            .await?;
        Ok(v.and_then(|v| v.parse().ok()).unwrap_or(2019))
    }

    /// Of `codes`, those that are not 2011 LSOAs in the reference data, each with the
    /// 2011 LSOAs it became where it is a 2001 code. Empty when no 2011 LSOAs are loaded
    /// (nothing to check against).
    pub async fn lsoas_not_in_2011(
        &mut self,
        codes: &[String],
    ) -> StoreResult<Vec<(String, Vec<String>)>> {
        let loaded: Option<i64> = sqlx::query_scalar("SELECT 1 FROM ref_lsoa11 LIMIT 1")
            .fetch_optional(self.conn())
            .await?;
        if loaded.is_none() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for code in codes {
            let known: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM ref_lsoa11 WHERE lsoa11cd = $1")
                    .bind(code.clone())
                    .fetch_optional(self.conn())
                    .await?;
            if known.is_some() {
                continue;
            }
            let successors: Vec<String> = sqlx::query_scalar(
                "SELECT lsoa11cd FROM ref_lsoa01_lsoa11 WHERE lsoa01cd = $1 ORDER BY lsoa11cd",
            )
            .bind(code.clone())
            .fetch_all(self.conn())
            .await?;
            out.push((code.clone(), successors));
        }
        Ok(out)
    }

    /// Whether any postcodes are loaded.
    pub async fn has_postcodes(&mut self) -> StoreResult<bool> {
        let n: Option<i64> = sqlx::query_scalar("SELECT 1 FROM ref_postcodes LIMIT 1")
            .fetch_optional(self.conn())
            .await?;
        Ok(n.is_some())
    }

    /// Sets the area fields of clients from their postcodes: 2011 LSOA, local authority,
    /// and the IMD decile and quintile of the configured year. All clients when
    /// `clients` is `None`, otherwise those of one service. Returns the references of
    /// those whose postcode was given but is not in the lookup.
    pub async fn derive_client_areas(
        &mut self,
        clients: Option<(i64, &[i64])>,
    ) -> StoreResult<Vec<String>> {
        match clients {
            Some((service_id, _)) => self.touch(Some(service_id)),
            None => self.touch_all(),
        }
        let year = self.imd_year().await?;
        let derived = [
            (
                "lsoa11cd",
                "(SELECT p.lsoa11cd FROM ref_postcodes p WHERE p.pcds = clients.postcode)",
            ),
            (
                "lad_cd",
                "(SELECT l.lad19cd FROM ref_postcodes p JOIN ref_lsoa11 l ON l.lsoa11cd = p.lsoa11cd \
                 WHERE p.pcds = clients.postcode)",
            ),
            (
                "imd_decile",
                "(SELECT i.imd_decile FROM ref_postcodes p JOIN ref_lsoa11_imd i \
                 ON i.lsoa11cd = p.lsoa11cd AND i.year = $1 WHERE p.pcds = clients.postcode)",
            ),
            (
                "imd_quintile",
                "(SELECT i.imd_quintile FROM ref_postcodes p JOIN ref_lsoa11_imd i \
                 ON i.lsoa11cd = p.lsoa11cd AND i.year = $1 WHERE p.pcds = clients.postcode)",
            ),
        ];
        // Only rows whose derived values differ are written: rewriting every client
        // touched by an import (most of whose postcodes had not changed) took 4 s a
        // hundred thousand clients on PostgreSQL, which writes a new version of each row.
        let set = format!(
            "{} WHERE ({})",
            derived
                .iter()
                .map(|(c, e)| format!("{c} = {e}"))
                .collect::<Vec<_>>()
                .join(", "),
            derived
                .iter()
                .map(|(c, e)| format!("{c} IS DISTINCT FROM {e}"))
                .collect::<Vec<_>>()
                .join(" OR ")
        );
        let mut unknown = Vec::new();
        match clients {
            None => {
                sqlx::query(AssertSqlSafe(format!("UPDATE clients SET {set}")))
                    .bind(year)
                    .execute(self.conn())
                    .await?;
            }
            Some((service_id, ids)) => {
                for part in ids.chunks(crate::tx::IN_LIST) {
                    let list = crate::sql::placeholders(3, part.len());
                    let sql = format!(
                        "UPDATE clients SET {set} AND service_id = $2 AND client_id IN ({list})"
                    );
                    let mut q = sqlx::query(AssertSqlSafe(sql)).bind(year).bind(service_id);
                    for id in part {
                        q = q.bind(*id);
                    }
                    q.execute(self.conn()).await?;
                    let sql = format!(
                        "SELECT client_ref FROM clients WHERE service_id = $1 AND client_id IN ({}) \
                         AND postcode IS NOT NULL AND lsoa11cd IS NULL",
                        crate::sql::placeholders(2, part.len())
                    );
                    let mut q = self.sequential_query(sql).bind(service_id);
                    for id in part {
                        q = q.bind(*id);
                    }
                    for row in q.fetch_all(self.conn()).await? {
                        unknown.push(row.try_get::<String, _>(0)?);
                    }
                }
            }
        }
        // Sorted here: with ORDER BY, SQLite walked the service's whole reference index
        // for every batch instead of looking the clients up by id.
        unknown.sort();
        Ok(unknown)
    }
}

impl Database {
    /// The reference files loaded, in name order.
    pub async fn reference_files(&self) -> StoreResult<Vec<LoadedFile>> {
        let rows = sqlx::query(
            "SELECT file, kind, sha256, bytes, rows_loaded, loaded_at FROM refdata_files ORDER BY file",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LoadedFile {
                    file: r.try_get(0)?,
                    kind: r.try_get(1)?,
                    sha256: r.try_get(2)?,
                    bytes: r.try_get(3)?,
                    rows: r.try_get(4)?,
                    loaded_at: r.try_get(5)?,
                })
            })
            .collect()
    }

    /// Rows in each reference table.
    pub async fn reference_counts(&self) -> StoreResult<Vec<(&'static str, u64)>> {
        let mut out = Vec::new();
        for t in REFERENCE_TABLES {
            let n: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) FROM {t}")))
                .fetch_one(self.pool())
                .await?;
            out.push((t, n as u64));
        }
        Ok(out)
    }

    /// The IMD year in use.
    pub async fn imd_year(&self) -> StoreResult<i64> {
        let v: Option<String> = sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(IMD_YEAR)
            .fetch_optional(self.pool())
            .await?;
        Ok(v.and_then(|v| v.parse().ok()).unwrap_or(2019))
    }
}
