"""Files a hospital would hand over for its own tabular model: a scikit-learn pipeline in
skops and ONNX, the ids it was trained on, its patient table, and manifests naming them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import skops.io
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from mirisk.data.iwpc import IWPC_SCHEMA, CohortSplit

SCHEMA = IWPC_SCHEMA.as_dict()
# A risk classifier's target: the IWPC 2009 dose bands (mg/week), in the model's class order.
BAND = "dose_band"
BAND_CLASSES = ["high", "intermediate", "low"]


def dose_bands(table: pd.DataFrame) -> pd.Series:
    dose = table[IWPC_SCHEMA.target]
    return pd.Series(np.where(dose < 21, "low", np.where(dose >= 49, "high", "intermediate")), index=table.index)


def one_hot_categories() -> ColumnTransformer:
    return ColumnTransformer(
        [("categories", OneHotEncoder(categories=[list(v) for v in IWPC_SCHEMA.categorical.values()]),
          list(IWPC_SCHEMA.categorical))], remainder="passthrough")


def fitted_dosing_pipeline(train: pd.DataFrame) -> object:
    """What a hospital might train: one-hot categories, boosted trees on sqrt(dose)."""
    model = make_pipeline(one_hot_categories(), GradientBoostingRegressor(n_estimators=150, max_depth=3, random_state=0))
    return model.fit(train[list(IWPC_SCHEMA.features)], np.sqrt(train[IWPC_SCHEMA.target]))


def fitted_band_classifier(train: pd.DataFrame) -> object:
    """A risk classifier: which dose band a patient will need, boosted trees on one-hot categories."""
    model = make_pipeline(one_hot_categories(), GradientBoostingClassifier(n_estimators=100, max_depth=3, random_state=0))
    return model.fit(train[list(IWPC_SCHEMA.features)], dose_bands(train))


def to_onnx_file(model: object, columns: list[str], path: Path) -> Path:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    inputs = [(name, FloatTensorType([None, 1]) if name in IWPC_SCHEMA.numeric else StringTensorType([None, 1]))
              for name in columns]
    path.write_bytes(to_onnx(model, initial_types=inputs, target_opset=17).SerializeToString())
    return path


def write_tabular_manifest(folder: Path, model: str, **fields) -> Path:
    manifest = {"format": "mirisk-tabular-manifest/1", "model": model, "input": "columns", "output": "sqrt",
                "numeric": SCHEMA["numeric"], "categorical": SCHEMA["categorical"], "target": SCHEMA["target"],
                "target_bounds": SCHEMA["target_bounds"], "id_column": SCHEMA["id_column"],
                "train_ids": "train_ids.txt"} | fields
    path = folder / f"{Path(model).stem}-{len(list(folder.glob('*.json')))}.json"
    path.write_text(json.dumps({key: value for key, value in manifest.items() if value is not None}))
    return path


def dosing_patients_folder(folder: Path, iwpc_split: CohortSplit) -> Path:
    """A folder as a hospital would hand it over: a dosing regressor and a dose-band classifier,
    each in skops and ONNX, the ids they were trained on, and the patient table (training
    patients and others, with the dose and its band)."""
    for name, model in (("dose", fitted_dosing_pipeline(iwpc_split.train)),
                        ("band", fitted_band_classifier(iwpc_split.train))):
        (folder / f"{name}.skops").write_bytes(skops.io.dumps(model))
        to_onnx_file(model, list(IWPC_SCHEMA.features), folder / f"{name}.onnx")
    (folder / "train_ids.txt").write_text("\n".join(iwpc_split.train[IWPC_SCHEMA.id_column]) + "\n")
    patients = pd.concat([iwpc_split.train, iwpc_split.aux, iwpc_split.test], ignore_index=True)
    patients[BAND] = dose_bands(patients)
    patients.to_csv(folder / "patients.csv", index=False)
    return folder


