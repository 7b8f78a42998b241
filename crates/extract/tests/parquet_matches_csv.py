"""Reads each table of an extract from its Parquet file (pyarrow) and its CSV file and
checks they hold the same rows, cell by cell.

python3 parquet_matches_csv.py DIR   (DIR holds NAME.csv and NAME.parquet per table)
"""
import csv
import pathlib
import sys

import pyarrow.parquet as pq

folder = pathlib.Path(sys.argv[1])
tables = rows = cells = 0
for path in sorted(folder.glob("*.parquet")):
    table = pq.read_table(path)
    from_parquet = table.to_pylist()
    with open(path.with_suffix(".csv"), newline="") as f:
        from_csv = list(csv.DictReader(f))
    assert [c for c in table.column_names] == list(from_csv[0].keys()) if from_csv else True, path.name
    assert len(from_parquet) == len(from_csv), f"{path.name}: {len(from_parquet)} rows, CSV {len(from_csv)}"
    for i, (p, c) in enumerate(zip(from_parquet, from_csv)):
        for name, value in p.items():
            text = c[name]
            if value is None:
                ok = text == ""
            elif isinstance(value, float):
                ok = text != "" and float(text) == value
            else:
                ok = str(value) == text
            assert ok, f"{path.name} row {i} {name}: parquet {value!r}, csv {text!r}"
            cells += 1
    tables += 1
    rows += len(from_parquet)
assert tables == 4, f"{tables} tables"
print(f"parquet read back with pyarrow: {tables} tables, {rows} rows, {cells} cells equal to the CSV")
