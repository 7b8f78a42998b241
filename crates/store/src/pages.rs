//! The reads behind the web pages, each a named query returning a named row type, so
//! that handlers hold no SQL and a page's cost can be read (and its plan checked) in one
//! place. Every query is scoped to one service; the caller has authorised it.

use crate::{Database, StoreResult, WriteQuery as _};

/// An episode with what the capture flows and its page show of it.
#[derive(Debug, Clone)]
pub struct EpisodeRow {
    pub episode_ref: String,
    pub referral_ref: String,
    pub lead_worker_ref: String,
    pub lead_worker_name: String,
    pub kind: String,
    pub first_contact_on: String,
    pub primary_issue: String,
    pub closed_on: Option<String>,
    pub exit_reason: Option<String>,
    pub client_ref: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
}

/// A goal of an episode's plan.
#[derive(Debug, Clone)]
pub struct GoalRow {
    pub goal_ref: String,
    pub plan_ref: String,
    pub domain: String,
    pub description: String,
    pub target_on: Option<String>,
    pub status: String,
    pub status_on: Option<String>,
}

/// An open episode of a caseload, with the dates that make work due.
#[derive(Debug, Clone)]
pub struct CaseRow {
    pub episode_ref: String,
    pub client_ref: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub kind: String,
    pub first_contact_on: String,
    pub last_attended_on: Option<String>,
    pub plan_agreed_on: Option<String>,
    pub review_sessions: i64,
    /// The earliest target date of the episode's open goals.
    pub earliest_target_on: Option<String>,
}

/// A closed full episode whose follow-up assessment is due.
#[derive(Debug, Clone)]
pub struct FollowUpRow {
    pub episode_ref: String,
    pub client_ref: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub closed_on: String,
}

/// A draft a person saved to finish later.
#[derive(Debug, Clone)]
pub struct DraftRow {
    pub draft_id: i64,
    pub flow: String,
    pub subject_ref: String,
    pub updated_at: String,
}

/// A client found by a search.
#[derive(Debug, Clone)]
pub struct ClientHit {
    pub client_ref: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub date_of_birth: String,
}

/// A dated line of an episode's record (an assessment, a session…) with its codes.
#[derive(Debug, Clone)]
pub struct EpisodeEvent {
    /// The record's own reference.
    pub reference: String,
    pub on: String,
    /// The record's codes, in the order the page names them.
    pub codes: Vec<Option<String>>,
    /// A number it carries (an assessment's BMI).
    pub number: Option<f64>,
}

/// Whose caseload: one health trainer's (as lead worker), or the whole service's.
#[derive(Debug, Clone, Copy)]
pub enum Whose<'a> {
    /// The episodes a worker leads.
    Worker(&'a str),
    /// Every open episode of the service.
    Service,
}

/// A condition on the client `c` of a worklist: their processing is not restricted
/// (restricted clients stay stored but leave the worklists; see `docs/governance.md`).
const UNRESTRICTED: &str = "NOT EXISTS (SELECT 1 FROM restrictions x \
     WHERE x.service_id = c.service_id AND x.client_ref = c.client_ref)";

impl Database {
    /// One episode of a service, by its reference.
    pub async fn episode_row(
        &self,
        service_id: i64,
        episode_ref: &str,
    ) -> StoreResult<Option<EpisodeRow>> {
        type Row = (
            String,
            String,
            String,
            String,
            String,
            String,
            String,
            Option<String>,
            Option<String>,
            String,
            Option<String>,
            Option<String>,
        );
        let row: Option<Row> = sqlx::query_as(
            "SELECT e.episode_ref, r.referral_ref, w.worker_ref, w.display_name, e.kind, e.first_contact_on, \
             e.primary_issue, e.closed_on, e.exit_reason, c.client_ref, c.given_name, c.family_name \
             FROM episodes e \
             JOIN referrals r ON r.service_id = e.service_id AND r.referral_id = e.referral_id \
             JOIN workers w ON w.service_id = e.service_id AND w.worker_id = e.lead_worker_id \
             JOIN clients c ON c.service_id = r.service_id AND c.client_id = r.client_id \
             WHERE e.service_id = $1 AND e.episode_ref = $2",
        )
        .bind(service_id)
        .bind(episode_ref.to_string())
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| EpisodeRow {
            episode_ref: r.0,
            referral_ref: r.1,
            lead_worker_ref: r.2,
            lead_worker_name: r.3,
            kind: r.4,
            first_contact_on: r.5,
            primary_issue: r.6,
            closed_on: r.7,
            exit_reason: r.8,
            client_ref: r.9,
            given_name: r.10,
            family_name: r.11,
        }))
    }

    /// The goals of an episode's plans, by reference.
    pub async fn episode_goals(
        &self,
        service_id: i64,
        episode_ref: &str,
    ) -> StoreResult<Vec<GoalRow>> {
        type Row = (
            String,
            String,
            String,
            String,
            Option<String>,
            String,
            Option<String>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT g.goal_ref, p.plan_ref, g.domain, g.description, g.target_on, g.status, g.status_on \
             FROM goals g JOIN plans p ON p.service_id = g.service_id AND p.plan_id = g.plan_id \
             JOIN episodes e ON e.service_id = p.service_id AND e.episode_id = p.episode_id \
             WHERE e.service_id = $1 AND e.episode_ref = $2 ORDER BY g.goal_ref",
        )
        .bind(service_id)
        .bind(episode_ref.to_string())
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| GoalRow {
                goal_ref: r.0,
                plan_ref: r.1,
                domain: r.2,
                description: r.3,
                target_on: r.4,
                status: r.5,
                status_on: r.6,
            })
            .collect())
    }

    /// A client's reference and name, by reference.
    pub async fn client_name(
        &self,
        service_id: i64,
        client_ref: &str,
    ) -> StoreResult<Option<(String, Option<String>, Option<String>)>> {
        Ok(sqlx::query_as(
            "SELECT client_ref, given_name, family_name FROM clients WHERE service_id = $1 AND client_ref = $2",
        )
        .bind(service_id)
        .bind(client_ref.to_string())
        .fetch_optional(self.pool())
        .await?)
    }

    /// The client's latest recorded height, for working out a BMI before it is saved.
    pub async fn latest_height(
        &self,
        service_id: i64,
        client_ref: &str,
    ) -> StoreResult<Option<f64>> {
        Ok(sqlx::query_scalar::<_, Option<f64>>(
            "SELECT a.height_cm FROM assessments a JOIN episodes e ON e.service_id = a.service_id AND e.episode_id = a.episode_id \
             JOIN referrals r ON r.service_id = e.service_id AND r.referral_id = e.referral_id \
             JOIN clients c ON c.service_id = r.service_id AND c.client_id = r.client_id \
             WHERE a.service_id = $1 AND c.client_ref = $2 AND a.height_cm IS NOT NULL \
             ORDER BY a.assessed_on DESC LIMIT 1",
        )
        .bind(service_id)
        .bind(client_ref.to_string())
        .fetch_optional(self.pool())
        .await?
        .flatten())
    }

    /// Where a postcode is: its 2011 LSOA, the LSOA's local authority name and its IMD
    /// quintile in `imd_year`, from the reference data.
    pub async fn postcode_area(
        &self,
        postcode: &str,
        imd_year: i64,
    ) -> StoreResult<Option<(String, Option<String>, Option<i64>)>> {
        Ok(sqlx::query_as(
            "SELECT p.lsoa11cd, l.lad19nm, i.imd_quintile FROM ref_postcodes p \
             LEFT JOIN ref_lsoa11 l ON l.lsoa11cd = p.lsoa11cd \
             LEFT JOIN ref_lsoa11_imd i ON i.lsoa11cd = p.lsoa11cd AND i.year = $2 WHERE p.pcds = $1",
        )
        .bind(postcode.to_string())
        .bind(imd_year)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Workers of a service who have not left: (reference, name), by name.
    pub async fn current_workers(&self, service_id: i64) -> StoreResult<Vec<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT worker_ref, display_name FROM workers WHERE service_id = $1 AND left_on IS NULL ORDER BY display_name",
        )
        .bind(service_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// The open episodes of a caseload, oldest first contact first (at most 200), each
    /// with the dates that make work due. A worker's caseload is found through the
    /// open-episode index by lead worker, not by reading the whole service's.
    pub async fn caseload(&self, service_id: i64, whose: Whose<'_>) -> StoreResult<Vec<CaseRow>> {
        type Row = (
            String,
            String,
            Option<String>,
            Option<String>,
            String,
            String,
            Option<String>,
            Option<String>,
            i64,
            Option<String>,
        );
        // The episode summary (kept up to date on every write) gives the last attended
        // session, the plan and its reviews without reading every session; the earliest
        // open goal's target is read for these episodes alone: from the episode's plans
        // to their goals (CROSS JOIN keeps SQLite to that order; left to itself it read
        // every goal of the service for each episode, 1.6 ms against 0.03 ms).
        const COLUMNS: &str = "SELECT e.episode_ref, c.client_ref, c.given_name, c.family_name, e.kind, e.first_contact_on, \
             es.last_attended_on, es.plan_agreed_on, es.review_sessions, \
             (SELECT MIN(g.target_on) FROM plans p CROSS JOIN goals g \
              WHERE g.service_id = p.service_id AND g.plan_id = p.plan_id \
              AND p.service_id = e.service_id AND p.episode_id = e.episode_id AND g.status = 'open') \
             FROM episodes e \
             JOIN episode_summaries es ON es.service_id = e.service_id AND es.episode_id = e.episode_id \
             JOIN referrals r ON r.service_id = e.service_id AND r.referral_id = e.referral_id \
             JOIN clients c ON c.service_id = r.service_id AND c.client_id = r.client_id";
        let rows: Vec<Row> = match whose {
            Whose::Worker(worker_ref) => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "{COLUMNS} JOIN workers w ON w.service_id = e.service_id AND w.worker_id = e.lead_worker_id \
                     WHERE e.service_id = $1 AND w.worker_ref = $2 AND e.closed_on IS NULL \
                     AND {UNRESTRICTED} ORDER BY e.first_contact_on LIMIT 200"
                )))
                .bind(service_id)
                .bind(worker_ref.to_string())
                .fetch_all(self.pool())
                .await?
            }
            Whose::Service => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "{COLUMNS} WHERE e.service_id = $1 AND e.closed_on IS NULL \
                     AND {UNRESTRICTED} ORDER BY e.first_contact_on LIMIT 200"
                )))
                .bind(service_id)
                .fetch_all(self.pool())
                .await?
            }
        };
        Ok(rows
            .into_iter()
            .map(|r| CaseRow {
                episode_ref: r.0,
                client_ref: r.1,
                given_name: r.2,
                family_name: r.3,
                kind: r.4,
                first_contact_on: r.5,
                last_attended_on: r.6,
                plan_agreed_on: r.7,
                review_sessions: r.8,
                earliest_target_on: r.9,
            })
            .collect())
    }

    /// Full episodes closed between two dates with no follow-up assessment yet (at most
    /// 100, earliest closed first), of clients whose processing is not restricted.
    pub async fn follow_ups_due(
        &self,
        service_id: i64,
        whose: Whose<'_>,
        closed_from: &str,
        closed_to: &str,
    ) -> StoreResult<Vec<FollowUpRow>> {
        let worker = match whose {
            Whose::Worker(w) => w.to_string(),
            Whose::Service => String::new(),
        };
        let rows: Vec<FollowUpTuple> = sqlx::query_as(
            // Through the episode summaries' index by closing date: the episodes closed
            // in the window, not every episode of the service.
            "SELECT e.episode_ref, c.client_ref, c.given_name, c.family_name, es.closed_on FROM episode_summaries es \
             JOIN episodes e ON e.service_id = es.service_id AND e.episode_id = es.episode_id \
             JOIN clients c ON c.service_id = es.service_id AND c.client_id = es.client_id \
             JOIN workers w ON w.service_id = e.service_id AND w.worker_id = e.lead_worker_id \
             WHERE es.service_id = $1 AND es.kind = 'full' AND es.closed_on >= $3 AND es.closed_on <= $4 \
             AND ($2 = '' OR w.worker_ref = $2) \
             AND NOT EXISTS (SELECT 1 FROM assessments a WHERE a.service_id = e.service_id AND a.episode_id = e.episode_id AND a.occasion = 'follow_up') \
             AND NOT EXISTS (SELECT 1 FROM restrictions x WHERE x.service_id = c.service_id AND x.client_ref = c.client_ref) \
             ORDER BY es.closed_on LIMIT 100",
        )
        .bind(service_id)
        .bind(worker)
        .bind(closed_from.to_string())
        .bind(closed_to.to_string())
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| FollowUpRow {
                episode_ref: r.0,
                client_ref: r.1,
                given_name: r.2,
                family_name: r.3,
                closed_on: r.4,
            })
            .collect())
    }

    /// Clients of a service whose name holds the text, whose reference is it, or whose
    /// date of birth it is (at most 50, by name).
    pub async fn find_clients(&self, service_id: i64, text: &str) -> StoreResult<Vec<ClientHit>> {
        let like = format!("%{}%", text.to_lowercase());
        let rows: Vec<(String, Option<String>, Option<String>, String)> = sqlx::query_as(
            "SELECT client_ref, given_name, family_name, date_of_birth FROM clients WHERE service_id = $1 AND \
             (LOWER(COALESCE(given_name, '') || ' ' || COALESCE(family_name, '')) LIKE $2 OR LOWER(client_ref) = $3 OR date_of_birth = $4) \
             ORDER BY family_name, given_name LIMIT 50",
        )
        .bind(service_id)
        .bind(like)
        .bind(text.to_lowercase())
        .bind(text.to_string())
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| ClientHit {
                client_ref: r.0,
                given_name: r.1,
                family_name: r.2,
                date_of_birth: r.3,
            })
            .collect())
    }

    /// A person's drafts in a service, latest first.
    pub async fn drafts(&self, user_id: i64, service_id: i64) -> StoreResult<Vec<DraftRow>> {
        let rows: Vec<(i64, String, String, String)> = sqlx::query_as(
            "SELECT draft_id, flow, subject_ref, updated_at FROM drafts WHERE user_id = $1 AND service_id = $2 ORDER BY updated_at DESC",
        )
        .bind(user_id)
        .bind(service_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| DraftRow {
                draft_id: r.0,
                flow: r.1,
                subject_ref: r.2,
                updated_at: r.3,
            })
            .collect())
    }

    /// A draft's saved values (JSON), if it is the person's and in the service.
    pub async fn draft_values(
        &self,
        draft_id: i64,
        user_id: i64,
        service_id: i64,
    ) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT field_values FROM drafts WHERE draft_id = $1 AND user_id = $2 AND service_id = $3",
        )
        .bind(draft_id)
        .bind(user_id)
        .bind(service_id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Where a person's draft belongs: (service reference, flow, subject reference).
    pub async fn draft_place(
        &self,
        draft_id: i64,
        user_id: i64,
    ) -> StoreResult<Option<(String, String, String)>> {
        Ok(sqlx::query_as(
            "SELECT s.service_ref, d.flow, d.subject_ref FROM drafts d JOIN services s ON s.service_id = d.service_id \
             WHERE d.draft_id = $1 AND d.user_id = $2",
        )
        .bind(draft_id)
        .bind(user_id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Saves a draft's values: replaces the person's draft `draft_id`, or adds one.
    pub async fn save_draft(
        &self,
        draft_id: Option<i64>,
        draft: DraftOf<'_>,
        values_json: String,
        now: String,
    ) -> StoreResult<()> {
        let DraftOf {
            user_id,
            service_id,
            flow,
            subject_ref,
        } = draft;
        match draft_id {
            Some(id) => {
                sqlx::query("UPDATE drafts SET field_values = $1, updated_at = $2 WHERE draft_id = $3 AND user_id = $4")
                    .bind(values_json)
                    .bind(now)
                    .bind(id)
                    .bind(user_id)
                    .execute_write(self)
                    .await?;
            }
            None => {
                sqlx::query(
                    "INSERT INTO drafts (user_id, service_id, flow, subject_ref, field_values, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(user_id)
                .bind(service_id)
                .bind(flow.to_string())
                .bind(subject_ref.to_string())
                .bind(values_json)
                .bind(now)
                .execute_write(self)
                .await?;
            }
        }
        Ok(())
    }

    /// Removes a person's draft (once what it held is saved).
    pub async fn delete_draft(&self, draft_id: i64, user_id: i64) -> StoreResult<()> {
        sqlx::query("DELETE FROM drafts WHERE draft_id = $1 AND user_id = $2")
            .bind(draft_id)
            .bind(user_id)
            .execute_write(self)
            .await?;
        Ok(())
    }

    /// The dated records of an episode of one kind, oldest first, with their codes: an
    /// assessment's occasion (and its BMI), a session's purpose, mode and whether the
    /// client came, an onward referral's action, destination and outcome, a wider
    /// issue.
    pub async fn episode_events(
        &self,
        service_id: i64,
        episode_ref: &str,
        kind: EventKind,
    ) -> StoreResult<Vec<EpisodeEvent>> {
        let (table, own, date, codes, number) = match kind {
            EventKind::Assessment => (
                "assessments",
                "assessment_ref",
                "assessed_on",
                &["occasion"][..],
                "bmi",
            ),
            EventKind::Plan => ("plans", "plan_ref", "agreed_on", &[][..], "NULL"),
            EventKind::Session => (
                "sessions",
                "session_ref",
                "held_on",
                &["purpose", "mode", "attended"][..],
                "NULL",
            ),
            EventKind::Onward => (
                "onward_referrals",
                "onward_ref",
                "made_on",
                &["action", "destination", "outcome"][..],
                "NULL",
            ),
            EventKind::WiderIssue => (
                "wider_issues",
                "wider_issue_ref",
                "noted_on",
                &["issue"][..],
                "NULL",
            ),
        };
        let mut cols = vec![format!("x.{own}"), format!("x.{date}")];
        cols.extend(codes.iter().map(|c| format!("x.{c}")));
        while cols.len() < 5 {
            cols.push("CAST(NULL AS TEXT)".into());
        }
        cols.push(if number == "NULL" {
            "CAST(NULL AS REAL)".into()
        } else {
            // The column as it is: a cast's type reads as single precision.
            format!("x.{number}")
        });
        let rows: Vec<EventTuple> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {} FROM {table} x JOIN episodes e ON e.service_id = x.service_id AND e.episode_id = x.episode_id \
                 WHERE e.service_id = $1 AND e.episode_ref = $2 ORDER BY x.{date}",
                cols.join(", ")
            )))
            .bind(service_id)
            .bind(episode_ref.to_string())
            .fetch_all(self.pool())
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| EpisodeEvent {
                reference: r.0,
                on: r.1,
                codes: [r.2, r.3, r.4].into_iter().take(codes.len()).collect(),
                number: r.5,
            })
            .collect())
    }
}

/// Whose draft, and of what: the person, the service, the form and the record it is
/// about.
#[derive(Debug, Clone, Copy)]
pub struct DraftOf<'a> {
    pub user_id: i64,
    pub service_id: i64,
    pub flow: &'a str,
    pub subject_ref: &'a str,
}

/// A follow-up due as read: episode, client, names, closing date.
type FollowUpTuple = (String, String, Option<String>, Option<String>, String);

/// An event as read: reference, date, up to three codes, a number.
type EventTuple = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<f64>,
);

/// The kinds of dated record an episode page lists.
#[derive(Debug, Clone, Copy)]
pub enum EventKind {
    Assessment,
    Plan,
    Session,
    Onward,
    WiderIssue,
}

/// One page of a long list: its number (from 1) and how many rows a page holds.
#[derive(Debug, Clone, Copy)]
pub struct ListPage {
    pub number: i64,
    pub size: i64,
}

impl ListPage {
    /// The rows before this page.
    pub fn offset(&self) -> i64 {
        (self.number.max(1) - 1) * self.size
    }
}

/// A client as the service's client list shows them.
#[derive(Debug, Clone)]
pub struct ClientListRow {
    pub client_ref: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub date_of_birth: String,
    pub postcode: Option<String>,
}

/// A client as their record page shows them.
#[derive(Debug, Clone)]
pub struct ClientRecordRow {
    pub client_ref: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub date_of_birth: String,
    pub sex: String,
    pub postcode: Option<String>,
    pub nhs_number: Option<String>,
    pub lad_cd: Option<String>,
    /// The local authority's name, where the reference data are loaded.
    pub lad_name: Option<String>,
    pub imd_quintile: Option<i64>,
}

/// One of a client's episodes, as their record page lists it.
#[derive(Debug, Clone)]
pub struct ClientEpisodeRow {
    pub episode_ref: String,
    pub kind: String,
    pub first_contact_on: String,
    pub closed_on: Option<String>,
}

/// An audit entry as a service's audit trail shows it.
#[derive(Debug, Clone)]
pub struct AuditTrailRow {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub record_ref: Option<String>,
    pub detail: Option<String>,
}

impl Database {
    /// One page of a service's clients by family name, and how many clients it has.
    pub async fn client_list(
        &self,
        service_id: i64,
        page: ListPage,
    ) -> StoreResult<(Vec<ClientListRow>, i64)> {
        type Row = (
            String,
            Option<String>,
            Option<String>,
            String,
            Option<String>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT client_ref, given_name, family_name, date_of_birth, postcode FROM clients \
             WHERE service_id = $1 ORDER BY family_name, given_name, client_ref LIMIT $2 OFFSET $3",
        )
        .bind(service_id)
        .bind(page.size)
        .bind(page.offset())
        .fetch_all(self.pool())
        .await?;
        let (total,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM clients WHERE service_id = $1")
            .bind(service_id)
            .fetch_one(self.pool())
            .await?;
        let rows = rows
            .into_iter()
            .map(|r| ClientListRow {
                client_ref: r.0,
                given_name: r.1,
                family_name: r.2,
                date_of_birth: r.3,
                postcode: r.4,
            })
            .collect();
        Ok((rows, total))
    }

    /// One client of a service, by reference, with their area.
    pub async fn client_record(
        &self,
        service_id: i64,
        client_ref: &str,
    ) -> StoreResult<Option<ClientRecordRow>> {
        type Row = (
            String,
            Option<String>,
            Option<String>,
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<i64>,
        );
        let row: Option<Row> = sqlx::query_as(
            "SELECT c.client_ref, c.given_name, c.family_name, c.date_of_birth, c.sex, c.postcode, c.nhs_number, \
             c.lad_cd, l.lad_nm, c.imd_quintile FROM clients c LEFT JOIN ref_lad_region l ON l.lad_cd = c.lad_cd \
             WHERE c.service_id = $1 AND c.client_ref = $2",
        )
        .bind(service_id)
        .bind(client_ref.to_string())
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| ClientRecordRow {
            client_ref: r.0,
            given_name: r.1,
            family_name: r.2,
            date_of_birth: r.3,
            sex: r.4,
            postcode: r.5,
            nhs_number: r.6,
            lad_cd: r.7,
            lad_name: r.8,
            imd_quintile: r.9,
        }))
    }

    /// A client's episodes, earliest first contact first.
    pub async fn client_episodes(
        &self,
        service_id: i64,
        client_ref: &str,
    ) -> StoreResult<Vec<ClientEpisodeRow>> {
        let rows: Vec<(String, String, String, Option<String>)> = sqlx::query_as(
            "SELECT e.episode_ref, e.kind, e.first_contact_on, e.closed_on FROM episodes e \
             JOIN referrals x ON x.service_id = e.service_id AND x.referral_id = e.referral_id \
             JOIN clients c ON c.service_id = x.service_id AND c.client_id = x.client_id \
             WHERE c.service_id = $1 AND c.client_ref = $2 ORDER BY e.first_contact_on",
        )
        .bind(service_id)
        .bind(client_ref.to_string())
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| ClientEpisodeRow {
                episode_ref: r.0,
                kind: r.1,
                first_contact_on: r.2,
                closed_on: r.3,
            })
            .collect())
    }

    /// The latest `limit` audit entries about a service, newest first (through the
    /// index by service and id: the newest are read first, nothing is sorted).
    pub async fn audit_trail(
        &self,
        service_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<AuditTrailRow>> {
        type Row = (String, String, String, Option<String>, Option<String>);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT at, actor, action, record_ref, detail FROM audit_log WHERE service_id = $1 \
             ORDER BY audit_id DESC LIMIT $2",
        )
        .bind(service_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| AuditTrailRow {
                at: r.0,
                actor: r.1,
                action: r.2,
                record_ref: r.3,
                detail: r.4,
            })
            .collect())
    }

    /// The latest day a referral was received in any of these services (ISO), the day
    /// the report pages take their default year from.
    pub async fn latest_referral_on(&self, service_ids: &[i64]) -> StoreResult<Option<String>> {
        self.referral_day("MAX", service_ids).await
    }

    /// The first day a referral was received in any of these services (ISO), where the
    /// report pages' list of periods starts.
    pub async fn first_referral_on(&self, service_ids: &[i64]) -> StoreResult<Option<String>> {
        self.referral_day("MIN", service_ids).await
    }

    /// `MIN` or `MAX` of the days referrals were received in these services.
    async fn referral_day(
        &self,
        aggregate: &'static str,
        service_ids: &[i64],
    ) -> StoreResult<Option<String>> {
        if service_ids.is_empty() {
            return Ok(None);
        }
        let marks: Vec<String> = (1..=service_ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT {aggregate}(received_on) FROM referrals WHERE service_id IN ({})",
            marks.join(", ")
        );
        let mut q = sqlx::query_scalar(sqlx::AssertSqlSafe(sql));
        for id in service_ids {
            q = q.bind(*id);
        }
        Ok(q.fetch_one(self.pool()).await?)
    }

    /// The latest day anything happened in a service (a referral received, a session
    /// held or an episode closed), the day its dashboard takes "this quarter" from.
    pub async fn latest_activity_on(&self, service_id: i64) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT MAX(d) FROM (SELECT MAX(received_on) AS d FROM referrals WHERE service_id = $1 \
             UNION ALL SELECT MAX(held_on) FROM sessions WHERE service_id = $1 \
             UNION ALL SELECT MAX(closed_on) FROM episodes WHERE service_id = $1) x",
        )
        .bind(service_id)
        .fetch_one(self.pool())
        .await?)
    }

    /// A service's configurations as recorded, newest first.
    pub async fn configurations(&self, service_id: i64) -> StoreResult<Vec<ConfigurationRow>> {
        type Row = (
            String,
            String,
            String,
            String,
            String,
            String,
            String,
            String,
            String,
            String,
            String,
            String,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT configuration_ref, effective_from, provider_model, funding, senior_buy_in, primary_referral_routes, \
             worker_profile, targeting, formal_performance_management, interaction_model, entered_via, created_at \
             FROM service_configurations WHERE service_id = $1 ORDER BY effective_from DESC, configuration_ref",
        )
        .bind(service_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| ConfigurationRow {
                configuration_ref: r.0,
                effective_from: r.1,
                provider_model: r.2,
                funding: r.3,
                senior_buy_in: r.4,
                primary_referral_routes: r.5,
                worker_profile: r.6,
                targeting: r.7,
                formal_performance_management: r.8,
                interaction_model: r.9,
                entered_via: r.10,
                created_at: r.11,
            })
            .collect())
    }

    /// The latest audit entry about one record of a service: who, when (RFC 3339) and
    /// what (`record.add`, `record.update`, …).
    pub async fn last_entry_about(
        &self,
        service_id: i64,
        entity: &str,
        record_ref: &str,
    ) -> StoreResult<Option<(String, String, String)>> {
        Ok(sqlx::query_as(
            "SELECT actor, at, action FROM audit_log WHERE service_id = $1 AND entity = $2 \
             AND record_ref = $3 ORDER BY audit_id DESC LIMIT 1",
        )
        .bind(service_id)
        .bind(entity.to_string())
        .bind(record_ref.to_string())
        .fetch_optional(self.pool())
        .await?)
    }
}

/// A service configuration as its page shows it (codes as stored).
#[derive(Debug, Clone)]
pub struct ConfigurationRow {
    pub configuration_ref: String,
    pub effective_from: String,
    pub provider_model: String,
    pub funding: String,
    pub senior_buy_in: String,
    /// Codes separated by `;`.
    pub primary_referral_routes: String,
    pub worker_profile: String,
    pub targeting: String,
    pub formal_performance_management: String,
    pub interaction_model: String,
    /// `import` or `application`.
    pub entered_via: String,
    pub created_at: String,
}

/// The records behind one of the dashboard's counts: each count of the manager's
/// dashboard links to the list of what it counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behind {
    /// Referrals received in the period.
    Referrals,
    /// Clients whose first-ever first contact falls in the period.
    NewClients,
    /// Episodes whose first contact falls in the period.
    Opened,
    /// Sessions held in the period that the client attended.
    Attended,
    /// Sessions held in the period that the client did not attend.
    DidNotAttend,
    /// Full episodes closed in the period.
    ClosedFull,
    /// Episodes open at the period's end.
    OpenAtEnd,
    /// Episodes open at the period's end with neither a first contact nor an attended
    /// session in the 90 days before it.
    Idle,
}

/// A record behind a dashboard count: its client, its episode where it has one, the
/// day that put it in the count and the health trainer it counts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BehindRow {
    pub client_ref: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub episode_ref: Option<String>,
    pub on: String,
    pub worker_name: Option<String>,
}

impl Database {
    /// The records behind `behind` for the service in the period `from`..=`to` (ISO
    /// days), with the same definitions as the report's counts (analytics.md), those of
    /// one worker (the episode's lead, or the session's worker) when `worker_ref` is
    /// given; a page of them (`limit` from `offset`, by day) and how many there are in all.
    pub async fn records_behind(
        &self,
        service_id: i64,
        behind: Behind,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
        worker_ref: Option<&str>,
        (limit, offset): (i64, i64),
    ) -> StoreResult<(Vec<BehindRow>, i64)> {
        // Each count's rows: what they are read from, the day shown and which rows.
        const EPISODES: &str = "FROM episode_summaries es \
             JOIN episodes e ON e.service_id = es.service_id AND e.episode_id = es.episode_id \
             JOIN clients c ON c.service_id = es.service_id AND c.client_id = es.client_id \
             JOIN workers w ON w.service_id = e.service_id AND w.worker_id = e.lead_worker_id";
        const SESSIONS: &str = "FROM sessions s \
             JOIN episodes e ON e.service_id = s.service_id AND e.episode_id = s.episode_id \
             JOIN referrals r ON r.service_id = e.service_id AND r.referral_id = e.referral_id \
             JOIN clients c ON c.service_id = r.service_id AND c.client_id = r.client_id \
             JOIN workers w ON w.service_id = s.service_id AND w.worker_id = s.worker_id";
        let open = "es.first_contact_on <= $3 AND (es.closed_on IS NULL OR es.closed_on > $3)";
        let (from_rows, episode, day, rows) = match behind {
            Behind::Referrals => (
                // A referral has no worker (so one worker's list is empty).
                "FROM referrals r JOIN clients c ON c.service_id = r.service_id AND c.client_id = r.client_id \
                 LEFT JOIN workers w ON 1 = 0",
                "NULL",
                "r.received_on",
                "r.service_id = $1 AND r.received_on BETWEEN $2 AND $3".to_string(),
            ),
            Behind::NewClients => (
                EPISODES,
                "e.episode_ref",
                "es.first_contact_on",
                "es.service_id = $1 AND es.first_contact_on BETWEEN $2 AND $3 \
                 AND NOT EXISTS (SELECT 1 FROM episode_summaries f \
                   WHERE f.service_id = es.service_id AND f.client_id = es.client_id \
                   AND f.first_contact_on <= es.first_contact_on \
                   AND (f.first_contact_on < es.first_contact_on OR f.episode_id < es.episode_id))"
                    .to_string(),
            ),
            Behind::Opened => (
                EPISODES,
                "e.episode_ref",
                "es.first_contact_on",
                "es.service_id = $1 AND es.first_contact_on BETWEEN $2 AND $3".to_string(),
            ),
            Behind::Attended | Behind::DidNotAttend => (
                SESSIONS,
                "e.episode_ref",
                "s.held_on",
                format!(
                    "s.service_id = $1 AND s.held_on BETWEEN $2 AND $3 AND s.attended = '{}'",
                    if behind == Behind::Attended {
                        "yes"
                    } else {
                        "did_not_attend"
                    }
                ),
            ),
            Behind::ClosedFull => (
                EPISODES,
                "e.episode_ref",
                "es.closed_on",
                "es.service_id = $1 AND es.closed_on BETWEEN $2 AND $3 AND es.kind = 'full'"
                    .to_string(),
            ),
            Behind::OpenAtEnd => (
                EPISODES,
                "e.episode_ref",
                "es.first_contact_on",
                // The period's first day does not matter here, but PostgreSQL must see
                // every parameter.
                format!("es.service_id = $1 AND $2 <= $3 AND {open}"),
            ),
            Behind::Idle => (
                EPISODES,
                "e.episode_ref",
                "es.first_contact_on",
                // $2 is the first of the 90 days before the period's end here.
                format!(
                    "es.service_id = $1 AND {open} AND es.first_contact_on < $2 \
                     AND NOT EXISTS (SELECT 1 FROM sessions s \
                       WHERE s.service_id = es.service_id AND s.episode_id = es.episode_id \
                       AND s.attended = 'yes' AND s.held_on BETWEEN $2 AND $3)"
                ),
            ),
        };
        let from = match behind {
            Behind::Idle => to - chrono::Days::new(90),
            _ => from,
        };
        let (from, to) = (from.to_string(), to.to_string());
        let worker = match worker_ref {
            Some(_) => " AND w.worker_ref = $4",
            None => "",
        };
        let select = format!(
            "SELECT c.client_ref, c.given_name, c.family_name, {episode}, {day}, w.display_name \
             {from_rows} WHERE {rows}{worker} ORDER BY {day}, c.client_ref LIMIT {limit} OFFSET {offset}"
        );
        let count = format!("SELECT COUNT(*) {from_rows} WHERE {rows}{worker}");
        type Row = (
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            String,
            Option<String>,
        );
        let mut q = sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(select))
            .bind(service_id)
            .bind(from.clone())
            .bind(to.clone());
        let mut n = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(count))
            .bind(service_id)
            .bind(from)
            .bind(to);
        if let Some(w) = worker_ref {
            q = q.bind(w.to_string());
            n = n.bind(w.to_string());
        }
        let rows = q.fetch_all(self.pool()).await?;
        let total = n.fetch_one(self.pool()).await?;
        let rows = rows
            .into_iter()
            .map(
                |(client_ref, given_name, family_name, episode_ref, on, worker_name)| BehindRow {
                    client_ref,
                    given_name,
                    family_name,
                    episode_ref,
                    on,
                    worker_name,
                },
            )
            .collect();
        Ok((rows, total))
    }
}
