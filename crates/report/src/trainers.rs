//! One service's figures per health trainer, for the manager's dashboard: the
//! dashboard's episode and session figures with the episode's lead worker, or the
//! session's worker, in place of the service. Counted with the same definitions as the
//! service's own (analytics.md), so a service's trainers add up to the service.

use std::collections::BTreeMap;

use dcrs_domain::codes::Attendance;
use dcrs_store::Database;

use crate::data::{fill, int, rows, text};
use crate::{Period, ReportError};

/// One worker's figures for a period.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrainerFigures {
    /// The worker's reference in the service, such as `W006`.
    pub worker_ref: String,
    /// The worker's name as the service records it.
    pub name: String,
    /// Episodes the worker leads whose first contact falls in the period.
    pub opened: i64,
    /// Full episodes the worker leads closed in the period.
    pub closed_full: i64,
    /// Episodes the worker leads open at the period's end.
    pub open_at_end: i64,
    /// Of those, the ones with neither a first contact nor an attended session in the 90
    /// days before the period's end.
    pub idle: i64,
    /// Sessions the worker held in the period the client attended.
    pub attended: i64,
    /// Sessions the worker held in the period the client did not attend.
    pub did_not_attend: i64,
}

impl TrainerFigures {
    /// Did not attend ÷ (attended + did not attend), or `None` with no such sessions.
    pub fn did_not_attend_rate(&self) -> Option<f64> {
        let n = self.attended + self.did_not_attend;
        (n > 0).then(|| self.did_not_attend as f64 / n as f64)
    }

    fn is_empty(&self) -> bool {
        self.opened + self.closed_full + self.open_at_end + self.attended + self.did_not_attend == 0
    }
}

/// The figures of each worker of the service `service_id` in `period`: every worker
/// in post at some time in the period, and any other with a figure, by name.
pub async fn per_trainer(
    db: &Database,
    service_id: i64,
    period: &Period,
) -> Result<Vec<TrainerFigures>, ReportError> {
    let (from, to) = (period.from, period.to);
    let stale = (to - chrono::Duration::days(90)).to_string();
    let sql = include_str!("sql/trainers.sql").replace("{stale}", &stale);
    let mut by_id: BTreeMap<i64, TrainerFigures> = BTreeMap::new();
    for r in rows(db, fill(&sql, &[service_id], from, to)).await? {
        let Some(id) = int(&r, 0)? else { continue };
        let n = int(&r, 2)?.unwrap_or(0);
        let f = by_id.entry(id).or_default();
        match text(&r, 1)?.as_deref() {
            Some("opened") => f.opened += n,
            Some("closed_full") => f.closed_full += n,
            Some("open") => f.open_at_end += n,
            Some("idle") => f.idle += n,
            Some(code) => match Attendance::parse(code) {
                Some(Attendance::Yes) => f.attended += n,
                Some(Attendance::DidNotAttend) => f.did_not_attend += n,
                _ => {}
            },
            None => {}
        }
    }
    let workers = "SELECT worker_id, worker_ref, display_name, \
         CASE WHEN started_on <= '{to}' AND (left_on IS NULL OR left_on >= '{from}') THEN 1 ELSE 0 END \
         FROM workers WHERE service_id IN ({services})";
    let mut out = Vec::new();
    for r in rows(db, fill(workers, &[service_id], from, to)).await? {
        let id = int(&r, 0)?.unwrap_or_default();
        let in_post = int(&r, 3)? == Some(1);
        let mut f = by_id.remove(&id).unwrap_or_default();
        if in_post || !f.is_empty() {
            f.worker_ref = text(&r, 1)?.unwrap_or_default();
            f.name = text(&r, 2)?.unwrap_or_default();
            out.push(f);
        }
    }
    out.sort_by(|a, b| (&a.name, &a.worker_ref).cmp(&(&b.name, &b.worker_ref)));
    Ok(out)
}
