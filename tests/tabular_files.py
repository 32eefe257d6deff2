"""Files a hospital would hand over for its own tabular model: a scikit-learn pipeline in
skops and ONNX, the ids it was trained on, its patient table, and manifests naming them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import skops.io
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from mirisk.data.iwpc import IWPC_SCHEMA, CohortSplit

SCHEMA = IWPC_SCHEMA.as_dict()


def fitted_dosing_pipeline(train: pd.DataFrame) -> object:
    """What a hospital might train: one-hot categories, boosted trees on sqrt(dose)."""
    categories = ColumnTransformer(
        [("categories", OneHotEncoder(categories=[list(v) for v in IWPC_SCHEMA.categorical.values()]),
          list(IWPC_SCHEMA.categorical))], remainder="passthrough")
    model = make_pipeline(categories, GradientBoostingRegressor(n_estimators=150, max_depth=3, random_state=0))
    return model.fit(train[list(IWPC_SCHEMA.features)], np.sqrt(train[IWPC_SCHEMA.target]))


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
    """A folder as a hospital would hand it over: the model in both formats, the ids it was
    trained on, and its patient table (training patients and others)."""
    model = fitted_dosing_pipeline(iwpc_split.train)
    (folder / "dose.skops").write_bytes(skops.io.dumps(model))
    to_onnx_file(model, list(IWPC_SCHEMA.features), folder / "dose.onnx")
    (folder / "train_ids.txt").write_text("\n".join(iwpc_split.train[IWPC_SCHEMA.id_column]) + "\n")
    patients = pd.concat([iwpc_split.train, iwpc_split.aux, iwpc_split.test], ignore_index=True)
    patients.to_csv(folder / "patients.csv", index=False)
    return folder


