"""`mirisk attack gradients` end to end on real images, captured records, and its errors."""

import json
import stat

import numpy as np
from typer.testing import CliRunner

from mirisk.cli import app

runner = CliRunner()


def test_gradients_writes_result_and_arrays_owner_only(tmp_path):
    out = tmp_path / "fl"
    result = runner.invoke(app, ["attack", "gradients", "--out", str(out), "--batch", "2", "--attack", "idlg",
                                 "--iterations", "200", "--save-record"])
    assert result.exit_code == 0, result.output
    payload = json.loads((out / "result.json").read_text())
    for key in ("psnr_mean", "ssim_mean", "reid_top1", "label_accuracy"):
        assert key in payload["metrics"]
    assert payload["round"]["protocol"] == "fedsgd" and payload["round"]["n_images"] == 2
    assert payload["metrics"]["label_accuracy"] == 1.0 and payload["update_norm"] > 0
    with np.load(out / "reconstructions.npz") as arrays:
        assert set(arrays.files) == {"reconstructions", "originals", "labels"}
        assert arrays["reconstructions"].shape == arrays["originals"].shape == (2, 1, 56, 46)
        true_labels = sorted(arrays["labels"].tolist())
    assert stat.S_IMODE((out / "result.json").stat().st_mode) == 0o600

    captured = tmp_path / "captured"
    result = runner.invoke(app, ["attack", "gradients", "--record", str(out / "record"), "--out", str(captured),
                                 "--attack", "idlg", "--iterations", "50"])
    assert result.exit_code == 0, result.output
    assert sorted(json.loads((captured / "result.json").read_text())["recovered_labels"]) == true_labels


def test_mri_slices_are_client_images_too(tmp_path):
    result = runner.invoke(app, ["attack", "gradients", "--data", "bundled:ixi_t1", "--out", str(tmp_path / "mri"),
                                 "--attack", "idlg", "--iterations", "20", "--downscale", "4"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "mri" / "result.json").read_text())["metrics"]["label_accuracy"] == 1.0


def test_bad_options_get_one_line_errors(tmp_path):
    for options, message in ((["--dp-noise", "1"], "--clip"), (["--sparsify", "2"], "--sparsify"),
                             (["--record", str(tmp_path)], "not a server record"), (["--batch", "0"], "at least 1")):
        result = runner.invoke(app, ["attack", "gradients", "--out", str(tmp_path / "x"), *options])
        assert result.exit_code == 2 and message in result.output
