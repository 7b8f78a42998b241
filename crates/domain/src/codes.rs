//! The code lists of the dataset standard (dataset.md). Each list is an enum, so a
//! value that is not in the list cannot exist inside the program.

/// Declares a code list: an enum with its codes, a parser and the list of codes.
macro_rules! code_list {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $code:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every code in the list, in the standard's order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The code as it is written in files and stored.
            pub fn code(self) -> &'static str {
                match self { $($name::$variant => $code),+ }
            }

            /// Reads a code, ignoring surrounding spaces and letter case.
            pub fn parse(text: &str) -> Option<Self> {
                let text = text.trim();
                $(if text.eq_ignore_ascii_case($code) { return Some($name::$variant); })+
                None
            }
        }

        impl crate::codes::CodeList for $name {
            fn all_codes() -> Vec<&'static str> { Self::ALL.iter().map(|c| c.code()).collect() }
            fn parse_code(text: &str) -> Option<Self> { Self::parse(text) }
            fn as_code(&self) -> &'static str { self.code() }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.code())
            }
        }
    };
}

/// What every code list can do, so field readers can treat them alike.
pub trait CodeList: Sized + Copy {
    /// All codes, for messages that list what is allowed.
    fn all_codes() -> Vec<&'static str>;
    /// Reads a code.
    fn parse_code(text: &str) -> Option<Self>;
    /// The stored code.
    fn as_code(&self) -> &'static str;
}

code_list!(
    /// Kind of organisation.
    OrgKind { Pct => "pct", LocalAuthority => "local_authority", NhsTrust => "nhs_trust",
      GpPractice => "gp_practice", ThirdSector => "third_sector", Private => "private", Other => "other" });

code_list!(
    /// Who provides the service.
    ProviderModel { SingleThirdSector => "single_third_sector", MultipleThirdSector => "multiple_third_sector",
      NhsInHouse => "nhs_in_house", NhsAndThirdSector => "nhs_and_third_sector",
      ExternalProvider => "external_provider", LocalAuthorityInHouse => "local_authority_in_house" });

code_list!(
    /// Who funds the service.
    Funding { NhsCommissioner => "nhs_commissioner", LocalAuthority => "local_authority",
      NonHealthPublic => "non_health_public", GpCommissioner => "gp_commissioner", Mixed => "mixed", Other => "other" });

code_list!(
    /// Whether the service has a senior sponsor.
    SeniorBuyIn { Yes => "yes", No => "no", ChampionLeft => "champion_left" });

code_list!(
    /// The kind of worker the service recruits.
    WorkerProfile { PersonNextDoor => "person_next_door", WorkReadyPreferred => "work_ready_preferred",
      MixedRebadged => "mixed_rebadged" });

code_list!(
    /// How the service targets its clients.
    Targeting { DeprivedAreasLocal => "deprived_areas_local", MostDeprived20pct => "most_deprived_20pct",
      SpecificGroups => "specific_groups", Universal => "universal" });

code_list!(
    /// A plain yes or no.
    YesNo { Yes => "yes", No => "no" });

code_list!(
    /// Yes, no, or not known.
    YesNoUnknown { Yes => "yes", No => "no", Unknown => "unknown" });

code_list!(
    /// Yes, no, or not stated by the client.
    YesNoNotStated { Yes => "yes", No => "no", NotStated => "not_stated" });

code_list!(
    /// How the service works with its clients.
    InteractionModel { OneToOneBehaviourChange => "one_to_one_behaviour_change",
      OneToOnePlusBriefContacts => "one_to_one_plus_brief_contacts",
      EarlyPlanPrioritised => "early_plan_prioritised",
      TelephoneAssessmentAndReferral => "telephone_assessment_and_referral", GroupBased => "group_based" });

code_list!(
    /// A worker's role.
    WorkerRole { HealthTrainer => "health_trainer", SeniorHealthTrainer => "senior_health_trainer",
      ChampionVolunteer => "champion_volunteer", TeamLeader => "team_leader" });

code_list!(
    /// Sex as recorded.
    Sex { Male => "male", Female => "female", Other => "other", NotStated => "not_stated" });

code_list!(
    /// A worker's age band.
    AgeBand { A16To24 => "16-24", A25To34 => "25-34", A35To44 => "35-44", A45To54 => "45-54",
      A55To64 => "55-64", A65Plus => "65+" });

code_list!(
    /// A worker's qualification.
    Qualification { None => "none", InTraining => "in_training", Level3Certificate => "level3_certificate",
      Level2Award => "level2_award" });

code_list!(
    /// NHS ethnic category (2001 Census based), Z not stated and 99 not known.
    Ethnicity { A => "A", B => "B", C => "C", D => "D", E => "E", F => "F", G => "G", H => "H",
      J => "J", K => "K", L => "L", M => "M", N => "N", P => "P", R => "R", S => "S",
      Z => "Z", NotKnown => "99" });

code_list!(
    /// A client's employment status.
    Employment { Employed => "employed", Unemployed => "unemployed", Student => "student",
      Retired => "retired", LongTermSickOrDisabled => "long_term_sick_or_disabled", Carer => "carer",
      Other => "other", NotStated => "not_stated" });

code_list!(
    /// Where a referral came from.
    ReferralSource { SelfReferral => "self", FriendOrFamily => "friend_or_family",
      CommunityOrganisation => "community_organisation", OutreachEvent => "outreach_event",
      Workplace => "workplace", LocalAuthorityService => "local_authority_service",
      HousingOrJobcentre => "housing_or_jobcentre", Gp => "gp", PracticeNurse => "practice_nurse",
      HealthCheck => "health_check", StopSmokingService => "stop_smoking_service", Pharmacy => "pharmacy",
      Hospital => "hospital", MentalHealthService => "mental_health_service",
      OtherHealthProfessional => "other_health_professional", Probation => "probation",
      Prison => "prison", Other => "other" });

code_list!(
    /// The group of a referral source, which drives the drift measures.
    SourceGroup { Community => "community", Clinical => "clinical",
      CriminalJustice => "criminal_justice", Other => "other" });

impl ReferralSource {
    /// The group this source belongs to.
    pub fn group(self) -> SourceGroup {
        use ReferralSource::*;
        match self {
            SelfReferral
            | FriendOrFamily
            | CommunityOrganisation
            | OutreachEvent
            | Workplace
            | LocalAuthorityService
            | HousingOrJobcentre => SourceGroup::Community,
            Gp
            | PracticeNurse
            | HealthCheck
            | StopSmokingService
            | Pharmacy
            | Hospital
            | MentalHealthService
            | OtherHealthProfessional => SourceGroup::Clinical,
            Probation | Prison => SourceGroup::CriminalJustice,
            Other => SourceGroup::Other,
        }
    }
}

code_list!(
    /// Full one-to-one support or a brief contact.
    EpisodeKind { Full => "full", Brief => "brief" });

code_list!(
    /// The main issue the client wants to work on.
    PrimaryIssue { Diet => "diet", PhysicalActivity => "physical_activity", Weight => "weight",
      Smoking => "smoking", Alcohol => "alcohol", EmotionalWellbeing => "emotional_wellbeing",
      SexualHealth => "sexual_health", LocalIssue => "local_issue", Other => "other" });

code_list!(
    /// Why an episode closed.
    ExitReason { Completed => "completed", Disengaged => "disengaged", Withdrew => "withdrew",
      ReferredOn => "referred_on", MovedAway => "moved_away",
      InappropriateReferral => "inappropriate_referral", Other => "other" });

code_list!(
    /// When an assessment was made.
    Occasion { Baseline => "baseline", Exit => "exit", FollowUp => "follow_up" });

code_list!(
    /// Smoking status.
    SmokingStatus { Never => "never", Ex => "ex", Current => "current" });

code_list!(
    /// The area of life a goal is about.
    GoalDomain { Diet => "diet", PhysicalActivity => "physical_activity", Weight => "weight",
      Smoking => "smoking", Alcohol => "alcohol", Wellbeing => "wellbeing", Social => "social",
      Other => "other" });

code_list!(
    /// Where a goal stands.
    GoalStatus { Open => "open", FullyAchieved => "fully_achieved", PartlyAchieved => "partly_achieved",
      NotAchieved => "not_achieved", Abandoned => "abandoned" });

code_list!(
    /// How a session was held.
    SessionMode { FaceToFace => "face_to_face", Telephone => "telephone", Video => "video",
      TextMessage => "text_message", Group => "group" });

code_list!(
    /// Where a session was held.
    Venue { CommunityVenue => "community_venue", GpPractice => "gp_practice",
      HealthCentre => "health_centre", Pharmacy => "pharmacy", ClientHome => "client_home",
      Workplace => "workplace", LeisureCentre => "leisure_centre",
      PrisonOrProbation => "prison_or_probation", Remote => "remote", Other => "other" });

code_list!(
    /// What a session was for.
    SessionPurpose { Assessment => "assessment", PlanSetting => "plan_setting", Support => "support",
      Review => "review", FollowUp => "follow_up", BriefIntervention => "brief_intervention" });

code_list!(
    /// Whether the client came.
    Attendance { Yes => "yes", DidNotAttend => "did_not_attend", Cancelled => "cancelled" });

code_list!(
    /// Signposted or formally referred.
    OnwardAction { Signposted => "signposted", Referred => "referred" });

code_list!(
    /// Where a client was signposted or referred to.
    OnwardDestination { StopSmoking => "stop_smoking", WeightManagement => "weight_management",
      ExerciseReferral => "exercise_referral", AlcoholService => "alcohol_service",
      MentalHealth => "mental_health", WelfareOrDebtAdvice => "welfare_or_debt_advice",
      Housing => "housing", EmploymentSupport => "employment_support",
      CommunityGroup => "community_group", Gp => "gp", Other => "other" });

code_list!(
    /// What came of an onward referral.
    OnwardOutcome { Unknown => "unknown", Attended => "attended", DidNotAttend => "did_not_attend" });

code_list!(
    /// A wider issue in the client's life.
    WiderIssueKind { Housing => "housing", DebtOrMoney => "debt_or_money", Isolation => "isolation",
      Employment => "employment", Caring => "caring", FoodInsecurity => "food_insecurity",
      Other => "other" });

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_ignore_case() {
        for s in ReferralSource::ALL {
            assert_eq!(ReferralSource::parse(s.code()), Some(*s));
            assert_eq!(ReferralSource::parse(&s.code().to_uppercase()), Some(*s));
        }
        assert_eq!(Ethnicity::parse("a"), Some(Ethnicity::A));
        assert_eq!(Ethnicity::parse("99"), Some(Ethnicity::NotKnown));
        assert_eq!(
            Ethnicity::parse("I"),
            None,
            "I is not an NHS ethnic category"
        );
        assert_eq!(Ethnicity::parse("O"), None);
        assert_eq!(Ethnicity::parse("T"), None);
        assert_eq!(Sex::parse("unknown"), None);
    }

    #[test]
    fn source_groups_follow_the_standard() {
        assert_eq!(ReferralSource::SelfReferral.code(), "self");
        assert_eq!(ReferralSource::HealthCheck.group(), SourceGroup::Clinical);
        assert_eq!(
            ReferralSource::HousingOrJobcentre.group(),
            SourceGroup::Community
        );
        assert_eq!(ReferralSource::Prison.group(), SourceGroup::CriminalJustice);
        assert_eq!(ReferralSource::Other.group(), SourceGroup::Other);
        let community = ReferralSource::ALL
            .iter()
            .filter(|s| s.group() == SourceGroup::Community)
            .count();
        let clinical = ReferralSource::ALL
            .iter()
            .filter(|s| s.group() == SourceGroup::Clinical)
            .count();
        assert_eq!((community, clinical), (7, 8));
    }
}
