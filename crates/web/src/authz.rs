//! Authorisation in one place: whether a user may take an action on a service's data.
//! Every handler asks [`allowed`] before it reads anything; nothing else decides.
//!
//! - Health trainers and service managers see identifiable records of their own service
//!   only; managers also read its audit trail and its exact (uncontrolled) reports.
//! - Commissioners see disclosure-controlled aggregates of the services their
//!   organisation commissions; analysts those of every service or of a listed set.
//! - Admins manage accounts and the lists of organisations and services, and see no
//!   client records.

use crate::users::{Role, User};

/// What a request wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read a service's clients (names, dates of birth, records).
    ViewClients,
    /// Change a service's client records.
    EditClients,
    /// Read a service's audit trail.
    ViewAudit,
    /// Read a service's reports (aggregates).
    ViewReports,
    /// Manage user accounts.
    ManageUsers,
    /// Manage the health trainers' accounts of a service.
    ManageStaff,
    /// Add and change organisations and services (the deployment's own lists).
    ManageServices,
    /// Register research projects and read the release register.
    ManageProjects,
    /// Release a pseudonymised research extract of a service's records.
    ReleaseExtracts,
    /// Answer a client's data protection rights: everything held about them (subject
    /// access) and their erasure.
    GovernRecords,
}

/// The service an action is about, as far as authorisation needs to know it.
#[derive(Debug, Clone)]
pub struct ServiceScope {
    pub service_id: i64,
    pub service_ref: String,
    /// The organisation that commissions it.
    pub commissioner_org_ref: String,
}

/// Whether `user` may take `action` on `service` (`None` for actions about no service).
pub fn allowed(user: &User, action: Action, service: Option<&ServiceScope>) -> bool {
    if user.disabled {
        return false;
    }
    let own = |s: &ServiceScope| user.service_id == Some(s.service_id);
    match (user.role, action, service) {
        (
            Role::Admin,
            Action::ManageUsers | Action::ManageServices | Action::ManageProjects,
            None,
        ) => true,
        (Role::HealthTrainer, Action::ViewClients | Action::EditClients, Some(s)) => own(s),
        (
            Role::ServiceManager,
            Action::ViewClients
            | Action::EditClients
            | Action::ViewAudit
            | Action::ViewReports
            | Action::ManageStaff
            | Action::GovernRecords,
            Some(s),
        ) => own(s),
        (Role::Commissioner, Action::ViewReports, Some(s)) => {
            user.org_ref.as_deref() == Some(s.commissioner_org_ref.as_str())
        }
        (Role::Analyst, Action::ViewReports | Action::ReleaseExtracts, Some(s)) => {
            match &user.analyst_services {
                None => true,
                Some(list) => list.contains(&s.service_ref),
            }
        }
        _ => false,
    }
}

/// Whether the user's reports of this service are released without disclosure control:
/// only a service manager's, for their own service (analytics.md section 8).
pub fn exact_figures(user: &User, service: &ServiceScope) -> bool {
    user.role == Role::ServiceManager && user.service_id == Some(service.service_id)
}
