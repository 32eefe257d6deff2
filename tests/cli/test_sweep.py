"""`mirisk sweep faces` and `mirisk train faces` with defences, end to end."""

import json
import stat

import pytest
from typer.testing import CliRunner

from mirisk.cli import app

runner = CliRunner()


def test_sweep_writes_points_and_a_plot(tmp_path):
    out = tmp_path / "sweep"
    result = runner.invoke(app, ["sweep", "faces", "--out", str(out), "--epsilons", "inf", "--n-train", "3",
                                 "--blackbox-iterations", "5", "--people", "8"])
    assert result.exit_code == 0, result.output
    written = json.loads((out / "sweep.json").read_text())
    points = written["points"]
    assert written["settings"]["people"] == 8
    assert len(points) == 1 and points[0]["epsilon"] is None and points[0]["n_train"] == 3
    for attack in ("white-box", "scores"):
        assert 0 <= points[0][attack]["identification_top1"] <= 1
    assert points[0]["white-box"]["identification_top1"] > 0.5 and points[0]["test_accuracy"] > 0.5
    assert (out / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    assert stat.S_IMODE((out / "sweep.json").stat().st_mode) == 0o600
    # the shipped prior was learnt from half of these 40 people: the pixel-space pair, and why
    assert [points[0][access]["attack"] for access in ("white-box", "scores")] == ["white-box-miface", "scores-blackbox"]
    assert "does not fit" in written["settings"]["attacks_why"] and "does not fit" in result.output


def test_a_sweep_of_people_the_prior_never_saw_attacks_each_retrain_in_its_latent_space(tmp_path):
    out = tmp_path / "sweep"
    result = runner.invoke(app, ["sweep", "faces", "--out", str(out), "--data", "bundled:att_faces_private",
                                 "--epsilons", "inf", "--n-train", "3", "--generative-iterations", "2",
                                 "--generative-scores-iterations", "2", "--people", "4"])
    assert result.exit_code == 0, result.output
    written = json.loads((out / "sweep.json").read_text())
    [point] = written["points"]
    assert [point[access]["attack"] for access in ("white-box", "scores")] == [
        "white-box-generative", "scores-generative"]
    assert [attack["attack"] for attack in written["settings"]["attacks"]] == ["generative", "generative-scores"]
    assert 0 <= point["white-box"]["judge_top1"] <= 1 and "latent space" in result.output


@pytest.mark.parametrize(("options", "message"), [
    (["--n-train", "2.5"], "whole numbers"), (["--defences", "mixup=1"], "unknown defence"),
    (["--epsilons", "0"], "positive"), (["--people", "41"], "between 1 and the data's 40 people"),
    (["--generative-iterations", "0"], "--generative-iterations must be at least 1"),
    (["--attacks", "generative"], "learnt from 20 of the model's own people"),
    (["--prior", "no-such-prior"], "no-such-prior"),  # unreadable: refused, not a quiet fall-back to pixel space
])
def test_bad_sweeps_get_one_line_errors(tmp_path, options, message):
    result = runner.invoke(app, ["sweep", "faces", "--out", str(tmp_path / "x"), *options])
    assert result.exit_code == 2 and message in result.output


def test_train_faces_with_dp_records_the_spent_epsilon(tmp_path):
    result = runner.invoke(app, ["train", "faces", "--model", "softmax", "--dp-epsilon", "3", "--epochs", "3",
                                 "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    dp = json.loads((tmp_path / "m" / "target.json").read_text())["training"]["dp"]
    assert dp["epsilon"] == pytest.approx(3.0, rel=0.05) and "DP ε=" in result.output


def test_train_faces_rejects_dp_with_early_stopping(tmp_path):
    result = runner.invoke(app, ["train", "faces", "--dp-epsilon", "3", "--early-stopping", "3",
                                 "--out", str(tmp_path / "m")])
    assert result.exit_code != 0 and "one or the other" in result.output


def test_a_sweep_on_ray_matches_the_local_backend(ray_cluster, tmp_path):
    common = ["sweep", "faces", "--epsilons", "inf", "--n-train", "3", "--blackbox-iterations", "2",
              "--miface-iterations", "10", "--cpus-per-task", "1", "--people", "5"]
    local = runner.invoke(app, [*common, "--out", str(tmp_path / "local")])
    on_ray = runner.invoke(app, [*common, "--backend", "ray", "--address", ray_cluster.address,
                                 "--out", str(tmp_path / "ray")])
    assert local.exit_code == 0 and on_ray.exit_code == 0, local.output + on_ray.output
    points = [json.loads((tmp_path / name / "sweep.json").read_text()) for name in ("local", "ray")]
    assert points[0]["points"] == points[1]["points"]
    assert (points[0]["settings"]["backend"], points[1]["settings"]["backend"]) == ("local", "ray")
    assert points[0]["settings"]["people"] == 5


def test_a_missing_ray_cluster_is_a_one_line_error(tmp_path):
    result = runner.invoke(app, ["sweep", "faces", "--epsilons", "inf", "--backend", "ray", "--address",
                                 "127.0.0.1:9", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "cannot join the Ray cluster" in result.output
