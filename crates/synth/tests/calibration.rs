//! The national deployment against the published national figures (analytics.md
//! section 9), and the generator's determinism.
//!
//! Every figure is computed independently, straight from the generated CSV files and the
//! reference data files: nothing of the generator is called but `dcrs_synth::generate`.
//! References (`client_ref`, `episode_ref`, ...) are unique only within a service, so
//! every record is keyed by `(service_ref, ref)`.

use dcrs_synth::{Options, Scale, generate};
use flate2::read::GzDecoder;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The thirteen dataset files of the CSV import format.
const DATASET_FILES: [&str; 13] = [
    "organisations.csv",
    "services.csv",
    "service_configurations.csv",
    "workers.csv",
    "clients.csv",
    "referrals.csv",
    "episodes.csv",
    "assessments.csv",
    "plans.csv",
    "goals.csv",
    "sessions.csv",
    "onward_referrals.csv",
    "wider_issues.csv",
];

/// A record's key: `(service_ref, *_ref)`.
type Key = (String, String);

fn refdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

fn key(service: &str, reference: &str) -> Key {
    (service.to_string(), reference.to_string())
}

// ---------------------------------------------------------------------------------
// Reading CSV files
// ---------------------------------------------------------------------------------

/// Calls `f` with the named `columns` of every row, in the order asked for.
fn scan_reader<R: Read>(
    mut reader: csv::Reader<R>,
    name: &str,
    columns: &[&str],
    mut f: impl FnMut(&[&str]),
) {
    let headers = reader
        .headers()
        .unwrap_or_else(|e| panic!("{name}: header: {e}"))
        .clone();
    let index: Vec<usize> = columns
        .iter()
        .map(|c| {
            headers
                .iter()
                .position(|h| h == *c)
                .unwrap_or_else(|| panic!("{name}: no column {c} in {headers:?}"))
        })
        .collect();
    let mut record = csv::StringRecord::new();
    while reader
        .read_record(&mut record)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
    {
        let fields: Vec<&str> = index.iter().map(|i| &record[*i]).collect();
        f(&fields);
    }
}

/// [`scan_reader`] over a plain CSV file.
fn scan(path: &Path, columns: &[&str], f: impl FnMut(&[&str])) {
    let reader = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    scan_reader(reader, &path.display().to_string(), columns, f);
}

/// [`scan_reader`] over a gzip-compressed CSV file.
fn scan_gz(path: &Path, columns: &[&str], f: impl FnMut(&[&str])) {
    let file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let reader = csv::Reader::from_reader(GzDecoder::new(file));
    scan_reader(reader, &path.display().to_string(), columns, f);
}

fn number(text: &str) -> Option<f64> {
    let t = text.trim();
    if t.is_empty() {
        None
    } else {
        Some(
            t.parse()
                .unwrap_or_else(|e| panic!("not a number: {t:?}: {e}")),
        )
    }
}

// ---------------------------------------------------------------------------------
// The generated deployment, as read back from its files
// ---------------------------------------------------------------------------------

struct Client {
    sex: String,
    gp_registered: String,
    postcode: String,
    /// National IMD 2019 quintile; `None` when the postcode is blank or not found.
    quintile: Option<u8>,
}

struct Episode {
    client: Key,
    full: bool,
    closed: bool,
    primary_issue: String,
    attended_sessions: u32,
    /// Height (cm) and weight (kg) at baseline, where recorded.
    baseline: Option<(Option<f64>, Option<f64>)>,
    /// Weight (kg) at exit, where recorded.
    exit: Option<Option<f64>>,
}

impl Episode {
    fn has_outcome_data(&self) -> bool {
        self.baseline.is_some() && self.exit.is_some()
    }

    fn closed_full(&self) -> bool {
        self.full && self.closed
    }
}

/// Per client, their goals with a final status.
#[derive(Default)]
struct Attainment {
    finalised: u32,
    fully: u32,
    fully_or_partly: u32,
}

struct Deployment {
    clients: HashMap<Key, Client>,
    episodes: HashMap<Key, Episode>,
    attainment: HashMap<Key, Attainment>,
    /// Client postcodes that are not blank and not in the postcode lookup.
    unknown_postcodes: HashMap<String, u32>,
}

impl Deployment {
    fn read(dir: &Path, refdata: &Path) -> Deployment {
        let mut clients = read_clients(dir);
        let unknown_postcodes = assign_quintiles(&mut clients, refdata);
        let mut episodes = read_episodes(dir);
        count_attended_sessions(dir, &mut episodes);
        read_assessments(dir, &mut episodes);
        let attainment = read_attainment(dir, &episodes);
        Deployment {
            clients,
            episodes,
            attainment,
            unknown_postcodes,
        }
    }

    fn quintile_of(&self, client: &Key) -> Option<u8> {
        self.clients
            .get(client)
            .unwrap_or_else(|| panic!("episode of unknown client {client:?}"))
            .quintile
    }
}

fn read_clients(dir: &Path) -> HashMap<Key, Client> {
    let mut clients = HashMap::new();
    scan(
        &dir.join("clients.csv"),
        &[
            "service_ref",
            "client_ref",
            "sex",
            "gp_registered",
            "postcode",
        ],
        |f| {
            let c = Client {
                sex: f[2].to_string(),
                gp_registered: f[3].to_string(),
                postcode: f[4].trim().to_uppercase(),
                quintile: None,
            };
            let k = key(f[0], f[1]);
            assert!(clients.insert(k.clone(), c).is_none(), "client {k:?} twice");
        },
    );
    clients
}

/// Puts each client's postcode into its 2011 LSOA and then its IMD 2019 quintile,
/// loading only the postcodes the clients have. Returns the postcodes not found.
fn assign_quintiles(clients: &mut HashMap<Key, Client>, refdata: &Path) -> HashMap<String, u32> {
    let wanted: HashSet<String> = clients
        .values()
        .filter(|c| !c.postcode.is_empty())
        .map(|c| c.postcode.clone())
        .collect();
    let mut lsoa_of: HashMap<String, String> = HashMap::new();
    for part in ["A-K", "L-R", "S-Z"] {
        let path = refdata.join(format!("postcode/postcode_lsoa11_england_{part}.csv.gz"));
        scan_gz(&path, &["pcds", "lsoa11cd"], |f| {
            if wanted.contains(f[0]) {
                lsoa_of.insert(f[0].to_string(), f[1].to_string());
            }
        });
    }
    let mut quintile_of: HashMap<String, u8> = HashMap::new();
    scan(
        &refdata.join("imd/imd2019_lsoa11_england.csv"),
        &["lsoa11cd", "imd_quintile"],
        |f| {
            let q: u8 = f[1].parse().expect("imd_quintile");
            assert!((1..=5).contains(&q), "quintile {q} for {}", f[0]);
            quintile_of.insert(f[0].to_string(), q);
        },
    );
    let mut unknown = HashMap::new();
    for c in clients.values_mut() {
        if c.postcode.is_empty() {
            continue;
        }
        match lsoa_of.get(&c.postcode) {
            Some(lsoa) => {
                let q = quintile_of
                    .get(lsoa)
                    .unwrap_or_else(|| panic!("LSOA {lsoa} not in IMD 2019"));
                c.quintile = Some(*q);
            }
            None => *unknown.entry(c.postcode.clone()).or_insert(0) += 1,
        }
    }
    unknown
}

fn read_episodes(dir: &Path) -> HashMap<Key, Episode> {
    let mut client_of: HashMap<Key, String> = HashMap::new();
    scan(
        &dir.join("referrals.csv"),
        &["service_ref", "referral_ref", "client_ref"],
        |f| {
            client_of.insert(key(f[0], f[1]), f[2].to_string());
        },
    );
    let mut episodes = HashMap::new();
    scan(
        &dir.join("episodes.csv"),
        &[
            "service_ref",
            "episode_ref",
            "referral_ref",
            "kind",
            "closed_on",
            "primary_issue",
        ],
        |f| {
            let referral = key(f[0], f[2]);
            let client = client_of
                .get(&referral)
                .unwrap_or_else(|| panic!("episode {} of unknown referral {referral:?}", f[1]));
            assert!(f[3] == "full" || f[3] == "brief", "episode kind {:?}", f[3]);
            let e = Episode {
                client: key(f[0], client),
                full: f[3] == "full",
                closed: !f[4].trim().is_empty(),
                primary_issue: f[5].to_string(),
                attended_sessions: 0,
                baseline: None,
                exit: None,
            };
            let k = key(f[0], f[1]);
            assert!(
                episodes.insert(k.clone(), e).is_none(),
                "episode {k:?} twice"
            );
        },
    );
    episodes
}

fn count_attended_sessions(dir: &Path, episodes: &mut HashMap<Key, Episode>) {
    scan(
        &dir.join("sessions.csv"),
        &["service_ref", "episode_ref", "attended"],
        |f| {
            if f[2] == "yes" {
                let k = key(f[0], f[1]);
                episodes
                    .get_mut(&k)
                    .unwrap_or_else(|| panic!("session of unknown episode {k:?}"))
                    .attended_sessions += 1;
            }
        },
    );
}

fn read_assessments(dir: &Path, episodes: &mut HashMap<Key, Episode>) {
    scan(
        &dir.join("assessments.csv"),
        &[
            "service_ref",
            "episode_ref",
            "occasion",
            "height_cm",
            "weight_kg",
        ],
        |f| {
            let k = key(f[0], f[1]);
            let e = episodes
                .get_mut(&k)
                .unwrap_or_else(|| panic!("assessment of unknown episode {k:?}"));
            match f[2] {
                "baseline" => {
                    assert!(e.baseline.is_none(), "two baselines in {k:?}");
                    e.baseline = Some((number(f[3]), number(f[4])));
                }
                "exit" => {
                    assert!(e.exit.is_none(), "two exits in {k:?}");
                    e.exit = Some(number(f[4]));
                }
                "follow_up" => {}
                other => panic!("assessment occasion {other:?}"),
            }
        },
    );
}

/// Goals with a final status (anything but `open`), grouped by client through
/// goal → plan → episode → referral → client.
fn read_attainment(dir: &Path, episodes: &HashMap<Key, Episode>) -> HashMap<Key, Attainment> {
    let mut episode_of: HashMap<Key, String> = HashMap::new();
    scan(
        &dir.join("plans.csv"),
        &["service_ref", "plan_ref", "episode_ref"],
        |f| {
            episode_of.insert(key(f[0], f[1]), f[2].to_string());
        },
    );
    let mut attainment: HashMap<Key, Attainment> = HashMap::new();
    scan(
        &dir.join("goals.csv"),
        &["service_ref", "plan_ref", "status"],
        |f| {
            if f[2] == "open" {
                return;
            }
            let plan = key(f[0], f[1]);
            let episode = episode_of
                .get(&plan)
                .unwrap_or_else(|| panic!("goal of unknown plan {plan:?}"));
            let e = episodes
                .get(&key(f[0], episode))
                .unwrap_or_else(|| panic!("plan {plan:?} of unknown episode {episode}"));
            let a = attainment.entry(e.client.clone()).or_default();
            a.finalised += 1;
            match f[2] {
                "fully_achieved" => {
                    a.fully += 1;
                    a.fully_or_partly += 1;
                }
                "partly_achieved" => a.fully_or_partly += 1,
                "not_achieved" | "abandoned" => {}
                other => panic!("goal status {other:?}"),
            }
        },
    );
    attainment
}

// ---------------------------------------------------------------------------------
// Figures and checks
// ---------------------------------------------------------------------------------

/// The figures computed so far, printed as they come, and the ones out of tolerance.
#[derive(Default)]
struct Report {
    failures: Vec<String>,
}

impl Report {
    /// A proportion `hits / n` that should be `target_pct` ± `tol_pp` percentage points.
    fn share(&mut self, name: &str, hits: usize, n: usize, target_pct: f64, tol_pp: f64) {
        assert!(n > 0, "{name}: no cases");
        let pct = 100.0 * hits as f64 / n as f64;
        let ok = (pct - target_pct).abs() <= tol_pp;
        println!(
            "{} {name}: {pct:.2}% ({hits} of n = {n}); target {target_pct}% ± {tol_pp}pp",
            mark(ok)
        );
        if !ok {
            self.failures.push(format!(
                "{name} = {pct:.2}% (n = {n}) is outside {target_pct}% ± {tol_pp}pp"
            ));
        }
    }

    /// A mean (or other value) that should be `target` ± `tol`.
    fn near(&mut self, name: &str, value: f64, n: usize, target: f64, tol: f64) {
        let ok = (value - target).abs() <= tol;
        println!(
            "{} {name}: {value:.3} (n = {n}); target {target} ± {tol}",
            mark(ok)
        );
        if !ok {
            self.failures.push(format!(
                "{name} = {value:.3} (n = {n}) is outside {target} ± {tol}"
            ));
        }
    }

    /// A value that should lie in `lo..=hi`.
    fn between(&mut self, name: &str, value: f64, n: usize, lo: f64, hi: f64) {
        let ok = (lo..=hi).contains(&value);
        println!(
            "{} {name}: {value:.3} (n = {n}); target {lo} to {hi} inclusive",
            mark(ok)
        );
        if !ok {
            self.failures.push(format!(
                "{name} = {value:.3} (n = {n}) is outside {lo} to {hi} inclusive"
            ));
        }
    }

    fn assert_all_within(&self) {
        assert!(
            self.failures.is_empty(),
            "calibration figures out of tolerance:\n  {}",
            self.failures.join("\n  ")
        );
    }
}

fn mark(ok: bool) -> &'static str {
    if ok { "ok  " } else { "FAIL" }
}

fn mean(values: &[f64]) -> f64 {
    assert!(!values.is_empty(), "mean of nothing");
    values.iter().sum::<f64>() / values.len() as f64
}

fn median(values: &[f64]) -> f64 {
    assert!(!values.is_empty(), "median of nothing");
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// Figure 1: Share of clients from IMD 2019 national quintiles 1–2, among clients whose
/// postcode is found in the postcode → LSOA lookup (blank and unknown postcodes,
/// e.g. `ZZ99 3VZ`, are left out): 69% ± 2pp.
fn check_deprivation_reach(d: &Deployment, r: &mut Report) {
    let known: Vec<u8> = d.clients.values().filter_map(|c| c.quintile).collect();
    let q12 = known.iter().filter(|q| **q <= 2).count();
    let blank = d.clients.values().filter(|c| c.postcode.is_empty()).count();
    let unknown: u32 = d.unknown_postcodes.values().sum();
    let mut top: Vec<(&String, &u32)> = d.unknown_postcodes.iter().collect();
    top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    println!(
        "     clients: {}; postcode blank {blank}, not found {unknown} ({} distinct; most common {:?}), quintile known {}",
        d.clients.len(),
        d.unknown_postcodes.len(),
        &top[..top.len().min(3)],
        known.len()
    );
    let by_quintile: Vec<usize> = (1..=5)
        .map(|q| known.iter().filter(|x| **x == q).count())
        .collect();
    println!("     clients by quintile 1..5: {by_quintile:?}");
    r.share(
        "1. clients from quintiles 1-2 (known quintile)",
        q12,
        known.len(),
        69.0,
        2.0,
    );
}

/// Figure 2: Not registered with a GP (`gp_registered = no`), share of all clients: 7% ± 2pp.
/// Figure 3: Women (`sex = female`), share of all clients: 59% ± 2pp.
fn check_client_mix(d: &Deployment, r: &mut Report) {
    let n = d.clients.len();
    let no_gp = d
        .clients
        .values()
        .filter(|c| c.gp_registered == "no")
        .count();
    r.share("2. clients not registered with a GP", no_gp, n, 7.0, 2.0);
    let women = d.clients.values().filter(|c| c.sex == "female").count();
    r.share("3. clients who are women", women, n, 59.0, 2.0);
}

/// Figure 4: Primary issue, share of all episodes (full and brief): diet 55% ± 2pp, physical
/// activity 23% ± 2pp.
fn check_primary_issue(d: &Deployment, r: &mut Report) {
    let n = d.episodes.len();
    let count = |issue: &str| {
        d.episodes
            .values()
            .filter(|e| e.primary_issue == issue)
            .count()
    };
    r.share(
        "4a. episodes with primary issue diet",
        count("diet"),
        n,
        55.0,
        2.0,
    );
    r.share(
        "4b. episodes with primary issue physical_activity",
        count("physical_activity"),
        n,
        23.0,
        2.0,
    );
}

/// Figure 5: Attended sessions (`attended = yes`, whatever their purpose or date) per closed
/// full episode (`kind = full`, `closed_on` not blank), counting episodes with none:
/// the median and the mean both lie in 6 to 8 inclusive.
fn check_sessions(d: &Deployment, r: &mut Report) {
    let counts: Vec<f64> = d
        .episodes
        .values()
        .filter(|e| e.closed_full())
        .map(|e| f64::from(e.attended_sessions))
        .collect();
    r.between(
        "5a. median attended sessions per closed full episode",
        median(&counts),
        counts.len(),
        6.0,
        8.0,
    );
    r.between(
        "5b. mean attended sessions per closed full episode",
        mean(&counts),
        counts.len(),
        6.0,
        8.0,
    );
}

/// Figure 6: Goal attainment per client, over goals with a final status (`status` not `open`),
/// among clients with at least one such goal: "fully" when all their finalised goals
/// are `fully_achieved` (47% ± 2pp); "partly" when not fully but at least one is
/// `fully_achieved` or `partly_achieved` (23% ± 2pp).
fn check_goal_attainment(d: &Deployment, r: &mut Report) {
    let n = d.attainment.len();
    let fully = d
        .attainment
        .values()
        .filter(|a| a.fully == a.finalised)
        .count();
    let partly = d
        .attainment
        .values()
        .filter(|a| a.fully < a.finalised && a.fully_or_partly > 0)
        .count();
    let goals: u32 = d.attainment.values().map(|a| a.finalised).sum();
    println!("     finalised goals: {goals}");
    r.share("6a. plan clients fully achieving", fully, n, 47.0, 2.0);
    r.share("6b. plan clients partly achieving", partly, n, 23.0, 2.0);
}

/// Figure 7: Weight-focused episodes: full episodes whose primary issue is `diet` or `weight`
/// with a baseline assessment giving height and weight. Baseline BMI = weight_kg /
/// (height_cm / 100)²: mean 34 ± 0.2. Fall in BMI = baseline BMI − exit weight_kg /
/// (baseline height_cm / 100)², among those with an exit weight too: mean 1.8 ± 0.2.
fn check_bmi(d: &Deployment, r: &mut Report) {
    let weight_focused = d
        .episodes
        .values()
        .filter(|e| e.full && (e.primary_issue == "diet" || e.primary_issue == "weight"));
    let mut baseline_bmi = Vec::new();
    let mut fall = Vec::new();
    let mut baseline_without_measures = 0;
    for e in weight_focused {
        let Some(baseline) = e.baseline else { continue };
        let (Some(height), Some(weight)) = baseline else {
            baseline_without_measures += 1;
            continue;
        };
        let m2 = (height / 100.0).powi(2);
        let bmi = weight / m2;
        baseline_bmi.push(bmi);
        if let Some(Some(exit_weight)) = e.exit {
            fall.push(bmi - exit_weight / m2);
        }
    }
    println!("     weight-focused baselines without height or weight: {baseline_without_measures}");
    r.near(
        "7a. mean baseline BMI, weight-focused episodes",
        mean(&baseline_bmi),
        baseline_bmi.len(),
        34.0,
        0.2,
    );
    r.near(
        "7b. mean fall in BMI baseline to exit, weight-focused episodes",
        mean(&fall),
        fall.len(),
        1.8,
        0.2,
    );
}

/// Figure 8: Outcome data present (the episode has both a baseline and an exit assessment)
/// among closed full episodes, by the client's national quintile (unknown left out):
/// quintile 5 45% ± 2pp, quintiles 1–4 29% ± 2pp.
fn check_outcome_data(d: &Deployment, r: &mut Report) {
    let mut q5 = (0, 0);
    let mut q1to4 = (0, 0);
    let mut unknown = 0;
    for e in d.episodes.values().filter(|e| e.closed_full()) {
        let group = match d.quintile_of(&e.client) {
            Some(5) => &mut q5,
            Some(_) => &mut q1to4,
            None => {
                unknown += 1;
                continue;
            }
        };
        group.1 += 1;
        if e.has_outcome_data() {
            group.0 += 1;
        }
    }
    println!("     closed full episodes with quintile unknown: {unknown}");
    r.share(
        "8a. outcome data present, closed full episodes, quintile 5",
        q5.0,
        q5.1,
        45.0,
        2.0,
    );
    r.share(
        "8b. outcome data present, closed full episodes, quintiles 1-4",
        q1to4.0,
        q1to4.1,
        29.0,
        2.0,
    );
}

// ---------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------

#[test]
fn national_deployment_meets_the_published_figures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = Options {
        seed: 1,
        scale: Some(Scale {
            services: 10,
            clients: 50_000,
        }),
    };
    let started = Instant::now();
    let summary = generate(&refdata(), dir.path(), &options).expect("generate");
    println!(
        "generated {} services in {:.1}s: {:?}",
        summary.services.len(),
        started.elapsed().as_secs_f64(),
        summary.rows
    );

    let started = Instant::now();
    let d = Deployment::read(dir.path(), &refdata());
    println!(
        "read back {} clients and {} episodes in {:.1}s",
        d.clients.len(),
        d.episodes.len(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(d.clients.len(), 50_000, "clients written");

    let mut r = Report::default();
    check_deprivation_reach(&d, &mut r);
    check_client_mix(&d, &mut r);
    check_primary_issue(&d, &mut r);
    check_sessions(&d, &mut r);
    check_goal_attainment(&d, &mut r);
    check_bmi(&d, &mut r);
    check_outcome_data(&d, &mut r);
    r.assert_all_within();
}

/// The files of a generated deployment, by name.
fn files_of(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| {
            let e = e.expect("dir entry");
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).expect("read"))
        })
        .collect();
    files.sort();
    files
}

fn generate_small(seed: u64, dir: &Path) {
    let options = Options {
        seed,
        scale: Some(Scale {
            services: 2,
            clients: 3_000,
        }),
    };
    generate(&refdata(), dir, &options).expect("generate");
}

#[test]
fn same_seed_same_bytes_other_seed_other_clients() {
    let (a, b, c) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    generate_small(7, a.path());
    generate_small(7, b.path());
    generate_small(8, c.path());

    let first = files_of(a.path());
    let second = files_of(b.path());
    let names: Vec<&str> = first.iter().map(|(n, _)| n.as_str()).collect();
    for expected in DATASET_FILES.iter().chain(&["scenario.json"]) {
        assert!(
            names.contains(expected),
            "{expected} not written: {names:?}"
        );
    }
    assert_eq!(
        names,
        second.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        "the two runs with seed 7 wrote different sets of files"
    );
    for ((name, x), (_, y)) in first.iter().zip(&second) {
        assert!(
            x == y,
            "{name} differs between two runs with seed 7 ({} and {} bytes)",
            x.len(),
            y.len()
        );
    }

    let clients_7 = std::fs::read(a.path().join("clients.csv")).expect("read");
    let clients_8 = std::fs::read(c.path().join("clients.csv")).expect("read");
    assert_ne!(
        clients_7, clients_8,
        "clients.csv is the same for seeds 7 and 8"
    );
}
