"""`mirisk attack decoder` end to end on the bundled IXI slices and on a DICOM export of them, and its one-line
errors."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mirisk.cli import app

runner = CliRunner()


def test_attack_decoder_writes_result_png_and_npz(tmp_path):
    out = tmp_path / "decoder"
    result = runner.invoke(app, ["attack", "decoder", "--out", str(out), "--subjects", "8", "--folds", "2",
                                 "--epochs", "20", "--decoder-epochs", "30", "--groups", "brain"])
    assert result.exit_code == 0, result.output
    payload = json.loads((out / "result.json").read_text())
    for key in ("ssim_mean", "ssim_std", "ssim_brain_mean", "reid_top1", "reid_top5"):
        assert 0.0 <= payload["metrics"][key] <= 1.0
    assert payload["n_subjects"] == 8 and payload["folds"] == 2 and payload["attack"] == "decoder"
    # matched against each candidate's neighbouring slice too, not only the one reconstructed
    assert 0.0 <= payload["metrics"]["reid_neighbour_top1"] <= 1.0
    assert payload["metrics"]["reid_neighbour"] == {"available": True, "offset_voxels": 6}
    for row in payload["per_fold"]:
        low, high = row["reid_top1_ci"]
        assert low <= row["reid_top1"] <= high
    with np.load(out / "reconstructions.npz") as arrays:
        assert set(arrays.files) >= {"reconstructions", "originals", "subject_ids"}
        assert arrays["reconstructions"].shape == (8, 1, 120, 120)
    assert (out / "reconstructions.png").read_bytes()[:4] == b"\x89PNG"
    for name in ("result.json", "reconstructions.npz", "reconstructions.png"):
        assert stat.S_IMODE(os.stat(out / name).st_mode) == 0o600


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--images", "somewhere"], "needs --labels"), (["--output-type", "heatmap"], "unknown output type"),
     (["--subjects", "3"], "too few"), (["--groups", "lobes"], "unknown label grouping"),
     (["--decoder-epochs", "0"], "at least 1")],
)
def test_bad_options_get_one_line_errors(tmp_path, extra, message):
    result = runner.invoke(app, ["attack", "decoder", "--out", str(tmp_path / "d"), *extra])
    assert result.exit_code == 2 and message in result.output


def test_train_segmenter_saves_a_model_the_audit_can_load(tmp_path):
    out = tmp_path / "segmenter"
    result = runner.invoke(app, ["train", "segmenter", "--out", str(out), "--subjects", "4", "--epochs", "2"])
    assert result.exit_code == 0, result.output
    metadata = json.loads((out / "target.json").read_text())
    assert metadata["format"] == "mirisk-segmenter/1" and len(metadata["data"]["train_subjects"]) == 4
    assert "on its 4 training subjects" in result.output and "on the other 89" in result.output
    again = runner.invoke(app, ["train", "segmenter", "--out", str(out), "--subjects", "4", "--epochs", "2"])
    assert again.exit_code == 2 and "not empty" in again.output
    too_many = runner.invoke(app, ["train", "segmenter", "--out", str(tmp_path / "x"), "--subjects", "93"])
    assert too_many.exit_code == 2 and "choose 1 to 92" in too_many.output


def test_a_dicom_export_gives_the_same_decoder_attack_as_its_nifti_originals(tmp_path):
    """The hospital's format and the research format of the same scans: one result."""
    script = Path(__file__).resolve().parents[2] / "scripts" / "make_dicom_sample.py"
    subprocess.run([sys.executable, str(script), str(tmp_path / "scans"), "--subjects", "8", "--nifti"], check=True,
                   capture_output=True)
    results = []
    for images in ("dicom", "nifti"):
        out = tmp_path / f"attack-{images}"
        result = runner.invoke(app, ["attack", "decoder", "--images", str(tmp_path / "scans" / images), "--labels",
                                     str(tmp_path / "scans" / "labels"), "--out", str(out), "--subjects", "8",
                                     "--folds", "2", "--epochs", "3", "--decoder-epochs", "5", "--groups", "tissue"])
        assert result.exit_code == 0, result.output
        payload = json.loads((out / "result.json").read_text())
        results.append((payload["metrics"], payload["per_fold"]))
    assert results[0] == results[1] and 0 < results[0][0]["ssim_mean"] <= 1
    assert (tmp_path / "scans" / "ATTRIBUTION.txt").read_text().startswith("IXI brain MRI slices")
