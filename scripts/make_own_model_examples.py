"""Write the three worked examples of docs/own-models.md: models as a hospital would hand them
over, trained on mirisk's bundled data and saved in formats mirisk only imports, so the audit
sees nothing but the file (and, for a segmenter or a tabular model, its manifest).

- ``face.pt``: a face recogniser (the softmax family) traced to TorchScript;
- ``segmenter/unet.pt`` + ``segmenter/segmenter.json``: a U-Net on 8 bundled IXI subjects,
  traced to TorchScript, with its manifest and training ids;
- ``dosing/dose.skops`` + ``dosing/dose.json``: a scikit-learn pipeline (one-hot categories,
  boosted trees on sqrt(dose)) on the IWPC training patients, with its manifest, training ids
  and patient table.

Run: ``python scripts/make_own_model_examples.py --out own-models`` (about 25 s on 2 cores).
Data: AT&T faces (AT&T Laboratories Cambridge), IXI (CC BY-SA 3.0, brain-development.org),
IWPC (PharmGKB); see src/mirisk/data/bundled/ATTRIBUTION.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import skops.io
import torch
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from mirisk.artifacts import prepare_output_dir
from mirisk.data import load_faces
from mirisk.data.iwpc import IWPC_SCHEMA, load_iwpc, split_cohort
from mirisk.data.mri import BUNDLED as BUNDLED_MRI
from mirisk.data.mri import load_mri
from mirisk.models.segmentation_import import MANIFEST_FORMAT as SEGMENTATION_MANIFEST
from mirisk.models.tabular_import import MANIFEST_FORMAT as TABULAR_MANIFEST
from mirisk.pipelines.faces import train_face_target
from mirisk.pipelines.mri import SegmenterSettings, train_private_segmenter
from mirisk.runtime import prepare_torch


def face_recogniser(out: Path) -> None:
    target = train_face_target("softmax", load_faces(None))
    sample = torch.as_tensor(load_faces(None).images[:4])
    torch.jit.trace(target.module.eval(), sample).save(str(out / "face.pt"))


def segmenter(out: Path) -> None:
    folder = out / "segmenter"
    folder.mkdir()
    source = {"images": BUNDLED_MRI, "labels": None, "slices": 1, "groups": "tissue", "axis": 2, "centre": None}
    target = train_private_segmenter(load_mri(**source), source, 8, "unet", SegmenterSettings(epochs=30))
    torch.jit.trace(target.module.eval(), torch.rand(2, 1, 120, 120)).save(str(folder / "unet.pt"))
    (folder / "train_ids.txt").write_text("\n".join(target.data["train_subjects"]) + "\n")
    manifest = {"format": SEGMENTATION_MANIFEST, "model": "unet.pt", "input_shape": [1, 120, 120],
                "value_range": [0, 1], "classes": list(target.class_names), "outputs": "logits",
                "images": BUNDLED_MRI, "groups": "tissue", "axis": 2, "slices": 1, "train_subjects": "train_ids.txt"}
    (folder / "segmenter.json").write_text(json.dumps(manifest, indent=1) + "\n")


def dosing_model(out: Path) -> None:
    folder = out / "dosing"
    folder.mkdir()
    split = split_cohort(load_iwpc(None), seed=0)
    every_value = OneHotEncoder(categories=[list(values) for values in IWPC_SCHEMA.categorical.values()])
    categories = ColumnTransformer([("categories", every_value, list(IWPC_SCHEMA.categorical))],
                                   remainder="passthrough")
    model = make_pipeline(categories, GradientBoostingRegressor(n_estimators=150, max_depth=3, random_state=0))
    model.fit(split.train[list(IWPC_SCHEMA.features)], np.sqrt(split.train[IWPC_SCHEMA.target]))
    (folder / "dose.skops").write_bytes(skops.io.dumps(model))
    (folder / "train_ids.txt").write_text("\n".join(split.train[IWPC_SCHEMA.id_column]) + "\n")
    pd.concat([split.train, split.aux, split.test]).to_csv(folder / "patients.csv", index=False)
    schema = IWPC_SCHEMA.as_dict()
    manifest = {"format": TABULAR_MANIFEST, "model": "dose.skops", "input": "columns", "output": "sqrt",
                "numeric": schema["numeric"], "categorical": schema["categorical"], "target": schema["target"],
                "target_bounds": schema["target_bounds"], "id_column": schema["id_column"],
                "train_ids": "train_ids.txt"}
    (folder / "dose.json").write_text(json.dumps(manifest, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description="Write the worked examples of docs/own-models.md.")
    parser.add_argument("--out", type=Path, required=True, help="New folder for the example models.")
    arguments = parser.parse_args()
    prepare_torch(0)
    out = prepare_output_dir(arguments.out)
    for make in (face_recogniser, segmenter, dosing_model):
        make(out)
        print(f"wrote {make.__name__.replace('_', ' ')} -> {out}")


if __name__ == "__main__":
    main()
