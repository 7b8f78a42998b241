//! FHIR export: one R4 Bundle per client (`dcrs_fhir::client_bundle`), written as
//! `<bundle id>.json` so that no reference has to become a file name, with `index.csv`
//! saying which file is which client.

use dcrs_store::Database;
use std::path::Path;

/// What a FHIR export wrote.
#[derive(Debug, Clone, Default)]
pub struct FhirSummary {
    /// Bundles (clients).
    pub bundles: u64,
    /// Resources across all bundles.
    pub resources: u64,
}

/// Clients read per round trip.
const PAGE: i64 = 200;

/// The bundle of one client of a service, or `None` when there is no such client.
pub async fn client_fhir(
    db: &Database,
    service_ref: &str,
    client_ref: &str,
    timestamp: &str,
) -> Result<Option<dcrs_fhir::types::Bundle>, dcrs_store::StoreError> {
    let Some((service_id, name)) = service(db, service_ref).await? else {
        return Ok(None);
    };
    let id: Option<i64> = sqlx::query_scalar(
        "SELECT client_id FROM clients WHERE service_id = $1 AND client_ref = $2",
    )
    .bind(service_id)
    .bind(client_ref.to_string())
    .fetch_optional(db.pool())
    .await?;
    let Some(id) = id else { return Ok(None) };
    let info = dcrs_fhir::ServiceInfo {
        service_ref: service_ref.to_string(),
        name,
    };
    Ok(db
        .client_bundles(service_id, &[id])
        .await?
        .first()
        .map(|b| dcrs_fhir::client_bundle(b, &info, timestamp)))
}

async fn service(
    db: &Database,
    service_ref: &str,
) -> Result<Option<(i64, String)>, dcrs_store::StoreError> {
    Ok(
        sqlx::query_as("SELECT service_id, name FROM services WHERE service_ref = $1")
            .bind(service_ref.to_string())
            .fetch_optional(db.pool())
            .await?,
    )
}

/// Writes every client's bundle into `dir` (created if needed).
pub async fn export_fhir(
    db: &Database,
    dir: &Path,
    timestamp: &str,
) -> Result<FhirSummary, crate::ExportError> {
    let io = |e| crate::ExportError::Io(dir.display().to_string(), e);
    std::fs::create_dir_all(dir).map_err(io)?;
    let services: Vec<(i64, String, String)> =
        sqlx::query_as("SELECT service_id, service_ref, name FROM services ORDER BY service_ref")
            .fetch_all(db.pool())
            .await
            .map_err(dcrs_store::StoreError::from)?;
    let mut index = String::from("service_ref,client_ref,file,resources\n");
    let mut summary = FhirSummary::default();
    for (service_id, service_ref, name) in services {
        let info = dcrs_fhir::ServiceInfo {
            service_ref: service_ref.clone(),
            name,
        };
        let mut after: Option<String> = None;
        loop {
            let page = db.client_page(service_id, after.as_deref(), PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.1.clone());
            let ids: Vec<i64> = page.iter().map(|(id, _)| *id).collect();
            let mut bundles = db.client_bundles(service_id, &ids).await?;
            bundles.sort_by(|a, b| a.client.client_ref.cmp(&b.client.client_ref));
            for b in &bundles {
                let bundle = dcrs_fhir::client_bundle(b, &info, timestamp);
                let file = format!("{}.json", bundle.id);
                let text = serde_json::to_string_pretty(&bundle).expect("plain data");
                std::fs::write(dir.join(&file), text).map_err(io)?;
                index.push_str(&format!(
                    "{},{},{file},{}\n",
                    csv_field(&service_ref),
                    csv_field(&b.client.client_ref),
                    bundle.entry.len()
                ));
                summary.bundles += 1;
                summary.resources += bundle.entry.len() as u64;
            }
        }
    }
    std::fs::write(dir.join("index.csv"), index).map_err(io)?;
    Ok(summary)
}

fn csv_field(v: &str) -> String {
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_string()
    }
}
