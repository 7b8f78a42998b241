#!/usr/bin/env python3
"""Baseline for `dcrs report pack`: the figures of analytics.md sections 1-5 (activity,
reach against need, outcomes, pathway, workforce) for every service and for all services
together, for one period, computed with DuckDB SQL from the Parquet files written by
convert.py. No disclosure control is applied (the figures match `--policy none`).

    python3 pack.py PARQUET_DIR 2010-11Q3 OUT.json

The whole job is one process and one in-memory DuckDB connection over the Parquet
files; nothing is cached between runs. The episode summaries that dcrs keeps up to date
on every write (dates reached, sessions attended, ...) are derived here from the base
tables, and so is BMI (weight over the square of the latest height of the client on or
before the assessment, to one decimal place).

Where this simplifies (see README.md): no disclosure control or secondary suppression,
no data-quality section (6), no report metadata, and figures are a flat JSON of numbers
rather than dcrs's typed tables.
"""
import json
import math
import re
import sys
import time
from datetime import date
from statistics import NormalDist

import duckdb

TABLES = [
    "services", "workers", "clients", "client_areas", "referrals", "episodes",
    "assessments", "plans", "goals", "sessions",
    "ref_lsoa11", "ref_lsoa11_imd", "ref_census_ethnicity", "ref_lsoa01_lsoa11",
]

SOURCE_GROUP = {
    "self": "community", "friend_or_family": "community",
    "community_organisation": "community", "outreach_event": "community",
    "workplace": "community", "local_authority_service": "community",
    "housing_or_jobcentre": "community",
    "gp": "clinical", "practice_nurse": "clinical", "health_check": "clinical",
    "stop_smoking_service": "clinical", "pharmacy": "clinical", "hospital": "clinical",
    "mental_health_service": "clinical", "other_health_professional": "clinical",
    "probation": "criminal_justice", "prison": "criminal_justice",
    "other": "other",
}
EXIT_REASONS = ["completed", "disengaged", "withdrew", "referred_on", "moved_away",
                "inappropriate_referral", "other"]
GOAL_STATUS = ["fully_achieved", "partly_achieved", "not_achieved", "abandoned"]
ETHNIC_GROUPS = ["White", "Mixed", "Asian", "Black", "Other", "Not stated or not known"]
QUINTILES = ["1", "2", "3", "4", "5", "unknown"]
AGE_BANDS = ["16-24", "25-34", "35-44", "45-54", "55-64", "65+"]
STEPS = ["referred", "seen", "baseline", "plan", "review", "closed", "exit"]
# (column, higher is better)
MEASURES = [
    ("bmi", False), ("fruit_veg_portions_per_day", True),
    ("high_fat_snacks_per_day", False), ("active_days_per_week", True),
    ("alcohol_units_per_week", False), ("self_efficacy", True),
    ("general_health", True), ("swemwbs_raw", True),
]
ALL = "ALL"

# SQL fragments.
ETHNIC_GROUP_SQL = """CASE
  WHEN c.ethnicity IN ('A','B','C') THEN 0
  WHEN c.ethnicity IN ('D','E','F','G') THEN 1
  WHEN c.ethnicity IN ('H','J','K','L') THEN 2
  WHEN c.ethnicity IN ('M','N','P') THEN 3
  WHEN c.ethnicity IN ('R','S') THEN 4
  ELSE 5 END"""
# Whole years at first contact, as dcrs works them out from the ISO dates.
AGE_BAND_SQL = """CASE
  WHEN age <= 24 THEN 0 WHEN age <= 34 THEN 1 WHEN age <= 44 THEN 2
  WHEN age <= 54 THEN 3 WHEN age <= 64 THEN 4 ELSE 5 END"""
# A service-or-all key for GROUPING SETS ((service_ref, ...), (...)).
SVC = f"CASE WHEN grouping(service_ref) = 1 THEN '{ALL}' ELSE service_ref END"


def period_of(text: str):
    """A financial year (2010-11) or quarter (2010-11Q3, '2010-11 Q3')."""
    m = re.fullmatch(r"\s*(\d{4})-(\d{2})\s*(?:Q([1-4]))?\s*", text)
    if not m:
        sys.exit(f"not a financial year or quarter: {text!r}")
    y = int(m.group(1))
    if m.group(3) is None:
        return date(y, 4, 1), date(y + 1, 3, 31)
    q = int(m.group(3))
    starts = {1: (y, 4, 1), 2: (y, 7, 1), 3: (y, 10, 1), 4: (y + 1, 1, 1)}
    ends = {1: (y, 6, 30), 2: (y, 9, 30), 3: (y, 12, 31), 4: (y + 1, 3, 31)}
    return date(*starts[q]), date(*ends[q])


# ---------------------------------------------------------------- statistics

Z975 = NormalDist().inv_cdf(0.975)


def wilson(k, n):
    if not n:
        return None
    p = k / n
    z2 = Z975 * Z975
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z975 / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return [p, max(centre - half, 0.0), min(centre + half, 1.0)]


_T = {}


def t975(df: int) -> float:
    """97.5th percentile of Student's t (Hill 1970, ACM algorithm 396)."""
    if df in _T:
        return _T[df]
    n, p = float(df), 0.05  # two-tailed probability
    if df == 1:
        v = math.cos(p * math.pi / 2) / math.sin(p * math.pi / 2)
    elif df == 2:
        v = math.sqrt(2.0 / (p * (2.0 - p)) - 2.0)
    else:
        a = 1.0 / (n - 0.5)
        b = 48.0 / (a * a)
        c = ((20700.0 * a / b - 98.0) * a - 16.0) * a + 96.36
        d = ((94.5 / (b + c) - 3.0) / b + 1.0) * math.sqrt(a * math.pi / 2.0) * n
        x = d * p
        y = x ** (2.0 / n)
        if y > 0.05 + a:
            x = NormalDist().inv_cdf(p * 0.5)
            y = x * x
            if n < 5:
                c += 0.3 * (n - 4.5) * (x + 0.6)
            c = (((0.05 * d * x - 5.0) * x - 7.0) * x - 2.0) * x + b + c
            y = (((((0.4 * y + 6.3) * y + 36.0) * y + 94.5) / c - y - 3.0) / b + 1.0) * x
            y = a * y * y
            y = math.expm1(y) if y > 0.002 else 0.5 * y * y + y
        else:
            y = ((1.0 / (((n + 6.0) / (n * y) - 0.089 * d - 0.822) * (n + 2.0) * 3.0)
                  + 0.5 / (n + 4.0)) * y - 1.0) * (n + 1.0) / (n + 2.0) + 1.0 / y
        v = math.sqrt(n * y)
    # Two Newton steps on the exact distribution function polish the approximation.
    for _ in range(2):
        v -= (t_cdf(v, df) - 0.975) / t_pdf(v, df)
    _T[df] = v
    return v


def t_cdf(t: float, df: int) -> float:
    """P(T <= t) for t >= 0 and whole df (Abramowitz and Stegun 26.7.3-4)."""
    th = math.atan(t / math.sqrt(df))
    c2, sn = math.cos(th) ** 2, math.sin(th)
    if df % 2 == 1:
        term, s = math.cos(th), 0.0
        if df > 1:
            s = term
            for k in range(3, df - 1, 2):
                term *= c2 * (k - 1) / k
                s += term
        a = 2.0 / math.pi * (th + sn * s)
    else:
        term, s = 1.0, 1.0
        for k in range(2, df - 1, 2):
            term *= c2 * (k - 1) / k
            s += term
        a = sn * s
    return 0.5 + 0.5 * a


def t_pdf(t: float, df: int) -> float:
    return math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)
                    - 0.5 * math.log(df * math.pi)
                    - (df + 1) / 2 * math.log1p(t * t / df))


def chi_square_p(table):
    """Pearson chi-square p-value (no continuity correction) for rows x 2 columns."""
    rows = [sum(r) for r in table]
    cols = [sum(r[j] for r in table) for j in range(2)]
    total = sum(rows)
    if len(table) < 2 or 0 in rows or 0 in cols:
        return None
    stat = sum((o - rows[i] * cols[j] / total) ** 2 / (rows[i] * cols[j] / total)
               for i, r in enumerate(table) for j, o in enumerate(r))
    k = (len(table) - 1) / 2.0  # df / 2; upper regularised gamma Q(k, x)
    x = stat / 2.0
    if k == int(k):
        term, s = 1.0, 1.0
        for i in range(1, int(k)):
            term *= x / i
            s += term
        return math.exp(-x) * s
    q = math.erfc(math.sqrt(x))
    a = 0.5
    while a < k:
        q += math.exp(a * math.log(x) - x - math.lgamma(a + 1)) if x > 0 else 0.0
        a += 1.0
    return q


# ---------------------------------------------------------------- queries


def rows(con, sql):
    return con.execute(sql).fetchall()


def build(con, frm: date, to: date):
    F, T = f"DATE '{frm}'", f"DATE '{to}'"
    within = lambda col: f"{col} BETWEEN {F} AND {T}"  # noqa: E731

    # Clients with the characteristics the reports break down by.
    con.execute(f"""
        CREATE TEMP TABLE cl AS
        SELECT c.service_ref, c.client_ref,
               CASE WHEN a.imd_quintile BETWEEN 1 AND 5 THEN a.imd_quintile END AS q,
               {ETHNIC_GROUP_SQL} AS eg, c.sex, c.gp_registered AS gp, c.date_of_birth AS dob
        FROM clients c LEFT JOIN client_areas a USING (service_ref, client_ref)""")
    # Episode summaries (what dcrs keeps in episode_summaries), for every episode.
    con.execute("""
        CREATE TEMP TABLE es AS
        WITH a AS (
          SELECT service_ref, episode_ref,
                 min(assessed_on) FILTER (WHERE occasion = 'baseline') AS baseline_on,
                 min(assessed_on) FILTER (WHERE occasion = 'exit') AS exit_on
          FROM assessments GROUP BY ALL),
        p AS (SELECT service_ref, episode_ref, min(agreed_on) AS plan_agreed_on
              FROM plans GROUP BY ALL),
        s AS (
          SELECT service_ref, episode_ref,
                 count(*) FILTER (WHERE attended = 'yes') AS sessions_attended,
                 count(*) FILTER (WHERE attended = 'yes' AND purpose = 'review') AS review_sessions
          FROM sessions GROUP BY ALL)
        SELECT e.service_ref, e.episode_ref, e.referral_ref, r.client_ref,
               r.received_on AS referral_received_on, e.kind, e.first_contact_on,
               e.closed_on, e.exit_reason, a.baseline_on, a.exit_on, p.plan_agreed_on,
               coalesce(s.sessions_attended, 0) AS sessions_attended,
               coalesce(s.review_sessions, 0) AS review_sessions
        FROM episodes e
        JOIN referrals r USING (service_ref, referral_ref)
        LEFT JOIN a USING (service_ref, episode_ref)
        LEFT JOIN p USING (service_ref, episode_ref)
        LEFT JOIN s USING (service_ref, episode_ref)""")

    out = {}

    def scope(s):
        return out.setdefault(s, {})

    # --- 1. Activity ------------------------------------------------------
    for s, source, n in rows(con, f"""
            SELECT {SVC}, source, count(*) FROM referrals WHERE {within('received_on')}
            GROUP BY GROUPING SETS ((service_ref, source), (source))"""):
        scope(s).setdefault("referrals_by_source", {})[source] = n

    for s, full, brief, days in rows(con, f"""
            SELECT {SVC}, count(*) FILTER (WHERE kind = 'full'),
                   count(*) FILTER (WHERE kind = 'brief'),
                   median(date_diff('day', referral_received_on, first_contact_on))
            FROM es WHERE {within('first_contact_on')}
            GROUP BY GROUPING SETS ((service_ref), ())"""):
        a = scope(s)
        a["episodes_opened"] = {"full": full, "brief": brief, "all": full + brief}
        a["median_days_referral_to_first_contact"] = days

    for s, n in rows(con, f"""
            SELECT {SVC}, count(*) FROM es
            WHERE first_contact_on <= {T} AND (closed_on IS NULL OR closed_on > {T})
            GROUP BY GROUPING SETS ((service_ref), ())"""):
        scope(s)["open_caseload_at_end"] = n

    for s, att, dna, canc in rows(con, f"""
            SELECT {SVC}, count(*) FILTER (WHERE attended = 'yes'),
                   count(*) FILTER (WHERE attended = 'did_not_attend'),
                   count(*) FILTER (WHERE attended = 'cancelled')
            FROM sessions WHERE {within('held_on')}
            GROUP BY GROUPING SETS ((service_ref), ())"""):
        scope(s)["sessions"] = {
            "attended": att, "did_not_attend": dna, "cancelled": canc,
            "recorded": att + dna + canc, "dna_rate": wilson(dna, att + dna)}

    for s, n in rows(con, f"""
            SELECT {SVC}, count(DISTINCT (es.service_ref, es.client_ref))
            FROM sessions x JOIN es USING (service_ref, episode_ref)
            WHERE x.attended = 'yes' AND {within('x.held_on')}
            GROUP BY GROUPING SETS ((service_ref), ())"""):
        scope(s)["clients_seen"] = n

    for s, plans, goals in rows(con, f"""
            WITH g AS (SELECT service_ref, plan_ref, count(*) AS n FROM goals GROUP BY ALL)
            SELECT {SVC}, count(*), coalesce(sum(g.n), 0)
            FROM plans p LEFT JOIN g USING (service_ref, plan_ref)
            WHERE {within('p.agreed_on')}
            GROUP BY GROUPING SETS ((service_ref), ())"""):
        scope(s)["plans_agreed"] = plans
        scope(s)["goals_set"] = int(goals)

    for s, reason, kind, n in rows(con, f"""
            SELECT {SVC}, coalesce(exit_reason, 'other') AS reason, kind, count(*)
            FROM es WHERE {within('closed_on')}
            GROUP BY GROUPING SETS ((service_ref, reason, kind), (reason, kind))"""):
        t = scope(s).setdefault("episodes_closed_by_exit_reason", {})
        t.setdefault(reason, {"full": 0, "brief": 0})[kind] = n

    for s, n, med in rows(con, f"""
            SELECT {SVC}, count(*), median(sessions_attended) FROM es
            WHERE {within('closed_on')} AND kind = 'full'
            GROUP BY GROUPING SETS ((service_ref), ())"""):
        scope(s)["full_episodes_closed"] = n
        scope(s)["median_attended_sessions_per_closed_full_episode"] = med

    # --- 2. Reach against need -------------------------------------------
    con.execute(f"""
        CREATE TEMP TABLE nc AS
        WITH first AS (
          SELECT service_ref, client_ref, min(first_contact_on) AS fc FROM es GROUP BY ALL)
        SELECT f.service_ref, cl.q, cl.eg, cl.sex, cl.gp,
               (year(f.fc) - year(cl.dob)
                - CASE WHEN strftime(f.fc, '%m-%d') < strftime(cl.dob, '%m-%d')
                       THEN 1 ELSE 0 END) AS age
        FROM first f JOIN cl USING (service_ref, client_ref)
        WHERE {within('f.fc')}""")
    for s, dim, key, n in rows(con, f"""
            SELECT {SVC}, 'quintile', CAST(q AS VARCHAR), count(*) FROM nc
              GROUP BY GROUPING SETS ((service_ref, q), (q))
            UNION ALL SELECT {SVC}, 'ethnic_group', CAST(eg AS VARCHAR), count(*) FROM nc
              GROUP BY GROUPING SETS ((service_ref, eg), (eg))
            UNION ALL SELECT {SVC}, 'sex', sex, count(*) FROM nc
              GROUP BY GROUPING SETS ((service_ref, sex), (sex))
            UNION ALL SELECT {SVC}, 'gp_registered', gp, count(*) FROM nc
              GROUP BY GROUPING SETS ((service_ref, gp), (gp))
            UNION ALL SELECT {SVC}, 'age_band', CAST(band AS VARCHAR), count(*)
              FROM (SELECT *, {AGE_BAND_SQL} AS band FROM nc)
              GROUP BY GROUPING SETS ((service_ref, band), (band))"""):
        if dim == "quintile":
            key = key or "unknown"
        elif dim == "ethnic_group":
            key = ETHNIC_GROUPS[int(key)]
        elif dim == "age_band":
            key = AGE_BANDS[int(key)]
        scope(s).setdefault("new_clients_by", {}).setdefault(dim, {})[key] = n

    # Need: population of the areas served by quintile, census population by group.
    # All services: the union of every service's districts, each counted once.
    con.execute("""
        CREATE TEMP TABLE areas AS
        SELECT DISTINCT service_ref, trim(a) AS lad
        FROM (SELECT service_ref, unnest(string_split(areas_served, ';')) AS a FROM services)
        WHERE trim(a) <> ''""")
    con.execute(f"""
        CREATE TEMP TABLE scope_areas AS
        SELECT service_ref AS scope, lad FROM areas
        UNION SELECT '{ALL}', lad FROM areas""")
    for s, q, pop in rows(con, """
            SELECT sa.scope, i.imd_quintile, sum(l.pop_mid2015)
            FROM scope_areas sa JOIN ref_lsoa11 l ON l.lad19cd = sa.lad
            JOIN ref_lsoa11_imd i ON i.lsoa11cd = l.lsoa11cd
            GROUP BY ALL"""):
        scope(s).setdefault("population_by_quintile", {})[str(q)] = int(pop)
    for s, code, pop in rows(con, """
            WITH lad11 AS (
              SELECT scope, lad AS lad11cd FROM scope_areas
              UNION
              SELECT DISTINCT sa.scope, x.lad11cd FROM scope_areas sa
              JOIN ref_lsoa11 l ON l.lad19cd = sa.lad
              JOIN ref_lsoa01_lsoa11 x ON x.lsoa11cd = l.lsoa11cd
              WHERE x.lad11cd IS NOT NULL)
            SELECT l.scope, ce.nhs_code, sum(ce.population)
            FROM lad11 l JOIN ref_census_ethnicity ce USING (lad11cd)
            GROUP BY ALL"""):
        g = scope(s).setdefault("census_population_by_ethnic_group", {})
        name = ETHNIC_GROUPS[ethnic_group(code)]
        g[name] = g.get(name, 0) + int(pop)

    # --- 3. Outcomes -------------------------------------------------------
    con.execute(f"""
        CREATE TEMP TABLE fg AS
        SELECT g.service_ref, es.client_ref, cl.q, g.status
        FROM goals g
        JOIN plans p USING (service_ref, plan_ref)
        JOIN es ON es.service_ref = p.service_ref AND es.episode_ref = p.episode_ref
        JOIN cl ON cl.service_ref = es.service_ref AND cl.client_ref = es.client_ref
        WHERE g.status <> 'open' AND {within('g.status_on')}""")
    for s, q, status, n in rows(con, f"""
            SELECT {SVC}, CAST(q AS VARCHAR) AS qk, status, count(*) FROM fg
            GROUP BY GROUPING SETS ((service_ref, qk, status), (qk, status))"""):
        scope(s).setdefault("goals_finalised", {}).setdefault(q or "unknown", {})[status] = n
    for s, q, cls, n in rows(con, f"""
            WITH c AS (
              SELECT service_ref, client_ref, q,
                     CASE WHEN bool_and(status = 'fully_achieved') THEN 'fully'
                          WHEN bool_or(status IN ('fully_achieved', 'partly_achieved')) THEN 'partly'
                          ELSE 'not' END AS class
              FROM fg GROUP BY service_ref, client_ref, q)
            SELECT {SVC}, CAST(q AS VARCHAR) AS qk, class, count(*) FROM c
            GROUP BY GROUPING SETS ((service_ref, qk, class), (qk, class))"""):
        scope(s).setdefault("goal_clients", {}).setdefault(q or "unknown", {})[cls] = n

    # BMI of every assessment: weight over the square of the latest height of the
    # client recorded on or before it (its own first), to one decimal place.
    con.execute("""
        CREATE TEMP TABLE am AS
        SELECT *, round(weight_kg / ((h / 100.0) * (h / 100.0)) * 10) / 10 AS bmi
        FROM (
          SELECT a.*, es.client_ref,
                 coalesce(a.height_cm, last_value(a.height_cm IGNORE NULLS) OVER (
                   PARTITION BY a.service_ref, es.client_ref ORDER BY a.assessed_on
                   RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)) AS h
          FROM assessments a JOIN es USING (service_ref, episode_ref)
          WHERE a.occasion IN ('baseline', 'exit') OR a.height_cm IS NOT NULL)
        WHERE occasion IN ('baseline', 'exit')""")
    pair_cols = ", ".join(f"b.{m} AS b_{m}, e.{m} AS e_{m}" for m, _ in MEASURES)
    con.execute(f"""
        CREATE TEMP TABLE pairs AS
        SELECT es.service_ref, cl.q, {pair_cols},
               b.smoking_status AS b_smoking, e.smoking_status AS e_smoking
        FROM es
        JOIN cl USING (service_ref, client_ref)
        JOIN am b ON b.service_ref = es.service_ref AND b.episode_ref = es.episode_ref
                 AND b.occasion = 'baseline'
        JOIN am e ON e.service_ref = es.service_ref AND e.episode_ref = es.episode_ref
                 AND e.occasion = 'exit'
        WHERE {within('es.closed_on')}
          AND es.baseline_on IS NOT NULL AND es.exit_on IS NOT NULL""")
    long = " UNION ALL ".join(
        f"SELECT service_ref, q, '{m}' AS measure, CAST(b_{m} AS DOUBLE) AS b, "
        f"CAST(e_{m} AS DOUBLE) AS e, {str(higher).upper()} AS higher FROM pairs "
        f"WHERE b_{m} IS NOT NULL AND e_{m} IS NOT NULL"
        for m, higher in MEASURES)
    for s, qk, measure, n, bm, em, dm, sd, imp in rows(con, f"""
            SELECT {SVC}, CASE WHEN grouping(q) = 1 THEN 'all'
                               ELSE coalesce(CAST(q AS VARCHAR), 'unknown') END,
                   measure, count(*), avg(b), avg(e), avg(e - b), stddev_samp(e - b),
                   count(*) FILTER (WHERE CASE WHEN higher THEN e > b ELSE e < b END)
            FROM ({long})
            GROUP BY GROUPING SETS ((service_ref, measure, q), (service_ref, measure),
                                    (measure, q), (measure))"""):
        ci = None
        if n >= 2 and sd is not None:
            half = t975(n - 1) * sd / math.sqrt(n)
            ci = [dm - half, dm + half]
        scope(s).setdefault("paired_change", {}).setdefault(measure, {})[qk] = {
            "n": n, "baseline_mean": bm, "exit_mean": em, "mean_difference": dm,
            "difference_ci": ci,
            "standardised_effect": (dm / sd) if sd else None,
            "improved": imp, "share_improved": wilson(imp, n)}
    for s, qk, n, quit in rows(con, f"""
            SELECT {SVC}, CASE WHEN grouping(q) = 1 THEN 'all'
                               ELSE coalesce(CAST(q AS VARCHAR), 'unknown') END,
                   count(*), count(*) FILTER (WHERE e_smoking <> 'current')
            FROM pairs WHERE b_smoking = 'current' AND e_smoking IS NOT NULL
            GROUP BY GROUPING SETS ((service_ref, q), (service_ref), (q), ())"""):
        scope(s).setdefault("smoking", {})[qk] = {
            "baseline_smokers": n, "not_smoking_at_exit": quit, "share": wilson(quit, n)}

    # Outcome-data completeness of full episodes closed in the period.
    for s, dim, key, n, w in rows(con, f"""
            WITH c AS (
              SELECT es.service_ref, cl.q, cl.eg,
                     (es.baseline_on IS NOT NULL AND es.exit_on IS NOT NULL) AS with_data
              FROM es JOIN cl USING (service_ref, client_ref)
              WHERE {within('es.closed_on')} AND es.kind = 'full')
            SELECT {SVC}, 'quintile', CAST(q AS VARCHAR), count(*), count(*) FILTER (WHERE with_data)
              FROM c GROUP BY GROUPING SETS ((service_ref, q), (q))
            UNION ALL
            SELECT {SVC}, 'ethnic_group', CAST(eg AS VARCHAR), count(*), count(*) FILTER (WHERE with_data)
              FROM c GROUP BY GROUPING SETS ((service_ref, eg), (eg))"""):
        key = (key or "unknown") if dim == "quintile" else ETHNIC_GROUPS[int(key)]
        scope(s).setdefault("outcome_data", {}).setdefault(dim, {})[key] = {
            "closed_full": n, "with_outcome_data": w, "share": wilson(w, n)}

    # --- 4. Pathway ----------------------------------------------------------
    step_sums = ", ".join(f"count(*) FILTER (WHERE reached >= {i + 1})" for i in range(7))
    con.execute(f"""
        CREATE TEMP TABLE cohort AS
        SELECT r.service_ref, cl.q, cl.eg,
               CASE WHEN es.episode_ref IS NULL THEN 1
                    WHEN es.baseline_on IS NULL THEN 2
                    WHEN es.plan_agreed_on IS NULL THEN 3
                    WHEN es.review_sessions = 0 THEN 4
                    WHEN es.closed_on IS NULL THEN 5
                    WHEN es.exit_on IS NULL THEN 6
                    ELSE 7 END AS reached
        FROM referrals r
        JOIN cl USING (service_ref, client_ref)
        LEFT JOIN es ON es.service_ref = r.service_ref AND es.referral_ref = r.referral_ref
        WHERE {within('r.received_on')} AND (es.kind IS NULL OR es.kind <> 'brief')""")
    for rec in rows(con, f"""
            SELECT {SVC}, 'all', 'all', {step_sums} FROM cohort
              GROUP BY GROUPING SETS ((service_ref), ())
            UNION ALL
            SELECT {SVC}, 'quintile', coalesce(CAST(q AS VARCHAR), 'unknown'), {step_sums}
              FROM cohort GROUP BY GROUPING SETS ((service_ref, q), (q))
            UNION ALL
            SELECT {SVC}, 'ethnic_group', CAST(eg AS VARCHAR), {step_sums}
              FROM cohort GROUP BY GROUPING SETS ((service_ref, eg), (eg))"""):
        s, dim, key, counts = rec[0], rec[1], rec[2], list(rec[3:])
        steps = dict(zip(STEPS, counts))
        p = scope(s).setdefault("pathway", {})
        if dim == "all":
            p["steps"] = {
                st: {"referrals": c,
                     "share_of_cohort": wilson(c, counts[0]),
                     "share_of_previous": wilson(c, counts[max(i - 1, 0)])}
                for i, (st, c) in enumerate(steps.items())}
        else:
            key = ETHNIC_GROUPS[int(key)] if dim == "ethnic_group" else key
            steps["share_exit"] = wilson(counts[6], counts[0])
            p.setdefault(f"by_{dim}", {})[key] = steps

    # --- 5. Workforce ------------------------------------------------------------
    for s, n, fte, lives_yes, lives_known, home12, home_known, quals in rows(con, f"""
            WITH w AS (SELECT * FROM workers
                       WHERE started_on <= {T} AND (left_on IS NULL OR left_on >= {F}))
            SELECT {SVC}, count(*), sum(fte),
                   count(*) FILTER (WHERE lives_in_area_served = 'yes'),
                   count(*) FILTER (WHERE lives_in_area_served IN ('yes', 'no')),
                   count(*) FILTER (WHERE home_imd_quintile IN (1, 2)),
                   count(*) FILTER (WHERE home_imd_quintile BETWEEN 1 AND 5),
                   histogram(qualification)
            FROM w GROUP BY GROUPING SETS ((service_ref), ())"""):
        a = scope(s)
        seen = a.get("clients_seen", 0)
        att = a.get("sessions", {}).get("attended", 0)
        a["workforce"] = {
            "workers_active": n, "fte": fte,
            "lives_in_area": lives_yes, "lives_known": lives_known,
            "share_lives_in_area": wilson(lives_yes, lives_known),
            "home_quintile_1_2": home12, "home_quintile_known": home_known,
            "share_home_quintile_1_2": wilson(home12, home_known),
            "qualification": as_dict(quals),
            "clients_seen": seen, "sessions_attended": att,
            "clients_seen_per_fte": seen / fte if fte else None,
            "sessions_attended_per_fte": att / fte if fte else None,
        }
    return out


def as_dict(m):
    if isinstance(m, dict) and set(m) == {"key", "value"}:
        return dict(zip(m["key"], m["value"]))
    return dict(m or {})


def ethnic_group(code: str) -> int:
    for i, codes in enumerate(["ABC", "DEFG", "HJKL", "MNP", "RS"]):
        if code in codes and len(code) == 1:
            return i
    return 5


def finish(out, services):
    """Totals, groups and shares derived from the counts, per scope."""
    docs = []
    for s in [ALL] + services:
        a = out.setdefault(s, {})
        src = a.get("referrals_by_source", {})
        groups = {}
        for k, v in src.items():
            g = SOURCE_GROUP.get(k, "other")
            groups[g] = groups.get(g, 0) + v
        total = sum(src.values())
        a["referrals_received"] = total
        a["referrals_by_group"] = groups
        nc = a.get("new_clients_by", {})
        a["new_clients"] = sum(nc.get("quintile", {}).values())
        qs = nc.get("quintile", {})
        known = sum(v for k, v in qs.items() if k != "unknown")
        pop = a.get("population_by_quintile", {})
        pop_total = sum(pop.values())
        a["reach_by_quintile"] = {
            k: {"new_clients": qs.get(k, 0), "client_share": wilson(qs.get(k, 0), known),
                "population": pop.get(k, 0),
                "population_share": pop.get(k, 0) / pop_total if pop_total else None,
                "reach_ratio": (qs.get(k, 0) / known) / (pop.get(k, 0) / pop_total)
                if known and pop_total and pop.get(k, 0) else None}
            for k in QUINTILES[:5]}
        a["reach_headline_q12"] = {
            "count": qs.get("1", 0) + qs.get("2", 0),
            "share": wilson(qs.get("1", 0) + qs.get("2", 0), known)}
        eg = nc.get("ethnic_group", {})
        stated = sum(v for k, v in eg.items() if k != ETHNIC_GROUPS[5])
        cen = a.get("census_population_by_ethnic_group", {})
        cen_total = sum(v for k, v in cen.items() if k != ETHNIC_GROUPS[5])
        a["reach_by_ethnic_group"] = {
            k: {"new_clients": eg.get(k, 0), "client_share": wilson(eg.get(k, 0), stated),
                "population": cen.get(k, 0),
                "population_share": cen.get(k, 0) / cen_total if cen_total else None,
                "reach_ratio": (eg.get(k, 0) / stated) / (cen.get(k, 0) / cen_total)
                if stated and cen_total and cen.get(k, 0) else None}
            for k in ETHNIC_GROUPS[:5]}
        gp = nc.get("gp_registered", {})
        a["share_not_registered_with_gp"] = wilson(gp.get("no", 0), a["new_clients"])
        # Bias warning (analytics.md section 4) on exact counts.
        warnings = []
        od = a.get("outcome_data", {})
        for dim, groups_ in od.items():
            g = [(k, v["closed_full"], v["with_outcome_data"]) for k, v in groups_.items()
                 if k not in ("unknown", ETHNIC_GROUPS[5]) and v["closed_full"] >= 20]
            if len(g) < 2:
                continue
            p = chi_square_p([[w, c - w] for _, c, w in g])
            shares = [(k, w / c) for k, c, w in g]
            lo, hi = min(shares, key=lambda x: x[1]), max(shares, key=lambda x: x[1])
            if p is not None and p < 0.05 and hi[1] - lo[1] >= 0.10:
                warnings.append({"by": dim, "high": hi, "low": lo, "p": p})
        a["bias_warnings"] = warnings
        docs.append({"scope": s, "figures": a})
    return docs


def main() -> None:
    if len(sys.argv) != 4:
        sys.exit("usage: pack.py PARQUET_DIR PERIOD OUT.json")
    d, period, out_path = sys.argv[1:4]
    frm, to = period_of(period)
    t0 = time.perf_counter()
    con = duckdb.connect()
    for t in TABLES:
        con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{d}/{t}.parquet')")
    out = build(con, frm, to)
    services = [r[0] for r in rows(con, "SELECT service_ref FROM services ORDER BY 1")]
    docs = finish(out, services)
    with open(out_path, "w") as f:
        json.dump({"period": {"from": str(frm), "to": str(to), "label": period},
                   "policy": "none", "documents": docs}, f, default=str)
    print(f"{len(docs)} documents ({len(services)} services and all services), "
          f"{frm}..{to}, in {time.perf_counter() - t0:.2f} s -> {out_path}", file=sys.stderr)


if __name__ == "__main__":
    main()
