//! The code lists of the dataset standard (dataset.md). Each list is an enum, so a
//! value that is not in the list cannot exist inside the program.

/// Declares a code list: an enum with its codes, a parser and the list of codes.
macro_rules! code_list {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $code:literal : $words:literal),+ $(,)? }) => {
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

            /// The words a person reads for the code ("Not stated", "GP").
            pub fn words(self) -> &'static str {
                match self { $($name::$variant => $words),+ }
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
            fn all_words() -> Vec<(&'static str, &'static str)> {
                Self::ALL.iter().map(|c| (c.code(), c.words())).collect()
            }
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
    /// Every code with the words a person reads for it, in the standard's order.
    fn all_words() -> Vec<(&'static str, &'static str)>;
    /// Reads a code.
    fn parse_code(text: &str) -> Option<Self>;
    /// The stored code.
    fn as_code(&self) -> &'static str;
}

code_list!(
    /// Kind of organisation.
    OrgKind {
        Pct => "pct" : "Primary care trust",
        LocalAuthority => "local_authority" : "Local authority",
        NhsTrust => "nhs_trust" : "NHS trust",
        GpPractice => "gp_practice" : "GP practice",
        ThirdSector => "third_sector" : "Voluntary or community organisation",
        Private => "private" : "Private company",
        Other => "other" : "Other",
    }
);

code_list!(
    /// Who provides the service.
    ProviderModel {
        SingleThirdSector => "single_third_sector" : "One voluntary sector provider",
        MultipleThirdSector => "multiple_third_sector" : "Several voluntary sector providers",
        NhsInHouse => "nhs_in_house" : "NHS, in house",
        NhsAndThirdSector => "nhs_and_third_sector" : "NHS with voluntary sector partners",
        ExternalProvider => "external_provider" : "External provider",
        LocalAuthorityInHouse => "local_authority_in_house" : "Local authority, in house",
    }
);

code_list!(
    /// Who funds the service.
    Funding {
        NhsCommissioner => "nhs_commissioner" : "NHS commissioner",
        LocalAuthority => "local_authority" : "Local authority",
        NonHealthPublic => "non_health_public" : "Other public funding",
        GpCommissioner => "gp_commissioner" : "GP commissioners",
        Mixed => "mixed" : "Mixed funding",
        Other => "other" : "Other",
    }
);

code_list!(
    /// Whether the service has a senior sponsor.
    SeniorBuyIn {
        Yes => "yes" : "Yes",
        No => "no" : "No",
        ChampionLeft => "champion_left" : "The senior champion has left",
    }
);

code_list!(
    /// The kind of worker the service recruits.
    WorkerProfile {
        PersonNextDoor => "person_next_door" : "People from the local community",
        WorkReadyPreferred => "work_ready_preferred" : "Work-ready applicants preferred",
        MixedRebadged => "mixed_rebadged" : "Mixed, including existing staff given the role",
    }
);

code_list!(
    /// How the service targets its clients.
    Targeting {
        DeprivedAreasLocal => "deprived_areas_local" : "Listed deprived areas",
        MostDeprived20pct => "most_deprived_20pct" : "The 20% most deprived areas",
        SpecificGroups => "specific_groups" : "Specific groups",
        Universal => "universal" : "Everyone",
    }
);

code_list!(
    /// A plain yes or no.
    YesNo {
        Yes => "yes" : "Yes",
        No => "no" : "No",
    }
);

code_list!(
    /// Yes, no, or not known.
    YesNoUnknown {
        Yes => "yes" : "Yes",
        No => "no" : "No",
        Unknown => "unknown" : "Not known",
    }
);

code_list!(
    /// Yes, no, or not stated by the client.
    YesNoNotStated {
        Yes => "yes" : "Yes",
        No => "no" : "No",
        NotStated => "not_stated" : "Not stated",
    }
);

code_list!(
    /// How the service works with its clients.
    InteractionModel {
        OneToOneBehaviourChange => "one_to_one_behaviour_change" : "One-to-one behaviour change support",
        OneToOnePlusBriefContacts => "one_to_one_plus_brief_contacts" : "One-to-one support and brief contacts",
        EarlyPlanPrioritised => "early_plan_prioritised" : "Plan agreed early, then prioritised",
        TelephoneAssessmentAndReferral => "telephone_assessment_and_referral" : "Telephone assessment and referral",
        GroupBased => "group_based" : "Group based",
    }
);

code_list!(
    /// A worker's role.
    WorkerRole {
        HealthTrainer => "health_trainer" : "Health trainer",
        SeniorHealthTrainer => "senior_health_trainer" : "Senior health trainer",
        ChampionVolunteer => "champion_volunteer" : "Health champion (volunteer)",
        TeamLeader => "team_leader" : "Team leader",
    }
);

code_list!(
    /// Sex as recorded.
    Sex {
        Male => "male" : "Male",
        Female => "female" : "Female",
        Other => "other" : "Other",
        NotStated => "not_stated" : "Not stated",
    }
);

code_list!(
    /// A worker's age band.
    AgeBand {
        A16To24 => "16-24" : "16 to 24",
        A25To34 => "25-34" : "25 to 34",
        A35To44 => "35-44" : "35 to 44",
        A45To54 => "45-54" : "45 to 54",
        A55To64 => "55-64" : "55 to 64",
        A65Plus => "65+" : "65 or over",
    }
);

code_list!(
    /// A worker's qualification.
    Qualification {
        None => "none" : "None yet",
        InTraining => "in_training" : "In training",
        Level3Certificate => "level3_certificate" : "Level 3 Certificate for Health Trainers",
        Level2Award => "level2_award" : "Level 2 award",
    }
);

code_list!(
    /// NHS ethnic category (2001 Census based), Z not stated and 99 not known.
    Ethnicity {
        A => "A" : "White: British",
        B => "B" : "White: Irish",
        C => "C" : "White: any other White background",
        D => "D" : "Mixed: White and Black Caribbean",
        E => "E" : "Mixed: White and Black African",
        F => "F" : "Mixed: White and Asian",
        G => "G" : "Mixed: any other mixed background",
        H => "H" : "Asian or Asian British: Indian",
        J => "J" : "Asian or Asian British: Pakistani",
        K => "K" : "Asian or Asian British: Bangladeshi",
        L => "L" : "Asian or Asian British: any other Asian background",
        M => "M" : "Black or Black British: Caribbean",
        N => "N" : "Black or Black British: African",
        P => "P" : "Black or Black British: any other Black background",
        R => "R" : "Other ethnic group: Chinese",
        S => "S" : "Other ethnic group: any other ethnic group",
        Z => "Z" : "Not stated",
        NotKnown => "99" : "Not known",
    }
);

code_list!(
    /// A client's employment status.
    Employment {
        Employed => "employed" : "Employed",
        Unemployed => "unemployed" : "Unemployed",
        Student => "student" : "Student",
        Retired => "retired" : "Retired",
        LongTermSickOrDisabled => "long_term_sick_or_disabled" : "Long-term sick or disabled",
        Carer => "carer" : "Carer",
        Other => "other" : "Other",
        NotStated => "not_stated" : "Not stated",
    }
);

code_list!(
    /// Where a referral came from.
    ReferralSource {
        SelfReferral => "self" : "Self-referral",
        FriendOrFamily => "friend_or_family" : "Friend or family",
        CommunityOrganisation => "community_organisation" : "Community organisation",
        OutreachEvent => "outreach_event" : "Outreach event",
        Workplace => "workplace" : "Workplace",
        LocalAuthorityService => "local_authority_service" : "Local authority service",
        HousingOrJobcentre => "housing_or_jobcentre" : "Housing office or Jobcentre",
        Gp => "gp" : "GP",
        PracticeNurse => "practice_nurse" : "Practice nurse",
        HealthCheck => "health_check" : "NHS Health Check",
        StopSmokingService => "stop_smoking_service" : "Stop smoking service",
        Pharmacy => "pharmacy" : "Pharmacy",
        Hospital => "hospital" : "Hospital",
        MentalHealthService => "mental_health_service" : "Mental health service",
        OtherHealthProfessional => "other_health_professional" : "Other health professional",
        Probation => "probation" : "Probation",
        Prison => "prison" : "Prison",
        Other => "other" : "Other",
    }
);

code_list!(
    /// The group of a referral source, which drives the drift measures.
    SourceGroup {
        Community => "community" : "Community",
        Clinical => "clinical" : "Clinical",
        CriminalJustice => "criminal_justice" : "Criminal justice",
        Other => "other" : "Other",
    }
);

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
    EpisodeKind {
        Full => "full" : "Full support towards a plan",
        Brief => "brief" : "Brief contact",
    }
);

code_list!(
    /// The main issue the client wants to work on.
    PrimaryIssue {
        Diet => "diet" : "Diet",
        PhysicalActivity => "physical_activity" : "Physical activity",
        Weight => "weight" : "Weight",
        Smoking => "smoking" : "Smoking",
        Alcohol => "alcohol" : "Alcohol",
        EmotionalWellbeing => "emotional_wellbeing" : "Emotional wellbeing",
        SexualHealth => "sexual_health" : "Sexual health",
        LocalIssue => "local_issue" : "A local issue",
        Other => "other" : "Other",
    }
);

code_list!(
    /// Why an episode closed.
    ExitReason {
        Completed => "completed" : "Completed",
        Disengaged => "disengaged" : "Stopped coming",
        Withdrew => "withdrew" : "Chose to leave",
        ReferredOn => "referred_on" : "Referred on",
        MovedAway => "moved_away" : "Moved away",
        InappropriateReferral => "inappropriate_referral" : "Referral not appropriate",
        Other => "other" : "Other",
    }
);

code_list!(
    /// When an assessment was made.
    Occasion {
        Baseline => "baseline" : "Baseline",
        Exit => "exit" : "Exit",
        FollowUp => "follow_up" : "Follow-up",
    }
);

code_list!(
    /// Smoking status.
    SmokingStatus {
        Never => "never" : "Never smoked",
        Ex => "ex" : "Ex-smoker",
        Current => "current" : "Smokes now",
    }
);

code_list!(
    /// The area of life a goal is about.
    GoalDomain {
        Diet => "diet" : "Diet",
        PhysicalActivity => "physical_activity" : "Physical activity",
        Weight => "weight" : "Weight",
        Smoking => "smoking" : "Smoking",
        Alcohol => "alcohol" : "Alcohol",
        Wellbeing => "wellbeing" : "Wellbeing",
        Social => "social" : "Social",
        Other => "other" : "Other",
    }
);

code_list!(
    /// Where a goal stands.
    GoalStatus {
        Open => "open" : "Open",
        FullyAchieved => "fully_achieved" : "Fully achieved",
        PartlyAchieved => "partly_achieved" : "Partly achieved",
        NotAchieved => "not_achieved" : "Not achieved",
        Abandoned => "abandoned" : "Abandoned",
    }
);

code_list!(
    /// How a session was held.
    SessionMode {
        FaceToFace => "face_to_face" : "Face to face",
        Telephone => "telephone" : "Telephone",
        Video => "video" : "Video call",
        TextMessage => "text_message" : "Text message",
        Group => "group" : "Group",
    }
);

code_list!(
    /// Where a session was held.
    Venue {
        CommunityVenue => "community_venue" : "Community venue",
        GpPractice => "gp_practice" : "GP practice",
        HealthCentre => "health_centre" : "Health centre",
        Pharmacy => "pharmacy" : "Pharmacy",
        ClientHome => "client_home" : "Client's home",
        Workplace => "workplace" : "Workplace",
        LeisureCentre => "leisure_centre" : "Leisure centre",
        PrisonOrProbation => "prison_or_probation" : "Prison or probation",
        Remote => "remote" : "Remote",
        Other => "other" : "Other",
    }
);

code_list!(
    /// What a session was for.
    SessionPurpose {
        Assessment => "assessment" : "Assessment",
        PlanSetting => "plan_setting" : "Setting the plan",
        Support => "support" : "Support",
        Review => "review" : "Review",
        FollowUp => "follow_up" : "Follow-up",
        BriefIntervention => "brief_intervention" : "Brief intervention",
    }
);

code_list!(
    /// Whether the client came.
    Attendance {
        Yes => "yes" : "Attended",
        DidNotAttend => "did_not_attend" : "Did not attend",
        Cancelled => "cancelled" : "Cancelled",
    }
);

code_list!(
    /// Signposted or formally referred.
    OnwardAction {
        Signposted => "signposted" : "Signposted",
        Referred => "referred" : "Referred",
    }
);

code_list!(
    /// Where a client was signposted or referred to.
    OnwardDestination {
        StopSmoking => "stop_smoking" : "Stop smoking service",
        WeightManagement => "weight_management" : "Weight management",
        ExerciseReferral => "exercise_referral" : "Exercise referral",
        AlcoholService => "alcohol_service" : "Alcohol service",
        MentalHealth => "mental_health" : "Mental health service",
        WelfareOrDebtAdvice => "welfare_or_debt_advice" : "Welfare or debt advice",
        Housing => "housing" : "Housing",
        EmploymentSupport => "employment_support" : "Employment support",
        CommunityGroup => "community_group" : "Community group",
        Gp => "gp" : "GP",
        Other => "other" : "Other",
    }
);

code_list!(
    /// What came of an onward referral.
    OnwardOutcome {
        Unknown => "unknown" : "Not known yet",
        Attended => "attended" : "Attended",
        DidNotAttend => "did_not_attend" : "Did not attend",
    }
);

code_list!(
    /// A wider issue in the client's life.
    WiderIssueKind {
        Housing => "housing" : "Housing",
        DebtOrMoney => "debt_or_money" : "Debt or money",
        Isolation => "isolation" : "Isolation",
        Employment => "employment" : "Employment",
        Caring => "caring" : "Caring",
        FoodInsecurity => "food_insecurity" : "Food insecurity",
        Other => "other" : "Other",
    }
);

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
