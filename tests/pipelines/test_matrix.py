"""The policy x attack matrix and what each policy costs legitimate users."""

import numpy as np
import pytest
import torch

from mirisk.attacks.basis import dct_basis
from mirisk.attacks.blackbox import ScoreBlackBox
from mirisk.attacks.labelonly import BoundaryRepulsion
from mirisk.attacks.miface import MIFace
from mirisk.errors import MiriskError
from mirisk.pipelines.matrix import PolicyMatrix, expected_calibration_error, policy_cost


def test_calibration_error_by_hand():
    confidence = np.array([0.95, 0.95, 0.55, 0.55])
    correct = np.array([True, False, True, True])
    # bins: 0.9-1.0 holds two at confidence 0.95 with accuracy 0.5; 0.5-0.6 two at 0.55 with accuracy 1.
    assert expected_calibration_error(confidence, correct) == pytest.approx((2 * 0.45 + 2 * 0.45) / 4)


def test_policy_cost_on_held_out_photos(targets, faces):
    scores = policy_cost(targets["softmax"], faces, "scores")
    label = policy_cost(targets["softmax"], faces, "label")
    assert scores["accuracy"] == pytest.approx(targets["softmax"].metrics["test_accuracy"])
    assert label["accuracy"] == scores["accuracy"] and label["calibration_error"] is None
    assert 0 <= scores["calibration_error"] <= 1


def test_matrix_rows_and_cells(targets, faces):
    matrix = PolicyMatrix(
        basis=dct_basis((1, 112, 92)),
        blackbox=ScoreBlackBox(iterations=30),
        labelonly=BoundaryRepulsion(iterations=10),
        miface=MIFace(iterations=100, learning_rate=1.0),
    ).run(targets["softmax"], faces, ["scores", "label"], people=torch.arange(0, 40, 4))
    assert [row["policy"] for row in matrix["rows"]] == ["scores", "label"]
    scores, label = matrix["rows"]
    # White-box access never passes through the output policy: the same cell in every row.
    assert scores["white-box"] == label["white-box"] and scores["white-box"]["identification_top1"] >= 0.8
    assert scores["blackbox-scores"]["identification_top1"] > label["blackbox-scores"]["identification_top1"]
    assert scores["blackbox-scores"]["queries_per_target"] == 30 * 40
    assert matrix["n_targets"] == 10 and matrix["chance_top1"] == 0.025


def test_with_the_baseline_every_cell_carries_its_twins_numbers(targets, faces):
    matrix = PolicyMatrix(basis=dct_basis((1, 112, 92)), blackbox=ScoreBlackBox(iterations=5),
                          labelonly=BoundaryRepulsion(iterations=5), miface=MIFace(iterations=100, learning_rate=1.0),
                          ).run(targets["softmax"], faces, ["label"], people=torch.arange(0, 40, 8), seed=1, baseline=True)
    (row,) = matrix["rows"]
    assert matrix["baseline"] == "label-permuted twin" and matrix["seed"] == 1
    for attack in ("white-box", "blackbox-scores", "labelonly"):
        assert 0 <= row[attack]["baseline_judge_top1"] <= 1 and 0 <= row[attack]["baseline_reid_top1"] <= 1
    # the twin's MI-Face class c is nobody's template: held-out re-identification falls far below the target's
    assert row["white-box"]["reid_top1"] - row["white-box"]["baseline_reid_top1"] >= 0.6


def test_bad_policy_fails_before_any_attack(targets, faces):
    with pytest.raises(MiriskError, match="unknown output policy"):
        PolicyMatrix(basis=dct_basis((1, 112, 92))).run(targets["softmax"], faces, ["scores", "bogus"])
