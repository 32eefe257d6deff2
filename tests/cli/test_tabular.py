"""The tabular commands end to end on the real IWPC data, and their one-line errors."""

import json
import os
import stat

import pandas as pd
import pytest
from typer.testing import CliRunner

from mirisk.cli import app
from mirisk.data.iwpc import load_iwpc
from mirisk.models import save_target
from mirisk.models.tabular_store import save_tabular_target

runner = CliRunner()


@pytest.fixture(scope="module")
def linear_dir(tmp_path_factory, iwpc_linear):
    return save_tabular_target(iwpc_linear, tmp_path_factory.mktemp("models") / "linear")


def test_train_iwpc_with_dp_records_the_guarantee(tmp_path):
    result = runner.invoke(app, ["train", "iwpc", "--dp-epsilon", "2", "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert "DP-SGD, epsilon" in result.output and "held-out MAE" in result.output
    dp = json.loads((tmp_path / "m" / "target.json").read_text())["training"]["dp"]
    assert dp["epsilon"] == pytest.approx(2.0, rel=0.02)
    for key in ("epsilon", "delta", "noise_multiplier", "max_grad_norm", "sample_rate", "steps", "accountant"):
        assert key in dp


def test_attack_attribute_defaults_are_the_papers_setting(tmp_path, linear_dir):
    out = tmp_path / "a"
    result = runner.invoke(app, ["attack", "attribute", "--model", str(linear_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    payload = json.loads((out / "result.json").read_text())
    assert payload["attack"] == "fredrikson" and payload["sensitive"] == "vkorc1"
    assert payload["threat_model"]["access"] == "scores" and payload["marginalised"] == ["cyp2c9"]
    for part in (payload["metrics"], payload["metrics"]["train"], payload["metrics"]["test"]):
        for key in ("accuracy", "baseline_accuracy", "ideal_accuracy", "advantage", "mcc"):
            assert isinstance(part[key], float)
    assert payload["metrics"]["train"]["advantage"] > 0.1
    for name in ("result.json", "inferences.csv"):
        assert stat.S_IMODE(os.stat(out / name).st_mode) == 0o600


def test_attack_attribute_on_a_users_own_csv(tmp_path, linear_dir):
    table = tmp_path / "patients.csv"
    load_iwpc(None).to_csv(table, index=False)
    out = tmp_path / "a"
    result = runner.invoke(app, ["attack", "attribute", "--model", str(linear_dir), "--data", str(table),
                                 "--sensitive", "vkorc1", "--output", "band", "--attack", "learned", "--out", str(out)])
    assert result.exit_code == 0, result.output
    payload = json.loads((out / "result.json").read_text())
    assert payload["threat_model"]["access"] == "label-only" and payload["threat_model"]["bands"] == [21.0, 49.0]
    # The attacker's sample is half the non-training patients; everyone else is attacked.
    assert payload["n_aux"] == (4676 - 2805) // 2 and payload["n_records"] == 4676 - payload["n_aux"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--sensitive", "blood_type"], "must be a categorical"), (["--attack", "magic"], "unknown attribute attack"),
     (["--outcome", "guess"], "--outcome must be"), (["--bands", "a,b"], "comma-separated numbers"),
     (["--aux", "x.csv"], "--aux needs --data")],
)
def test_bad_options_get_one_line_errors(tmp_path, linear_dir, extra, message):
    result = runner.invoke(app, ["attack", "attribute", "--model", str(linear_dir), "--out", str(tmp_path / "a"), *extra])
    assert result.exit_code == 2 and message in result.output


def test_an_image_model_is_refused_for_attribute_attacks(tmp_path, targets):
    folder = save_target(targets["softmax"], tmp_path / "faces")
    result = runner.invoke(app, ["attack", "attribute", "--model", str(folder), "--out", str(tmp_path / "a")])
    assert result.exit_code == 2 and "need a tabular model" in result.output


def test_csv_missing_columns_is_named(tmp_path, linear_dir):
    table = tmp_path / "patients.csv"
    load_iwpc(None).drop(columns="weight_kg").to_csv(table, index=False)
    result = runner.invoke(app, ["attack", "attribute", "--model", str(linear_dir), "--data", str(table),
                                 "--out", str(tmp_path / "a")])
    assert result.exit_code == 2 and "lacks column(s) weight_kg" in result.output


def test_demo_iwpc_writes_results_and_the_sweep(tmp_path):
    out = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "iwpc", "--out", str(out), "--epsilons", "0.5,inf"])
    assert result.exit_code == 0, result.output
    points = json.loads((out / "dp_sweep.json").read_text())["points"]
    assert [point["epsilon"] for point in points] == [0.5, None]
    assert (out / "dp_sweep.png").read_bytes()[:4] == b"\x89PNG"
    assert len(list(out.glob("*/result.json"))) == 16
    assert pd.read_csv(out / "linear-vkorc1-fredrikson-value-true" / "inferences.csv")["in_training"].any()
