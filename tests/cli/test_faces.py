"""The command line end to end on the real faces, and its one-line errors."""

import json
import stat

import numpy as np
import pytest
from typer.testing import CliRunner

from mirisk.cli import app
from mirisk.metrics.intervals import wilson_interval
from mirisk.models import save_target

runner = CliRunner()


@pytest.fixture(scope="module")
def softmax_dir(tmp_path_factory, targets):
    return save_target(targets["softmax"], tmp_path_factory.mktemp("models") / "softmax")


def test_train_faces_writes_a_safe_model(tmp_path):
    result = runner.invoke(app, ["train", "faces", "--model", "softmax", "--epochs", "20", "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert "test accuracy" in result.output
    metadata = json.loads((tmp_path / "m" / "target.json").read_text())
    assert metadata["architecture"] == "softmax" and metadata["training"]["epochs"] == 20
    assert metadata["data"]["n_train_per_subject"] == 7


def test_attack_miface_writes_result_png_and_npz(tmp_path, softmax_dir):
    out = tmp_path / "attack"
    result = runner.invoke(app, ["attack", "miface", "--model", str(softmax_dir), "--out", str(out), "--iterations", "150"])
    assert result.exit_code == 0, result.output
    payload = json.loads((out / "result.json").read_text())
    for key in ("attack", "threat_model", "metrics", "n_targets", "seconds", "iterations", "seed", "versions"):
        assert key in payload
    for key in ("identification_top1", "identification_top5", "reid_top1", "ssim_mean"):
        assert 0.0 <= payload["metrics"][key] <= 1.0
    assert payload["attack"] == "miface" and payload["n_targets"] == 40 and payload["iterations"] == 150
    assert payload["metrics"]["identification_top1"] > 0.5
    judge, baseline = payload["metrics"]["independent"], payload["metrics"]["baseline"]
    assert judge["identification_top1_ci"] == pytest.approx(list(wilson_interval(round(judge["identification_top1"] * 40), 40)))
    assert baseline["available"] and baseline["reid_top1"] < payload["metrics"]["reid_top1"]
    assert (out / "lineup.png").read_bytes()[:4] == b"\x89PNG"
    with np.load(out / "reconstructions.npz") as arrays:
        assert arrays["reconstructions"].shape == (40, 1, 112, 92)
        assert arrays["labels"].tolist() == list(range(40))
        assert 0.0 <= arrays["reconstructions"].min() and arrays["reconstructions"].max() <= 1.0
    assert (out / "reconstructions.png").read_bytes()[:4] == b"\x89PNG"
    for path in (out, *out.iterdir()):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path} is readable by others ({oct(mode)})"


def test_attack_refuses_to_overwrite_results(tmp_path, softmax_dir):
    (tmp_path / "keep.txt").write_text("user data")
    result = runner.invoke(app, ["attack", "miface", "--model", str(softmax_dir), "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "not empty" in result.output
    assert (tmp_path / "keep.txt").read_text() == "user data"


def test_missing_model_is_a_one_line_error(tmp_path):
    result = runner.invoke(app, ["attack", "miface", "--model", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "model not found" in result.output


def test_data_that_differ_from_the_training_data_are_refused(tmp_path, softmax_dir, faces):
    from tests.conftest import write_face_folder

    folder = write_face_folder(tmp_path / "faces", faces, people=40, per_person=10)
    (folder / "s01" / "0.pgm").write_bytes((folder / "s02" / "0.pgm").read_bytes())
    result = runner.invoke(app, ["attack", "miface", "--model", str(softmax_dir), "--data", str(folder),
                                 "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "not the ones the model was trained on" in result.output


def test_attack_blackbox_reports_queries_budget_and_policy(tmp_path, softmax_dir):
    out = tmp_path / "bb"
    result = runner.invoke(app, ["attack", "blackbox", "--model", str(softmax_dir), "--out", str(out),
                                 "--policy", "topk:3", "--budget", "19999", "--iterations", "50", "--samples", "5",
                                 "--no-baseline"])
    assert result.exit_code == 0, result.output
    payload = json.loads((out / "result.json").read_text())
    assert payload["attack"] == "blackbox-scores" and payload["policy"] == "topk:3"
    assert payload["threat_model"]["access"] == "top-k" and payload["budget"] == 19999
    assert payload["queries_used"] == 19600 and payload["budget_limited"] is True
    assert "identification_top1" in payload["metrics"] and "face_rate" in payload["metrics"]["independent"]
    assert payload["metrics"]["baseline"] == {"available": False,
                                              "reason": "not run (--no-baseline); verdicts compare with chance"}


def test_public_data_must_be_other_people(tmp_path, softmax_dir, faces):
    from tests.conftest import write_face_folder

    folder = write_face_folder(tmp_path / "public", faces, people=3)
    result = runner.invoke(app, ["attack", "blackbox", "--model", str(softmax_dir), "--out", str(tmp_path / "o"),
                                 "--public-data", str(folder)])
    assert result.exit_code == 2 and "must hold other people" in result.output


def test_unknown_policy_is_a_one_line_error(tmp_path, softmax_dir):
    result = runner.invoke(app, ["attack", "blackbox", "--model", str(softmax_dir), "--out", str(tmp_path / "o"),
                                 "--policy", "blur:3"])
    assert result.exit_code == 2 and "unknown output policy" in result.output


def test_attack_labelonly_writes_its_result(tmp_path, softmax_dir):
    out = tmp_path / "lo"
    result = runner.invoke(app, ["attack", "labelonly", "--model", str(softmax_dir), "--out", str(out),
                                 "--iterations", "10", "--budget", "50000", "--no-baseline"])
    assert result.exit_code == 0, result.output
    payload = json.loads((out / "result.json").read_text())
    assert payload["attack"] == "labelonly-boundary-repulsion" and payload["policy"] == "label"
    assert payload["threat_model"]["access"] == "label-only" and payload["queries_used"] <= 50000


def test_attack_matrix_writes_json_and_heatmap(tmp_path, softmax_dir):
    out = tmp_path / "matrix"
    result = runner.invoke(app, ["attack", "matrix", "--model", str(softmax_dir), "--out", str(out),
                                 "--policy", "label", "--iterations", "5", "--no-baseline"])
    assert result.exit_code == 0, result.output
    assert "judge top-1 / re-ID top-1 / pixel top-1" in result.output
    matrix = json.loads((out / "matrix.json").read_text())
    assert [row["policy"] for row in matrix["rows"]] == ["label"] and matrix["baseline"] is None
    assert set(matrix["rows"][0]) >= {"cost", "white-box", "blackbox-scores", "labelonly"}
    assert (out / "matrix.png").read_bytes()[:4] == b"\x89PNG"
    assert stat.S_IMODE((out / "matrix.json").stat().st_mode) == 0o600


def test_attack_miface_on_an_imported_torchscript_file(tmp_path, targets, faces):
    import torch

    model = tmp_path / "recogniser.pt"
    torch.jit.trace(targets["softmax"].module.eval(), torch.as_tensor(faces.images[:2])).save(model)
    out = tmp_path / "attack"
    result = runner.invoke(app, ["attack", "miface", "--model", str(model), "--input-shape", "1,112,92",
                                 "--iterations", "60", "--out", str(out)])
    assert result.exit_code == 0, result.output
    payload = json.loads((out / "result.json").read_text())
    assert payload["model"]["architecture"] == "imported-torchscript"
    assert payload["metrics"]["identification_top1"] > 0.5
    result = runner.invoke(app, ["attack", "miface", "--model", str(model), "--input-shape", "1,112",
                                 "--out", str(tmp_path / "again")])
    assert result.exit_code == 2 and "--input-shape must be C,H,W" in result.output


@pytest.fixture(scope="module")
def private_softmax_dir(tmp_path_factory):
    from mirisk.data.faces import BUNDLED_PRIVATE, load_faces
    from mirisk.pipelines.faces import train_face_target

    model = train_face_target("softmax", load_faces(BUNDLED_PRIVATE))
    return save_target(model, tmp_path_factory.mktemp("private") / "softmax")


@pytest.mark.parametrize("access,served", [("scores", "scores"), ("label-only", "label")])
def test_generative_black_box_attacks_search_the_latent_space_within_the_budget(private_softmax_dir, tmp_path, access,
                                                                                 served):
    out = tmp_path / access
    result = runner.invoke(app, ["attack", "generative", "--model", str(private_softmax_dir), "--access", access,
                                 "--iterations", "3", "--budget", "2500", "--no-baseline", "--out", str(out)])
    assert result.exit_code == 0, result.output
    payload = json.loads((out / "result.json").read_text())
    assert payload["queries_used"] <= 2500 and payload["policy"] == served
    assert payload["threat_model"]["access"] == access
    assert any("latent space of a face prior" in item for item in payload["threat_model"]["knowledge"])
    assert np.load(out / "reconstructions.npz")["reconstructions"].shape == (20, 1, 112, 92)


def test_generative_attacks_refuse_a_model_of_the_priors_own_people_and_bad_options(softmax_dir, private_softmax_dir,
                                                                                   tmp_path):
    for access in ("white-box", "scores"):
        result = runner.invoke(app, ["attack", "generative", "--model", str(softmax_dir), "--access", access,
                                     "--out", str(tmp_path / access)])
        assert result.exit_code == 2 and "learnt from 20 of the model's own people" in result.output
    result = runner.invoke(app, ["attack", "generative", "--model", str(private_softmax_dir), "--budget", "10",
                                 "--out", str(tmp_path / "w")])
    assert result.exit_code == 2 and "apply to the black-box accesses" in result.output
    result = runner.invoke(app, ["attack", "generative", "--model", str(private_softmax_dir), "--access", "top-k",
                                 "--out", str(tmp_path / "k")])
    assert result.exit_code == 2 and "--access must be one of" in result.output
    result = runner.invoke(app, ["attack", "generative", "--model", str(private_softmax_dir), "--access", "scores",
                                 "--feature-steps", "5", "--out", str(tmp_path / "f")])
    assert result.exit_code == 2 and "white-box attack only" in result.output
    result = runner.invoke(app, ["attack", "generative", "--model", str(private_softmax_dir), "--iterations", "0",
                                 "--out", str(tmp_path / "z")])
    assert result.exit_code == 2 and "iterations >= 1" in result.output  # 0 is refused, not read as the default
