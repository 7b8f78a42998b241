#!/usr/bin/env python3
"""Convert a dcrs CSV export (plus the extra area/reference CSVs, see README.md) to
Parquet, one file per table, with DuckDB.

    python3 convert.py CSV_DIR PARQUET_DIR

Every column is read as text and then cast by name: dates (`*_on`, `date_of_birth`,
`effective_from`) to DATE, measures and counts to numbers, everything else stays text.
Empty fields become NULL.
"""
import glob
import os
import sys

import duckdb

DATE_COLUMNS = {"date_of_birth", "effective_from"}
NUMERIC = {
    # assessments
    "height_cm": "DOUBLE",
    "weight_kg": "DOUBLE",
    "waist_cm": "DOUBLE",
    "fruit_veg_portions_per_day": "DOUBLE",
    "high_fat_snacks_per_day": "DOUBLE",
    "active_days_per_week": "INTEGER",
    "alcohol_units_per_week": "DOUBLE",
    "cigarettes_per_day": "INTEGER",
    "self_efficacy": "INTEGER",
    "general_health": "INTEGER",
    "swemwbs_raw": "INTEGER",
    # sessions, workers
    "duration_min": "INTEGER",
    "home_imd_quintile": "INTEGER",
    "fte": "DOUBLE",
    # client_areas and reference tables
    "imd_quintile": "INTEGER",
    "pop_mid2015": "BIGINT",
    "population": "BIGINT",
    "category_order": "INTEGER",
}


def column_sql(name: str) -> str:
    q = f'"{name}"'
    if name.endswith("_on") or name in DATE_COLUMNS:
        return f"CAST({q} AS DATE) AS {q}"
    if name in NUMERIC:
        return f"CAST({q} AS {NUMERIC[name]}) AS {q}"
    return q


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit("usage: convert.py CSV_DIR PARQUET_DIR")
    src, dst = sys.argv[1], sys.argv[2]
    os.makedirs(dst, exist_ok=True)
    con = duckdb.connect()
    files = sorted(glob.glob(os.path.join(src, "*.csv")))
    if not files:
        sys.exit(f"no CSV files in {src}")
    for path in files:
        table = os.path.splitext(os.path.basename(path))[0]
        read = (
            f"read_csv('{path}', header = true, all_varchar = true, "
            "delim = ',', quote = '\"', escape = '\"')"
        )
        names = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {read}").fetchall()]
        select = ", ".join(column_sql(n) for n in names)
        out = os.path.join(dst, f"{table}.parquet")
        con.execute(
            f"COPY (SELECT {select} FROM {read}) TO '{out}' "
            "(FORMAT parquet, COMPRESSION zstd)"
        )
        n = con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0]
        print(f"{table:<24} {n:>9} rows")


if __name__ == "__main__":
    main()
