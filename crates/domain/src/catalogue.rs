//! The code list each coded field of the dataset takes, with the words a person reads
//! for every code: the one place forms, pages and documents find them, so that a form
//! cannot offer a list the parser refuses (as the client form once offered disability
//! `unknown` where the standard says `not_stated`).
//!
//! `tests/standard.rs` checks this table against the parser from the outside: every code
//! listed here for a field is accepted in it, and every coded field of every entity is
//! listed.

use crate::codes::*;
use crate::record::Entity;

/// A code list as data: every code, in the standard's order, with its words.
#[derive(Clone, Copy)]
pub struct Codes {
    /// The list's name (its type in `codes.rs`).
    pub name: &'static str,
    list: fn() -> Vec<(&'static str, &'static str)>,
    /// Whether the field holds several codes separated by `;`.
    pub several: bool,
}

impl Codes {
    /// Every code with its words, in the standard's order.
    pub fn words(&self) -> Vec<(&'static str, &'static str)> {
        (self.list)()
    }

    /// The words for one code (any letter case), or `None` when it is not in the list.
    pub fn words_for(&self, code: &str) -> Option<&'static str> {
        self.words()
            .into_iter()
            .find(|(c, _)| c.eq_ignore_ascii_case(code.trim()))
            .map(|(_, w)| w)
    }
}

macro_rules! list {
    ($t:ty) => {
        Codes {
            name: stringify!($t),
            list: <$t as CodeList>::all_words,
            several: false,
        }
    };
    ($t:ty, several) => {
        Codes {
            name: stringify!($t),
            list: <$t as CodeList>::all_words,
            several: true,
        }
    };
}

/// The code list of a field of an entity, or `None` for a field that is not coded.
pub fn codes_of(entity: Entity, field: &str) -> Option<Codes> {
    use Entity as E;
    Some(match (entity, field) {
        (E::Organisation, "kind") => list!(OrgKind),
        (E::ServiceConfiguration, "provider_model") => list!(ProviderModel),
        (E::ServiceConfiguration, "funding") => list!(Funding),
        (E::ServiceConfiguration, "senior_buy_in") => list!(SeniorBuyIn),
        (E::ServiceConfiguration, "primary_referral_routes") => list!(ReferralSource, several),
        (E::ServiceConfiguration, "worker_profile") => list!(WorkerProfile),
        (E::ServiceConfiguration, "targeting") => list!(Targeting),
        (E::ServiceConfiguration, "formal_performance_management") => list!(YesNo),
        (E::ServiceConfiguration, "interaction_model") => list!(InteractionModel),
        (E::Worker, "role") => list!(WorkerRole),
        (E::Worker, "sex") => list!(Sex),
        (E::Worker, "age_band") => list!(AgeBand),
        (E::Worker, "lives_in_area_served") => list!(YesNoUnknown),
        (E::Worker, "qualification") => list!(Qualification),
        (E::Client, "sex") => list!(Sex),
        (E::Client, "ethnicity") => list!(Ethnicity),
        (E::Client, "gp_registered") => list!(YesNoUnknown),
        (E::Client, "employment") => list!(Employment),
        (E::Client, "disability") => list!(YesNoNotStated),
        // Only a client who agrees may be recorded at all (the parser refuses `no` with
        // that reason), so `yes` is the only answer a form offers.
        (E::Client, "consent_to_record") => Codes {
            name: "YesNo",
            list: || vec![(YesNo::Yes.code(), YesNo::Yes.words())],
            several: false,
        },
        (E::Client, "consent_to_share_with_gp") => list!(YesNo),
        (E::Referral, "source") => list!(ReferralSource),
        (E::Episode, "kind") => list!(EpisodeKind),
        (E::Episode, "primary_issue") => list!(PrimaryIssue),
        (E::Episode, "exit_reason") => list!(ExitReason),
        (E::Assessment, "occasion") => list!(Occasion),
        (E::Assessment, "smoking_status") => list!(SmokingStatus),
        (E::Goal, "domain") => list!(GoalDomain),
        (E::Goal, "status") => list!(GoalStatus),
        (E::Session, "mode") => list!(SessionMode),
        (E::Session, "venue") => list!(Venue),
        (E::Session, "purpose") => list!(SessionPurpose),
        (E::Session, "attended") => list!(Attendance),
        (E::OnwardReferral, "action") => list!(OnwardAction),
        (E::OnwardReferral, "destination") => list!(OnwardDestination),
        (E::OnwardReferral, "outcome") => list!(OnwardOutcome),
        (E::WiderIssue, "issue") => list!(WiderIssueKind),
        _ => return None,
    })
}

/// Every code list of the standard with its words, for the test that each code has words
/// and for documents that print the lists.
pub fn all_lists() -> Vec<Codes> {
    vec![
        list!(OrgKind),
        list!(ProviderModel),
        list!(Funding),
        list!(SeniorBuyIn),
        list!(WorkerProfile),
        list!(Targeting),
        list!(YesNo),
        list!(YesNoUnknown),
        list!(YesNoNotStated),
        list!(InteractionModel),
        list!(WorkerRole),
        list!(Sex),
        list!(AgeBand),
        list!(Qualification),
        list!(Ethnicity),
        list!(Employment),
        list!(ReferralSource),
        list!(SourceGroup),
        list!(EpisodeKind),
        list!(PrimaryIssue),
        list!(ExitReason),
        list!(Occasion),
        list!(SmokingStatus),
        list!(GoalDomain),
        list!(GoalStatus),
        list!(SessionMode),
        list!(Venue),
        list!(SessionPurpose),
        list!(Attendance),
        list!(OnwardAction),
        list!(OnwardDestination),
        list!(OnwardOutcome),
        list!(WiderIssueKind),
    ]
}
