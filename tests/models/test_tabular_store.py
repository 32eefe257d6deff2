"""Tabular models saved as JSON / skops and loaded back without unpickling."""

import json
import os
import stat

import numpy as np
import pytest
import skops.io
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from mirisk.data.iwpc import IWPC_SCHEMA
from mirisk.errors import MiriskError
from mirisk.models import save_target
from mirisk.models.tabular import train_tabular_regressor
from mirisk.models.tabular_store import load_tabular_target, save_tabular_target


def test_linear_round_trip_is_exact_and_private(tmp_path, iwpc_linear, iwpc_split):
    folder = save_tabular_target(iwpc_linear, tmp_path / "m")
    loaded = load_tabular_target(folder)
    assert np.array_equal(loaded.predict(iwpc_split.test), iwpc_linear.predict(iwpc_split.test))
    assert loaded.member_digests == iwpc_linear.member_digests
    assert stat.S_IMODE(os.stat(folder / "target.json").st_mode) == 0o600


def test_gbm_round_trip_through_skops(tmp_path, iwpc_split):
    model = train_tabular_regressor(iwpc_split.train[:400], IWPC_SCHEMA, kind="gbm")
    loaded = load_tabular_target(save_tabular_target(model, tmp_path / "g"))
    assert np.array_equal(loaded.predict(iwpc_split.test), model.predict(iwpc_split.test))


def halve(values):
    return values / 2


def test_skops_file_with_untrusted_types_is_refused(tmp_path, iwpc_split):
    model = train_tabular_regressor(iwpc_split.train[:400], IWPC_SCHEMA, kind="gbm")
    folder = save_tabular_target(model, tmp_path / "g")
    skops.io.dump(make_pipeline(FunctionTransformer(halve)), folder / "model.skops")
    with pytest.raises(MiriskError, match="not on mirisk's trusted list"):
        load_tabular_target(folder)
    (folder / "model.skops").write_bytes(b"not a zip file")
    with pytest.raises(MiriskError, match="not a readable skops file"):
        load_tabular_target(folder)


def test_wrong_folders_get_one_line_errors(tmp_path, targets, iwpc_linear):
    with pytest.raises(MiriskError, match="no target.json"):
        load_tabular_target(tmp_path)
    image_model = save_target(targets["softmax"], tmp_path / "faces")
    with pytest.raises(MiriskError, match="attribute attacks need a tabular model"):
        load_tabular_target(image_model)
    folder = save_tabular_target(iwpc_linear, tmp_path / "m")
    payload = json.loads((folder / "target.json").read_text())
    payload["linear"]["coefficients"] = payload["linear"]["coefficients"][:-1]
    (folder / "target.json").write_text(json.dumps(payload))
    with pytest.raises(MiriskError, match="coefficients for"):
        load_tabular_target(folder)
