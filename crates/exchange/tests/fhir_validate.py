"""Validates every FHIR bundle in a directory with fhir.resources (R4B models, PyPI).

python3 fhir_validate.py DIR

Prints JSON: bundles and resources read, resources by type, and every error. As a
control, it also breaks a copy of the first bundle in three ways (a bad date, a
missing required element, a number where text belongs) and reports whether each break
was caught, so a validator that accepts anything is noticed.
"""
import copy
import json
import pathlib
import sys

from fhir.resources.R4B.bundle import Bundle

folder = pathlib.Path(sys.argv[1])
result = {"bundles": 0, "resources": 0, "by_type": {}, "errors": [], "controls": {}}
first = None
for path in sorted(folder.glob("*.json")):
    data = json.loads(path.read_text())
    first = first or data
    try:
        bundle = Bundle.model_validate(data)
    except Exception as e:  # noqa: BLE001 - every failure is reported
        result["errors"].append({"file": path.name, "error": str(e)[:2000]})
        continue
    result["bundles"] += 1
    for entry in bundle.entry or []:
        kind = entry.resource.get_resource_type()
        result["by_type"][kind] = result["by_type"].get(kind, 0) + 1
        result["resources"] += 1


def caught(break_it):
    broken = copy.deepcopy(first)
    break_it(broken)
    try:
        Bundle.model_validate(broken)
        return False
    except Exception:  # noqa: BLE001
        return True


if first is not None:
    def patient(b):
        return next(e["resource"] for e in b["entry"] if e["resource"]["resourceType"] == "Patient")

    def bad_date(b):
        patient(b)["birthDate"] = "01/05/1980"

    def no_status(b):
        for e in b["entry"]:
            if e["resource"]["resourceType"] == "EpisodeOfCare":
                del e["resource"]["status"]
                return
        del patient(b)["gender"]
        b["entry"][0]["resource"]["resourceType"] = "NotAResource"

    def number_for_text(b):
        patient(b)["identifier"][0]["value"] = {"nested": True}

    result["controls"] = {
        "bad_date": caught(bad_date),
        "missing_required": caught(no_status),
        "wrong_type": caught(number_for_text),
    }
print(json.dumps(result))
