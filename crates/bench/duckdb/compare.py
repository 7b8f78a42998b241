#!/usr/bin/env python3
"""Compare the figures of pack.py's JSON with a `dcrs report pack --each-service
--policy none --format json` document array, cell by cell where both have the figure.

    python3 compare.py DUCK.json DCRS.json

Prints the number of cells compared and every mismatch (values agree when within 1e-5
relative or 1e-6 absolute; dcrs rounds to six decimals).
"""
import json
import sys

QROWS = ["Quintile 1 (most deprived)", "Quintile 2", "Quintile 3", "Quintile 4",
         "Quintile 5 (least deprived)", "Quintile unknown"]
QKEYS = ["1", "2", "3", "4", "5", "unknown"]
EG = ["White", "Mixed", "Asian", "Black", "Other", "Not stated or not known"]
MEASURES = {
    "bmi": "BMI (kg/m²)",
    "fruit_veg_portions_per_day": "Fruit and vegetable portions a day",
    "high_fat_snacks_per_day": "High-fat snacks a day",
    "active_days_per_week": "Active days a week",
    "alcohol_units_per_week": "Alcohol units a week",
    "self_efficacy": "Self efficacy (0-10)",
    "general_health": "General health (0-100)",
    "swemwbs_raw": "SWEMWBS raw score (7-35)",
}
STEPS = ["referred", "seen", "baseline", "plan", "review", "closed", "exit"]
STEP_LABELS = ["Referred", "Seen (episode opened)", "Baseline recorded", "Plan agreed",
               "At least one review session", "Closed", "Exit assessment recorded"]
SMOKING = "Smoking: not smoking at exit, of baseline smokers"


def dcrs_cells(doc):
    out = {}
    for sec in doc["sections"]:
        for t in sec["tables"]:
            cols = [c["id"] for c in t["columns"]]
            nlab = 2 if t["id"] == "paired_change_by_quintile" else 1
            for row in t["rows"]:
                lab = tuple(row[:nlab])
                for c, v in zip(cols[nlab:], row[nlab:]):
                    out[(t["id"],) + lab + (c,)] = v
    return out


def duck_cells(f):
    g = lambda d, *ks, default=0: _get(d, ks, default)  # noqa: E731
    c = {}
    a = "activity_summary"
    op = f.get("episodes_opened", {})
    se = f.get("sessions", {})
    for lab, v in [
        ("Referrals received", f["referrals_received"]),
        ("New clients", f["new_clients"]),
        ("Episodes opened", op.get("all", 0)),
        ("Episodes opened: full", op.get("full", 0)),
        ("Episodes opened: brief", op.get("brief", 0)),
        ("Open caseload at period end", f.get("open_caseload_at_end", 0)),
        ("Sessions recorded", se.get("recorded", 0)),
        ("Sessions attended", se.get("attended", 0)),
        ("Sessions not attended", se.get("did_not_attend", 0)),
        ("Sessions cancelled", se.get("cancelled", 0)),
        ("Plans agreed", f.get("plans_agreed", 0)),
        ("Goals set (on plans agreed in the period)", f.get("goals_set", 0)),
        ("Full episodes closed", f.get("full_episodes_closed", 0)),
        ("Median attended sessions per closed full episode",
         f.get("median_attended_sessions_per_closed_full_episode")),
        ("Median days from referral to first contact (episodes opened)",
         f.get("median_days_referral_to_first_contact")),
    ]:
        c[(a, lab, "value")] = v
    if se.get("dna_rate"):
        c[(a, "Did-not-attend rate", "value")] = se["dna_rate"][0]
    groups = {"self": "community", "friend_or_family": "community",
              "community_organisation": "community", "outreach_event": "community",
              "workplace": "community", "local_authority_service": "community",
              "housing_or_jobcentre": "community", "probation": "criminal_justice",
              "prison": "criminal_justice", "other": "other"}
    for k, v in f.get("referrals_by_source", {}).items():
        c[("referrals_by_source", f"{k} ({groups.get(k, 'clinical')})", "count")] = v
    c[("warnings",)] = bool(f.get("bias_warnings"))
    for k, v in f.get("referrals_by_group", {}).items():
        c[("referrals_by_group", k, "count")] = v
    for reason, kinds in f.get("episodes_closed_by_exit_reason", {}).items():
        c[("episodes_closed_by_exit_reason", reason, "full")] = kinds["full"]
        c[("episodes_closed_by_exit_reason", reason, "brief")] = kinds["brief"]
    for qk, lab in zip(QKEYS[:5], QROWS):
        r = f["reach_by_quintile"][qk]
        c[("reach_by_quintile", lab, "new_clients")] = r["new_clients"]
        c[("reach_by_quintile", lab, "population")] = float(r["population"])
        if r["reach_ratio"] is not None:
            c[("reach_by_quintile", lab, "reach_ratio")] = r["reach_ratio"]
    c[("reach_by_quintile", "Quintile unknown", "new_clients")] = g(
        f, "new_clients_by", "quintile", "unknown")
    for e in EG[:5]:
        r = f["reach_by_ethnic_group"][e]
        c[("reach_by_ethnic_group", e, "new_clients")] = r["new_clients"]
        c[("reach_by_ethnic_group", e, "population")] = float(r["population"])
    nc = f.get("new_clients_by", {})
    for k, v in nc.get("sex", {}).items():
        c[("new_clients_by_sex", k, "count")] = v
    for k, v in nc.get("age_band", {}).items():
        c[("new_clients_by_age_band", k, "count")] = v
    for k, v in nc.get("gp_registered", {}).items():
        c[("new_clients_by_gp_registration", f"GP registered: {k}", "count")] = v
    for qk, lab in zip(QKEYS, QROWS):
        for st in ["fully_achieved", "partly_achieved", "not_achieved", "abandoned"]:
            c[("goal_attainment_by_goal", lab, st)] = g(f, "goals_finalised", qk, st)
        for cl in ["fully", "partly", "not"]:
            c[("goal_attainment_by_client", lab, cl)] = g(f, "goal_clients", qk, cl)
    for m, lab in MEASURES.items():
        pc = f.get("paired_change", {}).get(m, {})
        r = pc.get("all")
        if r:
            c[("paired_change", lab, "n")] = r["n"]
            c[("paired_change", lab, "baseline_mean")] = r["baseline_mean"]
            c[("paired_change", lab, "exit_mean")] = r["exit_mean"]
            c[("paired_change", lab, "mean_difference")] = r["mean_difference"]
            if r["difference_ci"]:
                c[("paired_change", lab, "difference_low")] = r["difference_ci"][0]
                c[("paired_change", lab, "difference_high")] = r["difference_ci"][1]
            if r["standardised_effect"] is not None:
                c[("paired_change", lab, "standardised_effect")] = r["standardised_effect"]
            c[("paired_change", lab, "improved")] = r["improved"]
        for qk, qlab in zip(QKEYS, QROWS):
            r = pc.get(qk)
            if r:
                k = ("paired_change_by_quintile", lab, qlab)
                c[k + ("n",)] = r["n"]
                c[k + ("mean_difference",)] = r["mean_difference"]
                if r["difference_ci"]:
                    c[k + ("difference_low",)] = r["difference_ci"][0]
                    c[k + ("difference_high",)] = r["difference_ci"][1]
                c[k + ("improved",)] = r["improved"]
    sm = f.get("smoking", {}).get("all")
    if sm:
        c[("paired_change", SMOKING, "n")] = sm["baseline_smokers"]
        c[("paired_change", SMOKING, "improved")] = sm["not_smoking_at_exit"]
    od = f.get("outcome_data", {})
    for qk, lab in zip(QKEYS, QROWS):
        r = od.get("quintile", {}).get(qk)
        if r:
            c[("outcome_data_completeness", lab, "closed_full")] = r["closed_full"]
            c[("outcome_data_completeness", lab, "with_outcome_data")] = r["with_outcome_data"]
    for e in EG:
        r = od.get("ethnic_group", {}).get(e)
        if r:
            c[("outcome_data_completeness", e, "closed_full")] = r["closed_full"]
            c[("outcome_data_completeness", e, "with_outcome_data")] = r["with_outcome_data"]
    p = f.get("pathway", {})
    for st, lab in zip(STEPS, STEP_LABELS):
        if "steps" in p:
            c[("pathway_steps", lab, "referrals")] = p["steps"][st]["referrals"]
    for qk, lab in zip(QKEYS, QROWS):
        r = p.get("by_quintile", {}).get(qk)
        if r:
            for st in STEPS:
                c[("pathway_by_quintile", lab, st)] = r[st]
    for e in EG:
        r = p.get("by_ethnic_group", {}).get(e)
        if r:
            for st in STEPS:
                c[("pathway_by_ethnic_group", e, st)] = r[st]
    w = f.get("workforce")
    if w:
        ws = "workforce_summary"
        for lab, v in [
            ("Workers active", w["workers_active"]), ("Full-time equivalent", w["fte"]),
            ("Workers living in the area served", w["lives_in_area"]),
            ("Workers with a known home quintile", w["home_quintile_known"]),
            ("Workers whose home is in quintile 1 or 2", w["home_quintile_1_2"]),
            ("Clients seen (an attended session in the period)", w["clients_seen"]),
            ("Clients seen per FTE", w["clients_seen_per_fte"]),
            ("Sessions attended per FTE", w["sessions_attended_per_fte"]),
        ]:
            c[(ws, lab, "value")] = v
        for k, v in w["qualification"].items():
            c[("workforce_qualification", k, "count")] = v
    return c


def _get(d, ks, default):
    for k in ks:
        if not isinstance(d, dict) or k not in d:
            return default
        d = d[k]
    return d


def close(a, b):
    if isinstance(a, str) or isinstance(b, str) or a is None or b is None:
        return a == b
    return abs(a - b) <= max(1e-6, 1e-5 * max(abs(a), abs(b)))


def main():
    duck = json.load(open(sys.argv[1]))
    dcrs = json.load(open(sys.argv[2]))
    by_scope = {d["scope"]: d["figures"] for d in duck["documents"]}
    compared, bad = 0, []
    for doc in dcrs:
        svcs = doc["scope"]["services"]
        scope = "ALL" if len(svcs) > 1 else svcs[0]["service_ref"]
        want = dcrs_cells(doc)
        want[("warnings",)] = bool(doc["warnings"])
        for k, v in duck_cells(by_scope[scope]).items():
            if k not in want:
                if v not in (0, None):
                    bad.append((scope, k, v, "missing in dcrs"))
                continue
            compared += 1
            if not close(v, want[k]):
                bad.append((scope, k, v, want[k]))
    print(f"{compared} cells compared over {len(dcrs)} documents, {len(bad)} differ")
    for b in bad[:40]:
        print("  ", b)


if __name__ == "__main__":
    main()
