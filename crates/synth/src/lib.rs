//! Synthetic health trainer deployments, written in the CSV import format.
//!
//! With no size, [`generate`] writes the six-service demonstration scenario (A–F, FY
//! 2006-07 to 2012-13; analytics.md section 9) and `scenario.json`, the truth about
//! every scripted change so the drift detector can be checked against it. With a size,
//! it writes a national deployment calibrated to the published national figures. Every
//! name in the output is obviously synthetic, and the same seed and reference data give
//! the same bytes.

pub mod geo;
pub mod model;
pub mod national;
mod out;
pub mod rng;
pub mod scenario;

use chrono::NaiveDate;
use dcrs_domain::Entity;
use geo::Geography;
use model::{Measure, ServiceGen, ServicePlan, delivery_model, quarter_label};
use rng::Rng;
use serde_json::{Value, json};
use std::path::Path;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error("reference data file {file}: {reason}")]
    Refdata { file: String, reason: String },
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
    #[error("{0}")]
    Options(String),
}

impl SynthError {
    fn io(path: &Path, e: impl std::fmt::Display) -> Self {
        SynthError::Io {
            path: path.display().to_string(),
            reason: e.to_string(),
        }
    }
}

/// The size of a national deployment.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    pub services: u32,
    pub clients: u64,
}

impl Scale {
    /// From the command line's optional sizes: services default to one per 5,000
    /// clients, clients to 5,000 per service.
    pub fn from_options(
        services: Option<u32>,
        clients: Option<u64>,
    ) -> Result<Option<Scale>, SynthError> {
        let s = match (services, clients) {
            (None, None) => return Ok(None),
            (Some(s), Some(c)) => Scale {
                services: s,
                clients: c,
            },
            (Some(s), None) => Scale {
                services: s,
                clients: u64::from(s) * 5000,
            },
            (None, Some(c)) => Scale {
                services: c.div_ceil(5000).clamp(1, 300) as u32,
                clients: c,
            },
        };
        if s.services == 0 || s.clients == 0 {
            return Err(SynthError::Options(
                "--services and --clients must be at least 1".into(),
            ));
        }
        if u64::from(s.services) > s.clients {
            return Err(SynthError::Options(format!(
                "{} services cannot share {} clients; ask for at least one client per service",
                s.services, s.clients
            )));
        }
        Ok(Some(s))
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct Options {
    pub seed: u64,
    /// `None`: the six-service scenario.
    pub scale: Option<Scale>,
}

/// What was written.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Service reference and name.
    pub services: Vec<(String, String)>,
    pub rows: Vec<(Entity, u64)>,
    pub scenario: bool,
}

/// The first of the synthetic NHS numbers (9xx xxx xxxx: outside the ranges issued in
/// England, valid under the modulus-11 check).
const NHS_BASE: u64 = 900_000_000;

/// Writes a complete dataset into `out_dir` (created if needed) and `scenario.json`.
pub fn generate(refdata: &Path, out_dir: &Path, options: &Options) -> Result<Summary, SynthError> {
    let mut geo = Geography::load(refdata)?;
    let root = Rng::new(options.seed);
    let (plans, end) = match options.scale {
        None => (scenario::services(&geo)?, scenario::END),
        Some(s) => (
            national::services(&geo, &mut root.fork(0x4E41), s.services, s.clients),
            national::END,
        ),
    };
    let end = NaiveDate::parse_from_str(end, "%Y-%m-%d").expect("date");
    let mut lads: Vec<usize> = plans
        .iter()
        .flat_map(|p| p.lads.iter().copied().chain(p.neighbour))
        .collect();
    lads.sort();
    lads.dedup();
    geo.load_postcodes(refdata, &lads)?;
    let mut out = out::Out::create(out_dir)?;
    let mut nhs = NHS_BASE;
    for (i, p) in plans.iter().enumerate() {
        let mut g = ServiceGen::new(p, &geo, end, root.fork(i as u64 + 1), nhs);
        g.write_service(&mut out)?;
        g.write_clients(&mut out)?;
        nhs = g.nhs_next();
    }
    let rows = out.finish()?;
    let truth = truth(&geo, &plans, options, end, &rows);
    let path = out_dir.join("scenario.json");
    let text = serde_json::to_string_pretty(&truth).expect("json") + "\n";
    std::fs::write(&path, text).map_err(|e| SynthError::io(&path, e))?;
    Ok(Summary {
        services: plans
            .iter()
            .map(|p| (p.service_ref.clone(), p.name.clone()))
            .collect(),
        rows,
        scenario: options.scale.is_none(),
    })
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn fingerprint_json(f: &[(Measure, f64)]) -> Value {
    let mut m = serde_json::Map::new();
    for (k, v) in f {
        m.insert(k.name().into(), json!(round3(*v)));
    }
    Value::Object(m)
}

/// `scenario.json`: the services with their intended fingerprints and every scripted
/// change (docs/generator.md describes the schema).
fn truth(
    geo: &Geography,
    plans: &[ServicePlan],
    options: &Options,
    end: NaiveDate,
    rows: &[(Entity, u64)],
) -> Value {
    let services: Vec<Value> = plans
        .iter()
        .map(|p| {
            let mut local = p.base.local_worker;
            let start = p.intended(geo, &p.base, &p.base_config, local);
            let mut changes = Vec::new();
            let mut last = start.clone();
            for c in &p.changes {
                let before_b = p.behaviour_on(c.starts.pred_opt().expect("date"));
                let before_cfg = p.config_on(c.starts.pred_opt().expect("date"));
                let before = p.intended(geo, &before_b, before_cfg, local);
                local = c.behaviour.local_worker;
                let after = p.intended(geo, &c.behaviour, p.config_on(c.starts), local);
                let moves: Vec<Value> = before
                    .iter()
                    .filter_map(|(m, b)| {
                        let a = after.iter().find(|x| x.0 == *m).map(|x| x.1)?;
                        ((a - b).abs() > 0.0005).then(|| {
                            json!({"measure": m.name(), "before": round3(*b), "after": round3(a)})
                        })
                    })
                    .collect();
                let full = c
                    .starts
                    .checked_add_months(chrono::Months::new(3 * c.ramp_quarters.saturating_sub(1)))
                    .expect("date");
                changes.push(json!({
                    "id": c.id,
                    "quarter": quarter_label(c.starts),
                    "starts_on": c.starts.to_string(),
                    "ramp_quarters": c.ramp_quarters,
                    "complete_in_quarter": quarter_label(full),
                    "recorded": c.config.is_some(),
                    "configuration_ref": ServiceGen::configuration_ref(p, c),
                    "description": c.description,
                    "moves": moves,
                }));
                last = after;
            }
            let areas: Vec<Value> = p
                .lads
                .iter()
                .map(|l| json!({"lad19cd": geo.lads[*l].code, "name": geo.lads[*l].name}))
                .collect();
            json!({
                "service_ref": p.service_ref,
                "name": p.name,
                "description": p.description,
                "areas_served": areas,
                "neighbour": p.neighbour.map(|n| geo.lads[n].code.clone()),
                "started_on": p.started.to_string(),
                "start_model": delivery_model(&start),
                "end_model": delivery_model(&last),
                "start_fingerprint": fingerprint_json(&start),
                "end_fingerprint": fingerprint_json(&last),
                "changes": changes,
            })
        })
        .collect();
    let counts: serde_json::Map<String, Value> = rows
        .iter()
        .map(|(e, n)| (e.file_name().to_string(), json!(n)))
        .collect();
    json!({
        "synthetic": true,
        "note": "SYNTHETIC DATA made by dcrs generate: no real people, services or workers.",
        "kind": if options.scale.is_some() { "national" } else { "six_service_scenario" },
        "seed": options.seed,
        "period": {"to": end.to_string()},
        "reference_files": geo.files,
        "rows": counts,
        "services": services,
    })
}
