-- The dataset (version 1). Every tenant table is keyed by (service_id, <entity>_id) and
-- its foreign keys to other tenant tables lead with service_id, so a deployment can be
-- distributed by service and a reference can never cross from one service to another.

CREATE TABLE id_counters (
    scope TEXT NOT NULL,
    service_id BIGINT NOT NULL,
    next_id BIGINT NOT NULL,
    PRIMARY KEY (scope, service_id)
);

CREATE TABLE organisations (
    org_id BIGINT NOT NULL PRIMARY KEY,
    org_ref TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    ods_code TEXT,
    entered_via TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE services (
    service_id BIGINT NOT NULL PRIMARY KEY,
    service_ref TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    commissioner_org_id BIGINT NOT NULL REFERENCES organisations (org_id),
    areas_served TEXT NOT NULL,
    started_on TEXT NOT NULL,
    ended_on TEXT,
    entered_via TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE service_configurations (
    service_id BIGINT NOT NULL REFERENCES services (service_id),
    configuration_id BIGINT NOT NULL,
    configuration_ref TEXT NOT NULL,
    effective_from TEXT NOT NULL,
    provider_model TEXT NOT NULL,
    funding TEXT NOT NULL,
    senior_buy_in TEXT NOT NULL,
    primary_referral_routes TEXT NOT NULL,
    worker_profile TEXT NOT NULL,
    targeting TEXT NOT NULL,
    target_lsoas TEXT,
    formal_performance_management TEXT NOT NULL,
    interaction_model TEXT NOT NULL,
    notes TEXT,
    entered_via TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (service_id, configuration_id),
    UNIQUE (service_id, configuration_ref)
);

CREATE TABLE workers (
    service_id BIGINT NOT NULL REFERENCES services (service_id),
    worker_id BIGINT NOT NULL,
    worker_ref TEXT NOT NULL,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL,
    sex TEXT NOT NULL,
    age_band TEXT NOT NULL,
    lives_in_area_served TEXT NOT NULL,
    home_imd_quintile BIGINT,
    qualification TEXT NOT NULL,
    started_on TEXT NOT NULL,
    left_on TEXT,
    fte DOUBLE PRECISION NOT NULL,
    entered_via TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (service_id, worker_id),
    UNIQUE (service_id, worker_ref)
);

CREATE TABLE clients (
    service_id BIGINT NOT NULL REFERENCES services (service_id),
    client_id BIGINT NOT NULL,
    client_ref TEXT NOT NULL,
    given_name TEXT,
    family_name TEXT,
    nhs_number TEXT,
    date_of_birth TEXT NOT NULL,
    sex TEXT NOT NULL,
    ethnicity TEXT NOT NULL,
    postcode TEXT,
    gp_registered TEXT NOT NULL,
    gp_practice_code TEXT,
    employment TEXT NOT NULL,
    disability TEXT NOT NULL,
    consent_to_record TEXT NOT NULL,
    consent_to_share_with_gp TEXT NOT NULL,
    entered_via TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (service_id, client_id),
    UNIQUE (service_id, client_ref)
);
CREATE INDEX clients_nhs_number ON clients (service_id, nhs_number);

CREATE TABLE referrals (
    service_id BIGINT NOT NULL,
    referral_id BIGINT NOT NULL,
    referral_ref TEXT NOT NULL,
    client_id BIGINT NOT NULL,
    received_on TEXT NOT NULL,
    source TEXT NOT NULL,
    referrer_org_id BIGINT REFERENCES organisations (org_id),
    reason TEXT,
    entered_via TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (service_id, referral_id),
    UNIQUE (service_id, referral_ref),
    FOREIGN KEY (service_id, client_id) REFERENCES clients (service_id, client_id)
);
CREATE INDEX referrals_client ON referrals (service_id, client_id);

CREATE TABLE episodes (
    service_id BIGINT NOT NULL,
    episode_id BIGINT NOT NULL,
    episode_ref TEXT NOT NULL,
    referral_id BIGINT NOT NULL,
    lead_worker_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    first_contact_on TEXT NOT NULL,
    primary_issue TEXT NOT NULL,
    closed_on TEXT,
    exit_reason TEXT,
    entered_via TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (service_id, episode_id),
    UNIQUE (service_id, episode_ref),
    FOREIGN KEY (service_id, referral_id) REFERENCES referrals (service_id, referral_id),
    FOREIGN KEY (service_id, lead_worker_id) REFERENCES workers (service_id, worker_id)
);
CREATE INDEX episodes_referral ON episodes (service_id, referral_id);

CREATE TABLE assessments (
    service_id BIGINT NOT NULL,
    assessment_id BIGINT NOT NULL,
    assessment_ref TEXT NOT NULL,
    episode_id BIGINT NOT NULL,
    occasion TEXT NOT NULL,
    assessed_on TEXT NOT NULL,
    height_cm DOUBLE PRECISION,
    weight_kg DOUBLE PRECISION,
    waist_cm DOUBLE PRECISION,
    fruit_veg_portions_per_day DOUBLE PRECISION,
    high_fat_snacks_per_day DOUBLE PRECISION,
    active_days_per_week BIGINT,
    alcohol_units_per_week DOUBLE PRECISION,
    smoking_status TEXT,
    cigarettes_per_day BIGINT,
    self_efficacy BIGINT,
    general_health BIGINT,
    swemwbs_raw BIGINT,
    bmi DOUBLE PRECISION,
    bmi_flagged BIGINT NOT NULL DEFAULT 0,
    entered_via TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (service_id, assessment_id),
    UNIQUE (service_id, assessment_ref),
    FOREIGN KEY (service_id, episode_id) REFERENCES episodes (service_id, episode_id)
);
CREATE INDEX assessments_episode ON assessments (service_id, episode_id);

CREATE TABLE plans (
    service_id BIGINT NOT NULL,
    plan_id BIGINT NOT NULL,
    plan_ref TEXT NOT NULL,
    episode_id BIGINT NOT NULL,
    agreed_on TEXT NOT NULL,
    entered_via TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (service_id, plan_id),
    UNIQUE (service_id, plan_ref),
    FOREIGN KEY (service_id, episode_id) REFERENCES episodes (service_id, episode_id)
);
CREATE INDEX plans_episode ON plans (service_id, episode_id);

CREATE TABLE goals (
    service_id BIGINT NOT NULL,
    goal_id BIGINT NOT NULL,
    goal_ref TEXT NOT NULL,
    plan_id BIGINT NOT NULL,
    domain TEXT NOT NULL,
    description TEXT NOT NULL,
    target_on TEXT,
    status TEXT NOT NULL,
    status_on TEXT,
    entered_via TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (service_id, goal_id),
    UNIQUE (service_id, goal_ref),
    FOREIGN KEY (service_id, plan_id) REFERENCES plans (service_id, plan_id)
);
CREATE INDEX goals_plan ON goals (service_id, plan_id);

CREATE TABLE sessions (
    service_id BIGINT NOT NULL,
    session_id BIGINT NOT NULL,
    session_ref TEXT NOT NULL,
    episode_id BIGINT NOT NULL,
    worker_id BIGINT NOT NULL,
    held_on TEXT NOT NULL,
    duration_min BIGINT NOT NULL,
    mode TEXT NOT NULL,
    venue TEXT NOT NULL,
    purpose TEXT NOT NULL,
    attended TEXT NOT NULL,
    entered_via TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (service_id, session_id),
    UNIQUE (service_id, session_ref),
    FOREIGN KEY (service_id, episode_id) REFERENCES episodes (service_id, episode_id),
    FOREIGN KEY (service_id, worker_id) REFERENCES workers (service_id, worker_id)
);
CREATE INDEX sessions_episode ON sessions (service_id, episode_id);

CREATE TABLE onward_referrals (
    service_id BIGINT NOT NULL,
    onward_id BIGINT NOT NULL,
    onward_ref TEXT NOT NULL,
    episode_id BIGINT NOT NULL,
    made_on TEXT NOT NULL,
    action TEXT NOT NULL,
    destination TEXT NOT NULL,
    outcome TEXT NOT NULL,
    entered_via TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (service_id, onward_id),
    UNIQUE (service_id, onward_ref),
    FOREIGN KEY (service_id, episode_id) REFERENCES episodes (service_id, episode_id)
);
CREATE INDEX onward_referrals_episode ON onward_referrals (service_id, episode_id);

CREATE TABLE wider_issues (
    service_id BIGINT NOT NULL,
    wider_issue_id BIGINT NOT NULL,
    wider_issue_ref TEXT NOT NULL,
    episode_id BIGINT NOT NULL,
    noted_on TEXT NOT NULL,
    issue TEXT NOT NULL,
    entered_via TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (service_id, wider_issue_id),
    UNIQUE (service_id, wider_issue_ref),
    FOREIGN KEY (service_id, episode_id) REFERENCES episodes (service_id, episode_id)
);
CREATE INDEX wider_issues_episode ON wider_issues (service_id, episode_id);

-- One row per episode, rewritten in the same transaction as any write to the episode
-- or its records, so that reports count from here without a rebuild step.
CREATE TABLE episode_summaries (
    service_id BIGINT NOT NULL,
    episode_id BIGINT NOT NULL,
    client_id BIGINT NOT NULL,
    client_ref TEXT NOT NULL,
    referral_ref TEXT NOT NULL,
    referral_received_on TEXT NOT NULL,
    source_group TEXT NOT NULL,
    kind TEXT NOT NULL,
    first_contact_on TEXT NOT NULL,
    closed_on TEXT,
    exit_reason TEXT,
    baseline_on TEXT,
    exit_on TEXT,
    plan_agreed_on TEXT,
    goals BIGINT NOT NULL,
    goals_final BIGINT NOT NULL,
    goals_fully BIGINT NOT NULL,
    goals_partly BIGINT NOT NULL,
    sessions_attended BIGINT NOT NULL,
    sessions_dna BIGINT NOT NULL,
    sessions_telephone BIGINT NOT NULL,
    sessions_face_to_face BIGINT NOT NULL,
    sessions_clinical_venue BIGINT NOT NULL,
    review_sessions BIGINT NOT NULL,
    last_attended_on TEXT,
    wider_issues BIGINT NOT NULL,
    onward_referrals BIGINT NOT NULL,
    PRIMARY KEY (service_id, episode_id),
    FOREIGN KEY (service_id, episode_id) REFERENCES episodes (service_id, episode_id),
    FOREIGN KEY (service_id, client_id) REFERENCES clients (service_id, client_id)
);
CREATE INDEX episode_summaries_first_contact ON episode_summaries (service_id, first_contact_on);
CREATE INDEX episode_summaries_closed ON episode_summaries (service_id, closed_on);
CREATE INDEX episode_summaries_referral ON episode_summaries (service_id, referral_received_on);

-- Who did what, when. Updates keep the values before and after.
CREATE TABLE audit_log (
    audit_id BIGSERIAL PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    entity TEXT,
    service_id BIGINT,
    record_ref TEXT,
    detail TEXT
);
CREATE INDEX audit_log_service ON audit_log (service_id, at);
