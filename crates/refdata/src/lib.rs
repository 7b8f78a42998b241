//! Loads England's reference data into the database: IMD 2019 by 2011 LSOA with
//! populations, IMD 2004/2007/2010 through the 2001↔2011 LSOA best-fit lookup, postcode
//! → LSOA lookups, LSOA → local authority and region lookups, 2011 Census ethnic group
//! counts by local authority and the NHS ethnic category list.
//!
//! Each source has a [`Layout`]: the fields the loader needs and the column header each
//! is read from. The files in `../shared/data` and the publishers' own files (IoD2019
//! File 1 and File 6, with their byte order mark, CRLF line endings and quoted thousands
//! separators) are known by path; any other layout is read by naming its file and
//! mapping its headers (`--file KIND=PATH --map KIND.FIELD=HEADER`), never by guessing.
//! Every file's SHA-256 is recorded, and the clients' area fields are recomputed in the
//! same transaction.

use dcrs_domain::Value;
use dcrs_domain::record::FieldKind;
use dcrs_store::{AuditEntry, Database, IMD_YEAR, LoadedFile, RecordStore, StoreError, StoreTx};
use sha2::Digest;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
pub mod download;

/// What a loader needs from one file: canonical field names and default headers.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// The kind of source, as named on the command line.
    pub kind: &'static str,
    /// (field, header) pairs; a field whose header starts with `?` is optional.
    pub fields: &'static [(&'static str, &'static str)],
}

/// Every layout the loader reads.
pub const LAYOUTS: &[Layout] = &[
    Layout {
        kind: "imd2019",
        fields: &[
            ("lsoa11cd", "lsoa11cd"),
            ("lsoa11nm", "?lsoa11nm"),
            ("lad19cd", "lad19cd"),
            ("lad19nm", "?lad19nm"),
            ("imd_score", "?imd_score"),
            ("imd_rank", "imd_rank"),
            ("imd_decile", "imd_decile"),
            ("pop_mid2015", "?pop_mid2015"),
            ("pop_mid2019", "?pop_mid2019"),
        ],
    },
    Layout {
        kind: "iod2019_file1",
        fields: &[
            ("lsoa11cd", "LSOA code (2011)"),
            ("lsoa11nm", "LSOA name (2011)"),
            ("lad19cd", "Local Authority District code (2019)"),
            ("lad19nm", "Local Authority District name (2019)"),
            ("imd_rank", "Index of Multiple Deprivation (IMD) Rank"),
            ("imd_decile", "Index of Multiple Deprivation (IMD) Decile"),
        ],
    },
    Layout {
        kind: "iod2019_file6",
        fields: &[
            ("lsoa11cd", "LSOA code (2011)"),
            (
                "pop_mid2015",
                "Total population: mid 2015 (excluding prisoners)",
            ),
        ],
    },
    Layout {
        kind: "imd_legacy",
        fields: &[
            ("lsoa01cd", "lsoa01_code"),
            ("imd_score", "?IMD_score"),
            ("imd_rank", "IMD_rank"),
            ("imd_decile", "IMD_decile"),
        ],
    },
    Layout {
        kind: "lsoa01_lsoa11",
        fields: &[
            ("lsoa01cd", "LSOA01CD"),
            ("lsoa11cd", "LSOA11CD"),
            ("chgind", "CHGIND"),
            ("lad11cd", "?LAD11CD"),
        ],
    },
    Layout {
        kind: "lsoa11_geography",
        fields: &[
            ("lsoa11cd", "lsoa11cd"),
            ("msoa11cd", "?msoa11cd"),
            ("lad17cd", "?lad17cd"),
            ("rgn11cd", "?rgn11cd"),
            ("rgn11nm", "?rgn11nm"),
        ],
    },
    Layout {
        kind: "postcodes",
        fields: &[
            ("pcds", "pcds"),
            ("lsoa11cd", "lsoa11cd"),
            ("dointr", "?dointr"),
            ("doterm", "?doterm"),
            ("usertype", "?usertype"),
        ],
    },
    Layout {
        kind: "lad_region",
        fields: &[
            ("lad_cd", "LAD18CD"),
            ("lad_nm", "?LAD18NM"),
            ("rgn_cd", "RGN18CD"),
            ("rgn_nm", "?RGN18NM"),
        ],
    },
    Layout {
        kind: "ltla_utla",
        fields: &[
            ("ltla", "LTLA19CD"),
            ("ltla_nm", "?LTLA19NM"),
            ("utla", "UTLA19CD"),
            ("utla_nm", "?UTLA19NM"),
        ],
    },
    Layout {
        kind: "census_categories",
        fields: &[
            ("order", "census2011_order"),
            ("group_label", "group_label"),
            ("category_label", "category_label"),
            ("nomis_column", "nomis_column"),
            ("nhs_code", "nhs_ethnic_category_2001"),
        ],
    },
    Layout {
        kind: "census_ethnicity",
        fields: &[("lad11cd", "geography code")],
    },
    Layout {
        kind: "ethnic_category",
        fields: &[
            ("code", "code"),
            ("group_label", "group_label"),
            ("category_label", "category_label"),
        ],
    },
];

/// The files of `../shared/data` (and of the publishers' downloads) by path.
const KNOWN: &[(&str, &str)] = &[
    ("imd/imd2019_lsoa11_england.csv", "imd2019"),
    (
        "imd/File_1_-_IMD2019_Index_of_Multiple_Deprivation.csv",
        "iod2019_file1",
    ),
    (
        "imd/File_6_-_IoD2019_Population_Denominators.csv",
        "iod2019_file6",
    ),
    ("imd/imd2004_lsoa01_england.csv", "imd_legacy"),
    ("imd/imd2007_lsoa01_england.csv", "imd_legacy"),
    ("imd/imd2010_lsoa01_england.csv", "imd_legacy"),
    (
        "geography/lsoa01_lsoa11_lad11_lookup_ew.csv",
        "lsoa01_lsoa11",
    ),
    (
        "geography/lsoa11_msoa11_lad17_rgn11_england.csv",
        "lsoa11_geography",
    ),
    (
        "geography/lad_region_dec2018_lookup_england.csv",
        "lad_region",
    ),
    ("geography/ltla_utla_apr2019_lookup_ew.csv", "ltla_utla"),
    ("postcode/postcode_lsoa11_england_A-K.csv.gz", "postcodes"),
    ("postcode/postcode_lsoa11_england_L-R.csv.gz", "postcodes"),
    ("postcode/postcode_lsoa11_england_S-Z.csv.gz", "postcodes"),
    (
        "census/ethnic_group_2011_census_18_categories.csv",
        "census_categories",
    ),
    (
        "census/census2011_ethnic_group_by_la_ew.csv",
        "census_ethnicity",
    ),
    ("nhs/nhs_ethnic_category_2001.csv", "ethnic_category"),
];

/// The IMD years the loader knows.
pub const IMD_YEARS: [i64; 4] = [2004, 2007, 2010, 2019];

/// What to load.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Extra files of a given layout kind: (kind, path).
    pub files: Vec<(String, PathBuf)>,
    /// Header overrides: (kind, field, header).
    pub maps: Vec<(String, String, String)>,
    /// The IMD year for clients' deciles and quintiles (kept as it is when `None`).
    pub imd_year: Option<i64>,
    /// Who loads, for the audit trail.
    pub actor: String,
}

/// What a load did.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// The files loaded.
    pub files: Vec<LoadedFile>,
    /// Rows per reference table.
    pub tables: Vec<(&'static str, u64)>,
    /// The IMD year now in use.
    pub imd_year: i64,
}

/// Why a load failed. Nothing is written when it does.
#[derive(Debug, thiserror::Error)]
pub enum RefdataError {
    /// A file could not be read.
    #[error("could not read {0}: {1}")]
    Io(String, std::io::Error),
    /// A file's content is not what its layout says.
    #[error("{file}: {reason}")]
    Format { file: String, reason: String },
    /// The command asked for something that does not exist.
    #[error("{0}")]
    Usage(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn format_error(file: &str, reason: impl Into<String>) -> RefdataError {
    RefdataError::Format {
        file: file.to_string(),
        reason: reason.into(),
    }
}

/// One source file read into memory, with its checksum.
struct Source {
    name: String,
    kind: &'static str,
    bytes: u64,
    sha256: String,
    rows: Vec<Vec<String>>,
}

fn layout(kind: &str) -> Result<&'static Layout, RefdataError> {
    LAYOUTS.iter().find(|l| l.kind == kind).ok_or_else(|| {
        RefdataError::Usage(format!(
            "{kind:?} is not a reference data kind; the kinds are {}",
            LAYOUTS
                .iter()
                .map(|l| l.kind)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads a file (gunzipping `.gz`) into rows of the layout's fields, in field order;
/// for `census_ethnicity`, every column is kept under its own header.
fn read_source(
    path: &Path,
    name: &str,
    layout: &'static Layout,
    maps: &[(String, String, String)],
) -> Result<(Source, Vec<String>), RefdataError> {
    let raw = std::fs::read(path).map_err(|e| RefdataError::Io(path.display().to_string(), e))?;
    let sha256 = hex(&sha2::Sha256::digest(&raw));
    let text = if name.ends_with(".gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| format_error(name, format!("it is not a readable gzip file ({e})")))?;
        out
    } else {
        raw.clone()
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(&text[..]);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| format_error(name, format!("the header row could not be read ({e})")))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').trim().to_string())
        .collect();
    let mut index: Vec<Option<usize>> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    if layout.kind == "census_ethnicity" {
        index = (0..headers.len()).map(Some).collect();
        names = headers.clone();
    } else {
        for (field, default) in layout.fields {
            let mapped = maps
                .iter()
                .find(|(k, f, _)| k == layout.kind && f == field)
                .map(|(_, _, h)| h.as_str());
            let (optional, header) = match mapped {
                Some(h) => (false, h),
                None => match default.strip_prefix('?') {
                    Some(h) => (true, h),
                    None => (false, *default),
                },
            };
            let at = headers.iter().position(|h| h == header);
            if at.is_none() && !optional {
                return Err(format_error(
                    name,
                    format!(
                        "there is no column {header:?} (needed for {field}); if this file names it differently, \
                         give --map {}.{field}=HEADER",
                        layout.kind
                    ),
                ));
            }
            index.push(at);
            names.push(field.to_string());
        }
    }
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record
            .map_err(|e| format_error(name, format!("row {} could not be read ({e})", i + 2)))?;
        rows.push(
            index
                .iter()
                .map(|at| {
                    at.and_then(|a| record.get(a))
                        .unwrap_or("")
                        .trim()
                        .to_string()
                })
                .collect(),
        );
    }
    Ok((
        Source {
            name: name.to_string(),
            kind: layout.kind,
            bytes: raw.len() as u64,
            sha256,
            rows,
        },
        names,
    ))
}

fn int(file: &str, field: &str, v: &str) -> Result<Option<i64>, RefdataError> {
    if v.is_empty() {
        return Ok(None);
    }
    // Publishers' files write 1,000 and more with a thousands separator.
    v.replace(',', "")
        .parse::<i64>()
        .map(Some)
        .map_err(|_| format_error(file, format!("{field} {v:?} is not a whole number")))
}

fn real(file: &str, field: &str, v: &str) -> Result<Option<f64>, RefdataError> {
    if v.is_empty() {
        return Ok(None);
    }
    v.replace(',', "")
        .parse::<f64>()
        .map(Some)
        .map_err(|_| format_error(file, format!("{field} {v:?} is not a number")))
}

fn text(v: &str) -> Value {
    if v.is_empty() {
        Value::Null
    } else {
        Value::Text(v.to_string())
    }
}

fn opt_int(x: Option<i64>) -> Value {
    x.map_or(Value::Null, Value::Int)
}

/// A 2001 LSOA's IMD: code, score, rank, decile.
pub type LegacyRow = (String, Option<f64>, i64, i64);

/// A row of the 2001↔2011 lookup: 2001 code, 2011 code, change indicator, 2011 district.
pub type LookupRow = (String, String, String, Option<String>);

/// One 2011 LSOA, merged from the sources that describe it.
#[derive(Default, Clone)]
struct Lsoa {
    name: Option<String>,
    lad19cd: Option<String>,
    lad19nm: Option<String>,
    msoa11cd: Option<String>,
    lad17cd: Option<String>,
    rgn11cd: Option<String>,
    rgn11nm: Option<String>,
    score: Option<f64>,
    rank: Option<i64>,
    decile: Option<i64>,
    pop2015: Option<i64>,
    pop2019: Option<i64>,
}

/// Sets a merged value, refusing two sources that disagree.
fn merge<T: PartialEq + std::fmt::Debug + Clone>(
    slot: &mut Option<T>,
    value: Option<T>,
    file: &str,
    what: &str,
) -> Result<(), RefdataError> {
    if let Some(v) = value {
        match slot {
            Some(old) if *old != v => {
                return Err(format_error(
                    file,
                    format!("{what} is {v:?} here but {old:?} in another file"),
                ));
            }
            _ => *slot = Some(v),
        }
    }
    Ok(())
}

/// The sources found: known files in `dir` and the extra files named.
fn discover(
    dir: &Path,
    options: &LoadOptions,
) -> Result<Vec<(String, PathBuf, &'static Layout)>, RefdataError> {
    let mut found = Vec::new();
    for (rel, kind) in KNOWN {
        let p = dir.join(rel);
        if p.is_file() {
            found.push((rel.to_string(), p, layout(kind)?));
        }
    }
    for (kind, path) in &options.files {
        let name = path.display().to_string();
        found.push((name, path.clone(), layout(kind)?));
    }
    if found.is_empty() {
        return Err(RefdataError::Usage(format!(
            "{} holds none of the reference files (for example imd/imd2019_lsoa11_england.csv); \
             give the directory of the reference data, or name files with --file KIND=PATH",
            dir.display()
        )));
    }
    Ok(found)
}

/// Loads every reference file found in `dir` (and the extra files named) in one
/// transaction, then recomputes every client's area fields.
pub async fn load(
    db: &Database,
    dir: &Path,
    options: &LoadOptions,
) -> Result<LoadReport, RefdataError> {
    if let Some(y) = options.imd_year
        && !IMD_YEARS.contains(&y)
    {
        return Err(RefdataError::Usage(format!(
            "the IMD year must be one of 2004, 2007, 2010 or 2019, not {y}"
        )));
    }
    let found = discover(dir, options)?;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut tx = db.begin().await?;
    let mut report = LoadReport::default();

    let mut lsoas: BTreeMap<String, Lsoa> = BTreeMap::new();
    let mut legacy: Vec<(i64, Vec<LegacyRow>)> = Vec::new();
    let mut lookup: Vec<LookupRow> = Vec::new();
    let mut categories: Vec<Vec<String>> = Vec::new();
    let mut census: Option<(Source, Vec<String>)> = None;
    let mut postcodes_cleared = false;
    let mut cleared: Vec<&'static str> = Vec::new();

    for (name, path, layout) in &found {
        let (source, _) = read_source(path, name, layout, &options.maps)?;
        let file = source.name.clone();
        let f = file.as_str();
        let rows_loaded = source.rows.len() as i64;
        match source.kind {
            "imd2019" | "iod2019_file1" | "iod2019_file6" | "lsoa11_geography" => {
                let fields: Vec<&str> = layout.fields.iter().map(|(f, _)| *f).collect();
                for row in &source.rows {
                    let get = |k: &str| {
                        fields
                            .iter()
                            .position(|f| *f == k)
                            .map(|i| row[i].as_str())
                            .unwrap_or("")
                    };
                    let code = get("lsoa11cd");
                    if code.is_empty() {
                        continue;
                    }
                    let l = lsoas.entry(code.to_string()).or_default();
                    let t = |k: &str| Some(get(k).to_string()).filter(|s| !s.is_empty());
                    merge(
                        &mut l.name,
                        t("lsoa11nm"),
                        f,
                        &format!("the name of {code}"),
                    )?;
                    merge(
                        &mut l.lad19cd,
                        t("lad19cd"),
                        f,
                        &format!("the local authority of {code}"),
                    )?;
                    merge(
                        &mut l.lad19nm,
                        t("lad19nm"),
                        f,
                        &format!("the local authority name of {code}"),
                    )?;
                    merge(
                        &mut l.msoa11cd,
                        t("msoa11cd"),
                        f,
                        &format!("the MSOA of {code}"),
                    )?;
                    merge(
                        &mut l.lad17cd,
                        t("lad17cd"),
                        f,
                        &format!("the 2017 local authority of {code}"),
                    )?;
                    merge(
                        &mut l.rgn11cd,
                        t("rgn11cd"),
                        f,
                        &format!("the region of {code}"),
                    )?;
                    merge(
                        &mut l.rgn11nm,
                        t("rgn11nm"),
                        f,
                        &format!("the region name of {code}"),
                    )?;
                    if let Some(score) = real(f, "imd_score", get("imd_score"))? {
                        l.score = Some(score);
                    }
                    merge(
                        &mut l.rank,
                        int(f, "imd_rank", get("imd_rank"))?,
                        f,
                        &format!("the IMD rank of {code}"),
                    )?;
                    merge(
                        &mut l.decile,
                        int(f, "imd_decile", get("imd_decile"))?,
                        f,
                        &format!("the IMD decile of {code}"),
                    )?;
                    merge(
                        &mut l.pop2015,
                        int(f, "pop_mid2015", get("pop_mid2015"))?,
                        f,
                        &format!("the mid-2015 population of {code}"),
                    )?;
                    merge(
                        &mut l.pop2019,
                        int(f, "pop_mid2019", get("pop_mid2019"))?,
                        f,
                        &format!("the mid-2019 population of {code}"),
                    )?;
                }
            }
            "imd_legacy" => {
                let year = legacy_year(f)?;
                let mut rows = Vec::new();
                for row in &source.rows {
                    let rank = int(f, "imd_rank", &row[2])?
                        .ok_or_else(|| format_error(f, format!("{} has no rank", row[0])))?;
                    let decile = int(f, "imd_decile", &row[3])?
                        .ok_or_else(|| format_error(f, format!("{} has no decile", row[0])))?;
                    rows.push((row[0].clone(), real(f, "imd_score", &row[1])?, rank, decile));
                }
                legacy.retain(|(y, _)| *y != year);
                legacy.push((year, rows));
            }
            "lsoa01_lsoa11" => {
                for row in &source.rows {
                    lookup.push((
                        row[0].clone(),
                        row[1].clone(),
                        row[2].clone(),
                        Some(row[3].clone()).filter(|s| !s.is_empty()),
                    ));
                }
            }
            "postcodes" => {
                if !postcodes_cleared {
                    tx.clear_reference("ref_postcodes").await?;
                    postcodes_cleared = true;
                }
                let mut batch = Vec::with_capacity(5000);
                for row in &source.rows {
                    let pcds = dcrs_domain::types::Postcode::parse(&row[0])
                        .map_err(|_| format_error(f, format!("{:?} is not a postcode", row[0])))?;
                    batch.push(vec![
                        Value::Text(pcds.as_str().to_string()),
                        Value::Text(row[1].clone()),
                        text(&row[2]),
                        text(&row[3]),
                        opt_int(int(f, "usertype", &row[4])?),
                    ]);
                    if batch.len() == 5000 {
                        insert(&mut tx, POSTCODES, &batch).await?;
                        batch.clear();
                    }
                }
                insert(&mut tx, POSTCODES, &batch).await?;
            }
            "lad_region" => {
                let rows: Vec<Vec<Value>> = source
                    .rows
                    .iter()
                    .map(|r| r.iter().map(|v| text(v)).collect())
                    .collect();
                replace(&mut tx, &mut cleared, LAD_REGION, &rows).await?;
            }
            "ltla_utla" => {
                let rows: Vec<Vec<Value>> = source
                    .rows
                    .iter()
                    .map(|r| r.iter().map(|v| text(v)).collect())
                    .collect();
                replace(&mut tx, &mut cleared, LTLA_UTLA, &rows).await?;
            }
            "ethnic_category" => {
                let rows: Vec<Vec<Value>> = source
                    .rows
                    .iter()
                    .map(|r| r.iter().map(|v| text(v)).collect())
                    .collect();
                replace(&mut tx, &mut cleared, ETHNIC_CATEGORY, &rows).await?;
            }
            "census_categories" => categories = source.rows.clone(),
            "census_ethnicity" => {
                let (s, headers) = read_source(path, name, layout, &options.maps)?;
                census = Some((s, headers));
            }
            other => return Err(RefdataError::Usage(format!("no loader for {other}"))),
        }
        report.files.push(LoadedFile {
            file: source.name.clone(),
            kind: source.kind.to_string(),
            sha256: source.sha256.clone(),
            bytes: source.bytes as i64,
            rows: rows_loaded,
            loaded_at: now.clone(),
        });
    }

    // LSOAs and IMD 2019.
    if !lsoas.is_empty() {
        let rows: Vec<Vec<Value>> = lsoas
            .iter()
            .map(|(code, l)| {
                vec![
                    Value::Text(code.clone()),
                    l.name.as_deref().map_or(Value::Null, text),
                    l.lad19cd.as_deref().map_or(Value::Null, text),
                    l.lad19nm.as_deref().map_or(Value::Null, text),
                    l.msoa11cd.as_deref().map_or(Value::Null, text),
                    l.lad17cd.as_deref().map_or(Value::Null, text),
                    l.rgn11cd.as_deref().map_or(Value::Null, text),
                    l.rgn11nm.as_deref().map_or(Value::Null, text),
                    l.score.map_or(Value::Null, Value::Real),
                    opt_int(l.rank),
                    opt_int(l.decile),
                    opt_int(l.pop2015),
                    opt_int(l.pop2019),
                ]
            })
            .collect();
        replace(&mut tx, &mut cleared, LSOA11, &rows).await?;
        let imd: Vec<Vec<Value>> = lsoas
            .iter()
            .filter_map(|(code, l)| {
                let decile = l.decile?;
                Some(vec![
                    Value::Int(2019),
                    Value::Text(code.clone()),
                    l.rank.map_or(Value::Null, |r| Value::Real(r as f64)),
                    Value::Int(decile),
                    Value::Int((decile + 1) / 2),
                ])
            })
            .collect();
        replace_year(&mut tx, 2019, &imd).await?;
    }

    // IMD 2004/2007/2010 on 2011 LSOAs through the best-fit lookup.
    if !lookup.is_empty() {
        let rows: Vec<Vec<Value>> = lookup
            .iter()
            .map(|(a, b, c, d)| {
                vec![
                    text(a),
                    text(b),
                    text(c),
                    d.as_deref().map_or(Value::Null, text),
                ]
            })
            .collect();
        replace(&mut tx, &mut cleared, LSOA01_LSOA11, &rows).await?;
    }
    for (year, rows) in &legacy {
        let imd_rows: Vec<Vec<Value>> = rows
            .iter()
            .map(|(c, s, r, d)| {
                vec![
                    Value::Int(*year),
                    text(c),
                    s.map_or(Value::Null, Value::Real),
                    Value::Int(*r),
                    Value::Int(*d),
                ]
            })
            .collect();
        tx.delete_reference_year("ref_imd_lsoa01", *year).await?;
        insert(&mut tx, IMD_LSOA01, &imd_rows).await?;
        if lookup.is_empty() {
            continue;
        }
        let mapped = legacy_on_2011(rows, &lookup);
        let out: Vec<Vec<Value>> = mapped
            .into_iter()
            .map(|(code, rank, decile)| {
                vec![
                    Value::Int(*year),
                    Value::Text(code),
                    Value::Real(rank),
                    Value::Int(decile),
                    Value::Int((decile + 1) / 2),
                ]
            })
            .collect();
        replace_year(&mut tx, *year, &out).await?;
    }

    // Census counts by local authority, in NHS ethnic categories.
    if let Some((source, headers)) = census {
        if categories.is_empty() {
            return Err(format_error(
                &source.name,
                "the census counts need census/ethnic_group_2011_census_18_categories.csv to map their columns",
            ));
        }
        let geo = headers
            .iter()
            .position(|h| h == "geography code")
            .expect("the layout requires it");
        let mut cats = Vec::new();
        for c in &categories {
            let order = int("census categories", "census2011_order", &c[0])?.unwrap_or(0);
            let col = headers.iter().position(|h| *h == c[3]).ok_or_else(|| {
                format_error(
                    &source.name,
                    format!("there is no column {:?} for census category {}", c[3], c[2]),
                )
            })?;
            cats.push((order, col, c[4].clone()));
        }
        let mut rows = Vec::new();
        for r in &source.rows {
            for (order, col, nhs) in &cats {
                let n = int(&source.name, &headers[*col], &r[*col])?.unwrap_or(0);
                rows.push(vec![
                    Value::Text(r[geo].clone()),
                    Value::Int(*order),
                    Value::Text(nhs.clone()),
                    Value::Int(n),
                ]);
            }
        }
        replace(&mut tx, &mut cleared, CENSUS, &rows).await?;
        let cat_rows: Vec<Vec<Value>> = categories
            .iter()
            .map(|c| {
                vec![
                    Value::Int(c[0].parse().unwrap_or(0)),
                    text(&c[1]),
                    text(&c[2]),
                    text(&c[4]),
                ]
            })
            .collect();
        replace(&mut tx, &mut cleared, CENSUS_CATEGORIES, &cat_rows).await?;
    }

    for f in &report.files {
        tx.record_reference_file(f).await?;
    }
    if let Some(y) = options.imd_year {
        tx.set_setting(IMD_YEAR, &y.to_string()).await?;
    }
    report.imd_year = tx.imd_year().await?;
    // Every stored derived field follows the new reference data.
    tx.derive_client_areas(None).await?;
    tx.audit(&AuditEntry {
        actor: options.actor.clone(),
        action: "refdata.load".into(),
        detail: Some(format!(
            "{{\"files\":{},\"imd_year\":{}}}",
            report.files.len(),
            report.imd_year
        )),
        ..Default::default()
    })
    .await?;
    tx.commit().await?;
    report.tables = db.reference_counts().await?;
    Ok(report)
}

fn legacy_year(file: &str) -> Result<i64, RefdataError> {
    IMD_YEARS
        .iter()
        .copied()
        .find(|y| *y != 2019 && file.contains(&y.to_string()))
        .ok_or_else(|| {
            format_error(
                file,
                "the IMD year (2004, 2007 or 2010) must appear in the file name",
            )
        })
}

/// IMD of each 2011 LSOA from the 2001 LSOAs it was made from. Unchanged and split
/// LSOAs take their one 2001 LSOA's decile; where 2001 LSOAs merged (or were re-fitted
/// irregularly) the mean of their ranks is placed among all 2001 LSOAs' ranks to give
/// the decile. Returns (lsoa11cd, rank, decile).
pub fn legacy_on_2011(rows: &[LegacyRow], lookup: &[LookupRow]) -> Vec<(String, f64, i64)> {
    let by01: HashMap<&str, (i64, i64)> = rows
        .iter()
        .map(|(c, _, r, d)| (c.as_str(), (*r, *d)))
        .collect();
    let n = rows.len() as f64;
    let mut parents: BTreeMap<&str, Vec<(i64, i64)>> = BTreeMap::new();
    for (l01, l11, _, _) in lookup {
        if let Some(v) = by01.get(l01.as_str()) {
            parents.entry(l11.as_str()).or_default().push(*v);
        }
    }
    parents
        .into_iter()
        .map(|(code, ps)| {
            if ps.len() == 1 {
                (code.to_string(), ps[0].0 as f64, ps[0].1)
            } else {
                let mean = ps.iter().map(|p| p.0 as f64).sum::<f64>() / ps.len() as f64;
                let decile = (((mean - 1.0) * 10.0 / n).floor() as i64 + 1).clamp(1, 10);
                (code.to_string(), mean, decile)
            }
        })
        .collect()
}

/// A reference table: name, columns and the kind of each column.
type Table = (&'static str, &'static [&'static str], &'static [FieldKind]);

use FieldKind::{Int as I, Real as R, Text as T};
const LSOA11: Table = (
    "ref_lsoa11",
    &[
        "lsoa11cd",
        "lsoa11nm",
        "lad19cd",
        "lad19nm",
        "msoa11cd",
        "lad17cd",
        "rgn11cd",
        "rgn11nm",
        "imd2019_score",
        "imd2019_rank",
        "imd2019_decile",
        "pop_mid2015",
        "pop_mid2019",
    ],
    &[T, T, T, T, T, T, T, T, R, I, I, I, I],
);
const LSOA11_IMD: Table = (
    "ref_lsoa11_imd",
    &["year", "lsoa11cd", "imd_rank", "imd_decile", "imd_quintile"],
    &[I, T, R, I, I],
);
const IMD_LSOA01: Table = (
    "ref_imd_lsoa01",
    &["year", "lsoa01cd", "imd_score", "imd_rank", "imd_decile"],
    &[I, T, R, I, I],
);
const LSOA01_LSOA11: Table = (
    "ref_lsoa01_lsoa11",
    &["lsoa01cd", "lsoa11cd", "chgind", "lad11cd"],
    &[T, T, T, T],
);
const POSTCODES: Table = (
    "ref_postcodes",
    &["pcds", "lsoa11cd", "dointr", "doterm", "usertype"],
    &[T, T, T, T, I],
);
const LAD_REGION: Table = (
    "ref_lad_region",
    &["lad_cd", "lad_nm", "rgn_cd", "rgn_nm"],
    &[T, T, T, T],
);
const LTLA_UTLA: Table = (
    "ref_ltla_utla",
    &["ltla19cd", "ltla19nm", "utla19cd", "utla19nm"],
    &[T, T, T, T],
);
const ETHNIC_CATEGORY: Table = (
    "ref_ethnic_category",
    &["code", "group_label", "category_label"],
    &[T, T, T],
);
const CENSUS: Table = (
    "ref_census_ethnicity",
    &["lad11cd", "category_order", "nhs_code", "population"],
    &[T, I, T, I],
);
const CENSUS_CATEGORIES: Table = (
    "ref_census_categories",
    &[
        "category_order",
        "group_label",
        "category_label",
        "nhs_code",
    ],
    &[I, T, T, T],
);

async fn insert(tx: &mut StoreTx, table: Table, rows: &[Vec<Value>]) -> Result<(), RefdataError> {
    tx.insert_reference(table.0, table.1, table.2, rows).await?;
    Ok(())
}

async fn replace(
    tx: &mut StoreTx,
    cleared: &mut Vec<&'static str>,
    table: Table,
    rows: &[Vec<Value>],
) -> Result<(), RefdataError> {
    if !cleared.contains(&table.0) {
        tx.clear_reference(table.0).await?;
        cleared.push(table.0);
    }
    insert(tx, table, rows).await
}

async fn replace_year(
    tx: &mut StoreTx,
    year: i64,
    rows: &[Vec<Value>],
) -> Result<(), RefdataError> {
    tx.delete_reference_year(LSOA11_IMD.0, year).await?;
    insert(tx, LSOA11_IMD, rows).await
}
