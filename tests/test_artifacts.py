"""Evidence files: owner-only, written atomically (a failed write leaves the old file whole)."""

import json
import stat

import numpy as np
import pytest

from mirisk import artifacts


def test_writes_are_owner_only_and_leave_no_temporary_file(tmp_path):
    artifacts.write_json(tmp_path / "a.json", {"x": 1})
    artifacts.write_npz(tmp_path / "b.npz", values=np.arange(3))
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 1}
    assert np.load(tmp_path / "b.npz")["values"].tolist() == [0, 1, 2]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.json", "b.npz"]
    assert all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in tmp_path.iterdir())


def test_a_write_that_fails_midway_keeps_the_old_file(tmp_path, monkeypatch):
    target = artifacts.write_json(tmp_path / "result.json", {"finished": True})

    def crash(source, destination):
        raise OSError("disk gone")

    monkeypatch.setattr(artifacts.os, "replace", crash)
    with pytest.raises(OSError):
        artifacts.write_json(target, {"finished": False, "half": "x" * 10_000})
    assert json.loads(target.read_text()) == {"finished": True}
    assert [path.name for path in tmp_path.iterdir()] == ["result.json"]  # the temporary file is removed


def test_intermediate_output_folders_are_owner_only_too(tmp_path):
    artifacts.prepare_output_dir(tmp_path / "a" / "b" / "c")
    assert [stat.S_IMODE((tmp_path / part).stat().st_mode) for part in ("a", "a/b", "a/b/c")] == [0o700] * 3
