-- Reference data (England's deprivation indices, postcode and area lookups, census
-- counts, code lists), loaded from files by `dcrs refdata load`, and the area fields
-- derived from them for each client.

CREATE TABLE settings (
    key TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE refdata_files (
    file TEXT NOT NULL PRIMARY KEY,
    kind TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    bytes BIGINT NOT NULL,
    rows_loaded BIGINT NOT NULL,
    loaded_at TEXT NOT NULL
);

CREATE TABLE ref_lsoa11 (
    lsoa11cd TEXT NOT NULL PRIMARY KEY,
    lsoa11nm TEXT,
    lad19cd TEXT,
    lad19nm TEXT,
    msoa11cd TEXT,
    lad17cd TEXT,
    rgn11cd TEXT,
    rgn11nm TEXT,
    imd2019_score DOUBLE PRECISION,
    imd2019_rank BIGINT,
    imd2019_decile BIGINT,
    pop_mid2015 BIGINT,
    pop_mid2019 BIGINT
);
CREATE INDEX ref_lsoa11_lad ON ref_lsoa11 (lad19cd);

-- IMD of each 2011 LSOA by index year: 2019 directly, 2004/2007/2010 through the
-- 2001-to-2011 best-fit lookup (see docs/reference-data.md for merges and splits).
CREATE TABLE ref_lsoa11_imd (
    year BIGINT NOT NULL,
    lsoa11cd TEXT NOT NULL,
    imd_rank DOUBLE PRECISION,
    imd_decile BIGINT NOT NULL,
    imd_quintile BIGINT NOT NULL,
    PRIMARY KEY (year, lsoa11cd)
);

CREATE TABLE ref_imd_lsoa01 (
    year BIGINT NOT NULL,
    lsoa01cd TEXT NOT NULL,
    imd_score DOUBLE PRECISION,
    imd_rank BIGINT NOT NULL,
    imd_decile BIGINT NOT NULL,
    PRIMARY KEY (year, lsoa01cd)
);

CREATE TABLE ref_lsoa01_lsoa11 (
    lsoa01cd TEXT NOT NULL,
    lsoa11cd TEXT NOT NULL,
    chgind TEXT NOT NULL,
    lad11cd TEXT,
    PRIMARY KEY (lsoa01cd, lsoa11cd)
);
CREATE INDEX ref_lsoa01_lsoa11_by11 ON ref_lsoa01_lsoa11 (lsoa11cd);

CREATE TABLE ref_postcodes (
    pcds TEXT NOT NULL PRIMARY KEY,
    lsoa11cd TEXT NOT NULL,
    dointr TEXT,
    doterm TEXT,
    usertype BIGINT
);

CREATE TABLE ref_lad_region (
    lad_cd TEXT NOT NULL PRIMARY KEY,
    lad_nm TEXT,
    rgn_cd TEXT,
    rgn_nm TEXT
);

CREATE TABLE ref_ltla_utla (
    ltla19cd TEXT NOT NULL PRIMARY KEY,
    ltla19nm TEXT,
    utla19cd TEXT,
    utla19nm TEXT
);

-- 2011 Census usual residents by local authority and the 18 ethnic group categories,
-- each category with the NHS ethnic category it maps to.
CREATE TABLE ref_census_ethnicity (
    lad11cd TEXT NOT NULL,
    category_order BIGINT NOT NULL,
    nhs_code TEXT NOT NULL,
    population BIGINT NOT NULL,
    PRIMARY KEY (lad11cd, category_order)
);

CREATE TABLE ref_census_categories (
    category_order BIGINT NOT NULL PRIMARY KEY,
    group_label TEXT NOT NULL,
    category_label TEXT NOT NULL,
    nhs_code TEXT NOT NULL
);

CREATE TABLE ref_ethnic_category (
    code TEXT NOT NULL PRIMARY KEY,
    group_label TEXT NOT NULL,
    category_label TEXT NOT NULL
);

ALTER TABLE clients ADD COLUMN lsoa11cd TEXT;
ALTER TABLE clients ADD COLUMN lad_cd TEXT;
ALTER TABLE clients ADD COLUMN imd_decile BIGINT;
ALTER TABLE clients ADD COLUMN imd_quintile BIGINT;
CREATE INDEX clients_postcode ON clients (postcode);
