//! The real geography the generator places clients in, read from the reference data
//! directory (`../shared/data` layout): 2011 LSOAs with their 2019 local authority,
//! IMD 2019 quintile and mid-2015 population; residential postcodes of each LSOA;
//! 2011 Census ethnic groups by local authority; and local authority centroids (from
//! postcode district centroids) to find a neighbouring authority.

use crate::SynthError;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// A 2011 LSOA.
#[derive(Debug, Clone)]
pub struct Lsoa {
    pub code: String,
    /// Index into [`Geography::lads`].
    pub lad: usize,
    /// IMD 2019 rank (1 = most deprived).
    pub rank: u32,
    /// National IMD 2019 quintile, 1 = most deprived.
    pub quintile: u8,
    /// Mid-2015 population (IoD2019 denominator).
    pub pop: f64,
    /// Residential postcodes, eight bytes each, space padded.
    pub postcodes: Vec<[u8; 8]>,
}

/// A 2019 local authority district.
#[derive(Debug, Clone)]
pub struct Lad {
    pub code: String,
    pub name: String,
    /// Indices into [`Geography::lsoas`], in file order.
    pub lsoas: Vec<usize>,
    /// Mean British National Grid position of its postcode districts.
    pub centroid: Option<(f64, f64)>,
    /// 2011 Census population by NHS ethnic category code, when the census has the area.
    pub ethnic: Vec<(&'static str, f64)>,
}

/// The areas and postcodes loaded.
#[derive(Debug, Default)]
pub struct Geography {
    pub lsoas: Vec<Lsoa>,
    pub lads: Vec<Lad>,
    by_lad: HashMap<String, usize>,
    /// The files read, relative to the reference data directory.
    pub files: Vec<String>,
}

const IMD: &str = "imd/imd2019_lsoa11_england.csv";
const CENSUS: &str = "census/census2011_ethnic_group_by_la_ew.csv";
const CENSUS_CATEGORIES: &str = "census/ethnic_group_2011_census_18_categories.csv";
const CENTROIDS: &str = "postcode/postcode_district_centroids_gb.csv";
const POSTCODES: [&str; 3] = [
    "postcode/postcode_lsoa11_england_A-K.csv.gz",
    "postcode/postcode_lsoa11_england_L-R.csv.gz",
    "postcode/postcode_lsoa11_england_S-Z.csv.gz",
];

/// NHS ethnic category codes in a fixed order, for the census mapping.
const NHS_CODES: [&str; 16] = [
    "A", "B", "C", "D", "E", "F", "G", "H", "J", "K", "L", "M", "N", "P", "R", "S",
];

fn open(dir: &Path, rel: &str) -> Result<csv::Reader<Box<dyn Read>>, SynthError> {
    let path: PathBuf = dir.join(rel);
    let file = std::fs::File::open(&path).map_err(|e| SynthError::Refdata {
        file: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let reader: Box<dyn Read> = if rel.ends_with(".gz") {
        Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
            1 << 16,
            file,
        )))
    } else {
        Box::new(BufReader::new(file))
    };
    Ok(csv::ReaderBuilder::new().from_reader(reader))
}

fn bad(file: &str, reason: impl std::fmt::Display) -> SynthError {
    SynthError::Refdata {
        file: file.to_string(),
        reason: reason.to_string(),
    }
}

fn column(headers: &csv::StringRecord, file: &str, name: &str) -> Result<usize, SynthError> {
    headers
        .iter()
        .position(|h| h.trim_start_matches('\u{feff}') == name)
        .ok_or_else(|| bad(file, format!("has no column `{name}`")))
}

impl Geography {
    /// Reads every LSOA and local authority, the census ethnic groups and the centroids.
    /// Postcodes are read separately, for the authorities in use ([`Self::load_postcodes`]).
    pub fn load(dir: &Path) -> Result<Self, SynthError> {
        let mut g = Geography::default();
        let mut r = open(dir, IMD)?;
        let h = r.headers().map_err(|e| bad(IMD, e))?.clone();
        let [lsoa, lad, ladnm, rank, quint, pop] = [
            "lsoa11cd",
            "lad19cd",
            "lad19nm",
            "imd_rank",
            "imd_quintile",
            "pop_mid2015",
        ]
        .map(|n| column(&h, IMD, n));
        let (lsoa, lad, ladnm, rank, quint, pop) = (lsoa?, lad?, ladnm?, rank?, quint?, pop?);
        for row in r.records() {
            let row = row.map_err(|e| bad(IMD, e))?;
            let lad_code = &row[lad];
            let li = match g.by_lad.get(lad_code) {
                Some(i) => *i,
                None => {
                    g.lads.push(Lad {
                        code: lad_code.to_string(),
                        name: row[ladnm].to_string(),
                        lsoas: Vec::new(),
                        centroid: None,
                        ethnic: Vec::new(),
                    });
                    g.by_lad.insert(lad_code.to_string(), g.lads.len() - 1);
                    g.lads.len() - 1
                }
            };
            let num = |i: usize| -> Result<f64, SynthError> {
                row[i].parse::<f64>().map_err(|_| {
                    bad(
                        IMD,
                        format!("{}: `{}` is not a number", &row[lsoa], &row[i]),
                    )
                })
            };
            g.lads[li].lsoas.push(g.lsoas.len());
            g.lsoas.push(Lsoa {
                code: row[lsoa].to_string(),
                lad: li,
                rank: num(rank)? as u32,
                quintile: num(quint)? as u8,
                pop: num(pop)?,
                postcodes: Vec::new(),
            });
        }
        g.files.push(IMD.into());
        g.load_census(dir)?;
        g.load_centroids(dir)?;
        Ok(g)
    }

    fn load_census(&mut self, dir: &Path) -> Result<(), SynthError> {
        let mut r = open(dir, CENSUS_CATEGORIES)?;
        let h = r.headers().map_err(|e| bad(CENSUS_CATEGORIES, e))?.clone();
        let col = column(&h, CENSUS_CATEGORIES, "nomis_column")?;
        let code = column(&h, CENSUS_CATEGORIES, "nhs_ethnic_category_2001")?;
        let mut mapping: Vec<(String, &'static str)> = Vec::new();
        for row in r.records() {
            let row = row.map_err(|e| bad(CENSUS_CATEGORIES, e))?;
            let nhs = NHS_CODES
                .iter()
                .find(|c| **c == &row[code])
                .ok_or_else(|| {
                    bad(
                        CENSUS_CATEGORIES,
                        format!("unknown NHS code `{}`", &row[code]),
                    )
                })?;
            mapping.push((row[col].to_string(), nhs));
        }
        let mut r = open(dir, CENSUS)?;
        let h = r.headers().map_err(|e| bad(CENSUS, e))?.clone();
        let area = column(&h, CENSUS, "geography code")?;
        let cols: Vec<(usize, &'static str)> = mapping
            .iter()
            .map(|(name, nhs)| column(&h, CENSUS, name).map(|i| (i, *nhs)))
            .collect::<Result<_, _>>()?;
        for row in r.records() {
            let row = row.map_err(|e| bad(CENSUS, e))?;
            let Some(li) = self.by_lad.get(&row[area]).copied() else {
                continue;
            };
            let mut counts: Vec<(&'static str, f64)> =
                NHS_CODES.iter().map(|c| (*c, 0.0)).collect();
            for (i, nhs) in &cols {
                let n: f64 = row[*i].trim().replace(',', "").parse().unwrap_or(0.0);
                counts
                    .iter_mut()
                    .find(|(c, _)| c == nhs)
                    .expect("mapped code")
                    .1 += n;
            }
            self.lads[li].ethnic = counts;
        }
        self.files.push(CENSUS.into());
        self.files.push(CENSUS_CATEGORIES.into());
        Ok(())
    }

    fn load_centroids(&mut self, dir: &Path) -> Result<(), SynthError> {
        let mut r = open(dir, CENTROIDS)?;
        let h = r.headers().map_err(|e| bad(CENTROIDS, e))?.clone();
        let [n, e, no, lad] = ["n_postcodes", "easting", "northing", "modal_lad_cd"]
            .map(|c| column(&h, CENTROIDS, c));
        let (n, e, no, lad) = (n?, e?, no?, lad?);
        let mut sums: HashMap<usize, (f64, f64, f64)> = HashMap::new();
        for row in r.records() {
            let row = row.map_err(|x| bad(CENTROIDS, x))?;
            let Some(li) = self.by_lad.get(&row[lad]).copied() else {
                continue;
            };
            let (Ok(w), Ok(x), Ok(y)) = (
                row[n].parse::<f64>(),
                row[e].parse::<f64>(),
                row[no].parse::<f64>(),
            ) else {
                continue;
            };
            let s = sums.entry(li).or_default();
            s.0 += w;
            s.1 += w * x;
            s.2 += w * y;
        }
        for (li, (w, x, y)) in sums {
            if w > 0.0 {
                self.lads[li].centroid = Some((x / w, y / w));
            }
        }
        self.files.push(CENTROIDS.into());
        Ok(())
    }

    /// Reads the residential postcodes of the LSOAs of `lads`: postcodes of small users
    /// that existed by April 2006 and were still live in April 2013 (any postcode of the
    /// LSOA when none is). Every LSOA of these authorities ends up with at least one.
    pub fn load_postcodes(&mut self, dir: &Path, lads: &[usize]) -> Result<(), SynthError> {
        let mut wanted: HashMap<&str, usize> = HashMap::new();
        for li in lads {
            for i in &self.lads[*li].lsoas {
                wanted.insert(self.lsoas[*i].code.as_str(), *i);
            }
        }
        let mut preferred: Vec<Vec<[u8; 8]>> = vec![Vec::new(); self.lsoas.len()];
        let mut fallback: Vec<Vec<[u8; 8]>> = vec![Vec::new(); self.lsoas.len()];
        for rel in POSTCODES {
            let path = dir.join(rel);
            let file = std::fs::File::open(&path).map_err(|e| bad(rel, e))?;
            let mut reader = BufReader::with_capacity(
                1 << 16,
                flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 16, file)),
            );
            let mut line = String::new();
            reader.read_line(&mut line).map_err(|e| bad(rel, e))?;
            if !line.starts_with("pcds,lsoa11cd,dointr,doterm,usertype") {
                return Err(bad(
                    rel,
                    "expected the columns pcds,lsoa11cd,dointr,doterm,usertype",
                ));
            }
            loop {
                line.clear();
                if reader.read_line(&mut line).map_err(|e| bad(rel, e))? == 0 {
                    break;
                }
                let mut parts = line.trim_end().split(',');
                let (Some(pcds), Some(lsoa), Some(intro), Some(term), Some(user)) = (
                    parts.next(),
                    parts.next(),
                    parts.next(),
                    parts.next(),
                    parts.next(),
                ) else {
                    continue;
                };
                let Some(i) = wanted.get(lsoa).copied() else {
                    continue;
                };
                if pcds.len() > 8 {
                    continue;
                }
                let mut code = [b' '; 8];
                code[..pcds.len()].copy_from_slice(pcds.as_bytes());
                let live = intro <= "200604" && (term.is_empty() || term >= "201304");
                if user == "0" && live {
                    preferred[i].push(code);
                } else {
                    fallback[i].push(code);
                }
            }
            self.files.push(rel.to_string());
        }
        let mut indices: Vec<usize> = wanted.into_values().collect();
        indices.sort();
        for i in &indices {
            let list = if preferred[*i].is_empty() {
                std::mem::take(&mut fallback[*i])
            } else {
                std::mem::take(&mut preferred[*i])
            };
            if list.is_empty() {
                return Err(bad(
                    POSTCODES[0],
                    format!("no postcode found for LSOA {}", self.lsoas[*i].code),
                ));
            }
            self.lsoas[*i].postcodes = list;
        }
        Ok(())
    }

    /// The local authority with this code.
    pub fn lad(&self, code: &str) -> Result<usize, SynthError> {
        self.by_lad
            .get(code)
            .copied()
            .ok_or_else(|| bad(IMD, format!("has no local authority {code}")))
    }

    /// The nearest other local authority by centroid, if centroids are known.
    pub fn neighbour(&self, li: usize) -> Option<usize> {
        let (x, y) = self.lads[li].centroid?;
        self.lads
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != li)
            .filter_map(|(j, l)| {
                l.centroid
                    .map(|(a, b)| (j, (a - x).powi(2) + (b - y).powi(2)))
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(j, _)| j)
    }

    /// Population of each national quintile (index 0 = quintile 1) in an authority.
    pub fn quintile_population(&self, li: usize) -> [f64; 5] {
        let mut out = [0.0; 5];
        for i in &self.lads[li].lsoas {
            let l = &self.lsoas[*i];
            out[usize::from(l.quintile - 1)] += l.pop;
        }
        out
    }
}

/// Text of a padded postcode.
pub fn postcode_text(code: &[u8; 8]) -> &str {
    std::str::from_utf8(code).unwrap_or("").trim_end()
}
