//! FHIR export of a generated service: every client's Bundle validates with an external
//! validator (the PyPI package `fhir.resources`, its R4B models), on both backends. In CI
//! `.ci/run` installs it; elsewhere, without it, the test is reported skipped by name.

use chrono::NaiveDate;
use dcrs_exchange::{ImportOptions, export_fhir, import_dir};
use dcrs_testkit::each_backend;
use std::io::Write;
use std::path::Path;

const TEST: &str = "fhir_export_validates";

#[tokio::test]
async fn every_exported_bundle_validates_with_fhir_resources() {
    if !dcrs_testkit::python_module(TEST, "fhir.resources") {
        return;
    }
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    let data = tempfile::tempdir().unwrap();
    dcrs_synth::generate(
        &shared,
        data.path(),
        &dcrs_synth::Options {
            seed: 12,
            scale: Some(dcrs_synth::Scale {
                services: 1,
                clients: 60,
            }),
        },
    )
    .unwrap();
    each_backend!("exchange_fhir_export", |t| {
        let options = ImportOptions {
            dry_run: false,
            today: NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
            rules: Default::default(),
            actor: "test".into(),
            only_new: false,
        };
        let report = import_dir(&t.db, data.path(), &options, |_| {})
            .await
            .unwrap();
        assert!(
            report.rejections.is_empty(),
            "{:?}",
            &report.rejections[..1]
        );
        let out = tempfile::tempdir().unwrap();
        let summary = export_fhir(&t.db, out.path(), "2026-11-26T12:00:00Z")
            .await
            .unwrap();
        let clients: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM clients")
            .fetch_one(t.db.pool())
            .await
            .unwrap();
        assert_eq!(summary.bundles as i64, clients, "a bundle per client");
        let index = std::fs::read_to_string(out.path().join("index.csv")).unwrap();
        assert_eq!(index.lines().count() as i64, clients + 1);

        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fhir_validate.py");
        let run = std::process::Command::new("python3")
            .arg(script)
            .arg(out.path())
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let result: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
        let _ = writeln!(
            std::io::stderr(),
            "{TEST}: {} bundles, {} resources validated; by type {}; controls {}",
            result["bundles"],
            result["resources"],
            result["by_type"],
            result["controls"]
        );
        assert_eq!(result["errors"], serde_json::json!([]), "invalid bundles");
        assert_eq!(result["bundles"].as_u64(), Some(summary.bundles));
        assert_eq!(result["resources"].as_u64(), Some(summary.resources));
        for kind in [
            "Patient",
            "EpisodeOfCare",
            "ServiceRequest",
            "Encounter",
            "Observation",
            "CarePlan",
            "Goal",
        ] {
            assert!(
                result["by_type"][kind].as_u64().unwrap_or(0) > 0,
                "no {kind}"
            );
        }
        for (control, was_caught) in result["controls"].as_object().unwrap() {
            assert_eq!(
                was_caught, true,
                "the validator let a broken bundle through: {control}"
            );
        }
    });
}
