"""Task documents: JSON only, named functions only, paths a worker elsewhere can open."""

import os

import pytest

from mirisk.errors import MiriskError
from mirisk.execution.tasks import as_json, portable_path, task_function


def test_paths_become_absolute_and_bundled_names_stay(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert portable_path("models/mlp") == os.path.join(str(tmp_path.resolve()), "models", "mlp")
    assert portable_path("bundled:att_faces") == "bundled:att_faces" and portable_path(None) is None


def test_only_json_and_only_known_tasks():
    assert as_json({"a": [1, 2.5, None]}, "x") == '{"a": [1, 2.5, null]}'
    with pytest.raises(MiriskError, match="x is not a JSON document"):
        as_json({"a": b"bytes"}, "x")
    with pytest.raises(MiriskError, match="unknown task 'os:system'"):
        task_function("os:system")
    assert task_function("face-sweep-point").__name__ == "sweep_point"
