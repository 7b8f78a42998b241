//! Times `dcrs report pack` as a whole process (start, connect, every query, disclosure
//! control of every document, writing the JSON) on each database given, several runs
//! each, and prints the figures. Not a test; not run in CI.
//!
//! ```sh
//! cargo build --release -p dcrs-cli -p dcrs-bench
//! target/release/dcrs-bench-report 2010-11Q3 sqlite:///tmp/m1.db postgres://postgres@127.0.0.1/m1
//! ```
//!
//! The first argument is the quarter; the rest are database addresses holding the same
//! deployment (load one with `dcrs demo --clients 1000000`). Each run reports sections
//! 1–6 for every service plus all services (`--each-service`); a second line per
//! database leaves out data quality (section 6), which the target is set for.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

const RUNS: usize = 3;

fn dcrs() -> PathBuf {
    let me = std::env::current_exe().expect("the benchmark knows where it is");
    me.with_file_name("dcrs")
}

fn time(url: &str, period: &str, kind: &str) -> anyhow::Result<Vec<f64>> {
    let out = tempfile::tempdir()?;
    let mut times = Vec::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        let status = Command::new(dcrs())
            .args([
                "--database",
                url,
                "report",
                kind,
                "--each-service",
                "--period",
                period,
            ])
            .arg("--out")
            .arg(out.path().join("pack.json"))
            .stdout(std::process::Stdio::null())
            .status()?;
        anyhow::ensure!(status.success(), "dcrs report failed on {url}");
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(times)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (period, urls) = args
        .split_first()
        .ok_or_else(|| anyhow::anyhow!("usage: dcrs-bench-report QUARTER DATABASE_URL..."))?;
    println!("dcrs report, every service plus all services, {period}, {RUNS} runs each");
    let mut baseline = None;
    for url in urls {
        let name = url.split(':').next().unwrap_or(url);
        for kind in ["pack", "sections 1-5"] {
            let times = if kind == "pack" {
                time(url, period, "pack")?
            } else {
                // Sections 1-5: the five reports one after another, summed per run.
                let mut sum = vec![0.0; RUNS];
                for k in ["activity", "reach", "outcomes", "pathway", "workforce"] {
                    for (s, t) in sum.iter_mut().zip(time(url, period, k)?) {
                        *s += t;
                    }
                }
                sum.sort_by(f64::total_cmp);
                sum
            };
            let median = times[RUNS / 2];
            let base = *baseline.get_or_insert(median);
            println!(
                "{name:<9} {kind:<13} min {:>6.2} s  median {median:>6.2} s  ({:.2}x the first line)",
                times[0],
                median / base
            );
        }
    }
    Ok(())
}
